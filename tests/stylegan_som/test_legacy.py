"""Tests for stylegan_som.legacy: loading network pickles of every supported layout, clear errors on bad
files, and the promise that pickles written here only need upstream StyleGAN2-ADA's dnnlib/torch_utils."""

import ast
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from stylegan_som import legacy
from stylegan_som.legacy import NetworkPickleError
from tests.malicious import EmbeddedSource, MarkerWriter, write_network_pickles
from torch_utils import persistence

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------
# A module in the style of upstream's training/networks.py, written out by the test and imported only in a
# child process, so the parent can load the pickles solely from the embedded source. It uses nothing but
# names upstream's dnnlib/torch_utils also have.

FOREIGN_MODULE = 'foreign_tiny_nets'
FOREIGN_SRC = textwrap.dedent('''
    import numpy as np
    import torch
    import dnnlib
    from torch_utils import misc
    from torch_utils import persistence
    from torch_utils.ops import bias_act

    @persistence.persistent_class
    class Mapping(torch.nn.Module):
        def __init__(self, z_dim, c_dim, w_dim, num_ws):
            super().__init__()
            self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
            self.weight = torch.nn.Parameter(torch.randn([w_dim, z_dim + c_dim]))
            self.bias = torch.nn.Parameter(torch.randn([w_dim]))
            self.register_buffer('w_avg', torch.randn([w_dim]))

        def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None):
            misc.assert_shape(z, [None, self.z_dim])
            x = z.to(torch.float32)
            if self.c_dim > 0:
                x = torch.cat([x, c.to(torch.float32)], dim=1)
            x = bias_act.bias_act(x.matmul(self.weight.t()) / np.sqrt(x.shape[1]), self.bias, act='lrelu')
            ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])
            if truncation_psi != 1:
                ws = self.w_avg.lerp(ws, truncation_psi)
            return ws

    @persistence.persistent_class
    class Synthesis(torch.nn.Module):
        def __init__(self, w_dim, num_ws, img_resolution, img_channels):
            super().__init__()
            self.w_dim, self.num_ws, self.img_resolution, self.img_channels = w_dim, num_ws, img_resolution, img_channels
            self.weight = torch.nn.Parameter(torch.randn([img_channels * img_resolution ** 2, w_dim * num_ws]))
            self.register_buffer('noise_const', torch.randn([img_resolution, img_resolution]))

        def forward(self, ws, noise_mode='random', **kwargs):
            misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
            x = ws.flatten(1).matmul(self.weight.t()) / np.sqrt(ws[0].numel())
            x = x.reshape(-1, self.img_channels, self.img_resolution, self.img_resolution)
            if noise_mode == 'const':
                x = x + 0.1 * self.noise_const
            return torch.tanh(x)

    @persistence.persistent_class
    class Generator(torch.nn.Module):
        def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}):
            super().__init__()
            self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
            self.img_resolution, self.img_channels = img_resolution, img_channels
            self.num_ws = 3
            self.synthesis = Synthesis(w_dim, self.num_ws, img_resolution, img_channels)
            self.mapping = Mapping(z_dim, c_dim, w_dim, self.num_ws, **mapping_kwargs)

        def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
            return self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff), **synthesis_kwargs)

    @persistence.persistent_class
    class LabelFreeGenerator(Generator):
        # Like the official SOMGAN code: no c_dim attribute, forward without a label.
        def __init__(self, z_dim, w_dim, img_resolution, img_channels):
            super().__init__(z_dim, 0, w_dim, img_resolution, img_channels)
            del self.c_dim

        def forward(self, z, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
            return self.synthesis(self.mapping(z, None, truncation_psi, truncation_cutoff), **synthesis_kwargs)

    @persistence.persistent_class
    class Discriminator(torch.nn.Module):
        def __init__(self, c_dim, img_resolution, img_channels):
            super().__init__()
            self.c_dim = c_dim
            self.fc = torch.nn.Linear(img_channels * img_resolution ** 2 + c_dim, 1)

        def forward(self, img, c=None, **kwargs):
            x = img.flatten(1)
            if self.c_dim > 0:
                x = torch.cat([x, c], dim=1)
            return self.fc(x)
''')

