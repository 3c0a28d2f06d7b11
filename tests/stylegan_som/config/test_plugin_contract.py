"""The plugin contract: a loss, a head or a block is one file under stylegan_som/losses/, heads/ or blocks/ plus one
register() line in stylegan_som/plugins.py, and then --loss, --d-head, --g-blocks/--d-blocks take it, --help lists
it, and a short run trains with it. Checked on a copy of the repository with nothing else changed, and in process
by registering the classes at run time."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.stylegan_som.config import plugin_examples
from tests.test_train import cpu_env, make_image_folder

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

@pytest.fixture(scope='module')
def repo_copy(tmp_path_factory):
    """A copy of the code (no tests) with the three toy plugins added as their files and one line each."""
    root = tmp_path_factory.mktemp('copy') / 'repo'
    ignore = shutil.ignore_patterns('__pycache__', '.git', 'tests', 'bench', '*.pkl')
    os.makedirs(root)
    for name in ('dnnlib', 'torch_utils', 'metrics', 'stylegan_som'):
        shutil.copytree(os.path.join(REPO, name), root / name, ignore=ignore)
    for name in ('train.py', 'generate.py'):
        shutil.copy(os.path.join(REPO, name), root / name)
    for _, _, path, _, source in plugin_examples.PLUGINS:
        (root / 'stylegan_som' / path).write_text(source)
    with open(root / 'stylegan_som' / 'plugins.py', 'a') as f:
        f.write(plugin_examples.register_lines())
    return root

def run_copy(root, *args):
    env = cpu_env(PYTHONPATH=str(root))
    return subprocess.run([sys.executable, str(root / 'train.py'), *args], cwd=root, env=env, capture_output=True,
        text=True, timeout=600)

def test_help_lists_the_new_plugins(repo_copy):
    res = run_copy(repo_copy, '--help')
    assert res.returncode == 0, res.stderr
    text = ' '.join(res.stdout.split())
    assert 'toyloss' in text.split('--loss')[1].split('--gamma')[0]
    assert 'toyhead' in text.split('--d-head')[1].split('--g-blocks')[0]
    assert 'toyblock' in text.split('--g-blocks')[1].split('--d-blocks')[0]

def test_short_runs_with_the_new_plugins(repo_copy, tmp_path):
    data = make_image_folder(tmp_path / 'shapes', num=16, res=32)
    outdir = tmp_path / 'runs'
    res = run_copy(repo_copy, f'--outdir={outdir}', f'--data={data}', '--cfg=tiny', '--kimg=0.016', '--snap=1',
        '--workers=1', '--metrics=none', '--loss=toyloss', '--g-blocks=toyblock@16', '--d-blocks=toyblock@16')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res = run_copy(repo_copy, f'--outdir={outdir}', '--data=ring8', '--cfg=toy', '--kimg=0.256', '--snap=1',
        '--metrics=none', '--d-head=toyhead', '--loss=toyloss')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    runs = sorted(os.listdir(outdir))
    assert runs == ['00000-shapes-tiny-kimg0.016-gblockstoyblock16-dblockstoyblock16-toyloss',
        '00001-ring8-toy-kimg0.256-toyhead-toyloss'], runs
    first = json.load(open(outdir / runs[0] / 'training_options.json'))
    block = dict(class_name='stylegan_som.blocks.toyblock.ToyBlock')
    assert first['G_kwargs']['synthesis_kwargs']['attn_resolutions'] == [16]
    assert first['G_kwargs']['synthesis_kwargs']['attn_kwargs'] == block
    assert first['D_kwargs']['attn_resolutions'] == [16] and first['D_kwargs']['attn_kwargs'] == block
    assert first['loss_kwargs']['objective'] == 'toyloss' and first['loss_kwargs']['r1_gamma'] == 0
    second = json.load(open(outdir / runs[1] / 'training_options.json'))
    assert second['D_kwargs']['head_kwargs'] == dict(class_name='stylegan_som.heads.toyhead.ToyHead')
    for run in runs: # every run wrote its snapshot
        assert any(name.startswith('network-snapshot-') for name in os.listdir(outdir / run)), run

#----------------------------------------------------------------------------
# In process: the same classes registered at run time.

@pytest.fixture
def registered(tmp_path, monkeypatch):
    """The toy plugins importable as tests.stylegan_som.config.toy_*, registered under their names for one test."""
    from stylegan_som import plugins
    pkg = tmp_path / 'toyplugins'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('')
    names = []
    for registry, name, path, _, source in plugin_examples.PLUGINS:
        module = os.path.basename(path)[:-3]
        (pkg / f'{module}.py').write_text(source.replace('from .base import', 'from stylegan_som.losses.base import'))
        getattr(plugins, registry).register(name, f'toyplugins.{module}.{source.split("class ")[1].split("(")[0]}')
        names.append((registry, name))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for registry, name in names:
        getattr(plugins, registry).unregister(name)

def test_registered_at_run_time(registered, tmp_path):
    import train
    data = make_image_folder(tmp_path / 'shapes', num=4, res=32)
    desc, args = train.setup_training_loop_kwargs(data=data, cfg='tiny', metrics=[], device_type='cpu',
        loss='toyloss', d_head='toyhead', g_blocks=['toyblock@16'], d_attn=['8'], outdir=str(tmp_path / 'runs'))
    assert args.loss_kwargs.objective == 'toyloss' and args.loss_kwargs.r1_gamma == 0
    assert args.D_kwargs.head_kwargs.class_name == 'toyplugins.toyhead.ToyHead'
    assert args.G_kwargs.synthesis_kwargs.attn_kwargs.class_name == 'toyplugins.toyblock.ToyBlock'
    assert args.D_kwargs.attn_resolutions == [8] and 'attn_kwargs' not in args.D_kwargs # attention: the default
    assert desc == 'shapes-tiny-toyhead-gblockstoyblock16-dattn8-toyloss'
    help_text = ' '.join(train._command().get_help(train._command().make_context('train.py', [])).split()) # pylint: disable=protected-access
    for name in ('toyloss', 'toyhead', 'toyblock'):
        assert name in help_text

def test_block_flags(tmp_path):
    import train
    data = make_image_folder(tmp_path / 'shapes', num=4, res=32)
    common = dict(data=data, cfg='tiny', metrics=[], device_type='cpu', outdir=str(tmp_path / 'runs'))
    # --g-attn is short for --g-blocks=attention@RES: the same kwargs and run name.
    desc_a, args_a = train.setup_training_loop_kwargs(g_attn=['16', '8'], **common)
    desc_b, args_b = train.setup_training_loop_kwargs(g_blocks=['attention@8', 'attention@16'], **common)
    assert args_a == args_b and desc_a == desc_b == 'shapes-tiny-gattn8.16'
    assert args_a.G_kwargs.synthesis_kwargs.attn_resolutions == [8, 16]
    assert 'attn_kwargs' not in args_a.G_kwargs.synthesis_kwargs
    for value, message in [(['mystery@16'], "--g-blocks: unknown block 'mystery'"),
            (['attention@x'], "--g-blocks: 'x' is not a resolution"),
            (['attention@32'], '--g-blocks: no feature maps of 32x32')]:
        with pytest.raises(train.UserError, match=message):
            train.setup_training_loop_kwargs(g_blocks=value, **common)
    with pytest.raises(train.UserError, match='--d-blocks: the mlp backbone has no inserted blocks'):
        train.setup_training_loop_kwargs(data='ring8', cfg='toy', d_blocks=['attention@1'], device_type='cpu',
            metrics=[], outdir=str(tmp_path / 'runs'))
