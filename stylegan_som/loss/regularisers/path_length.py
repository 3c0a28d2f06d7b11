"""StyleGAN2's path-length regulariser on G: (|J_w^T y| - a)^2 on a shrunken batch, y random images scaled by
1/sqrt(H*W) so the expected length does not depend on resolution, a the running mean of the lengths (state)."""

import numpy as np
import torch

from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

from ...networks import msg

class PathLength:
    side = 'G'
    where = 'pass'

    def __init__(self, weight, batch_shrink=2, decay=0.01, device=None):
        self.weight = weight
        self.batch_shrink = batch_shrink
        self.decay = decay
        self.pl_mean = torch.zeros([], device=device) # running mean of path lengths, the target of the penalty

    @property
    def active(self):
        return self.weight != 0

    def run(self, loss, batch, sync, gain):
        n = batch.gen_z.shape[0] // self.batch_shrink
        gen_pyramid, gen_ws = loss.run_G(batch.gen_z[:n], batch.gen_c[:n], sync=sync)
        gen_img = msg.final(gen_pyramid) # MSG-GAN: the lengths are the final image's
        pl_noise = torch.randn_like(gen_img) / np.sqrt(gen_img.shape[2] * gen_img.shape[3])
        with conv2d_gradfix.no_weight_gradients():
            pl_grads = torch.autograd.grad(outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True,
                only_inputs=True)[0]
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.decay)
        self.pl_mean.copy_(pl_mean.detach())
        pl_penalty = (pl_lengths - pl_mean).square()
        training_stats.report('Loss/pl_penalty', pl_penalty)
        loss_Gpl = pl_penalty * self.weight
        training_stats.report('Loss/G/reg', loss_Gpl)
        # The zero term ties the output into the graph so DDP sees every parameter of G_synthesis used.
        tie = sum(level[:, 0, 0, 0] for level in msg.levels(gen_pyramid)) * 0
        (tie + loss_Gpl).mean().mul(gain).backward()

    def state_dict(self):
        return dict(pl_mean=self.pl_mean.detach().cpu().clone())

    def load_state_dict(self, state):
        self.pl_mean.copy_(torch.as_tensor(state['pl_mean']).to(self.pl_mean.device))
