"""Network snapshots as safetensors: weights only, nothing in the file is ever run or imported.

A weights file (`x.safetensors`) holds every parameter and buffer of G, G_ema, D (SOMGAN layouts: D0 .. D{K-1})
and augment_pipe, named `<network>/<tensor name>`, and in its metadata, as JSON, each network's class name and
init args/kwargs plus the pickle's training_set_kwargs. Loading builds each network with a class of this
installation looked up by name in a fixed table (CLASSES: the persistent network, head, block and augmentation
classes of this package), never by importing a name from the file, then copies every tensor in; the tensors must
match the built network exactly. A network of another code base (upstream StyleGAN2-ADA, SOMGAN) is written under
the name of this package's class that stands in for it (guess_class_name, which attach uses too), as attach
rebuilds it.

The training state that lets a run continue exactly (optimizer states, counters, RNG states) goes in a second
file next to it, `x.state.safetensors`: its tensors, and the rest of the tree as tagged JSON in the metadata
(tuples, non-string dict keys, NumPy arrays and scalars keep their types). load() picks that file up when it is
there.

Snapshots in either format are written by write_snapshot() (the training loop's --snap-format). Of this package,
this module imports only snapshot (for its atomic writes), so that legacy and attach can use it without an
import circle (tests/test_layering.py)."""

import base64
import json
import os
import pkgutil
import re
import struct

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

FORMAT = 'stylegan-som-weights'
STATE_FORMAT = 'stylegan-som-training-state'
VERSION = 1
SUFFIX = '.safetensors'
STATE_SUFFIX = '.state.safetensors'
NETWORK_KEYS = ('G', 'G_ema', 'D', 'augment_pipe') # plus D0 .. D{K-1} of SOMGAN pickles
STATE_KEY = 'training_state'

class WeightsError(IOError):
    """A weights file cannot be written or used; the message names the file."""

class UnknownClassError(ValueError):
    """guess_class_name found no single class of this package for a network."""

def state_path(path):
    """The training-state file that goes with the weights file `path`."""
    path = os.fspath(path)
    return (path[:-len(SUFFIX)] if path.endswith(SUFFIX) else path) + STATE_SUFFIX

def is_weights_file(head):
    """Whether the first bytes of a file (at least 9) look like safetensors: a little-endian u64 header length,
    then the JSON header. Pickles start with 0x80 (protocol 2 and up), so the two never mix."""
    if len(head) < 9 or head[8:9] != b'{':
        return False
    return 2 <= struct.unpack('<Q', head[:8])[0] < 2**28

#----------------------------------------------------------------------------
# The classes a weights file may name: this package's own, from its modules (not from the file).

_CLASS_PACKAGES = ('stylegan_som.networks', 'stylegan_som.heads', 'stylegan_som.blocks')
_CLASS_MODULES = ('stylegan_som.augment',)
_classes = None

def classes():
    """{dotted class name: class} of every persistent class of this package's network modules, by each name they
    are known under there."""
    global _classes # pylint: disable=global-statement
    if _classes is None:
        import importlib # pylint: disable=import-outside-toplevel
        names = list(_CLASS_MODULES)
        for package in _CLASS_PACKAGES:
            pkg = importlib.import_module(package)
            names += [f'{package}.{info.name}' for info in pkgutil.iter_modules(pkg.__path__)]
        found = dict()
        for module_name in names:
            module = importlib.import_module(module_name)
            for attr, obj in vars(module).items():
                # Aliases too (networks.dcgan.Generator is small.DCGANGenerator): the names run options record.
                if isinstance(obj, type) and persistence.is_persistent(obj) and obj.__mro__[1].__module__ in names:
                    found[f'{module_name}.{attr}'] = obj
        _classes = found
    return _classes

# Classes of this code base that stand in for networks written elsewhere, by class name.
STYLEGAN2 = 'stylegan_som.networks.stylegan2'

