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
"""

import copy
import hashlib
import io
import pickle
import sys
import types

import dnnlib

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