# Run in a child process with the module importable there: writes the pickles and the images they must draw.
WRITER = textwrap.dedent('''
    import copy, pickle, sys
    import numpy as np, torch, dnnlib
    import foreign_tiny_nets as nets
    out = sys.argv[1]
    torch.manual_seed(0)
    tsk = dnnlib.EasyDict(class_name='x.Dataset', path='/data/x.zip', use_labels=True, resolution=8)
    G = nets.Generator(z_dim=5, c_dim=3, w_dim=6, img_resolution=8, img_channels=3)
    D = nets.Discriminator(c_dim=3, img_resolution=8, img_channels=3)
    snap = dict(G=G, D=D, G_ema=copy.deepcopy(G), augment_pipe=None, training_set_kwargs=dict(tsk))
    snap = {k: (copy.deepcopy(v).eval().requires_grad_(False) if isinstance(v, torch.nn.Module) else v) for k, v in snap.items()}
    with open(out + '/upstream_layout.pkl', 'wb') as f:
        pickle.dump(snap, f)
    # Older snapshots lack augment_pipe / training_set_kwargs.
    with open(out + '/minimal.pkl', 'wb') as f:
        pickle.dump(dict(G=snap['G'], D=snap['D'], G_ema=snap['G']), f)
    S = nets.LabelFreeGenerator(z_dim=5, w_dim=6, img_resolution=8, img_channels=3).eval().requires_grad_(False)
    Ds = {f'D{i}': nets.Discriminator(c_dim=0, img_resolution=8, img_channels=3).eval().requires_grad_(False) for i in range(3)}
    with open(out + '/somgan_layout.pkl', 'wb') as f:
        pickle.dump(dict(G=S, G_ema=S, augment_pipe=None, training_set_kwargs=dict(tsk), **Ds), f)
    z = torch.from_numpy(np.random.RandomState(1).randn(2, 5))
    c = torch.eye(3)[[0, 2]]
    img = torch.randn([2, 3, 8, 8], generator=torch.Generator().manual_seed(3))
    np.savez(out + '/expected.npz', z=z.numpy(), c=c.numpy(), img=img.numpy(),
        G=snap['G_ema'](z, c, truncation_psi=0.7, noise_mode='const').numpy(), D=snap['D'](img, c).numpy(),
        S=S(z, truncation_psi=0.7, noise_mode='const').numpy(), D2=Ds['D2'](img).numpy())
''')


def _child_env(pythonpath):
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PYTHONPATH'] = os.pathsep.join(pythonpath)
    return env


