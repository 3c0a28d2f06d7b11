"""Tests for torch_utils.safe_pickle: data pickles load, anything that names a callable outside the allow-list is
refused before it is called."""

import collections
import io
import os
import pickle

import numpy as np
import pytest

from torch_utils import safe_pickle
from tests.malicious import MarkerWriter

#----------------------------------------------------------------------------

@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_data_round_trips(protocol):
    data = dict(data=np.arange(12, dtype=np.uint8).reshape(3, 4), labels=[1, 2, 3], name='batch 1', raw=b'\x00\xff',
        f=np.float32(1.5), n=3.25, c=1 + 2j, s={1, 2}, fs=frozenset('ab'), t=(None, True), od=collections.OrderedDict(a=1),
        rng=np.random.RandomState(3).get_state(), rec=np.zeros(2, dtype=[('x', '<i4'), ('y', '<f8')]))
    out = safe_pickle.load(io.BytesIO(pickle.dumps(data, protocol=protocol)))
    assert out.keys() == data.keys()
    assert np.array_equal(out['data'], data['data']) and out['data'].dtype == np.uint8
    assert out['rec'].dtype == data['rec'].dtype
    assert np.array_equal(out['rng'][1], data['rng'][1])
    assert [out[k] for k in ('labels', 'name', 'raw', 'n', 'c', 's', 'fs', 't', 'od')] == \
        [data[k] for k in ('labels', 'name', 'raw', 'n', 'c', 's', 'fs', 't', 'od')]
    assert out['f'] == np.float32(1.5) and type(out['f']) is np.float32

def test_python2_names_and_latin1():
    # CIFAR-10's batches were written by Python 2: protocol 2, __builtin__ names, byte strings as str.
    blob = pickle.dumps({'data': np.ones([2, 3], np.uint8), 'set': {1}}, protocol=2, fix_imports=True)
    assert b'__builtin__' in blob
    out = safe_pickle.load(io.BytesIO(blob), encoding='latin1')
    assert out['set'] == {1} and out['data'].sum() == 6

@pytest.mark.parametrize('how,name', [('open', 'io.open'), ('system', os.system.__module__ + '.system')])
def test_callables_are_refused_before_they_run(tmp_path, how, name):
    marker = tmp_path / 'marker'
    blob = pickle.dumps({'data': [MarkerWriter(marker, how)]}, protocol=2)
    with pytest.raises(safe_pickle.RefusedGlobal) as info:
        safe_pickle.load(io.BytesIO(blob))
    assert not marker.exists()
    assert info.value.name in (name, 'builtins.open')
    assert info.value.name in str(info.value) and isinstance(info.value, pickle.UnpicklingError)
    # The same bytes through plain pickle do run the code: the test would notice if they stopped doing so.
    pickle.loads(blob)
    assert marker.exists()

class Plain:
    pass

def test_classes_are_refused_too():
    # An instance of an importable class pickles by reference; its class is outside the allow-list.
    with pytest.raises(safe_pickle.RefusedGlobal, match='tests.torch_utils.test_safe_pickle.Plain'):
        safe_pickle.load(io.BytesIO(pickle.dumps([Plain()])))

def test_persistent_ids_are_refused():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return 'ext' if obj == 'x' else None
    buf = io.BytesIO()
    P(buf).dump(['x'])
    with pytest.raises(pickle.UnpicklingError, match='persistent id'):
        safe_pickle.load(io.BytesIO(buf.getvalue()))

#----------------------------------------------------------------------------
