"""2-D toy datasets (ring8, grid25): the protocol's means and spreads, items as float points, determinism, and the
--data hook."""

import numpy as np
import pytest
import torch

import dnnlib
from metrics import mode_coverage
from stylegan_som import dataset_points as dp
from stylegan_som.dataset import dataset_kwargs_from_data

def test_means_match_the_metric_and_the_protocol():
    for name in ('ring8', 'grid25'):
        np.testing.assert_allclose(dp.TOYS[name].means, mode_coverage.TOYS[name]['means'])
        assert dp.TOYS[name].std == mode_coverage.TOYS[name]['std']
    ring = dp.TOYS['ring8'].means
    np.testing.assert_allclose(np.hypot(ring[:, 0], ring[:, 1]), 1.0)
    np.testing.assert_allclose(ring[2], [0.0, 1.0], atol=1e-12) # angle 2 pi * 2/8
    assert dp.TOYS['ring8'].std == 0.01
    grid = dp.TOYS['grid25'].means
    assert len(grid) == 25 and sorted(set(grid[:, 0])) == [-4, -2, 0, 2, 4] and dp.TOYS['grid25'].std == 0.05

@pytest.mark.parametrize('name', ['ring8', 'grid25'])
def test_samples_follow_the_mixture(name):
    toy = dp.TOYS[name]
    points, modes = dp.sample_toy(name, 20000, seed=3)
    assert points.dtype == np.float32 and points.shape == (20000, 2)
    counts = np.bincount(modes, minlength=len(toy.means))
    assert counts.min() > 0.8 * 20000 / len(toy.means) # uniform over modes
    offsets = points - toy.means[modes]
    assert np.std(offsets) == pytest.approx(toy.std, rel=0.03)
    assert np.abs(offsets.mean(0)).max() < 0.05 * toy.std * 10
    # The metric calls real samples high quality at the rate of a 2-D Gaussian within 3 std: 1 - exp(-4.5).
    res = mode_coverage.score_points(points, toy.means, toy.std)
    assert res['modes'] == len(toy.means) and res['hq'] == pytest.approx(1 - np.exp(-4.5), abs=0.005)
    np.testing.assert_array_equal(dp.sample_toy(name, 100, seed=3)[0], dp.sample_toy(name, 100, seed=3)[0])
    assert not np.array_equal(dp.sample_toy(name, 100, seed=3)[0], dp.sample_toy(name, 100, seed=4)[0])

def test_point_dataset_items_and_kwargs():
    kwargs, name = dataset_kwargs_from_data('ring8')
    assert name == 'ring8' and kwargs.class_name == 'stylegan_som.dataset_points.PointDataset'
    assert kwargs.resolution == 1 and kwargs.use_labels
    ds = dnnlib.util.construct_class_by_name(**dict(kwargs, max_size=500, random_seed=1))
    assert len(ds) == 500 and ds.image_shape == [2, 1, 1] and ds.resolution == 1 and ds.num_channels == 2
    assert ds.label_dim == 8 and ds.is_points
    x, c = ds[7]
    assert x.dtype == np.float32 and x.shape == (2, 1, 1)
    np.testing.assert_array_equal(x.reshape(2), ds.points([7])[0])
    assert c.shape == (8,) and c.sum() == 1
    assert np.linalg.norm(x.reshape(2) - ds.means[int(c.argmax())]) < 6 * ds.std # the label is the mode
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch[0].dtype == torch.float32 and batch[0].shape == (4, 2, 1, 1)

def test_bad_toy_inputs():
    with pytest.raises(dp.DatasetError, match='ring9'):
        dp.PointDataset(path='ring9')
    with pytest.raises(dp.DatasetError, match='resolution'):
        dp.PointDataset(path='ring8', resolution=32)
