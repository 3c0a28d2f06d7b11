import gzip
import hashlib
import io
import json
import os
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import PIL.Image
import pytest

import dnnlib
from stylegan_som import data as data_pkg
from stylegan_som.data import builtin as datasets_builtin
from stylegan_som.data import DatasetError, dataset_kwargs_from_data
from stylegan_som.data.images import ImageFolderDataset

DATA = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'shared', 'data')
CIFAR_JPEG = os.path.join(DATA, 'cifar10-jpeg', 'cifar10-jpeg-q75.tar.gz')
MNIST = os.path.join(DATA, 'mnist')

@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    # Tar indexes and the built-in CIFAR-10 go to a private cache, never the user's.
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', str(tmp_path / 'cache'))
    for var in (datasets_builtin.URL_ENV, datasets_builtin.MD5_ENV):
        monkeypatch.delenv(var, raising=False)

def _write_images(root, num=6, res=4, mode='RGB', seed=0):
    rnd = np.random.RandomState(seed)
    shape = [num, res, res, 3] if mode == 'RGB' else [num, res, res]
    images = rnd.randint(0, 256, shape).astype(np.uint8)
    os.makedirs(os.path.join(root, 'sub'), exist_ok=True)
    names = []
    for i, img in enumerate(images):
        names.append(f'sub/{i:03d}.png' if i % 2 else f'{i:03d}.png') # nested folders are walked
        PIL.Image.fromarray(img, mode).save(os.path.join(root, names[-1]))
    with open(os.path.join(root, 'notes.txt'), 'w') as f:
        f.write('not an image')
    order = np.argsort(names) # the dataset lists files sorted by relative path
    return [names[i] for i in order], images[order]

def _class_tree(root, classes=('dog', 'cat', 'ant'), per_class=2, res=4, seed=1):
    """train/<class>/*.png and test/<class>/*.png. Returns the train images in the expected dataset order and labels."""
    rnd = np.random.RandomState(seed)
    expected = []
    for split in ('train', 'test'):
        for c in classes:
            os.makedirs(os.path.join(root, split, c))
            for i in range(per_class):
                img = rnd.randint(0, 256, [res, res, 3]).astype(np.uint8)
                PIL.Image.fromarray(img).save(os.path.join(root, split, c, f'{i}.png'))
                if split == 'train':
                    expected.append((f'{c}/{i}.png', sorted(classes).index(c), img))
    expected.sort(key=lambda e: e[0])
    return [e[2] for e in expected], [e[1] for e in expected]

def _check_items(ds, images, labels=None, prefix=False):
    assert len(ds) >= len(images) if prefix else len(ds) == len(images)
    for i, img in enumerate(images):
        got, label = ds[i]
        np.testing.assert_array_equal(got, img.transpose(2, 0, 1))
        if labels is not None:
            assert np.argmax(label) == labels[i] and label.sum() == 1

#----------------------------------------------------------------------------
# Folders and zips (upstream's formats).

def test_folder_items_and_properties(tmp_path):
    names, images = _write_images(str(tmp_path / 'imgs'))
    ds = ImageFolderDataset(str(tmp_path / 'imgs'))
    assert len(ds) == 6 and ds.name == 'imgs' and ds.image_shape == [3, 4, 4]
    assert ds.num_channels == 3 and ds.resolution == 4
    assert ds.label_shape == [0] and ds.label_dim == 0 and not ds.has_labels
    _check_items(ds, images)
    assert ds[0][1].shape == (0,)
    assert ds.item_name(1).startswith(names[1])

def test_greyscale_is_one_channel(tmp_path):
    _names, images = _write_images(str(tmp_path / 'g'), mode='L')
    ds = ImageFolderDataset(str(tmp_path / 'g'))
    assert ds.image_shape == [1, 4, 4]
    np.testing.assert_array_equal(ds[2][0][0], images[2])

def test_palette_images_become_rgb(tmp_path):
    img = np.random.RandomState(0).randint(0, 256, [4, 4, 3]).astype(np.uint8)
    os.makedirs(tmp_path / 'p')
    pal = PIL.Image.fromarray(img).quantize(colors=8)
    pal.save(tmp_path / 'p' / 'a.png')
    ds = ImageFolderDataset(str(tmp_path / 'p'))
    np.testing.assert_array_equal(ds[0][0], np.asarray(pal.convert('RGB')).transpose(2, 0, 1))

