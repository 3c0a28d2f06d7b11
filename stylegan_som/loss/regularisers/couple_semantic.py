"""Soft-CoGAN's semantic coupling (--couple-semantic): a fixed classifier trained on the labelled domain (the
digit classifier for MNIST) judges both images of a pair as the same class: the symmetric KL divergence between
its class distributions of A and of B, so that both generators are pulled towards agreeing."""

import torch.nn.functional as F

from .coupling import Coupling, build_classifier, digits, split_pair

class CoupleSemantic(Coupling):
    name = 'semantic'

    def __init__(self, weight, classifier=None, device=None):
        super().__init__(weight, device)
        self.classifier = build_classifier(classifier, device, 'couple_semantic') if weight else None

    def distance(self, loss, synthesis, batch, sync):
        gen_img, _ = loss.run_G(batch.gen_z, batch.gen_c, sync=sync)
        return symmetric_kl(*(self.classifier(digits(x)) for x in split_pair(gen_img))), gen_img

def symmetric_kl(logits_a, logits_b):
    """KL(p_A || p_B) + KL(p_B || p_A) of the softmax distributions, mean over the batch."""
    log_a, log_b = F.log_softmax(logits_a.float(), 1), F.log_softmax(logits_b.float(), 1)
    return ((log_a.exp() - log_b.exp()) * (log_a - log_b)).sum(1).mean()
