import gzip
import io
import json
import os
import struct
import subprocess
import sys
import zipfile

import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

import dnnlib
from stylegan_som.data import tool as dataset_tool
from stylegan_som.data.images import ImageFolderDataset

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))

@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setattr(dnnlib.util, '_dnnlib_cache_dir', str(tmp_path / 'cache'))

def _run(*args):
    return CliRunner().invoke(dataset_tool.convert_dataset, list(args), catch_exceptions=False)

def _tree(root, sizes=((4, 4),) * 5, classes=('b', 'a'), seed=0):
    """Images spread over class folders; returns (relative names sorted, images, class index) in dataset order."""
    rnd = np.random.RandomState(seed)
    items = []
    for i, (w, h) in enumerate(sizes):
        c = classes[i % len(classes)]
        os.makedirs(os.path.join(root, c), exist_ok=True)
        img = rnd.randint(0, 256, [h, w, 3]).astype(np.uint8)
        name = f'{c}/{i:02d}.png'
        PIL.Image.fromarray(img).save(os.path.join(root, name))
        items.append((name, img, sorted(classes).index(c)))
    items.sort(key=lambda x: x[0])
    return [x[0] for x in items], [x[1] for x in items], [x[2] for x in items]

def _read_like_upstream(zpath):
    """An independent reader following upstream's loader: sorted image names, labels from dataset.json."""
    with zipfile.ZipFile(zpath) as z:
        names = sorted(n for n in z.namelist() if n.endswith('.png'))
        images = [np.asarray(PIL.Image.open(io.BytesIO(z.read(n)))) for n in names]
        meta = json.loads(z.read('dataset.json'))
    labels = None if meta['labels'] is None else [dict(meta['labels'])[n] for n in names]
    return names, images, labels, meta

#----------------------------------------------------------------------------

def test_folder_to_upstream_zip(tmp_path):
    _names, images, labels = _tree(str(tmp_path / 'src'))
    res = _run('--source', str(tmp_path / 'src'), '--dest', str(tmp_path / 'out' / 'ds.zip'))
    assert res.exit_code == 0, res.output
    names, got, got_labels, meta = _read_like_upstream(str(tmp_path / 'out' / 'ds.zip'))
    assert names == [f'00000/img{i:08d}.png' for i in range(5)]
    assert got_labels == labels and meta['class_names'] == ['a', 'b']
    assert meta['labels'][0] == ['00000/img00000000.png', labels[0]] # upstream's [[name, label], ...]
    for a, b in zip(got, images):
        np.testing.assert_array_equal(a, b)
    with zipfile.ZipFile(tmp_path / 'out' / 'ds.zip') as z:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
    ds = ImageFolderDataset(str(tmp_path / 'out' / 'ds.zip'), use_labels=True)
    assert ds.label_dim == 2 and ds.name == 'ds'
    np.testing.assert_array_equal(ds[3][0], images[3].transpose(2, 0, 1))
    assert not [f for f in os.listdir(tmp_path / 'out') if 'tmp' in f]

def test_folder_dest_and_max_images(tmp_path):
    _tree(str(tmp_path / 'src'))
    res = _run('--source', str(tmp_path / 'src'), '--dest', str(tmp_path / 'dir'), '--max-images', '3')
    assert res.exit_code == 0, res.output
    assert sorted(os.listdir(tmp_path / 'dir' / '00000')) == [f'img{i:08d}.png' for i in range(3)]
    with open(tmp_path / 'dir' / 'dataset.json') as f:
        assert len(json.load(f)['labels']) == 3
    assert len(ImageFolderDataset(str(tmp_path / 'dir'))) == 3
    res = _run('--source', str(tmp_path / 'src'), '--dest', str(tmp_path / 'dir'))
    assert res.exit_code != 0 and '--dest folder must be empty' in res.output

def _write_idx(path, array):
    header = struct.pack('>BBBB', 0, 0, 8, array.ndim) + struct.pack(f'>{array.ndim}i', *array.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())