def test_zip_with_labels_xflip_and_max_size(tmp_path):
    names, images = _write_images(str(tmp_path / 'src'))
    zpath = str(tmp_path / 'data.zip')
    with zipfile.ZipFile(zpath, 'w') as z:
        for n in names:
            z.write(os.path.join(tmp_path, 'src', n), n)
        z.writestr('dataset.json', json.dumps(dict(labels=[[n, i % 3] for i, n in enumerate(names)])))
    ds = ImageFolderDataset(zpath, use_labels=True, xflip=True)
    assert len(ds) == 12 and ds.has_labels and ds.label_dim == 3 and ds.has_onehot_labels
    np.testing.assert_array_equal(ds[4][1], [0, 1, 0])
    np.testing.assert_array_equal(ds[6 + 4][0], images[4].transpose(2, 0, 1)[:, :, ::-1])
    assert ds.get_details(10).xflip and ds.get_details(10).raw_idx == 4 and ds.get_details(10).raw_label == 1
    # Without use_labels the labels are empty, as upstream.
    assert ImageFolderDataset(zpath).label_dim == 0

    sub = ImageFolderDataset(zpath, max_size=4, random_seed=3)
    idx = [sub.get_details(i).raw_idx for i in range(len(sub))]
    assert len(idx) == 4 and idx == sorted(idx)
    expected = np.arange(6)
    np.random.RandomState(3).shuffle(expected)
    assert idx == sorted(expected[:4]) # same subset as upstream's Dataset for the same seed

def test_vector_labels_from_dataset_json(tmp_path):
    names, _images = _write_images(str(tmp_path / 'v'), num=3)
    with open(tmp_path / 'v' / 'dataset.json', 'w') as f:
        json.dump(dict(labels=[[n, [i, 0.5]] for i, n in enumerate(names)]), f)
    ds = ImageFolderDataset(str(tmp_path / 'v'), use_labels=True)
    assert ds.label_shape == [2] and not ds.has_onehot_labels
    np.testing.assert_allclose(ds[2][1], [2, 0.5])

def test_class_folders_use_train_split(tmp_path):
    images, labels = _class_tree(str(tmp_path / 'tree'))
    ds = ImageFolderDataset(str(tmp_path / 'tree'), use_labels=True)
    assert ds.class_names == ['ant', 'cat', 'dog'] and ds.label_dim == 3
    _check_items(ds, images, labels) # test/ is left out
    # Pointing at a split folder directly works the same way.
    test_images = [np.asarray(PIL.Image.open(tmp_path / 'tree' / 'test' / c / f'{i}.png'))
        for c in ('ant', 'cat', 'dog') for i in range(2)]
    _check_items(ImageFolderDataset(str(tmp_path / 'tree' / 'test'), use_labels=True), test_images, [0, 0, 1, 1, 2, 2])

def test_zip_in_a_wrapping_folder_has_class_labels(tmp_path):
    images, labels = _class_tree(str(tmp_path / 'tree'))
    zpath = str(tmp_path / 'wrapped.zip')
    with zipfile.ZipFile(zpath, 'w') as z:
        for root, _dirs, files in os.walk(tmp_path / 'tree' / 'train'):
            for f in files:
                full = os.path.join(root, f)
                z.write(full, 'mydata/' + os.path.relpath(full, tmp_path / 'tree' / 'train'))
        z.writestr('__MACOSX/mydata/._junk.png', b'not an image') # resource forks are skipped
    ds = ImageFolderDataset(zpath, use_labels=True)
    assert ds.name == 'wrapped'
    _check_items(ds, images, labels)

def test_single_folder_is_not_a_class(tmp_path):
    _write_images(str(tmp_path / 'one' / 'only'))
    os.remove(tmp_path / 'one' / 'only' / 'notes.txt')
    for f in os.listdir(tmp_path / 'one' / 'only'):
        if f.endswith('.png'):
            os.replace(tmp_path / 'one' / 'only' / f, tmp_path / 'one' / 'only' / 'sub' / f)
    assert not ImageFolderDataset(str(tmp_path / 'one'), use_labels=True).has_labels

#----------------------------------------------------------------------------
# Tars: read by offset, compressed ones decompressed once into the cache.

