"""WGAN-GP (Gulrajani et al. 2017): weight * (|grad D(x_hat)| - 1)^2 on random interpolates x_hat of reals and
fakes, in its own pass of D's regularisation phase. The runner puts it before D's other passes so its graph is
gone before theirs is built. With MSG-GAN's pyramids every scale is interpolated with the sample's one alpha and
the norm is over all scales."""

import torch

from torch_utils import training_stats

from ...networks import msg
from .penalty import squared_grad_norms

class GradientPenalty:
    side = 'D'
    where = 'pass'

    def __init__(self, weight, device=None):
        _ = device
        self.weight = weight

    @property
    def active(self):
        return self.weight != 0

    def run(self, loss, batch, sync, gain):
        n = min(batch.real_img.shape[0], batch.gen_z.shape[0])
        with torch.no_grad():
            gen_img, _ = loss.run_G(batch.gen_z[:n], batch.gen_c[:n], sync=False)
        alpha = torch.rand([n, 1, 1, 1], device=msg.final(gen_img).device, dtype=msg.final(gen_img).dtype)
        mix_img = msg.leaves(msg.lerp(loss.reals(batch.real_img[:n].detach()), gen_img, alpha), True)
        # Interpolates carry the reals' labels (a conditional D scores them as those classes).
        mix_logits = loss.run_D(mix_img, batch.real_c[:n], sync=sync)
        gp_norms = (squared_grad_norms(mix_logits, mix_img) + 1e-8).sqrt() # eps: finite at 0
        gp_penalty = (gp_norms - 1).square()
        training_stats.report('Loss/gp_penalty', gp_penalty)
        loss_Dgp = gp_penalty * self.weight
        training_stats.report('Loss/D/reg', loss_Dgp)
        (mix_logits[:, 0] * 0 + loss_Dgp).mean().mul(gain).backward()
