"""2-D toy datasets (ring8, grid25, grid25-unequal): the protocol's means and spreads, the mode weights, items as
float points, determinism, and the --data hook."""

import numpy as np
import pytest
import torch

import dnnlib
from metrics import mode_coverage
from stylegan_som.data import dataset_kwargs_from_data
from stylegan_som.data import points as dp

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
    assert name == 'ring8' and kwargs.class_name == 'stylegan_som.data.points.PointDataset'
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

#----------------------------------------------------------------------------
# grid25-unequal: grid25's layout with geometric mode weights.

def test_grid25_unequal_weights():
    toy = dp.TOYS['grid25-unequal']
    np.testing.assert_array_equal(toy.means, dp.TOYS['grid25'].means)
    assert toy.std == dp.TOYS['grid25'].std and dp.TOYS['grid25'].weights is None and dp.TOYS['ring8'].weights is None
    w = dp.toy_weights('grid25-unequal')
    assert w.shape == (25,) and w.sum() == pytest.approx(1, abs=1e-15)
    assert w.max() / w.min() == pytest.approx(10) and len(set(np.round(w, 12))) == 25 # 25 distinct steps
    # Rank 0 (mode 21, at (4, -2)) has 1 / sum_k 10^(-k/24); rank 24 (mode 7, at (-2, 0)) a tenth of that.
    top = 1 / sum(10 ** (-k / 24) for k in range(25))
    assert w.argmax() == 21 and w[21] == pytest.approx(top) and w[21] == pytest.approx(0.10062, abs=1e-5)
    assert w.argmin() == 7 and w[7] == pytest.approx(top / 10)
    np.testing.assert_array_equal(toy.means[[21, 7]], [[4, -2], [-2, 0]])
    np.testing.assert_allclose(dp.toy_weights('grid25'), np.full(25, 1 / 25))
    np.testing.assert_allclose(dp.geometric_weights([0, 2, 1], 4), np.array([1, 1 / 4, 1 / 2]) / 1.75)

def test_grid25_unequal_samples_follow_the_weights():
    w = dp.toy_weights('grid25-unequal')
    points, modes = dp.sample_toy('grid25-unequal', 100000, seed=0)
    freq = np.bincount(modes, minlength=25) / len(modes)
    sigma = np.sqrt(w * (1 - w) / len(modes))
    assert np.all(np.abs(freq - w) < 3 * sigma) # seed 0: at most 2.0 sigma
    offsets = points - dp.TOYS['grid25-unequal'].means[modes]
    assert np.std(offsets) == pytest.approx(0.05, rel=0.01)
    # The uniform toys draw their modes from the same stream as always (randint), so old samples stay as they were.
    np.testing.assert_array_equal(dp.sample_toy('grid25', 50, seed=3)[1], np.random.RandomState(3).randint(25, size=50))
    # Real samples score every mode, at (nearly) no reverse KL against the weights; against uniform they would not.
    res = mode_coverage.score_points(points[:2500], dp.TOYS['grid25'].means, 0.05, weights=w)
    assert res['modes'] == 25 and res['rkl'] < 0.01 and res['counts'].min() >= 20
    assert mode_coverage.score_points(points[:2500], dp.TOYS['grid25'].means, 0.05)['rkl'] > 0.2

def test_grid25_unequal_dataset():
    kwargs, name = dataset_kwargs_from_data('grid25-unequal')
    assert name == 'grid25-unequal' and kwargs.class_name == 'stylegan_som.data.points.PointDataset'
    ds = dnnlib.util.construct_class_by_name(**kwargs)
    assert ds.label_dim == 25 and ds.std == 0.05 and len(ds) == 100000
    np.testing.assert_array_equal(ds.weights, dp.toy_weights('grid25-unequal'))
    assert np.bincount(ds._load_raw_labels(), minlength=25).argmax() == 21 # the labels are the (weighted) modes
