"""Decoding every image of a dataset once before training (train.py --check-images=full).

The start-up check of stylegan_som.data reads image headers only, so a file with damaged pixel data passes
it and stops the run when a data-loader worker first reaches it, maybe hours in. Here every image is decoded
once, in data-loader worker processes, and all unreadable ones are reported together; with
--skip-bad-images the run leaves them out instead (the dataset's `exclude` argument) and says how many.
Array sources (CIFAR-10 batches, MNIST idx files) hold decoded pixels already and are not checked."""

import json
import os
import sys

import torch

import dnnlib

from .data.sources import DatasetError

#----------------------------------------------------------------------------

MODES = ('full', 'none')
FULL_LIMIT = 100_000 # default: 'full' for datasets with fewer images than this, else 'none'
SHOW = 5 # names in the error message; the rest are counted
IN_PROCESS = 2_000 # fewer images than this are decoded without worker processes
SILENT = 1_000 # no progress bar for fewer images (a fraction of a second)

class _Decode(torch.utils.data.Dataset):
    """Item i: (i, None) if raw image i decodes (with the dataset's size/channel check), else (i, reason)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return self.dataset._raw_shape[0] # pylint: disable=protected-access

    def __getitem__(self, idx):
        try:
            self.dataset._load_raw_image(idx) # pylint: disable=protected-access
            return idx, None
        except Exception as e: # pylint: disable=broad-except
            return idx, str(e) if isinstance(e, DatasetError) else f'{type(e).__name__}: {e}'

def default_mode(num_images):
    return 'full' if num_images < FULL_LIMIT else 'none'

def find_unreadable(dataset, num_workers=0, progress=True):
    """[(raw index, reason)] of the images of an ImageFolderDataset that do not decode, in file order."""
    loader = torch.utils.data.DataLoader(_Decode(dataset), batch_size=None, num_workers=num_workers,
        collate_fn=_keep, prefetch_factor=(64 if num_workers > 0 else None))
    from tqdm import tqdm # pylint: disable=import-outside-toplevel
    bad = []
    with tqdm(total=len(loader.dataset), desc='Decoding images', unit='img', file=sys.stderr, disable=not progress,
            mininterval=0.5, leave=False) as bar:
        for idx, reason in loader:
            if reason is not None:
                bad.append((int(idx), reason))
            bar.update(1)
    return sorted(bad)

def _keep(item):
    return item

def _marker(dataset):
    fingerprint = dataset._source.fingerprint() # pylint: disable=protected-access
    return dnnlib.make_cache_dir_path('datasets', 'decoded', f'{fingerprint}.json') if fingerprint else None

def check(training_set_kwargs, mode=None, skip_bad=False, num_workers=0, progress=True):
    """Decode every image of the dataset `training_set_kwargs` describes (mode 'full'; None: the default for its
    size). Unreadable images raise one DatasetError naming the first few and the count, or, with skip_bad,
    are left out: returns (kwargs with `exclude` set, message) then; else (the kwargs as given, None)."""
    if mode is not None and mode not in MODES:
        raise ValueError(f'--check-images must be one of {", ".join(MODES)}, got {mode!r}')
    if not str(training_set_kwargs.get('class_name', '')).endswith('.ImageFolderDataset'):
        return training_set_kwargs, None # generated points, not images
    kwargs = dnnlib.EasyDict(training_set_kwargs)
    dataset = dnnlib.util.construct_class_by_name(**kwargs)
    try:
        source = dataset._source # pylint: disable=protected-access
        num = len(source)
        mode = mode or default_mode(num)
        marker = _marker(dataset)
        if mode == 'none' or source.uniform or (marker is not None and os.path.isfile(marker)):
            return kwargs, None
        # Small datasets decode in this process: starting workers would take longer than the decoding.
        bad = find_unreadable(dataset, num_workers=(num_workers if num >= IN_PROCESS else 0), progress=(progress and num >= SILENT))
    finally:
        dataset.close()
    if not bad:
        if marker is not None:
            try:
                os.makedirs(os.path.dirname(marker), exist_ok=True)
                with open(marker, 'w') as f:
                    json.dump(dict(path=os.path.abspath(source.path), num_images=num), f)
            except OSError:
                pass # only a shortcut for next time
        return kwargs, None
    names = [source.item_name(idx) for idx, _reason in bad]
    shown = '; '.join(reason for _idx, reason in bad[:SHOW]) + (f'; and {len(bad) - SHOW} more' if len(bad) > SHOW else '')
    if not skip_bad:
        raise DatasetError(f'{len(bad)} of {num} images cannot be decoded: {shown}. Fix or remove them, or pass '
            f'--skip-bad-images to train on the other {num - len(bad)}')
    kwargs.exclude = [idx for idx, _reason in bad]
    if kwargs.get('max_size') is not None:
        kwargs.max_size = min(kwargs.max_size, num - len(bad))
    listed = ', '.join(names[:SHOW]) + (f' and {len(bad) - SHOW} more' if len(bad) > SHOW else '')
    return kwargs, f'Warning: skipping {len(bad)} of {num} images that cannot be decoded ({listed}); training on {num - len(bad)}.'

#----------------------------------------------------------------------------
