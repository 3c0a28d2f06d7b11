"""WGAN with gradient penalty (Gulrajani et al. 2017): the Wasserstein objective plus
lambda * (|grad D(x_hat)| - 1)^2 on random interpolates x_hat of reals and fakes, lambda = 10, in place of R1
(applied by the loss in D's regularisation phase, lazily like R1)."""

from .wgan import WGAN

class WGANGP(WGAN):
    defaults = dict(r1=False, path_length=True, style_mixing=True, gp_weight=10, weight_clip=0)
