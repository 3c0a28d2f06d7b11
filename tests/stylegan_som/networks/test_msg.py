"""MSG-GAN (--msg=1): G's pyramid (one image per scale D takes, the final one bit-identical to G's plain output),
D taking every scale (a non-zero gradient per scale), the reals' average pooling, penalties over every scale, and
the loss runner carrying pyramids from G to D."""

import pytest
import torch

from stylegan_som.loss.regularisers.penalty import squared_grad_norms
from stylegan_som.loss.runner import StyleGAN2Loss
from stylegan_som.networks import msg, small, stylegan2

def _nets(arch, res, **D_kwargs):
    """(G, D) of one backbone with msg, unconditional, small."""
    torch.manual_seed(0)
    common = dict(c_dim=0, img_resolution=res, img_channels=3)
    if arch == 'stylegan2':
        D = stylegan2.Discriminator(channel_base=256, channel_max=16, msg=True,
            epilogue_kwargs=dict(mbstd_group_size=2), **common, **D_kwargs)
        G = stylegan2.Generator(z_dim=8, w_dim=8, mapping_kwargs=dict(num_layers=2),
            synthesis_kwargs=dict(channel_base=256, channel_max=16), **common)
    else:
        sizes = dict(channel_base=256, channel_max=16)
        D = getattr(small, f'{arch}Discriminator')(msg=True, **sizes, **common, **D_kwargs)
        G = getattr(small, f'{arch}Generator')(z_dim=8, w_dim=8, **common,
            synthesis_kwargs=dict(msg_resolutions=D.msg_resolutions, **sizes))
    return G, D

CASES = [('stylegan2', 16, [8, 4]), ('DCGAN', 32, [16, 8, 4]), ('DCGAN', 28, [14, 7]), ('ResNet', 32, [16, 8]),
    ('ResNet', 28, [14])]

@pytest.mark.parametrize('arch,res,levels', CASES, ids=[f'{a}{r}' for a, r, _ in CASES])
def test_pyramid_shapes_and_final_image(arch, res, levels):
    G, D = _nets(arch, res)
    G.eval()
    assert D.msg_resolutions == levels # every block input below the image's, highest first
    ws = G.mapping(torch.randn([4, 8]), None)
    with torch.no_grad():
        pyramid = G.synthesis(ws, return_pyramid=True, noise_mode='const')
        plain = G.synthesis(ws, noise_mode='const')
    assert [tuple(img.shape) for img in pyramid] == [(4, 3, r, r) for r in [res] + levels]
    assert torch.equal(pyramid[0], plain) # the final level is G's ordinary output, bit for bit
    for img in pyramid[1:]: # each scale is an image of its own, not a copy of the final one pooled
        assert not torch.allclose(img, msg.pyramid(plain, [img.shape[2]])[1], atol=1e-3)
    if arch != 'stylegan2':
        assert all(img.abs().max() <= 1 for img in pyramid) # tanh on every level, the reals' range

def test_stylegan2_pyramid_is_the_skip_image():
    G, _ = _nets('stylegan2', 16)
    ws = G.mapping(torch.randn([2, 8]), None)
    with torch.no_grad():
        pyramid = G.synthesis(ws, return_pyramid=True, noise_mode='const')
        # The 8x8 level is the image of a synthesis network stopped after b8 (same weights, same ws).
        x, img = G.synthesis.b4(None, None, ws[:, :2], noise_mode='const')
        x, img = G.synthesis.b8(x, img, ws[:, 1:4], noise_mode='const')
    assert torch.equal(pyramid[1], img)

@pytest.mark.parametrize('arch,res,levels', CASES, ids=[f'{a}{r}' for a, r, _ in CASES])
def test_d_receives_every_scale(arch, res, levels):
    G, D = _nets(arch, res)
    ws = G.mapping(torch.randn([4, 8]), None)
    pyramid = msg.leaves(G.synthesis(ws, return_pyramid=True), True)
    assert len(pyramid) == len(levels) + 1
    grads = torch.autograd.grad(D(pyramid, None).sum(), pyramid)
    for r, grad in zip([res] + levels, grads):
        assert grad.abs().sum() > 0, f'D ignores its {r}x{r} input'
    # Every combine layer of D took part.
    D(pyramid, None).sum().backward()
    for r in levels:
        assert getattr(D, f'msg{r}').weight.grad.abs().sum() > 0

@pytest.mark.parametrize('arch,res,levels', CASES[:2], ids=['stylegan2', 'DCGAN'])
def test_d_pools_a_single_image_as_the_loss_does(arch, res, levels):
    _, D = _nets(arch, res)
    D.eval() # spectral norm's power iteration would move between the two calls
    img = torch.randn([4, 3, res, res])
    with torch.no_grad():
        assert torch.equal(D(img, None), D(msg.pyramid(img, levels), None))
    with pytest.raises(ValueError, match='pyramid needs'):
        D([img], None)
    plain = stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    with pytest.raises(ValueError, match='built without msg'):
        plain(msg.pyramid(torch.zeros([2, 3, 16, 16]), [8, 4]), None)
    assert not [name for name in plain.state_dict() if name.startswith('msg')] # off: upstream's network

