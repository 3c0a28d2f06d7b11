"""Tests for stylegan_som.attach: rebuilding the networks of upstream-made, SOMGAN-layout and our own pickles
with plugins (SOM heads, projection head, attention, spectral norm), the head tiling, the command line, and
training from an upstream-made pickle with heads attached; the results must still load without this package.

"Upstream-made" pickles are written by a child process from a module named `training.networks` (upstream's
module path) whose source is our StyleGAN2 module, which has upstream's class names, constructor arguments
and parameter names; the source directory is deleted afterwards, so the pickles load from their embedded
source alone, as a real upstream pickle does."""

import copy
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from stylegan_som import attach, legacy
from tests.stylegan_som.test_legacy import REPO, _child_env, embedded_sources, upstream_api_violations

#----------------------------------------------------------------------------

RES = 8

WRITER = textwrap.dedent('''
    import copy, pickle, sys
    import numpy as np, torch
    from training import networks as nets
    out = sys.argv[1]
    torch.manual_seed(0)

    def perturb(module, seed):
        # Fresh layers have zero biases and noise strengths; trained ones do not.
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in module.parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.2)
        return module.eval().requires_grad_(False)

    def G_for(c_dim, seed, **extra):
        return perturb(nets.Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=%(res)d, img_channels=3,
            mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=128, channel_max=16,
            num_fp16_res=0, conv_clamp=256), **extra), seed)

    def D_for(c_dim, seed):
        return perturb(nets.Discriminator(c_dim=c_dim, img_resolution=%(res)d, img_channels=3, architecture='orig',
            channel_base=128, channel_max=16, num_fp16_res=0, conv_clamp=256, block_kwargs={}, mapping_kwargs={},
            epilogue_kwargs=dict(mbstd_group_size=4)), seed)

    tsk = dict(class_name='training.dataset.ImageFolderDataset', path='/data/x.zip', resolution=%(res)d)
    img = torch.randn([4, 3, %(res)d, %(res)d], generator=torch.Generator().manual_seed(3))
    z = torch.randn([4, 16], generator=torch.Generator().manual_seed(4))
    c = torch.eye(2)[[0, 1, 1, 0]]
    expected = dict(img=img.numpy(), z=z.numpy(), c=c.numpy())
    for name, c_dim in [('uncond', 0), ('cond', 2)]:
        G, D = G_for(c_dim, 1), D_for(c_dim, 2)
        G_ema = perturb(copy.deepcopy(G), 3)
        cc = c if c_dim else torch.zeros([4, 0])
        with open(f'{out}/{name}.pkl', 'wb') as f:
            pickle.dump(dict(G=G, D=D, G_ema=G_ema, augment_pipe=None, training_set_kwargs=dict(tsk, use_labels=c_dim > 0)), f)
        expected[f'{name}_D'] = D(img, cc).numpy()
        expected[f'{name}_G'] = G_ema(z, cc, noise_mode='const').numpy()
    # SOMGAN layout: K whole discriminators D0..D2 and no D.
    G = G_for(0, 5)
    Ds = {f'D{i}': D_for(0, 10 + i) for i in range(3)}
    with open(f'{out}/somgan.pkl', 'wb') as f:
        pickle.dump(dict(G=G, G_ema=G, augment_pipe=None, training_set_kwargs=dict(tsk), **Ds), f)
    np.savez(f'{out}/expected.npz', **expected)
''' % dict(res=RES))

