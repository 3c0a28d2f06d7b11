"""Tests for stylegan_som.weights and python -m stylegan_som.export: safetensors snapshots load like the pickle
(same tensors, kwargs and outputs; same PNG bytes through generate.py, a working pickle through attach), keep
the training state with its types, and never build or import a class the file names unless it is one of ours."""

import copy
import json
import os
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from stylegan_som import attach, legacy, snapshot, weights
from stylegan_som.legacy import NetworkPickleError
from tests.stylegan_som.test_attach import upstream_made # pylint: disable=unused-import # noqa: F401 (a fixture)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#----------------------------------------------------------------------------

def _nets():
    """G, D (3 SOM heads, projection head plugin, attention) and an augmentation pipe, small and conditional."""
    from stylegan_som.augment import AugmentPipe # pylint: disable=import-outside-toplevel
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    torch.manual_seed(3)
    common = dict(c_dim=2, img_resolution=16, img_channels=3)
    G = stylegan2.Generator(z_dim=8, w_dim=8, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=256, channel_max=16, attn_resolutions=[8]), **common).eval().requires_grad_(False)
    D = stylegan2.Discriminator(channel_base=256, channel_max=16, num_heads=3, attn_resolutions=[8],
        head_kwargs=dict(class_name='stylegan_som.heads.projection.ProjectionHead'), **common).eval().requires_grad_(False)
    G_ema = copy.deepcopy(G)
    with torch.no_grad(): # every tensor differs from a fresh build, so a missed copy shows
        for m in (G_ema, D):
            for _name, t in m.named_parameters():
                t.add_(torch.randn_like(t) * 0.3)
        G_ema.mapping.w_avg.normal_()
    aug = AugmentPipe(xflip=1, rotate90=1, brightness=1).eval().requires_grad_(False)
    aug.p.fill_(0.3)
    return dict(G=G, D=D, G_ema=G_ema, augment_pipe=aug,
        training_set_kwargs=dict(class_name='stylegan_som.dataset.ImageFolderDataset', path='/data/x.zip', resolution=16))

def _tensors(module):
    return {n: t for n, t in list(module.named_parameters()) + list(module.named_buffers())}

def _assert_same(a, b):
    assert type(a).__name__ == type(b).__name__ and a.init_kwargs == b.init_kwargs
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    for name in ta:
        assert ta[name].dtype == tb[name].dtype and torch.equal(ta[name], tb[name]), name

def test_round_trip_networks(tmp_path):
    data = _nets()
    path = tmp_path / 'x.safetensors'
    weights.save(data, path)
    assert not os.path.exists(weights.state_path(path)) # no training state, no state file
    loaded = legacy.load_network_pkl(str(path))
    assert loaded['training_set_kwargs'] == data['training_set_kwargs'] and 'training_state' not in loaded
    for key in ('G', 'G_ema', 'D', 'augment_pipe'):
        _assert_same(data[key], loaded[key])
        assert not loaded[key].training
    assert loaded['D'].num_heads == 3 and type(loaded['D'].b4.out).__name__ == 'ProjectionHead'
    z = torch.randn([3, 8], generator=torch.Generator().manual_seed(0))
    c = torch.eye(2)[[0, 1, 1]]
    G, G2 = data['G_ema'], loaded['G_ema']
    assert torch.equal(G(z, c, truncation_psi=0.6, noise_mode='const'), G2(z, c, truncation_psi=0.6, noise_mode='const'))
    img = torch.randn([3, 3, 16, 16], generator=torch.Generator().manual_seed(1))
    logits = data['D'](img, c)
    assert logits.shape == (3, 3) and torch.equal(logits, loaded['D'](img, c))
    # Through a file object, as the CLIs pass it (open_url), the same.
    with open(path, 'rb') as f:
        again = legacy.load_network_pkl(f)
    assert torch.equal(again['G_ema'](z, c, noise_mode='const'), G2(z, c, noise_mode='const'))

