"""Tests for torch_utils.persistence: pickles that carry their class source (StyleGAN2-ADA's format)."""

import copy
import hashlib
import io
import os
import pickle
import subprocess
import sys
import textwrap
import uuid

import pytest
import torch

import dnnlib
from torch_utils import persistence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

NET_SRC = textwrap.dedent('''
    import torch
    from torch_utils import persistence

    SCALE = 2.0

    def _helper(x):
        return x * SCALE

    @persistence.persistent_class
    class Layer(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.fc = torch.nn.Linear(n, n)
            self.register_buffer('count', torch.zeros([]))
        def forward(self, x):
            return _helper(self.fc(x))

    @persistence.persistent_class
    class Net(torch.nn.Module):
        def __init__(self, n, depth=2, cfg=None):
            super().__init__()
            self.layers = torch.nn.ModuleList([Layer(n) for _ in range(depth)])
            self.cfg = cfg
        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    @persistence.persistent_class
    class Thing:
        def __init__(self, a, b=2):
            self.a = a
            self.b = b
        def total(self):
            return self.a + self.b
''')


@pytest.fixture
def netmod(tmp_path, monkeypatch):
    """A freshly written and imported module with persistent classes; name is unique per test."""
    name = f'persist_test_mod_{uuid.uuid4().hex}'
    (tmp_path / f'{name}.py').write_text(NET_SRC)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


@pytest.fixture
def fresh_caches(monkeypatch):
    """Forget every module persistence has seen, as in a new process."""
    monkeypatch.setattr(persistence, '_module_to_src_dict', dict())
    monkeypatch.setattr(persistence, '_src_to_module_dict', dict())
    monkeypatch.setattr(persistence, '_import_hooks', [])

#----------------------------------------------------------------------------

def test_is_persistent(netmod):
    net = netmod.Net(3)
    assert persistence.is_persistent(netmod.Net) and persistence.is_persistent(net)
    assert persistence.is_persistent(net.layers[0])
    assert not persistence.is_persistent(torch.nn.Linear(2, 2))
    assert not persistence.is_persistent({}) # unhashable is fine
    assert persistence.persistent_class(netmod.Net) is netmod.Net # idempotent
    assert netmod.Net.__name__ == 'Net'
    assert isinstance(net, torch.nn.Module)


def test_init_args_recorded(netmod):
    cfg = dict(k=[1, 2])
    net = netmod.Net(3, depth=1, cfg=cfg)
    cfg['k'].append(3) # later mutation by the caller must not leak in
    assert net.init_args == (3,)
    assert isinstance(net.init_kwargs, dnnlib.EasyDict)
    assert net.init_kwargs == dict(depth=1, cfg=dict(k=[1, 2]))
    net.init_kwargs.depth = 99 # returned copies are independent
    assert net.init_kwargs.depth == 1
    thing = netmod.Thing(5, b=7)
    assert thing.init_args == (5,) and thing.init_kwargs == dict(b=7)


def test_roundtrip(netmod):
    torch.manual_seed(0)
    net = netmod.Net(4, depth=2, cfg=dnnlib.EasyDict(a=1))
    x = torch.randn(2, 4)
    net2 = pickle.loads(pickle.dumps(net))
    assert type(net2) is type(net) # same module source -> same (original) class
    assert torch.equal(net(x), net2(x))
    assert net2.init_kwargs == dict(depth=2, cfg=dict(a=1))
    assert isinstance(net2.cfg, dnnlib.EasyDict)
    net3 = copy.deepcopy(net)
    assert torch.equal(net(x), net3(x))
    assert net3.layers[0].fc.weight is not net.layers[0].fc.weight


def test_load_without_original_module(netmod, fresh_caches):
    torch.manual_seed(1)
    net = netmod.Net(3, depth=1)
    x = torch.randn(5, 3)
    ref = net(x)
    data = pickle.dumps(net)

    # The original module is gone; only the embedded source remains.
    del sys.modules[netmod.__name__]
    os.remove(netmod.__file__)
    persistence._module_to_src_dict.clear()
    persistence._src_to_module_dict.clear()

    net2 = pickle.loads(data)
    assert type(net2).__name__ == 'Net' and persistence.is_persistent(net2)
    assert type(net2) is not netmod.Net
    new_module = sys.modules[type(net2.layers[0]).__mro__[1].__module__]
    assert new_module.__name__.startswith('_imported_module_')
    assert torch.equal(net2(x), ref)
    assert net2.init_args == (3,) and net2.init_kwargs == dict(depth=1)

    # The same source maps to the same module: a second load does not re-execute it.
    net3 = pickle.loads(data)
    assert type(net3) is type(net2)
    # And a re-pickled copy still carries the source.
    net4 = pickle.loads(pickle.dumps(net2))
    assert torch.equal(net4(x), ref)


