"""StyleGAN2Loss: the phase runner. It runs G and D (style mixing, augmentation, bf16 autocast, DDP sync),
applies the objective (stylegan_som/losses) through Objective.d_real_term / d_fake_term / g_term, the SOM weights
(som_weighting.py) and the regularisers of the table in regularisers/, in upstream's order of passes."""

import torch

import dnnlib
from torch_utils import misc
from torch_utils import training_stats

from .. import plugins
from ..networks import msg as msg_pyramid
from .base import Loss
from .regularisers import REGULARISERS, loss_keywords
from .som_weighting import SOMWeighting

PHASES = {'Gmain': ('G', True, False), 'Greg': ('G', False, True), 'Gboth': ('G', True, True),
    'Dmain': ('D', True, False), 'Dreg': ('D', False, True), 'Dboth': ('D', True, True)} # side, main, reg

#----------------------------------------------------------------------------

class StyleGAN2Loss(Loss):
    """StyleGAN2-ADA's loss (style mixing, lazy R1 on reals, path-length regularisation, with its arguments and
    numerics), generalised to any registered objective (`objective`, a plugins.LOSSES name; default: upstream's
    non-saturating logistic loss) and to discriminators with K heads (logits [N, K]) trained as a
    self-organising map (`som_kwargs`, see som_weighting.SOMWeighting). With one head and objective='stylegan2'
    it computes exactly upstream's loss and gradients.

    D's loss is (1/K) sum_k [mean_n h_k(n) l_real + mean_m l_fake], h the SOM weights of the reals; G's loss
    weighs each fake's heads as som_kwargs.g_weights says. Weights apply only to the main terms, never to the
    regularisers. The regularisers' keywords (regularisers.REGULARISERS) are keywords of this class: r1_gamma
    (default 10), r2_gamma, pl_weight (2), pl_batch_shrink (2), pl_decay (0.01), gp_weight, weight_clip,
    fm_weight (0 = off). With K heads the gradient penalties take one gradient per sample of one randomly chosen
    head, so their expectation is the mean of the K per-head penalties at the cost of a single backward pass.

    bf16 runs G and D under torch.autocast(bfloat16) on a CPU (convolutions 1.4-1.8x faster on CPUs with
    AVX-512 BF16 or AMX); their outputs come back as float32, so losses, penalties and the optimizers stay in
    float32.

    A head that declares an auxiliary loss (split_outputs and aux_loss, e.g. ACGAN's classifier, heads/acgan.py)
    returns extra outputs after the logits; they are split off in run_D, and aux_loss(extra, labels) is added,
    per sample, to D's loss on reals and on fakes and to G's loss on fakes (labels: the dataset's for reals, G's
    conditioning for fakes). Penalties (R1, GP) and the SOM weights see the logits alone.

    msg=True (MSG-GAN, networks/msg.py): G's images go to D as a pyramid, one image per scale D takes; reals as
    their average-pooled pyramid. The gradient penalties take each scale's input as an input of its own (R1 on
    reals: the sum over scales of |grad|^2), and WGAN-GP interpolates every scale with the same alpha."""

    def __init__(self, device, G_mapping, G_synthesis, D, augment_pipe=None, style_mixing_prob=0.9,
            objective='stylegan2', som_kwargs={}, bf16=False, msg=False, **reg_kwargs):
        super().__init__()
        if bf16 and torch.device(device).type != 'cpu':
            raise ValueError(f'bf16 autocast is for training on a CPU, not on {device} (GPUs use fp16 layers)')
        self.msg = bool(msg)
        self.msg_resolutions = msg_pyramid.resolutions_of(D)
        if self.msg and not self.msg_resolutions:
            raise ValueError(f'msg=True: {type(getattr(D, "module", D)).__name__} takes no scales below its input; '
                'build it with msg=True')
        if self.msg and augment_pipe is not None:
            raise ValueError('msg=True: the augmentation pipe transforms single images, not pyramids; train without it')
        unknown = sorted(set(reg_kwargs) - set(loss_keywords()))
        if unknown:
            raise TypeError(f'StyleGAN2Loss: unknown keyword {unknown[0]!r}; regularisers take '
                f'{", ".join(sorted(loss_keywords()))}')
        self.device = device
        self.bf16 = bool(bf16)
        self.G_mapping = G_mapping
        self.G_synthesis = G_synthesis
        self.D = D
        self.augment_pipe = augment_pipe
        self.style_mixing_prob = style_mixing_prob
        self.objective = plugins.LOSSES.build(objective) if isinstance(objective, str) else objective
        self.aux_head = self._find_aux_head()
        self.regularisers = dict()
        for name, class_name, args in REGULARISERS:
            kwargs = {arg: reg_kwargs.get(key, default) for arg, (key, default) in args.items()}
            self.regularisers[name] = dnnlib.util.construct_class_by_name(class_name=class_name, device=device, **kwargs)
        self.som = SOMWeighting(device, **som_kwargs)
        if self._wants_features():
            self._feature_module() # fail at set-up, not at the first step

    @property
    def pl_mean(self):
        return self.regularisers['path_length'].pl_mean

    def _active(self, side, where):
        return [reg for reg in self.regularisers.values() if reg.side == side and reg.where == where and reg.active]

    def _wants_features(self):
        return self.som.wants_features or any(getattr(reg, 'wants_features', False) for reg in self._active('G', 'main'))

    def set_progress(self, cur_nimg, total_nimg):
        self.som.set_progress(cur_nimg, total_nimg)

    def som_sigma(self, num_heads=None):
        """Neighbourhood width now (None for a single head, which needs none)."""
        return self.som.sigma(num_heads)

    def after_optimizer_step(self, phase):
        for reg in self._active(phase[0], 'step'):
            reg.apply(self)

    def tick_report(self, stats, pictures=False):
        return self.som.tick_report(stats, pictures)

    def state_dict(self):
        state = dict()
        for reg in self.regularisers.values():
            if hasattr(reg, 'state_dict'):
                state.update(reg.state_dict())
        state.update(self.som.state_dict())
        return state

    def load_state_dict(self, state):
        for reg in self.regularisers.values():
            if hasattr(reg, 'load_state_dict'):
                reg.load_state_dict(state)
        self.som.load_state_dict(state)

    # Running the networks.

    def _autocast(self):
        return torch.autocast('cpu', dtype=torch.bfloat16, enabled=self.bf16)

    def run_G(self, z, c, sync):
        with misc.ddp_sync(self.G_mapping, sync), self._autocast():
            ws = self.G_mapping(z, c).float() # float32 is the tensor the path-length penalty differentiates by
            if self.style_mixing_prob > 0 and ws.shape[1] > 1: # a single w (small backbones) cannot be mixed
                # One crossover layer for the whole batch; with probability 1 - style_mixing_prob it is past the
                # last layer, i.e. no mixing. Drawn on-device so there is no host sync.
                num_ws = ws.shape[1]
                cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, num_ws)
                mix = torch.rand([], device=ws.device) < self.style_mixing_prob
                cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
                ws2 = self.G_mapping(torch.randn_like(z), c, skip_w_avg_update=True)
                ws[:, cutoff:] = ws2[:, cutoff:]
        with misc.ddp_sync(self.G_synthesis, sync), self._autocast():
            img = self.G_synthesis(ws, return_pyramid=True) if self.msg else self.G_synthesis(ws)
        return msg_pyramid.apply(lambda level: level.float(), img), ws

    def reals(self, img):
        """D's input for reals: the image, or with msg its pyramid at D's scales."""
        return msg_pyramid.pyramid(img, self.msg_resolutions) if self.msg else img

    def run_D(self, img, c, sync, aux=False):
        """D's logits [N, K]; with aux=True also the extra outputs of an aux-loss head (None without one)."""
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        with misc.ddp_sync(self.D, sync), self._autocast():
            logits = self.D(img, c)
        logits, extra = logits.float(), None
        if self.aux_head is not None:
            logits, extra = self.aux_head.split_outputs(logits)
        return (logits, extra) if aux else logits

    def _head_module(self):
        """D's head: the module whose first input is the features it scores, or None."""
        D = getattr(self.D, 'module', self.D) # under DDP
        for path in ('head', 'b4.out'):
            module = D
            for name in path.split('.'):
                module = getattr(module, name, None)
            if isinstance(module, torch.nn.Module):
                return module
        return None

    def _find_aux_head(self):
        """D's head if it declares an auxiliary loss (aux_loss), else None; such a head anywhere else is an error."""
        head = self._head_module()
        if head is not None and callable(getattr(head, 'aux_loss', None)):
            return head
        D = getattr(self.D, 'module', self.D)
        if any(callable(getattr(m, 'aux_loss', None)) for m in D.modules()):
            raise ValueError(f'{type(D).__name__}: a head with an auxiliary loss must be D\'s `head` (or StyleGAN2\'s '
                '`b4.out`), one per D; it cannot sit inside separate discriminators')
        return None

    def _feature_module(self):
        """The module whose first input is the features D's head scores (feature matching, prototypes)."""
        module = self._head_module()
        if module is None:
            D = getattr(self.D, 'module', self.D)
            raise ValueError(f'fm_weight: feature matching needs a D with a `head` or `b4.out` module, and '
                f'{type(D).__name__} has neither')
        return module

    def run_D_features(self, img, c, sync, aux=False):
        """run_D, and the features its head scored, [N, F] in float32 (with aux=True: logits, features, extra)."""
        captured = []
        handle = self._feature_module().register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
        try:
            logits, extra = self.run_D(img, c, sync, aux=True)
        finally:
            handle.remove() # no hook left behind in a network that gets pickled
        features = captured[-1].float().flatten(1)
        return (logits, features, extra) if aux else (logits, features)

    def _run_D_for_G(self, img, c):
        """D's logits in G's step, where a regulariser or the SOM wants them the features its head scored (else
        None), and an aux-loss head's extra outputs (else None)."""
        if not self._wants_features():
            logits, extra = self.run_D(img, c, sync=False, aux=True)
            return logits, None, extra
        return self.run_D_features(img, c, sync=False, aux=True)

    def _aux_term(self, extra, c, name):
        """Mean over the batch of the head's auxiliary loss (0 without an aux-loss head)."""
        if extra is None:
            return 0
        loss = self.aux_head.aux_loss(extra, c)
        training_stats.report(name, loss)
        return loss.mean()

    # The phases.

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        if phase not in PHASES:
            raise ValueError(f'unknown training phase {phase!r}')
        side, main, reg = PHASES[phase]
        batch = dnnlib.EasyDict(real_img=real_img, real_c=real_c, gen_z=gen_z, gen_c=gen_c)
        if side == 'G':
            self._G_phase(batch, main, reg, sync, gain)
        else:
            self._D_phase(batch, main, reg, sync, gain)

    def _G_phase(self, batch, main, reg, sync, gain):
        passes = self._active('G', 'pass') if reg else []
        if main:
            self._G_main(batch, sync=(sync and not passes), gain=gain) # a following pass syncs G
        for i, regulariser in enumerate(passes):
            regulariser.run(self, batch, sync=(sync and i == len(passes) - 1), gain=gain)

    def _G_main(self, batch, sync, gain):
        """The objective's G loss on D's logits for fakes (for stylegan2: softplus(-x)), weighted over the heads,
        plus the 'main' regularisers' terms."""
        obj = self.objective
        terms = self._active('G', 'main')
        gen_img, _ = self.run_G(batch.gen_z, batch.gen_c, sync=sync)
        gen_logits, gen_features, gen_extra = self._run_D_for_G(gen_img, batch.gen_c)
        training_stats.report('Loss/scores/fake', gen_logits)
        training_stats.report('Loss/signs/fake', gen_logits.sign())
        g_weights = self.som.fake_weights(gen_logits, gen_features) # [N, K], or None: mean over heads
        real_logits = real_features = None
        if obj.couples or terms: # the objective compares reals with fakes, or a term reads D's view of reals
            with torch.no_grad(): # D is not trained here: what it says of reals is a constant of G's loss
                real_logits, real_features, _ = self._run_D_for_G(self.reals(batch.real_img), batch.real_c)
        partners = (self.som.fake_partners(real_logits, gen_logits, g_weights, gen_features, real_features) if obj.couples
            else real_logits)
        loss_Gmain = obj.g_term(gen_logits, partners, g_weights) # [N, K]; coupled objectives: [K]
        training_stats.report('Loss/G/loss', loss_Gmain)
        loss_G = loss_Gmain.mean()
        for term in terms:
            loss_G = loss_G + term.term(real_logits, gen_logits, real_features, gen_features)
        loss_G = loss_G + self._aux_term(gen_extra, batch.gen_c, 'Loss/G/aux') # ACGAN: G wants its class recognised
        loss_G.mul(gain).backward()

    def _D_phase(self, batch, main, reg, sync, gain):
        """Passes in order: the regularisers' own passes (their graphs are gone before the main ones are built),
        D on fakes, D on reals; only the last one syncs DDP. A separable objective back-propagates the fake pass
        at once, as upstream, which frees its graph before the real pass; a coupled one waits for the reals."""
        obj = self.objective
        passes = self._active('D', 'pass') if reg else []
        fake_terms = self._active('D', 'fake') if reg else []
        real_terms = self._active('D', 'real') if reg else []
        fake_pass = main or bool(fake_terms)
        real_pass = main or bool(real_terms)
        for i, regulariser in enumerate(passes):
            last = i == len(passes) - 1 and not (fake_pass or real_pass)
            regulariser.run(self, batch, sync=(sync and last), gain=gain)

        # D on fakes: the objective's term (for stylegan2: softplus(x)) and the fake-pass regularisers (R2).
        loss_Dgen = 0
        loss_Dfreg = 0
        loss_Daux_gen = 0
        if fake_pass:
            with torch.no_grad():
                gen_img, _ = self.run_G(batch.gen_z, batch.gen_c, sync=False)
            gen_img = msg_pyramid.leaves(gen_img, bool(fake_terms))
            gen_logits, gen_extra = self.run_D(gen_img, batch.gen_c, sync=(sync and not real_pass), aux=True)
            loss_Daux_gen = self._aux_term(gen_extra, batch.gen_c, 'Loss/D/aux') if main else 0
            if main:
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Dfreg = _sum(term.term(gen_logits, gen_img) for term in fake_terms)
            if main and not obj.couples:
                loss_Dgen = obj.d_fake_term(gen_logits)
            if not (main and obj.couples):
                ((gen_logits * 0 + loss_Dgen + loss_Dfreg).mean() + loss_Daux_gen).mul(gain).backward()
                loss_Dfreg = loss_Daux_gen = 0

        # D on reals: the objective's term weighted per head by the SOM neighbourhood, and the real-pass
        # regularisers (R1), in one forward pass.
        if real_pass:
            real_img_tmp = msg_pyramid.leaves(self.reals(batch.real_img.detach()), bool(real_terms))
            real_features = None
            if self.som.wants_features:
                real_logits, real_features, real_extra = self.run_D_features(real_img_tmp, batch.real_c, sync=sync,
                    aux=True)
            else:
                real_logits, real_extra = self.run_D(real_img_tmp, batch.real_c, sync=sync, aux=True)
            training_stats.report('Loss/scores/real', real_logits)
            weights = self.som.real_weights(real_logits, real_features, learn=main) # [N, K], or None with one head
            if weights is None:
                training_stats.report('Loss/signs/real', real_logits.sign()) # drives the ADA heuristic
            else:
                # Per real, the heads' signs weighted as in the loss: the heads that learn this image as real,
                # i.e. mostly its best-matching head once sigma is small. The plain mean over heads would count
                # heads that are trained to reject other heads' modes and read low; the BMU alone reads high.
                signs = (real_logits.detach().sign() * weights).sum(1) / weights.sum(1)
                training_stats.report('Loss/signs/real', signs)

            loss_Dreal = 0
            if main:
                if obj.couples:
                    loss_Dgen = obj.d_fake_term(gen_logits, real_logits)
                partners = self.som.real_partners(gen_logits, real_logits, real_features) if obj.couples else None
                loss_Dreal = obj.d_real_term(real_logits, partners, weights)
                if weights is not None:
                    self.som.report(real_logits, real_features)
                if loss_Dgen.shape == loss_Dreal.shape:
                    training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)
                else:
                    training_stats.report('Loss/D/loss', loss_Dgen.mean(0) + loss_Dreal.mean(0))

            loss_Dreg = _sum(term.term(real_logits, real_img_tmp) for term in real_terms)
            loss_D = (real_logits * 0 + loss_Dreal + loss_Dreg).mean()
            if main:
                loss_D = loss_D + self._aux_term(real_extra, batch.real_c, 'Loss/D/aux')
            if main and obj.couples:
                loss_D = loss_D + (gen_logits * 0 + loss_Dgen + loss_Dfreg).mean() + loss_Daux_gen
            loss_D.mul(gain).backward()

def _sum(terms):
    """Sum of the terms, 0 for none (one term comes back as it is)."""
    total = 0
    for term in terms:
        total = term if isinstance(total, int) else total + term
    return total

#----------------------------------------------------------------------------