def test_training_state_keeps_types(tmp_path):
    data = _nets()
    opt = torch.optim.Adam(data['G'].parameters(), lr=0.01, betas=(0.0, 0.99))
    data['G'].requires_grad_(True)
    data['G'](torch.randn([2, 8]), torch.eye(2)).square().mean().backward()
    opt.step()
    state = dict(version=snapshot.STATE_VERSION, cur_nimg=1234, augment_p=None, optimizers=dict(G=snapshot.to_cpu(opt.state_dict())),
        rng=dict(numpy=np.random.RandomState(5).get_state(), torch=torch.get_rng_state()), scalar=np.float32(0.25),
        blob=b'\x00\xff', nan=float('nan'), dtype=torch.float16, odd_keys={'__tensor__': 1, 2: 'two'}, nested=[(1, 2.5), []])
    data['training_state'] = state
    path = tmp_path / 'x.safetensors'
    weights.save(data, path)
    assert os.path.isfile(tmp_path / 'x.state.safetensors')
    got = legacy.load_network_pkl(path)['training_state']
    assert got['cur_nimg'] == 1234 and got['augment_p'] is None and np.isnan(got['nan'])
    assert isinstance(got['scalar'], np.float32) and got['scalar'] == np.float32(0.25)
    assert got['blob'] == b'\x00\xff' and got['dtype'] is torch.float16
    assert got['odd_keys'] == {'__tensor__': 1, 2: 'two'} and got['nested'] == [(1, 2.5), []]
    name, keys, pos, has_gauss, cached = got['rng']['numpy']
    ref = state['rng']['numpy']
    assert name == ref[0] and keys.dtype == ref[1].dtype and np.array_equal(keys, ref[1]) and (pos, has_gauss, cached) == ref[2:]
    rs = np.random.RandomState()
    rs.set_state(got['rng']['numpy'])
    assert rs.randint(1 << 30) == np.random.RandomState(5).randint(1 << 30)
    assert torch.equal(got['rng']['torch'], state['rng']['torch'])
    # The optimizer state loads into a fresh optimizer and gives it the same next step.
    sd = got['optimizers']['G']
    assert set(sd['state']) == set(state['optimizers']['G']['state']) and all(isinstance(k, int) for k in sd['state'])
    assert sd['param_groups'][0]['betas'] == (0.0, 0.99) and isinstance(sd['param_groups'][0]['betas'][0], float)
    opt2 = torch.optim.Adam(data['G'].parameters(), lr=0.01)
    opt2.load_state_dict(sd)
    for k, v in state['optimizers']['G']['state'].items():
        for name in ('exp_avg', 'exp_avg_sq', 'step'):
            assert torch.equal(opt2.state_dict()['state'][k][name], v[name])

#----------------------------------------------------------------------------
# Refusals: nothing named by the file is imported or built.

def _rewrite_metadata(src, dst, edit):
    """Copy the weights file `src` to `dst` with its networks metadata changed by `edit(dict)`."""
    from safetensors.torch import load_file, save_file # pylint: disable=import-outside-toplevel
    from safetensors import safe_open # pylint: disable=import-outside-toplevel
    with safe_open(str(src), framework='pt') as f:
        meta = f.metadata()
    nets = json.loads(meta['networks'])
    edit(nets)
    meta['networks'] = json.dumps(nets)
    save_file(load_file(str(src)), str(dst), metadata=meta)

@pytest.mark.parametrize('case', ['top', 'nested', 'upstream_name', 'state'])
def test_unknown_class_is_refused(tmp_path, case):
    path = tmp_path / 'x.safetensors'
    target = {'top': 'tests.stylegan_som.never_imported.Evil', 'nested': 'tests.stylegan_som.never_imported.Head',
        'upstream_name': 'training.networks.Generator', 'state': 'tests.stylegan_som.never_imported.G'}[case]
    data = _nets()
    if case == 'state': # attach builds the networks from the G_kwargs a training state records
        data['training_state'] = dict(version=snapshot.STATE_VERSION, G_kwargs=dict(class_name=target))
    weights.save(data, path)
    evil = tmp_path / 'evil.safetensors'
    if case == 'state':
        evil, path = path, None
    def edit(nets):
        if case == 'nested':
            nets['D']['init_kwargs']['head_kwargs']['class_name'] = target
        else:
            nets['G']['class_name'] = target
    if path is not None:
        _rewrite_metadata(path, evil, edit)
    with pytest.raises(NetworkPickleError) as err:
        legacy.load_network_pkl(str(evil))
    msg = str(err.value)
    assert str(evil if case != 'state' else weights.state_path(evil)) in msg and repr(target) in msg and 'not a network class of this installation' in msg
    assert 'tests.stylegan_som.never_imported' not in sys.modules

