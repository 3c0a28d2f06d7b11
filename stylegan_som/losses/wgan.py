"""Wasserstein GAN with weight clipping (Arjovsky et al. 2017). D (the critic): -D(x) + D(G(z)); G: -D(G(z)).
After every D step all of D's parameters are clamped to [-0.01, 0.01]; no R1. Note that StyleGAN2 layers scale
their stored weights at run time (equalised learning rate), so the clamp applies to the stored values."""

from .base import Objective

class WGAN(Objective):
    defaults = dict(r1=False, path_length=True, style_mixing=True, gp_weight=0, weight_clip=0.01)

    def d_real(self, real_logits, fake_logits=None):
        return -real_logits

    def d_fake(self, fake_logits, real_logits=None):
        return fake_logits

    def g_fake(self, fake_logits, real_logits=None):
        return -fake_logits
