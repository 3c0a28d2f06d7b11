"""2-D point datasets for mode-coverage studies (`--data=ring8`, `grid25`, `grid25-unequal`), generated, not stored.

Protocols of PacGAN (Lin et al. 2018), the same as the `modes_ring8` / `modes_grid25` metrics:
- ring8: 8 Gaussians with means (cos 2 pi i/8, sin 2 pi i/8) (radius 1) and std 0.01;
- grid25: 25 Gaussians with means on {-4, -2, 0, 2, 4}^2 and std 0.05.
Their modes are drawn uniformly. A harder variant, scored by `modes_grid25_unequal`:
- grid25-unequal: grid25's means and std, but mode i is drawn with probability proportional to 10^(-r_i / 24), the
  ranks r_i (GRID25_UNEQUAL_RANKS) a fixed shuffle of 0..24: a geometric sequence from 0.1006 (commonest) down to
  0.0101 (rarest, 1/10 of it). The weights in permille, row x = -4 .. 4, column y = -4 .. 4:
      x=-4:  62.3  83.1  16.3  21.7  35.0
      x=-2:  12.2  19.7  10.1  11.1  26.3
      x= 0:  91.4  38.6  28.9  46.7  56.6
      x= 2:  17.9  68.6  42.4  51.4  14.8
      x= 4:  75.5 100.6  13.4  23.9  31.8
  A rare mode draws ~25 of the metric's 2,500 samples, so covering all 25 tests rare modes, and the metric's
  reverse KL is taken against these weights instead of uniform.
A point is an "image" of 2 channels at resolution 1 (items are float32 [2, 1, 1] in data coordinates, not uint8), so
it goes through the training loop, the networks (--arch=mlp) and the metrics like any image; the training loop
rescales only uint8 data. The mode index is the label (--cond=1 gives a class-conditional toy). The set is a fixed
sample (num_points, seed), like a dataset on disk.
"""

import itertools

import numpy as np

import dnnlib

from .base import Dataset
from .sources import DatasetError

#----------------------------------------------------------------------------

def ring8_means():
    angles = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)

def grid25_means():
    return np.array(list(itertools.product(range(-4, 5, 2), repeat=2)), dtype=np.float64)

# Ranks of grid25's modes (in grid25_means' order) in the geometric weights of grid25-unequal:
# np.random.RandomState(0).permutation(25), written out so that the dataset never depends on a generator's stream.
GRID25_UNEQUAL_RANKS = [5, 2, 19, 16, 11, 22, 17, 24, 23, 14, 1, 10, 13, 8, 6, 18, 4, 9, 7, 20, 3, 0, 21, 15, 12]

def geometric_weights(ranks, ratio):
    """Mode weights (sum 1) proportional to ratio^(-rank / max rank): the top rank has 1/ratio of rank 0's weight."""
    ranks = np.asarray(ranks, dtype=np.float64)
    w = float(ratio) ** (-ranks / ranks.max())
    return w / w.sum()

# weights=None: modes drawn uniformly (randint, the stream the ring8 and grid25 samples have always come from).
TOYS = {
    'ring8':          dnnlib.EasyDict(means=ring8_means(), std=0.01, weights=None),
    'grid25':         dnnlib.EasyDict(means=grid25_means(), std=0.05, weights=None),
    'grid25-unequal': dnnlib.EasyDict(means=grid25_means(), std=0.05, weights=geometric_weights(GRID25_UNEQUAL_RANKS, 10)),
}

def toy_weights(name):
    """Probabilities [K] of the named toy's modes (uniform where TOYS has no weights)."""
    toy = TOYS[name]
    k = len(toy.means)
    return np.full(k, 1 / k) if toy.weights is None else toy.weights.copy()

def sample_toy(name, num_points, seed=0):
    """(points float32 [N, 2], modes int64 [N]) of the named toy, deterministic for a seed."""
    if name not in TOYS:
        raise DatasetError(f'unknown 2-D toy dataset {name!r}; choose from {", ".join(TOYS)}')
    toy = TOYS[name]
    rnd = np.random.RandomState(seed)
    k = len(toy.means)
    modes = rnd.randint(k, size=num_points) if toy.weights is None else rnd.choice(k, size=num_points, p=toy.weights)
    modes = modes.astype(np.int64)
    points = toy.means[modes] + toy.std * rnd.randn(num_points, 2)
    return points.astype(np.float32), modes

#----------------------------------------------------------------------------

class PointDataset(Dataset):
    """Points of a named 2-D toy as items (float32 [2, 1, 1], label); `path` is the toy's name."""

    is_points = True # the training loop draws scatter plots instead of image grids

    def __init__(self,
        path,                   # Toy name: a key of TOYS ('ring8', 'grid25', 'grid25-unequal').
        num_points  = 100000,   # Size of the fixed sample.
        point_seed  = 0,        # Seed of that sample.
        resolution  = None,     # Checked if given: always 1.
        **super_kwargs,         # max_size, use_labels, xflip, random_seed.
    ):
        if num_points < 1:
            raise DatasetError(f'{path}: num_points must be at least 1, got {num_points}')
        self._path = path
        self._points, self._modes = sample_toy(path, num_points, point_seed)
        if resolution is not None and resolution != 1:
            raise DatasetError(f'{path} is 2-D point data (resolution 1), but resolution={resolution} was asked for')
        super().__init__(name=path, raw_shape=[num_points, 2, 1, 1], **super_kwargs)

    @property
    def path(self):
        return self._path

    @property
    def means(self):
        return TOYS[self._path].means.copy()

    @property
    def std(self):
        return TOYS[self._path].std

    @property
    def weights(self):
        return toy_weights(self._path)

    def _load_raw_image(self, raw_idx):
        return self._points[raw_idx].reshape(2, 1, 1)

    def _load_raw_labels(self):
        return self._modes

    def __getitem__(self, idx): # float32 points; x-flips have no meaning for a single "pixel"
        return self._load_raw_image(self._raw_idx[idx]).copy(), self.get_label(idx)

    def points(self, indices=None):
        """Points [N, 2] (all items, or those at the given dataset indices)."""
        raw = self._raw_idx if indices is None else self._raw_idx[np.asarray(indices)]
        return self._points[raw].copy()

#----------------------------------------------------------------------------

def point_dataset_kwargs(name):
    """(kwargs for dnnlib.util.construct_class_by_name, name) of a built-in toy, as recorded by train.py."""
    dataset = PointDataset(path=name, use_labels=True)
    kwargs = dnnlib.EasyDict(class_name='stylegan_som.data.points.PointDataset', path=name, use_labels=True,
        max_size=len(dataset), xflip=False, resolution=1)
    return kwargs, name

#----------------------------------------------------------------------------
