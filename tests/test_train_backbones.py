"""train.py with the small backbones (--arch=dcgan|resnet|mlp) and the 2-D toys (--data=ring8|grid25, --cfg=toy):
one short --arch=mlp run on ring8 with SOM heads (snapshot, scatter plots, occupancy map, metric), and the
kwargs and errors of the backbone options."""

import json
import os
import re

import numpy as np
import PIL.Image
import pytest

from tests.test_train import make_image_folder, run_train


@pytest.fixture(scope='module')
def trained_toy(tmp_path_factory):
    outdir = tmp_path_factory.mktemp('toy') / 'runs'
    result = run_train(f'--outdir={outdir}', '--data=ring8', '--cfg=toy', '--som-d=4', '--kimg=2', '--tick=1',
        '--snap=1', '--bf16=1')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = os.listdir(outdir)
    assert len(runs) == 1 and runs[0].endswith('-ring8-toy-kimg2-som4grid'), runs
    return outdir / runs[0], result.stdout

def test_toy_run_snapshot_and_pictures(trained_toy):
    import torch
    from stylegan_som import legacy
    run_dir, stdout = trained_toy
    options = json.load(open(run_dir / 'training_options.json'))
    assert options['G_kwargs']['class_name'] == 'stylegan_som.networks.mlp.Generator'
    assert options['D_kwargs']['num_heads'] == 4 and options['metrics'] == ['modes_ring8']
    assert 'augment_kwargs' not in options and options['D_reg_interval'] is None
    assert options['loss_kwargs']['bf16'] is True # trained in bfloat16 autocast, pickled in float32
    snaps = sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-'))
    assert snaps[-1] == 'network-snapshot-000002.pkl'
    with open(run_dir / snaps[-1], 'rb') as f:
        data = legacy.load_network_pkl(f)
    G, D = data['G_ema'], data['D']
    assert all(p.dtype == torch.float32 for p in list(G.parameters()) + list(D.parameters()))
    assert data['augment_pipe'] is None and D.num_heads == 4
    with torch.no_grad():
        points = G(torch.randn([5, G.z_dim]), torch.zeros([5, 0]))
        assert points.shape == (5, 2, 1, 1) and D(points, torch.zeros([5, 0])).shape == (5, 4)
    # Scatter plots instead of image grids, and the heads' occupancy.
    for name in ('reals.png', 'fakes_init.png', 'fakes000002.png'):
        img = np.asarray(PIL.Image.open(run_dir / name))
        assert img.shape == (512, 512, 3)
        assert np.all(img == (220, 40, 40), axis=2).any() # the mode centres' rings
    occupancy = np.asarray(PIL.Image.open(run_dir / 'occupancy000002.png'))
    assert occupancy.shape[0] == occupancy.shape[1] # 2 x 2 heads
    metric = [json.loads(line) for line in open(run_dir / 'metric-modes_ring8.jsonl')]
    assert set(metric[-1]['results']) == {'modes_ring8', 'modes_ring8_hq', 'modes_ring8_rkl'}
    assert 'som-sigma' in stdout