@pytest.fixture(scope='module')
def upstream_made(tmp_path_factory):
    src = tmp_path_factory.mktemp('upstream_src')
    out = tmp_path_factory.mktemp('upstream_pkl')
    (src / 'training').mkdir()
    (src / 'training' / '__init__.py').write_text('')
    shutil.copy(os.path.join(REPO, 'stylegan_som', 'networks', 'stylegan2.py'), src / 'training' / 'networks.py')
    (src / 'writer.py').write_text(WRITER)
    res = subprocess.run([sys.executable, str(src / 'writer.py'), str(out)], cwd=str(src),
        env=_child_env([str(src), REPO]), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    shutil.rmtree(src) # from now on the classes exist only inside the pickles
    with np.load(out / 'expected.npz') as npz:
        expected = {k: torch.from_numpy(npz[k]) for k in npz.files}
    return out, expected

def load(path):
    return legacy.load_network_pkl(str(path))

def quiet(_msg):
    pass

#----------------------------------------------------------------------------
# Loading a pickle in a process where only dnnlib and torch_utils exist (upstream's loader needs no more).

UPSTREAM_CHILD = textwrap.dedent('''
    import importlib.abc, pickle, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('stylegan_som', 'metrics', 'training', 'train', 'generate'):
                raise ImportError('blocked: ' + name)
    sys.meta_path.insert(0, Block())
    sys.path.insert(0, sys.argv[1])
    import numpy as np, torch
    data = pickle.load(open(sys.argv[2], 'rb'))
    io = np.load(sys.argv[3])
    z, c, img = (torch.from_numpy(io[k]) for k in ('z', 'c', 'img'))
    with torch.no_grad():
        G, D = data['G_ema'], data['D']
        np.savez(sys.argv[4], G=G(z, c[:, :G.c_dim], noise_mode='const').numpy(), D=D(img, c[:, :D.c_dim]).numpy())
    assert not any(m.split('.')[0] == 'stylegan_som' for m in sys.modules)
    print('ok')
''')

def run_in_upstream_like_process(tmp_path, pkl, expected):
    """(G image, D logits) computed by a child process that can import only copies of dnnlib and torch_utils."""
    pkg = tmp_path / 'pkgs'
    if not pkg.exists():
        for name in ['dnnlib', 'torch_utils']:
            shutil.copytree(os.path.join(REPO, name), pkg / name, ignore=shutil.ignore_patterns('__pycache__', '*.so', '*.o'))
    np.savez(tmp_path / 'in.npz', **{k: expected[k].numpy() for k in ('z', 'c', 'img')})
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    res = subprocess.run([sys.executable, '-c', UPSTREAM_CHILD, str(pkg), str(pkl), str(tmp_path / 'in.npz'),
        str(tmp_path / 'out.npz')], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == 'ok', res.stderr[-3000:]
    with np.load(tmp_path / 'out.npz') as npz:
        return torch.from_numpy(npz['G']), torch.from_numpy(npz['D'])

#----------------------------------------------------------------------------

def test_merge_kwargs():
    old = dict(c_dim=0, img_channels=3, channel_base=128, num_heads=2, block_kwargs=dict(freeze_layers=3, x=1),
        epilogue_kwargs=dict(mbstd_group_size=4))
    new = dict(c_dim=10, channel_base=999, architecture='orig', block_kwargs=dict(x=2),
        epilogue_kwargs=dict(mbstd_group_size=8), synthesis_kwargs=dict(attn_resolutions=[16], channel_max=7))
    keys = ('c_dim', 'img_channels', 'num_heads', 'freeze_layers', 'mbstd_group_size', 'attn_resolutions')
    merged = attach.merge_kwargs(old, new, keys, unset=('num_heads', 'freeze_layers'))
    # Listed keys follow `new`; absent there, they are removed (back to the default) if `unset` names them,
    # else kept. The rest stays `old`'s.
    assert merged == dict(c_dim=10, img_channels=3, channel_base=128, block_kwargs=dict(x=1),
        epilogue_kwargs=dict(mbstd_group_size=8), synthesis_kwargs=dict(attn_resolutions=[16]))
    assert old['num_heads'] == 2 # inputs untouched
    assert attach.merge_kwargs(old, {}, ()) == old
    diffs = attach.kwargs_differences(merged, new)
    assert "channel_base: 128 -> 999" in diffs and "architecture: '(default)' -> 'orig'" in diffs

def test_heads_on_upstream_pickle(upstream_made):
    out, exp = upstream_made
    data = load(out / 'uncond.pkl')
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    logs = []
    new = attach.attach(data, {}, dict(num_heads=4), log=logs.append)
    D = new['D']
    assert isinstance(D, stylegan2.Discriminator) and isinstance(new['G'], stylegan2.Generator) and D.num_heads == 4
    assert D.init_kwargs.num_heads == 4 and D.init_kwargs.architecture == 'orig' and D.init_kwargs.channel_base == 128
    assert not D.training and not any(p.requires_grad for p in D.parameters())
    with torch.no_grad():
        logits = D(exp['img'], torch.zeros([4, 0]))
    assert logits.shape == (4, 4)
    # Head 0 is the trained head; heads 1..3 are copies with 1% noise: close to it, but not tied.
    assert torch.allclose(logits[:, :1], exp['uncond_D'], atol=1e-5)
    spread = (logits[:, 1:] - logits[:, :1]).abs()
    assert spread.max() < 0.1 * exp['uncond_D'].abs().max() and (spread > 0).all()
    text = '\n'.join(logs)
    assert '1 -> 4 heads' in text and 'b4.out.weight' in text and 'freshly' not in text
    # G and G_ema carry over exactly.
    with torch.no_grad():
        assert torch.equal(new['G_ema'](exp['z'], torch.zeros([4, 0]), noise_mode='const'), exp['uncond_G'])
    assert new['training_set_kwargs'] == data['training_set_kwargs'] and new['augment_pipe'] is None

def test_head_noise_is_seeded_and_optional(upstream_made):
    out, exp = upstream_made
    heads = []
    for seed, noise in [(0, 0.01), (0, 0.01), (1, 0.01), (0, 0)]:
        D = attach.attach(load(out / 'uncond.pkl'), {}, dict(num_heads=3), head_noise=noise, seed=seed, log=quiet)['D']
        heads.append(D.b4.out.weight.clone())
    assert torch.equal(heads[0], heads[1]) and not torch.equal(heads[0], heads[2])
    assert torch.equal(heads[3][1], heads[3][0]) and torch.equal(heads[3][2], heads[3][0]) # no noise: exact copies

def test_fewer_heads_keep_the_first(upstream_made):
    out, exp = upstream_made
    four = attach.attach(load(out / 'uncond.pkl'), {}, dict(num_heads=4), log=quiet)
    logs = []
    two = attach.attach(four, {}, dict(num_heads=2), log=logs.append)
    assert torch.equal(two['D'].b4.out.weight, four['D'].b4.out.weight[:2])
    assert '4 -> 2 heads, kept the first 2' in '\n'.join(logs)

def test_conditional_cmap_heads_and_projection(upstream_made):
    out, exp = upstream_made
    data = load(out / 'cond.pkl')
    # Two heads on StyleGAN2's own label projection: each head projects its copy of the trained features.
    D = attach.attach(data, {}, dict(num_heads=2), log=quiet)['D']
    assert D.b4.out.weight.shape == (2 * 16, 16)
    with torch.no_grad():
        logits = D(exp['img'], exp['c'])
    assert logits.shape == (4, 2)
    assert torch.allclose(logits[:, :1], exp['cond_D'], atol=1e-5)
    assert torch.allclose(logits[:, 1:], exp['cond_D'], atol=0.1 * exp['cond_D'].abs().max())
    # A projection head replaces the cmap path: its parameters start fresh, the label mapping is not used.
    logs = []
    new = attach.attach(data, {}, dict(num_heads=2, head_kwargs=dict(class_name='stylegan_som.heads.projection.ProjectionHead')),
        log=logs.append)
    D = new['D']
    assert type(D.b4.out).__name__ == 'ProjectionHead' and D.b4.out.c_dim == 2 and not hasattr(D, 'mapping')
    text = '\n'.join(logs)
    assert 'b4.out.embed' in text and 'mapping.fc0.weight' in text and 'b4.out.weight [16, 16] -> [2, 16]' in text
    with torch.no_grad():
        assert D(exp['img'], exp['c']).shape == (4, 2)
        assert torch.equal(new['G_ema'](exp['z'], exp['c'], noise_mode='const'), exp['cond_G'])

def test_labels_for_an_unconditional_pickle(upstream_made):
    out, exp = upstream_made
    logs = []
    G_plugin, D_plugin = attach.plugin_kwargs(d_head='projection', c_dim=2)
    new = attach.attach(load(out / 'uncond.pkl'), G_plugin, D_plugin, log=logs.append)
    assert new['G'].c_dim == 2 and new['G_ema'].mapping.embed.weight.shape[1] == 2
    assert new['D'].b4.out.c_dim == 2
    with torch.no_grad():
        assert new['D'](exp['img'], exp['c']).shape == (4, 1)
    text = '\n'.join(logs)
    assert 'mapping.embed.weight' in text and 'mapping.fc0.weight' in text # G's first layer now also reads the label

def test_attention_and_spectral_norm(upstream_made, tmp_path):
    out, exp = upstream_made
    G_plugin, D_plugin = attach.plugin_kwargs(som_d=2, g_attn=[4], d_attn=[4], d_sn=True)
    new = attach.attach(load(out / 'uncond.pkl'), G_plugin, D_plugin, log=quiet)
    G, D = new['G_ema'], new['D']
    assert G.init_kwargs.synthesis_kwargs.attn_resolutions == [4] and hasattr(G.synthesis, 'attn4')
    assert D.init_kwargs.spectral_norm is True and D.init_kwargs.attn_resolutions == [4]
    with torch.no_grad(): # attention starts with a zero gain: G draws the same images
        assert torch.equal(G(exp['z'], torch.zeros([4, 0]), noise_mode='const'), exp['uncond_G'])
        assert D(exp['img'], torch.zeros([4, 0])).shape == (4, 2)
    # Spectrally normalised weights are parametrised; they still got the pickle's values.
    w = D.b8.conv0.parametrizations.weight.original
    assert torch.equal(w, load(out / 'uncond.pkl')['D'].b8.conv0.weight)
    # Their power-iteration vectors were converged for the copied weights: in eval mode (no further
    # iterations) the normalised weight has spectral norm 1, not W / sigma(random start).
    for layer in [D.b8.conv0, D.b4.fc, D.b4.out]:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert abs(sigma.item() - 1) < 0.05, sigma
    # Spectrally normalised on both sides: vectors of unchanged weights copy over, those of a tiled head are
    # converged afresh for its new weight.
    D4 = attach.attach(new, {}, dict(D_plugin, num_heads=4), log=quiet)['D']
    sn = lambda layer: layer.parametrizations.weight[0]
    assert torch.equal(sn(D4.b8.conv0)._u, sn(D.b8.conv0)._u)
    assert sn(D4.b4.out)._u.shape == (4,)
    sigma = torch.linalg.matrix_norm(D4.b4.out.weight.detach(), ord=2)
    assert abs(sigma.item() - 1) < 0.05, sigma

def test_somgan_pickle_becomes_one_D_with_K_heads(upstream_made):
    out, exp = upstream_made
    data = load(out / 'somgan.pkl')
    logs = []
    new = attach.attach(data, {}, {}, log=logs.append)
    assert not any(k.startswith('D') and k != 'D' for k in new)
    D = new['D']
    assert D.num_heads == 3 and D.c_dim == 0
    with torch.no_grad():
        logits = D(exp['img'], torch.zeros([4, 0]))
        for k in range(3): # the trunk is D0's, head k is Dk's final layer
            ref = copy.deepcopy(data['D0'])
            ref.b4.out.load_state_dict(data[f'D{k}'].b4.out.state_dict())
            assert torch.allclose(logits[:, k:k + 1], ref(exp['img'], torch.zeros([4, 0])), atol=1e-5), k
    assert 'SOMGAN layout' in '\n'.join(logs)

def test_strict_rebuild_refuses_changes(upstream_made):
    out, _exp = upstream_made
    data = load(out / 'uncond.pkl')
    G_kwargs = dict(class_name='stylegan_som.networks.stylegan2.Generator')
    D_kwargs = dict(class_name='stylegan_som.networks.stylegan2.Discriminator')
    G, D, G_ema = attach.networks_from_pickle(data, G_kwargs, D_kwargs, strict=True, log=quiet) # nothing changes: fine
    assert D.num_heads == 1
    with pytest.raises(attach.AttachError, match='cannot continue'):
        attach.networks_from_pickle(data, G_kwargs, dict(D_kwargs, num_heads=2), strict=True, log=quiet)
    with pytest.raises(attach.AttachError, match='cannot rebuild D'):
        attach.networks_from_pickle(data, G_kwargs, dict(D_kwargs, head_kwargs=dict(class_name='no.such.Head')), log=quiet)

def test_class_guess():
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    D = stylegan2.Discriminator(c_dim=0, img_resolution=8, img_channels=3, channel_base=64, channel_max=8)
    assert attach.guess_class_name(D, 'D') == 'stylegan_som.networks.stylegan2.Discriminator'
    # Other backbones of ours are found by class name in stylegan_som.networks (once, even if re-exported).
    small = pytest.importorskip('stylegan_som.networks.small')
    if hasattr(small, 'DCGANDiscriminator'):
        obj = small.DCGANDiscriminator.__new__(small.DCGANDiscriminator)
        assert attach.guess_class_name(obj, 'D') == f'{small.DCGANDiscriminator.__mro__[1].__module__}.DCGANDiscriminator'
    class Mystery(torch.nn.Module):
        pass
    with pytest.raises(attach.AttachError, match='no class here has that name'):
        attach.guess_class_name(Mystery(), 'D')

#----------------------------------------------------------------------------
# Command line.

def test_cli_writes_a_pickle_upstream_can_load(upstream_made, tmp_path):
    out, exp = upstream_made
    dst = tmp_path / 'attached.pkl'
    result = CliRunner().invoke(attach.main, [f'--network={out / "uncond.pkl"}', f'--out={dst}', '--som-d=4', '--g-attn=4'])
    assert result.exit_code == 0, result.output
    assert 'Wrote' in result.output and '1 -> 4 heads' in result.output
    blob = dst.read_bytes()
    for src in set(embedded_sources(blob)):
        assert upstream_api_violations(src) == [], src.strip().splitlines()[0]
    img, logits = run_in_upstream_like_process(tmp_path, dst, exp)
    assert torch.equal(img, exp['uncond_G']) # attention with zero gain: the same images
    assert logits.shape == (4, 4) and torch.allclose(logits[:, :1], exp['uncond_D'], atol=1e-5)
    # Attaching again with no flags keeps what is there (heads, attention).
    again = tmp_path / 'again.pkl'
    result = CliRunner().invoke(attach.main, [f'--network={dst}', f'--out={again}'])
    assert result.exit_code == 0, result.output
    data = load(again)
    assert data['D'].num_heads == 4 and data['G'].init_kwargs.synthesis_kwargs.attn_resolutions == [4]
    assert torch.equal(data['D'].b4.out.weight, load(dst)['D'].b4.out.weight)
    # ... and "none" takes attention off again.
    result = CliRunner().invoke(attach.main, [f'--network={dst}', f'--out={again}', '--g-attn=none'])
    assert result.exit_code == 0, result.output
    assert 'attn_resolutions' not in load(again)['G'].init_kwargs.synthesis_kwargs

@pytest.mark.parametrize('args, match', [
    (['--som-d=0'], '--som-d'),
    (['--d-attn=3'], '--d-attn'),
    (['--g-attn=x'], '--g-attn'),
    (['--head-noise=-1'], '--head-noise'),
])
def test_cli_bad_values(upstream_made, tmp_path, args, match):
    out, _exp = upstream_made
    result = CliRunner().invoke(attach.main, [f'--network={out / "uncond.pkl"}', f'--out={tmp_path / "x.pkl"}', *args])
    assert result.exit_code == 2 and match in result.output, result.output
    assert not (tmp_path / 'x.pkl').exists()

def test_cli_bad_files(tmp_path):
    result = CliRunner().invoke(attach.main, [f'--network={tmp_path / "missing.pkl"}', f'--out={tmp_path / "x.pkl"}'])
    assert result.exit_code == 2 and '--network' in result.output and 'missing.pkl' in result.output
    result = CliRunner().invoke(attach.main, [f'--network={tmp_path / "missing.pkl"}', f'--out={tmp_path / "no" / "x.pkl"}'])
    assert result.exit_code == 2 and '--out' in result.output

def test_cli_refuses_code(tmp_path, monkeypatch):
    from tests import malicious # pylint: disable=import-outside-toplevel
    monkeypatch.delenv('SGSOM_TRUST_PICKLES', raising=False)
    marker = tmp_path / 'marker'
    for kind, path in malicious.write_network_pickles(str(tmp_path), marker).items():
        result = CliRunner().invoke(attach.main, [f'--network={path}', f'--out={tmp_path / "x.pkl"}', '--som-d=4'])
        assert result.exit_code == 2, result.output
        assert f'--network: Refusing to load network pickle "{path}"' in result.output and '--trust-pickle' in result.output, kind
        assert not marker.exists() and not (tmp_path / 'x.pkl').exists()
    result = CliRunner().invoke(attach.main, [f'--network={tmp_path / "source.pkl"}', f'--out={tmp_path / "x.pkl"}', '--trust-pickle'])
    assert marker.exists() # the flag reaches the loader (the empty "networks" then cannot be rebuilt)

def test_cli_plugin_errors_are_usage_errors(upstream_made, tmp_path):
    out, _exp = upstream_made
    result = CliRunner().invoke(attach.main, [f'--network={out / "uncond.pkl"}', f'--out={tmp_path / "x.pkl"}', '--d-attn=8'])
    assert result.exit_code == 2 and 'attention resolution 8' in result.output, result.output

#----------------------------------------------------------------------------
# Training from an upstream-made pickle with SOM heads and attention attached.

def test_train_one_tick_after_attaching(upstream_made, tmp_path):
    from tests.test_train import cpu_env, make_image_folder, run_train # pylint: disable=import-outside-toplevel
    out, exp = upstream_made
    data = make_image_folder(tmp_path / 'shapes', num=16, res=RES)
    result = run_train(f'--outdir={tmp_path / "runs"}', f'--data={data}', f'--resume={out / "uncond.pkl"}', '--cfg=tiny',
        '--som-d=4', '--kimg=1', '--tick=1', '--snap=1', '--workers=1', '--metrics=none', '--aug=noaug', env=cpu_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert '1 -> 4 heads' in result.stdout
    assert 'settings of the run are not used' in result.stdout # tiny's widths differ from the pickle's
    run_dir = tmp_path / 'runs' / os.listdir(tmp_path / 'runs')[0]
    pkl = run_dir / 'network-snapshot-000001.pkl'
    snap = load(pkl)
    assert snap['D'].num_heads == 4 and snap['G'].z_dim == 16 # the pickle's shapes, the run's heads
    img, logits = run_in_upstream_like_process(tmp_path, pkl, exp)
    assert logits.shape == (4, 4) and torch.isfinite(logits).all() and torch.isfinite(img).all()
    assert not torch.equal(img, exp['uncond_G']) # it trained

#----------------------------------------------------------------------------
