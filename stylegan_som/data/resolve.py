"""The one resolver of train.py's --data: every kind of dataset the command line accepts, and the kwargs a run
records for it (training_options.json: training_set_kwargs)."""

import os

import dnnlib

from . import builtin
from . import points
from . import sources
from .images import ImageFolderDataset, check_images
from .sources import DatasetError

#----------------------------------------------------------------------------

def data_kind(data):
    """What --data names: 'points' (a 2-D toy), 'builtin' (a dataset fetched or built into the cache) or 'path'
    (a folder, zip, tar or idx files, read by sources.open_source). A file or folder of that name wins over the
    names."""
    if not os.path.exists(data):
        if data in points.TOYS:
            return 'points'
        if data in builtin.BUILTIN:
            return 'builtin'
    return 'path'

def known_names():
    """The names --data takes besides paths."""
    return sorted(points.TOYS) + sorted(builtin.BUILTIN)

def dataset_kwargs_from_data(data, cfg=None, *, require_labels=False, check=True, require_pow2=True, verbose=True,
        **dataset_opts):
    """Resolve train.py's --data (and --cfg, for the built-in dataset) to ImageFolderDataset kwargs.

    data: one of the kinds of data_kind(): a path (see sources), a built-in name (builtin.BUILTIN: 'cifar10',
    'mnist', ...), a 2-D toy ('ring8', 'grid25', 'grid25-unequal': points.PointDataset kwargs), or None/'' = the
    built-in dataset of the config (only --cfg=cifar has one: CIFAR-10, downloaded once into the cache).
    Returns (kwargs, name): kwargs for dnnlib.util.construct_class_by_name with class_name, path, use_labels
    (= the dataset has labels), max_size (= its size), xflip=False and resolution, plus any `dataset_opts`
    (e.g. idx_resolution); name is the dataset's short name for the run directory.
    `dataset_opts` are further ImageFolderDataset arguments (idx_resolution, random_seed); the kwargs this
    function manages cannot be among them. require_labels=True (for --cond=1) fails when there are no labels;
    check=False skips the per-image header check; require_pow2=False allows e.g. 28x28 for small networks.
    Every problem raises one DatasetError whose message names the file, folder or flag."""
    managed = sorted(set(dataset_opts) & {'path', 'use_labels', 'max_size', 'xflip', 'resolution', 'class_name'})
    if managed:
        raise TypeError(f'dataset_kwargs_from_data: {", ".join(managed)} cannot be given; it sets them itself')
    if data is None or str(data) == '':
        if cfg != 'cifar':
            raise DatasetError(f'no dataset given: --data must be {sources.SUPPORTED}; only --cfg=cifar '
                f'has a built-in dataset (CIFAR-10)')
        data = 'cifar10'
    data = os.path.expanduser(str(data))
    kind = data_kind(data)
    if kind == 'points':
        return points.point_dataset_kwargs(data)
    path = builtin.BUILTIN[data](verbose=verbose) if kind == 'builtin' else data

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
        kwargs = dnnlib.EasyDict(class_name='stylegan_som.data.images.ImageFolderDataset', path=path,
            use_labels=dataset.has_labels, max_size=len(dataset), xflip=False, resolution=w, **dataset_opts)
        return kwargs, dataset.name
    finally:
        dataset.close()

#----------------------------------------------------------------------------