@pytest.mark.parametrize('ext,mode', [('.tar', 'w'), ('.tar.gz', 'w:gz'), ('.tgz', 'w:gz'), ('.tar.xz', 'w:xz')])
def test_tar_of_class_tree(tmp_path, ext, mode):
    images, labels = _class_tree(str(tmp_path / 'tree'))
    tpath = str(tmp_path / f'pets{ext}')
    with tarfile.open(tpath, mode) as tar:
        tar.add(str(tmp_path / 'tree'), arcname='.') # members named ./train/..., like the shared CIFAR tar
    ds = ImageFolderDataset(tpath, use_labels=True)
    assert ds.name == 'pets' and ds.class_names == ['ant', 'cat', 'dog']
    _check_items(ds, images, labels)

    cached = os.listdir(dnnlib.make_cache_dir_path('datasets', 'tar'))
    assert len([f for f in cached if f.endswith('.tar')]) == (0 if ext == '.tar' else 1)
    # A second open uses the cached index (and decompressed copy) and reads the same images.
    stamps = {f: os.stat(dnnlib.make_cache_dir_path('datasets', 'tar', f)).st_mtime_ns for f in cached}
    again = pickle.loads(pickle.dumps(ImageFolderDataset(tpath, use_labels=True)))
    _check_items(again, images, labels)
    assert stamps == {f: os.stat(dnnlib.make_cache_dir_path('datasets', 'tar', f)).st_mtime_ns for f in cached}
    # A handle inherited over fork() shares its file position with the parent: another process reopens it.
    handle = again._source._handle
    again._source._pid = -1
    _check_items(again, images, labels)
    assert again._source._handle is not handle and again._source._pid == os.getpid()

def test_check_of_an_archive_is_remembered(tmp_path):
    names, _images = _write_images(str(tmp_path / 'src'), num=3)
    zpath = str(tmp_path / 'd.zip')
    with zipfile.ZipFile(zpath, 'w') as z:
        for n in names:
            z.write(os.path.join(tmp_path, 'src', n), n)
    dataset_kwargs_from_data(zpath, verbose=False)
    assert len(os.listdir(dnnlib.make_cache_dir_path('datasets', 'checked'))) == 1
    with zipfile.ZipFile(zpath, 'a') as z: # a changed archive is checked again
        z.writestr('zz.png', b'broken')
    with pytest.raises(DatasetError, match='zz.png'):
        dataset_kwargs_from_data(zpath, verbose=False)

def test_tar_of_upstream_layout_with_dataset_json(tmp_path):
    names, images = _write_images(str(tmp_path / 'src'))
    with open(tmp_path / 'src' / 'dataset.json', 'w') as f:
        json.dump(dict(labels=[[n, 1 - i % 2] for i, n in enumerate(names)]), f)
    tpath = str(tmp_path / 'up.tar')
    with tarfile.open(tpath, 'w') as tar:
        for n in names + ['dataset.json']:
            tar.add(str(tmp_path / 'src' / n), arcname=n)
    ds = ImageFolderDataset(tpath, use_labels=True)
    _check_items(ds, images, [1 - i % 2 for i in range(6)])

#----------------------------------------------------------------------------
# CIFAR-10 python tarball and MNIST idx files.

def _cifar_rows(images): # independent of the reader: R plane, then G, then B, row-major
    return np.stack([np.concatenate([img[:, :, c].reshape(-1) for c in range(3)]) for img in images])

def _make_cifar_tarball(path, per_batch=2, seed=0, replace=None):
    """A CIFAR-10 python tarball of 5 small batches; `replace` = {member: object} swaps what a member holds."""
    rnd = np.random.RandomState(seed)
    images = rnd.randint(0, 256, [5 * per_batch, 32, 32, 3]).astype(np.uint8)
    labels = rnd.randint(0, 10, [5 * per_batch]).tolist()
    replace = replace or {}
    with tarfile.open(path, 'w:gz') as tar:
        def add(name, obj):
            data = pickle.dumps(replace.get(name, obj), protocol=2)
            info = tarfile.TarInfo(f'cifar-10-batches-py/{name}')
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        dirinfo = tarfile.TarInfo('cifar-10-batches-py')
        dirinfo.type = tarfile.DIRTYPE
        tar.addfile(dirinfo)
        add('batches.meta', {'label_names': ['airplane', 'automobile']}) # ignored by the reader
        for b in range(5):
            sl = slice(b * per_batch, (b + 1) * per_batch)
            add(f'data_batch_{b + 1}', {'data': _cifar_rows(images[sl]), 'labels': labels[sl]})
        add('test_batch', {'data': _cifar_rows(images[:1]), 'labels': [0]}) # not part of the training set
    return images, labels

