"""train.py's options for the remaining systems of the original documents: --loss=lsgan-sigmoid and
relativistic-hinge, --d-head=acgan (ACGAN) and concat (CGAN), --eq-lr and --n-critic: the kwargs they write, the
one-line errors on bad combinations, and short CPU runs that train with them."""

import sys

import pytest
import torch

from tests.test_train import make_image_folder

#----------------------------------------------------------------------------

def _setup(**kwargs):
    import train
    return train.setup_training_loop_kwargs(**{'device_type': 'cpu', 'metrics': [], **kwargs})

def test_kwargs(tmp_path):
    digits = make_image_folder(tmp_path / 'digits', num=4, res=8, labels=3)
    desc, args = _setup(cfg='tiny', arch='dcgan', data=digits, cond=True, d_head='acgan', eq_lr=True, n_critic=5)
    assert args.D_kwargs.head_kwargs == dict(class_name='stylegan_som.heads.acgan.ACGANHead')
    assert args.D_kwargs.eq_lr is True
    assert args.G_kwargs.synthesis_kwargs.eq_lr is True and args.G_kwargs.mapping_kwargs.eq_lr is True
    assert args.n_critic == 5 and desc.endswith('-tiny-acgan-dcgan-eqlr-ncritic5'), desc
    _desc, args = _setup(cfg='tiny', arch='resnet', data=digits, cond=True, d_head='concat', som_d=4)
    assert args.D_kwargs.concat_labels is True and 'head_kwargs' not in args.D_kwargs and args.D_kwargs.num_heads == 4
    # Defaults: nothing new in the options, so existing runs and their training_options.json stay as they were;
    # WGAN keeps one D step per G step as before.
    for loss in ('stylegan2', 'wgan'):
        desc, args = _setup(cfg='toy', data='ring8', loss=loss)
        assert 'n_critic' not in args and 'eq_lr' not in args.D_kwargs and 'eqlr' not in desc
    _desc, args = _setup(cfg='toy', data='ring8', n_critic=1)
    assert 'n_critic' not in args
    _desc, args = _setup(cfg='tiny', data=digits, eq_lr=True) # StyleGAN2 has it anyway: nothing to change
    assert 'eq_lr' not in args.D_kwargs
    for loss, name in (('lsgan-sigmoid', 'LSGANSigmoid'), ('relativistic-hinge', 'RelativisticAverageHinge')):
        _desc, args = _setup(cfg='toy', data='ring8', loss=loss)
        assert args.loss_kwargs.objective == loss and args.loss_kwargs.r1_gamma > 0 # R1, as lsgan and rahinge

@pytest.mark.parametrize('kwargs, message', [
    (dict(d_head='acgan'), '--d-head=acgan is a class-conditional head: it needs --cond=1'),
    (dict(d_head='concat'), '--d-head=concat is a class-conditional head'),
    (dict(d_head='concat', cond=True), '--d-head=concat is for the small backbones'),
    (dict(d_head='acgan', cond=True, arch='dcgan', som_d=4, som_share='none'), 'does not combine with --som-share=none'),
    (dict(eq_lr=False), '--eq-lr=0'),
    (dict(n_critic=0), '--n-critic must be at least 1'),
])
def test_bad_combinations(tmp_path, kwargs, message):
    import train
    digits = make_image_folder(tmp_path / 'digits', num=4, res=8, labels=3)
    with pytest.raises(train.UserError, match=message):
        _setup(cfg='tiny', data=digits, **kwargs)

def test_bad_flag_is_one_line(tmp_path):
    from click.testing import CliRunner
    import train
    from tests.cli_errors import one_error_line
    saved = sys.stdout, sys.stderr
    try:
        result = CliRunner().invoke(train.main, [f'--outdir={tmp_path}', '--cfg=toy', '--data=ring8', '--n-critic=-2', '-n'])
    finally:
        sys.stdout, sys.stderr = saved
    assert result.exit_code == 2
    one_error_line(result.output, ['--n-critic', '-2'])

@pytest.mark.parametrize('kwargs', [
    dict(d_head='acgan', som_d=4, n_critic=2, eq_lr=True, loss='lsgan-sigmoid'),
    dict(d_head='acgan', loss='relativistic-hinge', som_bmu='prototype', som_d=4),
    dict(d_head='concat', som_d=4, eq_lr=True, loss='wgan', n_critic=3),
])
def test_conditional_toy_trains(tmp_path, kwargs):
    # ring8 with its mode index as the label: 1 kimg, 4 D steps, with SOM heads; the snapshot draws.
    import pickle
    from stylegan_som.training_loop import training_loop
    _desc, args = _setup(cfg='toy', data='ring8', cond=True, kimg=1, **kwargs)
    del args['metrics'] # names for train.py, which turns them into the loop's snapshot_callbacks
    args.update(run_dir=str(tmp_path), image_snapshot_ticks=1, network_snapshot_ticks=1)
    training_loop(**args)
    with open(tmp_path / 'network-snapshot-000001.pkl', 'rb') as f:
        data = pickle.load(f)
    G, D = data['G_ema'], data['D']
    z, c = torch.randn(8, G.z_dim), torch.eye(8)
    out = D(G(z, c), c)
    assert torch.isfinite(out).all()
    assert out.shape == (8, 4 + (8 if kwargs['d_head'] == 'acgan' else 0))
    assert (tmp_path / 'fakes000001.png').is_file()
