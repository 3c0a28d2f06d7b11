"""Tests for dnnlib.util (everything except open_url, which has its own file)."""

import copy
import ctypes
import os
import pickle
import sys

import numpy as np
import pytest

import dnnlib
from dnnlib import util

#----------------------------------------------------------------------------

def test_package_exports():
    assert dnnlib.EasyDict is util.EasyDict
    assert dnnlib.make_cache_dir_path is util.make_cache_dir_path


def test_easydict_attribute_access():
    d = dnnlib.EasyDict(a=1)
    d.b = 2
    assert d == {'a': 1, 'b': 2}
    assert d.a == 1 and d['b'] == 2
    del d.a
    assert 'a' not in d
    with pytest.raises(AttributeError):
        _ = d.missing
    with pytest.raises(AttributeError):
        del d.missing
    assert getattr(d, 'missing', 'default') == 'default'
    assert not hasattr(d, 'missing')


def test_easydict_pickle_and_copy():
    d = dnnlib.EasyDict(x=dnnlib.EasyDict(y=[1, 2]))
    for d2 in (pickle.loads(pickle.dumps(d)), copy.deepcopy(d)):
        assert type(d2) is dnnlib.EasyDict and type(d2.x) is dnnlib.EasyDict
        assert d2 == d
    # Network pickles refer to the class by this exact path.
    assert b'dnnlib.util' in pickle.dumps(d, protocol=2) and b'EasyDict' in pickle.dumps(d, protocol=2)

#----------------------------------------------------------------------------

def test_logger_tees_to_file_and_restores(tmp_path):
    log_path = tmp_path / 'log.txt'
    orig_out, orig_err = sys.stdout, sys.stderr
    with util.Logger(file_name=str(log_path), file_mode='w', should_flush=True) as logger:
        assert sys.stdout is logger and sys.stderr is logger
        print('hello')
        sys.stderr.write('oops\n')
        logger.write(b'bytes\n')
        logger.write('')
    assert sys.stdout is orig_out and sys.stderr is orig_err
    assert log_path.read_text() == 'hello\noops\nbytes\n'
    # Append mode keeps earlier content.
    with util.Logger(file_name=str(log_path), file_mode='a'):
        print('more')
    assert log_path.read_text().endswith('bytes\nmore\n')


def test_logger_without_file():
    orig_out = sys.stdout
    logger = util.Logger()
    try:
        assert logger.file is None
        print('x')
    finally:
        logger.close()
    assert sys.stdout is orig_out

#----------------------------------------------------------------------------

def test_cache_dir_priority(monkeypatch, tmp_path):
    for var in ('DNNLIB_CACHE_DIR', 'HOME', 'USERPROFILE'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(util, '_dnnlib_cache_dir', None)
    import tempfile
    assert util.make_cache_dir_path('a') == os.path.join(tempfile.gettempdir(), '.cache', 'dnnlib', 'a')
    monkeypatch.setenv('USERPROFILE', str(tmp_path / 'up'))
    assert util.make_cache_dir_path('a', 'b') == os.path.join(str(tmp_path / 'up'), '.cache', 'dnnlib', 'a', 'b')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert util.make_cache_dir_path() == os.path.join(str(tmp_path / 'home'), '.cache', 'dnnlib')
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'env'))
    assert util.make_cache_dir_path('downloads') == os.path.join(str(tmp_path / 'env'), 'downloads')
    util.set_cache_dir(str(tmp_path / 'explicit'))
    assert dnnlib.make_cache_dir_path('downloads') == os.path.join(str(tmp_path / 'explicit'), 'downloads')

#----------------------------------------------------------------------------

@pytest.mark.parametrize('seconds, expected', [
    (0, '0s'), (59.4, '59s'), (59.6, '1m 00s'), (61, '1m 01s'), (3599, '59m 59s'),
    (3600, '1h 00m 00s'), (3 * 3600 + 7 * 60 + 5, '3h 07m 05s'),
    (86400, '1d 00h 00m'), (2 * 86400 + 5 * 3600 + 9 * 60 + 59, '2d 05h 09m'),
])
def test_format_time(seconds, expected):
    assert util.format_time(seconds) == expected


def test_ask_yes_no(monkeypatch, capsys):
    answers = iter(['maybe', 'Y'])
    monkeypatch.setattr('builtins.input', lambda: next(answers))
    assert util.ask_yes_no('Continue?') is True
    assert capsys.readouterr().out.count('Continue? [y/n]') == 2
    monkeypatch.setattr('builtins.input', lambda: 'no')
    assert util.ask_yes_no('Again?') is False


