"""Option specs, groups, run names and the grouped --help."""

import pytest

import dnnlib
from stylegan_som import plugins
from stylegan_som.config import GROUPS, option_names
from stylegan_som.config.spec import Desc, Group, Option, UserError

def test_option_that_only_sets_a_kwarg():
    group = Group('Loss', [Option('--n-critic', type=int, sets='n_critic', minimum=1, tag='ncritic{:d}'),
        Option('--msg-weight', type=float, sets='loss_kwargs.msg_weight')])
    opts = dnnlib.EasyDict(n_critic=5, msg_weight=0.5, desc=Desc())
    args = dnnlib.EasyDict(loss_kwargs=dnnlib.EasyDict(r1_gamma=1))
    group.apply(opts, args)
    assert args == dict(n_critic=5, loss_kwargs=dict(r1_gamma=1, msg_weight=0.5)) and str(opts.desc) == 'ncritic5'
    with pytest.raises(UserError, match='--n-critic must be at least 1, got 0'):
        group.apply(dnnlib.EasyDict(n_critic=0, msg_weight=None, desc=Desc()), dnnlib.EasyDict())
    unset = dnnlib.EasyDict()
    group.apply(dnnlib.EasyDict(n_critic=None, msg_weight=None, desc=Desc()), unset)
    assert unset == {}

def test_run_name_order():
    desc = Desc()
    for key, text in [('loss', 'hinge'), ('newflag', 'new1'), ('data', 'shapes'), ('cfg', 'tiny')]:
        desc.add(key, text)
    assert str(desc) == 'shapes-tiny-hinge-new1' # known parts in their order, new ones after

def test_help_sections(tmp_path):
    import train
    ctx = train.main.make_context('train.py', [])
    text = train.main.get_help(ctx)
    titles = [group.title for group in GROUPS]
    assert titles == ['Data', 'Coupled generators', 'Networks', 'SOM and plugins', 'Loss and regularisers', 'Training length', 'Performance',
        'Output and starting point']
    positions = [text.index(f'\n{title}:\n') for title in titles]
    assert positions == sorted(positions), positions
    assert 'Other:' not in text.replace('Other:\n  --help', '') # every option is in a group but --help
    assert len(option_names()) == len(set(option_names()))
    for flag in ('--g-blocks', '--d-blocks', '--verbose', '--kimg'):
        assert flag in text

def test_registry_facts():
    registry = plugins.Registry('thing', help='', fast=False)
    registry.register('a', 'x.A', fast=True)
    registry.register('b', 'x.B')
    assert registry.names(fast=True) == ['a'] and registry.info('b').fast is False
    with pytest.raises(ValueError, match='unknown fact'):
        registry.register('c', 'x.C', slow=True)
    assert plugins.BACKBONES.names(mixable=True) == ['dcgan', 'resnet']
    assert plugins.BACKBONES.names(points=True) == ['mlp']
    assert plugins.HEADS.names(needs_labels=True) == ['acgan', 'cmap', 'concat', 'projection']
    assert plugins.HEADS.names(aux_loss=True) == ['acgan']
    assert plugins.HEADS.info('concat').d_kwargs == dict(concat_labels=True)
    assert plugins.HEADS.class_name('cmap') is None # StyleGAN2's own layer, no plugin
