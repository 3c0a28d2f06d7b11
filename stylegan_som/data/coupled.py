"""Two image domains for coupled generators (--data2): each item is an image of domain A and an independently drawn
image of domain B, concatenated in channels ([C_A + C_B, H, W]). The pairs are unpaired on purpose: B's image
comes from a fixed random permutation of B's images (seed `pair_seed`), so what the two domains have in common
must be learnt by the coupling, not read off the data. Labels are domain A's.

Domain B is a folder/zip/... of its own, or the images of A's source under a fixed transform (`transform2`):
'negative' (255 - x) or 'edges' (the morphological gradient of the digit binarised at 128: 255 where a pixel's
3x3 neighbourhood holds both digit and background pixels, else 0; outside the image counts as background)."""

import numpy as np

from .base import Dataset
from .images import ImageFolderDataset
from .sources import DatasetError

#----------------------------------------------------------------------------
# Domain transforms, uint8 [..., H, W] -> uint8 [..., H, W]; the pairs metrics apply the same ones.

EDGE_LEVEL = 128 # a pixel belongs to the digit if it is at least this bright

def negative(x):
    return (255 - np.asarray(x, dtype=np.uint8)).astype(np.uint8)

def _neighbourhood(mask, reduce):
    """reduce (np.logical_or / np.logical_and) over each pixel's 3x3 neighbourhood; outside counts as background."""
    h, w = mask.shape[-2:]
    padded = np.zeros(mask.shape[:-2] + (h + 2, w + 2), dtype=bool)
    padded[..., 1:-1, 1:-1] = mask
    out = mask.copy()
    for dy in range(3):
        for dx in range(3):
            out = reduce(out, padded[..., dy:dy + h, dx:dx + w])
    return out

def edges(x):
    mask = np.asarray(x) >= EDGE_LEVEL
    edge = _neighbourhood(mask, np.logical_or) & ~_neighbourhood(mask, np.logical_and)
    return (edge * 255).astype(np.uint8)

TRANSFORMS = {'negative': negative, 'edges': edges}

#----------------------------------------------------------------------------

class CoupledDataset(Dataset):
    """path: domain A's images (any ImageFolderDataset source); path2: domain B's (default: path, for a transform);
    transform2: None or a TRANSFORMS name applied to B's images. Both domains must have the same resolution."""

    def __init__(self,
        path,                   # Domain A: folder, zip, tar, idx files (as ImageFolderDataset).
        path2           = None, # Domain B's images; None = path.
        transform2      = None, # 'negative', 'edges' or None, applied to domain B's images.
        pair_seed       = 0,    # Seed of the permutation that draws B's image of each item.
        resolution      = None, # Required resolution; None = whatever the images are.
        idx_resolution  = 32,   # MNIST idx files only: zero-pad the digits to this size.
        **super_kwargs,         # max_size, use_labels, xflip, random_seed, exclude.
    ):
        if transform2 is not None and transform2 not in TRANSFORMS:
            raise DatasetError(f'unknown domain transform {transform2!r}; choose from {", ".join(TRANSFORMS)}')
        self._path = path
        self._path2 = path if path2 is None else path2
        self._transform2 = transform2
        self._a = ImageFolderDataset(path=path, use_labels=True, idx_resolution=idx_resolution)
        self._b = ImageFolderDataset(path=self._path2, use_labels=False, idx_resolution=idx_resolution)
        shape_a, shape_b = self._a.image_shape, self._b.image_shape
        if shape_a[1:] != shape_b[1:]:
            raise DatasetError(f'the two domains differ in size: {path} is {shape_a[2]}x{shape_a[1]}, '
                f'{self._path2} is {shape_b[2]}x{shape_b[1]}; resize one with python -m stylegan_som.dataset_tool '
                f'--width=N --height=N')
        if resolution is not None and shape_a[1] != resolution:
            raise DatasetError(f'Dataset {path} has {shape_a[2]}x{shape_a[1]} images, expected {resolution}x{resolution}')
        self._pairs = np.random.RandomState(pair_seed).permutation(len(self._b))
        raw_shape = [len(self._a), shape_a[0] + shape_b[0]] + shape_a[1:]
        name = f'{self._a.name}+{self._b.name if transform2 is None else transform2}'
        super().__init__(name=name, raw_shape=raw_shape, **super_kwargs)

    @property
    def path(self):
        return self._path

    @property
    def domain_channels(self):
        """Channels of domain A and of domain B."""
        return self._a.num_channels, self._b.num_channels

    def close(self):
        for dataset in (getattr(self, '_a', None), getattr(self, '_b', None)):
            if dataset is not None:
                dataset.close()

    def _load_raw_image(self, raw_idx):
        image_a = self._a._load_raw_image(raw_idx) # pylint: disable=protected-access
        image_b = self._b._load_raw_image(self._pairs[raw_idx % len(self._pairs)]) # pylint: disable=protected-access
        if self._transform2 is not None:
            image_b = TRANSFORMS[self._transform2](image_b)
        return np.concatenate([image_a, image_b], axis=0)

    def _load_raw_labels(self):
        return self._a._load_raw_labels() # pylint: disable=protected-access

#----------------------------------------------------------------------------