def test_backbone_kwargs(tmp_path):
    import train
    plain = dict(data=make_image_folder(tmp_path / 'plain', num=4), device_type='cpu')
    _desc, args = train.setup_training_loop_kwargs(cfg='toy', data='grid25', device_type='cpu')
    assert args.G_kwargs.class_name.endswith('mlp.Generator') and args.metrics == ['modes_grid25']
    assert args.G_opt_kwargs.betas == [0.0, 0.99] and args.data_loader_kwargs.num_workers == 0
    assert args.loss_kwargs.pl_weight == 0 and args.loss_kwargs.style_mixing_prob == 0
    assert args.lr_rampdown == 0.25 # the toy default; --lr-rampdown overrides it, 0 turns it off
    desc, args = train.setup_training_loop_kwargs(cfg='toy', data='grid25', lr_rampdown=0.5, device_type='cpu')
    assert args.lr_rampdown == 0.5 and desc.endswith('-lrdown0.5')
    _desc, args = train.setup_training_loop_kwargs(cfg='toy', data='grid25', lr_rampdown=0, device_type='cpu')
    assert 'lr_rampdown' not in args
    desc, args = train.setup_training_loop_kwargs(cfg='cpu', arch='dcgan', cbase=256, som_d=9, **plain)
    assert 'lr_rampdown' not in args # off unless asked for, outside the toy config
    assert desc.endswith('-cpu-cbase256-dcgan-som9grid'), desc
    assert args.G_kwargs.class_name == 'stylegan_som.networks.dcgan.Generator'
    assert args.G_kwargs.synthesis_kwargs == dict(channel_base=256)
    assert args.D_kwargs == dict(class_name='stylegan_som.networks.dcgan.Discriminator', channel_base=256, num_heads=9)
    assert args.G_reg_interval is None and 'augment_kwargs' in args # --cfg=cpu keeps its ADA
    for arch in ('resnet', 'mlp'): # every small discriminator has it
        _desc, args = train.setup_training_loop_kwargs(cfg='toy', arch=arch, mbstd_group=4, **plain)
        assert args.D_kwargs.mbstd_group_size == 4
    desc, args = train.setup_training_loop_kwargs(cfg='cpu', arch='dcgan', mbstd_group=2, **plain) # minibatch stddev
    assert args.D_kwargs.mbstd_group_size == 2 and desc.endswith('-mbstd2-dcgan'), desc
    assert 'bf16' not in args.loss_kwargs # float32 unless asked for
    _desc, args = train.setup_training_loop_kwargs(cfg='cpu', arch='dcgan', bf16=True, **plain)
    assert args.loss_kwargs.bf16 is True
    _desc, args = train.setup_training_loop_kwargs(cfg='toy', arch='resnet', **plain) # toy sizes, resnet nets
    assert args.D_kwargs.class_name.endswith('resnet.Discriminator') and 'layer_features' not in args.D_kwargs
    # Attention and spectral norm on a small backbone, at its own resolutions (28 -> 14 -> 7).
    mnist_like = dict(data=make_image_folder(tmp_path / 'res28', num=4, res=28), device_type='cpu')
    _desc, args = train.setup_training_loop_kwargs(cfg='cpu', arch='dcgan', g_attn=['14'], d_attn=['7', '14'],
        d_sn=False, d_bn=True, **mnist_like)
    assert args.training_set_kwargs.resolution == 28 # no power of two needed by the small backbones
    assert args.G_kwargs.synthesis_kwargs.attn_resolutions == [14] and args.D_kwargs.attn_resolutions == [7, 14]
    assert args.D_kwargs.spectral_norm is False and args.D_kwargs.batch_norm is True
    assert _desc.endswith('-dsn0-dbn1'), _desc
    bad = [
        (dict(cfg='cpu', arch='stylegan2', **mnist_like), 'power-of-two'),
        (dict(cfg='cpu', arch='dcgan', d_attn=['8'], **mnist_like), '--d-attn'),
        (dict(cfg='toy', data='ring8', d_attn=['1']), '--d-attn: the mlp backbone has no attention'),
        (dict(cfg='toy', data='ring8', arch='stylegan2'), '--data=ring8 is 2-D point data'),
        (dict(cfg='toy', data='ring8', aug='ada'), '--aug=ada'),
        (dict(cfg='toy', data='ring8', mirror=True), '--mirror'),
        (dict(cfg='cpu', arch='dcgan', freezed=1, **plain), '--freezed'),
        (dict(cfg='cpu', arch='mlp', cbase=64, **plain), '--cbase'),
        (dict(cfg='cpu', arch='resnet', d_bn=True, **plain), '--d-bn: the resnet backbone has no batch normalisation'),
        (dict(cfg='toy', data='ring8', lr_rampdown=1.5), '--lr-rampdown'),
        (dict(cfg='toy', data='ring8', lr_rampdown=-0.1), '--lr-rampdown'),
    ]
    for kwargs, message in bad:
        with pytest.raises(train.UserError, match=message):
            train.setup_training_loop_kwargs(**{'device_type': 'cpu', **kwargs})

def _channels_by_resolution(module):
    """{resolution: channels} of a small conv net's layers named like up14 / conv14 (their output channels)."""
    out = {}
    for name, param in module.named_parameters():
        match = re.fullmatch(r'(up|conv)(\d+)\.(.*\.)?weight(_orig)?', name)
        if match:
            out[int(match.group(2))] = param.shape[1 if match.group(1) == 'up' else 0] # ConvTranspose: [in, out]
    return out

def test_stacked_mnist_scored_by_default(tmp_path, monkeypatch):
    # The built-in set is a cached zip (.../stacked-mnist.zip): its runs log their mode coverage, with the digit
    # classifier trained on the MNIST files the set was made from.
    import zipfile
    import train
    from stylegan_som.data import builtin as datasets_builtin
    folder = make_image_folder(tmp_path / 'digits', num=4, res=28)
    zip_path = tmp_path / 'cache' / 'stacked-mnist.zip'
    os.makedirs(zip_path.parent)
    with zipfile.ZipFile(zip_path, 'w') as z:
        for name in sorted(os.listdir(folder)):
            z.write(os.path.join(folder, name), name)
    monkeypatch.setitem(datasets_builtin.BUILTIN, 'stacked-mnist', lambda verbose=True: str(zip_path))
    monkeypatch.setenv('SGSOM_MNIST_DIR', '')
    _desc, args = train.setup_training_loop_kwargs(cfg='stacked-mnist', data='stacked-mnist', device_type='cpu')
    assert args.metrics == ['modes_stacked_mnist']
    assert os.environ['SGSOM_MNIST_DIR'] == datasets_builtin.idx_dataset_dir('mnist')
    _desc, args = train.setup_training_loop_kwargs(cfg='stacked-mnist', data=folder, device_type='cpu')
    assert args.metrics == [] # another 28x28 set: no digit triples to count

