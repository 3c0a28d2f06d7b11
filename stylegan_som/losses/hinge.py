"""Hinge loss (Lim & Ye 2017; SNGAN, SAGAN, BigGAN). D: relu(1 - D(x)) + relu(1 + D(G(z))); G: -D(G(z)).
Keeps R1 with the config's gamma: StyleGAN2's D has no spectral normalisation to tame it otherwise."""

import torch

from .base import Objective

class Hinge(Objective):
    def d_real(self, real_logits, fake_logits=None):
        return torch.relu(1 - real_logits)

    def d_fake(self, fake_logits, real_logits=None):
        return torch.relu(1 + fake_logits)

    def g_fake(self, fake_logits, real_logits=None):
        return -fake_logits
