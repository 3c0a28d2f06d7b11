"""Training losses. A loss is built from keyword arguments by class name (`loss_kwargs.class_name`) and receives
the (possibly DDP-wrapped) networks; the training loop only calls `accumulate_gradients()` once per phase and
round, so a new objective is one new class here and never an edit to the loop."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

from . import plugins
from . import som

#----------------------------------------------------------------------------

class Loss:
    """Interface seen by the training loop.

    `phase` is one of 'Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth'; the loss adds the gradients of that
    phase, multiplied by `gain`, to the parameters that currently require grad. `sync` is False on all but the
    last gradient-accumulation round, so DDP all-reduces once per phase.

    Any running state that shapes the trajectory (moving averages, schedules) must come back from
    `state_dict()` as plain tensors/numbers so a resumed run continues exactly; the snapshot stores it outside
    the network objects, which keeps the pickle loadable by upstream's loader."""

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        raise NotImplementedError()

    def set_progress(self, cur_nimg, total_nimg):
        """Called before every training step with the images seen so far and the planned total, for losses
        with schedules (e.g. a neighbourhood width that shrinks over training). Deriving a schedule from these
        two numbers, not from a private counter, keeps it right after a resume."""

    def after_optimizer_step(self, phase):
        """Called after the optimizer step of each phase, for constraints on the weights (e.g. WGAN clipping)."""

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f'{type(self).__name__} has no state to restore, got keys {sorted(state)}')

def _per_score(per_image, logits):
    """Squared input-gradient norms per image -> per row of D's logits. A D that scores packs of images (PacGAN)
    gives one row per pack, whose input is the whole pack: its squared norm is the sum over the pack's images."""
    if per_image.shape[0] == logits.shape[0]:
        return per_image
    return per_image.reshape(logits.shape[0], -1).sum(1)

def feature_distance(real, fake):
    """|E real - E fake|^2 / F for features [N, F], [M, F], estimated without bias (the linear-kernel MMD^2):
    the squared difference of the batch means alone adds each batch's summed variance over its size, which G
    could lower by drawing less varied fakes. Can be slightly negative."""
    d = (real.mean(0) - fake.mean(0)).square()
    for x in (real, fake):
        if x.shape[0] > 1:
            d = d - x.var(0) / x.shape[0]
    return d.mean()

#----------------------------------------------------------------------------

