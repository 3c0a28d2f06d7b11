import colorsys
import json
import os
import zipfile

import numpy as np
import pytest

import dnnlib
from stylegan_som.data import builtin as db
from stylegan_som.data import dataset_kwargs_from_data
from stylegan_som.data.images import ImageFolderDataset

@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', str(tmp_path / 'cache'))

#----------------------------------------------------------------------------
# discs8: the drawing.

def test_discs8_palette():
    pal = db.DISCS8_PALETTE.astype(np.float64)
    assert pal.shape == (8, 3) and len(db.DISCS8_CLASSES) == 8
    for k, rgb in enumerate(pal / 255):
        h, s, v = colorsys.rgb_to_hsv(*rgb)
        assert s == 1 and v == 1 and h * 360 == pytest.approx(45 * k, abs=0.5)
    dist = np.sqrt(np.square(pal[:, None] - pal[None]).sum(-1)) + np.eye(8) * 1e9
    assert dist.min() > 140 # well separated: the metric's colour tolerance (48) is far below half of this

def test_discs8_images_are_jittered_discs():
    labels = np.arange(200) % 8
    images = db.discs8_images(labels)
    assert images.shape == (200, 32, 32, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, db.discs8_images(labels)) # deterministic
    assert not np.array_equal(images, db.discs8_images(labels, seed=1))
    assert not np.array_equal(images[0], images[8]) # same mode, different draws

    peak = images.max(axis=3).astype(np.float64)
    inside = peak >= 128
    yy, xx = np.mgrid[:32, :32]
    for img, mask, label in zip(images, inside, labels):
        area = mask.sum()
        assert np.pi * 5.5 ** 2 < area < np.pi * 9.5 ** 2 # radius in [6, 9]
        cy, cx = yy[mask].mean(), xx[mask].mean()
        assert abs(cy - 15.5) <= 3.2 and abs(cx - 15.5) <= 3.2 # centre jitter up to 3 px
        core = img[int(round(cy)), int(round(cx))]
        np.testing.assert_array_equal(core, db.DISCS8_PALETTE[label])
        assert img[0, 0].max() == 0 and img[-1, -1].max() == 0 # black background
    # Soft edge: some pixels are strictly between background and full colour.
    assert ((peak > 0) & (peak < 255)).sum(axis=(1, 2)).min() > 10

def test_discs8_labels_balanced_and_shuffled():
    labels = db.discs8_labels()
    assert len(labels) == 8000 and np.bincount(labels).tolist() == [1000] * 8
    assert not np.array_equal(labels, np.arange(8000) % 8)
    np.testing.assert_array_equal(labels, db.discs8_labels())

#----------------------------------------------------------------------------
# discs8: the cached zip.

def test_discs8_is_written_once_and_loads(monkeypatch, capsys):
    path = db.BUILTIN['discs8'](verbose=True)
    assert path == db.discs8_cache_path() and os.path.isfile(path)
    assert f'discs8-v{db.DISCS8_VERSION}' in path and 'discs8' in capsys.readouterr().out
    assert not [f for f in os.listdir(os.path.dirname(path)) if f != 'discs8.zip'] # no temporary leftovers

    with zipfile.ZipFile(path) as z:
        names = sorted(n for n in z.namelist() if n.endswith('.png'))
        assert len(names) == 8000 and names[0] == '00000/img00000000.png' and names[-1] == '00007/img00007999.png'
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
        meta = json.loads(z.read('dataset.json'))
    assert meta['class_names'] == db.DISCS8_CLASSES
    assert [label for _name, label in meta['labels']] == db.discs8_labels().tolist()

    # Through train.py's --data hook, with labels for --cond=1.
    kwargs, name = dataset_kwargs_from_data('discs8', require_labels=True, verbose=False)
    assert name == 'discs8' and kwargs.path == path and kwargs.use_labels and kwargs.max_size == 8000
    assert kwargs.resolution == 32
    ds = ImageFolderDataset(path=path, use_labels=True)
    try:
        expected = db.discs8_images(db.discs8_labels())
        for idx in (0, 1, 4321, 7999):
            image, label = ds[idx]
            np.testing.assert_array_equal(image, expected[idx].transpose(2, 0, 1))
            assert label.argmax() == db.discs8_labels()[idx] and label.shape == (8,)
        assert ds.class_names == db.DISCS8_CLASSES
    finally:
        ds.close()

    # Second use: read from the cache, not drawn again.
    monkeypatch.setattr(db, 'write_discs8', lambda *a, **k: pytest.fail('drawn again despite the cache'))
    assert db.discs8_path(verbose=False) == path

