import itertools

import numpy as np
import pytest
import torch

from metrics import inception_score
from metrics import kernel_inception_distance
from metrics import metric_main
from metrics import precision_recall
from . import standins

#----------------------------------------------------------------------------
# KID: the vectorised estimator against an explicit double loop.

def _kernel(x, y):
    return (np.dot(x, y) / len(x) + 1) ** 3

def _brute_force_mmd2(x, y):
    m = len(x)
    kxx = sum(_kernel(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    kyy = sum(_kernel(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    kxy = sum(_kernel(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy

def test_kid_matches_brute_force():
    rnd = np.random.RandomState(0)
    real = rnd.randn(12, 5)
    gen = rnd.randn(12, 5) * 1.3 + 0.4
    # Subsets as large as the sets are permutations, so every subset gives the full-set estimate.
    kid = kernel_inception_distance.kid_from_features(real, gen, num_subsets=3, max_subset_size=100)
    assert kid == pytest.approx(_brute_force_mmd2(gen, real), rel=1e-9)

def test_kid_subsets_average_brute_force():
    rnd = np.random.RandomState(1)
    real, gen = rnd.randn(20, 4), rnd.randn(15, 4) + 1
    np.random.seed(7)
    kid = kernel_inception_distance.kid_from_features(real, gen, num_subsets=4, max_subset_size=6)
    np.random.seed(7) # same draws: gen subset first, then real subset, per round
    expected = np.mean([_brute_force_mmd2(gen[np.random.choice(15, 6, replace=False)], real[np.random.choice(20, 6, replace=False)]) for _ in range(4)])
    assert kid == pytest.approx(expected, rel=1e-9)

def test_kid_through_registry(tmp_path, inception_file):
    data_dir = str(tmp_path / 'data')
    images = standins.make_image_folder(data_dir, num=16)
    kw = dict(dataset_kwargs=dict(class_name='stylegan_som.data.images.ImageFolderDataset', path=data_dir), device='cpu', max_items=16)
    same = metric_main.calc_metric('kid50k_full', G=standins.ReplayGenerator(images), **kw).results.kid50k_full
    far = metric_main.calc_metric('kid50k_full', G=standins.ReplayGenerator(images, shift=120), **kw).results.kid50k_full
    assert abs(same) < far / 20

#----------------------------------------------------------------------------
# Precision / recall against brute force.

def _brute_force_pr(real, gen, k):
    def coverage(manifold, probes):
        d_mm = np.sqrt(((manifold[:, None] - manifold[None]) ** 2).sum(-1))
        radius = np.sort(d_mm, axis=1)[:, k] # column 0 is the point itself
        d_pm = np.sqrt(((probes[:, None] - manifold[None]) ** 2).sum(-1))
        return float(np.mean((d_pm <= radius[None]).any(axis=1)))
    return coverage(real, gen), coverage(gen, real)

@pytest.mark.parametrize('row_batch, col_batch', [(100, 100), (7, 5)])
def test_precision_recall_matches_brute_force(row_batch, col_batch):
    rnd = np.random.RandomState(2)
    # Values on a coarse grid are exact in float16, so the half-precision pipeline sees the same points.
    real = np.round(rnd.randn(40, 3) * 4) / 4
    gen = np.round((rnd.randn(30, 3) * 1.5 + 0.8) * 4) / 4
    expected = _brute_force_pr(real.astype(np.float64), gen.astype(np.float64), k=3)
    got = precision_recall.precision_recall_from_features(torch.tensor(real, dtype=torch.float16), torch.tensor(gen, dtype=torch.float16),
        nhood_size=3, row_batch_size=row_batch, col_batch_size=col_batch)
    assert got == pytest.approx(expected, abs=1 / 40) # allow one float16 tie
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1

def test_pr_through_registry(tmp_path, vgg16_file):
    data_dir = str(tmp_path / 'data')
    images = standins.make_image_folder(data_dir, num=20)
    kw = dict(dataset_kwargs=dict(class_name='stylegan_som.data.images.ImageFolderDataset', path=data_dir), device='cpu', max_items=20)
    res = metric_main.calc_metric('pr50k3_full', G=standins.ReplayGenerator(images), **kw).results
    assert res.pr50k3_full_precision == 1 and res.pr50k3_full_recall == 1 # identical sets
    res = metric_main.calc_metric('pr50k3', G=standins.ReplayGenerator(images, shift=200), **kw).results
    assert res.pr50k3_precision < 0.5

#----------------------------------------------------------------------------
# Inception score.

def _brute_force_is(probs, splits):
    scores = []
    for part in np.array_split(probs, splits):
        py = part.mean(0)
        scores.append(np.exp(np.mean([np.sum(p * np.log(p / py)) for p in part])))
    return np.mean(scores), np.std(scores)

def test_inception_score_matches_brute_force():
    rnd = np.random.RandomState(3)
    logits = rnd.randn(50, 6) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert inception_score.inception_score_from_probs(probs, 5) == pytest.approx(_brute_force_is(probs, 5), rel=1e-9)

def test_inception_score_of_confident_balanced_classes_is_class_count():
    probs = np.full([40, 4], 1e-9)
    probs[np.arange(40), np.arange(40) % 4] = 1 - 3e-9
    mean, std = inception_score.inception_score_from_probs(probs, 2)
    assert mean == pytest.approx(4, rel=1e-5) and std < 1e-6

def test_is_through_registry(tmp_path, inception_file):
    data_dir = str(tmp_path / 'data')
    images = standins.make_image_folder(data_dir, num=20)
    res = metric_main.calc_metric('is50k', G=standins.ReplayGenerator(images), dataset_kwargs=dict(
        class_name='stylegan_som.data.images.ImageFolderDataset', path=data_dir), device='cpu', max_items=20).results
    det = standins.StandInInception()
    probs = det(torch.as_tensor(images), no_output_bias=True).double().numpy()
    assert (res.is50k_mean, res.is50k_std) == pytest.approx(_brute_force_is(probs, 10), rel=1e-4)

#----------------------------------------------------------------------------
