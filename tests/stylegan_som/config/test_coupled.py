"""--data2 / --couple / --couple-*: the kwargs they produce and their one-line errors."""

import pytest

import train
from tests.test_train import make_image_folder

@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('coupled')
    return dict(a=make_image_folder(root / 'a', num=4), b=make_image_folder(root / 'b', num=4, seed=1),
        big=make_image_folder(root / 'big', num=4, res=32))

def _setup(folders, **kwargs):
    values = dict(data=folders['a'], data2=folders['b'], cfg='cogan', device_type='cpu', metrics=[])
    values.update(kwargs)
    return train.setup_training_loop_kwargs(**values)

def test_hard_kwargs(folders):
    desc, args = _setup(folders)
    assert desc.startswith('a+b-cogan') and desc.endswith('couplehard')
    assert args.training_set_kwargs.class_name == 'stylegan_som.data.coupled.CoupledDataset'
    assert args.training_set_kwargs.path2 == folders['b'] and args.training_set_kwargs.transform2 is None
    assert args.G_kwargs.class_name == 'stylegan_som.networks.coupled.CoupledGenerator' and args.G_kwargs.couple == 'hard'
    assert args.G_kwargs.generator_kwargs.class_name == 'stylegan_som.networks.dcgan.Generator'
    assert args.D_kwargs.discriminator_kwargs.class_name == 'stylegan_som.networks.dcgan.Discriminator'
    assert 'augment_kwargs' not in args

def test_soft_kwargs(folders):
    desc, args = _setup(folders, couple='soft', couple_feature=0.5, couple_cycle=2.0, couple_semantic=1.0)
    assert desc.endswith('couplesoft-feat0.5-sema1-cycl2')
    assert args.loss_kwargs.couple_feature == 0.5 and args.loss_kwargs.couple_cycle == 2.0
    assert args.loss_kwargs.couple_classifier == 'metrics.mode_coverage.coupling_classifier'
    assert args.G_kwargs.encoder is True and args.D_kwargs.couple == 'soft'

def test_other_configs_couple_too(folders):
    _desc, args = _setup(folders, cfg='tiny', couple='none', aug='noaug')
    assert args.G_kwargs.generator_kwargs.class_name == 'stylegan_som.networks.stylegan2.Generator'

BAD = [
    (dict(data2=None, couple='hard'), '--data2'),
    (dict(data2=None, couple_feature=1.0), '--data2'),
    (dict(data2=None), '--cfg=cogan'),
    (dict(couple='hard', couple_feature=1.0), '--couple-feature'),
    (dict(couple='none', couple_cycle=1.0), '--couple-cycle'),
    (dict(couple='soft'), '--couple=soft'),
    (dict(couple='soft', couple_feature=-1.0), '--couple-feature'),
    (dict(fm=1.0), '--fm'),
    (dict(aug='ada'), '--aug'),
    (dict(d_pack=2), '--d-pack'),
    (dict(msg=True, aug='noaug'), '--msg'),
    (dict(data2='/no/such/folder'), '--data2'),
    (dict(data2='big'), '--data2'),
]

@pytest.mark.parametrize('kwargs,flag', BAD, ids=[f'{f}-{i}' for i, (_, f) in enumerate(BAD)])
def test_errors(folders, kwargs, flag):
    if kwargs.get('data2') == 'big':
        kwargs = dict(kwargs, data2=folders['big'])
    with pytest.raises(train.UserError) as info:
        _setup(folders, **kwargs)
    assert flag in str(info.value), str(info.value)