def test_discs8_new_version_is_drawn_again(monkeypatch):
    calls = []
    real = db.write_discs8
    def small(dest, **kwargs):
        calls.append(dest)
        real(dest, per_mode=2)
    monkeypatch.setattr(db, 'write_discs8', small)
    first = db.discs8_path(verbose=False)
    monkeypatch.setattr(db, 'DISCS8_VERSION', db.DISCS8_VERSION + 1)
    second = db.discs8_path(verbose=False)
    assert first != second and calls == [first, second] and os.path.isfile(first) and os.path.isfile(second)

def test_discs8_failed_write_leaves_nothing(monkeypatch):
    def broken(labels, seed=0):
        images = np.zeros([len(labels), 32, 32, 3], dtype=np.uint8)
        return [images[0], images[1], None] # fails on the third image
    monkeypatch.setattr(db, 'discs8_images', broken)
    with pytest.raises(Exception):
        db.discs8_path(verbose=False)
    folder = os.path.dirname(db.discs8_cache_path())
    assert not os.path.exists(db.discs8_cache_path()) and os.listdir(folder) == []

#----------------------------------------------------------------------------
# MNIST, Fashion-MNIST and stacked MNIST (fetched through file:// URLs from the local MNIST copy; no network).

import gzip
import shutil

MNIST_DIR = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'shared', 'data', 'mnist') # beside the checkout
needs_mnist = pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason='no local MNIST files (shared/data/mnist)')

def _file_url(path):
    return 'file://' + os.path.abspath(path)

@needs_mnist
def test_mnist_fetched_once_through_file_url_and_loads(monkeypatch):
    monkeypatch.setenv('STYLEGAN_SOM_MNIST_URL', _file_url(MNIST_DIR))
    path = db.mnist_path(verbose=False)
    assert path == db.idx_dataset_dir('mnist')
    assert sorted(os.listdir(path)) == sorted(db.IDX_FILES)
    monkeypatch.setenv('STYLEGAN_SOM_MNIST_URL', 'file:///nonexistent') # cached now: no second fetch
    assert db.mnist_path(verbose=False) == path
    kwargs, name = dataset_kwargs_from_data('mnist', check=False, verbose=False)
    assert name == 'mnist' and kwargs.resolution == 32 and kwargs.max_size == 60000 and kwargs.use_labels

@needs_mnist
def test_mnist_checksums_accept_a_regzipped_copy(tmp_path):
    # A mirror may recompress: the .gz bytes differ, the content does not.
    src = os.path.join(MNIST_DIR, 't10k-labels-idx1-ubyte.gz')
    copy = tmp_path / 't10k-labels-idx1-ubyte.gz'
    with gzip.open(src, 'rb') as f, gzip.GzipFile(str(copy), 'wb', mtime=12345) as g:
        g.write(f.read())
    md5s = db.IDX_DATASETS['mnist'].md5['t10k-labels-idx1-ubyte.gz']
    assert db.idx_file_ok(src, md5s) and db.idx_file_ok(str(copy), md5s)
    assert not db.idx_file_ok(str(copy), (md5s[0], None)) # the .gz md5 alone would reject it
    with gzip.GzipFile(str(copy), 'wb') as g:
        g.write(b'\0\0\x08\x01\0\0\0\x01\x07')
    assert not db.idx_file_ok(str(copy), md5s)

