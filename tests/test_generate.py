"""End-to-end test of generate.py: a snapshot written by our networks, drawn through the CLI in a child
process and compared with drawing the same seeds in-process; bad input gives one clear error."""

import copy
import os
import pickle
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import generate
from stylegan_som import legacy
from tests import malicious
from tests.cli_errors import one_error_line

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C_DIM = 4

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    """Path of a conditional 32x32 snapshot pickle laid out like the training loop's, and its G_ema."""
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    torch.manual_seed(1)
    common = dict(c_dim=C_DIM, img_resolution=32, img_channels=3)
    G = stylegan2.Generator(z_dim=16, w_dim=16, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=512, channel_max=16, conv_clamp=256), **common).eval().requires_grad_(False)
    D = stylegan2.Discriminator(channel_base=512, channel_max=16, conv_clamp=256, **common).eval().requires_grad_(False)
    G_ema = copy.deepcopy(G)
    with torch.no_grad(): # G_ema differs from G, and truncation has an effect
        for p in G_ema.parameters():
            p.add_(torch.randn_like(p) * 0.2)
        G_ema.mapping.w_avg.normal_()
    path = tmp_path_factory.mktemp('net') / 'network-snapshot-000000.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(training_set_kwargs=dict(class_name='x.Dataset', path='/x.zip'), G=G, D=D, G_ema=G_ema, augment_pipe=None), f)
    return path, G_ema


def _run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, os.path.join(REPO, 'generate.py'), *args], cwd=cwd or REPO, env=env,
        capture_output=True, text=True, timeout=120)


def _read_png(path):
    with PIL.Image.open(path) as img:
        assert img.mode == 'RGB' and img.size == (32, 32)
        return np.asarray(img)