def test_load_in_fresh_process(netmod, tmp_path):
    torch.manual_seed(2)
    net = netmod.Net(3, depth=1)
    x = torch.randn(2, 3)
    pkl = tmp_path / 'net.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(dict(net=net, x=x, y=net(x).detach()), f)
    os.remove(netmod.__file__) # the child cannot import it even if it tried
    code = textwrap.dedent(f'''
        import pickle, torch
        with open({str(pkl)!r}, 'rb') as f:
            d = pickle.load(f)
        assert torch.equal(d['net'](d['x']), d['y'])
        assert type(d['net']).__module__ == 'torch_utils.persistence'
        print('OK', d['net'].init_args)
    ''')
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    res = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert 'OK (3,)' in res.stdout

#----------------------------------------------------------------------------

def test_import_hook(netmod, fresh_caches):
    net = netmod.Net(2, depth=1)
    x = torch.ones(1, 2)
    ref = net(x)
    data = pickle.dumps(net)
    seen = []

    @persistence.import_hook
    def hook(meta):
        assert isinstance(meta, dnnlib.EasyDict) and isinstance(meta.state, dnnlib.EasyDict)
        assert meta.type == 'class' and meta.version == 6
        seen.append(meta.class_name)
        meta.module_src = meta.module_src.replace('SCALE = 2.0', 'SCALE = 3.0')
        return meta

    net2 = pickle.loads(data)
    assert sorted(seen) == ['Layer', 'Net'] # inner objects are rebuilt first
    assert torch.allclose(net2(x), ref * 1.5)


def test_import_hook_must_return_meta(netmod, fresh_caches):
    data = pickle.dumps(netmod.Thing(1))
    persistence.import_hook(lambda meta: None)
    with pytest.raises(AssertionError, match='None'):
        pickle.loads(data)
    with pytest.raises(TypeError):
        persistence.import_hook(42)

#----------------------------------------------------------------------------
# The exact pickle layout (shared with StyleGAN2-ADA).

THING_SRC = textwrap.dedent('''
    from torch_utils import persistence

    @persistence.persistent_class
    class Thing:
        def __init__(self, a, b=2):
            self.a = a
            self.b = b
        def total(self):
            return self.a + self.b
''')


class _Stub:
    """Pickles exactly as the format prescribes, without using persistent_class."""
    def __init__(self, meta):
        self.meta = meta
    def __reduce__(self):
        return (persistence._reconstruct_persistent_obj, (self.meta,), None)


def _thing_meta(src, **extra_state):
    state = dict(a=3, b=4, _init_args=(3,), _init_kwargs=dict(b=4))
    state.update(extra_state)
    return dict(type='class', version=6, module_src=src, class_name='Thing', state=state)


def test_reduce_layout(netmod):
    thing = netmod.Thing(3, b=4)
    func, args, state = thing.__reduce__()
    assert func is persistence._reconstruct_persistent_obj and state is None
    (meta,) = args
    assert list(meta.keys()) == ['type', 'version', 'module_src', 'class_name', 'state']
    assert meta['type'] == 'class' and meta['version'] == 6
    assert meta['module_src'] == NET_SRC and meta['class_name'] == 'Thing'
    assert meta['state'] == dict(a=3, b=4, _init_args=(3,), _init_kwargs=dict(b=4))


def test_bytes_identical_to_reference_layout(netmod):
    thing = netmod.Thing(3, b=4)
    for protocol in (2, 4):
        expected = pickle.dumps(_Stub(_thing_meta(NET_SRC)), protocol=protocol)
        assert pickle.dumps(thing, protocol=protocol) == expected
    assert b'torch_utils.persistence' in expected and b'_reconstruct_persistent_obj' in expected


def test_load_hand_made_stream(fresh_caches):
    data = pickle.dumps(_Stub(_thing_meta(THING_SRC, extra=[1, 2])))
    obj = pickle.loads(data)
    assert type(obj).__name__ == 'Thing' and persistence.is_persistent(obj)
    assert obj.total() == 7 and obj.extra == [1, 2]
    assert obj.init_args == (3,) and obj.init_kwargs == dict(b=4)
    # Re-pickling reproduces the stream it came from.
    assert pickle.dumps(obj) == data


def test_load_rejects_other_versions(fresh_caches):
    meta = _thing_meta(THING_SRC)
    meta['version'] = 5
    with pytest.raises(AssertionError, match='version'):
        pickle.loads(pickle.dumps(_Stub(meta)))


def test_broken_source_is_not_cached(fresh_caches):
    src = 'raise RuntimeError("broken on purpose")\n'
    meta = dict(type='class', version=6, module_src=src, class_name='X', state={})
    before = set(sys.modules)
    with pytest.raises(RuntimeError, match='broken on purpose'):
        pickle.loads(pickle.dumps(_Stub(meta)))
    assert src not in persistence._src_to_module_dict
    assert set(sys.modules) == before

