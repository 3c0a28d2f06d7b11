import pytest

from metrics import metric_utils
from metrics import mode_coverage
from . import standins

@pytest.fixture(autouse=True)
def isolated_metrics(tmp_path, monkeypatch):
    """Private dnnlib cache, no network, no leftover detector or classifier settings."""
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    for var in ('HTTPS_PROXY', 'HTTP_PROXY', 'https_proxy', 'http_proxy'):
        monkeypatch.setenv(var, 'http://127.0.0.1:9') # any download attempt fails at once
    for var in ('NO_PROXY', 'no_proxy', metric_utils.INCEPTION_ENV, metric_utils.VGG16_ENV,
            metric_utils.MAX_ITEMS_ENV, mode_coverage.MNIST_DIR_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(metric_utils, '_detector_files', dict())
    monkeypatch.setattr(metric_utils, '_feature_detector_cache', dict())
    monkeypatch.setattr(mode_coverage, '_mnist_dir', None)
    monkeypatch.setattr(mode_coverage, '_classifier_override', None)
    monkeypatch.setattr(mode_coverage, '_classifier_cache', dict())
    yield

@pytest.fixture
def inception_file(tmp_path, monkeypatch):
    path = standins.save_torchscript(standins.StandInInception(), str(tmp_path / 'standin-inception.pt'))
    monkeypatch.setenv(metric_utils.INCEPTION_ENV, path)
    return path

@pytest.fixture
def vgg16_file(tmp_path, monkeypatch):
    path = standins.save_torchscript(standins.StandInVGG16(), str(tmp_path / 'standin-vgg16.pt'))
    monkeypatch.setenv(metric_utils.VGG16_ENV, path)
    return path
