"""train.py with SOM heads and --loss: the flags' validation and what they put into the options, and one short
CPU run with --som-d=4 whose tick lines, stats.jsonl and snapshot carry the heads, and whose snapshot draws
through generate.py."""

import json
import os
import subprocess
import sys

import pytest

from tests.test_train import REPO, cpu_env, make_image_folder, run_train

@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('som') / 'shapes', num=16, res=8) # 8x8: a fast run

def _setup(folder, **kwargs):
    import train
    return train.setup_training_loop_kwargs(**dict(dict(data=folder, cfg='tiny', device_type='cpu'), **kwargs))

#----------------------------------------------------------------------------

BAD = [
    (dict(som_d=0), '--som-d must be at least 1'),
    (dict(som_d=6), '--som-topo=grid needs a square --som-d'),
    (dict(som_d=6, som_topo='grid'), '--som-d=6'),
    (dict(som_topo='linear'), '--som-topo needs several SOM heads'),
    (dict(som_sigma_end=0.5), '--som-sigma-end needs several SOM heads'),
    (dict(som_normalize=True), '--som-normalize needs several SOM heads'),
    (dict(som_g_weights='mean'), '--som-g-weights needs several SOM heads'),
    (dict(som_d=4, som_sigma_end=0.0), '--som-sigma-end must be positive'),
    (dict(som_d=4, som_sigma_start=-1.0), '--som-sigma-start must be positive'),
    (dict(loss='vanilla'), '--loss: unknown loss'),
    (dict(som_share='half'), '--som-share'),
    (dict(som_bmu='prototype'), '--som-bmu needs several SOM heads'),
    (dict(som_pairs='unit'), '--som-pairs needs several SOM heads'),
    (dict(r2_gamma=-1.0), '--r2-gamma must be non-negative'),
    (dict(d_reg_interval=0), '--d-reg-interval must be at least 1'),
]

@pytest.mark.parametrize('kwargs,message', BAD, ids=[m for _, m in BAD])
def test_bad_som_and_loss_flags(folder, kwargs, message):
    import train
    with pytest.raises(train.UserError) as info:
        _setup(folder, **kwargs)
    assert message in str(info.value), str(info.value)

def test_som_options(folder):
    desc, args = _setup(folder, som_d=4)
    assert desc.endswith('-som4grid')
    assert args.D_kwargs.num_heads == 4
    som = args.loss_kwargs.som_kwargs
    assert som == dict(num_heads=4, topology='grid', sigma_start=pytest.approx(2 ** 0.5 / 2), sigma_end=0.3,
        normalize=True, g_weights='transport', bmu='logit', pairs='index')
    _desc, args = _setup(folder, som_d=5, som_topo='circular', som_sigma_start=2.0, som_sigma_end=0.1, som_normalize=True,
        som_g_weights='balance', som_bmu='prototype', som_pairs='unit')
    assert args.loss_kwargs.som_kwargs == dict(num_heads=5, topology='circular', sigma_start=2.0, sigma_end=0.1,
        normalize=True, g_weights='balance', bmu='prototype', pairs='unit')
    # The 2-D toy config has its own sigma (bench/RESULTS.md): from half the
    # map's diameter (at least 0.3) to 1.0; explicit flags still win.
    toy = _setup('ring8', cfg='toy', som_d=4)[1].loss_kwargs.som_kwargs
    assert (toy.g_weights, toy.sigma_start, toy.sigma_end) == ('transport', pytest.approx(2 ** 0.5 / 2), 1.0)
    toy = _setup('ring8', cfg='toy', som_d=9)[1].loss_kwargs.som_kwargs
    assert (toy.sigma_start, toy.sigma_end) == (pytest.approx(2 ** 0.5), 1.0)
    toy = _setup('ring8', cfg='toy', som_d=2, som_topo='linear')[1].loss_kwargs.som_kwargs
    assert (toy.sigma_start, toy.sigma_end) == (0.5, 1.0) # half the diameter, above the floor of 0.3
    toy = _setup('ring8', cfg='toy', som_d=4, som_g_weights='mean', som_sigma_end=2.0)[1].loss_kwargs.som_kwargs
    assert (toy.g_weights, toy.sigma_start, toy.sigma_end) == ('mean', 2.0, 2.0) # never widens from a given end
    # Stacked MNIST: the same G rule, sigma as everywhere but the toys.
    sm = _setup(folder, cfg='stacked-mnist', som_d=4)[1].loss_kwargs.som_kwargs
    assert (sm.g_weights, sm.sigma_start, sm.sigma_end) == ('transport', pytest.approx(2 ** 0.5 / 2), 0.3)
    # A plain run stays plain: upstream's D kwargs, no SOM settings.
    desc, args = _setup(folder)
    assert 'num_heads' not in args.D_kwargs and 'som_kwargs' not in args.loss_kwargs
    assert args.loss_kwargs.objective == 'stylegan2' and args.loss_kwargs.r1_gamma == 0.01 and desc.endswith('-tiny')