class StyleGAN2Loss(Loss):
    """StyleGAN2-ADA's loss (style mixing, lazy R1 on reals, path-length regularisation, with its arguments and
    numerics), generalised to any registered objective (`objective`, a plugins.LOSSES name; default: upstream's
    non-saturating logistic loss) and to discriminators with K heads (logits [N, K]) trained as a
    self-organising map (`som_kwargs`). With one head and objective='stylegan2' it computes exactly upstream's
    loss and gradients.

    SOM heads, per accumulation round: each real x_n picks its best-matching head b(n) = argmax_k D_k(x_n), and
    head k weighs that real's term by h_k(n) = exp(-d(k, b(n))^2 / (2 sigma^2)) on the heads' map; sigma shrinks
    over training (set_progress). D's loss is (1/K) sum_k [mean_n h_k(n) l_real + mean_m l_fake]. G's loss weighs
    each fake's heads by the neighbourhood of that fake's own best-matching head (g_weights='neighbourhood',
    som.generator_weights), or takes the plain mean over heads (g_weights='mean', the SOMGAN paper's rule); with one head
    both are the plain loss. Weights apply only to the main terms, never to the regularisers.
    som_kwargs: num_heads (checked against D's output; default: whatever D returns), topology ('grid',
    'linear' or 'circular'; default 'grid'), sigma_start (default: half the map's diameter), sigma_end (0.3),
    normalize (default True: rescale each head's weights to mean 1 over the round's reals, see
    som.neighbourhood_weights. Without it a head that wins no reals gets almost no real signal but full fake
    signal, learns to reject everything and never wins again: in CPU runs one head won every real within a
    kimg. The SOMGAN paper's own small-network code normalises over the batch too), g_weights (default 'mean';
    'balance' and 'transport' move fakes between units by the reals' and fakes' unit shares: som.balance_weights,
    som.transport_weights, with the reals' shares a running mean of decay occupancy_decay, kept in state_dict),
    bmu ('logit': the highest-scoring head; 'prototype': the nearest of K prototypes of D's features that learn
    from the reals by Kohonen's rule at prototype_rate, som.update_prototypes).
    Which rule wins depends on the setting (bench/RESULTS.md): on the 2-D toys with MLPs the mean lost modes (ring8:
    5 of 8, each fake is asked to pass the experts of every mode at once), the neighbourhood rule kept 8 at 4000 kimg
    and transport did best at 1000; on the discs8 image demo with StyleGAN2 the neighbourhood rule let G crowd into
    a few modes (a fake need only please its best head) and the mean did better. train.py picks it per config
    (--som-g-weights).

    Regularisers on D with K heads (R1 with r1_gamma, the WGAN-GP penalty with gp_weight) take one gradient per
    sample of one randomly chosen head, so their expectation is the mean of the K per-head penalties at the cost
    of a single backward pass. weight_clip > 0 clamps D's parameters after each D step (WGAN).

    bf16 runs G and D under torch.autocast(bfloat16) on a CPU (convolutions 1.4-1.8x faster on CPUs with AVX-512
    BF16 or AMX); their outputs come back as float32, so losses, penalties and the optimizers stay in float32.

    fm_weight > 0 adds feature matching (Salimans et al. 2016) to G's loss: fm_weight times the squared distance
    between the batch means of D's final features on reals and on fakes (feature_distance), the features being what D's
    head scores (small backbones: the input of `head`; StyleGAN2: of the epilogue's `out`). A per-sample
    adversarial loss tells a fake how to look more real; this batch statistic also says which kinds of images
    G draws too often, e.g. one digit over another.

    A head that declares an auxiliary loss (split_outputs and aux_loss, e.g. ACGAN's classifier, heads/acgan.py)
    returns extra outputs after the logits; they are split off in run_D, and aux_loss(extra, labels) is added,
    per sample, to D's loss on reals and on fakes and to G's loss on fakes (labels: the dataset's for reals, G's
    conditioning for fakes). Penalties (R1, GP) and the SOM weights see the logits alone."""

    def __init__(self, device, G_mapping, G_synthesis, D, augment_pipe=None, style_mixing_prob=0.9, r1_gamma=10,
            pl_batch_shrink=2, pl_decay=0.01, pl_weight=2, objective='stylegan2', som_kwargs={}, gp_weight=0,
            weight_clip=0, bf16=False, fm_weight=0, r2_gamma=0):
        super().__init__()
        if bf16 and torch.device(device).type != 'cpu':
            raise ValueError(f'bf16 autocast is for training on a CPU, not on {device} (GPUs use fp16 layers)')
        self.device = device
        self.bf16 = bool(bf16)
        self.G_mapping = G_mapping
        self.G_synthesis = G_synthesis
        self.D = D
        self.augment_pipe = augment_pipe
        self.style_mixing_prob = style_mixing_prob
        self.r1_gamma = r1_gamma
        self.r2_gamma = r2_gamma
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.pl_weight = pl_weight
        self.pl_mean = torch.zeros([], device=device) # running mean of path lengths, the target of the pl penalty
        self.objective = plugins.LOSSES.build(objective) if isinstance(objective, str) else objective
        self.gp_weight = gp_weight
        self.weight_clip = weight_clip
        self.fm_weight = fm_weight
        if fm_weight:
            self._feature_module() # fail at set-up, not at the first G step
        self.aux_head = self._find_aux_head()
        self._init_som(**som_kwargs)

    # SOM heads. Nothing here is training state: sigma follows from (cur_nimg, total_nimg).

    def _init_som(self, num_heads=None, topology='grid', sigma_start=None, sigma_end=som.DEFAULT_SIGMA_END,
            normalize=True, g_weights='mean', occupancy_decay=0.99, bmu='logit', prototype_rate=0.05):
        if topology not in som.TOPOLOGIES:
            raise ValueError(f'som_kwargs.topology: unknown topology {topology!r}; choose from {", ".join(som.TOPOLOGIES)}')
        if g_weights not in som.G_WEIGHTINGS:
            raise ValueError(f'som_kwargs.g_weights: unknown value {g_weights!r}; choose from {", ".join(som.G_WEIGHTINGS)}')
        for name, value in [('sigma_start', sigma_start), ('sigma_end', sigma_end)]:
            if value is not None and not value > 0:
                raise ValueError(f'som_kwargs.{name} must be positive, got {value}')
        self.som_num_heads = num_heads
        self.som_topology = topology
        self.som_sigma_start = sigma_start
        self.som_sigma_end = sigma_end
        self.som_normalize = bool(normalize)
        self.som_g_weights = g_weights
        if not 0 <= occupancy_decay < 1:
            raise ValueError(f'som_kwargs.occupancy_decay must be in [0, 1), got {occupancy_decay}')
        self.som_occupancy_decay = float(occupancy_decay)
        self._occupancy = dict(real=None, fake=None) # running shares of best-matching units, [K] float32 each
        if bmu not in som.BMU_RULES:
            raise ValueError(f'som_kwargs.bmu: unknown value {bmu!r}; choose from {", ".join(som.BMU_RULES)}')
        if not 0 < prototype_rate <= 1:
            raise ValueError(f'som_kwargs.prototype_rate must be in (0, 1], got {prototype_rate}')
        self.som_bmu = bmu
        self.som_prototype_rate = float(prototype_rate)
        self._prototypes = None # [K, F] float32 on the device: with bmu='prototype', a Kohonen map of D's features
        if bmu == 'prototype':
            self._feature_module() # fail at set-up, not at the first step
        self._som_distances = None # [K, K] on self.device, built for the first K seen
        self._som_progress = (0, 1)
        if num_heads is not None:
            self._som_map(num_heads)

    def _som_map(self, num_heads):
        """Distances between the heads, checked against the number of logits D returns."""
        if self.som_num_heads is not None and num_heads != self.som_num_heads:
            raise ValueError(f'D returns {num_heads} logits per image but som_kwargs.num_heads is {self.som_num_heads}')
        if self._som_distances is None or self._som_distances.shape[0] != num_heads:
            self._som_distances = som.topology_distances(num_heads, self.som_topology).to(self.device)
        return self._som_distances

    def set_progress(self, cur_nimg, total_nimg):
        self._som_progress = (cur_nimg, total_nimg)

    def som_sigma(self, num_heads=None):
        """Neighbourhood width now (None for a single head, which needs none)."""
        num_heads = self.som_num_heads if num_heads is None else num_heads
        if num_heads is None or num_heads == 1:
            return None
        start = self.som_sigma_start
        if start is None:
            start = som.default_sigma_start(num_heads, self.som_topology, self.som_sigma_end)
        return som.sigma_schedule(*self._som_progress, sigma_start=start, sigma_end=self.som_sigma_end)

    def _uses_prototypes(self, logits):
        return self.som_bmu == 'prototype' and logits.shape[1] > 1

    def _bmu_scores(self, logits, features):
        """Scores [N, K] whose argmax is each sample's unit: D's logits, or closeness to the prototypes."""
        if not self._uses_prototypes(logits):
            return logits
        if self._prototypes is None:
            self._prototypes = som.init_prototypes(features, logits.shape[1])
        return som.prototype_scores(features, self._prototypes).to(logits.dtype)

    def _real_weights(self, real_logits, real_features=None, learn=True):
        """SOM weights [N, K] for the reals of this round, or None with one head (weight 1). With prototypes and
        `learn` (once per D step), the map first learns from this batch of D's features."""
        num_heads = real_logits.shape[1]
        distances = self._som_map(num_heads)
        if num_heads == 1:
            return None
        sigma = self.som_sigma(num_heads)
        if learn and self._uses_prototypes(real_logits):
            self._bmu_scores(real_logits, real_features) # initialises the map on the first batch
            self._prototypes = som.update_prototypes(self._prototypes, real_features, distances, sigma,
                self.som_prototype_rate)
        scores = self._bmu_scores(real_logits, real_features)
        return som.neighbourhood_weights(scores, distances, sigma, normalize=self.som_normalize)

    def _fake_weights(self, gen_logits, gen_features=None):
        """Weights [N, K] of the heads in G's loss, or None for the plain mean over heads."""
        num_heads = gen_logits.shape[1]
        if num_heads == 1 or self.som_g_weights == 'mean':
            return None
        distances, sigma = self._som_map(num_heads), self.som_sigma(num_heads)
        gen_logits = self._bmu_scores(gen_logits, gen_features)
        real = self._occupancy['real']
        if self.som_g_weights == 'neighbourhood' or real is None: # before the first D step: nothing to balance
            return som.generator_weights(gen_logits, distances, sigma)
        if self.som_g_weights == 'transport':
            return som.transport_weights(gen_logits, distances, sigma, real)
        fake = self._track_occupancy('fake', gen_logits)
        return som.balance_weights(gen_logits, distances, sigma, real, fake)

    def _track_occupancy(self, side, logits):
        """Running mean (decay occupancy_decay per step) of the share of `side`'s samples each head wins."""
        batch = som.bmu_occupancy(logits.detach()) # stays on the device: no host sync per step
        old = self._occupancy[side]
        new = batch if old is None or old.shape != batch.shape else batch.lerp(old, self.som_occupancy_decay)
        self._occupancy[side] = new
        return new

    def after_optimizer_step(self, phase):
        # WGAN's Lipschitz constraint by clipping, after every optimizer step that changed D.
        if self.weight_clip and phase.startswith('D'):
            with torch.no_grad():
                for param in self.D.parameters():
                    param.clamp_(-self.weight_clip, self.weight_clip)

    def state_dict(self):
        state = dict(pl_mean=self.pl_mean.detach().cpu().clone())
        for side, occupancy in self._occupancy.items():
            if occupancy is not None:
                state[f'som_occupancy_{side}'] = occupancy.detach().cpu().clone()
        if self._prototypes is not None:
            state['som_prototypes'] = self._prototypes.detach().cpu().clone()
        return state

    def load_state_dict(self, state):
        self.pl_mean.copy_(torch.as_tensor(state['pl_mean']).to(self.pl_mean.device))
        for side in self._occupancy:
            value = state.get(f'som_occupancy_{side}')
            self._occupancy[side] = None if value is None else torch.as_tensor(value, dtype=torch.float32).to(self.device).clone()
        value = state.get('som_prototypes')
        self._prototypes = None if value is None else torch.as_tensor(value, dtype=torch.float32).to(self.device).clone()

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
            img = self.G_synthesis(ws)
        return img.float(), ws

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
        head = self._head_module()
        if head is not None and callable(getattr(head, 'aux_loss', None)):
            return head
        D = getattr(self.D, 'module', self.D)
        if any(callable(getattr(m, 'aux_loss', None)) for m in D.modules()):
            raise ValueError(f'{type(D).__name__}: a head with an auxiliary loss must be D\'s `head` (or StyleGAN2\'s '
                '`b4.out`), one per D; it cannot sit inside separate discriminators')
        return None

    def _feature_module(self):
        """The module whose first input is the features D's head scores (for feature matching)."""
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

    def _wants_features(self):
        return bool(self.fm_weight) or self.som_bmu == 'prototype'

    def _run_D_for_G(self, img, c):
        """D's logits in G's step, with feature matching or prototypes the features its head scored (else None),
        and an aux-loss head's extra outputs (else None)."""
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

    def _penalty_outputs(self, logits):
        """The scalar whose input gradient a penalty (R1, GP) measures: with one head the sum of the logits, as
        upstream; with K heads, per sample the logit of one head drawn uniformly, so that the expected penalty
        is the mean of the per-head penalties while costing one backward pass (not K)."""
        if logits.shape[1] == 1:
            return logits.sum()
        head = torch.randint(logits.shape[1], [logits.shape[0], 1], device=logits.device)
        return logits.gather(1, head).sum()

    def _gradient_penalty(self, logits, img, gamma, name):
        """Zero-centred gradient penalty gamma/2 |grad_img D(img)|^2 per score (R1 on reals, R2 on fakes), shaped to
        add to per-head losses [N, K]; one head keeps upstream's [N, 1] + [N] broadcast."""
        with conv2d_gradfix.no_weight_gradients():
            grads = torch.autograd.grad(outputs=[self._penalty_outputs(logits)], inputs=[img], create_graph=True,
                only_inputs=True)[0]
        penalty = _per_score(grads.square().sum([1, 2, 3]), logits)
        loss = penalty * (gamma / 2)
        training_stats.report(f'Loss/{name}_penalty', penalty)
        training_stats.report('Loss/D/reg', loss)
        return loss[:, None] if logits.shape[1] > 1 else loss

    def _report_som(self, real_logits):
        num_heads = real_logits.shape[1]
        if self.som_g_weights in ('balance', 'transport'):
            self._track_occupancy('real', real_logits)
        training_stats.report('SOM/sigma', self.som_sigma(num_heads))
        wins = torch.nn.functional.one_hot(som.best_matching_units(real_logits), num_heads).to(torch.float32)
        for k in range(num_heads):
            training_stats.report(f'SOM/occupancy/{k}', wins[:, k]) # mean = share of reals head k wins

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        if phase not in ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth'):
            raise ValueError(f'unknown training phase {phase!r}')
        do_Gmain = phase in ('Gmain', 'Gboth')
        do_Dmain = phase in ('Dmain', 'Dboth')
        do_Gpl = phase in ('Greg', 'Gboth') and self.pl_weight != 0
        do_Dr1 = phase in ('Dreg', 'Dboth') and self.r1_gamma != 0
        do_Dgp = phase in ('Dreg', 'Dboth') and self.gp_weight != 0
        do_Dr2 = phase in ('Dreg', 'Dboth') and self.r2_gamma != 0
        obj = self.objective
        couples = obj.couples # the objective compares reals with fakes (batch means, softmax over the batch)

        # G: the objective's G loss on D's logits for fakes (for stylegan2: softplus(-x)), weighted over the heads.
        if do_Gmain:
            gen_img, _ = self.run_G(gen_z, gen_c, sync=(sync and not do_Gpl)) # the pl pass syncs G if it follows
            gen_logits, gen_features, gen_extra = self._run_D_for_G(gen_img, gen_c)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            g_weights = self._fake_weights(gen_logits, gen_features) # [N, K], or None: mean over heads
            if couples or self.fm_weight:
                with torch.no_grad(): # D is not trained here: what it says of reals is a constant of G's loss
                    real_logits, real_features, _ = self._run_D_for_G(real_img, real_c)
            loss_Gmain = obj.g_fake(gen_logits, real_logits) if couples else obj.g_fake(gen_logits) # [N, K]
            if g_weights is not None:
                loss_Gmain = loss_Gmain * g_weights
            if couples:
                loss_Gmain = loss_Gmain.mean(0) # [K]: per-head loss
                loss_Greal = obj.g_real(real_logits, gen_logits)
                if loss_Greal is not None:
                    loss_Gmain = loss_Gmain + loss_Greal.mean(0)
            training_stats.report('Loss/G/loss', loss_Gmain)
            loss_G = loss_Gmain.mean()
            if self.fm_weight:
                loss_Gfm = feature_distance(real_features, gen_features)
                training_stats.report('Loss/G/fm', loss_Gfm)
                loss_G = loss_G + loss_Gfm * self.fm_weight
            loss_G = loss_G + self._aux_term(gen_extra, gen_c, 'Loss/G/aux') # ACGAN: G wants its class recognised
            loss_G.mul(gain).backward()

        # G: path-length regularisation on a shrunken batch. The image is projected on random directions scaled
        # by 1/sqrt(H*W) so the expected length does not depend on resolution.
        if do_Gpl:
            n = gen_z.shape[0] // self.pl_batch_shrink
            gen_img, gen_ws = self.run_G(gen_z[:n], gen_c[:n], sync=sync)
            pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
            with conv2d_gradfix.no_weight_gradients():
                pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws],
                    create_graph=True, only_inputs=True)[0]
            pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
            self.pl_mean.copy_(pl_mean.detach())
            pl_penalty = (pl_lengths - pl_mean).square()
            training_stats.report('Loss/pl_penalty', pl_penalty)
            loss_Gpl = pl_penalty * self.pl_weight
            training_stats.report('Loss/G/reg', loss_Gpl)
            # The zero term ties the output into the graph so DDP sees every parameter of G_synthesis used.
            (gen_img[:, 0, 0, 0] * 0 + loss_Gpl).mean().mul(gain).backward()

        # D: WGAN-GP, gp_weight * (|grad D(x_hat)| - 1)^2 on random interpolates of reals and fakes. It runs
        # before the main passes so its graph is gone before theirs is built; they sync DDP if they follow.
        if do_Dgp:
            n = min(real_img.shape[0], gen_z.shape[0])
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z[:n], gen_c[:n], sync=False)
            alpha = torch.rand([n, 1, 1, 1], device=gen_img.device, dtype=gen_img.dtype)
            mix_img = (real_img[:n].detach() * alpha + gen_img * (1 - alpha)).requires_grad_(True)
            # Interpolates carry the reals' labels (a conditional D scores them as those classes).
            mix_logits = self.run_D(mix_img, real_c[:n], sync=(sync and not (do_Dmain or do_Dr1)))
            with conv2d_gradfix.no_weight_gradients():
                gp_grads = torch.autograd.grad(outputs=[self._penalty_outputs(mix_logits)], inputs=[mix_img],
                    create_graph=True, only_inputs=True)[0]
            gp_norms = (_per_score(gp_grads.square().sum([1, 2, 3]), mix_logits) + 1e-8).sqrt() # eps: finite at 0
            gp_penalty = (gp_norms - 1).square()
            training_stats.report('Loss/gp_penalty', gp_penalty)
            loss_Dgp = gp_penalty * self.gp_weight
            training_stats.report('Loss/D/reg', loss_Dgp)
            (mix_logits[:, 0] * 0 + loss_Dgp).mean().mul(gain).backward()

        # D: the objective's term on fakes (for stylegan2: softplus(x)). A separable objective back-propagates it
        # at once, as upstream, which frees the fake graph before the real pass; a coupled one waits for reals.
        # R2 = |grad_x D(x)|^2 on fakes (R3GAN) shares this pass: G is not trained in D's phases, so the fakes
        # are a detached input whose gradient the penalty measures.
        loss_Dgen = 0
        loss_Dr2 = 0
        if do_Dmain or do_Dr2:
            real_pass = do_Dmain or do_Dr1
            with torch.no_grad():
                gen_img, _ = self.run_G(gen_z, gen_c, sync=False)
            gen_img = gen_img.requires_grad_(do_Dr2)
            gen_logits, gen_extra = self.run_D(gen_img, gen_c, sync=(sync and not real_pass), aux=True) # else synced by the real pass
            loss_Daux_gen = self._aux_term(gen_extra, gen_c, 'Loss/D/aux') if do_Dmain else 0
            if do_Dmain:
                training_stats.report('Loss/scores/fake', gen_logits)
                training_stats.report('Loss/signs/fake', gen_logits.sign())
            if do_Dr2:
                loss_Dr2 = self._gradient_penalty(gen_logits, gen_img, self.r2_gamma, 'r2')
            if do_Dmain and not couples:
                loss_Dgen = obj.d_fake(gen_logits)
            if not (do_Dmain and couples):
                ((gen_logits * 0 + loss_Dgen + loss_Dr2).mean() + loss_Daux_gen).mul(gain).backward()
                loss_Dr2 = loss_Daux_gen = 0

        # D: the objective's term on reals, weighted per head by the SOM neighbourhood, and/or R1 = |grad_x D(x)|^2
        # on reals, in one forward pass.
        if do_Dmain or do_Dr1:
            real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_features = None
            if self.som_bmu == 'prototype':
                real_logits, real_features, real_extra = self.run_D_features(real_img_tmp, real_c, sync=sync, aux=True)
            else:
                real_logits, real_extra = self.run_D(real_img_tmp, real_c, sync=sync, aux=True)
            training_stats.report('Loss/scores/real', real_logits)
            weights = self._real_weights(real_logits, real_features, learn=do_Dmain) # [N, K], or None with one head
            if weights is None:
                training_stats.report('Loss/signs/real', real_logits.sign()) # drives the ADA heuristic
            else:
                # Per real, the heads' signs weighted as in the loss: the heads that learn this image as real,
                # i.e. mostly its best-matching head once sigma is small. The plain mean over heads would count
                # heads that are trained to reject other heads' modes and read low; the BMU alone reads high.
                signs = (real_logits.detach().sign() * weights).sum(1) / weights.sum(1)
                training_stats.report('Loss/signs/real', signs)

            loss_Dreal = 0
            if do_Dmain:
                if couples:
                    loss_Dgen = obj.d_fake(gen_logits, real_logits)
                    loss_Dreal = obj.d_real(real_logits, gen_logits)
                else:
                    loss_Dreal = obj.d_real(real_logits)
                if weights is not None:
                    loss_Dreal = loss_Dreal * weights
                    self._report_som(self._bmu_scores(real_logits, real_features))
                if loss_Dgen.shape == loss_Dreal.shape:
                    training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)
                else:
                    training_stats.report('Loss/D/loss', loss_Dgen.mean(0) + loss_Dreal.mean(0))

            loss_Dr1 = 0
            if do_Dr1:
                loss_Dr1 = self._gradient_penalty(real_logits, real_img_tmp, self.r1_gamma, 'r1')

            loss_D = (real_logits * 0 + loss_Dreal + loss_Dr1).mean()
            if do_Dmain:
                loss_D = loss_D + self._aux_term(real_extra, real_c, 'Loss/D/aux')
            if do_Dmain and couples:
                loss_D = loss_D + (gen_logits * 0 + loss_Dgen + loss_Dr2).mean() + loss_Daux_gen
            loss_D.mul(gain).backward()

#----------------------------------------------------------------------------
