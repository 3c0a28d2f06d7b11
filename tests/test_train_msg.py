"""train.py --msg=1 (MSG-GAN): a few steps with each backbone (stylegan2, dcgan, resnet), with and without SOM
heads, under losses with different penalties; generate.py draws from every snapshot; an unconditional StyleGAN2
snapshot loads without this package; the kwargs and the errors of the flag."""

import json
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch

from tests.test_train import REPO, cpu_env, make_image_folder, run_train

# (backbone, extra flags): every backbone with and without SOM heads; the losses cover R1 (stylegan2's default),
# WGAN-GP's interpolates and R3GAN's R1 + R2 on the pyramids.
RUNS = [
    ('stylegan2', []),
    ('stylegan2', ['--som-d=4']),
    ('dcgan', ['--loss=wgan-gp']),
    ('dcgan', ['--som-d=4', '--g-arch=resnet']),
    ('resnet', ['--loss=rpgan']),
    ('resnet', ['--som-d=4', '--som-share=none']),
]

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('msg') / 'shapes', num=8, res=16)

def _train(tmp_path, data, arch, extra):
    outdir = tmp_path / 'runs'
    result = run_train(f'--outdir={outdir}', f'--data={data}', '--cfg=tiny', f'--arch={arch}', '--msg=1',
        '--aug=noaug', '--kimg=0.016', '--metrics=none', *extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = os.listdir(outdir)
    assert len(runs) == 1 and '-msg' in runs[0], runs
    return outdir / runs[0]

@pytest.mark.parametrize('arch,extra', RUNS, ids=[' '.join([a] + e) for a, e in RUNS])
def test_msg_trains_and_draws(tmp_path, data, arch, extra):
    from stylegan_som import legacy
    run_dir = _train(tmp_path, data, arch, extra)
    options = json.load(open(run_dir / 'training_options.json'))
    assert options['loss_kwargs']['msg'] is True
    D_kwargs = options['D_kwargs'].get('discriminator_kwargs', options['D_kwargs']) # --som-share=none: members
    assert D_kwargs['msg'] is True
    with open(run_dir / 'network-snapshot-000000.pkl', 'rb') as f:
        snap = legacy.load_network_pkl(f)
    D, G = snap['D'], snap['G_ema']
    expected = {'stylegan2': [8, 4], 'dcgan': [8, 4], 'resnet': [8]}[arch]
    assert D.msg_resolutions == expected
    ws = G.mapping(torch.randn([2, G.z_dim]), None)
    pyramid = G.synthesis(ws, return_pyramid=True)
    assert [img.shape[2] for img in pyramid] == [16] + expected
    assert D(pyramid, None).shape == (2, 4 if '--som-d=4' in extra else 1)
    out = tmp_path / 'gen'
    result = subprocess.run([sys.executable, os.path.join(REPO, 'generate.py'), f'--network={run_dir}/network-snapshot-000000.pkl',
        '--seeds=0-1', f'--outdir={out}'], cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    pngs = sorted(f for f in os.listdir(out) if f.endswith('.png'))
    assert len(pngs) == 2
    with PIL.Image.open(out / pngs[0]) as img:
        assert img.size == (16, 16) and np.asarray(img).std() > 0
    if arch == 'stylegan2' and not extra:
        _loads_without_this_package(run_dir / 'network-snapshot-000000.pkl', tmp_path, snap)

def _loads_without_this_package(pkl, tmp_path, snap):
    """Upstream's loader: G draws the final image, D (with its extra combine layers) scores one image, pooling it."""
    from tests.stylegan_som.test_attach import run_in_upstream_like_process
    from tests.stylegan_som.test_legacy import embedded_sources, upstream_api_violations
    for src in set(embedded_sources(pkl.read_bytes())):
        assert upstream_api_violations(src) == [], src.strip().splitlines()[0]
    gen = torch.Generator().manual_seed(1)
    io = dict(z=torch.randn([4, snap['G_ema'].z_dim], generator=gen), c=torch.zeros([4, 0]),
        img=torch.randn([4, 3, 16, 16], generator=gen))
    img, logits = run_in_upstream_like_process(tmp_path, pkl, io)
    with torch.no_grad():
        assert torch.equal(img, snap['G_ema'](io['z'], io['c'], noise_mode='const'))
        assert torch.equal(logits, snap['D'](io['img'], io['c']))
    assert img.shape == (4, 3, 16, 16)

#----------------------------------------------------------------------------

def test_msg_kwargs(data):
    import train
    common = dict(data=data, cfg='tiny', aug='noaug', metrics=[], device_type='cpu')
    desc, args = train.setup_training_loop_kwargs(msg=True, **common)
    assert desc.endswith('-msg') and args.D_kwargs.msg is True and args.loss_kwargs.msg is True
    assert 'msg_resolutions' not in args.G_kwargs.synthesis_kwargs # StyleGAN2's G is unchanged: skip images
    _, args = train.setup_training_loop_kwargs(msg=True, arch='resnet', g_arch='dcgan', **common)
    assert args.G_kwargs.synthesis_kwargs.msg_resolutions == [8] # what the resnet D takes, from the dcgan G
    _, args = train.setup_training_loop_kwargs(msg=True, arch='dcgan', som_d=4, som_share='none', **common)
    assert args.D_kwargs.discriminator_kwargs.msg is True and args.G_kwargs.synthesis_kwargs.msg_resolutions == [8, 4]
    _, args = train.setup_training_loop_kwargs(msg=False, **common)
    assert 'msg' not in args.D_kwargs and 'msg' not in args.loss_kwargs # off: the networks of before

@pytest.mark.parametrize('kwargs,mentions', [
    (dict(aug=None), '--aug=noaug'),  # ADA by default with --cfg=tiny
    (dict(aug='fixed', p=0.2), '--aug=noaug'),
    (dict(arch='mlp', cfg='toy', data='ring8'), '--arch=mlp'),
])
def test_msg_errors(data, kwargs, mentions):
    import train
    values = dict(dict(data=data, cfg='tiny', aug='noaug', device_type='cpu', msg=True), **kwargs)
    with pytest.raises(train.UserError, match=mentions) as info:
        train.setup_training_loop_kwargs(**values)
    assert '--msg=1' in str(info.value)

def test_msg_error_line(data, tmp_path):
    from tests.cli_errors import one_error_line
    result = run_train(f'--outdir={tmp_path}', f'--data={data}', '--cfg=tiny', '--msg=1', '--dry-run')
    assert result.returncode != 0
    one_error_line(result.stdout + result.stderr, ['--msg=1', '--aug=noaug'])