def test_reals_pyramid_is_average_pooling():
    img = torch.arange(2 * 3 * 28 * 28, dtype=torch.float32).reshape(2, 3, 28, 28)
    full, half, quarter = msg.pyramid(img, [14, 7])
    assert full is img
    assert torch.equal(half, img.reshape(2, 3, 14, 2, 14, 2).mean(dim=[3, 5]))
    assert torch.allclose(quarter, img.reshape(2, 3, 7, 4, 7, 4).mean(dim=[3, 5]))
    assert torch.allclose(quarter, msg.pyramid(half, [7])[1]) # the same operator at every level
    with pytest.raises(ValueError, match='do not divide'):
        msg.pyramid(img, [8])

def test_penalty_covers_every_scale():
    _, D = _nets('DCGAN', 32)
    pyramid = msg.leaves(msg.pyramid(torch.randn([4, 3, 32, 32]), D.msg_resolutions), True)
    logits = D(pyramid, None)
    norms = squared_grad_norms(logits, pyramid)
    grads = torch.autograd.grad(logits.sum(), pyramid)
    expected = sum(grad.square().sum([1, 2, 3]) for grad in grads)
    assert torch.allclose(norms, expected)
    assert (norms > grads[0].square().sum([1, 2, 3])).all() # more than the full-size image's share

@pytest.mark.parametrize('arch', ['stylegan2', 'DCGAN'])
def test_runner_sends_pyramids_through_every_phase(arch):
    G, D = _nets(arch, 16)
    loss = StyleGAN2Loss('cpu', G.mapping, G.synthesis, D, msg=True, r1_gamma=1, r2_gamma=1,
        pl_weight=(2 if arch == 'stylegan2' else 0), style_mixing_prob=0)
    real = torch.rand([4, 3, 16, 16]) * 2 - 1
    batch = dict(real_img=real, real_c=torch.zeros([4, 0]), gen_z=torch.randn([4, 8]), gen_c=torch.zeros([4, 0]))
    G.requires_grad_(True)
    loss.accumulate_gradients('Gmain', sync=True, gain=1, **batch)
    torgb = G.synthesis.b4.torgb if arch == 'stylegan2' else getattr(G.synthesis, f'msg_torgb{D.msg_resolutions[-1]}')
    assert torgb.weight.grad.abs().sum() > 0 # D's gradient reached G's lowest scale
    if arch == 'stylegan2': # path length on the final image of the pyramid
        loss.accumulate_gradients('Greg', sync=True, gain=1, **batch)
        assert loss.pl_mean > 0
    D.requires_grad_(True)
    for phase in ('Dmain', 'Dreg'):
        loss.accumulate_gradients(phase, sync=True, gain=1, **batch)
    assert all(getattr(D, f'msg{r}').weight.grad.abs().sum() > 0 for r in D.msg_resolutions)
    with pytest.raises(ValueError, match='takes no scales'):
        StyleGAN2Loss('cpu', G.mapping, G.synthesis, stylegan2.Discriminator(c_dim=0, img_resolution=16,
            img_channels=3, channel_base=256, channel_max=16), msg=True)

def test_packed_d_packs_every_scale():
    _, D = _nets('DCGAN', 16, pack_size=2)
    pyramid = msg.leaves(msg.pyramid(torch.randn([4, 3, 16, 16]), D.msg_resolutions), True)
    assert D.msg8.weight.shape[1] == D.conv8.weight.shape[1] + 2 * 3 # two images' channels per pack
    logits = D(pyramid, None)
    assert logits.shape == (2, 1)
    norms = squared_grad_norms(logits, pyramid) # one per pack, over its images at every scale
    assert norms.shape == (2,) and (norms > 0).all()

def test_generators_refuse_scales_they_lack():
    with pytest.raises(ValueError, match=r'msg_resolutions \[32\]'):
        small.DCGANSynthesis(w_dim=8, img_resolution=32, img_channels=3, msg_resolutions=[32])
    with pytest.raises(ValueError, match=r'msg_resolutions \[2\]'):
        small.ResNetSynthesis(w_dim=8, img_resolution=32, img_channels=3, msg_resolutions=[8, 2])
    G = stylegan2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
        synthesis_kwargs=dict(channel_base=256, channel_max=16, architecture='orig'))
    with pytest.raises(ValueError, match='skip architecture'):
        G.synthesis(G.mapping(torch.randn([2, 8]), None), return_pyramid=True)
