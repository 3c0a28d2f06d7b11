"""Least-squares GAN on sigmoid outputs (the `lsgan-sigmoid` of MSG-GAN's code): LSGAN's targets a = 0 (fake),
b = c = 1 (real) applied to s = sigmoid(D(.)) instead of the raw logit:
D: 1/2 (s(x) - 1)^2 + 1/2 s(G(z))^2; G: 1/2 (s(G(z)) - 1)^2.
Squashing bounds every term to [0, 1/2], so a far-off logit can no longer dominate the batch as it does in the
plain LSGAN; the price is the vanishing gradient of a saturated sigmoid, as in the minimax loss."""

import torch

from .base import Objective

class LSGANSigmoid(Objective):
    def d_real(self, real_logits, fake_logits=None):
        return 0.5 * (torch.sigmoid(real_logits) - 1).square()

    def d_fake(self, fake_logits, real_logits=None):
        return 0.5 * torch.sigmoid(fake_logits).square()

    def g_fake(self, fake_logits, real_logits=None):
        return 0.5 * (torch.sigmoid(fake_logits) - 1).square()