@needs_mnist
def test_mnist_bad_download_is_not_kept(monkeypatch, tmp_path):
    mirror = tmp_path / 'mirror'
    shutil.copytree(MNIST_DIR, mirror)
    os.chmod(mirror, 0o755)
    bad = mirror / 'train-labels-idx1-ubyte.gz'
    os.chmod(bad, 0o644)
    bad.write_bytes(gzip.compress(b'not mnist'))
    monkeypatch.setenv('STYLEGAN_SOM_MNIST_URL', _file_url(mirror))
    with pytest.raises(db.DatasetError, match='train-labels-idx1-ubyte.gz.*checksum'):
        db.mnist_path(verbose=False)
    assert not os.path.exists(os.path.join(db.idx_dataset_dir('mnist'), 'train-labels-idx1-ubyte.gz'))
    assert not [f for f in os.listdir(db.idx_dataset_dir('mnist')) if '.part' in f]

def test_fashion_mnist_offline_error_names_the_way_out(monkeypatch):
    monkeypatch.setenv('STYLEGAN_SOM_FASHION_MNIST_URL', 'file:///nonexistent/fashion')
    with pytest.raises(db.DatasetError, match='(?s)fashion-mnist.*--data'):
        db.fashion_mnist_path(verbose=False)
    import train
    with pytest.raises(train.UserError, match='^--data: Could not download fashion-mnist'): # one usage error
        train.init_dataset_kwargs('fashion-mnist')

@needs_mnist
def test_fashion_mnist_checks_its_own_checksums(monkeypatch):
    # MNIST's files are not Fashion-MNIST's: fetched from the wrong folder, they are refused.
    monkeypatch.setenv('STYLEGAN_SOM_FASHION_MNIST_URL', MNIST_DIR) # a plain folder works as a source too
    with pytest.raises(db.DatasetError, match='checksum'):
        db.fashion_mnist_path(verbose=False)

def test_stacked_mnist_images_and_labels():
    digits = (np.arange(5)[:, None, None] * np.ones([5, 28, 28])).astype(np.uint8) # digit i is filled with i
    labels = np.array([3, 1, 4, 1, 5])
    picks = np.array([[0, 1, 2], [4, 4, 3]])
    images, triples = db.stacked_mnist_images(digits, labels, picks)
    assert images.shape == (2, 28, 28, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0, 5, 7], [0, 1, 2]) # channel c holds digit picks[n, c]
    np.testing.assert_array_equal(images[1, 0, 0], [4, 4, 3])
    assert triples.tolist() == [314, 551]
    a, b = db.stacked_mnist_digits(60000, 10), db.stacked_mnist_digits(60000, 10)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (10, 3) and a.max() < 60000

@needs_mnist
def test_stacked_mnist_built_once_from_fetched_mnist(monkeypatch):
    monkeypatch.setenv('STYLEGAN_SOM_MNIST_URL', _file_url(MNIST_DIR))
    monkeypatch.setattr(db, 'STACKED_MNIST_SIZE', 40)
    path = db.stacked_mnist_path(verbose=False)
    assert path == db.stacked_mnist_cache_path() and os.path.isfile(path)
    ds = ImageFolderDataset(path=path, use_labels=True)
    assert len(ds) == 40 and ds.image_shape == [3, 28, 28] and ds.label_shape == [max(ds._get_raw_labels()) + 1]
    # The label is the triple of the digits' MNIST labels, as the metric's classifier would read them.
    from metrics import mode_coverage
    _, mnist_labels = mode_coverage.load_mnist(MNIST_DIR, 'train')
    picks = db.stacked_mnist_digits(len(mnist_labels), 40)
    expected = mnist_labels[picks[:, 0]] * 100 + mnist_labels[picks[:, 1]] * 10 + mnist_labels[picks[:, 2]]
    np.testing.assert_array_equal(ds._get_raw_labels(), expected)
    # 28x28 is not a power of two: allowed for the small backbones only.
    with pytest.raises(db.DatasetError, match='power-of-two'):
        dataset_kwargs_from_data('stacked-mnist', verbose=False)
    kwargs, name = dataset_kwargs_from_data('stacked-mnist', verbose=False, require_pow2=False)
    assert name == 'stacked-mnist' and kwargs.resolution == 28
    ds.close()

#----------------------------------------------------------------------------