def test_tuple_product():
    assert util.tuple_product(()) == 1
    assert util.tuple_product((2, 3, 4)) == 24


def test_get_dtype_and_ctype():
    dtype, ctype = util.get_dtype_and_ctype('float32')
    assert dtype == np.float32 and ctype is ctypes.c_float
    dtype, ctype = util.get_dtype_and_ctype(np.uint8)
    assert dtype == np.uint8 and ctype is ctypes.c_ubyte
    dtype, ctype = util.get_dtype_and_ctype(np.dtype('int64'))
    assert dtype == np.int64 and ctype is ctypes.c_int64
    with pytest.raises(AssertionError):
        util.get_dtype_and_ctype('complex64')


def test_is_pickleable():
    assert util.is_pickleable({'a': [1, 2.0, 'x']})
    assert not util.is_pickleable(lambda: 0)

#----------------------------------------------------------------------------

def _top_level_helper(x, y=1):
    return x + y


def test_lookup_by_name():
    import collections
    import os.path as osp
    module, name = util.get_module_from_obj_name('os.path.join')
    assert module is osp and name == 'join'
    assert util.get_obj_by_name('os.path.join') is osp.join
    assert util.get_obj_by_name('np.zeros') is np.zeros # shorthand
    assert util.get_obj_by_name('collections') is collections
    assert util.get_obj_from_module(collections, '') is collections
    assert util.get_obj_from_module(collections, 'OrderedDict.fromkeys') == collections.OrderedDict.fromkeys
    assert util.call_func_by_name(2, func_name=__name__ + '._top_level_helper', y=3) == 5
    od = util.construct_class_by_name([('a', 1)], class_name='collections.OrderedDict')
    assert type(od) is collections.OrderedDict and od['a'] == 1
    assert util.get_module_dir_by_obj_name('dnnlib.util.EasyDict') == os.path.dirname(util.__file__)


def test_lookup_errors(tmp_path, monkeypatch):
    with pytest.raises(ImportError):
        util.get_obj_by_name('no_such_module_xyz.thing')
    with pytest.raises(AttributeError, match='no_such_attr'):
        util.get_obj_by_name('collections.no_such_attr')
    # A module that exists but is broken must surface its own error, not a generic "not found".
    (tmp_path / 'broken_mod_for_dnnlib_test.py').write_text('import no_such_dependency_abc\nX = 1\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match='no_such_dependency_abc'):
        util.get_obj_by_name('broken_mod_for_dnnlib_test.X')
    with pytest.raises(AssertionError):
        util.call_func_by_name(func_name='dnnlib.util._str_to_ctype')


def test_top_level_function():
    assert util.is_top_level_function(_top_level_helper)
    assert util.get_top_level_function_name(_top_level_helper) == __name__ + '._top_level_helper'
    def local():
        pass
    assert not util.is_top_level_function(local)

#----------------------------------------------------------------------------

def test_list_and_copy_files(tmp_path):
    src = tmp_path / 'src'
    (src / 'sub').mkdir(parents=True)
    (src / '__pycache__').mkdir()
    (src / 'a.py').write_text('a')
    (src / 'b.pyc').write_text('b')
    (src / 'sub' / 'c.txt').write_text('c')
    (src / '__pycache__' / 'd.py').write_text('d')

    found = util.list_dir_recursively_with_ignore(str(src), ignores=['__pycache__', '*.pyc'])
    assert sorted(rel for _, rel in found) == ['a.py', os.path.join('sub', 'c.txt')]
    assert all(os.path.isabs(p) and os.path.isfile(p) for p, _ in found)
    with_base = util.list_dir_recursively_with_ignore(str(src), add_base_to_relative=True)
    assert sorted(rel for _, rel in with_base) == sorted(os.path.join('src', r) for r in
        ['a.py', 'b.pyc', os.path.join('sub', 'c.txt'), os.path.join('__pycache__', 'd.py')])

    dst = tmp_path / 'dst'
    util.copy_files_and_create_dirs([(p, str(dst / rel)) for p, rel in found])
    assert (dst / 'sub' / 'c.txt').read_text() == 'c'
    assert (dst / 'a.py').read_text() == 'a'

#----------------------------------------------------------------------------

def test_is_url():
    assert util.is_url('https://example.com/x.pkl')
    assert util.is_url('http://127.0.0.1:9/x.pkl')
    assert not util.is_url('/local/path.pkl')
    assert not util.is_url('http://localhost/x') # StyleGAN2-ADA's rule: the host needs a dot
    assert not util.is_url(42)
    assert not util.is_url('file:///tmp/x')
    assert util.is_url('file:///tmp/x', allow_file_urls=True)

#----------------------------------------------------------------------------
