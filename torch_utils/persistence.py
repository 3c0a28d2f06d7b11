"""Pickling of Python classes together with the source code of the module that defines them.

An instance of a class decorated with `@persistent_class` pickles as

    (_reconstruct_persistent_obj, (meta,))   with
    meta = dict(type='class', version=6, module_src=<module source>, class_name=<name>, state=<instance __dict__>)

On load the module source is executed into a fresh module (one per distinct source, cached), so a
network pickle keeps working after the code that produced it has changed or disappeared. The format is
StyleGAN2-ADA's, so pickles move both ways between that code base and this one: the embedded source
runs against whichever `dnnlib` / `torch_utils` is installed at load time.

The decorator also records the constructor arguments (`obj.init_args`, `obj.init_kwargs`), which lets a
loaded network be rebuilt with current code and its parameters copied over by name.

Executing a file's code is what the format does, so `load()` does it only for code known to be safe: the pickle
may name only tensor, array and container reconstructors (NETWORK_GLOBALS), and an embedded module source runs
only when it is byte-identical to a module of this installation, or its SHA-256 is in KNOWN_SOURCES (releases of
upstream code bases) or in the record of this project's earlier versions (torch_utils/source_history.py).
`load(f, trust=True)`, or SGSOM_TRUST_PICKLES=1, is plain pickle.load, for files one trusts.
"""

import copy
import functools
import hashlib
import io
import os
import pickle
import sys
import types

import dnnlib

from . import safe_pickle, source_history

#----------------------------------------------------------------------------

_version            = 6         # format version written into every pickle; must match on load
_decorators         = set()     # persistent (decorated) classes
_import_hooks       = []        # callables meta -> meta, applied on load
_module_to_src_dict = dict()    # module -> source
_src_to_module_dict = dict()    # source -> module

#----------------------------------------------------------------------------

def persistent_class(orig_class):
    """Class decorator: instances pickle with the full source of the class's module embedded.

    Use it on every class of a module whose instances end up in a pickle (including submodules of a
    network), since only decorated classes are rebuilt from the embedded source. Helper functions in the
    same module are fine; imported modules must exist at load time. May also be applied just before
    construction: `persistent_class(MyLayer)(...)`.
    """
    if not isinstance(orig_class, type):
        raise TypeError(f"persistent_class() expects a class, got {orig_class!r}")
    if is_persistent(orig_class):
        return orig_class
    module_name = orig_class.__module__
    if module_name not in sys.modules:
        raise AssertionError(f"persistent_class(): module {module_name!r} of class {orig_class.__name__} is not imported")
    orig_module = sys.modules[module_name]
    orig_module_src = _module_to_src(orig_module)
    orig_class_name = orig_class.__name__

    class Decorator(orig_class):
        _orig_module_src = orig_module_src
        _orig_class_name = orig_class_name

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # Deep copies so later mutation by the caller does not change what gets pickled.
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)
            # Loading looks the class up by name in the module, so it must live at module level.
            if orig_class_name not in orig_module.__dict__:
                raise AssertionError(f"persistent_class(): {orig_class_name} must be defined at the top level of module {module_name}")
            _check_pickleable(self.__reduce__())

        @property
        def init_args(self):
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self):
            return dnnlib.EasyDict(copy.deepcopy(self._init_kwargs))

        def __reduce__(self):
            # Start from the default reduction to obtain the state, then swap in our reconstructor.
            fields = list(super().__reduce__())
            fields += [None] * max(3 - len(fields), 0)
            if fields[0] is not _reconstruct_persistent_obj:
                meta = dict(type='class', version=_version, module_src=self._orig_module_src,
                    class_name=self._orig_class_name, state=fields[2])
                fields[0] = _reconstruct_persistent_obj
                fields[1] = (meta,)
                fields[2] = None # the state travels inside meta
            return tuple(fields)

    Decorator.__name__ = orig_class_name
    Decorator.__doc__ = orig_class.__doc__
    _decorators.add(Decorator)
    return Decorator

#----------------------------------------------------------------------------

def is_persistent(obj):
    """True if `obj` is a persistent class or an instance of one."""
    try:
        if obj in _decorators:
            return True
    except TypeError: # unhashable instance
        pass
    return type(obj) in _decorators # pylint: disable=unidiomatic-typecheck

#----------------------------------------------------------------------------

def import_hook(hook):
    """Register `hook(meta) -> meta`, called for every persistent object being unpickled, before its
    source is executed. `meta` is a dnnlib.EasyDict with fields type, version, module_src, class_name
    and state; a hook typically patches `meta.module_src` for API changes. Returns the hook (usable as
    a decorator)."""
    if not callable(hook):
        raise TypeError(f"import_hook() expects a callable, got {hook!r}")
    _import_hooks.append(hook)
    return hook