@pytest.mark.parametrize('fname', ['cifar-10-python.tar.gz', 'renamed.tgz'])
def test_cifar10_python_tarball(tmp_path, fname):
    images, labels = _make_cifar_tarball(str(tmp_path / fname))
    ds = ImageFolderDataset(str(tmp_path / fname), use_labels=True)
    assert ds.name == 'cifar10' and ds.image_shape == [3, 32, 32] and ds.label_dim == max(labels) + 1
    _check_items(ds, images, labels)
    assert ds.class_names[0] == 'airplane'
    assert len(pickle.dumps(ds)) < 10000 # the pixel array is reloaded, not pickled
    _check_items(pickle.loads(pickle.dumps(ds)), images[:3], labels[:3], prefix=True)

def test_cifar10_extracted_folder(tmp_path):
    images, labels = _make_cifar_tarball(str(tmp_path / 'c.tar.gz'))
    with tarfile.open(tmp_path / 'c.tar.gz') as tar:
        tar.extractall(tmp_path / 'x')
    _check_items(ImageFolderDataset(str(tmp_path / 'x'), use_labels=True), images, labels)

@pytest.mark.parametrize('how', ['open', 'system'])
def test_cifar10_batch_that_runs_code_is_refused(tmp_path, how):
    from tests.malicious import MarkerWriter
    marker = tmp_path / 'marker'
    evil = {'data': MarkerWriter(marker, how), 'labels': [0]}
    path = str(tmp_path / 'cifar-10-python.tar.gz')
    _make_cifar_tarball(path, replace={'data_batch_3': evil})
    with pytest.raises(DatasetError) as info:
        ImageFolderDataset(path, use_labels=True)
    assert not marker.exists()
    msg = str(info.value)
    assert msg.startswith(f'Refusing to read {path}: data_batch_3 refers to ') and '\n' not in msg
    assert ('open' if how == 'open' else 'system') in msg
    with tarfile.open(path) as tar: # and as an extracted folder
        tar.extractall(tmp_path / 'x')
    with pytest.raises(DatasetError, match='data_batch_3 refers to'):
        ImageFolderDataset(str(tmp_path / 'x'), use_labels=True)
    assert not marker.exists()

def _write_idx(path, array):
    header = struct.pack('>BBBB', 0, 0, 8, array.ndim) + struct.pack(f'>{array.ndim}i', *array.shape)
    with (gzip.open(path, 'wb') if path.endswith('.gz') else open(path, 'wb')) as f:
        f.write(header + array.astype(np.uint8).tobytes())

def _make_mnist(folder, num=5, gz=True, labels=True, prefix='train'):
    rnd = np.random.RandomState(2)
    images = rnd.randint(1, 256, [num, 28, 28]).astype(np.uint8)
    lab = rnd.randint(0, 10, [num])
    os.makedirs(folder, exist_ok=True)
    ext = '.gz' if gz else ''
    _write_idx(os.path.join(folder, f'{prefix}-images-idx3-ubyte{ext}'), images)
    if labels:
        _write_idx(os.path.join(folder, f'{prefix}-labels-idx1-ubyte{ext}'), lab)
    return images, lab

@pytest.mark.parametrize('gz', [True, False])
def test_mnist_idx_padded_to_32(tmp_path, gz):
    images, labels = _make_mnist(str(tmp_path / 'mnist'), gz=gz)
    _make_mnist(str(tmp_path / 'mnist'), num=2, gz=gz, prefix='t10k') # the training files are preferred
    for path in (str(tmp_path / 'mnist'), str(tmp_path / 'mnist' / ('train-images-idx3-ubyte' + ('.gz' if gz else '')))):
        ds = ImageFolderDataset(path, use_labels=True)
        assert len(ds) == 5 and ds.image_shape == [1, 32, 32] and ds.name == 'mnist'
        for i in range(5):
            img, label = ds[i]
            np.testing.assert_array_equal(img[0, 2:30, 2:30], images[i])
            assert img.sum() == images[i].astype(np.int64).sum() # the border is zero
            assert np.argmax(label) == labels[i]
    native = ImageFolderDataset(str(tmp_path / 'mnist'), idx_resolution=None)
    assert native.image_shape == [1, 28, 28]
    np.testing.assert_array_equal(native[3][0][0], images[3])
    assert not native.has_labels # use_labels defaults to False, as upstream

