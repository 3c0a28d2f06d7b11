"""Non-saturating logistic GAN (Goodfellow et al. 2014, with G's -log D trick) and nothing else: no R1, no
path-length regularisation, no style mixing. D: softplus(-D(x)) + softplus(D(G(z))); G: softplus(-D(G(z)))."""

import torch

from .base import Objective

class NonSaturating(Objective):
    defaults = dict(r1=False, path_length=False, style_mixing=False, gp_weight=0, weight_clip=0)

    def d_real(self, real_logits, fake_logits=None):
        return torch.nn.functional.softplus(-real_logits)   # -log sigmoid(x)

    def d_fake(self, fake_logits, real_logits=None):
        return torch.nn.functional.softplus(fake_logits)    # -log(1 - sigmoid(x))

    def g_fake(self, fake_logits, real_logits=None):
        return torch.nn.functional.softplus(-fake_logits)