def guess_class_name(module, what):
    """This code base's class for a network from a pickle: StyleGAN2's Generator/Discriminator for those names
    (upstream's, SOMGAN's and ours are interchangeable), else the persistent class of that name in one of
    the stylegan_som.networks modules. Raises UnknownClassError."""
    import importlib # pylint: disable=import-outside-toplevel
    networks = importlib.import_module('stylegan_som.networks')
    name = type(module).__name__
    if name in ('Generator', 'Discriminator'):
        return f'{STYLEGAN2}.{name}'
    found_classes = dict() # class -> dotted name in the module that defines it (modules may re-export)
    for info in pkgutil.iter_modules(networks.__path__):
        mod_name = f'{networks.__name__}.{info.name}'
        cls = getattr(importlib.import_module(mod_name), name, None)
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
            home = cls.__mro__[1].__module__ if persistence.is_persistent(cls) else cls.__module__
            if cls not in found_classes or home == mod_name:
                found_classes[cls] = f'{mod_name}.{name}'
    found = sorted(found_classes.values())
    if len(found) != 1:
        why = 'no class here has that name' if not found else f'several classes have that name ({", ".join(found)})'
        raise UnknownClassError(f'{what}: cannot tell which network class rebuilds {name!r}: {why}')
    return found[0]

def class_name_of(module, what):
    """The CLASSES name that builds `module`: its own for this package's classes; for a class of another code base
    (upstream's, SOMGAN's) the class of this package that stands in for it."""
    cls = type(module)
    base = cls.__mro__[1] if persistence.is_persistent(cls) else cls
    name = f'{base.__module__}.{base.__qualname__}'
    if name in classes():
        return name
    if cls.__name__ == 'AugmentPipe':
        return 'stylegan_som.augment.AugmentPipe'
    try:
        return guess_class_name(module, what)
    except UnknownClassError as err:
        raise WeightsError(str(err)) from err

def _check_class_names(obj, where, path):
    # Networks build their plugins (heads, attention) from class_name entries of their kwargs: those too must be ours.
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == 'class_name' and v not in classes():
                raise WeightsError(f'{path}: {where} names class {v!r}, which is not a network class of this installation')
            _check_class_names(v, f'{where}.{k}', path)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_class_names(v, f'{where}[{i}]', path)

#----------------------------------------------------------------------------
# Tagged JSON: plain values stay readable; the rest is marked so that it comes back with its type.

def encode(obj, tensors, where):
    """JSON-able form of `obj`; tensors (and NumPy arrays, as bytes) go into `tensors` under generated names."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, torch.Tensor):
        key = f't{len(tensors)}'
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {'__tensor__': key}
    if isinstance(obj, np.ndarray):
        key = f't{len(tensors)}'
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj).reshape(-1).view(np.uint8).copy())
        return {'__ndarray__': key, 'dtype': obj.dtype.str, 'shape': list(obj.shape)}
    if isinstance(obj, np.generic):
        return {'__npscalar__': obj.dtype.str, 'bytes': base64.b64encode(obj.tobytes()).decode('ascii')}
    if isinstance(obj, bytes):
        return {'__bytes__': base64.b64encode(obj).decode('ascii')}
    if isinstance(obj, torch.dtype):
        return {'__dtype__': str(obj).split('.')[-1]}
    if isinstance(obj, tuple):
        return {'__tuple__': [encode(v, tensors, f'{where}[{i}]') for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [encode(v, tensors, f'{where}[{i}]') for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith('__') for k in obj):
            return {k: encode(v, tensors, f'{where}[{k!r}]') for k, v in obj.items()}
        return {'__dict__': [[encode(k, tensors, where), encode(v, tensors, f'{where}[{k!r}]')] for k, v in obj.items()]}
    raise WeightsError(f'{where}: a {type(obj).__module__}.{type(obj).__qualname__} cannot be stored in a safetensors file')

def decode(obj, tensors, where):
    """Inverse of encode(); str-keyed dicts come back as dnnlib.EasyDict."""
    if isinstance(obj, list):
        return [decode(v, tensors, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if '__tensor__' in obj:
        return tensors[obj['__tensor__']].clone()
    if '__ndarray__' in obj:
        raw = tensors[obj['__ndarray__']].numpy()
        return raw.view(np.dtype(obj['dtype'])).reshape(obj['shape']).copy()
    if '__npscalar__' in obj:
        return np.frombuffer(base64.b64decode(obj['bytes']), dtype=np.dtype(obj['__npscalar__']))[0]
    if '__bytes__' in obj:
        return base64.b64decode(obj['__bytes__'])
    if '__dtype__' in obj:
        dtype = getattr(torch, obj['__dtype__'], None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f'{where}: unknown torch dtype {obj["__dtype__"]!r}')
        return dtype
    if '__tuple__' in obj:
        return tuple(decode(v, tensors, where) for v in obj['__tuple__'])
    if '__dict__' in obj:
        return {decode(k, tensors, where): decode(v, tensors, where) for k, v in obj['__dict__']}
    return dnnlib.EasyDict({k: decode(v, tensors, where) for k, v in obj.items()})

#----------------------------------------------------------------------------
# Writing.

def count_numbered_discriminators(data):
    """K of a SOMGAN snapshot's D0 .. D{K-1} (0 where there are none)."""
    idx = sorted(int(m.group(1)) for key in data if isinstance(key, str) for m in [re.fullmatch(r'D(\d+)', key)] if m)
    k = 0
    while k in idx:
        k += 1
    return k

