"""Tests for stylegan_som.networks.stylegan2: shapes, upstream-compatible names, the mapping/truncation
math, noise modes, conditioning, and the fast paths (demodulation, Winograd) against plain formulas."""

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stylegan_som.networks import stylegan2 as net
from torch_utils import misc

#----------------------------------------------------------------------------

def make_G(c_dim=0, res=16, architecture='skip', channel_base=128, channel_max=16, **synthesis_kwargs):
    return net.Generator(z_dim=8, c_dim=c_dim, w_dim=8, img_resolution=res, img_channels=3,
        mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=channel_base, channel_max=channel_max,
        architecture=architecture, **synthesis_kwargs))

def make_D(c_dim=0, res=16, architecture='resnet', channel_base=128, channel_max=16, **kwargs):
    return net.Discriminator(c_dim=c_dim, img_resolution=res, img_channels=3, architecture=architecture,
        channel_base=channel_base, channel_max=channel_max, epilogue_kwargs=dict(mbstd_group_size=2), **kwargs)

def randomize_(module, seed=0, scale=0.3):
    # Fresh layers have zero biases and noise strengths, which would hide mistakes in those paths.
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return module

def rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()

#----------------------------------------------------------------------------

@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
def test_shapes(architecture):
    G = make_G(architecture=architecture)
    D = make_D(architecture=architecture)
    assert G.synthesis.block_resolutions == [4, 8, 16]
    assert D.block_resolutions == [16, 8]
    assert G.num_ws == G.synthesis.num_ws == G.mapping.num_ws == 6 # 1 + 2 + 2 convs + last ToRGB
    z = torch.randn([4, G.z_dim])
    ws = G.mapping(z, None)
    assert ws.shape == (4, G.num_ws, G.w_dim)
    img = G.synthesis(ws)
    assert img.shape == (4, 3, 16, 16) and img.dtype == torch.float32
    assert D(img, None).shape == (4, 1)

def test_state_dict_names_match_reference():
    # Key names and order of StyleGAN2-ADA's training.networks for this configuration.
    G = net.Generator(z_dim=8, c_dim=3, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs=dict(num_layers=2),
        synthesis_kwargs=dict(channel_base=64, channel_max=16, architecture='resnet'))
    D = net.Discriminator(c_dim=3, img_resolution=8, img_channels=3, channel_base=64, channel_max=16, architecture='resnet')
    layer = lambda p: [f'{p}.weight', f'{p}.noise_strength', f'{p}.bias', f'{p}.resample_filter', f'{p}.noise_const',
        f'{p}.affine.weight', f'{p}.affine.bias']
    expected_G = (['synthesis.b4.const', 'synthesis.b4.resample_filter'] + layer('synthesis.b4.conv1')
        + ['synthesis.b8.resample_filter'] + layer('synthesis.b8.conv0') + layer('synthesis.b8.conv1')
        + ['synthesis.b8.torgb.weight', 'synthesis.b8.torgb.bias', 'synthesis.b8.torgb.affine.weight',
        'synthesis.b8.torgb.affine.bias', 'synthesis.b8.skip.weight', 'synthesis.b8.skip.resample_filter',
        'mapping.w_avg', 'mapping.embed.weight', 'mapping.embed.bias', 'mapping.fc0.weight', 'mapping.fc0.bias',
        'mapping.fc1.weight', 'mapping.fc1.bias'])
    conv = lambda p: [f'{p}.weight', f'{p}.bias', f'{p}.resample_filter']
    expected_D = (['b8.resample_filter'] + conv('b8.fromrgb') + conv('b8.conv0') + conv('b8.conv1')
        + ['b8.skip.weight', 'b8.skip.resample_filter', 'mapping.embed.weight', 'mapping.embed.bias']
        + [f'mapping.fc{i}.{k}' for i in range(8) for k in ('weight', 'bias')]
        + conv('b4.conv') + ['b4.fc.weight', 'b4.fc.bias', 'b4.out.weight', 'b4.out.bias'])
    assert list(G.state_dict()) == expected_G
    assert list(D.state_dict()) == expected_D
    assert G.mapping.embed.weight.shape == (8, 3) and D.mapping.fc7.weight.shape == (16, 16) # cmap_dim = channels at 4x4

def test_fp16_and_freeze_flags():
    G = make_G(res=32, num_fp16_res=2)
    assert [getattr(G.synthesis, f'b{r}').use_fp16 for r in G.synthesis.block_resolutions] == [False, False, True, True]
    D = make_D(res=32, num_fp16_res=2, block_kwargs=dict(freeze_layers=2))
    assert [getattr(D, f'b{r}').use_fp16 for r in D.block_resolutions] == [True, True, False]
    params = dict(D.named_parameters())
    assert 'b32.fromrgb.weight' not in params and 'b32.conv0.weight' not in params # frozen: buffers
    assert 'b32.conv1.weight' in params and 'b32.conv0.weight' in D.state_dict()

