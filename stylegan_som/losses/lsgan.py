"""Least-squares GAN (Mao et al. 2017) with targets a = 0 (fake), b = c = 1 (real):
D: 1/2 (D(x) - 1)^2 + 1/2 D(G(z))^2; G: 1/2 (D(G(z)) - 1)^2."""

from .base import Objective

class LSGAN(Objective):
    def d_real(self, real_logits, fake_logits=None):
        return 0.5 * (real_logits - 1).square()

    def d_fake(self, fake_logits, real_logits=None):
        return 0.5 * fake_logits.square()

    def g_fake(self, fake_logits, real_logits=None):
        return 0.5 * (fake_logits - 1).square()
