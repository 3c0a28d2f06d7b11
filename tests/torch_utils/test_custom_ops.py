"""Tests for torch_utils.custom_ops: build tiny C++ extensions on CPU and check the content-keyed build cache.
Sources avoid torch/extension.h, whose headers would make every compile take minutes on a small machine."""

import ctypes
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest

from torch_utils import custom_ops

needs_compiler = pytest.mark.skipif(shutil.which('ninja') is None or shutil.which(os.environ.get('CXX', 'c++')) is None,
    reason='needs ninja and a C++ compiler')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HEADER = 'inline int offset() { return OFFSET; }\n'

# Python module through pybind11: a realistic plugin (about 15 s to compile on 2 cores).
PY_SOURCE = textwrap.dedent('''
    #include <pybind11/pybind11.h>
    #include "tiny_op.h"
    int add(int a, int b) { return a + b + offset(); }
    PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("add", &add); }
''')

# Plain shared library (is_python_module=False, called through ctypes): compiles in about a second,
# which keeps the cache and rebuild checks cheap.
C_SOURCE = textwrap.dedent('''
    #include "tiny_op.h"
    extern "C" int tiny_add(int a, int b) { return a + b + offset(); }
''')


def _write_sources(src_dir, offset, source):
    os.makedirs(src_dir, exist_ok=True)
    with open(os.path.join(src_dir, 'tiny_op.h'), 'w') as f:
        f.write(f'#define OFFSET {offset}\n' + HEADER)
    with open(os.path.join(src_dir, 'tiny_op.cpp'), 'w') as f:
        f.write(source)


@pytest.fixture
def ext_env(tmp_path, monkeypatch):
    """Private extensions dir and plugin cache; quiet build output."""
    monkeypatch.setenv('TORCH_EXTENSIONS_DIR', str(tmp_path / 'torch_ext'))
    monkeypatch.setattr(custom_ops, '_cached_plugins', dict())
    monkeypatch.setattr(custom_ops, 'verbosity', 'none')
    return tmp_path


def _build_dirs(tmp_path, name):
    top = tmp_path / 'torch_ext' / name
    return sorted(p.name for p in top.iterdir() if p.is_dir()) if top.is_dir() else []


def _call_lib(path, a, b):
    return ctypes.CDLL(path).tiny_add(a, b)

#----------------------------------------------------------------------------

@needs_compiler
@pytest.mark.slow
def test_build_python_module(ext_env):
    src_dir = str(ext_env / 'src')
    _write_sources(src_dir, offset=100, source=PY_SOURCE)
    # StyleGAN2-ADA style: absolute source paths; the header is picked up from the same directory.
    mod = custom_ops.get_plugin('tiny_py_plugin', sources=[os.path.join(src_dir, 'tiny_op.cpp')], extra_cflags=['-O1'])
    assert mod.add(2, 3) == 105
    assert custom_ops.get_plugin('tiny_py_plugin', sources=[]) is mod # in-process cache by name
    assert len(_build_dirs(ext_env, 'tiny_py_plugin')) == 1


@needs_compiler
def test_build_cache_across_processes_and_rebuild(ext_env):
    src_dir = str(ext_env / 'src')
    _write_sources(src_dir, offset=100, source=C_SOURCE)
    lib = custom_ops.get_plugin('tiny_c_plugin', sources=[os.path.join(src_dir, 'tiny_op.cpp')], is_python_module=False)
    assert _call_lib(lib, 2, 3) == 105
    (digest_dir,) = _build_dirs(ext_env, 'tiny_c_plugin')
    assert os.path.dirname(lib) == str(ext_env / 'torch_ext' / 'tiny_c_plugin' / digest_dir)
    copied = sorted(f for f in os.listdir(os.path.dirname(lib)) if f.startswith('tiny_op'))
    assert copied == ['tiny_op.cpp', 'tiny_op.h', 'tiny_op.o']
    mtime = os.stat(lib).st_mtime_ns

    # Another process, StyleGAN3-style call (names + source_dir + headers), same content: reuses the build.
    code = textwrap.dedent(f'''
        import ctypes
        from torch_utils import custom_ops
        custom_ops.verbosity = 'none'
        lib = custom_ops.get_plugin('tiny_c_plugin', sources=['tiny_op.cpp'], headers=['tiny_op.h'],
            source_dir={src_dir!r}, is_python_module=False)
        print(lib, ctypes.CDLL(lib).tiny_add(1, 1))
    ''')
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    res = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [lib, '102']
    assert os.stat(lib).st_mtime_ns == mtime # not rebuilt
    assert _build_dirs(ext_env, 'tiny_c_plugin') == [digest_dir]

    # A changed header gives a new digest directory and a fresh build.
    _write_sources(src_dir, offset=7, source=C_SOURCE)
    custom_ops._cached_plugins.clear()
    lib2 = custom_ops.get_plugin('tiny_c_plugin', sources=['tiny_op.cpp'], headers=['tiny_op.h'], source_dir=src_dir,
        is_python_module=False)
    assert lib2 != lib and _call_lib(lib2, 2, 3) == 12
    assert len(_build_dirs(ext_env, 'tiny_c_plugin')) == 2
    # Different build flags get their own build too.
    custom_ops._cached_plugins.clear()
    lib3 = custom_ops.get_plugin('tiny_c_plugin', sources=['tiny_op.cpp'], headers=['tiny_op.h'], source_dir=src_dir,
        is_python_module=False, extra_cflags=['-DUNUSED_FLAG'])
    assert lib3 not in (lib, lib2) and _call_lib(lib3, 2, 3) == 12


@needs_compiler
def test_compile_error_raises(ext_env, capsys, monkeypatch):
    tmp_path = ext_env
    monkeypatch.setattr(custom_ops, 'verbosity', 'brief')
    src = tmp_path / 'bad_op.cpp'
    src.write_text('this is not C++;\n')
    with pytest.raises(Exception):
        custom_ops.get_plugin('bad_op_plugin', sources=[str(src)])
    out = capsys.readouterr().out
    assert 'Setting up PyTorch plugin "bad_op_plugin"...' in out and 'Failed!' in out
    assert 'bad_op_plugin' not in custom_ops._cached_plugins


def test_missing_source_names_file(ext_env):
    with pytest.raises(FileNotFoundError, match='nowhere.cpp'):
        custom_ops.get_plugin('missing_op_plugin', sources=['nowhere.cpp'], source_dir=str(ext_env))


def test_duplicate_basenames_rejected(ext_env):
    for d in ('a', 'b'):
        (ext_env / d).mkdir()
        (ext_env / d / 'x.cpp').write_text('')
    with pytest.raises(ValueError, match='same name'):
        custom_ops.get_plugin('dup_op_plugin', sources=[str(ext_env / 'a' / 'x.cpp'), str(ext_env / 'b' / 'x.cpp')])

#----------------------------------------------------------------------------

def test_lazy_plugin_builds_once_or_warns_once():
    calls = []
    def build():
        calls.append(1)
        return 'module'
    lazy = custom_ops.LazyPlugin('some_op', build)
    assert not calls # nothing is built before it is asked for
    assert lazy.get() == 'module' and lazy.get() == 'module' and len(calls) == 1

    def fail():
        calls.append(2)
        raise OSError('nvcc not found')
    lazy = custom_ops.LazyPlugin('other_op', fail)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert lazy.get() is None and lazy.get() is None
    assert calls.count(2) == 1 # a failed build is not retried
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1 and 'other_op' in msgs[0] and 'OSError: nvcc not found' in msgs[0]
    assert 'reference implementation' in msgs[0]

#----------------------------------------------------------------------------
