"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs"): exp(E_x KL(p(y|x) || p(y)))
over `num_splits` splits, with the softmax taken without the output bias like the original TensorFlow code."""

import numpy as np

from . import metric_utils

#----------------------------------------------------------------------------

def inception_score_from_probs(probs, num_splits):
    """(mean, std) of the per-split scores of class probabilities `probs` [N, classes]."""
    num = probs.shape[0]
    scores = []
    for i in range(num_splits):
        part = probs[i * num // num_splits : (i + 1) * num // num_splits]
        kl = part * (np.log(part) - np.log(np.mean(part, axis=0, keepdims=True)))
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return float(np.mean(scores)), float(np.std(scores))

def compute_is(opts, num_gen, num_splits):
    detector_url = metric_utils.INCEPTION_URL
    detector_kwargs = dict(no_output_bias=True)

    gen_probs = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        capture_all=True, max_items=num_gen).get_all()

    if opts.rank != 0:
        return float('nan'), float('nan')
    return inception_score_from_probs(gen_probs, min(num_splits, gen_probs.shape[0]))

#----------------------------------------------------------------------------