def test_mnist_without_labels_file(tmp_path):
    _make_mnist(str(tmp_path / 'm'), labels=False)
    ds = ImageFolderDataset(str(tmp_path / 'm'), use_labels=True)
    assert len(ds) == 5 and not ds.has_labels
    with pytest.raises(DatasetError, match='--cond=1 needs labels'):
        dataset_kwargs_from_data(str(tmp_path / 'm'), require_labels=True, verbose=False)

#----------------------------------------------------------------------------
# The shared data (read only what is needed).

@pytest.mark.skipif(not os.path.isdir(MNIST), reason='shared MNIST files not present')
def test_shared_mnist():
    ds = ImageFolderDataset(MNIST, use_labels=True, max_size=100)
    assert len(ds) == 100 and ds.image_shape == [1, 32, 32] and ds.label_dim == 10
    img, label = ds[0]
    assert img.max() == 255 and img[0, :2].max() == 0 and label.sum() == 1

@pytest.mark.skipif(not os.path.isfile(CIFAR_JPEG), reason='shared CIFAR-10 JPEG tar not present')
def test_shared_cifar_jpeg_tar():
    kwargs, name = dataset_kwargs_from_data(CIFAR_JPEG, check=False, verbose=False)
    assert name == 'cifar10-jpeg-q75' and kwargs.resolution == 32 and kwargs.max_size == 50000 and kwargs.use_labels
    ds = dnnlib.util.construct_class_by_name(**dict(kwargs, max_size=20))
    assert ds.class_names[:3] == ['airplane', 'automobile', 'bird'] and ds.label_dim == 10
    img, label = ds[0]
    assert img.shape == (3, 32, 32) and img.dtype == np.uint8 and label.sum() == 1
    assert ds.item_name(ds.get_details(0).raw_idx).startswith('train/')

#----------------------------------------------------------------------------
# train.py's hook.

def test_kwargs_from_data_round_trip(tmp_path, capsys):
    images, labels = _class_tree(str(tmp_path / 'tree'), res=8)
    kwargs, name = dataset_kwargs_from_data(str(tmp_path / 'tree'))
    assert name == 'tree'
    assert 'using the 6 images under train/ (6 elsewhere' in capsys.readouterr().out
    assert kwargs == dict(class_name='stylegan_som.data.images.ImageFolderDataset', path=str(tmp_path / 'tree'),
        use_labels=True, max_size=6, xflip=False, resolution=8)
    _check_items(dnnlib.util.construct_class_by_name(**kwargs), images, labels)
    kwargs, _ = dataset_kwargs_from_data(str(tmp_path / 'tree' / 'train' / 'ant'), verbose=False)
    assert not kwargs.use_labels and kwargs.max_size == 2

def test_kwargs_pass_dataset_options(tmp_path):
    _make_mnist(str(tmp_path / 'm'))
    with pytest.raises(DatasetError, match='power-of-two'):
        dataset_kwargs_from_data(str(tmp_path / 'm'), idx_resolution=None, verbose=False)
    kwargs, _ = dataset_kwargs_from_data(str(tmp_path / 'm'), idx_resolution=None, require_pow2=False, verbose=False)
    assert kwargs.resolution == 28 and kwargs.idx_resolution is None
    assert dnnlib.util.construct_class_by_name(**kwargs).image_shape == [1, 28, 28]
    with pytest.raises(TypeError, match='use_labels'):
        dataset_kwargs_from_data(str(tmp_path / 'm'), use_labels=False)

#----------------------------------------------------------------------------
# Built-in CIFAR-10 (file:// URLs only; never a download).

def _builtin_source(tmp_path, monkeypatch):
    src = str(tmp_path / 'mirror' / 'cifar-10-python.tar.gz')
    os.makedirs(os.path.dirname(src))
    images, labels = _make_cifar_tarball(src, per_batch=1)
    with open(src, 'rb') as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    monkeypatch.setenv(datasets_builtin.URL_ENV, 'file://' + src)
    monkeypatch.setenv(datasets_builtin.MD5_ENV, md5)
    return src, images, labels

