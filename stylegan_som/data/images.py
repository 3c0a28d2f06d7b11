"""Image datasets: `ImageFolderDataset(path)` keeps upstream's name and arguments but reads every source in
`sources`: a folder or zip in upstream's dataset_tool layout (labels in dataset.json), class-folder trees, tars,
the CIFAR-10 python tarball and MNIST idx files. check_images() reads every header once before training."""

import json
import os

import dnnlib

from . import sources
from .base import Dataset
from .sources import DatasetError

#----------------------------------------------------------------------------

class ImageFolderDataset(Dataset):
    def __init__(self,
        path,                   # Folder, .zip, .tar[.gz], cifar-10-python.tar.gz or MNIST idx files.
        resolution      = None, # Required resolution; None = whatever the images are.
        idx_resolution  = 32,   # MNIST idx files only: zero-pad the digits to this size; None = as stored.
        **super_kwargs,         # max_size, use_labels, xflip, random_seed.
    ):
        self._path = path
        self._source = sources.open_source(path, idx_resolution=idx_resolution)
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

#----------------------------------------------------------------------------
