"""Loading network pickles written by StyleGAN2-ADA, by the official SOMGAN StyleGAN code, or by this project,
and this project's safetensors weights files (stylegan_som.weights), which are told apart by their first bytes.

A network pickle is a dict pickled through `torch_utils.persistence`: every network class carries the
source of its module, which is executed against the installed `dnnlib` / `torch_utils` on load. Layouts:

    StyleGAN2-ADA / here:  G, D, G_ema, augment_pipe, training_set_kwargs (+ extra keys, kept as they are)
    SOMGAN (style code):   G, G_ema, D0 .. D{K-1}, augment_pipe, training_set_kwargs
                           (K full discriminators instead of D; G has no label input and no `c_dim`)

`load_network_pkl` returns the dict with the same keys as upstream's loader. For a SOMGAN pickle `D` is
None and `D0` .. `D{K-1}` are left as they are: picking one of them silently would drop the others, so
callers that need discriminators use `discriminators(data)`, which covers both layouts.

Generators differ in whether `forward`/`mapping` take a label `c`; `run_generator`, `run_mapping` and
`label_dim` hide that so generate.py and the metrics treat every generator alike.

Unpickling a pickle can run any code the file names, and this format executes the module sources it embeds.
`load_network_pkl` therefore unpickles through torch_utils.persistence.load: only tensors, arrays, containers
and the persistent classes of known sources (this installation's modules, released StyleGAN2-ADA/SOMGAN files)
are rebuilt; anything else is refused, naming what it would have run, unless the caller trusts the file
(trust=True: the CLIs' --trust-pickle, or SGSOM_TRUST_PICKLES=1).
"""

import copy
import functools
import inspect
import io
import os
import pickle
import re

import torch

import dnnlib
from torch_utils import persistence
from torch_utils import safe_pickle

from . import weights

#----------------------------------------------------------------------------

class NetworkPickleError(IOError):
    """A file cannot be used as a network pickle: unreadable, not a pickle, truncated, unsupported format,
    embedded code that fails against this dnnlib/torch_utils, or missing networks. The message names the file."""

#----------------------------------------------------------------------------

TRUST_HINT = f'if you trust the file, load it with --trust-pickle (or {persistence.TRUST_ENV}=1)'

def load_network_pkl(f, force_fp16=False, trust=None):
    """Load a network pickle from a binary file object (or a path) and return its dict.

    trust=False (None: unless SGSOM_TRUST_PICKLES=1) refuses files that would run unknown code, see the module
    docstring; trust=True runs whatever the file holds, as upstream's loader does.

    The dict always has G, D, G_ema, augment_pipe and training_set_kwargs (missing optional entries are
    None; D is None for SOMGAN pickles, see the module docstring). With `force_fp16`, the networks are
    rebuilt from their init kwargs with the 4 highest resolutions in FP16 and conv_clamp=256, as upstream
    does, and their parameters copied over.

    Any failure raises NetworkPickleError naming the file.
    """
    if isinstance(f, (str, os.PathLike)):
        path = os.fspath(f)
        try:
            fp = open(path, 'rb') # pylint: disable=consider-using-with
        except FileNotFoundError as e:
            raise NetworkPickleError(f'Network pickle not found: {path}') from e
        except OSError as e: # a directory, no permission, ...
            raise NetworkPickleError(f'Cannot open network pickle {path}: {e.strerror or e}') from e
        with fp:
            return load_network_pkl(fp, force_fp16=force_fp16, trust=trust)

    name = _describe(f)
    f, data = _read_if_weights(f, name) # a weights file holds no pickle, so trust does not apply to it
    if data is None:
        try:
            if persistence.trust_from_env() if trust is None else trust:
                data = _Unpickler(f).load()
            else:
                data = persistence.load(f, trust=False, unpickler_class=_SafeUnpickler)
        except Exception as e: # MemoryError included: a corrupt length field can ask for terabytes
            raise NetworkPickleError(_explain_load_failure(name, e)) from e

    if isinstance(data, tuple) and any(isinstance(x, _TFNetworkStub) for x in data):
        raise NetworkPickleError(f'{name} is a TensorFlow StyleGAN/StyleGAN2 network pickle, which is not supported here. '
            f'Convert it to the PyTorch format first, e.g. with the `legacy.py --source=... --dest=...` tool of '
            f'NVlabs/stylegan2-ada-pytorch, then load the converted file.')
    if not isinstance(data, dict):
        raise NetworkPickleError(f'{name} is a pickle but not a network snapshot: expected a dict with G, D and G_ema, '
            f'got {type(data).__name__}')

    data.setdefault('training_set_kwargs', None)
    data.setdefault('augment_pipe', None)
    num_D = weights.count_numbered_discriminators(data)
    if 'D' not in data and num_D > 0:
        data['D'] = None # SOMGAN layout
    _validate(data, name, num_D)

    if force_fp16:
        keys = ['G', 'G_ema'] + (['D'] if data['D'] is not None else []) + [f'D{i}' for i in range(num_D)]
        for key in keys:
            data[key] = _rebuild_fp16(data[key], is_G=key.startswith('G'), name=name, key=key)
    return data