#----------------------------------------------------------------------------

def _reconstruct_persistent_obj(meta):
    """Called by pickle (the name is part of the format) to rebuild a persistent object from `meta`."""
    meta = dnnlib.EasyDict(meta)
    meta.state = dnnlib.EasyDict(meta.state if meta.state is not None else {})
    for hook in _import_hooks:
        meta = hook(meta)
        if meta is None:
            raise AssertionError(f"persistence import hook {hook!r} returned None instead of meta")

    if meta.version != _version:
        raise AssertionError(f"Unsupported persistent-object format version {meta.version!r} (this code reads {_version})")
    if meta.type != 'class':
        raise AssertionError(f"Unsupported persistent-object type {meta.type!r}")
    module = _src_to_module(meta.module_src)
    if meta.class_name not in module.__dict__:
        raise AttributeError(f"Pickled module source does not define class {meta.class_name!r}")
    decorator_class = persistent_class(module.__dict__[meta.class_name])
    obj = decorator_class.__new__(decorator_class)

    setstate = getattr(obj, '__setstate__', None)
    if callable(setstate):
        setstate(meta.state) # pylint: disable=not-callable
    else:
        obj.__dict__.update(meta.state)
    return obj

#----------------------------------------------------------------------------

def _module_to_src(module):
    """Source code of a module (cached, and for modules built by _src_to_module the exact source used)."""
    src = _module_to_src_dict.get(module, None)
    if src is None:
        import inspect # deferred: only needed the first time a class is decorated
        src = inspect.getsource(module)
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
    return src


def _src_to_module(src):
    """Module for a given source: the original module if the source is known, else a new one executed from it."""
    module = _src_to_module_dict.get(src, None)
    if module is None:
        # Name derived from the content: the same source always maps to the same module name.
        module_name = "_imported_module_" + hashlib.md5(src.encode('utf-8')).hexdigest()
        module = types.ModuleType(module_name)
        sys.modules[module_name] = module
        # Register before exec: the decorators run during exec and look the source up via the module.
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
        try:
            exec(compile(src, f"<persistent module {module_name}>", "exec"), module.__dict__) # pylint: disable=exec-used
        except BaseException:
            del sys.modules[module_name]
            del _module_to_src_dict[module]
            del _src_to_module_dict[src]
            raise
    return module

#----------------------------------------------------------------------------

def _check_pickleable(obj):
    """Raise early (at construction) if `obj` cannot be pickled. Cheaper than a real pickle: tensors,
    arrays, primitives and persistent objects are skipped without being serialised."""
    def strip(x):
        if isinstance(x, (list, tuple, set)):
            return [strip(v) for v in x]
        if isinstance(x, dict):
            return [[strip(k), strip(v)] for k, v in x.items()]
        if isinstance(x, (str, int, float, bool, bytes, bytearray)):
            return None
        if f'{type(x).__module__}.{type(x).__name__}' in ('numpy.ndarray', 'torch.Tensor', 'torch.nn.parameter.Parameter'):
            return None
        if is_persistent(x):
            return None
        return x
    with io.BytesIO() as f:
        pickle.dump(strip(obj), f)

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Loading without running unknown code.

TRUST_ENV = 'SGSOM_TRUST_PICKLES' # =1: load every pickle as plain pickle.load would (--trust-pickle)

# SHA-256 of module sources that pickles from other code bases carry and that run without --trust-pickle: the
# released files, hashed from the public repositories (no code of theirs is kept here), as inspect.getsource()
# embeds them: UTF-8 without the byte-order mark upstream's files start with, newlines as \n.
KNOWN_SOURCES = {
    '53b4e1ec457171d4e2c1454d48013765ab626141c35cdd383b020950effe11a5':
        'NVlabs/stylegan2-ada-pytorch training/networks.py (375a436, unchanged up to d72cc7d)',
    '77eb17876bc7ba87cdc9281caf925daf507ce0937b84d0f32134d4d08e13061e':
        'NVlabs/stylegan2-ada-pytorch training/augment.py (375a436, unchanged up to d72cc7d)',
    'ec2d73b7115a041fde638f46d7568822df8ddb7267aa389564fbc157c2dc0ae9':
        'liweileev/SOMGAN codes/style/training/Generators/StyleGenerator.py (11ec1c0)',
    'a5780bba6904f5fbeaed3f09daae2fb5c51ba437f4f05f0439247b866a251799':
        'liweileev/SOMGAN codes/style/training/Discriminators/StyleDiscriminator.py (11ec1c0)',
    'ec7861a98e3e346c1c291d996d3792b64debeafb42d7b4012b697bdd4791cc75':
        'liweileev/SOMGAN codes/style/training/augment.py (11ec1c0)',
}

