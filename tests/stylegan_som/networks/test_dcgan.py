"""--arch=dcgan: shapes at 28x28 and 32x32, K heads on one trunk, projection head with labels, attention,
spectral norm switch, pickle round trip, a few training steps."""

import pytest
import torch

from stylegan_som.networks import dcgan
from . import _common as common

SMALL = dict(G_kwargs=dict(synthesis_kwargs=dict(channel_base=128, channel_max=16)),
    D_kwargs=dict(channel_base=128, channel_max=16))

@pytest.mark.parametrize('res, channels, r0, blocks', [(28, 3, 7, [14, 28]), (32, 1, 4, [8, 16, 32])])
def test_shapes_and_resolutions(res, channels, r0, blocks):
    G, D = common.build('dcgan', res, channels, **SMALL)
    assert G.synthesis.r0 == r0 and G.synthesis.block_resolutions == blocks
    assert D.r0 == r0 and D.block_resolutions == blocks[::-1]
    img, c = common.check_generator_interface(G)
    assert img.abs().max() <= 1 # tanh output, the image range
    assert D(img, c).shape == (3, 1)
    assert D.features(img).shape == (3, D.num_features) and D.num_features == 16 * r0 * r0

def test_heads_and_labels():
    G, D = common.build('dcgan', 28, 3, c_dim=5, D_kwargs=dict(SMALL['D_kwargs'], num_heads=4),
        G_kwargs=SMALL['G_kwargs'])
    img, c = common.check_generator_interface(G)
    assert type(D.head).__name__ == 'ProjectionHead'
    common.check_heads_share_trunk(D, img, c, 4)
    common.check_roundtrip(G, D, img, c)

def test_spectral_norm_switch():
    _, D = common.build('dcgan', 28, 3, **SMALL)
    assert D.spectral_norm if hasattr(D, 'spectral_norm') else D.conv28.spectral_norm
    _, D = common.build('dcgan', 28, 3, D_kwargs=dict(SMALL['D_kwargs'], spectral_norm=False))
    assert not any(name.endswith('weight_u') for name, _ in D.named_buffers())

def test_batch_norm_switch():
    G, D = common.build('dcgan', 28, 3, D_kwargs=dict(SMALL['D_kwargs'], batch_norm=True, spectral_norm=False))
    norms = [type(getattr(D, f'norm{res}')).__name__ for res in D.block_resolutions]
    assert norms == ['BatchNorm2d'] * 2 # after each strided convolution
    img, c = common.check_generator_interface(G)
    # Training mode normalises by the batch: a sample's score depends on the others in its batch.
    assert not torch.allclose(D(img[:2], c[:2]), D(img, c)[:2])
    D.eval()
    torch.testing.assert_close(D(img[:2], c[:2]), D(img, c)[:2])
    common.check_roundtrip(G, D, img, c)
    _, D0 = common.build('dcgan', 28, 3, **SMALL) # off by default: identities, no parameters
    assert [n for n, _ in D0.named_modules() if 'norm' in n] == ['norm28', 'norm14']
    assert not any('norm' in n for n, _ in D0.named_parameters())

def test_attention_blocks_start_as_identity():
    G0, D0 = common.build('dcgan', 28, 3, **SMALL)
    G1, D1 = common.build('dcgan', 28, 3, G_kwargs=dict(synthesis_kwargs=dict(SMALL['G_kwargs']['synthesis_kwargs'],
        attn_resolutions=[14])), D_kwargs=dict(SMALL['D_kwargs'], attn_resolutions=[14, 7]))
    assert hasattr(G1.synthesis, 'attn14') and hasattr(D1, 'attn14') and hasattr(D1, 'attn7')
    # Same seed, and attention parameters are made after the rest: every shared parameter is equal, and
    # with zero gain the outputs are too.
    sd0 = G0.state_dict()
    for name, value in G1.state_dict().items():
        if 'attn' not in name:
            assert torch.equal(value, sd0[name]), name
    z = torch.randn(2, G0.z_dim)
    c = torch.zeros(2, 0)
    G0.eval(), G1.eval(), D0.eval(), D1.eval()
    torch.testing.assert_close(G1(z, c), G0(z, c))
    misc_img = torch.randn(2, 3, 28, 28)
    D1.load_state_dict({**D0.state_dict(), **{k: v for k, v in D1.state_dict().items() if 'attn' in k}})
    torch.testing.assert_close(D1(misc_img, c), D0(misc_img, c))

def test_minibatch_stddev():
    from stylegan_som.networks import small, stylegan2
    x = torch.randn(8, 6, 3, 3)
    # The same statistic as StyleGAN2's epilogue layer with one map (groups of 4: samples i and i + 2 share one).
    torch.testing.assert_close(small.minibatch_stddev(x, 4), stylegan2.MinibatchStdLayer(4, 1)(x))
    torch.manual_seed(0)
    _, D = common.build('dcgan', 28, 3, D_kwargs=dict(SMALL['D_kwargs'], mbstd_group_size=2))
    _, D0 = common.build('dcgan', 28, 3, **SMALL)
    assert D.conv_out.weight.shape[1] == D0.conv_out.weight.shape[1] + 1 # one more input map
    D.eval(), D0.eval()
    img, c = torch.randn(4, 3, 28, 28), torch.zeros(4, 0)
    alike = img.clone()
    alike[2:] = alike[:2] # partners (0, 2) and (1, 3) identical: no spread within their groups
    # With the statistic, a sample's score depends on its group partner; without it, not.
    assert not torch.allclose(D(img, c)[:2], D(alike, c)[:2])
    torch.testing.assert_close(D0(img, c)[:2], D0(alike, c)[:2])
    with pytest.raises(ValueError, match='not divisible'):
        D(img[:3], c[:3])

def test_module_names():
    assert dcgan.Generator.__name__ == 'DCGANGenerator' and dcgan.Discriminator.__name__ == 'DCGANDiscriminator'

def test_trains():
    G, D = common.build('dcgan', 28, 1, c_dim=3, **SMALL)
    common.check_trains(G, D, c_dim=3)