def test_generate_cli(snapshot, tmp_path):
    path, G = snapshot
    out = tmp_path / 'out'
    res = _run(f'--network={path}', '--seeds=0-2', '--class=1', '--trunc=0.7', f'--outdir={out}', '--device=cpu')
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(out)) == ['seed0000.png', 'seed0001.png', 'seed0002.png']
    drawn = dict(generate.generate_from_seeds(G, [0, 1, 2], truncation_psi=0.7, class_idx=1))
    for seed in range(3):
        assert np.array_equal(_read_png(out / f'seed{seed:04d}.png'), drawn[seed])

    # The same draw, written out independently: one-hot label, float64 z as upstream, x * 127.5 + 128.
    z = torch.from_numpy(np.random.RandomState(2).randn(1, G.z_dim))
    c = torch.zeros([1, C_DIM]); c[0, 1] = 1
    with torch.no_grad():
        img = G(z, c, truncation_psi=0.7, noise_mode='const')
    ref = (img[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(drawn[2], ref)
    assert not np.array_equal(drawn[0], drawn[1]) # different seeds, different images
    other = dict(generate.generate_from_seeds(G, [0], truncation_psi=0.7, class_idx=2))
    assert not np.array_equal(other[0], drawn[0]) # the label is used

    # --projected-w: one image per w, through G.synthesis.
    ws = torch.randn([2, G.num_ws, G.w_dim], generator=torch.Generator().manual_seed(0))
    np.savez(tmp_path / 'projected_w.npz', w=ws.numpy())
    out = tmp_path / 'proj'
    result = CliRunner().invoke(generate.generate_images, [f'--network={path}', f'--projected-w={tmp_path / "projected_w.npz"}',
        '--seeds=5', f'--outdir={out}']) # in-process: the child-process path is covered above
    assert result.exit_code == 0, result.output
    assert '--seeds is ignored' in result.output
    assert sorted(os.listdir(out)) == ['proj00.png', 'proj01.png']
    for idx, expected in enumerate(generate.generate_from_ws(G, ws)):
        assert np.array_equal(_read_png(out / f'proj{idx:02d}.png'), expected)

    # A clean error from the real process: non-zero exit, the flag named, no traceback.
    res = _run(f'--network={path}', '--seeds=0', f'--outdir={tmp_path / "x"}')
    assert res.returncode != 0 and '--class' in res.stderr and 'Traceback' not in res.stderr

#----------------------------------------------------------------------------

def _cli(*args):
    result = CliRunner().invoke(generate.generate_images, list(args))
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), f'uncaught {result.exception!r}' # a click error, not a crash
    return result.output


@pytest.mark.parametrize('seeds', ['abc', '5-3', '1,,2', '-1', '1-2-3', str(2**32)])
def test_bad_seeds(snapshot, tmp_path, seeds):
    out = _cli(f'--network={snapshot[0]}', f'--seeds={seeds}', '--class=0', f'--outdir={tmp_path}')
    assert '--seeds' in out and seeds in out


def test_num_range():
    assert generate.num_range('1-3') == [1, 2, 3]
    assert generate.num_range('0,5,7-9') == [0, 5, 7, 8, 9]
    assert generate.num_range('42') == [42]


def test_conditional_needs_valid_class(snapshot, tmp_path):
    path = snapshot[0]
    assert '--class' in _cli(f'--network={path}', '--seeds=0', f'--outdir={tmp_path}')
    out = _cli(f'--network={path}', '--seeds=0', f'--class={C_DIM}', f'--outdir={tmp_path}')
    assert '--class' in out and f'{C_DIM} classes' in out
    assert '--class' in _cli(f'--network={path}', '--seeds=0', '--class=-1', f'--outdir={tmp_path}')


def test_bad_network(tmp_path):
    missing = tmp_path / 'missing.pkl'
    out = _cli(f'--network={missing}', '--seeds=0', f'--outdir={tmp_path / "o"}')
    assert '--network' in out and str(missing) in out
    corrupt = tmp_path / 'corrupt.pkl'
    corrupt.write_bytes(b'\x80\x04\x95 not really a pickle')
    out = _cli(f'--network={corrupt}', '--seeds=0', f'--outdir={tmp_path / "o"}')
    assert '--network' in out and str(corrupt) in out
    assert not (tmp_path / 'o').exists() # nothing written when loading fails


def test_other_bad_input(snapshot, tmp_path):
    path = snapshot[0]
    assert '--seeds' in _cli(f'--network={path}', f'--outdir={tmp_path}') # neither --seeds nor --projected-w
    np.savez(tmp_path / 'bad_w.npz', w=np.zeros([1, 3, 5], dtype=np.float32))
    assert '--projected-w' in _cli(f'--network={path}', f'--projected-w={tmp_path / "bad_w.npz"}', f'--outdir={tmp_path}')
    assert '--projected-w' in _cli(f'--network={path}', f'--projected-w={tmp_path / "none.npz"}', f'--outdir={tmp_path}')
    assert '--noise-mode' in _cli(f'--network={path}', '--seeds=0', '--noise-mode=loud', f'--outdir={tmp_path}')
    (tmp_path / 'file').write_text('x')
    assert '--outdir' in _cli(f'--network={path}', '--seeds=0', '--class=0', f'--outdir={tmp_path / "file"}')


def test_unconditional_ignores_class(tmp_path):
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    G = stylegan2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=1),
        synthesis_kwargs=dict(channel_base=128, channel_max=8)).eval().requires_grad_(False)
    D = stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=128, channel_max=8).eval().requires_grad_(False)
    path = tmp_path / 'uncond.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=D, G_ema=G), f)
    result = CliRunner().invoke(generate.generate_images, [f'--network={path}', '--seeds=3', '--class=1', f'--outdir={tmp_path / "o"}'])
    assert result.exit_code == 0, result.output
    assert 'ignored' in result.output
    assert os.listdir(tmp_path / 'o') == ['seed0003.png']
    assert legacy.label_dim(G) == 0

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Bad input, table-driven: one 'Error:' line naming the flag and the file or value, the exit code of click
# (2: a bad option value, 1: a file that cannot be used), no traceback, and no output folder left behind.