#----------------------------------------------------------------------------

def test_mapping_truncation_and_w_avg():
    G = randomize_(make_G())
    M = G.mapping
    M.w_avg.copy_(torch.randn([M.w_dim]))
    z = torch.randn([5, 8])
    with torch.no_grad():
        ws = M(z, None)
        assert torch.equal(ws[:, 0], ws[:, -1]) # broadcast copies
        assert torch.allclose(M(z, None, truncation_psi=0), M.w_avg.expand_as(ws))
        half = M(z, None, truncation_psi=0.5)
        assert torch.allclose(half, M.w_avg + 0.5 * (ws - M.w_avg), atol=1e-6)
        cut = M(z, None, truncation_psi=0, truncation_cutoff=2)
        assert torch.allclose(cut[:, :2], M.w_avg.expand(5, 2, -1)) and torch.equal(cut[:, 2:], ws[:, 2:])

    # Training updates w_avg <- beta * w_avg + (1 - beta) * batch mean; eval and skip_w_avg_update do not.
    old = M.w_avg.clone()
    M.eval()(z, None)
    M.train()(z, None, skip_w_avg_update=True)
    assert torch.equal(M.w_avg, old)
    with torch.no_grad():
        ws = M(z, None)
    expected = M.w_avg_beta * old + (1 - M.w_avg_beta) * ws[:, 0].mean(dim=0)
    assert torch.allclose(M.w_avg, expected, atol=1e-6)

def test_normalize_2nd_moment():
    x = torch.randn([3, 10]) * 5
    y = net.normalize_2nd_moment(x)
    assert torch.allclose(y.square().mean(dim=1), torch.ones(3), atol=1e-5)

@pytest.mark.parametrize('architecture', ['orig', 'resnet'])
def test_noise_modes(architecture):
    G = randomize_(make_G(architecture=architecture)).eval()
    z = torch.randn([2, 8])
    with torch.no_grad():
        const = [G(z, None, noise_mode='const') for _ in range(2)]
        none = [G(z, None, noise_mode='none') for _ in range(2)]
        rand = [G(z, None, noise_mode='random') for _ in range(2)]
        torch.manual_seed(1)
        seeded = G(z, None, noise_mode='random')
        torch.manual_seed(1)
        seeded2 = G(z, None, noise_mode='random')
    assert torch.equal(const[0], const[1]) and torch.equal(none[0], none[1]) and torch.equal(seeded, seeded2)
    assert not torch.allclose(const[0], none[0]) and not torch.allclose(rand[0], rand[1])
    with pytest.raises(AssertionError):
        G(z, None, noise_mode='bogus')

def test_conditional():
    G = randomize_(make_G(c_dim=3))
    D = randomize_(make_D(c_dim=3, cmap_dim=5))
    z = torch.randn([4, 8]).repeat(2, 1)
    c = torch.eye(3)[[0, 1, 2, 0, 1, 1, 2, 0]]
    img = G(z, c, noise_mode='const')
    assert not torch.allclose(img[0], img[4]) and torch.allclose(img[1], img[5]) # same z; c differs / equal
    logits = D(img, c)
    assert logits.shape == (8, 1)

    # Projection head: score = <out, cmap> / sqrt(cmap_dim), recomputed here from the parts.
    with torch.no_grad():
        x, im = None, img
        for res in D.block_resolutions:
            x, im = getattr(D, f'b{res}')(x, im)
        e = D.b4
        h = e.out(e.fc(e.conv(e.mbstd(x)).flatten(1)))
        expected = (h * D.mapping(None, c)).sum(dim=1, keepdim=True) / np.sqrt(5)
    assert torch.allclose(logits, expected, atol=1e-5)
    logits.sum().backward()
    assert D.mapping.embed.weight.grad.abs().sum() > 0 and G.mapping.embed.weight.grad.abs().sum() > 0

def test_minibatch_std():
    layer = net.MinibatchStdLayer(group_size=2, num_channels=2)
    x = torch.randn([6, 4, 3, 3])
    y = layer(x)
    assert y.shape == (6, 6, 3, 3) and torch.equal(y[:, :4], x)
    # Sample i belongs to group i % 3; each of the 2 features averages the stddev of 2 channels.
    for i in range(6):
        members = x[i % 3::3]
        std = (members.var(dim=0, unbiased=False) + 1e-8).sqrt()
        for f in range(2):
            assert torch.allclose(y[i, 4 + f], std[2 * f:2 * f + 2].mean().expand(3, 3), atol=1e-6)
    with pytest.raises(ValueError, match='divisible'):
        net.MinibatchStdLayer(group_size=4)(torch.randn([6, 4, 3, 3]))