def network_keys(data):
    keys = [k for k in NETWORK_KEYS if data.get(k) is not None]
    return keys + [f'D{i}' for i in range(count_numbered_discriminators(data)) if data.get('D') is None]

def to_bytes(data, name='the networks'):
    """The weights file for a snapshot dict (as legacy.load_network_pkl returns it), as bytes."""
    from safetensors.torch import save # pylint: disable=import-outside-toplevel
    tensors, nets = dict(), dict()
    for key in network_keys(data):
        module = data[key]
        if not hasattr(module, 'init_kwargs'):
            raise WeightsError(f'{name}: {key} ({type(module).__name__}) records no init kwargs (not a persistent class), '
                'so it could not be rebuilt from a weights file')
        scratch = dict()
        class_name = class_name_of(module, key)
        kwargs = dict(module.init_kwargs)
        if class_name.endswith(('.Generator', '.Discriminator')) and 'c_dim' not in kwargs:
            kwargs['c_dim'] = 0 # SOMGAN's networks take no labels (as attach.rebuild has it)
        nets[key] = dict(class_name=class_name, init_args=encode(tuple(module.init_args), scratch, f'{key}.init_args'),
            init_kwargs=encode(kwargs, scratch, f'{key}.init_kwargs'))
        if scratch:
            raise WeightsError(f'{name}: {key} was built with tensor arguments, which a weights file cannot record')
        for tname, t in misc.named_params_and_buffers(module):
            tensors[f'{key}/{tname}'] = t.detach().cpu().contiguous().clone()
    scratch = dict()
    metadata = dict(format=FORMAT, version=str(VERSION), networks=json.dumps(nets),
        training_set_kwargs=json.dumps(encode(data.get('training_set_kwargs'), scratch, 'training_set_kwargs')))
    if scratch:
        raise WeightsError(f'{name}: training_set_kwargs holds tensors, which a weights file cannot record')
    return save(tensors, metadata=metadata)

def state_to_bytes(state):
    """The training-state file for a snapshot's training state (plain values, arrays, tensors), as bytes."""
    from safetensors.torch import save # pylint: disable=import-outside-toplevel
    tensors = dict()
    tree = encode(state, tensors, STATE_KEY)
    return save(tensors, metadata=dict(format=STATE_FORMAT, version=str(VERSION), tree=json.dumps(tree)))

def save(data, path):
    """Write the weights file `path` and, if `data` has a training state, its state file, each atomically
    (state first, so a weights file never lacks the state it was written with). Write errors raise
    snapshot.SnapshotWriteError naming the file."""
    from . import snapshot # pylint: disable=import-outside-toplevel
    weights = to_bytes(data, path)
    if data.get(STATE_KEY) is not None:
        snapshot.atomic_write_bytes(state_to_bytes(data[STATE_KEY]), state_path(path))
    snapshot.atomic_write_bytes(weights, path)

SNAPSHOT_FORMATS = ('pkl', 'safetensors', 'both')

def write_snapshot(data, path, snapshot_format='pkl'):
    """Write a snapshot dict as `path` (a .pkl), as its .safetensors sibling (weights, plus the training state in
    a .state.safetensors file), or both. Returns the file to resume from: the pickle where one is written."""
    from . import snapshot # pylint: disable=import-outside-toplevel
    target = snapshot_path(path, snapshot_format)
    if snapshot_format in ('safetensors', 'both'):
        save(data, os.path.splitext(path)[0] + SUFFIX)
    if snapshot_format in ('pkl', 'both'):
        snapshot.atomic_write_pickle(data, path)
    return target

def snapshot_path(path, snapshot_format='pkl'):
    """The file write_snapshot(data, path, snapshot_format) returns."""
    if snapshot_format not in SNAPSHOT_FORMATS:
        raise ValueError(f'snapshot_format must be one of {", ".join(SNAPSHOT_FORMATS)}, got {snapshot_format!r}')
    return path if snapshot_format != 'safetensors' else os.path.splitext(path)[0] + SUFFIX

#----------------------------------------------------------------------------
# Reading.

