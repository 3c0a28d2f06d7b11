"""train.py with discriminator heads: a small class-conditional run with the projection head on two SOM heads
trains on CPU, and its snapshot loads (here and without this package) and draws images of a chosen class;
--d-head values are checked."""

import json
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch

from tests.test_train import REPO, cpu_env, make_image_folder, run_train

PROJECTION = 'stylegan_som.heads.projection.ProjectionHead'

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def projection_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('train_heads')
    data = make_image_folder(root / 'shapes', num=16, res=8, labels=2)
    result = run_train(f'--outdir={root / "runs"}', f'--data={data}', '--cfg=tiny', '--cond=1', '--d-head=projection',
        '--som-d=2', '--som-topo=linear', '--kimg=1', '--tick=1', '--snap=1', '--workers=1', '--metrics=none',
        '--aug=noaug')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = os.listdir(root / 'runs')
    assert len(runs) == 1 and '-cond-' in runs[0] and '-projection' in runs[0], runs
    return root / 'runs' / runs[0]

def test_options_and_snapshot(projection_run):
    from stylegan_som import legacy
    with open(projection_run / 'training_options.json') as f:
        opts = json.load(f)
    assert opts['D_kwargs']['head_kwargs'] == dict(class_name=PROJECTION)
    assert opts['D_kwargs']['num_heads'] == 2
    data = legacy.load_network_pkl(str(projection_run / 'network-snapshot-000001.pkl'))
    D = data['D']
    assert type(D.b4.out).__name__ == 'ProjectionHead' and D.b4.out.c_dim == 2 and D.num_heads == 2
    assert not hasattr(D, 'mapping') # no cmap path next to the projection head
    img = torch.randn([4, 3, 8, 8], generator=torch.Generator().manual_seed(0))
    c = torch.eye(2)[[0, 1, 0, 1]]
    with torch.no_grad():
        logits = D(img, c)
        assert logits.shape == (4, 2) and torch.isfinite(logits).all()
        assert not torch.equal(D(img, c.flip(1)), logits) # the label matters
    # The embedding moved away from its initialisation for the classes seen in training.
    init = legacy.load_network_pkl(str(projection_run / 'network-snapshot-000000.pkl'))['D'].b4.out.embed
    assert not torch.equal(init, D.b4.out.embed)

def test_snapshot_draws_a_class(projection_run, tmp_path):
    pkl = projection_run / 'network-snapshot-000001.pkl'
    out = tmp_path / 'gen'
    result = subprocess.run([sys.executable, os.path.join(REPO, 'generate.py'), f'--network={pkl}', '--seeds=0-1',
        '--class=1', f'--outdir={out}'], cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    pngs = sorted(f for f in os.listdir(out) if f.endswith('.png'))
    assert len(pngs) == 2
    with PIL.Image.open(out / pngs[0]) as img:
        assert img.size == (8, 8) and np.asarray(img).std() > 0

def test_snapshot_loads_without_this_package(projection_run, tmp_path):
    from tests.stylegan_som.test_attach import run_in_upstream_like_process
    from tests.stylegan_som.test_legacy import embedded_sources, upstream_api_violations
    from stylegan_som import legacy
    pkl = projection_run / 'network-snapshot-000001.pkl'
    sources = set(embedded_sources(pkl.read_bytes()))
    assert any('class ProjectionHead' in src for src in sources) # the head travels inside the pickle
    for src in sources:
        assert upstream_api_violations(src) == [], src.strip().splitlines()[0]
    gen = torch.Generator().manual_seed(1)
    io = dict(z=torch.randn([4, 64], generator=gen), c=torch.eye(2)[[0, 1, 1, 0]], img=torch.randn([4, 3, 8, 8], generator=gen))
    img, logits = run_in_upstream_like_process(tmp_path, pkl, io)
    data = legacy.load_network_pkl(str(pkl))
    with torch.no_grad():
        assert torch.equal(logits, data['D'](io['img'], io['c']))
        assert torch.equal(img, data['G_ema'](io['z'], io['c'], noise_mode='const'))

#----------------------------------------------------------------------------

def test_d_head_flag_values(tmp_path):
    import train
    data = make_image_folder(tmp_path / 'shapes', num=4, res=8, labels=2)
    common = dict(data=data, cfg='tiny', metrics=[], device_type='cpu')
    desc, args = train.setup_training_loop_kwargs(cond=True, d_head='linear', **common)
    assert args.D_kwargs.head_kwargs.class_name == 'stylegan_som.heads.linear.LinearHead' and desc.endswith('-linear')
    _, args = train.setup_training_loop_kwargs(cond=True, d_head='cmap', **common)
    assert 'head_kwargs' not in args.D_kwargs # StyleGAN2's own conditioning: upstream's network
    _, args = train.setup_training_loop_kwargs(cond=True, **common)
    assert 'head_kwargs' not in args.D_kwargs # the default with --cond=1
    for head in ('projection', 'cmap'):
        with pytest.raises(train.UserError, match=f'--d-head={head}.*--cond=1'):
            train.setup_training_loop_kwargs(cond=False, d_head=head, **common)
    with pytest.raises(train.UserError, match='--d-head'):
        train.setup_training_loop_kwargs(cond=True, d_head='mystery', **common)
    # Heads come from the registry: a plugin there is a --d-head value, unconditional ones need no labels.
    _, args = train.setup_training_loop_kwargs(d_head='mlp', som_d=4, **common)
    assert args.D_kwargs.head_kwargs.class_name == 'stylegan_som.heads.mlp.MLPHead'
    from stylegan_som import plugins
    assert plugins.HEADS.names() == ['cmap', 'linear', 'mlp', 'projection']

#----------------------------------------------------------------------------
