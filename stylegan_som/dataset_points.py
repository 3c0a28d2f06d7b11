"""2-D point datasets for mode-coverage studies (`--data=ring8`, `--data=grid25`), generated, not stored.

Protocols of PacGAN (Lin et al. 2018), the same as the `modes_ring8` / `modes_grid25` metrics:
- ring8: 8 Gaussians with means (cos 2 pi i/8, sin 2 pi i/8) (radius 1) and std 0.01;
- grid25: 25 Gaussians with means on {-4, -2, 0, 2, 4}^2 and std 0.05.
Modes are drawn uniformly. A point is an "image" of 2 channels at resolution 1 (items are float32 [2, 1, 1]
in data coordinates, not uint8), so it goes through the training loop, the networks (--arch=mlp) and the
metrics like any image; the training loop rescales only uint8 data. The mode index is the label
(--cond=1 gives a class-conditional toy). The set is a fixed sample (num_points, seed), like a dataset on disk.
"""

import itertools

import numpy as np

import dnnlib

from .dataset import Dataset
from .dataset_sources import DatasetError

#----------------------------------------------------------------------------

def ring8_means():
    angles = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)

def grid25_means():
    return np.array(list(itertools.product(range(-4, 5, 2), repeat=2)), dtype=np.float64)

TOYS = {
    'ring8':  dnnlib.EasyDict(means=ring8_means(), std=0.01),
    'grid25': dnnlib.EasyDict(means=grid25_means(), std=0.05),
}

def sample_toy(name, num_points, seed=0):
    """(points float32 [N, 2], modes int64 [N]) of the named toy, deterministic for a seed."""
    if name not in TOYS:
        raise DatasetError(f'unknown 2-D toy dataset {name!r}; choose from {", ".join(TOYS)}')
    toy = TOYS[name]
    rnd = np.random.RandomState(seed)
    modes = rnd.randint(len(toy.means), size=num_points).astype(np.int64)
    points = toy.means[modes] + toy.std * rnd.randn(num_points, 2)
    return points.astype(np.float32), modes

#----------------------------------------------------------------------------

class PointDataset(Dataset):
    """Points of a named 2-D toy as items (float32 [2, 1, 1], label); `path` is the toy's name."""

    is_points = True # the training loop draws scatter plots instead of image grids

    def __init__(self,
        path,                   # Toy name: 'ring8' or 'grid25'.
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
    kwargs = dnnlib.EasyDict(class_name='stylegan_som.dataset_points.PointDataset', path=name, use_labels=True,
        max_size=len(dataset), xflip=False, resolution=1)
    return kwargs, name

#----------------------------------------------------------------------------
