"""Unpickling with an allow-list: a pickle may only name the classes and functions listed, so reading a file
never calls anything the file chose (a plain pickle.load calls whatever a __reduce__ names, os.system
included). `load()` reads data: NumPy arrays, lists, dicts, tuples, sets, bytes, strings and numbers.
torch_utils.persistence builds the network-pickle loader on top of this one."""

import _compat_pickle
import importlib
import pickle

#----------------------------------------------------------------------------

class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a class or function outside the allow-list; `name` is its 'module.qualname'."""

    def __init__(self, name, kind='data'):
        super().__init__(f'it refers to {name}, which {kind} may not contain')
        self.name = name

#----------------------------------------------------------------------------
# What plain data may refer to. NumPy moved numpy.core to numpy._core in 2.0; pickles carry either name.

_NUMPY = ['multiarray._reconstruct', 'multiarray.scalar', 'numeric._frombuffer']
DATA_GLOBALS = frozenset(
    [f'numpy.{core}.{name}' for core in ('core', '_core') for name in _NUMPY] +
    ['numpy.ndarray', 'numpy.dtype'] +
    ['builtins.set', 'builtins.frozenset', 'builtins.bytearray', 'builtins.complex', 'builtins.slice'] +
    ['collections.OrderedDict'] +
    ['_codecs.encode'] # protocol 2 writes bytes as _codecs.encode(latin-1 text)
)

def _py3_name(module, name):
    # Python 2 pickles (CIFAR-10's batches) use Python 2 names; map them as pickle itself does.
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    if module.startswith('numpy.core.') or module == 'numpy.core':
        try: # NumPy 2 warns on every numpy.core access; numpy._core is the same module
            importlib.import_module('numpy._core')
            module = 'numpy._core' + module[len('numpy.core'):]
        except ImportError:
            pass
    return module, name

def resolve(module, name):
    """The object `module`.`name` (a dotted name for nested attributes), imported."""
    obj = importlib.import_module(module)
    for part in name.split('.'):
        obj = getattr(obj, part)
    return obj

class RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves only the names in `allowed` ('module.qualname' strings); `check(module,
    name)` may admit more (a subclass hook). `kind` names what is being read, for the error message."""
    allowed = DATA_GLOBALS
    kind = 'data'

    def find_class(self, module, name):
        module, name = _py3_name(module, name)
        full = f'{module}.{name}'
        if full in self.allowed:
            return resolve(module, name)
        obj = self.check(module, name)
        if obj is None:
            raise RefusedGlobal(full, self.kind)
        return obj

    def check(self, module, name): # pylint: disable=unused-argument
        """The object for a name outside `allowed`, or None to refuse it."""
        return None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f'persistent id {pid!r} is not supported')

def load(file, **kwargs):
    """pickle.load for data files: only NumPy arrays and builtin containers, strings, bytes and numbers.
    Anything else raises RefusedGlobal before it is called. kwargs go to pickle.Unpickler (e.g. encoding)."""
    return RestrictedUnpickler(file, **kwargs).load()

#----------------------------------------------------------------------------