def test_bad_files_give_one_message(tmp_path):
    path = tmp_path / 'x.safetensors'
    weights.save(_nets(), path)
    blob = path.read_bytes()
    (tmp_path / 'short.safetensors').write_bytes(blob[:len(blob) // 2])
    with pytest.raises(NetworkPickleError, match=r'short\.safetensors.*truncated or corrupt'):
        legacy.load_network_pkl(str(tmp_path / 'short.safetensors'))
    # Tensors that do not fit the class the metadata names.
    from safetensors.torch import load_file, save_file # pylint: disable=import-outside-toplevel
    from safetensors import safe_open # pylint: disable=import-outside-toplevel
    tensors = load_file(str(path))
    with safe_open(str(path), framework='pt') as f:
        meta = f.metadata()
    del tensors['G/mapping.w_avg']
    save_file(tensors, str(tmp_path / 'missing.safetensors'), metadata=meta)
    with pytest.raises(NetworkPickleError, match=r'missing\.safetensors: the tensors of G do not fit .*missing: mapping\.w_avg'):
        legacy.load_network_pkl(str(tmp_path / 'missing.safetensors'))
    # Another program's safetensors file.
    save_file(dict(w=torch.zeros(2)), str(tmp_path / 'other.safetensors'))
    with pytest.raises(NetworkPickleError, match=r'other\.safetensors is a safetensors file but not a stylegan-som snapshot'):
        legacy.load_network_pkl(str(tmp_path / 'other.safetensors'))
    # A pickle is never mistaken for one.
    assert not weights.is_weights_file(pickle.dumps(dict(a=1), protocol=2)[:9])
    assert weights.is_weights_file(blob[:9])

def test_snapshot_formats_and_listing(tmp_path):
    data = _nets()
    data['training_state'] = dict(version=snapshot.STATE_VERSION, cur_nimg=0)
    pkl = str(tmp_path / 'network-snapshot-000004.pkl')
    assert weights.write_snapshot(data, pkl, 'safetensors') == str(tmp_path / 'network-snapshot-000004.safetensors')
    assert sorted(os.listdir(tmp_path)) == ['network-snapshot-000004.safetensors', 'network-snapshot-000004.state.safetensors']
    assert snapshot.list_snapshots(str(tmp_path)) == [str(tmp_path / 'network-snapshot-000004.safetensors')]
    assert weights.write_snapshot(data, str(tmp_path / 'network-snapshot-000008.pkl'), 'both') == str(tmp_path / 'network-snapshot-000008.pkl')
    assert [os.path.basename(p) for p in snapshot.list_snapshots(str(tmp_path))] == ['network-snapshot-000004.safetensors',
        'network-snapshot-000008.safetensors', 'network-snapshot-000008.pkl'] # the pickle last: the one resumed from
    with pytest.raises(ValueError, match='snapshot_format'):
        weights.write_snapshot(data, pkl, 'npz')

#----------------------------------------------------------------------------
# Command lines: export, then generate.py and attach from the weights file.

def _run(*args):
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES='')
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

def test_export_generate_attach(tmp_path):
    pkl = tmp_path / 'net.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(_nets(), f)
    st = tmp_path / 'net.safetensors'
    res = _run('-m', 'stylegan_som.export', f'--network={pkl}', f'--out={st}')
    assert res.returncode == 0 and f'Wrote {st}' in res.stdout, res.stderr
    for name, net in [('pkl', pkl), ('st', st)]:
        res = _run('generate.py', f'--network={net}', '--seeds=0-2', '--class=1', '--trunc=0.7', f'--outdir={tmp_path / name}', '--device=cpu')
        assert res.returncode == 0, res.stderr
    pngs = sorted(os.listdir(tmp_path / 'pkl'))
    assert pngs == ['seed0000.png', 'seed0001.png', 'seed0002.png'] and sorted(os.listdir(tmp_path / 'st')) == pngs
    for png in pngs:
        assert (tmp_path / 'pkl' / png).read_bytes() == (tmp_path / 'st' / png).read_bytes(), png
    assert (tmp_path / 'st' / pngs[0]).read_bytes() != (tmp_path / 'st' / pngs[1]).read_bytes()

    # attach reads the weights file like the pickle: 3 -> 4 heads, the same result from both.
    outs = []
    for name, net in [('pkl', pkl), ('st', st)]:
        out = tmp_path / f'som4-{name}.pkl'
        res = _run('-m', 'stylegan_som.attach', f'--network={net}', '--som-d=4', f'--out={out}')
        assert res.returncode == 0, res.stderr
        outs.append(legacy.load_network_pkl(str(out)))
    assert outs[0]['D'].num_heads == outs[1]['D'].num_heads == 4
    _assert_same(outs[0]['D'], outs[1]['D'])

    # Bad input: one line naming the flag, no traceback.
    res = _run('-m', 'stylegan_som.export', f'--network={pkl}', f'--out={tmp_path / "x.pt"}')
    assert res.returncode == 2 and '--out must end in .safetensors' in res.stderr and 'Traceback' not in res.stderr
    res = _run('-m', 'stylegan_som.export', f'--network={tmp_path / "none.pkl"}', f'--out={st}')
    assert res.returncode == 2 and '--network' in res.stderr and 'none.pkl' in res.stderr and 'Traceback' not in res.stderr

def test_upstream_layouts(upstream_made, tmp_path):
    # Pickles whose classes live only in their embedded source (training.networks), in upstream's and in SOMGAN's
    # layout (D0 .. D2, no D), export and draw what the pickle draws.
    out, exp = upstream_made
    data = legacy.load_network_pkl(str(out / 'cond.pkl'))
    weights.save(data, tmp_path / 'cond.safetensors')
    got = legacy.load_network_pkl(str(tmp_path / 'cond.safetensors'))
    assert got['training_set_kwargs']['class_name'] == 'training.dataset.ImageFolderDataset'
    assert torch.equal(got['G_ema'](exp['z'], exp['c'], noise_mode='const'), exp['cond_G'])
    assert torch.equal(got['D'](exp['img'], exp['c']), exp['cond_D'])
    somgan = legacy.load_network_pkl(str(out / 'somgan.pkl'))
    weights.save(somgan, tmp_path / 'somgan.safetensors')
    got = legacy.load_network_pkl(str(tmp_path / 'somgan.safetensors'))
    assert got['D'] is None and len(legacy.discriminators(got)) == 3
    for a, b in zip(legacy.discriminators(somgan), legacy.discriminators(got)):
        _assert_same(a, b)
    merged = attach.attach(got, log=None) # one D with the 3 discriminators as heads, as from the pickle
    assert merged['D'].num_heads == 3
    _assert_same(merged['D'], attach.attach(somgan, log=None)['D'])

UPSTREAM_ENV = 'SGSOM_UPSTREAM_SRC' # a checkout of NVlabs/stylegan2-ada-pytorch, as in test_legacy.py

@pytest.mark.skipif(not os.environ.get(UPSTREAM_ENV), reason=f'{UPSTREAM_ENV} (an upstream checkout) not set')
def test_upstream_pickle_exports(tmp_path):
    # Upstream's classes are written under the names of ours; the rebuilt networks agree with upstream's to float
    # rounding (the two implementations order a few operations differently).
    import shutil # pylint: disable=import-outside-toplevel
    root = os.environ[UPSTREAM_ENV]
    os.makedirs(tmp_path / 'training')
    for name in ['training/__init__.py', 'training/networks.py', 'training/augment.py']:
        shutil.copy(os.path.join(root, name), tmp_path / name)
    writer = ('import pickle, torch\nfrom training import networks, augment\ntorch.manual_seed(0)\n'
        'G = networks.Generator(z_dim=8, c_dim=2, w_dim=8, img_resolution=16, img_channels=3, '
        'synthesis_kwargs=dict(channel_base=256, channel_max=16)).eval().requires_grad_(False)\n'
        'D = networks.Discriminator(c_dim=2, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)\n'
        'pickle.dump(dict(G=G, D=D, G_ema=G, augment_pipe=augment.AugmentPipe(xflip=1)), open("up.pkl", "wb"))\n')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env['PYTHONPATH'] = os.pathsep.join([str(tmp_path), REPO])
    res = subprocess.run([sys.executable, '-c', writer], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    up = legacy.load_network_pkl(str(tmp_path / 'up.pkl'))
    weights.save(up, tmp_path / 'up.safetensors')
    ours = legacy.load_network_pkl(str(tmp_path / 'up.safetensors'))
    z, c = torch.randn([2, 8]), torch.eye(2)
    assert float((up['G_ema'](z, c, noise_mode='const') - ours['G_ema'](z, c, noise_mode='const')).abs().max()) < 1e-4
    img = torch.randn([2, 3, 16, 16])
    assert float((up['D'](img, c) - ours['D'](img, c)).abs().max()) < 1e-4
    assert type(ours['augment_pipe']).__mro__[1].__module__ == 'stylegan_som.augment'

#----------------------------------------------------------------------------

def test_every_listed_class_is_ours():
    names = weights.classes()
    assert 'stylegan_som.networks.stylegan2.Generator' in names and 'stylegan_som.augment.AugmentPipe' in names
    assert 'stylegan_som.heads.projection.ProjectionHead' in names and 'stylegan_som.blocks.attention.SelfAttention' in names
    assert all(n.startswith('stylegan_som.') for n in names)
    # Every registered head and block plugin with a class of its own (cmap and concat are built into D: none) can
    # be named by a weights file.
    from stylegan_som import plugins # pylint: disable=import-outside-toplevel
    for registry in (plugins.HEADS, plugins.BLOCKS):
        for name in registry.names():
            assert registry.class_name(name) is None or registry.class_name(name) in names, name
    # And every backbone's networks under the names run options record (dcgan's are small.py's, re-exported).
    for name in plugins.BACKBONES.names():
        for cls in ('Generator', 'Discriminator'):
            assert f'{plugins.BACKBONES.class_name(name)}.{cls}' in names, (name, cls)
    assert names['stylegan_som.networks.dcgan.Generator'] is names['stylegan_som.networks.small.DCGANGenerator']

#----------------------------------------------------------------------------