def test_mnist_to_zip_spans_folders(tmp_path):
    rnd = np.random.RandomState(0)
    digits = rnd.randint(0, 256, [1001, 28, 28]).astype(np.uint8)
    labels = rnd.randint(0, 10, [1001])
    _write_idx(str(tmp_path / 'train-images-idx3-ubyte.gz'), digits)
    _write_idx(str(tmp_path / 'train-labels-idx1-ubyte.gz'), labels)
    res = _run('--source', str(tmp_path / 'train-images-idx3-ubyte.gz'), '--dest', str(tmp_path / 'mnist.zip'))
    assert res.exit_code == 0, res.output
    with zipfile.ZipFile(tmp_path / 'mnist.zip') as z:
        meta = json.loads(z.read('dataset.json'))
        last = PIL.Image.open(io.BytesIO(z.read('00001/img00001000.png')))
        assert last.mode == 'L' and last.size == (32, 32) # padded like upstream's dataset_tool
        np.testing.assert_array_equal(np.asarray(last)[2:30, 2:30], digits[1000])
    assert meta['labels'][1000] == ['00001/img00001000.png', int(labels[1000])]

def test_vector_labels_survive(tmp_path):
    os.makedirs(tmp_path / 'src')
    for i in range(2):
        PIL.Image.new('RGB', (4, 4), (i, 0, 0)).save(tmp_path / 'src' / f'{i}.png')
    with open(tmp_path / 'src' / 'dataset.json', 'w') as f:
        json.dump({'labels': [['0.png', [0.5, 1]], ['1.png', [2, 3]]]}, f)
    assert _run('--source', str(tmp_path / 'src'), '--dest', str(tmp_path / 'v.zip')).exit_code == 0
    assert _read_like_upstream(str(tmp_path / 'v.zip'))[2] == [[0.5, 1.0], [2.0, 3.0]]

#----------------------------------------------------------------------------
# Crops and resizes, checked against plain PIL calls.

