"""Relativistic average hinge loss (Jolicoeur-Martineau 2018). With r = D(x), f = D(G(z)) and batch means
mean(r), mean(f):
    D: relu(1 - (r - mean f)) on reals + relu(1 + (f - mean r)) on fakes
    G: relu(1 - (f - mean r)) on fakes + relu(1 + (r - mean f)) on reals
The means are over this round's batch and per head. With SOM weights, only a real sample's own term is
weighted; the averages it is compared with are plain batch means (a weighted mean would divide by the
weights' sum, which vanishes for a head that wins no samples)."""

import torch

from .base import Objective

class RelativisticAverageHinge(Objective):
    couples = True

    def d_real(self, real_logits, fake_logits=None):
        return torch.relu(1 - (real_logits - fake_logits.mean(dim=0, keepdim=True)))

    def d_fake(self, fake_logits, real_logits=None):
        return torch.relu(1 + (fake_logits - real_logits.mean(dim=0, keepdim=True)))

    def g_fake(self, fake_logits, real_logits=None):
        return torch.relu(1 - (fake_logits - real_logits.mean(dim=0, keepdim=True)))

    def g_real(self, real_logits, fake_logits):
        return torch.relu(1 + (real_logits - fake_logits.mean(dim=0, keepdim=True)))