def test_builtin_cifar10_is_fetched_once(tmp_path, monkeypatch, capsys):
    assert datasets_builtin.CIFAR10_URL == 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
    assert datasets_builtin.CIFAR10_MD5 == 'c58f30108f718f92721af3b95e74349a'
    src, images, labels = _builtin_source(tmp_path, monkeypatch)
    kwargs, name = dataset_kwargs_from_data(None, cfg='cifar')
    cached = datasets_builtin.cifar10_cache_path()
    assert name == 'cifar10' and kwargs.path == cached and kwargs.use_labels and kwargs.resolution == 32
    assert 'Downloading CIFAR-10' in capsys.readouterr().err # progress bar
    _check_items(dnnlib.util.construct_class_by_name(**kwargs), images, labels)
    os.remove(src) # the second time, the cache alone serves
    assert dataset_kwargs_from_data('cifar10', verbose=False)[0].path == cached
    assert dataset_kwargs_from_data(None, cfg='cifar', verbose=False)[0].path == cached

def test_builtin_cifar10_errors(tmp_path, monkeypatch):
    src, _images, _labels = _builtin_source(tmp_path, monkeypatch)
    cached = datasets_builtin.cifar10_cache_path()
    with pytest.raises(DatasetError, match='no dataset given: --data.*--cfg=cifar'):
        dataset_kwargs_from_data(None, cfg='stylegan2', verbose=False)
    # Offline (nothing listens on the discard port): the error names the flag and where a copy may be placed.
    monkeypatch.setenv(datasets_builtin.URL_ENV, 'http://127.0.0.1:9/cifar-10-python.tar.gz')
    monkeypatch.setenv('NO_PROXY', '*')
    with pytest.raises(DatasetError) as info:
        dataset_kwargs_from_data(None, cfg='cifar', verbose=False)
    assert 'offline' in str(info.value) and '--data=/path/to/cifar-10-python.tar.gz' in str(info.value)
    assert cached in str(info.value)
    assert os.listdir(os.path.dirname(cached)) == [] # nothing half-written
    # Wrong checksum: not kept.
    monkeypatch.setenv(datasets_builtin.URL_ENV, 'file://' + src)
    monkeypatch.setenv(datasets_builtin.MD5_ENV, '0' * 32)
    with pytest.raises(DatasetError, match='md5.*not kept'):
        dataset_kwargs_from_data(None, cfg='cifar', verbose=False)
    assert not os.path.exists(cached)
    # A damaged cached copy is reported, naming it.
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    with open(cached, 'wb') as f:
        f.write(b'partial')
    with pytest.raises(DatasetError, match='cached CIFAR-10 tarball.*' + os.path.basename(cached)):
        dataset_kwargs_from_data(None, cfg='cifar', verbose=False)

#----------------------------------------------------------------------------
# Bad inputs: one DatasetError each, naming the file or flag.

def test_error_class():
    assert issubclass(DatasetError, ValueError) and issubclass(DatasetError, OSError)
    from stylegan_som.data import images, sources
    assert data_pkg.DatasetError is DatasetError is sources.DatasetError and images.DatasetError is DatasetError

def test_missing_empty_unknown(tmp_path):
    with pytest.raises(DatasetError, match='not found.*nowhere'):
        ImageFolderDataset(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match='No images found in .*empty'):
        dataset_kwargs_from_data(str(tmp_path / 'empty'), verbose=False)
    (tmp_path / 'holder').mkdir()
    (tmp_path / 'holder' / 'imgs.tar.gz').write_bytes(b'')
    with pytest.raises(DatasetError, match='No images found in .*holder.*holds imgs.tar.gz: pass that file'):
        ImageFolderDataset(str(tmp_path / 'holder'))
    (tmp_path / 'file.txt').write_text('x')
    with pytest.raises(DatasetError, match='Unknown dataset format.*file.txt'):
        ImageFolderDataset(str(tmp_path / 'file.txt'))
    PIL.Image.new('RGB', (4, 4)).save(tmp_path / 'one.png')
    with pytest.raises(DatasetError, match='single image'):
        ImageFolderDataset(str(tmp_path / 'one.png'))
    (tmp_path / 'bad.tar.gz').write_bytes(b'\x1f\x8bnot really gzip')
    with pytest.raises(DatasetError, match='bad.tar.gz'):
        ImageFolderDataset(str(tmp_path / 'bad.tar.gz'))
    (tmp_path / 'bad.zip').write_bytes(b'PK nope')
    with pytest.raises(DatasetError, match='zip.*bad.zip'):
        ImageFolderDataset(str(tmp_path / 'bad.zip'))