#----------------------------------------------------------------------------

def discriminators(data):
    """List of the discriminators in a loaded pickle: [D] for StyleGAN2-ADA layouts, [D0, .., D{K-1}] for SOMGAN."""
    if data.get('D') is not None:
        return [data['D']]
    return [data[f'D{i}'] for i in range(weights.count_numbered_discriminators(data))]

#----------------------------------------------------------------------------
# Calling generators with or without a label input.

def label_dim(G):
    """Dimensionality of G's label input; 0 for unconditional generators and for ones without `c_dim` (SOMGAN)."""
    return int(getattr(G, 'c_dim', 0) or 0)


def takes_labels(module):
    """True if `module.forward` has a `c` parameter (StyleGAN2-ADA G and G.mapping), False otherwise (SOMGAN)."""
    return _forward_has_c(type(module))


@functools.lru_cache(maxsize=None)
def _forward_has_c(cls):
    try:
        params = inspect.signature(cls.forward).parameters
    except (TypeError, ValueError): # builtins without a signature: assume the upstream interface
        return True
    if 'c' in params:
        return True
    # forward(z, *args, ...) is a wrapper passing through to an upstream-style G; SOMGAN's is forward(z, psi, cutoff, **kw).
    return any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params.values())


def _check_label(module, c, what):
    if c is None or c.ndim < 2 or c.shape[1] == 0:
        return
    if not takes_labels(module):
        raise ValueError(f'{what} ({type(module).__name__}) takes no class label, but a label of dimension {c.shape[1]} was given')


def run_generator(G, z, c=None, **kwargs):
    """G(z, c, **kwargs) for generators with a label input, G(z, **kwargs) for those without.

    `c` may be None (an all-zero [N, c_dim] label is used where G needs one); giving a non-empty label
    to a generator that takes none is an error rather than silently ignored."""
    if not takes_labels(G):
        _check_label(G, c, 'generator')
        return G(z, **kwargs)
    if c is None:
        c = torch.zeros([z.shape[0], label_dim(G)], device=z.device)
    return G(z, c, **kwargs)


def run_mapping(G, z, c=None, **kwargs):
    """G.mapping(z, c, **kwargs) or G.mapping(z, **kwargs), like run_generator."""
    mapping = G.mapping
    if not takes_labels(mapping):
        _check_label(mapping, c, 'mapping network')
        return mapping(z, **kwargs)
    if c is None:
        c = torch.zeros([z.shape[0], label_dim(G)], device=z.device)
    return mapping(z, c, **kwargs)

#----------------------------------------------------------------------------
# Internals.

class _TFNetworkStub(dnnlib.EasyDict):
    """Stands in for dnnlib.tflib.network.Network so TensorFlow pickles can be recognised (and rejected)."""


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == 'dnnlib.tflib.network' and name == 'Network':
            return _TFNetworkStub
        return super().find_class(module, name)


class _SafeUnpickler(persistence.NetworkUnpickler):
    def check(self, module, name):
        if module == 'dnnlib.tflib.network' and name == 'Network':
            return _TFNetworkStub
        return super().check(module, name)


def _read_if_weights(f, name):
    """(f, None) for a pickle, (f, snapshot dict) for a safetensors weights file (stylegan_som.weights)."""
    if not (hasattr(f, 'seekable') and f.seekable()):
        f = io.BytesIO(f.read()) # a stream: keep what is read for the unpickler
    try:
        pos = f.tell()
        head = f.read(9)
        f.seek(pos)
    except OSError as e:
        raise NetworkPickleError(f'Cannot read {name}: {e.strerror or e}') from e
    if not weights.is_weights_file(head):
        return f, None
    path = getattr(f, 'name', None)
    path = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else None
    try:
        return f, weights.load(f, path=path)
    except weights.WeightsError as e:
        raise NetworkPickleError(str(e)) from e
    except Exception as e: # metadata a writer of this format never makes (wrong types, missing entries, ...)
        raise NetworkPickleError(f'Cannot load {path or name}: unusable safetensors metadata ({type(e).__name__}: {e})') from e

