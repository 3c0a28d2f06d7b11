import hashlib
import os

import numpy as np
import pytest
import torch

import dnnlib
from metrics import metric_utils
from . import standins

URL = metric_utils.INCEPTION_URL

def _cache_path(url):
    return os.path.join(dnnlib.make_cache_dir_path('downloads'), hashlib.md5(url.encode()).hexdigest() + '_' + url.split('/')[-1])

#----------------------------------------------------------------------------
# Where detectors come from.

def test_offline_error_says_every_way_out():
    with pytest.raises(metric_utils.DetectorUnavailableError) as info:
        metric_utils.get_feature_detector(URL)
    msg = str(info.value)
    for part in (URL, _cache_path(URL), '--inception=PATH', metric_utils.INCEPTION_ENV):
        assert part in msg
    assert '\n' not in msg

def test_file_in_dnnlib_cache_serves_offline(tmp_path):
    os.makedirs(os.path.dirname(_cache_path(URL)))
    standins.save_torchscript(standins.StandInInception(), _cache_path(URL))
    det = metric_utils.get_feature_detector(URL)
    assert det(torch.zeros([2, 3, 8, 8], dtype=torch.uint8), return_features=True).shape == (2, 16)

def test_env_var_and_flag_override(tmp_path, monkeypatch):
    env_file = standins.save_torchscript(standins.StandInInception(num_features=5), str(tmp_path / 'env.pt'))
    flag_file = standins.save_torchscript(standins.StandInInception(num_features=7), str(tmp_path / 'flag.pt'))
    img = torch.zeros([1, 3, 8, 8], dtype=torch.uint8)
    monkeypatch.setenv(metric_utils.INCEPTION_ENV, env_file)
    assert metric_utils.get_feature_detector(URL)(img, return_features=True).shape[1] == 5
    metric_utils.set_detector_file(URL, flag_file) # the flag wins over the variable
    assert metric_utils.get_feature_detector(URL)(img, return_features=True).shape[1] == 7
    metric_utils.set_detector_file(URL, 'file://' + env_file) # file:// URLs work too
    assert metric_utils.get_feature_detector(URL)(img, return_features=True).shape[1] == 5

def test_bad_override_files(tmp_path, monkeypatch):
    monkeypatch.setenv(metric_utils.VGG16_ENV, str(tmp_path / 'missing.pt'))
    with pytest.raises(metric_utils.DetectorUnavailableError, match=r'VGG16.*\$SGSOM_VGG16.*missing\.pt'):
        metric_utils.get_feature_detector(metric_utils.VGG16_URL)
    junk = tmp_path / 'junk.pt'
    junk.write_bytes(b'not a model')
    monkeypatch.setenv(metric_utils.VGG16_ENV, str(junk))
    with pytest.raises(metric_utils.DetectorUnavailableError, match='Not a TorchScript.*junk.pt'):
        metric_utils.get_feature_detector(metric_utils.VGG16_URL)

#----------------------------------------------------------------------------
# Options, statistics, progress.

def test_metric_options_defaults_and_cap(monkeypatch):
    opts = metric_utils.MetricOptions()
    assert opts.device.type == ('cuda' if torch.cuda.is_available() else 'cpu')
    assert opts.max_items is None and metric_utils.capped(opts, 50000) == 50000 and metric_utils.capped(opts, None) is None
    monkeypatch.setenv(metric_utils.MAX_ITEMS_ENV, '32')
    opts = metric_utils.MetricOptions(device='cpu')
    assert metric_utils.capped(opts, 50000) == 32 and metric_utils.capped(opts, None) == 32 and metric_utils.capped(opts, 10) == 10
    monkeypatch.setenv(metric_utils.MAX_ITEMS_ENV, 'lots')
    with pytest.raises(ValueError, match=metric_utils.MAX_ITEMS_ENV):
        metric_utils.MetricOptions(device='cpu')

def test_feature_stats_accumulate_save_load(tmp_path):
    rnd = np.random.RandomState(0)
    x = rnd.randn(25, 4).astype(np.float32)
    stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True, max_items=20)
    for chunk in np.array_split(x, 4):
        stats.append(chunk)
    assert stats.is_full() and stats.num_items == 20
    mean, cov = stats.get_mean_cov()
    np.testing.assert_allclose(mean, x[:20].mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(cov, np.cov(x[:20], rowvar=False, bias=True), rtol=1e-5, atol=1e-6)
    stats.save(str(tmp_path / 's.pkl'))
    loaded = metric_utils.FeatureStats.load(str(tmp_path / 's.pkl'))
    np.testing.assert_array_equal(loaded.get_all(), x[:20])
    assert sorted(vars(loaded)) == sorted(['capture_all', 'capture_mean_cov', 'max_items', 'num_items', 'num_features',
        'all_features', 'raw_mean', 'raw_cov']) # upstream's layout, so cache files are interchangeable

def test_progress_monitor_reports(capsys):
    calls = []
    root = metric_utils.ProgressMonitor(verbose=True, progress_fn=lambda cur, total: calls.append((cur, total)))
    sub = root.sub(tag='dataset features', num_items=10, rel_lo=0.5, rel_hi=1)
    sub.update(10)
    assert 'dataset features' in capsys.readouterr().out
    assert calls[-1] == (1000, 1000) and calls[-2] == (500, 1000)

def test_generator_without_label_input(tmp_path, inception_file):
    # SOMGAN-style G: forward(z) only, no c_dim.
    class NoLabelG(torch.nn.Module):
        z_dim = 3
        def forward(self, z, **kwargs):
            return z.mean(1).reshape(-1, 1, 1, 1).expand(-1, 3, 8, 8) * 0 + 0.5
    opts = metric_utils.MetricOptions(G=NoLabelG(), device='cpu')
    stats = metric_utils.compute_feature_stats_for_generator(opts, metric_utils.INCEPTION_URL, dict(return_features=True),
        capture_all=True, max_items=6, batch_size=4, batch_gen=2)
    feats = stats.get_all()
    assert feats.shape == (6, 16)
    expected = standins.StandInInception()(torch.full([1, 3, 8, 8], 191, dtype=torch.uint8), return_features=True).numpy()
    np.testing.assert_allclose(feats, np.repeat(expected, 6, 0), rtol=1e-5)

#----------------------------------------------------------------------------
