"""SoftMax GAN (Lin 2017). Over the batch B = reals + fakes, with logits as negative energies, let
p(x) = exp(D(x)) / sum_{y in B} exp(D(y)) (a softmax over the batch, per head). D's target puts mass 1/|reals|
on each real and none on fakes; G's target is uniform over B:
    L_D = -1/|reals| sum_{reals} log p(x)        L_G = -1/|B| sum_{x in B} log p(x)
so the fakes enter D's loss only through the partition function, and d_fake is 0. B is one accumulation round
on one process (like the minibatch-stddev group). A SOM weight scales each real's -log p(x)."""

import torch

from .base import Objective

def _batch_log_softmax(real_logits, fake_logits):
    # Normalise over the samples of both sets, separately for each head (dim 0 after concatenation).
    log_p = torch.cat([real_logits, fake_logits], dim=0).log_softmax(dim=0)
    return log_p[:real_logits.shape[0]], log_p[real_logits.shape[0]:]

class SoftmaxGAN(Objective):
    couples = True

    def d_real(self, real_logits, fake_logits=None):
        return -_batch_log_softmax(real_logits, fake_logits)[0]

    def d_fake(self, fake_logits, real_logits=None):
        return fake_logits.new_zeros(fake_logits.shape)

    def g_fake(self, fake_logits, real_logits=None):
        # Per-sample terms scaled so that mean over fakes + mean over reals = mean over the whole batch.
        share = fake_logits.shape[0] / (fake_logits.shape[0] + real_logits.shape[0])
        return -_batch_log_softmax(real_logits, fake_logits)[1] * share

    def g_real(self, real_logits, fake_logits):
        share = real_logits.shape[0] / (fake_logits.shape[0] + real_logits.shape[0])
        return -_batch_log_softmax(real_logits, fake_logits)[0] * share