def test_separate_discriminators_wrap_the_finished_D_kwargs(folder):
    desc, args = _setup(folder, som_d=4, som_share='none', freezed=1, mbstd_group=2)
    assert desc.endswith('-som4grid-separate')
    assert args.D_kwargs.class_name == 'stylegan_som.networks.separate.SeparateDiscriminators'
    assert args.D_kwargs.num_heads == 4
    member = args.D_kwargs.discriminator_kwargs
    assert member.class_name == 'stylegan_som.networks.stylegan2.Discriminator' and 'num_heads' not in member
    assert member.block_kwargs.freeze_layers == 1 and member.epilogue_kwargs.mbstd_group_size == 2

def test_loss_defaults_land_in_options(folder):
    _desc, args = _setup(folder, cfg='stylegan2', loss='ns')
    assert args.loss_kwargs.objective == 'ns'
    assert args.loss_kwargs.r1_gamma == 0 and args.loss_kwargs.pl_weight == 0 and args.loss_kwargs.style_mixing_prob == 0
    desc, args = _setup(folder, loss='wgan')
    assert desc.endswith('-tiny-wgan') and args.loss_kwargs.weight_clip == 0.01 and args.loss_kwargs.r1_gamma == 0
    _desc, args = _setup(folder, loss='wgan-gp', gamma=1.0) # an explicit --gamma adds R1
    assert args.loss_kwargs.gp_weight == 10 and args.loss_kwargs.r1_gamma == 1.0
    _desc, args = _setup(folder, loss='rahinge', som_d=9)
    assert args.loss_kwargs.r1_gamma == 0.01 and 'gp_weight' not in args.loss_kwargs

def test_rpgan_gets_r1_and_r2_every_step(folder):
    desc, args = _setup(folder, loss='rpgan')
    assert desc.endswith('-tiny-rpgan')
    assert (args.loss_kwargs.r1_gamma, args.loss_kwargs.r2_gamma) == (0.01, 0.01) # the config's gamma, both
    assert args.D_reg_interval is None and args.loss_kwargs.pl_weight == 0 and args.loss_kwargs.style_mixing_prob == 0
    _desc, args = _setup(folder, loss='rpgan', gamma=0.5, r2_gamma=0.0, d_reg_interval=4, som_d=4)
    assert (args.loss_kwargs.r1_gamma, 'r2_gamma' in args.loss_kwargs, args.D_reg_interval) == (0.5, False, 4)
    # Any loss takes R2 and the interval; the default is upstream's lazy 16 (the toy config: every step).
    _desc, args = _setup(folder, r2_gamma=2.0)
    assert args.loss_kwargs.r2_gamma == 2.0 and 'D_reg_interval' not in args # the training loop's 16
    assert _setup('ring8', cfg='toy', loss='rpgan', d_reg_interval=1)[1].D_reg_interval is None

#----------------------------------------------------------------------------

def test_short_run_with_four_heads(folder, tmp_path):
    import torch
    from stylegan_som import legacy
    outdir = tmp_path / 'runs'
    result = run_train(f'--outdir={outdir}', f'--data={folder}', '--cfg=tiny', '--som-d=4', '--kimg=1', '--batch=16',
        '--tick=1', '--snap=1', '--workers=1', '--metrics=none')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = outdir / os.listdir(outdir)[0]

    ticks = [line for line in result.stdout.splitlines() if line.startswith('tick ')]
    assert len(ticks) == 2 and all(' som-sigma ' in line and ' bmu ' in line for line in ticks), ticks
    shares = [float(x) for x in ticks[-1].split(' bmu ')[1].split()[0].split('/')]
    assert len(shares) == 4 and sum(shares) == pytest.approx(1, abs=0.02)

    with open(run_dir / 'stats.jsonl') as f:
        stats = [json.loads(line) for line in f]
    assert 'Loss/signs/real' in stats[-1]
    sigmas = [s['SOM/sigma']['mean'] for s in stats]
    assert sigmas[0] == pytest.approx(2 ** 0.5 / 2, rel=0.05) and sigmas[-1] < sigmas[0]
    assert sum(stats[-1][f'SOM/occupancy/{k}']['mean'] for k in range(4)) == pytest.approx(1)

    pkl = run_dir / 'network-snapshot-000001.pkl'
    with open(pkl, 'rb') as f:
        data = legacy.load_network_pkl(f)
    assert data['D'].num_heads == 4
    assert data['D'](torch.zeros(2, 3, 8, 8), torch.zeros(2, 0)).shape == (2, 4)
    out = tmp_path / 'gen'
    gen = subprocess.run([sys.executable, os.path.join(REPO, 'generate.py'), f'--network={pkl}', '--seeds=0-1',
        f'--outdir={out}'], cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stdout[-2000:] + gen.stderr[-2000:]
    assert len([f for f in os.listdir(out) if f.endswith('.png')]) == 2
