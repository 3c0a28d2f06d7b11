"""The original minimax GAN objective (Goodfellow et al. 2014): D as in the non-saturating loss, G minimises
log(1 - D(G(z))) = -softplus(D(G(z))) instead of -log D(G(z)). With D at its optimum (logit T = log p_data/p_G)
this is the Jensen-Shannon divergence, while the non-saturating G descends KL(p_G || p_data) - 2 JS, whose
reverse-KL part weighs each mode's share by how well G draws it. The price: G's gradient vanishes on fakes D
rejects with confidence (early in training, or with a strong D)."""

import torch

from .ns import NonSaturating

class Minimax(NonSaturating):
    def g_fake(self, fake_logits, real_logits=None):
        return -torch.nn.functional.softplus(fake_logits)  # log(1 - sigmoid(x))
