"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"): unbiased MMD^2 with the cubic
polynomial kernel k(x, y) = (x.y / d + 1)^3 on Inception features, averaged over random subsets."""

import numpy as np

from . import metric_utils

#----------------------------------------------------------------------------

def kid_from_features(real_features, gen_features, num_subsets, max_subset_size):
    """Average unbiased MMD^2 over `num_subsets` random equal-size subsets (global NumPy RNG, as upstream)."""
    n = real_features.shape[1]
    m = min(real_features.shape[0], gen_features.shape[0], max_subset_size)
    t = 0
    for _subset_idx in range(num_subsets):
        x = gen_features[np.random.choice(gen_features.shape[0], m, replace=False)]
        y = real_features[np.random.choice(real_features.shape[0], m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        # Within-set sums skip the diagonal (k(x, x) terms), which is what makes the estimate unbiased.
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(t / num_subsets / m)

def compute_kid(opts, max_real, num_gen, num_subsets, max_subset_size):
    detector_url = metric_utils.INCEPTION_URL
    detector_kwargs = dict(return_features=True)

    real_features = metric_utils.compute_feature_stats_for_dataset(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=0, capture_all=True, max_items=max_real).get_all()

    gen_features = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=1, capture_all=True, max_items=num_gen).get_all()

    if opts.rank != 0:
        return float('nan')
    return kid_from_features(real_features, gen_features, num_subsets, max_subset_size)

#----------------------------------------------------------------------------