#----------------------------------------------------------------------------

def test_unpicklable_init_args_rejected(netmod):
    with pytest.raises(Exception):
        netmod.Thing(lambda: 0)


def test_class_must_be_top_level():
    # Loading looks the class up by name in its module, so a local class could never be unpickled.
    class Local:
        pass
    cls = persistence.persistent_class(Local)
    with pytest.raises(AssertionError, match='top level'):
        cls()

#----------------------------------------------------------------------------
# persistence.load: the restricted loader.

def test_load_refuses_unknown_sources(netmod, fresh_caches, monkeypatch):
    # netmod is imported from a temporary folder, not one of this installation's packages: its source is unknown.
    monkeypatch.delenv(persistence.TRUST_ENV, raising=False)
    monkeypatch.setattr(persistence, '_known_cache', dict())
    blob = pickle.dumps(netmod.Thing(1, b=2))
    with pytest.raises(persistence.UntrustedPickle, match=r"source of class 'Thing' \(sha256 [0-9a-f]{16}\.\.\.\)"):
        persistence.load(io.BytesIO(blob))
    assert persistence.load(io.BytesIO(blob), trust=True).total() == 3
    monkeypatch.setenv(persistence.TRUST_ENV, '1')
    assert persistence.load(io.BytesIO(blob)).total() == 3
    monkeypatch.delenv(persistence.TRUST_ENV)
    # Recorded as a release: loads without trust.
    monkeypatch.setitem(persistence.KNOWN_SOURCES, hashlib.sha256(NET_SRC.encode()).hexdigest(), 'test')
    monkeypatch.setattr(persistence, '_known_cache', dict())
    assert persistence.load(io.BytesIO(blob)).total() == 3


def test_load_knows_installed_modules():
    from torch_utils.ops import bias_act # pylint: disable=import-outside-toplevel
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    assert persistence.is_known_source(persistence._module_to_src(stylegan2)) # pylint: disable=protected-access
    with open(bias_act.__file__, encoding='utf-8') as f:
        assert persistence.is_known_source(f.read())
    assert not persistence.is_known_source(persistence._module_to_src(stylegan2) + ' ') # pylint: disable=protected-access
    torch.manual_seed(0)
    net = stylegan2.MappingNetwork(z_dim=4, c_dim=0, w_dim=4, num_ws=2, num_layers=1)
    x = torch.randn(3, 4)
    loaded = persistence.load(io.BytesIO(pickle.dumps(dict(net=net, layer=torch.nn.Linear(2, 2), dt=torch.bfloat16))))
    assert torch.equal(loaded['net'](x, None), net(x, None)) and loaded['dt'] is torch.bfloat16


class _FromBytes:
    """A storage that pickles (as torch's do) through torch.storage._load_from_bytes, with bytes of our choosing."""
    def __init__(self, blob):
        self.blob = blob
    def __reduce__(self):
        import torch.storage # pylint: disable=import-outside-toplevel
        return (torch.storage._load_from_bytes, (self.blob,)) # pylint: disable=protected-access


def test_load_storage_bytes_are_weights_only(tmp_path):
    # torch's own _load_from_bytes would torch.load(weights_only=False) the bytes: a pickle inside a pickle.
    from tests.malicious import MarkerWriter # pylint: disable=import-outside-toplevel
    marker = tmp_path / 'marker'
    inner = io.BytesIO()
    torch.save(MarkerWriter(marker, 'open'), inner, _use_new_zipfile_serialization=False)
    blob = pickle.dumps(dict(weights=_FromBytes(inner.getvalue())))
    with pytest.raises(pickle.UnpicklingError):
        persistence.load(io.BytesIO(blob))
    assert not marker.exists()
    pickle.loads(blob) # the plain route does run it: the test would notice if the substitution stopped happening
    assert marker.exists()
    t = torch.arange(6.0).reshape(2, 3)[:, 1:] # a view: storage, offset and strides all travel
    assert torch.equal(persistence.load(io.BytesIO(pickle.dumps(t))), t)


@pytest.mark.parametrize('name', ['builtins.eval', 'os.system', 'torch.load', 'torch.nn.modules.module.register_module_forward_hook',
    'torch_utils.persistence._src_to_module', 'dnnlib.util.call_func_by_name', 'subprocess.Popen'])
def test_load_refuses_other_globals(name):
    from torch_utils import safe_pickle # pylint: disable=import-outside-toplevel
    module, attr = name.rsplit('.', 1)
    blob = b'\x80\x02c' + module.encode() + b'\n' + attr.encode() + b'\n.' # GLOBAL module name, STOP
    with pytest.raises(safe_pickle.RefusedGlobal, match=name.replace('.', r'\.')):
        persistence.load(io.BytesIO(blob))

#----------------------------------------------------------------------------
