"""The dataset interface of StyleGAN2-ADA's `training.dataset.Dataset` (items `(CHW ndarray, label)`, one-hot float32
labels from integer ones, `max_size` a fixed random subset of seed `random_seed`, `xflip` doubling it with mirrored
copies, exactly as upstream), shared by the image and the point datasets."""

import numpy as np
import torch

import dnnlib

from .sources import DatasetError

#----------------------------------------------------------------------------

class Dataset(torch.utils.data.Dataset):
    def __init__(self,
        name,                   # Dataset name (used in cache file names).
        raw_shape,              # [N, C, H, W] of the stored images.
        max_size    = None,     # Keep at most this many images (fixed random subset). None = all.
        use_labels  = False,    # False = label_dim is 0 whatever the files say.
        xflip       = False,    # Append an x-flipped copy of every image (after max_size).
        random_seed = 0,        # Seed for the max_size subset.
    ):
        self._name = name
        self._raw_shape = list(raw_shape)
        self._use_labels = use_labels
        self._raw_labels = None
        self._label_shape = None

        # Subset: shuffle with a fixed seed, keep the first max_size, then restore file order.
        self._raw_idx = np.arange(self._raw_shape[0], dtype=np.int64)
        if max_size is not None and self._raw_idx.size > max_size:
            np.random.RandomState(random_seed).shuffle(self._raw_idx)
            self._raw_idx = np.sort(self._raw_idx[:max_size])

        self._xflip = np.zeros(self._raw_idx.size, dtype=np.uint8)
        if xflip:
            self._raw_idx = np.tile(self._raw_idx, 2)
            self._xflip = np.concatenate([self._xflip, np.ones_like(self._xflip)])

    def _get_raw_labels(self):
        if self._raw_labels is None:
            labels = self._load_raw_labels() if self._use_labels else None
            if labels is None:
                labels = np.zeros([self._raw_shape[0], 0], dtype=np.float32)
            if labels.shape[0] != self._raw_shape[0]:
                raise DatasetError(f'{self._name}: {labels.shape[0]} labels for {self._raw_shape[0]} images')
            if labels.dtype == np.int64 and (labels.ndim != 1 or np.any(labels < 0)):
                raise DatasetError(f'{self._name}: integer labels must be a flat list of non-negative class indices')
            self._raw_labels = labels
        return self._raw_labels

    def close(self): # subclasses release file handles here
        pass

    def _load_raw_image(self, raw_idx): # -> uint8 ndarray [C, H, W]
        raise NotImplementedError

    def _load_raw_labels(self): # -> ndarray [N] int64 or [N, ...] float32, or None
        raise NotImplementedError

    def __getstate__(self):
        return dict(self.__dict__, _raw_labels=None) # labels are reloaded lazily; keeps worker pickles small

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __len__(self):
        return self._raw_idx.size

    def __getitem__(self, idx):
        image = self._load_raw_image(self._raw_idx[idx])
        if list(image.shape) != self.image_shape or image.dtype != np.uint8:
            raise DatasetError(f'{self._name}: item {idx} is {image.dtype} {list(image.shape)}, '
                f'expected uint8 {self.image_shape} like the first image')
        if self._xflip[idx]:
            image = image[:, :, ::-1]
        return image.copy(), self.get_label(idx)

    def get_label(self, idx):
        label = self._get_raw_labels()[self._raw_idx[idx]]
        if label.dtype == np.int64:
            onehot = np.zeros(self.label_shape, dtype=np.float32)
            onehot[label] = 1
            label = onehot
        return label.copy()

    def get_details(self, idx):
        d = dnnlib.EasyDict()
        d.raw_idx = int(self._raw_idx[idx])
        d.xflip = (int(self._xflip[idx]) != 0)
        d.raw_label = self._get_raw_labels()[d.raw_idx].copy()
        return d

    @property
    def name(self):
        return self._name

    @property
    def image_shape(self):
        return list(self._raw_shape[1:])

    @property
    def num_channels(self):
        assert len(self.image_shape) == 3 # CHW
        return self.image_shape[0]

    @property
    def resolution(self):
        assert len(self.image_shape) == 3 # CHW
        assert self.image_shape[1] == self.image_shape[2]
        return self.image_shape[1]

    @property
    def label_shape(self):
        if self._label_shape is None:
            raw = self._get_raw_labels()
            self._label_shape = [int(np.max(raw)) + 1] if raw.dtype == np.int64 else list(raw.shape[1:])
        return list(self._label_shape)

    @property
    def label_dim(self):
        assert len(self.label_shape) == 1
        return self.label_shape[0]

    @property
    def has_labels(self):
        return any(x != 0 for x in self.label_shape)

    @property
    def has_onehot_labels(self):
        return self._get_raw_labels().dtype == np.int64

#----------------------------------------------------------------------------
