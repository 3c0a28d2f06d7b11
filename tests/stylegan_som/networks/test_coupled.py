"""Coupled G and D: hard coupling shares the right layers (the same tensors, so identical gradients), soft and none
share nothing; pairs and D's stacked logits have the right shapes; the display hook draws A | B; pickles keep
the sharing."""

import copy
import pickle

import pytest
import torch

from stylegan_som.networks.coupled import CoupledDiscriminator, CoupledGenerator

G_KWARGS = dict(class_name='stylegan_som.networks.dcgan.Generator', z_dim=8, w_dim=8,
    synthesis_kwargs=dict(channel_base=128, channel_max=16))
D_KWARGS = dict(class_name='stylegan_som.networks.dcgan.Discriminator', channel_base=128, channel_max=16)

def _ids(module):
    return {id(p) for p in module.parameters()}

def _nets(couple, **kwargs):
    torch.manual_seed(0)
    G = CoupledGenerator(c_dim=0, img_resolution=16, img_channels=2, couple=couple, generator_kwargs=G_KWARGS, **kwargs)
    D = CoupledDiscriminator(c_dim=0, img_resolution=16, img_channels=2, couple=couple, discriminator_kwargs=D_KWARGS)
    return G, D

def test_hard_shares_first_g_layers_and_last_d_layers():
    G, D = _nets('hard')
    sa, sb = G.synthesis.a, G.synthesis.b
    assert G.mapping.a is G.mapping.b
    for name in ('fc', 'fc_norm', 'up8', 'norm8'): # r0 = 4: the 8x8 layers are below the top resolution
        assert getattr(sa, name) is getattr(sb, name)
    for name in ('up16', 'norm16', 'torgb'):
        assert getattr(sa, name) is not getattr(sb, name)
    assert sa.fc.weight is sb.fc.weight and sa.torgb.weight is not sb.torgb.weight
    for name in ('conv8', 'down8', 'conv_out', 'head'):
        assert getattr(D.a, name) is getattr(D.b, name)
    for name in ('conv16', 'down16'):
        assert getattr(D.a, name) is not getattr(D.b, name)
    # A shared parameter gets the gradient of both domains, once: G's parameter list holds it once.
    assert len(list(G.parameters())) < len(list(G.synthesis.a.parameters())) + len(list(G.synthesis.b.parameters()))
    img = G(torch.randn([4, 8]), torch.zeros([4, 0]))
    img.sum().backward()
    assert sa.fc.weight.grad is sb.fc.weight.grad and sa.fc.weight.grad.abs().sum() > 0

@pytest.mark.parametrize('couple', ['soft', 'none'])
def test_soft_and_none_share_nothing(couple):
    G, D = _nets(couple)
    assert not _ids(G.synthesis.a) & _ids(G.synthesis.b)
    assert not _ids(G.mapping.a) & _ids(G.mapping.b) or not list(G.mapping.a.parameters())
    assert not _ids(D.a) & _ids(D.b)
    assert [name for name, _, _ in G.synthesis.matching_layers()] == ['fc', 'fc_norm', 'up8', 'norm8', 'up16', 'norm16']

def test_pairs_logits_and_display():
    G, D = _nets('none')
    D.eval() # spectral norm's power iteration steps only in training
    z = torch.randn([3, 8])
    img = G(z, torch.zeros([3, 0]))
    assert img.shape == (3, 2, 16, 16)
    assert not torch.allclose(img[:, 0], img[:, 1]) # two generators drawn independently
    logits = D(img, torch.zeros([3, 0]))
    assert logits.shape == (6, 1)
    assert torch.allclose(logits[:3], D.a(img[:, :1], None)) and torch.allclose(logits[3:], D.b(img[:, 1:], None))
    shown = G.to_display(img)
    assert shown.shape == (3, 1, 16, 32)
    assert torch.equal(shown[..., :16], img[:, :1]) and torch.equal(shown[..., 16:], img[:, 1:])

def test_hard_pair_reads_one_latent():
    G, _ = _nets('hard')
    assert G.num_ws == 1 and G.mapping(torch.randn([2, 8]), torch.zeros([2, 0])).shape == (2, 1, 8)
    G_soft, _ = _nets('soft')
    assert G_soft.num_ws == 2

def test_copies_and_pickles_keep_the_sharing():
    G, D = _nets('hard', encoder=True)
    G.eval()
    z, c = torch.randn([2, 8]), torch.zeros([2, 0])
    for clone in (copy.deepcopy(G), pickle.loads(pickle.dumps(G))):
        assert clone.synthesis.a.fc is clone.synthesis.b.fc
        assert clone.synthesis.encoder is not None
        assert torch.equal(clone(z, c), G(z, c))
    clone = pickle.loads(pickle.dumps(D))
    assert clone.a.head is clone.b.head

def test_bad_arguments():
    with pytest.raises(ValueError, match='couple must be one of'):
        CoupledGenerator(0, 16, 2, couple='tight', generator_kwargs=G_KWARGS)
    with pytest.raises(ValueError, match='even number of channels'):
        CoupledDiscriminator(0, 16, 3, discriminator_kwargs=D_KWARGS)
