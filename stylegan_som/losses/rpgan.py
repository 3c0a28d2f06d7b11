"""Relativistic pairing GAN (RpGAN; Jolicoeur-Martineau 2018, as R3GAN uses it, Huang et al. 2024). Each real x_i
is paired with the fake G(z_i) of the same batch position; with f = softplus (the non-saturating logistic f):
    D: f(D(G(z_i)) - D(x_i))        G: f(D(x_i) - D(G(z_i)))
R3GAN regularises it with zero-centred gradient penalties on reals (R1) and on fakes (R2), every step: its
ablation found lazy regularisation broke convergence on stacked MNIST and 25 Gaussians, so train.py runs D's
penalties every step with this loss unless --d-reg-interval says otherwise. No path length, no style mixing.

The pair's term is returned as D's loss on the real (so a SOM head weighs a pair by its real's neighbourhood);
D's loss on fakes is zero."""

import torch

from .base import Objective

def _pairs(a, b):
    if a.shape != b.shape:
        raise ValueError(f'rpgan pairs reals with fakes one to one: got logits {tuple(a.shape)} and {tuple(b.shape)}')
    return a - b

class RelativisticPairing(Objective):
    couples = True
    defaults = dict(r1=True, r2=True, lazy_reg=False, path_length=False, style_mixing=False, gp_weight=0, weight_clip=0)

    def d_real(self, real_logits, fake_logits=None):
        return torch.nn.functional.softplus(_pairs(fake_logits, real_logits))

    def d_fake(self, fake_logits, real_logits=None):
        return torch.zeros_like(fake_logits)

    def g_fake(self, fake_logits, real_logits=None):
        return torch.nn.functional.softplus(_pairs(real_logits, fake_logits))
