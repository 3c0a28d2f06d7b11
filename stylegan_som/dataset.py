"""Image datasets with the interface of StyleGAN2-ADA's `training.dataset`, and the `--data` hook of train.py.

`ImageFolderDataset(path)` keeps upstream's name and arguments but reads every source in `dataset_sources`: a folder
or zip in upstream's dataset_tool layout (labels in dataset.json), class-folder trees, tars, the CIFAR-10 python
tarball and MNIST idx files. Items are `(uint8 CHW ndarray, label)`; integer labels come out one-hot float32.
`max_size` takes a fixed random subset (seed `random_seed`) and `xflip` then doubles the dataset with mirrored
copies, exactly as upstream, so the same kwargs select the same images.

`dataset_kwargs_from_data(data, cfg)` turns train.py's `--data` into recorded kwargs, checking every image once.
"""

import json
import os

import numpy as np
import torch

import dnnlib

from . import dataset_sources
from .dataset_sources import DatasetError # re-exported: callers catch it from here

#----------------------------------------------------------------------------
class Dataset(torch.utils.data.Dataset):
    def __init__(self,
        name,                   # Dataset name (used in cache file names).
        raw_shape,              # [N, C, H, W] of the stored images.
        max_size    = None,     # Keep at most this many images (fixed random subset). None = all.
        use_labels  = False,    # False = label_dim is 0 whatever the files say.
        xflip       = False,    # Append an x-flipped copy of every image (after max_size).
        random_seed = 0,        # Seed for the max_size subset.
        exclude     = None,     # Raw indices to leave out, before max_size (unreadable files: --skip-bad-images).
    ):
        self._name = name
        self._raw_shape = list(raw_shape)
        self._use_labels = use_labels
        self._raw_labels = None
        self._label_shape = None

        # Subset: shuffle with a fixed seed, keep the first max_size, then restore file order.
        self._raw_idx = np.arange(self._raw_shape[0], dtype=np.int64)
        if exclude:
            self._raw_idx = np.setdiff1d(self._raw_idx, np.asarray(exclude, dtype=np.int64))
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

class ImageFolderDataset(Dataset):
    def __init__(self,
        path,                   # Folder, .zip, .tar[.gz], cifar-10-python.tar.gz or MNIST idx files.
        resolution      = None, # Required resolution; None = whatever the images are.
        idx_resolution  = 32,   # MNIST idx files only: zero-pad the digits to this size; None = as stored.
        **super_kwargs,         # max_size, use_labels, xflip, random_seed, exclude.
    ):
        self._path = path
        self._source = dataset_sources.open_source(path, idx_resolution=idx_resolution)
        self._type = self._source.kind
        raw_shape = [len(self._source)] + list(self._load_raw_image(0).shape)
        if resolution is not None and (raw_shape[2] != resolution or raw_shape[3] != resolution):
            raise DatasetError(f'Dataset {path} has {raw_shape[3]}x{raw_shape[2]} images, '
                f'expected {resolution}x{resolution}')
        super().__init__(name=self._source.name, raw_shape=raw_shape, **super_kwargs)

    @property
    def path(self):
        return self._path

    @property
    def class_names(self): # names of the integer labels when known (class folders, CIFAR-10), else None
        self._get_raw_labels()
        return self._source.class_names

    def item_name(self, raw_idx): # the file (or archive member) behind a raw index, for messages
        return self._source.item_name(raw_idx)

    def close(self):
        source = getattr(self, '_source', None)
        if source is not None:
            source.close()

    def _load_raw_image(self, raw_idx):
        image = self._source.load(raw_idx).transpose(2, 0, 1) # HWC -> CHW
        if hasattr(self, '_raw_shape') and list(image.shape) != self._raw_shape[1:]:
            h, w = self._raw_shape[2:]
            raise DatasetError(f'{self.item_name(raw_idx)} is {image.shape[2]}x{image.shape[1]} with '
                f'{image.shape[0]} channel(s), but the dataset\'s first image is {w}x{h} with {self._raw_shape[1]}; '
                f'all images must match (python -m stylegan_som.dataset_tool --width/--height can resize them)')
        return image

    def _load_raw_labels(self):
        return self._source.labels()

#----------------------------------------------------------------------------
# train.py's --data hook.

