"""The paired-domain dataset of coupled generators: shapes, unpaired and seeded pairs, the domain transforms."""

import os

import numpy as np
import PIL.Image
import pytest

from stylegan_som.data import coupled
from stylegan_som.data.coupled import CoupledDataset
from stylegan_som.data.sources import DatasetError

def _folder(path, num, res=8, value=None):
    """`num` greyscale PNGs, image i filled with value i (or `value`), with class labels i % 2 via class folders."""
    for i in range(num):
        sub = os.path.join(path, f'c{i % 2}')
        os.makedirs(sub, exist_ok=True)
        PIL.Image.fromarray(np.full([res, res], i if value is None else value, dtype=np.uint8), 'L').save(
            os.path.join(sub, f'img{i:03d}.png'))
    return str(path)

def test_negative_and_edges_exact():
    x = np.zeros([5, 5], dtype=np.uint8)
    x[1:4, 1:4] = 200 # a 3x3 square
    assert np.array_equal(coupled.negative(x), 255 - x)
    expected = np.full([5, 5], 255, dtype=np.uint8) # the gradient: every pixel next to both square and background
    expected[2, 2] = 0 # the centre: all of its neighbours are square
    assert np.array_equal(coupled.edges(x), expected)
    x[0, 0] = 127 # below the level: background
    assert np.array_equal(coupled.edges(x), expected)
    assert not coupled.edges(np.zeros([4, 4], np.uint8)).any()

def test_items_shapes_labels_and_unpaired(tmp_path):
    path_a = _folder(tmp_path / 'a', 20)
    path_b = _folder(tmp_path / 'b', 20, value=None)
    ds = CoupledDataset(path=path_a, path2=path_b, use_labels=True)
    assert ds.image_shape == [2, 8, 8] and len(ds) == 20 and ds.domain_channels == (1, 1)
    pairs = [ds[i] for i in range(20)]
    a = [int(img[0, 0, 0]) for img, _ in pairs]
    b = [int(img[1, 0, 0]) for img, _ in pairs]
    assert sorted(b) == sorted(a) # every B image is used once ...
    assert sum(x == y for x, y in zip(a, b)) < 5 # ... but not as the partner of the same A image
    assert pairs[0][1].shape == (2,) # labels: domain A's class folders
    again = CoupledDataset(path=path_a, path2=path_b, use_labels=True)
    assert [int(again[i][0][1, 0, 0]) for i in range(20)] == b # the same seed draws the same partners
    other = CoupledDataset(path=path_a, path2=path_b, pair_seed=1)
    assert [int(other[i][0][1, 0, 0]) for i in range(20)] != b

def test_transform_of_the_same_images(tmp_path):
    path = _folder(tmp_path / 'a', 10)
    ds = CoupledDataset(path=path, transform2='negative')
    img, _ = ds[3]
    partners = [int(ds[i][0][1, 0, 0]) for i in range(10)]
    a_values = [int(ds[i][0][0, 0, 0]) for i in range(10)]
    assert sorted(255 - v for v in partners) == sorted(a_values) # B: negatives of A's images, drawn unpaired
    assert img.dtype == np.uint8 and img.shape == (2, 8, 8)

def test_size_mismatch_and_unknown_transform(tmp_path):
    path_a = _folder(tmp_path / 'a', 4, res=8)
    path_b = _folder(tmp_path / 'b', 4, res=16)
    with pytest.raises(DatasetError, match='differ in size'):
        CoupledDataset(path=path_a, path2=path_b)
    with pytest.raises(DatasetError, match='unknown domain transform'):
        CoupledDataset(path=path_a, transform2='blur')