def test_stacked_mnist_config(tmp_path, monkeypatch):
    # What measured best on stacked MNIST (bench/RESULTS.md): batch 32, G's rate 8x D's, batch norm instead of
    # spectral norm in D, bf16 where the CPU computes it natively; each flag still overrides its part.
    import train
    from stylegan_som.config import performance
    digits = dict(cfg='stacked-mnist', data=make_image_folder(tmp_path / 'digits', num=4, res=28))
    monkeypatch.setattr(performance, 'cpu_has_native_bf16', lambda: True)
    desc, args = train.setup_training_loop_kwargs(device_type='cpu', **digits)
    assert desc.endswith('-stacked-mnist'), desc
    assert (args.batch_size, args.batch_gpu, args.total_kimg) == (32, 32, 400)
    assert (args.G_opt_kwargs.lr, args.D_opt_kwargs.lr) == (0.0016, 0.0002)
    assert args.G_opt_kwargs.betas == args.D_opt_kwargs.betas == [0.5, 0.99]
    assert args.D_kwargs.spectral_norm is False and args.D_kwargs.batch_norm is True
    assert args.loss_kwargs.bf16 is True
    _desc, args = train.setup_training_loop_kwargs(device_type='cuda', **digits) # a GPU has its fp16 layers
    assert 'bf16' not in args.loss_kwargs
    monkeypatch.setattr(performance, 'cpu_has_native_bf16', lambda: False) # emulated bf16 would only be slower
    _desc, args = train.setup_training_loop_kwargs(device_type='cpu', **digits)
    assert 'bf16' not in args.loss_kwargs
    _desc, args = train.setup_training_loop_kwargs(device_type='cpu', bf16=True, **digits) # asked for: done
    assert args.loss_kwargs.bf16 is True
    monkeypatch.setattr(performance, 'cpu_has_native_bf16', lambda: True)
    desc, args = train.setup_training_loop_kwargs(device_type='cpu', batch=64, glr=0.0002, d_sn=True, d_bn=False,
        bf16=False, **digits) # the config as it was before these measurements
    assert (args.batch_size, args.G_opt_kwargs.lr, args.D_opt_kwargs.lr) == (64, 0.0002, 0.0002)
    assert args.D_kwargs.spectral_norm is True and args.D_kwargs.batch_norm is False
    assert 'bf16' not in args.loss_kwargs and desc.endswith('-batch64-glr0.0002-dsn1-dbn0'), desc
    _desc, args = train.setup_training_loop_kwargs(device_type='cpu', arch='resnet', **digits) # the dcgan's norms
    assert 'batch_norm' not in args.D_kwargs and args.G_opt_kwargs.lr == 0.0016 # stay with it; the rates do not
    assert args.loss_kwargs.bf16 is True

def test_g_arch(tmp_path):
    # --g-arch: a G of one conv backbone with a D of the other, the config's D settings kept; G builds and draws.
    import dnnlib
    import torch
    import train
    from stylegan_som.config import performance
    digits = dict(cfg='stacked-mnist', data=make_image_folder(tmp_path / 'digits', num=4, res=28), device_type='cpu')
    desc, args = train.setup_training_loop_kwargs(g_arch='resnet', som_d=4, **digits)
    assert desc.endswith('-stacked-mnist-gresnet-som4grid'), desc
    assert args.G_kwargs.class_name == 'stylegan_som.networks.resnet.Generator'
    assert args.G_kwargs.synthesis_kwargs == dict(channel_base=1024, channel_max=128) # the config's widths
    assert args.D_kwargs.class_name.endswith('dcgan.Discriminator') and args.D_kwargs.num_heads == 4
    assert args.D_kwargs.batch_norm is True and args.G_opt_kwargs.lr == 0.0016
    G = dnnlib.util.construct_class_by_name(**args.G_kwargs, c_dim=0, img_resolution=28, img_channels=3)
    assert G(torch.randn(2, G.z_dim), torch.zeros(2, 0)).shape == (2, 3, 28, 28)
    desc, args = train.setup_training_loop_kwargs(g_arch='dcgan', **digits) # the D's own backbone: no change
    assert desc.endswith('-stacked-mnist') and args.G_kwargs.class_name.endswith('dcgan.Generator'), desc
    _desc, args = train.setup_training_loop_kwargs(cfg='cpu', arch='resnet', g_arch='dcgan', data=digits['data'],
        device_type='cpu')
    assert args.G_kwargs.class_name.endswith('dcgan.Generator') and args.D_kwargs.class_name.endswith('resnet.Discriminator')
    plain = make_image_folder(tmp_path / 'plain', num=4) # 32x32, for StyleGAN2
    for kwargs in [dict(cfg='toy', data='ring8'), dict(cfg='cpu', data=plain)]: # mlp and stylegan2 D
        with pytest.raises(train.UserError, match='--g-arch=resnet with the (mlp|stylegan2) discriminator'):
            train.setup_training_loop_kwargs(g_arch='resnet', device_type='cpu', **kwargs)