# Packages of this code base (beside torch_utils) whose installed modules' sources are trusted as they are.
PROJECT_PACKAGES = source_history.PACKAGES

_TORCH_REBUILDERS = ['_utils._rebuild_tensor', '_utils._rebuild_tensor_v2', '_utils._rebuild_tensor_v3',
    '_utils._rebuild_parameter', '_utils._rebuild_parameter_with_state', '_utils._rebuild_device_tensor_from_numpy',
    '_utils._rebuild_meta_tensor_no_storage', '_tensor._rebuild_from_type', '_tensor._rebuild_from_type_v2']
NETWORK_GLOBALS = safe_pickle.DATA_GLOBALS | frozenset(
    [f'torch.{name}' for name in _TORCH_REBUILDERS] +
    ['torch.Tensor', 'torch.nn.parameter.Parameter', 'torch.Size', 'torch.device'] +
    ['dnnlib.util.EasyDict', 'dnnlib.EasyDict']
)

class UntrustedPickle(pickle.UnpicklingError):
    """A pickle that load() refuses; the message says what it would have run."""

def trust_from_env():
    return os.environ.get(TRUST_ENV, '').strip().lower() in ('1', 'true', 'yes')

def load(f, trust=None, unpickler_class=None):
    """Unpickle a network pickle from the binary file `f`, refusing (UntrustedPickle, or safe_pickle.RefusedGlobal)
    anything that would run code not known to be safe, before it runs. trust=None: from SGSOM_TRUST_PICKLES.
    `unpickler_class`: a subclass of NetworkUnpickler, e.g. one that maps more names to stand-ins."""
    if trust_from_env() if trust is None else trust:
        return pickle.Unpickler(f).load()
    return (unpickler_class or NetworkUnpickler)(f).load()

def is_known_source(src):
    """Whether a module source may run: one of this installation's modules, a release in KNOWN_SOURCES, or an
    earlier version of this project's modules."""
    known = _known_cache.get(src)
    if known is None:
        digest = hashlib.sha256(src.encode('utf-8')).hexdigest()
        known = digest in KNOWN_SOURCES or digest in _project_source_digests() or digest in _recorded_digests()
        _known_cache[src] = known
    return known

_known_cache = dict() # source -> bool; the many objects of a pickle share one source string

@functools.lru_cache(maxsize=None)
def _project_source_digests():
    return frozenset(source_history.tree_sources(persistent_only=False))

@functools.lru_cache(maxsize=None)
def _recorded_digests():
    return frozenset(source_history.load_record())

def _reconstruct_known_obj(meta):
    """_reconstruct_persistent_obj for load(): the embedded source must be known before it is executed."""
    src = meta.get('module_src') if isinstance(meta, dict) else None
    if not isinstance(src, str):
        raise pickle.UnpicklingError('a persistent object without module source')
    if not is_known_source(src):
        digest = hashlib.sha256(src.encode('utf-8')).hexdigest()
        raise UntrustedPickle(f'it embeds the source of class {meta.get("class_name")!r} (sha256 {digest[:16]}...), '
            'which is neither a module of this installation or of its earlier versions nor a known StyleGAN2-ADA/SOMGAN '
            'release, and would run it')
    return _reconstruct_persistent_obj(meta)

def _load_storage_from_bytes(b):
    # torch.storage._load_from_bytes calls torch.load(weights_only=False), i.e. plain pickle again.
    import torch # pylint: disable=import-outside-toplevel
    return torch.load(io.BytesIO(b), weights_only=True)

class NetworkUnpickler(safe_pickle.RestrictedUnpickler):
    """Resolves NETWORK_GLOBALS, torch dtypes and torch.nn's own layer classes; swaps in the checking versions of
    the persistent-object and storage reconstructors."""
    allowed = NETWORK_GLOBALS
    kind = 'a network pickle'

    def check(self, module, name):
        if (module, name) == ('torch_utils.persistence', '_reconstruct_persistent_obj'):
            return _reconstruct_known_obj
        if (module, name) == ('torch.storage', '_load_from_bytes'):
            return _load_storage_from_bytes
        if module == 'torch' or module.startswith('torch.nn.modules.'):
            import torch # pylint: disable=import-outside-toplevel
            try:
                obj = safe_pickle.resolve(module, name)
            except (ImportError, AttributeError):
                return None
            if module == 'torch' and isinstance(obj, torch.dtype): # torch.float32 etc.
                return obj
            if module != 'torch' and isinstance(obj, type) and issubclass(obj, torch.nn.Module): # torch.nn.Linear etc.
                return obj
        return None

#----------------------------------------------------------------------------