@pytest.fixture(scope='module')
def bad_files(snapshot, tmp_path_factory):
    root = tmp_path_factory.mktemp('bad')
    files = dict(pkl=str(snapshot[0]), missing=str(root / 'missing.pkl'), corrupt=str(root / 'corrupt.pkl'),
        truncated=str(root / 'truncated.pkl'), nonet=str(root / 'nonet.pkl'), file=str(root / 'a-file'))
    (root / 'corrupt.pkl').write_bytes(b'\x80\x04\x95 not really a pickle')
    (root / 'truncated.pkl').write_bytes(snapshot[0].read_bytes()[:5000])
    with open(root / 'nonet.pkl', 'wb') as f:
        pickle.dump(dict(G=None, D=None, G_ema=None), f)
    (root / 'a-file').write_text('x')
    # A diverged run: NaN weights; and finite weights so large that the output overflows.
    G_ema = snapshot[1]
    for name, scale in [('nanweights', float('nan')), ('overflow', 1e30)]:
        G = copy.deepcopy(G_ema)
        with torch.no_grad():
            for p in G.parameters():
                p.mul_(scale)
        files[name] = str(root / f'{name}.pkl')
        with open(files[name], 'wb') as f:
            pickle.dump(dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    np.savez(root / 'nan_w.npz', w=np.full([1, G_ema.num_ws, G_ema.w_dim], np.nan, dtype=np.float32))
    files['nan_w'] = str(root / 'nan_w.npz')
    # Pickles that would run code (a __reduce__ calling os.system, an embedded source): refused without a trace.
    files['marker'] = str(root / 'marker')
    files.update(malicious.write_network_pickles(str(root), files['marker']))
    return files

GENERATE_BAD = [ # (case, arguments, exit code, what the error line must mention)
    ('missing-pickle',       ['--network={missing}', '--seeds=0'],               1, ['--network', 'missing.pkl']),
    ('corrupt-pickle',       ['--network={corrupt}', '--seeds=0'],               1, ['--network', 'corrupt.pkl']),
    ('truncated-pickle',     ['--network={truncated}', '--seeds=0'],             1, ['--network', 'truncated.pkl', 'truncated']),
    ('not-a-network',        ['--network={nonet}', '--seeds=0'],                 1, ['--network', 'nonet.pkl', "'G'"]),
    ('seeds-text',           ['--network={pkl}', '--seeds=ten', '--class=0'],    2, ['--seeds', 'ten']),
    ('seeds-backwards',      ['--network={pkl}', '--seeds=9-3', '--class=0'],    2, ['--seeds', '9-3']),
    ('seeds-too-big',        ['--network={pkl}', f'--seeds={2**32}', '--class=0'], 2, ['--seeds', str(2**32)]),
    ('no-seeds',             ['--network={pkl}', '--class=0'],                   2, ['--seeds']),
    ('conditional-no-class', ['--network={pkl}', '--seeds=0'],                   2, ['--class', f'{C_DIM} classes']),
    ('class-out-of-range',   ['--network={pkl}', '--seeds=0', f'--class={C_DIM}'], 2, ['--class', str(C_DIM)]),
    ('trunc-text',           ['--network={pkl}', '--seeds=0', '--trunc=high'],   2, ["'--trunc'", 'high']),
    ('trunc-nan',            ['--network={pkl}', '--seeds=0', '--trunc=nan'],    2, ["'--trunc'", 'nan', 'finite']),
    ('trunc-inf',            ['--network={pkl}', '--seeds=0', '--trunc=-inf'],   2, ["'--trunc'", '-inf', 'finite']),
    ('nan-weights',          ['--network={nanweights}', '--seeds=0'],            1, ['--network', 'nanweights.pkl', 'non-finite weights']),
    ('output-overflows',     ['--network={overflow}', '--seeds=0-2', '--class=0'], 1, ['--network', 'overflow.pkl', 'seed 0', 'not finite']),
    ('reduce-pickle',        ['--network={reduce}', '--seeds=0'],                1, ['--network', 'reduce.pkl', 'Refusing', '.system', '--trust-pickle']),
    ('source-pickle',        ['--network={source}', '--seeds=0'],                1, ['--network', 'source.pkl', 'Refusing', "'Generator'", '--trust-pickle']),
    ('projected-w-nan',      ['--network={pkl}', '--projected-w={nan_w}'],       2, ['--projected-w', 'nan_w.npz', 'NaN']),
    ('outdir-is-a-file',     ['--network={pkl}', '--seeds=0', '--class=0', '--outdir={file}'], 2, ['--outdir', 'a-file']),
]

@pytest.mark.parametrize('case,args,code,mentions', GENERATE_BAD, ids=[c[0] for c in GENERATE_BAD])
def test_bad_input_table(bad_files, tmp_path, case, args, code, mentions):
    out = tmp_path / 'out'
    argv = [f'--outdir={out}'] + [a.format(**bad_files) for a in args]
    result = CliRunner().invoke(generate.generate_images, argv)
    assert result.exit_code == code, f'{case}: {result.exit_code} {result.output}'
    assert isinstance(result.exception, SystemExit), f'uncaught {result.exception!r}'
    one_error_line(result.output, mentions, **bad_files)
    assert not out.exists() # nothing written
    assert not os.path.exists(bad_files['marker']) # no code from a pickle ran

def test_bad_input_real_process(bad_files, tmp_path):
    res = _run(f'--network={bad_files["missing"]}', '--seeds=0', f'--outdir={tmp_path / "o"}')
    assert res.returncode == 1, res.stderr
    assert one_error_line(res.stderr).startswith(f'Error: --network={bad_files["missing"]}: ')
    assert not (tmp_path / 'o').exists()

def test_trust_pickle(tmp_path, monkeypatch):
    # A working network whose embedded source is unknown: refused in a real process (exit 1, one line, nothing run),
    # drawn with --trust-pickle or SGSOM_TRUST_PICKLES=1.
    monkeypatch.delenv('SGSOM_TRUST_PICKLES', raising=False)
    marker = tmp_path / 'marker'
    G = malicious.write_unknown_source_network(str(tmp_path / 'unknown.pkl'), marker, z_dim=8, c_dim=0, w_dim=8,
        img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=128, channel_max=8))
    res = _run(f'--network={tmp_path / "unknown.pkl"}', '--seeds=0', f'--outdir={tmp_path / "o"}', '--device=cpu')
    assert res.returncode == 1, res.stderr
    one_error_line(res.stderr, ['Refusing to load', 'unknown.pkl', '--trust-pickle', 'SGSOM_TRUST_PICKLES=1'])
    assert not marker.exists() and not (tmp_path / 'o').exists()
    res = _run(f'--network={tmp_path / "unknown.pkl"}', '--seeds=0', f'--outdir={tmp_path / "o"}', '--device=cpu', '--trust-pickle')
    assert res.returncode == 0, res.stderr
    assert marker.exists() and os.listdir(tmp_path / 'o') == ['seed0000.png']
    expected = dict(generate.generate_from_seeds(G, [0]))[0]
    with PIL.Image.open(tmp_path / 'o' / 'seed0000.png') as img:
        assert np.array_equal(np.asarray(img), expected)
    os.remove(marker)
    env = dict(os.environ, PYTHONPATH=REPO, SGSOM_TRUST_PICKLES='1')
    res = subprocess.run([sys.executable, os.path.join(REPO, 'generate.py'), f'--network={tmp_path / "unknown.pkl"}', '--seeds=1',
        f'--outdir={tmp_path / "o"}', '--device=cpu'], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and marker.exists(), res.stderr

#----------------------------------------------------------------------------
