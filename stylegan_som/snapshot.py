"""Network snapshots that survive a kill, and the training state that lets a run resume exactly.

A snapshot is upstream's network pickle (a dict with G, D, G_ema, augment_pipe, training_set_kwargs) plus one
extra key, `training_state`, holding only plain Python values, NumPy arrays and torch tensors: no class from
this package, so upstream's loader (which ignores unknown keys) still opens the file."""

import glob
import os
import pickle
import random
import re
import tempfile

import numpy as np
import torch

#----------------------------------------------------------------------------

STATE_KEY = 'training_state'
STATE_VERSION = 1
SNAPSHOT_RE = re.compile(r'^network-snapshot-(\d+)\.(pkl|safetensors)$') # not the .state.safetensors beside one

#----------------------------------------------------------------------------
# Atomic write.

class SnapshotWriteError(OSError):
    """A snapshot could not be written (disk full, quota, permissions); the message names the file. Whatever was
    at that path before is intact, and so are the other snapshots."""

def atomic_write_pickle(obj, path):
    """Pickle `obj` to `path` so that `path` is either the old file or the complete new one, whatever moment
    the process dies (see atomic_write). An OSError becomes a SnapshotWriteError."""
    atomic_write(path, lambda f: pickle.dump(obj, f, protocol=4)) # 4: readable by every Python 3 that upstream supports

def atomic_write_bytes(data, path):
    """Write `data` to `path` atomically, as atomic_write_pickle does."""
    atomic_write(path, lambda f: f.write(data))

def atomic_write(path, write_fn):
    """Call `write_fn(binary file)` on a hidden temporary file in the same directory (same file system, so the
    rename is atomic), fsync it, then os.replace() it over `path`. An OSError becomes a SnapshotWriteError."""
    path = os.path.abspath(path)
    dirname, basename = os.path.split(path)
    try:
        fd, tmp_path = tempfile.mkstemp(dir=dirname, prefix=f'.{basename}.', suffix='.tmp')
    except OSError as e:
        raise SnapshotWriteError(_write_error(path, e)) from e
    try:
        with os.fdopen(fd, 'wb') as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask()) # mkstemp makes it private; give it what open() would
        os.replace(tmp_path, path)
    except BaseException as e:
        try:
            os.remove(tmp_path)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise SnapshotWriteError(_write_error(path, e)) from e
        raise
    _fsync_dir(dirname)

def _write_error(path, e):
    return f'Cannot write {path}: {e.strerror or e}; nothing was replaced, earlier snapshots are intact'

def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask

def _fsync_dir(dirname):
    # Makes the rename itself durable on power loss; not possible on every platform, hence best effort.
    try:
        fd = os.open(dirname, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

def remove_stale_temp_files(run_dir):
    """Delete temporary files a killed writer left behind (they end in .tmp, never in .pkl or .safetensors)."""
    for path in glob.glob(os.path.join(glob.escape(run_dir), '.network-snapshot-*.tmp')):
        try:
            os.remove(path)
        except OSError:
            pass

#----------------------------------------------------------------------------
# Finding snapshots.

def list_snapshots(run_dir):
    """Complete snapshots in `run_dir`, sorted by kimg (temporary files are not matched); where a kimg has both a
    .pkl and a .safetensors snapshot, the pickle comes last."""
    found = []
    if os.path.isdir(run_dir):
        for name in os.listdir(run_dir):
            m = SNAPSHOT_RE.match(name)
            if m:
                found.append((int(m.group(1)), m.group(2) == 'pkl', os.path.join(run_dir, name)))
    return [path for _kimg, _is_pkl, path in sorted(found)]

def find_latest_snapshot(outdir):
    """Newest snapshot under `outdir`: the highest-numbered snapshot of the highest-numbered run directory
    (`NNNNN-desc`) that holds one, or None. A run killed before its first snapshot is skipped."""
    if not os.path.isdir(outdir):
        return None
    runs = []
    for name in os.listdir(outdir):
        m = re.match(r'^(\d+)', name)
        if m and os.path.isdir(os.path.join(outdir, name)):
            runs.append((int(m.group(1)), name))
    for _run_id, name in sorted(runs, reverse=True):
        snaps = list_snapshots(os.path.join(outdir, name))
        if snaps:
            return snaps[-1]
    return None

#----------------------------------------------------------------------------
# RNG state: plain tensors/tuples, one entry per generator.

def capture_rng_state(device=None):
    state = dict(torch=torch.get_rng_state(), numpy=np.random.get_state(), python=random.getstate())
    if device is not None and torch.device(device).type == 'cuda':
        state['cuda'] = torch.cuda.get_rng_state(device)
    return state

def restore_rng_state(state, device=None):
    torch.set_rng_state(state['torch'])
    np.random.set_state(state['numpy'])
    random.setstate(state['python'])
    if 'cuda' in state and device is not None and torch.device(device).type == 'cuda':
        torch.cuda.set_rng_state(state['cuda'], device)

#----------------------------------------------------------------------------
# Optimizer state: moved to CPU so the pickle does not depend on the device it was written on.

def to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj

#----------------------------------------------------------------------------

def get_training_state(data):
    """The training state stored in a loaded snapshot dict, or None for a pickle without one (e.g. upstream's)."""
    state = data.get(STATE_KEY) if isinstance(data, dict) else None
    if state is None:
        return None
    version = state.get('version')
    if version != STATE_VERSION:
        raise ValueError(f'training state version {version!r} is not supported (expected {STATE_VERSION})')
    return state

def check_plain(obj, where=STATE_KEY):
    """Raise if `obj` holds anything but plain containers, numbers, strings, NumPy arrays and tensors, so that
    the training state never drags a class of this package into the pickle."""
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, np.ndarray, np.generic, torch.Tensor)):
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            check_plain(k, where)
            check_plain(v, f'{where}[{k!r}]')
        return
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            check_plain(v, f'{where}[{i}]')
        return
    raise TypeError(f'{where}: {type(obj).__module__}.{type(obj).__qualname__} is not allowed in the training '
        'state (plain values, NumPy arrays and tensors only)')

#----------------------------------------------------------------------------
