"""Tests for the fast CPU convolutions of stylegan_som.networks.stylegan2 (Winograd-type algorithms for
3x3 convolutions, plain and with 2x up/downsampling): against conv2d_resample, the reference path, in value
and in first- and second-order gradients, plus the dispatch rules and the network-level switches."""

import numpy as np
import pytest
import torch

from stylegan_som.networks import stylegan2 as net
from torch_utils.ops import conv2d_resample
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------

def rel_err(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()

def reference(x, w, up, down, f, flip_weight):
    return conv2d_resample.conv2d_resample(x=x, w=w, f=f, up=up, down=down, padding=1, flip_weight=flip_weight)

def fast(x, w, up, down, f, flip_weight):
    taps = net._separable_taps(f)
    if up == 1 and down == 1:
        return net._conv3x3_winograd(x, w if flip_weight else w.flip([2, 3]))
    if down == 2:
        return net._conv3x3_down2_winograd(x, w if flip_weight else w.flip([2, 3]), *taps)
    return net._conv3x3_up2_winograd(x, w.flip([2, 3]) if flip_weight else w, *taps)

CASES = [ # up, down, input size [H, W]
    (1, 1, [8, 12]),
    (1, 2, [16, 24]),
    (2, 1, [8, 12]),
]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('up,down,size', CASES)
@pytest.mark.parametrize('flip_weight', [True, False])
def test_exact_in_float64(up, down, size, flip_weight):
    # In float64 the algorithms agree with the reference to rounding: the algebra is exact.
    gen = torch.Generator().manual_seed(1)
    x = torch.randn([2, 5, *size], generator=gen, dtype=torch.float64)
    w = torch.randn([7, 5, 3, 3], generator=gen, dtype=torch.float64)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    y = fast(x, w, up, down, f, flip_weight)
    y_ref = reference(x, w, up, down, f, flip_weight)
    assert y.shape == y_ref.shape == (2, 7, size[0] * up // down, size[1] * up // down)
    assert rel_err(y, y_ref) < 1e-12

def test_non_symmetric_filter():
    # Filter orientation: a separable but asymmetric filter, different along H and W.
    gen = torch.Generator().manual_seed(2)
    f = upfirdn2d.setup_filter(torch.outer(torch.tensor([1., 2, 4, 1]), torch.tensor([3., 1, 0.5, 2])))
    assert net._separable_taps(f) is not None
    for up, down, size in CASES[1:]:
        x = torch.randn([1, 3, *size], generator=gen, dtype=torch.float64)
        w = torch.randn([2, 3, 3, 3], generator=gen, dtype=torch.float64)
        for flip_weight in [True, False]:
            assert rel_err(fast(x, w, up, down, f, flip_weight), reference(x, w, up, down, f, flip_weight)) < 1e-12

@pytest.mark.parametrize('up,down,size', CASES)
def test_gradients_float32(up, down, size):
    # Value, input/weight gradients and the gradient of a gradient penalty (R1), float32 vs float64.
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn([2, 6, *size], generator=gen)
    w0 = torch.randn([5, 6, 3, 3], generator=gen)
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    out_size = [s * up // down for s in size]
    proj = torch.randn([2, 5, *out_size], generator=gen, dtype=torch.float64)
    results = []
    for impl, dtype in [(fast, torch.float32), (reference, torch.float64)]:
        x = x0.to(dtype).requires_grad_(True)
        w = w0.to(dtype).requires_grad_(True)
        y = impl(x, w, up, down, f, up == 1)
        loss = (y * proj.to(dtype)).sum()
        gx, = torch.autograd.grad(loss, [x], create_graph=True)
        grads = torch.autograd.grad(loss + gx.square().sum(), [x, w])
        results.append([y.detach(), gx.detach(), *grads])
    for a, b in zip(*results):
        assert rel_err(a, b) < 1e-5

@pytest.mark.parametrize('spec', [
    ('f43_in', 6, 4, 1, 1, 8, 12, 2, 3),
    ('f43_out', 4, 4, 0, 0, 8, 12, 2, 3),
    (('down', (0.125, 0.375, 0.375, 0.125), (0.125, 0.375, 0.375, 0.125), 'in'), 12, 8, 2, 2, 16, 8, 2, 1),
    (('up', (0.125, 0.375, 0.375, 0.125), (0.125, 0.375, 0.375, 0.125), 'out'), 12, 8, 2, 2, 8, 16, 1, 2),
])
def test_tile_transform_adjoint(spec):
    # Gradients rely on _tiles_adjoint being the exact transpose of _tiles_forward: <T x, v> = <x, T' v>.
    net._conv3x3_winograd(torch.zeros([1, 1, 8, 8]), torch.zeros([1, 1, 3, 3])) # registers the matrices
    taps = (0.125, 0.375, 0.375, 0.125)
    net._conv3x3_down2_winograd(torch.zeros([1, 1, 16, 16]), torch.zeros([1, 1, 3, 3]), taps, taps)
    net._conv3x3_up2_winograd(torch.zeros([1, 1, 8, 8]), torch.zeros([1, 1, 3, 3]), taps, taps)
    gen = torch.Generator().manual_seed(4)
    _, L, S, p0h, p0w, H, W, th, tw = spec
    x = torch.randn([2, H, W, 3], generator=gen, dtype=torch.float64)
    tx = net._tiles_forward(x, spec)
    v = torch.randn(tx.shape, generator=gen, dtype=torch.float64)
    tv = net._tiles_adjoint(v, spec)
    assert tv.shape == x.shape
    assert abs((tx * v).sum() - (x * tv).sum()) < 1e-9 * (tx * v).abs().sum()

#----------------------------------------------------------------------------

def test_separable_taps():
    taps = net._separable_taps(upfirdn2d.setup_filter([1, 3, 3, 1]))
    assert np.allclose(taps[0], [1/8, 3/8, 3/8, 1/8]) and np.allclose(taps[1], [1/8, 3/8, 3/8, 1/8])
    assert net._separable_taps(None) is None
    assert net._separable_taps(upfirdn2d.setup_filter([1, 2, 1])) is None # 3 taps: reference path
    f = upfirdn2d.setup_filter([1, 3, 3, 1]).clone()
    f[0, 0] += 0.01 # not an outer product
    assert net._separable_taps(f) is None

def test_dispatch(monkeypatch):
    # Which shapes and settings take which path; every call must still match the reference.
    calls = []
    for name in ['_conv3x3_winograd', '_conv3x3_down2_winograd', '_conv3x3_up2_winograd']:
        fn = getattr(net, name)
        monkeypatch.setattr(net, name, lambda *args, _fn=fn, _name=name: calls.append(_name) or _fn(*args))
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    gen = torch.Generator().manual_seed(5)
    w = torch.randn([3, 2, 3, 3], generator=gen)
    def run(size, up=1, down=1, dtype=torch.float32, filt=f, padding=1, kernel=3):
        del calls[:]
        x = torch.randn([1, 2, *size], generator=gen, dtype=dtype)
        ww = torch.randn([3, 2, kernel, kernel], generator=gen, dtype=dtype)
        y = net._conv2d_resample(x=x, w=ww, f=filt, up=up, down=down, padding=padding, flip_weight=(up == 1))
        y_ref = conv2d_resample.conv2d_resample(x=x.double(), w=ww.double(), f=filt, up=up, down=down,
            padding=padding, flip_weight=(up == 1))
        assert rel_err(y, y_ref) < 1e-5
        return list(calls)
    assert run([8, 8]) == ['_conv3x3_winograd']
    assert run([4, 8]) == [] # too small
    assert run([8, 10]) == [] # not a multiple of 4
    assert run([8, 8], dtype=torch.float64) == []
    assert run([8, 8], padding=0) == []
    assert run([8, 8], kernel=1) == []
    assert run([16, 16], down=2) == ['_conv3x3_down2_winograd']
    assert run([8, 16], down=2) == [] # output below 8
    assert run([16, 20], down=2) == [] # not a multiple of 8
    assert run([16, 16], down=2, filt=upfirdn2d.setup_filter([1, 2, 1])) == []
    assert run([8, 8], up=2) == ['_conv3x3_up2_winograd']
    assert run([4, 8], up=2) == []
    monkeypatch.setattr(net, 'winograd_cpu_resample', False)
    assert run([16, 16], down=2) == [] and run([8, 8], up=2) == [] and run([8, 8]) == ['_conv3x3_winograd']
    monkeypatch.setattr(net, 'winograd_cpu', False)
    assert run([8, 8]) == []
    del w

@pytest.mark.parametrize('architecture', ['orig', 'resnet'])
def test_networks_with_and_without_resampling_path(monkeypatch, architecture):
    # 32x32 networks: G upsamples 8->16->32 and D downsamples 32->16 through the fast paths.
    torch.manual_seed(0)
    G = net.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=1),
        synthesis_kwargs=dict(channel_base=128, channel_max=8, architecture=architecture)).eval()
    D = net.Discriminator(c_dim=0, img_resolution=32, img_channels=3, architecture=architecture, channel_base=128,
        channel_max=8, epilogue_kwargs=dict(mbstd_group_size=2))
    z = torch.randn([2, 8])
    results = []
    for resample in [True, False]:
        monkeypatch.setattr(net, 'winograd_cpu_resample', resample)
        img = G(z, None, noise_mode='const')
        logits = D(img, None)
        g_img, = torch.autograd.grad(logits.sum(), [img])
        results.append([img.detach(), logits.detach(), g_img])
    for a, b in zip(*results):
        assert rel_err(a, b) < 1e-5

#----------------------------------------------------------------------------