def test_transforms(tmp_path):
    rnd = np.random.RandomState(1)
    img = rnd.randint(0, 256, [6, 10, 3]).astype(np.uint8) # 10 wide, 6 high
    crop = dataset_tool.make_transform('center-crop', 4, 4, 'lanczos')(img)
    want = np.asarray(PIL.Image.fromarray(img[:, 2:8]).resize((4, 4), PIL.Image.LANCZOS))
    np.testing.assert_array_equal(crop, want)
    box = dataset_tool.make_transform(None, 5, 3, 'box')(img)
    np.testing.assert_array_equal(box, np.asarray(PIL.Image.fromarray(img).resize((5, 3), PIL.Image.BOX)))
    assert dataset_tool.make_transform(None, None, None, 'box')(img) is img
    wide = dataset_tool.make_transform('center-crop-wide', 8, 4, 'lanczos')(img)
    rows = int(round(8 * 6 / 10)) # 5 rows keep the 8:4 target's full width
    want = np.asarray(PIL.Image.fromarray(img[(6 - rows) // 2:(6 + rows) // 2]).resize((8, 4), PIL.Image.LANCZOS))
    assert wide.shape == (8, 8, 3) and wide[:2].max() == 0 and wide[6:].max() == 0
    np.testing.assert_array_equal(wide[2:6], want)
    assert dataset_tool.make_transform('center-crop-wide', 16, 8, 'lanczos')(img) is None # too narrow: dropped
    grey = dataset_tool.make_transform('center-crop', 4, 4, 'box')(img[:, :, :1])
    assert grey.shape == (4, 4, 1)

def test_non_square_source_with_center_crop(tmp_path):
    _tree(str(tmp_path / 'src'), sizes=[(10, 6), (6, 10), (8, 8)])
    res = _run('--source', str(tmp_path / 'src'), '--dest', str(tmp_path / 'o.zip'))
    assert res.exit_code == 1 and 'square' in res.output and 'a/01.png' in res.output and 'is 6x10' in res.output and '--transform' in res.output
    assert not os.path.exists(tmp_path / 'o.zip') and not [f for f in os.listdir(tmp_path) if 'tmp' in f]
    res = _run('--source', str(tmp_path / 'src'), '--dest', str(tmp_path / 'o.zip'), '--transform=center-crop',
        '--width=4', '--height=4')
    assert res.exit_code == 0, res.output
    assert ImageFolderDataset(str(tmp_path / 'o.zip')).image_shape == [3, 4, 4]

#----------------------------------------------------------------------------

def test_errors(tmp_path):
    res = _run('--source', str(tmp_path / 'missing'), '--dest', str(tmp_path / 'o.zip'))
    assert res.exit_code == 1 and '--source' in res.output and 'missing' in res.output
    _tree(str(tmp_path / 'mixed'), sizes=[(4, 4), (8, 8)])
    res = _run('--source', str(tmp_path / 'mixed'), '--dest', str(tmp_path / 'o.zip'))
    assert res.exit_code == 1 and 'same size' in res.output and 'b/00.png' in res.output
    _tree(str(tmp_path / 'odd'), sizes=[(6, 6)])
    res = _run('--source', str(tmp_path / 'odd'), '--dest', str(tmp_path / 'o.zip'))
    assert res.exit_code == 1 and 'power of two' in res.output
    res = _run('--source', str(tmp_path / 'odd'), '--dest', str(tmp_path / 'o.zip'), '--transform=center-crop')
    assert res.exit_code == 2 and '--width and --height' in res.output
    res = _run('--source', str(tmp_path / 'odd'), '--dest', '')
    assert res.exit_code == 2 and '--dest' in res.output

def test_module_entry_point(tmp_path):
    _tree(str(tmp_path / 'src'), sizes=[(4, 4)] * 2)
    out = subprocess.run([sys.executable, '-m', 'stylegan_som.dataset_tool', f'--source={tmp_path / "src"}',
        f'--dest={tmp_path / "o.zip"}'], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert len(ImageFolderDataset(str(tmp_path / 'o.zip'))) == 2

def test_members_named_dotdot_never_escape(tmp_path):
    # Members are read from the archive, never extracted by their names: a zip (or tar) whose members climb out
    # with ../ trains and converts like any other, and writes nothing outside --dest.
    import tarfile # pylint: disable=import-outside-toplevel
    rnd = np.random.RandomState(1)
    imgs = [rnd.randint(0, 256, [4, 4, 3]).astype(np.uint8) for _ in range(2)]
    blobs = []
    for img in imgs:
        buf = io.BytesIO()
        PIL.Image.fromarray(img).save(buf, format='png')
        blobs.append(buf.getvalue())
    (tmp_path / 'src').mkdir()
    zpath = tmp_path / 'src' / 'climb.zip'
    with zipfile.ZipFile(zpath, 'w') as z:
        z.writestr('../../escaped0.png', blobs[0])
        z.writestr('sub/../../escaped1.png', blobs[1])
    tpath = tmp_path / 'src' / 'climb.tar'
    with tarfile.open(tpath, 'w') as tar:
        for i, blob in enumerate(blobs):
            info = tarfile.TarInfo(f'../escaped{i}.png')
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    for src in (zpath, tpath):
        ds = ImageFolderDataset(str(src))
        assert len(ds) == 2 and sorted(ds[i][0].tobytes() for i in range(2)) == sorted(img.transpose(2, 0, 1).tobytes() for img in imgs)
        dest = tmp_path / 'out' / src.suffix[1:]
        res = _run('--source', str(src), '--dest', str(dest))
        assert res.exit_code == 0, res.output
        assert sorted(os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs) == \
            ['00000/img00000000.png', '00000/img00000001.png', 'dataset.json']
    found = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path.parent) for f in fs if f.startswith('escaped')]
    assert found == []
