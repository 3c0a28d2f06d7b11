"""Frechet Inception Distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a
local Nash equilibrium"), computed on the Inception-v3 pool features like the TTUR reference code."""

import warnings

import numpy as np
import scipy.linalg

from . import metric_utils

#----------------------------------------------------------------------------

def frechet_distance(mu1, sigma1, mu2, sigma2):
    """Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    m = np.square(mu1 - mu2).sum()
    with warnings.catch_warnings(): # singular products (fewer samples than features) are fine: stay quiet like upstream
        warnings.simplefilter('ignore', scipy.linalg.LinAlgWarning)
        s = scipy.linalg.sqrtm(np.dot(sigma1, sigma2))
    # The square root of a product of covariances can pick up tiny imaginary parts from round-off; drop them.
    return float(np.real(m + np.trace(sigma1 + sigma2 - s * 2)))

def compute_fid(opts, max_real, num_gen):
    detector_url = metric_utils.INCEPTION_URL
    detector_kwargs = dict(return_features=True) # 2048-d pool features, before the logits

    mu_real, sigma_real = metric_utils.compute_feature_stats_for_dataset(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=0, capture_mean_cov=True, max_items=max_real).get_mean_cov()

    mu_gen, sigma_gen = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=1, capture_mean_cov=True, max_items=num_gen).get_mean_cov()

    if opts.rank != 0:
        return float('nan')
    return frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)

#----------------------------------------------------------------------------