def check_images(dataset, verbose=False):
    """Read every image header once: corrupt files, mixed sizes and channel counts fail here, naming the file,
    instead of in a data-loader worker hours into training (about 50 us per image; a passed archive is remembered
    in the cache by path, size and mtime). Truncated pixel data still shows only when an image is loaded."""
    from tqdm import tqdm
    source = dataset._source
    if source.uniform:
        return
    fingerprint = source.fingerprint()
    marker = dnnlib.make_cache_dir_path('datasets', 'checked', f'{fingerprint}.json') if fingerprint else None
    if marker is not None and os.path.isfile(marker):
        return
    first = source.header(0)
    for idx in tqdm(range(len(source)), desc='Checking images', unit='img', leave=False,
            disable=not verbose or len(source) < 10000, mininterval=1):
        w, h, c = source.header(idx)
        if (w, h, c) != first:
            raise DatasetError(f'Mixed image sizes: {source.item_name(idx)} is {w}x{h} with {c} channel(s), but '
                f'{source.item_name(0)} is {first[0]}x{first[1]} with {first[2]}; all images must match '
                f'(python -m stylegan_som.dataset_tool --width/--height can resize them)')
    if marker is not None:
        try:
            os.makedirs(os.path.dirname(marker), exist_ok=True)
            with open(marker, 'w') as f:
                json.dump(dict(path=os.path.abspath(source.path), num_images=len(source), shape=first), f)
        except OSError:
            pass # only a shortcut for next time

def dataset_kwargs_from_data(data, cfg=None, *, require_labels=False, check=True, require_pow2=True, verbose=True,
        **dataset_opts):
    """Resolve train.py's --data (and --cfg, for the built-in dataset) to ImageFolderDataset kwargs.

    data: a path (see dataset_sources), a built-in name (datasets_builtin.BUILTIN: 'cifar10', 'mnist', ...; the
    2-D toys ('ring8', 'grid25', 'grid25-unequal') give dataset_points.PointDataset kwargs), or None/'' = the built-in dataset of
    the config (only --cfg=cifar has one: CIFAR-10, downloaded once into the cache).
    Returns (kwargs, name): kwargs for dnnlib.util.construct_class_by_name with class_name, path, use_labels
    (= the dataset has labels), max_size (= its size), xflip=False and resolution, plus any `dataset_opts`
    (e.g. idx_resolution); name is the dataset's short name for the run directory.
    `dataset_opts` are further ImageFolderDataset arguments (idx_resolution, random_seed); the kwargs this
    function manages cannot be among them. require_labels=True (for --cond=1) fails when there are no labels;
    check=False skips the per-image header check; require_pow2=False allows e.g. 28x28 for small networks.
    Every problem raises one DatasetError whose message names the file, folder or flag."""
    from . import datasets_builtin
    managed = sorted(set(dataset_opts) & {'path', 'use_labels', 'max_size', 'xflip', 'resolution', 'class_name'})
    if managed:
        raise TypeError(f'dataset_kwargs_from_data: {", ".join(managed)} cannot be given; it sets them itself')
    if data is None or str(data) == '':
        if cfg != 'cifar':
            raise DatasetError(f'no dataset given: --data must be {dataset_sources.SUPPORTED}; only --cfg=cifar '
                f'has a built-in dataset (CIFAR-10)')
        data = 'cifar10'
    data = os.path.expanduser(str(data))
    from . import dataset_points # (H4) 2-D toys: generated points, not images
    if data in dataset_points.TOYS and not os.path.exists(data):
        return dataset_points.point_dataset_kwargs(data)
    if data in datasets_builtin.BUILTIN and not os.path.exists(data):
        path = datasets_builtin.BUILTIN[data](verbose=verbose)
    else:
        path = data

    dataset = ImageFolderDataset(path=path, use_labels=True, **dataset_opts)
    try:
        if check:
            check_images(dataset, verbose=verbose)
        _c, h, w = dataset.image_shape
        if w != h:
            raise DatasetError(f'Images must be square, but {dataset.item_name(0)} is {w}x{h}; crop them with '
                f'python -m stylegan_som.dataset_tool --source={path} --dest=DATASET.zip --transform=center-crop '
                f'--width=N --height=N')
        if require_pow2 and (w < 4 or w & (w - 1)):
            raise DatasetError(f'{path}: the images are {w}x{h}, but the networks need a power-of-two resolution '
                f'(4, 8, ..., 1024); resize them with python -m stylegan_som.dataset_tool --width=N --height=N')
        if require_labels and not dataset.has_labels:
            raise DatasetError(f'--cond=1 needs labels, but {path} has none: give a dataset.json with "labels" '
                f'(upstream dataset_tool layout) or sort the images into one folder per class')
        if verbose and dataset._source.note:
            print(f'Dataset {path}: {dataset._source.note}')
        kwargs = dnnlib.EasyDict(class_name='stylegan_som.dataset.ImageFolderDataset', path=path,
            use_labels=dataset.has_labels, max_size=len(dataset), xflip=False, resolution=w, **dataset_opts)
        return kwargs, dataset.name
    finally:
        dataset.close()

#----------------------------------------------------------------------------