def test_corrupt_image_is_named(tmp_path):
    _write_images(str(tmp_path / 'c'), num=4)
    (tmp_path / 'c' / 'sub' / 'zz_broken.png').write_bytes(b'\x89PNG garbage')
    with pytest.raises(DatasetError, match='Corrupt or unreadable image sub/zz_broken.png'):
        dataset_kwargs_from_data(str(tmp_path / 'c'), verbose=False)
    # Truncated pixel data passes the header check but fails when loaded, still naming the file.
    (tmp_path / 'c' / 'sub' / 'zz_broken.png').unlink()
    buf = io.BytesIO()
    PIL.Image.fromarray(np.random.RandomState(0).randint(0, 256, [4, 4, 3]).astype(np.uint8)).save(buf, 'png')
    (tmp_path / 'c' / 'sub' / 'zz_trunc.png').write_bytes(buf.getvalue()[:-30])
    ds = ImageFolderDataset(str(tmp_path / 'c'))
    with pytest.raises(DatasetError, match='zz_trunc.png'):
        ds[len(ds) - 1]

def test_mixed_and_non_square(tmp_path):
    _write_images(str(tmp_path / 'mix'), num=4)
    PIL.Image.new('RGB', (8, 8)).save(tmp_path / 'mix' / 'sub' / 'big.png')
    with pytest.raises(DatasetError, match='Mixed image sizes: sub/big.png.*8x8'):
        dataset_kwargs_from_data(str(tmp_path / 'mix'), verbose=False)
    with pytest.raises(DatasetError, match='sub/big.png.*8x8'): # without the check, loading it still says so
        ds = ImageFolderDataset(str(tmp_path / 'mix'))
        [ds[i] for i in range(len(ds))]
    os.makedirs(tmp_path / 'grey')
    PIL.Image.new('RGB', (4, 4)).save(tmp_path / 'grey' / 'a.png')
    PIL.Image.new('L', (4, 4)).save(tmp_path / 'grey' / 'b.png')
    with pytest.raises(DatasetError, match='b.png.*1 channel'):
        dataset_kwargs_from_data(str(tmp_path / 'grey'), verbose=False)
    os.makedirs(tmp_path / 'wide')
    PIL.Image.new('RGB', (8, 4)).save(tmp_path / 'wide' / 'a.png')
    with pytest.raises(DatasetError, match='square.*a.png.* is 8x4.*center-crop'):
        dataset_kwargs_from_data(str(tmp_path / 'wide'), verbose=False)
    with pytest.raises(DatasetError, match=r'4x4 images, expected 8x8'):
        ImageFolderDataset(str(tmp_path / 'grey'), resolution=8)

def test_bad_labels(tmp_path):
    _write_images(str(tmp_path / 'imgs'))
    with pytest.raises(DatasetError, match='--cond=1 needs labels.*imgs'):
        dataset_kwargs_from_data(str(tmp_path / 'imgs'), require_labels=True, verbose=False)
    with open(tmp_path / 'imgs' / 'dataset.json', 'w') as f:
        json.dump(dict(labels=[['000.png', 1]]), f)
    with pytest.raises(DatasetError, match='dataset.json.*no label for'):
        ImageFolderDataset(str(tmp_path / 'imgs'), use_labels=True).get_label(0)
    (tmp_path / 'imgs' / 'dataset.json').write_text('{not json')
    with pytest.raises(DatasetError, match='Cannot read labels from dataset.json'):
        ImageFolderDataset(str(tmp_path / 'imgs'), use_labels=True).get_label(0)
    (tmp_path / 'imgs' / 'dataset.json').write_text(json.dumps(dict(labels=None)))
    assert not ImageFolderDataset(str(tmp_path / 'imgs'), use_labels=True).has_labels

def test_bad_idx_files(tmp_path):
    os.makedirs(tmp_path / 'm')
    (tmp_path / 'm' / 'train-images-idx3-ubyte').write_bytes(b'\0\0\x08\x03' + struct.pack('>3i', 10, 28, 28) + b'\0' * 100)
    with pytest.raises(DatasetError, match='truncated'):
        ImageFolderDataset(str(tmp_path / 'm'))
    (tmp_path / 'm' / 'train-images-idx3-ubyte').write_bytes(b'hello world, not idx')
    with pytest.raises(DatasetError, match='not an idx file'):
        ImageFolderDataset(str(tmp_path / 'm'))