#----------------------------------------------------------------------------
# Fast paths against plain formulas.

def naive_modulated_conv2d(x, weight, styles, noise=None, demodulate=True, padding=1):
    # The definition: per-sample weights weight * styles, normalised per output channel.
    w = weight[None] * styles[:, None, :, None, None] # [N,O,I,k,k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    y = torch.cat([F.conv2d(x[n:n + 1], w[n], padding=padding) for n in range(x.shape[0])])
    return y + noise if noise is not None else y

@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
@pytest.mark.parametrize('fused', [False, True])
@pytest.mark.parametrize('demodulate', [True, False])
def test_modulated_conv2d_matches_definition(dtype, fused, demodulate):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([3, 6, 8, 8], generator=gen, dtype=dtype, requires_grad=True)
    weight = torch.randn([5, 6, 3, 3], generator=gen, dtype=dtype, requires_grad=True)
    styles = (torch.randn([3, 6], generator=gen, dtype=dtype) + 1).requires_grad_(True)
    noise = torch.randn([3, 1, 8, 8], generator=gen, dtype=dtype)
    proj = torch.randn([3, 5, 8, 8], generator=gen, dtype=dtype)
    outs = []
    for fn in [lambda: net.modulated_conv2d(x, weight, styles, noise=noise, padding=1, demodulate=demodulate, fused_modconv=fused),
               lambda: naive_modulated_conv2d(x, weight, styles, noise=noise, demodulate=demodulate)]:
        y = fn()
        # Second-order too: R1 differentiates through the gradient.
        gx, = torch.autograd.grad((y * proj).sum(), [x], create_graph=True)
        grads = torch.autograd.grad((y * proj).sum() + gx.square().sum(), [x, weight, styles])
        outs.append([y.detach(), *grads])
    tol = 1e-10 if dtype == torch.float64 else 2e-5 # float32 may take the Winograd path
    for a, b in zip(*outs):
        assert rel_err(a, b) < tol

def test_winograd_conv_matches_conv2d():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn([2, 5, 8, 12], generator=gen, requires_grad=True)
    w = torch.randn([7, 5, 3, 3], generator=gen, requires_grad=True)
    proj = torch.randn([2, 7, 8, 12], generator=gen)
    results = []
    for conv in [net._conv3x3_winograd, lambda x, w: F.conv2d(x.double(), w.double(), padding=1)]:
        y = conv(x, w)
        gx, = torch.autograd.grad((y * proj).sum(), [x], create_graph=True)
        grads = torch.autograd.grad((y * proj).sum() + gx.square().sum(), [x, w])
        results.append([y.detach(), *grads])
    for a, b in zip(*results):
        assert rel_err(a.double(), b) < 1e-5
    assert results[0][0].shape == (2, 7, 8, 12)

def test_winograd_switch_and_fused_agree():
    # Whole networks: Winograd vs direct convolution, fused vs non-fused modulation.
    G = randomize_(make_G(res=16, architecture='resnet', channel_base=256, channel_max=32), scale=0.1).eval()
    D = randomize_(make_D(res=16, channel_base=256, channel_max=32), scale=0.1)
    z = torch.randn([2, 8])
    with torch.no_grad():
        img = G(z, None, noise_mode='const', fused_modconv=False)
        img_fused = G(z, None, noise_mode='const', fused_modconv=True)
        logits = D(img, None)
        old = net.winograd_cpu
        try:
            net.winograd_cpu = False
            img_direct = G(z, None, noise_mode='const', fused_modconv=False)
            logits_direct = D(img, None)
        finally:
            net.winograd_cpu = old
    assert rel_err(img_fused, img_direct) < 1e-5
    assert rel_err(img, img_direct) < 1e-5
    assert rel_err(logits, logits_direct) < 1e-5

def test_pickle_roundtrip():
    G = randomize_(make_G()).eval()
    G2 = pickle.loads(pickle.dumps(G))
    z = torch.randn([2, 8])
    with torch.no_grad():
        assert torch.equal(G(z, None, noise_mode='const'), G2(z, None, noise_mode='const'))
    D = make_D(c_dim=2)
    misc.copy_params_and_buffers(D, pickle.loads(pickle.dumps(D)), require_all=True)

#----------------------------------------------------------------------------
