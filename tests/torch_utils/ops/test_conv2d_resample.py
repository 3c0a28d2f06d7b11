"""conv2d_resample against the definition: zero-insert, pad once, filter, convolve, filter and decimate."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import conv2d_resample
from torch_utils.ops import upfirdn2d
from .plain_ops import full_filter, fir_valid, pad_or_crop, pads, zero_insert

FILTERS = {
    'none': lambda: None,
    'binomial4': lambda: upfirdn2d.setup_filter([1, 3, 3, 1]),
    'asym2d': lambda: upfirdn2d.setup_filter([[1., 2., 0.5], [3., -1., 2.]], normalize=False),
    'sep8': lambda: upfirdn2d.setup_filter([1., 2., -3., 4., 6., 2., 1., 3.]),
}


def plain_conv2d_resample(x, w, f, up, down, padding, groups, flip_weight, flip_filter):
    fh, fw = (1, 1) if f is None else (f.shape[0], f.shape[-1])
    x0, x1, y0, y1 = pads(padding)
    # The padding is given for the upsampled image; the filter needs extra to stay centred.
    if up > 1:
        x0, x1, y0, y1 = x0 + (fw + up - 1) // 2, x1 + (fw - up) // 2, y0 + (fh + up - 1) // 2, y1 + (fh - up) // 2
    if down > 1:
        x0, x1, y0, y1 = x0 + (fw - down + 1) // 2, x1 + (fw - down) // 2, y0 + (fh - down + 1) // 2, y1 + (fh - down) // 2
    x = pad_or_crop(zero_insert(x, up, up), x0, x1, y0, y1)
    if up > 1:
        x = fir_valid(x, full_filter(f, up * up, x.dtype), flip_filter)
    x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups) # torch's conv2d is a correlation
    if down > 1:
        x = fir_valid(x, full_filter(f, 1, x.dtype), flip_filter)[:, :, ::down, ::down]
    return x


def _rand(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize('fname', sorted(FILTERS))
@pytest.mark.parametrize('up,down', [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1)])
@pytest.mark.parametrize('gradfix', [False, True])
def test_matches_plain_formulation(fname, up, down, gradfix, monkeypatch):
    monkeypatch.setattr(conv2d_gradfix, 'enabled', gradfix)
    f = FILTERS[fname]()
    grid = itertools.product([(1, 1), (3, 3), (2, 3)], [0, 1, [1, 2, 0, 1], [-1, 0, 2, 2]], [1, 2], [True, False], [False, True])
    for seed, (ks, padding, groups, flip_weight, flip_filter) in enumerate(grid):
        if gradfix and (seed % 3): # the gradfix variant only needs a sample of the grid
            continue
        what = f'f={fname} up={up} down={down} kernel={ks} padding={padding} groups={groups} flip_weight={flip_weight} flip_filter={flip_filter}'
        x = _rand(2, 4, 7, 6, seed=seed).requires_grad_()
        w = _rand(6, 4 // groups, *ks, seed=seed + 1).requires_grad_()
        kw = dict(up=up, down=down, padding=padding, groups=groups, flip_weight=flip_weight, flip_filter=flip_filter)
        ours = conv2d_resample.conv2d_resample(x, w, f=f, **kw)
        ref = plain_conv2d_resample(x, w, f, **kw)
        assert ours.shape == ref.shape, what
        torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10, msg=what)
        dy = _rand(*ref.shape, seed=seed + 2)
        g = torch.autograd.grad(ours, [x, w], dy)
        g_ref = torch.autograd.grad(ref, [x, w], dy)
        for a, r in zip(g, g_ref):
            torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10, msg=what)


@pytest.mark.parametrize('up,down', [(2, 1), (1, 2), (1, 1)])
def test_second_order(up, down, monkeypatch):
    # R1-style: the gradient w.r.t. the input, differentiated again w.r.t. the weights and the input.
    monkeypatch.setattr(conv2d_gradfix, 'enabled', True)
    f = FILTERS['binomial4']()
    x = _rand(2, 4, 6, 6, seed=1).requires_grad_()
    w = _rand(3, 4, 3, 3, seed=2).requires_grad_()
    q = _rand(2, 4, 6, 6, seed=3)
    results = []
    for fn in (lambda: conv2d_resample.conv2d_resample(x, w, f, up=up, down=down, padding=1),
               lambda: plain_conv2d_resample(x, w, f, up, down, 1, 1, True, False)):
        y = fn()
        g, = torch.autograd.grad(y.square().sum(), x, create_graph=True)
        results.append(torch.autograd.grad((g * q).sum(), [x, w]))
    for a, r in zip(*results):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-9)


def test_float32_channels_last_and_batch_groups():
    # The fused modulated conv of the generator: groups = batch size, upsampling, channels_last input.
    f = FILTERS['binomial4']()
    x = _rand(3, 8, 5, 5, seed=1)
    w = _rand(12, 8 // 4, 3, 3, seed=2)
    ref = plain_conv2d_resample(x, w, f, 2, 1, 1, 4, True, False)
    for xx in [x.float(), x.float().to(memory_format=torch.channels_last)]:
        y = conv2d_resample.conv2d_resample(xx, w.float(), f, up=2, padding=1, groups=4)
        torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-4)


def test_bad_arguments_raise():
    x = torch.zeros([1, 2, 4, 4])
    with pytest.raises(ValueError, match='dtype'):
        conv2d_resample.conv2d_resample(x, torch.zeros([2, 2, 3, 3], dtype=torch.float64))
    with pytest.raises(ValueError, match='up'):
        conv2d_resample.conv2d_resample(x, torch.zeros([2, 2, 3, 3]), up=0)
    with pytest.raises(ValueError, match='float32'):
        conv2d_resample.conv2d_resample(x, torch.zeros([2, 2, 3, 3]), f=torch.ones([2, 2], dtype=torch.float64))