def _parse(buf, path, fmt):
    from safetensors.torch import load as st_load # pylint: disable=import-outside-toplevel
    try:
        (n,) = struct.unpack('<Q', buf[:8])
        header = json.loads(buf[8:8 + n])
        meta = header.get('__metadata__') or {}
        tensors = st_load(bytes(buf))
    except Exception as err: # truncated or corrupt
        raise WeightsError(f'Cannot read {path}: not a valid safetensors file (truncated or corrupt; {type(err).__name__}: {err})') from err
    if meta.get('format') != fmt:
        raise WeightsError(f'{path} is a safetensors file but not a stylegan-som {"training state" if fmt == STATE_FORMAT else "snapshot"} '
            f'(metadata format {meta.get("format")!r}, expected {fmt!r})')
    if meta.get('version') != str(VERSION):
        raise WeightsError(f'{path}: format version {meta.get("version")!r} is not supported (this code reads {VERSION})')
    return meta, tensors

def _build(key, spec, tensors, path):
    cls = classes().get(spec.get('class_name'))
    if cls is None:
        raise WeightsError(f'{path}: {key} names class {spec.get("class_name")!r}, which is not a network class of this '
            'installation (nothing was imported)')
    args = decode(spec.get('init_args', {'__tuple__': []}), {}, key)
    kwargs = decode(spec.get('init_kwargs', {}), {}, key)
    _check_class_names(kwargs, f'{key} init kwargs', path)
    try:
        module = cls(*args, **kwargs)
    except Exception as err:
        raise WeightsError(f'{path}: cannot build {key} as {spec["class_name"]}: {type(err).__name__}: {err}') from err
    prefix = f'{key}/'
    src = {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}
    dst = dict(misc.named_params_and_buffers(module))
    missing = sorted(set(dst) - set(src))
    extra = sorted(set(src) - set(dst))
    bad = sorted(n for n in set(dst) & set(src) if dst[n].shape != src[n].shape)
    if missing or extra or bad:
        parts = [f'{what}: {", ".join(names[:3])}{", ..." if len(names) > 3 else ""}'
            for what, names in [('missing', missing), ('not in the network', extra), ('other shape', bad)] if names]
        raise WeightsError(f'{path}: the tensors of {key} do not fit {spec["class_name"]} ({"; ".join(parts)})')
    with torch.no_grad():
        for name, t in dst.items():
            t.copy_(src[name])
    return module.eval().requires_grad_(False)

def load(f, path=None):
    """The snapshot dict of a weights file (a binary file object or a path): networks, training_set_kwargs and,
    where the state file lies next to it, the training state. Raises WeightsError naming the file."""
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        with open(path, 'rb') as fp:
            return load(fp, path)
    path = path or os.fsdecode(getattr(f, 'name', 'safetensors stream'))
    meta, tensors = _parse(f.read(), path, FORMAT)
    try:
        nets = json.loads(meta['networks'])
        data = dict(training_set_kwargs=decode(json.loads(meta.get('training_set_kwargs', 'null')), {}, 'training_set_kwargs'))
    except (KeyError, ValueError, TypeError) as err:
        raise WeightsError(f'{path}: unreadable metadata ({type(err).__name__}: {err})') from err
    tsk = data['training_set_kwargs']
    if isinstance(tsk, dict) and not str(tsk.get('class_name', 'stylegan_som.')).startswith(('stylegan_som.', 'training.dataset.')):
        raise WeightsError(f'{path}: training_set_kwargs names dataset class {tsk["class_name"]!r}, which is not one of this installation')
    for key, spec in nets.items():
        if not isinstance(spec, dict):
            raise WeightsError(f'{path}: unreadable metadata for {key}')
        data[key] = _build(key, spec, tensors, path)
    data.setdefault('augment_pipe', None)
    data.setdefault('D', None) # a pickle may have D=None (upstream's loader keeps it); SOMGAN files have D0 ..
    spath = state_path(path)
    if path.endswith(SUFFIX) and os.path.isfile(spath):
        with open(spath, 'rb') as fp:
            smeta, stensors = _parse(fp.read(), spath, STATE_FORMAT)
        try:
            data[STATE_KEY] = decode(json.loads(smeta['tree']), stensors, STATE_KEY)
        except (KeyError, ValueError, TypeError) as err:
            raise WeightsError(f'{spath}: unreadable metadata ({type(err).__name__}: {err})') from err
        _check_class_names(data[STATE_KEY], STATE_KEY, spath) # attach builds G_kwargs/D_kwargs.class_name
    return data

#----------------------------------------------------------------------------
