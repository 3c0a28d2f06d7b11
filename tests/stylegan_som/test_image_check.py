"""Tests for stylegan_som.image_check and train.py --check-images / --skip-bad-images: a PNG whose header is fine
but whose pixel data is cut off passes the header check, and is caught here, in a folder and in a zip."""

import os
import zipfile

import pytest

from stylegan_som import image_check
from stylegan_som.data import DatasetError, dataset_kwargs_from_data
from stylegan_som.data.images import ImageFolderDataset
from tests.cli_errors import one_error_line
from tests.test_train import make_image_folder, run_train

#----------------------------------------------------------------------------

def _truncate(path):
    blob = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(blob[:len(blob) // 2]) # IHDR intact: the header check passes

@pytest.fixture(scope='module')
def bad(tmp_path_factory):
    """A folder and a zip of 16 PNGs, two of them (img0003, img0011) truncated."""
    root = tmp_path_factory.mktemp('bad')
    folder = make_image_folder(root / 'folder', num=16, res=8)
    for name in ('img0003.png', 'img0011.png'):
        _truncate(os.path.join(folder, name))
    zip_path = str(root / 'images.zip')
    with zipfile.ZipFile(zip_path, 'w') as z:
        for name in sorted(os.listdir(folder)):
            z.write(os.path.join(folder, name), name)
    return dict(folder=folder, zip=zip_path)

@pytest.mark.parametrize('kind', ['folder', 'zip'])
def test_finds_every_bad_image(bad, kind, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    kwargs, _name = dataset_kwargs_from_data(bad[kind], require_pow2=False, verbose=False) # headers pass
    with pytest.raises(DatasetError) as err:
        image_check.check(kwargs, 'full', progress=False)
    msg = str(err.value)
    assert msg.startswith('2 of 16 images cannot be decoded: ') and 'img0003.png' in msg and 'img0011.png' in msg
    assert '--skip-bad-images' in msg
    assert image_check.check(kwargs, 'none')[0] == kwargs # nothing decoded
    # Large datasets decode in loader workers: the same answer.
    ds = ImageFolderDataset(**{k: v for k, v in kwargs.items() if k != 'class_name'})
    try:
        assert [idx for idx, _reason in image_check.find_unreadable(ds, num_workers=2, progress=True)] == [3, 11]
    finally:
        ds.close()
    assert 'Decoding images' in capsys.readouterr().err # the progress bar, on stderr

    kept, warning = image_check.check(kwargs, 'full', skip_bad=True, progress=False)
    assert kept.exclude == [3, 11] and kept.max_size == 14
    assert warning.startswith('Warning: skipping 2 of 16 images') and 'training on 14' in warning
    ds = ImageFolderDataset(**{k: v for k, v in kept.items() if k != 'class_name'})
    try: # every remaining image loads; none of the bad ones is among them
        assert len(ds) == 14
        names = set()
        for i in range(len(ds)):
            img, _label = ds[i]
            assert img.shape == (3, 8, 8)
            names.add(ds.item_name(ds.get_details(i).raw_idx))
        assert not any(n.startswith(('img0003', 'img0011')) for n in names) and len(names) == 14
    finally:
        ds.close()

def test_clean_zip_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    folder = make_image_folder(tmp_path / 'ok', num=4, res=8)
    zip_path = str(tmp_path / 'ok.zip')
    with zipfile.ZipFile(zip_path, 'w') as z:
        for name in sorted(os.listdir(folder)):
            z.write(os.path.join(folder, name), name)
    kwargs, _name = dataset_kwargs_from_data(zip_path, require_pow2=False, verbose=False)
    calls = []
    real = image_check.find_unreadable
    monkeypatch.setattr(image_check, 'find_unreadable', lambda *a, **k: calls.append(1) or real(*a, **k))
    assert image_check.check(kwargs, None, progress=False) == (kwargs, None)
    assert image_check.check(kwargs, None, progress=False) == (kwargs, None)
    assert calls == [1] # decoded once; the second time the cache marker says it passed

def test_default_mode():
    assert image_check.default_mode(99_999) == 'full' and image_check.default_mode(100_000) == 'none'

def test_train_cli(bad, tmp_path):
    env_args = [f'--outdir={tmp_path / "runs"}', '--cfg=tiny', '-n']
    res = run_train(f'--data={bad["zip"]}', *env_args)
    assert res.returncode == 2
    one_error_line(res.stderr, ['--data: 2 of 16 images cannot be decoded', 'img0003.png', 'img0011.png'])
    assert 'Decoding images' not in res.stderr # no progress bar for a few images
    res = run_train(f'--data={bad["zip"]}', '--skip-bad-images', *env_args)
    assert res.returncode == 0, res.stderr
    assert [line for line in res.stdout.splitlines() if line.startswith('Warning: skipping 2 of 16 images')]
    assert '"exclude": [\n      3,\n      11\n    ]' in res.stdout and 'Dry run; exiting.' in res.stdout
    res = run_train(f'--data={bad["folder"]}', '--check-images=none', *env_args)
    assert res.returncode == 0 and 'Decoding images' not in res.stderr, res.stderr
    assert not os.path.exists(tmp_path / 'runs')

#----------------------------------------------------------------------------
