"""Build-on-first-use C++/CUDA extensions, cached on disk by source content.

`get_plugin()` compiles the given sources with ninja through torch.utils.cpp_extension.load() and returns
the loaded Python module. Sources (and the headers next to them) are copied into a build directory
named after an md5 of their contents, so unchanged sources reuse an earlier build, also from other
processes, while edited sources get a fresh build. Failures raise; the ops load their plugin through a
`LazyPlugin`, which turns a failure into one warning and lets them use their reference implementation."""

import glob
import hashlib
import os
import re
import shutil
import uuid
import warnings

import torch
import torch.utils.cpp_extension

#----------------------------------------------------------------------------

verbosity = 'brief' # 'none', 'brief' (one line per plugin) or 'full' (compiler output)

_cached_plugins = dict()  # module_name -> loaded module (one build per name per process)
_header_exts = ('.h', '.hh', '.hpp', '.hxx', '.cuh', '.inl')

#----------------------------------------------------------------------------

def _find_compiler_bindir():
    """Newest MSVC x64 toolchain bin directory on Windows, or None."""
    patterns = [
        'C:/Program Files*/Microsoft Visual Studio/*/*/VC/Tools/MSVC/*/bin/Hostx64/x64',
        'C:/Program Files*/Microsoft Visual Studio */vc/bin',
    ]
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]
    return None


def _gpu_tag():
    # Kernels are compiled for the visible GPU's architecture, so a build must not be reused on another GPU.
    try:
        if torch.cuda.is_available():
            return re.sub('[^0-9a-zA-Z]+', '-', torch.cuda.get_device_name(torch.cuda.current_device())).strip('-')
    except Exception: # a broken driver must not stop a CPU-only build
        pass
    return 'cpu'


def _content_digest(files, build_kwargs):
    h = hashlib.md5()
    for path in files:
        h.update(os.path.basename(path).encode('utf-8') + b'\0')
        with open(path, 'rb') as f:
            h.update(f.read())
        h.update(b'\0')
    # Flags change the binary too; repr of lists/strings/bools is deterministic.
    h.update(repr(sorted(build_kwargs.items())).encode('utf-8'))
    h.update(torch.__version__.encode('utf-8'))
    return h.hexdigest()


def _resolve_files(sources, headers, source_dir):
    if isinstance(sources, str):
        sources = [sources]
    sources = [os.path.join(source_dir, s) if source_dir is not None else s for s in sources]
    sources = [os.path.abspath(s) for s in sources]
    if headers is None:
        # Old-style call (absolute source paths only): the sources include headers from their own
        # directory, so take every header found there.
        headers = []
        for d in sorted(set(os.path.dirname(s) for s in sources)):
            headers += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(_header_exts))
    else:
        headers = [os.path.abspath(os.path.join(source_dir, h) if source_dir is not None else h) for h in headers]
    for path in sources + headers:
        if not os.path.isfile(path):
            raise FileNotFoundError(2, 'custom_ops: source file not found', path)
    return sources, headers

#----------------------------------------------------------------------------

def get_plugin(module_name, sources, headers=None, source_dir=None, **build_kwargs):
    """Compile (if needed) and load the extension `module_name`.

    Accepts both calling styles: absolute source paths (headers taken from their directory), or file names
    relative to `source_dir` plus an explicit `headers` list. Extra keyword arguments go to
    torch.utils.cpp_extension.load() (e.g. extra_cuda_cflags). Raises on any failure."""
    assert verbosity in ['none', 'brief', 'full']
    if module_name in _cached_plugins:
        return _cached_plugins[module_name]

    if verbosity == 'full':
        print(f'Setting up PyTorch plugin "{module_name}"...')
    elif verbosity == 'brief':
        print(f'Setting up PyTorch plugin "{module_name}"... ', end='', flush=True)
    verbose_build = (verbosity == 'full')

    try:
        if os.name == 'nt' and os.system("where cl.exe >nul 2>nul") != 0:
            compiler_bindir = _find_compiler_bindir()
            if compiler_bindir is None:
                raise RuntimeError(f'Could not find an MSVC installation (looked in the paths of _find_compiler_bindir() in "{__file__}")')
            os.environ['PATH'] += ';' + compiler_bindir

        sources, headers = _resolve_files(sources, headers, source_dir)
        all_files = sources + headers
        names = [os.path.basename(f) for f in all_files]
        if len(set(names)) != len(names):
            raise ValueError(f'custom_ops: plugin "{module_name}" has several files with the same name: {all_files}')

        # <torch extensions dir>/<module_name>/<content digest>-<gpu>/ holds a copy of the sources and the build.
        # Populating it through a rename keeps concurrent processes from seeing half-copied sources;
        # cpp_extension.load() itself locks the directory while compiling.
        digest = _content_digest(all_files, build_kwargs)
        top_dir = torch.utils.cpp_extension._get_build_directory(module_name, verbose=verbose_build) # pylint: disable=protected-access
        build_dir = os.path.join(top_dir, f'{digest}-{_gpu_tag()}')
        if not os.path.isdir(build_dir):
            tmp_dir = os.path.join(top_dir, f'srctmp-{uuid.uuid4().hex}')
            os.makedirs(tmp_dir)
            try:
                for f in all_files:
                    shutil.copyfile(f, os.path.join(tmp_dir, os.path.basename(f)))
                os.replace(tmp_dir, build_dir)
            except OSError:
                shutil.rmtree(tmp_dir, ignore_errors=True)
                if not os.path.isdir(build_dir): # losing the race to another process is fine
                    raise
        build_sources = [os.path.join(build_dir, os.path.basename(f)) for f in sources]
        module = torch.utils.cpp_extension.load(name=module_name, sources=build_sources,
            build_directory=build_dir, verbose=verbose_build, **build_kwargs)
    except:
        if verbosity == 'brief':
            print('Failed!')
        raise

    if verbosity == 'full':
        print(f'Done setting up PyTorch plugin "{module_name}".')
    elif verbosity == 'brief':
        print('Done.')
    _cached_plugins[module_name] = module
    return module

#----------------------------------------------------------------------------

class LazyPlugin:
    """An op's plugin, built on first use by `build()` (normally a get_plugin() call). A failed build warns
    once, naming the op, and is not retried: the op then keeps to its reference path for the whole process
    instead of paying for (and reporting) the same failure on every call."""

    def __init__(self, op_name, build):
        self.op_name = op_name
        self.build = build
        self.tried = False
        self.module = None

    def get(self):
        """The loaded plugin module, or None when it could not be built."""
        if not self.tried:
            self.tried = True
            try:
                self.module = self.build()
            except Exception as err: # pylint: disable=broad-except
                warnings.warn(f'{self.op_name}: could not build the CUDA plugin ({type(err).__name__}: {err}); '
                    'falling back to the PyTorch reference implementation.')
        return self.module

#----------------------------------------------------------------------------