@pytest.fixture(scope='module')
def foreign_files(tmp_path_factory):
    """Pickles written by code this process has never imported (see FOREIGN_SRC)."""
    src_dir = tmp_path_factory.mktemp('foreign_src')
    out = tmp_path_factory.mktemp('foreign_pkl')
    (src_dir / f'{FOREIGN_MODULE}.py').write_text(FOREIGN_SRC)
    (src_dir / 'writer.py').write_text(WRITER)
    res = subprocess.run([sys.executable, str(src_dir / 'writer.py'), str(out)], cwd=str(src_dir),
        env=_child_env([str(src_dir), REPO]), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    shutil.rmtree(src_dir) # the source now exists only inside the pickles
    with np.load(out / 'expected.npz') as npz:
        expected = {k: torch.from_numpy(npz[k]) for k in npz.files}
    return out, expected


def release_source(monkeypatch, src):
    """Make `src` one of the known released sources (as upstream's networks.py is), for this test only."""
    monkeypatch.setitem(persistence.KNOWN_SOURCES, hashlib.sha256(src.encode('utf-8')).hexdigest(), 'a test release')
    monkeypatch.setattr(persistence, '_known_cache', dict())


@pytest.fixture
def foreign(foreign_files, monkeypatch):
    """foreign_files, with FOREIGN_SRC standing in for a released upstream source: such pickles load without
    --trust-pickle, exactly like a real upstream pickle (whose source is in persistence.KNOWN_SOURCES)."""
    release_source(monkeypatch, FOREIGN_SRC)
    return foreign_files

#----------------------------------------------------------------------------

def test_loads_upstream_layout_from_embedded_source(foreign):
    out, exp = foreign
    assert FOREIGN_MODULE not in sys.modules
    with open(out / 'upstream_layout.pkl', 'rb') as f:
        data = legacy.load_network_pkl(f)
    assert FOREIGN_MODULE not in sys.modules # rebuilt from the embedded source, not imported
    assert set(data) >= {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}
    assert data['augment_pipe'] is None
    assert data['training_set_kwargs']['path'] == '/data/x.zip'
    G = data['G_ema']
    assert type(G).__name__ == 'Generator' and G.init_kwargs.c_dim == 3
    assert legacy.label_dim(G) == 3 and legacy.takes_labels(G) and legacy.takes_labels(G.mapping)
    img = legacy.run_generator(G, exp['z'], exp['c'], truncation_psi=0.7, noise_mode='const')
    assert torch.equal(img, exp['G'])
    assert torch.equal(data['D'](exp['img'], exp['c']), exp['D'])
    assert legacy.discriminators(data) == [data['D']]
    # Same ws through run_mapping as through the plain call.
    assert torch.equal(legacy.run_mapping(G, exp['z'], exp['c']), G.mapping(exp['z'], exp['c']))
    # A conditional G given no label gets an all-zero one.
    assert torch.equal(legacy.run_generator(G, exp['z'], noise_mode='const'), G(exp['z'], torch.zeros([2, 3]), noise_mode='const'))


def test_fills_missing_optional_keys(foreign):
    out, _ = foreign
    data = legacy.load_network_pkl(str(out / 'minimal.pkl')) # paths work as well as file objects
    assert data['augment_pipe'] is None and data['training_set_kwargs'] is None


def test_loads_somgan_layout(foreign):
    out, exp = foreign
    with open(out / 'somgan_layout.pkl', 'rb') as f:
        data = legacy.load_network_pkl(f)
    assert data['D'] is None # K separate discriminators: kept under their own names, none is picked as "the" D
    Ds = legacy.discriminators(data)
    assert Ds == [data['D0'], data['D1'], data['D2']]
    assert torch.equal(Ds[2](exp['img']), exp['D2'])
    G = data['G_ema']
    assert not hasattr(G, 'c_dim') and legacy.label_dim(G) == 0 and not legacy.takes_labels(G)
    assert torch.equal(legacy.run_generator(G, exp['z'], None, truncation_psi=0.7, noise_mode='const'), exp['S'])
    # An empty label (what generate.py builds for c_dim=0) is accepted; a real one is refused, not dropped.
    assert torch.equal(legacy.run_generator(G, exp['z'], torch.zeros([2, 0]), truncation_psi=0.7, noise_mode='const'), exp['S'])
    with pytest.raises(ValueError, match='takes no class label'):
        legacy.run_generator(G, exp['z'], torch.ones([2, 3]))


def test_force_fp16_rebuilds_networks(foreign):
    # The tiny nets take no fp16 kwargs, so rebuilding must fail loudly rather than be skipped silently.
    out, _ = foreign
    with pytest.raises(TypeError):
        legacy.load_network_pkl(str(out / 'upstream_layout.pkl'), force_fp16=True)

#----------------------------------------------------------------------------
# Bad files: one NetworkPickleError whose message names the file.

def _load_path(path):
    with open(path, 'rb') as f:
        return legacy.load_network_pkl(f)


def _expect_error(path, match):
    with pytest.raises(NetworkPickleError, match=match) as info:
        _load_path(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / 'nope.pkl'
    with pytest.raises(NetworkPickleError, match='not found') as info:
        legacy.load_network_pkl(str(path))
    assert str(path) in str(info.value)
    assert isinstance(info.value, IOError)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(NetworkPickleError, match='Cannot open') as info:
        legacy.load_network_pkl(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_garbage_bytes(tmp_path):
    path = tmp_path / 'garbage.pkl'
    path.write_bytes(np.random.RandomState(0).bytes(4096))
    _expect_error(path, 'Cannot')


def test_text_file_and_empty_file(tmp_path):
    path = tmp_path / 'notes.pkl'
    path.write_text('this is not a pickle\n')
    _expect_error(path, 'not a valid pickle')
    path = tmp_path / 'huge_frame.pkl'
    path.write_bytes(b'\x80\x04\x95 not a pickle, but the frame header asks for ~2**61 bytes')
    _expect_error(path, 'out of memory')
    path = tmp_path / 'empty.pkl'
    path.write_bytes(b'')
    _expect_error(path, 'ends early')


@pytest.mark.parametrize('fraction', [0.1, 0.5, 0.99])
def test_truncated_pickle(foreign, tmp_path, fraction):
    out, _ = foreign
    blob = (out / 'upstream_layout.pkl').read_bytes()
    path = tmp_path / 'truncated.pkl'
    path.write_bytes(blob[:int(len(blob) * fraction)])
    _expect_error(path, 'Cannot')


def test_dict_without_networks(foreign, tmp_path):
    out, _ = foreign
    data = _load_path(out / 'upstream_layout.pkl')
    path = tmp_path / 'no_G.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(D=data['D'], G_ema=data['G_ema']), f)
    msg = _expect_error(path, "no usable 'G'")
    assert "'D'" in msg and "'G_ema'" in msg # lists what it did find
    path = tmp_path / 'no_D.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(G=data['G'], G_ema=data['G_ema']), f)
    _expect_error(path, 'no discriminator')
    path = tmp_path / 'G_not_a_module.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(G='oops', D=data['D'], G_ema=data['G_ema']), f)
    _expect_error(path, "no usable 'G' network \\(a str\\)")


def test_not_a_dict(tmp_path):
    path = tmp_path / 'list.pkl'
    with open(path, 'wb') as f:
        pickle.dump([1, 2, 3], f)
    _expect_error(path, 'not a network snapshot')


def test_torch_save_file(tmp_path):
    path = tmp_path / 'state_dict.pt'
    torch.save({'w': torch.zeros(3)}, path) # a zip archive, a common mix-up
    _expect_error(path, 'Cannot')


def test_missing_code(tmp_path):
    # A plain (non-persistent) class pickled by reference, whose module does not exist at load time.
    mod = type(sys)('training_elsewhere')
    class Net:
        pass
    Net.__module__, Net.__qualname__ = mod.__name__, "Net"
    mod.Net = Net
    sys.modules[mod.__name__] = mod
    try:
        blob = pickle.dumps(dict(G=Net()))
    finally:
        del sys.modules[mod.__name__]
    path = tmp_path / 'by_reference.pkl'
    path.write_bytes(blob)
    msg = _expect_error(path, 'Refusing to load') # by default nothing outside the allow-list is even looked up
    assert 'training_elsewhere.Net' in msg and '--trust-pickle' in msg
    with pytest.raises(NetworkPickleError, match='does not run against') as info: # trusted: upstream's behaviour
        legacy.load_network_pkl(str(path), trust=True)
    assert 'training_elsewhere' in str(info.value)


def test_tensorflow_pickle(tmp_path):
    # Stand-in for a TF StyleGAN2 pickle: a tuple of dnnlib.tflib.network.Network objects.
    mod = type(sys)('dnnlib.tflib.network')
    class Network(dict):
        pass
    Network.__module__, Network.__qualname__ = mod.__name__, "Network"
    mod.Network = Network
    sys.modules[mod.__name__] = mod
    try:
        blob = pickle.dumps((Network(a=1), Network(b=2), Network(c=3)))
    finally:
        del sys.modules[mod.__name__]
    path = tmp_path / 'tf.pkl'
    path.write_bytes(blob)
    _expect_error(path, 'TensorFlow')


def test_in_memory_stream_is_named():
    with pytest.raises(NetworkPickleError, match='in-memory'):
        legacy.load_network_pkl(io.BytesIO(b'\x80\x04garbage'))

#----------------------------------------------------------------------------
# Safe by default: code the installation does not know is refused before it runs, naming what and the way out.

def test_unknown_embedded_source_is_refused(foreign_files, monkeypatch):
    out, exp = foreign_files
    monkeypatch.delenv(persistence.TRUST_ENV, raising=False)
    before = set(sys.modules)
    msg = _expect_error(out / 'upstream_layout.pkl', 'Refusing to load')
    assert set(sys.modules) == before # FOREIGN_SRC was not executed
    assert "embeds the source of class 'Synthesis'" in msg and '--trust-pickle' in msg and 'SGSOM_TRUST_PICKLES=1' in msg
    assert '\n' not in msg
    # Trusted (the flag, or the environment): loaded and run as upstream's loader would.
    G = legacy.load_network_pkl(str(out / 'upstream_layout.pkl'), trust=True)['G_ema']
    assert torch.equal(legacy.run_generator(G, exp['z'], exp['c'], truncation_psi=0.7, noise_mode='const'), exp['G'])
    monkeypatch.setenv(persistence.TRUST_ENV, '1')
    legacy.load_network_pkl(str(out / 'somgan_layout.pkl'))


@pytest.mark.parametrize('kind', ['reduce', 'source'])
def test_code_in_a_network_pickle_never_runs(tmp_path, monkeypatch, kind):
    monkeypatch.delenv(persistence.TRUST_ENV, raising=False)
    marker = tmp_path / 'marker'
    path = write_network_pickles(str(tmp_path), marker)[kind]
    msg = _expect_error(path, 'Refusing to load')
    assert not marker.exists()
    assert (f'{os.system.__module__}.system' if kind == 'reduce' else "source of class 'Generator'") in msg
    try: # trusted, the code does run (the test could tell if the refusal failed)
        legacy.load_network_pkl(path, trust=True)
    except NetworkPickleError: # os.system's return value is no network
        assert kind == 'reduce'
    assert marker.exists()


def test_allow_list_is_not_bypassed_inside_containers(tmp_path):
    # Nested anywhere (training state, a module's __dict__, an ndarray of objects), the same refusal.
    marker = tmp_path / 'marker'
    snap = _our_snapshot()
    for where in ['state', 'objects']:
        data = dict(snap)
        if where == 'state':
            data['training_state'] = dict(version=1, rng=[1, {'x': (MarkerWriter(marker, 'open'),)}])
        else:
            data['training_set_kwargs'] = dict(labels=np.array([MarkerWriter(marker, 'open')], dtype=object))
        path = tmp_path / f'{where}.pkl'
        path.write_bytes(pickle.dumps(data))
        _expect_error(path, 'Refusing to load')
    assert not marker.exists()
    # An embedded source that differs from the installed module by one byte is not ours any more.
    src = EmbeddedSource(marker).meta
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    src['module_src'] = persistence._module_to_src(stylegan2) + '\nopen(%r, "w").close()\n' % str(marker) # pylint: disable=protected-access
    src['class_name'] = 'Generator'
    path = tmp_path / 'patched.pkl'
    path.write_bytes(pickle.dumps(dict(G=_Stub(src))))
    _expect_error(path, "source of class 'Generator'")
    assert not marker.exists()


class _Stub:
    def __init__(self, meta):
        self.meta = meta
    def __reduce__(self):
        return (persistence._reconstruct_persistent_obj, (self.meta,)) # pylint: disable=protected-access


def test_our_pickles_load_without_trust(tmp_path, monkeypatch):
    # This installation's modules (networks, augment pipe, plugins) are known; tensors, arrays and torch.nn layers
    # are allowed: our snapshots need no flag.
    monkeypatch.delenv(persistence.TRUST_ENV, raising=False)
    snap = _our_snapshot()
    snap['training_state'] = dict(version=1, rng=np.random.RandomState(0).get_state(), t=torch.get_rng_state(),
        opt={'state': {0: {'step': torch.tensor(3.0), 'exp_avg': torch.ones(2)}}, 'param_groups': [{'lr': 0.1, 'betas': (0, 0.99)}]},
        dtype=torch.float16, size=torch.Size([2, 3]), layer=torch.nn.Linear(2, 2))
    path = tmp_path / 'ours.pkl'
    path.write_bytes(pickle.dumps(snap, protocol=4))
    data = legacy.load_network_pkl(str(path))
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(0))
    c = torch.eye(4)[[0, 1]]
    with torch.no_grad():
        assert torch.equal(data['G_ema'](z, c, noise_mode='const'), snap['G_ema'](z, c, noise_mode='const'))
    st = data['training_state']
    assert np.array_equal(st['rng'][1], snap['training_state']['rng'][1]) and st['dtype'] is torch.float16
    assert torch.equal(st['opt']['state'][0]['exp_avg'], torch.ones(2)) and isinstance(st['layer'], torch.nn.Linear)
    assert float(data['augment_pipe'].p) == 0.5


UPSTREAM_ENV = 'SGSOM_UPSTREAM_SRC' # a checkout of NVlabs/stylegan2-ada-pytorch, for the test below

@pytest.mark.skipif(not os.environ.get(UPSTREAM_ENV), reason=f'{UPSTREAM_ENV} (an upstream checkout) not set')
def test_real_upstream_sources_are_known(tmp_path):
    # The recorded hashes are those of upstream's files as persistence embeds them, and a pickle written by
    # upstream's own classes loads without --trust-pickle.
    root = os.environ[UPSTREAM_ENV]
    for name in ['training/networks.py', 'training/augment.py']:
        with open(os.path.join(root, name), encoding='utf-8-sig') as f: # as inspect.getsource() reads it
            assert persistence.is_known_source(f.read()), name
    os.makedirs(tmp_path / 'training')
    for name in ['training/__init__.py', 'training/networks.py', 'training/augment.py']:
        shutil.copy(os.path.join(root, name), tmp_path / name)
    writer = textwrap.dedent('''
        import pickle, sys, numpy as np, torch
        from training import networks, augment
        torch.manual_seed(0)
        G = networks.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
            synthesis_kwargs=dict(channel_base=256, channel_max=16)).eval().requires_grad_(False)
        aug = augment.AugmentPipe(xflip=1)
        z = torch.from_numpy(np.random.RandomState(1).randn(2, 8))
        np.save('img.npy', G(z, None, noise_mode='const').numpy())
        pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=aug), open('up.pkl', 'wb'))
    ''')
    res = subprocess.run([sys.executable, '-c', writer], cwd=str(tmp_path), env=_child_env([str(tmp_path), REPO]),
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    shutil.rmtree(tmp_path / 'training')
    data = legacy.load_network_pkl(str(tmp_path / 'up.pkl'), trust=False)
    z = torch.from_numpy(np.random.RandomState(1).randn(2, 8))
    with torch.no_grad():
        img = data['G_ema'](z, None, noise_mode='const')
    assert np.abs(img.numpy() - np.load(tmp_path / 'img.npy')).max() < 1e-5

#----------------------------------------------------------------------------
# Pickles written here must load with upstream's dnnlib/torch_utils: every embedded module may only use
# names that upstream StyleGAN2-ADA's packages also define.

UPSTREAM_API = {
    'dnnlib': {'EasyDict', 'make_cache_dir_path', 'util'},
    'dnnlib.util': {'EasyDict', 'Logger', 'ask_yes_no', 'call_func_by_name', 'construct_class_by_name',
        'copy_files_and_create_dirs', 'format_time', 'get_dtype_and_ctype', 'get_module_dir_by_obj_name',
        'get_module_from_obj_name', 'get_obj_by_name', 'get_obj_from_module', 'get_top_level_function_name',
        'is_pickleable', 'is_top_level_function', 'is_url', 'list_dir_recursively_with_ignore',
        'make_cache_dir_path', 'open_url', 'set_cache_dir', 'tuple_product'},
    'torch_utils': {'misc', 'persistence', 'training_stats', 'custom_ops', 'ops'},
    'torch_utils.misc': {'InfiniteSampler', 'assert_shape', 'check_ddp_consistency', 'constant',
        'copy_params_and_buffers', 'ddp_sync', 'named_params_and_buffers', 'params_and_buffers',
        'print_module_summary', 'profiled_function', 'suppress_tracer_warnings'},
    'torch_utils.persistence': {'import_hook', 'is_persistent', 'persistent_class'},
    'torch_utils.training_stats': {'Collector', 'init_multiprocessing', 'report', 'report0'},
    'torch_utils.custom_ops': {'get_plugin', 'verbosity'},
    'torch_utils.ops': {'bias_act', 'upfirdn2d', 'conv2d_resample', 'conv2d_gradfix', 'grid_sample_gradfix', 'fma'},
    'torch_utils.ops.bias_act': {'activation_funcs', 'bias_act'},
    'torch_utils.ops.upfirdn2d': {'setup_filter', 'upfirdn2d', 'filter2d', 'upsample2d', 'downsample2d'},
    'torch_utils.ops.conv2d_resample': {'conv2d_resample'},
    'torch_utils.ops.conv2d_gradfix': {'conv2d', 'conv_transpose2d', 'enabled', 'no_weight_gradients', 'weight_gradients_disabled'},
    'torch_utils.ops.grid_sample_gradfix': {'enabled', 'grid_sample'},
    'torch_utils.ops.fma': {'fma'},
}


def _third_party_ok(module):
    # scipy too: upstream's own pickled augment pipe imports scipy.signal, so every upstream install has it.
    top = module.split('.')[0]
    return top in ('torch', 'numpy', 'scipy') or top in sys.stdlib_module_names


def upstream_api_violations(src):
    """Names `src` takes from modules upstream StyleGAN2-ADA lacks or does not define. Follows imports of
    dnnlib/torch_utils modules and the attribute chains read from them (`misc.foo`, `dnnlib.util.foo`)."""
    bad = []
    aliases = {} # local name -> upstream module it refers to

    def use(module, name, where):
        full = f'{module}.{name}'
        if full in UPSTREAM_API:
            return full # a submodule
        if name not in UPSTREAM_API.get(module, ()):
            bad.append(f'line {where.lineno}: {full}')
        return None

    tree = ast.parse(src)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split('.')[0] in ('dnnlib', 'torch_utils'):
                    if a.name not in UPSTREAM_API:
                        bad.append(f'line {node.lineno}: import {a.name}')
                    elif a.asname:
                        aliases[a.asname] = a.name
                    else: # `import a.b.c` binds `a`
                        aliases[a.name.split('.')[0]] = a.name.split('.')[0]
                elif not _third_party_ok(a.name):
                    bad.append(f'line {node.lineno}: import {a.name}')
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if node.level or mod.split('.')[0] not in ('dnnlib', 'torch_utils'):
                if node.level or not _third_party_ok(mod):
                    bad.append(f'line {node.lineno}: from {"." * node.level}{mod} import ...')
                continue
            if mod not in UPSTREAM_API:
                bad.append(f'line {node.lineno}: from {mod} import ...')
                continue
            for a in node.names:
                sub = use(mod, a.name, node)
                if sub:
                    aliases[a.asname or a.name] = sub

    def resolve(expr):
        # Module named by a Name/Attribute chain, if it is one of the upstream modules.
        if isinstance(expr, ast.Name):
            return aliases.get(expr.id)
        if isinstance(expr, ast.Attribute):
            base = resolve(expr.value)
            if base is not None and f'{base}.{expr.attr}' in UPSTREAM_API:
                return f'{base}.{expr.attr}'
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            base = resolve(node.value)
            if base is not None:
                use(base, node.attr, node)
    return sorted(set(bad))


def test_api_checker_catches_violations():
    good = ('import torch, numpy as np, math\nimport dnnlib\nfrom torch_utils import misc, persistence\n'
        'from torch_utils.ops import bias_act, upfirdn2d\nimport torch_utils.ops.fma\n'
        'x = misc.assert_shape; y = dnnlib.util.open_url; z = upfirdn2d.setup_filter; w = torch_utils.ops.fma.fma\n'
        'e = dnnlib.EasyDict()\n')
    assert upstream_api_violations(good) == []
    assert upstream_api_violations('from torch_utils import misc\nmisc.nan_to_num(1)\n') == ['line 2: torch_utils.misc.nan_to_num']
    assert upstream_api_violations('import dnnlib\ndnnlib.util.fancy()\n') == ['line 2: dnnlib.util.fancy']
    assert upstream_api_violations('from torch_utils.ops import filtered_lrelu\n') == ['line 1: torch_utils.ops.filtered_lrelu']
    assert upstream_api_violations('import stylegan_som.heads\n') == ['line 1: import stylegan_som.heads']
    assert upstream_api_violations('from stylegan_som import som\n') == ['line 1: from stylegan_som import ...']
    assert upstream_api_violations('from . import heads\n') == ['line 1: from . import ...']
    assert upstream_api_violations('import sklearn\n') == ['line 1: import sklearn']
    assert upstream_api_violations('import scipy.signal\nfrom numpy import linalg\n') == []
    assert upstream_api_violations('from torch_utils.ops.upfirdn2d import _parse_padding\n') == ['line 1: torch_utils.ops.upfirdn2d._parse_padding']


def embedded_sources(blob):
    """Source of every persistent module in a pickle, collected without executing any of it."""
    sources = []
    class Collector(pickle.Unpickler):
        def find_class(self, module, name):
            if module == 'torch_utils.persistence' and name == '_reconstruct_persistent_obj':
                return lambda meta: sources.append(meta['module_src'])
            return super().find_class(module, name)
    Collector(io.BytesIO(blob)).load()
    return sources


def _our_snapshot():
    """A snapshot written the way our training loop does, from our own networks (small, 16x16)."""
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    torch.manual_seed(0)
    common = dict(c_dim=4, img_resolution=16, img_channels=3)
    G = stylegan2.Generator(z_dim=8, w_dim=8, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=16, conv_clamp=256), **common)
    D = stylegan2.Discriminator(channel_base=256, channel_max=16, conv_clamp=256, epilogue_kwargs=dict(mbstd_group_size=2), **common)
    with torch.no_grad():
        G.mapping.w_avg.normal_() # so truncation does something
    from stylegan_som.augment import AugmentPipe # pylint: disable=import-outside-toplevel
    aug = AugmentPipe(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
        lumaflip=1, hue=1, saturation=1)
    aug.p.copy_(torch.as_tensor(0.5))
    snap = dict(training_set_kwargs=dict(class_name='x.Dataset', path='/data/x.zip'))
    for name, module in [('G', G), ('D', D), ('G_ema', G), ('augment_pipe', aug)]:
        snap[name] = module.eval().requires_grad_(False)
    return snap


def test_force_fp16_on_our_networks(tmp_path):
    snap = _our_snapshot()
    path = tmp_path / 'snap.pkl'
    path.write_bytes(pickle.dumps(snap))
    data = legacy.load_network_pkl(str(path), force_fp16=True)
    G, D = data['G_ema'], data['D']
    assert G.init_kwargs.synthesis_kwargs.num_fp16_res == 4 and G.init_kwargs.synthesis_kwargs.conv_clamp == 256
    assert D.init_kwargs.num_fp16_res == 4 and D.init_kwargs.conv_clamp == 256
    assert G is not snap['G_ema'] and not G.training and not any(p.requires_grad for p in G.parameters())
    for (name, a), (_, b) in zip(snap['G_ema'].state_dict().items(), G.state_dict().items()):
        assert torch.equal(a, b), name
    z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(0))
    c = torch.eye(4)[[0, 1]]
    with torch.no_grad(): # same weights, fp16 in the upper layers: close, not equal
        a = snap['G_ema'](z, c, noise_mode='const', force_fp32=True)
        b = G(z, c, noise_mode='const', force_fp32=True)
    assert torch.allclose(a, b, atol=1e-5) # force_fp32 undoes the only difference


def test_our_pickle_needs_only_upstream_names(tmp_path):
    snap = _our_snapshot()
    blob = pickle.dumps(snap)
    sources = embedded_sources(blob)
    assert sources, 'our networks are not persistent classes'
    for src in set(sources):
        head = src.strip().splitlines()[0][:80]
        assert upstream_api_violations(src) == [], f'embedded module starting with {head!r}'

    # Load and run it where only (a copy of) dnnlib and torch_utils exist, with stylegan_som unimportable.
    pkg = tmp_path / 'pkgs'
    for name in ['dnnlib', 'torch_utils']:
        shutil.copytree(os.path.join(REPO, name), pkg / name, ignore=shutil.ignore_patterns('__pycache__', '*.so', '*.o'))
    (tmp_path / 'snap.pkl').write_bytes(blob)
    G = snap['G_ema']
    z = torch.from_numpy(np.random.RandomState(5).randn(2, G.z_dim)).float()
    c = torch.eye(4)[[1, 3]]
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.7, noise_mode='const')
        logits = snap['D'](img, c)
        torch.manual_seed(1)
        aug = snap['augment_pipe'](img)
    np.savez(tmp_path / 'io.npz', z=z.numpy(), c=c.numpy(), img=img.numpy(), logits=logits.numpy(), aug=aug.numpy())
    child = textwrap.dedent(f'''
        import importlib.abc, pickle, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('stylegan_som', 'metrics', 'training', 'train', 'generate'):
                    raise ImportError('blocked: ' + name)
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(pkg)!r})
        import numpy as np, torch, dnnlib, torch_utils
        assert dnnlib.__file__.startswith({str(pkg)!r}) and torch_utils.__file__.startswith({str(pkg)!r})
        data = pickle.load(open('snap.pkl', 'rb'))
        io = np.load('io.npz')
        z, c = torch.from_numpy(io['z']), torch.from_numpy(io['c'])
        with torch.no_grad():
            img = data['G_ema'](z, c, truncation_psi=0.7, noise_mode='const')
            logits = data['D'](img, c)
            torch.manual_seed(1)
            aug = data['augment_pipe'](img)
        assert torch.equal(img, torch.from_numpy(io['img'])), (img - torch.from_numpy(io['img'])).abs().max()
        assert torch.equal(logits, torch.from_numpy(io['logits']))
        assert torch.equal(aug, torch.from_numpy(io['aug']))
        assert not any(m.split('.')[0] == 'stylegan_som' for m in sys.modules)
        print('ok')
    ''')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    res = subprocess.run([sys.executable, '-c', child], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == 'ok', res.stderr[-3000:]

#----------------------------------------------------------------------------
