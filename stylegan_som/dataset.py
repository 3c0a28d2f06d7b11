"""Image datasets with the interface of StyleGAN2-ADA's `training.dataset`.

`ImageFolderDataset(path)` reads a directory of images or a zip made by upstream's dataset_tool.py (optional
`dataset.json` with `{"labels": [[fname, label], ...]}`). Items are `(uint8 CHW ndarray, label)`; labels are
one-hot float32 for integer labels. `max_size` takes a fixed random subset (seed `random_seed`) and `xflip` doubles
the dataset with mirrored copies, in that order, as upstream does, so the same kwargs select the same images.
"""

import json
import os
import zipfile

import numpy as np
import PIL.Image
import torch

import dnnlib

try:
    import pyspng # optional fast PNG decoder
except ImportError:
    pyspng = None

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
                raise ValueError(f'{self._name}: {labels.shape[0]} labels for {self._raw_shape[0]} images')
            if labels.dtype == np.int64 and (labels.ndim != 1 or np.any(labels < 0)):
                raise ValueError(f'{self._name}: integer labels must be a flat list of non-negative class indices')
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
            raise ValueError(f'{self._name}: item {idx} is {image.dtype} {list(image.shape)}, '
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

class ImageFolderDataset(Dataset):
    def __init__(self,
        path,                   # Directory or .zip of images.
        resolution      = None, # Required resolution; None = whatever the images are.
        **super_kwargs,         # max_size, use_labels, xflip, random_seed.
    ):
        self._path = path
        self._zipfile = None

        if os.path.isdir(path):
            self._type = 'dir'
            self._all_fnames = {os.path.relpath(os.path.join(root, fname), start=path)
                for root, _dirs, files in os.walk(path) for fname in files}
        elif self._file_ext(path) == '.zip' and os.path.isfile(path):
            self._type = 'zip'
            self._all_fnames = set(self._get_zipfile().namelist())
        elif not os.path.exists(path):
            raise IOError(f'Dataset not found: {path}')
        else:
            raise IOError(f'Dataset must be a directory or a .zip file: {path}')

        PIL.Image.init()
        self._image_fnames = sorted(f for f in self._all_fnames if self._file_ext(f) in PIL.Image.EXTENSION)
        if len(self._image_fnames) == 0:
            raise IOError(f'No image files found in dataset: {path}')

        name = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
        raw_shape = [len(self._image_fnames)] + list(self._load_raw_image(0).shape)
        if resolution is not None and (raw_shape[2] != resolution or raw_shape[3] != resolution):
            raise IOError(f'Dataset {path} has {raw_shape[3]}x{raw_shape[2]} images, expected {resolution}x{resolution}')
        super().__init__(name=name, raw_shape=raw_shape, **super_kwargs)

    @staticmethod
    def _file_ext(fname):
        return os.path.splitext(fname)[1].lower()

    def _get_zipfile(self):
        assert self._type == 'zip'
        if self._zipfile is None:
            self._zipfile = zipfile.ZipFile(self._path)
        return self._zipfile

    def _open_file(self, fname):
        if self._type == 'dir':
            return open(os.path.join(self._path, fname), 'rb')
        return self._get_zipfile().open(fname, 'r')

    def close(self):
        try:
            if self._zipfile is not None:
                self._zipfile.close()
        finally:
            self._zipfile = None

    def __getstate__(self):
        return dict(super().__getstate__(), _zipfile=None) # each worker reopens the zip

    def _load_raw_image(self, raw_idx):
        fname = self._image_fnames[raw_idx]
        try:
            with self._open_file(fname) as f:
                if pyspng is not None and self._file_ext(fname) == '.png':
                    image = pyspng.load(f.read())
                else:
                    image = np.array(PIL.Image.open(f))
        except Exception as e:
            raise IOError(f'Cannot read image {fname} in dataset {self._path}: {e}') from e
        if image.ndim == 2:
            image = image[:, :, np.newaxis] # greyscale HW -> HWC
        return image.transpose(2, 0, 1) # HWC -> CHW

    def _load_raw_labels(self):
        fname = 'dataset.json'
        if fname not in self._all_fnames:
            return None
        try:
            with self._open_file(fname) as f:
                labels = json.load(f)['labels']
        except Exception as e:
            raise IOError(f'Cannot read labels from {fname} in dataset {self._path}: {e}') from e
        if labels is None:
            return None
        labels = dict(labels)
        missing = [f for f in self._image_fnames if f.replace('\\', '/') not in labels]
        if missing:
            raise IOError(f'{fname} in dataset {self._path} has no label for {missing[0]} ({len(missing)} missing)')
        labels = np.array([labels[f.replace('\\', '/')] for f in self._image_fnames])
        if labels.ndim not in (1, 2):
            raise IOError(f'{fname} in dataset {self._path}: labels must be integers or flat vectors')
        return labels.astype({1: np.int64, 2: np.float32}[labels.ndim])

#----------------------------------------------------------------------------