def _describe(f):
    name = getattr(f, 'name', None)
    if isinstance(name, (str, bytes, os.PathLike)):
        return f'network pickle "{os.fsdecode(name)}"'
    return 'network pickle (in-memory stream)' if isinstance(f, io.BytesIO) else f'network pickle {f!r}'


def _explain_load_failure(name, e):
    msg = f'{type(e).__name__}: {e}'
    if isinstance(e, (safe_pickle.RefusedGlobal, persistence.UntrustedPickle)):
        return f'Refusing to load {name}: {e}; {TRUST_HINT}'
    if isinstance(e, MemoryError):
        return f'Cannot load {name}: out of memory while unpickling (a corrupt file claiming a huge size, or networks too large for this machine). ({msg})'
    if isinstance(e, EOFError) or (isinstance(e, pickle.UnpicklingError) and 'truncated' in str(e)):
        return f'Cannot read {name}: the file ends early (empty or truncated; re-download or re-copy it). ({msg})'
    if isinstance(e, pickle.UnpicklingError):
        return f'Cannot read {name}: not a valid pickle (corrupt, or a different file type). ({msg})'
    if isinstance(e, ModuleNotFoundError) and str(e.name or '').startswith('dnnlib.tflib'):
        return f'Cannot read {name}: it refers to TensorFlow code ({e.name}); TensorFlow pickles are not supported. ({msg})'
    if isinstance(e, (ImportError, AttributeError, NameError)):
        return (f'Cannot load {name}: the code it refers to or embeds does not run against the installed '
            f'dnnlib/torch_utils ({msg}). Was it written by a StyleGAN2-ADA-compatible code base?')
    return f'Cannot load {name}: {msg}'


def _validate(data, name, num_D):
    found = ', '.join(sorted(repr(k) for k in data)) or 'none'
    for key in ['G', 'G_ema']:
        if not isinstance(data.get(key), torch.nn.Module):
            got = 'missing' if key not in data else f'a {type(data[key]).__name__}'
            raise NetworkPickleError(f'{name} has no usable {key!r} network ({got}); keys found: {found}')
    if 'D' not in data:
        raise NetworkPickleError(f'{name} has no discriminator (neither "D" nor "D0".."D<K-1>"); keys found: {found}')
    if data['D'] is not None and not isinstance(data['D'], torch.nn.Module):
        raise NetworkPickleError(f'{name}: "D" is a {type(data["D"]).__name__}, not a network')
    for i in range(num_D):
        if not isinstance(data[f'D{i}'], torch.nn.Module):
            raise NetworkPickleError(f'{name}: "D{i}" is a {type(data[f"D{i}"]).__name__}, not a network')
    if not isinstance(data['training_set_kwargs'], (dict, type(None))):
        raise NetworkPickleError(f'{name}: training_set_kwargs is a {type(data["training_set_kwargs"]).__name__}, expected a dict')
    if not isinstance(data['augment_pipe'], (torch.nn.Module, type(None))):
        raise NetworkPickleError(f'{name}: augment_pipe is a {type(data["augment_pipe"]).__name__}, expected a network or None')


def _rebuild_fp16(old, is_G, name, key):
    from torch_utils import misc # deferred: only force_fp16 needs it
    if not hasattr(old, 'init_kwargs'):
        raise NetworkPickleError(f'{name}: force_fp16 needs persistent networks, but {key!r} ({type(old).__name__}) records no init kwargs')
    kwargs = copy.deepcopy(old.init_kwargs)
    if is_G:
        kwargs.synthesis_kwargs = dnnlib.EasyDict(kwargs.get('synthesis_kwargs', {}))
        kwargs.synthesis_kwargs.num_fp16_res = 4
        kwargs.synthesis_kwargs.conv_clamp = 256
    else:
        kwargs.num_fp16_res = 4
        kwargs.conv_clamp = 256
    if kwargs == old.init_kwargs:
        return old
    new = type(old)(*old.init_args, **kwargs).eval().requires_grad_(False)
    misc.copy_params_and_buffers(old, new, require_all=True)
    return new

#----------------------------------------------------------------------------
