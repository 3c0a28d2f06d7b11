"""Training losses. A loss is built from keyword arguments by class name (`loss_kwargs.class_name`) and receives
the (possibly DDP-wrapped) networks; the training loop only calls `accumulate_gradients()` once per phase and
round, so a new objective is one new class here and never an edit to the loop."""

import numpy as np
import torch

from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

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

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f'{type(self).__name__} has no state to restore, got keys {sorted(state)}')

#----------------------------------------------------------------------------

class StyleGAN2Loss(Loss):
    """Non-saturating logistic loss with style mixing, lazy R1 on reals and path-length regularisation,
    with StyleGAN2-ADA's arguments and numerics."""

    def __init__(self, device, G_mapping, G_synthesis, D, augment_pipe=None, style_mixing_prob=0.9, r1_gamma=10,
            pl_batch_shrink=2, pl_decay=0.01, pl_weight=2):
        super().__init__()
        self.device = device
        self.G_mapping = G_mapping
        self.G_synthesis = G_synthesis
        self.D = D
        self.augment_pipe = augment_pipe
        self.style_mixing_prob = style_mixing_prob
        self.r1_gamma = r1_gamma
        self.pl_batch_shrink = pl_batch_shrink
        self.pl_decay = pl_decay
        self.pl_weight = pl_weight
        self.pl_mean = torch.zeros([], device=device) # running mean of path lengths, the target of the pl penalty

    def state_dict(self):
        return dict(pl_mean=self.pl_mean.detach().cpu().clone())

    def load_state_dict(self, state):
        self.pl_mean.copy_(torch.as_tensor(state['pl_mean']).to(self.pl_mean.device))

    def run_G(self, z, c, sync):
        with misc.ddp_sync(self.G_mapping, sync):
            ws = self.G_mapping(z, c)
            if self.style_mixing_prob > 0:
                # One crossover layer for the whole batch; with probability 1 - style_mixing_prob it is past the
                # last layer, i.e. no mixing. Drawn on-device so there is no host sync.
                num_ws = ws.shape[1]
                cutoff = torch.empty([], dtype=torch.int64, device=ws.device).random_(1, num_ws)
                mix = torch.rand([], device=ws.device) < self.style_mixing_prob
                cutoff = torch.where(mix, cutoff, torch.full_like(cutoff, num_ws))
                ws2 = self.G_mapping(torch.randn_like(z), c, skip_w_avg_update=True)
                ws[:, cutoff:] = ws2[:, cutoff:]
        with misc.ddp_sync(self.G_synthesis, sync):
            img = self.G_synthesis(ws)
        return img, ws

    def run_D(self, img, c, sync):
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        with misc.ddp_sync(self.D, sync):
            logits = self.D(img, c)
        return logits

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        if phase not in ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth'):
            raise ValueError(f'unknown training phase {phase!r}')
        do_Gmain = phase in ('Gmain', 'Gboth')
        do_Dmain = phase in ('Dmain', 'Dboth')
        do_Gpl = phase in ('Greg', 'Gboth') and self.pl_weight != 0
        do_Dr1 = phase in ('Dreg', 'Dboth') and self.r1_gamma != 0

        # G: push D's logits for fakes up; softplus(-x) = -log(sigmoid(x)).
        if do_Gmain:
            gen_img, _ = self.run_G(gen_z, gen_c, sync=(sync and not do_Gpl)) # the pl pass syncs G if it follows
            gen_logits = self.run_D(gen_img, gen_c, sync=False)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Gmain = torch.nn.functional.softplus(-gen_logits)
            training_stats.report('Loss/G/loss', loss_Gmain)
            loss_Gmain.mean().mul(gain).backward()

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

        # D: push logits for fakes down; softplus(x) = -log(1 - sigmoid(x)).
        loss_Dgen = 0
        if do_Dmain:
            gen_img, _ = self.run_G(gen_z, gen_c, sync=False)
            gen_logits = self.run_D(gen_img, gen_c, sync=False) # synced by the real pass below
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Dgen = torch.nn.functional.softplus(gen_logits)
            loss_Dgen.mean().mul(gain).backward()

        # D: push logits for reals up, and/or R1 = |grad_x D(x)|^2 on reals, in one forward pass.
        if do_Dmain or do_Dr1:
            real_img_tmp = real_img.detach().requires_grad_(do_Dr1)
            real_logits = self.run_D(real_img_tmp, real_c, sync=sync)
            training_stats.report('Loss/scores/real', real_logits)
            training_stats.report('Loss/signs/real', real_logits.sign()) # drives the ADA heuristic

            loss_Dreal = 0
            if do_Dmain:
                loss_Dreal = torch.nn.functional.softplus(-real_logits)
                training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal)

            loss_Dr1 = 0
            if do_Dr1:
                with conv2d_gradfix.no_weight_gradients():
                    r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp],
                        create_graph=True, only_inputs=True)[0]
                r1_penalty = r1_grads.square().sum([1, 2, 3])
                loss_Dr1 = r1_penalty * (self.r1_gamma / 2)
                training_stats.report('Loss/r1_penalty', r1_penalty)
                training_stats.report('Loss/D/reg', loss_Dr1)

            (real_logits * 0 + loss_Dreal + loss_Dr1).mean().mul(gain).backward()

#----------------------------------------------------------------------------