def test_d_width(tmp_path):
    import dnnlib
    import train
    mnist_like = dict(data=make_image_folder(tmp_path / 'res28', num=4, res=28), device_type='cpu')
    desc, args = train.setup_training_loop_kwargs(cfg='cpu', arch='dcgan', cbase=512, cmax=64, d_width=0.25,
        som_d=4, **mnist_like)
    assert desc.endswith('-dwidth0.25-som4grid'), desc
    assert args.G_kwargs.synthesis_kwargs.channel_base == 512 and args.D_kwargs.channel_base == 128
    common = dict(c_dim=0, img_resolution=28, img_channels=3)
    G = dnnlib.util.construct_class_by_name(**args.G_kwargs, **common)
    D = dnnlib.util.construct_class_by_name(**args.D_kwargs, **common)
    g, d = _channels_by_resolution(G.synthesis), _channels_by_resolution(D)
    assert set(g) == {14, 28} and all(d[res] * 4 == pytest.approx(g[res], abs=4) for res in g), (g, d)
    # Without --cbase/--cmax the network's own defaults are scaled; MLP features and StyleGAN2's budget too.
    _desc, args = train.setup_training_loop_kwargs(cfg='cpu', arch='dcgan', d_width=0.5, **mnist_like)
    assert (args.D_kwargs.channel_base, args.D_kwargs.channel_max) == (1024, 256) and not args.G_kwargs.synthesis_kwargs
    _desc, args = train.setup_training_loop_kwargs(cfg='toy', data='ring8', d_width=0.25, device_type='cpu')
    assert args.G_kwargs.synthesis_kwargs.layer_features == 128 and args.D_kwargs.layer_features == 32
    plain = dict(data=make_image_folder(tmp_path / 'plain', num=4), device_type='cpu')
    _desc, args = train.setup_training_loop_kwargs(cfg='cpu', d_width=0.5, **plain)
    assert args.D_kwargs.channel_base * 2 == args.G_kwargs.synthesis_kwargs.channel_base
    assert args.D_kwargs.channel_max * 2 == args.G_kwargs.synthesis_kwargs.channel_max
    for bad in [0, -0.5]:
        with pytest.raises(train.UserError, match='--d-width'):
            train.setup_training_loop_kwargs(cfg='toy', data='ring8', d_width=bad, device_type='cpu')

def test_d_pack(tmp_path):
    import dnnlib
    import train
    desc, args = train.setup_training_loop_kwargs(cfg='toy', data='ring8', d_pack=2, som_d=4, device_type='cpu')
    assert args.D_kwargs.pack_size == 2 and desc.endswith('-pack2-som4grid'), desc
    D = dnnlib.util.construct_class_by_name(**args.D_kwargs, c_dim=0, img_resolution=1, img_channels=2)
    assert D.pack_size == 2 and D.num_heads == 4
    mnist_like = dict(data=make_image_folder(tmp_path / 'res28', num=4, res=28), device_type='cpu')
    for arch in ('dcgan', 'resnet'):
        _desc, args = train.setup_training_loop_kwargs(cfg='cpu', arch=arch, d_pack=4, **mnist_like)
        assert args.D_kwargs.pack_size == 4
    labelled = dict(data=make_image_folder(tmp_path / 'labels', num=4, labels=2), cond=True, device_type='cpu')
    bad = [
        (dict(cfg='toy', data='ring8', d_pack=0), '--d-pack must be at least 1'),
        (dict(cfg='cpu', d_pack=2, data=make_image_folder(tmp_path / 'plain', num=4)),
            '--d-pack: the stylegan2 discriminator cannot pack'),
        (dict(cfg='cpu', arch='dcgan', d_pack=2, **labelled), 'packing needs --cond=0'),
        (dict(cfg='toy', data='ring8', d_pack=3), r'multiple of the pack size'), # batch 256
        (dict(cfg='toy', data='ring8', batch=48, d_pack=16, mbstd_group=2), 'packs per round'),
    ]
    for kwargs, message in bad:
        with pytest.raises(train.UserError, match=message):
            train.setup_training_loop_kwargs(**{'device_type': 'cpu', **kwargs})

#----------------------------------------------------------------------------
