import os

import numpy as np
import pytest
import torch

import dnnlib
from metrics import frechet_inception_distance as fid_mod
from metrics import metric_main
from metrics import metric_utils
from . import standins

def _random_spd(rnd, n):
    a = rnd.randn(n, n)
    return a @ a.T + 0.1 * np.eye(n)

def _sqrtm_psd(s):
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

#----------------------------------------------------------------------------
# Frechet distance against closed forms.

def test_frechet_distance_1d():
    # N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2.
    d = fid_mod.frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[0.25]]))
    assert d == pytest.approx(9 + (2 - 0.5) ** 2, rel=1e-9)

def test_frechet_distance_commuting_covariances():
    # Covariances sharing eigenvectors: ||mu1 - mu2||^2 + sum (sqrt(l1) - sqrt(l2))^2.
    rnd = np.random.RandomState(0)
    q, _ = np.linalg.qr(rnd.randn(5, 5))
    l1, l2 = rnd.uniform(0.1, 3, 5), rnd.uniform(0.1, 3, 5)
    mu1, mu2 = rnd.randn(5), rnd.randn(5)
    d = fid_mod.frechet_distance(mu1, (q * l1) @ q.T, mu2, (q * l2) @ q.T)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(l1) - np.sqrt(l2)) ** 2)
    assert d == pytest.approx(expected, rel=1e-7)

def test_frechet_distance_general_covariances():
    # Symmetric form: tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), computed with eigh instead of sqrtm.
    rnd = np.random.RandomState(1)
    s1, s2 = _random_spd(rnd, 6), _random_spd(rnd, 6)
    mu1, mu2 = rnd.randn(6), rnd.randn(6)
    r1 = _sqrtm_psd(s1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * _sqrtm_psd(r1 @ s2 @ r1))
    assert fid_mod.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-7)
    assert fid_mod.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0, abs=1e-8)

#----------------------------------------------------------------------------
# FID through the metric registry, with the stand-in detector.

def _fid(G, data_dir, num):
    res = metric_main.calc_metric('fid50k_full', G=G, dataset_kwargs=dict(class_name='stylegan_som.data.images.ImageFolderDataset', path=data_dir),
        device=torch.device('cpu'), max_items=num)
    assert res.metric == 'fid50k_full' and res.num_gpus == 1 and res.max_items == num
    return res.results.fid50k_full

def test_fid_of_set_against_itself_and_shifted(tmp_path, inception_file):
    data_dir = str(tmp_path / 'data')
    images = standins.make_image_folder(data_dir, num=40, lo=32, hi=160) # headroom: brightening is a pure shift

    fids = [_fid(standins.ReplayGenerator(images, shift=s), data_dir, 40) for s in (0, 8, 24, 64)]
    assert abs(fids[0]) < 1e-6
    assert 0 < fids[1] < fids[2] < fids[3]
    # Linear features and a pure brightness shift move only the mean: FID = ||proj^T (shift / 255)||^2.
    proj = standins.StandInInception().proj.numpy().astype(np.float64)
    for s, f in zip((8, 24, 64), fids[1:]):
        shift = np.full([48], s / 255)
        assert f == pytest.approx(np.sum((shift @ proj) ** 2), rel=1e-3)

def test_dataset_stats_match_direct_features(tmp_path, inception_file):
    data_dir = str(tmp_path / 'data')
    images = standins.make_image_folder(data_dir, num=30, channels=1)
    opts = metric_utils.MetricOptions(dataset_kwargs=dict(class_name='stylegan_som.data.images.ImageFolderDataset', path=data_dir), device='cpu')
    stats = metric_utils.compute_feature_stats_for_dataset(opts, metric_utils.INCEPTION_URL, dict(return_features=True),
        batch_size=7, capture_mean_cov=True, capture_all=True, max_items=None)
    det = standins.StandInInception()
    feats = det(torch.as_tensor(images).repeat([1, 3, 1, 1]), return_features=True).double().numpy() # grey -> RGB
    mean, cov = stats.get_mean_cov()
    assert stats.num_items == 30
    np.testing.assert_allclose(stats.get_all(), feats, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, feats.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cov, np.cov(feats, rowvar=False, bias=True), rtol=1e-4, atol=1e-6)

def test_dataset_stats_cache_is_reused(tmp_path, inception_file, monkeypatch):
    data_dir = str(tmp_path / 'data')
    standins.make_image_folder(data_dir, num=12)
    kwargs = dict(class_name='stylegan_som.data.images.ImageFolderDataset', path=data_dir)
    def stats(max_items):
        opts = metric_utils.MetricOptions(dataset_kwargs=kwargs, device='cpu')
        return metric_utils.compute_feature_stats_for_dataset(opts, metric_utils.INCEPTION_URL, dict(return_features=True),
            capture_mean_cov=True, max_items=max_items)

    first = stats(None)
    cache_files = os.listdir(dnnlib.make_cache_dir_path('gan-metrics'))
    assert len(cache_files) == 1 and cache_files[0].startswith('data-inception-2015-12-05-')

    def no_detector(*args, **kwargs):
        raise AssertionError('the detector must not run when the statistics are cached')
    monkeypatch.setattr(metric_utils, 'get_feature_detector', no_detector)
    second = stats(None)
    np.testing.assert_array_equal(second.raw_cov, first.raw_cov)
    assert second.num_items == 12

    # A different item count or a different detector file is a different cache entry.
    with pytest.raises(AssertionError, match='must not run'):
        stats(5)
    other = standins.save_torchscript(standins.StandInInception(seed=5), str(tmp_path / 'other.pt'))
    monkeypatch.setenv(metric_utils.INCEPTION_ENV, other)
    with pytest.raises(AssertionError, match='must not run'):
        stats(None)

#----------------------------------------------------------------------------
