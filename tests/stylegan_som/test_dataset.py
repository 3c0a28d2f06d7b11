import json
import os
import zipfile

import numpy as np
import PIL.Image
import pytest

from stylegan_som import dataset as dataset_mod

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

def test_folder_items_and_properties(tmp_path):
    names, images = _write_images(str(tmp_path / 'imgs'))
    ds = dataset_mod.ImageFolderDataset(str(tmp_path / 'imgs'))
    assert len(ds) == 6 and ds.name == 'imgs' and ds.image_shape == [3, 4, 4]
    assert ds.num_channels == 3 and ds.resolution == 4
    assert ds.label_shape == [0] and ds.label_dim == 0 and not ds.has_labels
    for i in range(6):
        img, label = ds[i]
        assert img.dtype == np.uint8 and label.shape == (0,)
        np.testing.assert_array_equal(img, images[i].transpose(2, 0, 1))

def test_greyscale_is_one_channel(tmp_path):
    _names, images = _write_images(str(tmp_path / 'g'), mode='L')
    ds = dataset_mod.ImageFolderDataset(str(tmp_path / 'g'))
    assert ds.image_shape == [1, 4, 4]
    np.testing.assert_array_equal(ds[2][0][0], images[2])

def test_zip_with_labels_xflip_and_max_size(tmp_path):
    names, images = _write_images(str(tmp_path / 'src'))
    zpath = str(tmp_path / 'data.zip')
    with zipfile.ZipFile(zpath, 'w') as z:
        for n in names:
            z.write(os.path.join(tmp_path, 'src', n), n)
        z.writestr('dataset.json', json.dumps(dict(labels=[[n, i % 3] for i, n in enumerate(names)])))
    ds = dataset_mod.ImageFolderDataset(zpath, use_labels=True, xflip=True)
    assert len(ds) == 12 and ds.has_labels and ds.label_dim == 3 and ds.has_onehot_labels
    np.testing.assert_array_equal(ds[4][1], [0, 1, 0])
    np.testing.assert_array_equal(ds[6 + 4][0], images[4].transpose(2, 0, 1)[:, :, ::-1])
    assert ds.get_details(10).xflip and ds.get_details(10).raw_idx == 4 and ds.get_details(10).raw_label == 1
    # Without use_labels the labels are empty, as upstream.
    assert dataset_mod.ImageFolderDataset(zpath).label_dim == 0

    sub = dataset_mod.ImageFolderDataset(zpath, max_size=4, random_seed=3)
    idx = [sub.get_details(i).raw_idx for i in range(len(sub))]
    assert len(idx) == 4 and idx == sorted(idx)
    expected = np.arange(6)
    np.random.RandomState(3).shuffle(expected)
    assert idx == sorted(expected[:4]) # same subset as upstream's Dataset for the same seed

def test_clear_errors(tmp_path):
    with pytest.raises(IOError, match='not found.*nowhere'):
        dataset_mod.ImageFolderDataset(str(tmp_path / 'nowhere'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(IOError, match='No image files.*empty'):
        dataset_mod.ImageFolderDataset(str(tmp_path / 'empty'))
    (tmp_path / 'file.txt').write_text('x')
    with pytest.raises(IOError, match='directory or a .zip.*file.txt'):
        dataset_mod.ImageFolderDataset(str(tmp_path / 'file.txt'))
    _write_images(str(tmp_path / 'imgs'))
    with pytest.raises(IOError, match=r'4x4 images, expected 8x8'):
        dataset_mod.ImageFolderDataset(str(tmp_path / 'imgs'), resolution=8)
    with open(tmp_path / 'imgs' / 'dataset.json', 'w') as f:
        json.dump(dict(labels=[['000.png', 1]]), f)
    with pytest.raises(IOError, match='no label for'):
        dataset_mod.ImageFolderDataset(str(tmp_path / 'imgs'), use_labels=True).get_label(0)
