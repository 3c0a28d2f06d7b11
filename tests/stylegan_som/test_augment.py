"""Tests for stylegan_som.augment (ADA pipeline).

Expected outputs are written independently of the pipeline: pixel permutations and shifts via torch.flip /
torch.rot90 / reflect padding, geometric warps via the affine map applied analytically to a linear ramp (which the
resampling filters reproduce), colour maps via closed forms, filtering via numpy convolution.
"""

import math
import pickle

import numpy as np
import pytest
import torch

from stylegan_som import augment
from stylegan_som.augment import AugmentPipe, augpipe_specs

GEOM_KEYS = ['xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'xfrac']
COLOR_KEYS = ['brightness', 'contrast', 'lumaflip', 'hue', 'saturation']


def _images(n=2, c=3, h=16, w=16, seed=0, dtype=torch.float32):
    return (torch.rand([n, c, h, w], generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1).to(dtype)


def _centred_grid(h, w):
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64) - (h - 1) / 2,
                            torch.arange(w, dtype=torch.float64) - (w - 1) / 2, indexing='ij')
    return xx, yy


def _ramp(x, y):
    return 0.03 * x - 0.02 * y + 0.1


def _z(dp):
    # Debug mode sets a parameter drawn as N(0, std^2) to erfinv(2 dp - 1) * std (upstream's convention; this is
    # the dp-quantile of N(0, std^2 / 2), not of N(0, std^2)).
    return torch.erfinv(torch.tensor(2 * dp - 1, dtype=torch.float64)).item()


#----------------------------------------------------------------------------
# Presets, construction, state.

def test_presets():
    assert list(augpipe_specs) == ['blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc']
    assert set(augpipe_specs['blit']) == {'xflip', 'rotate90', 'xint'}
    assert set(augpipe_specs['geom']) == {'scale', 'rotate', 'aniso', 'xfrac'}
    assert set(augpipe_specs['color']) == set(COLOR_KEYS)
    assert set(augpipe_specs['bgc']) == set(GEOM_KEYS + COLOR_KEYS)
    assert set(augpipe_specs['bgcfnc']) == set(GEOM_KEYS + COLOR_KEYS + ['imgfilter', 'noise', 'cutout'])
    for spec in augpipe_specs.values():
        assert set(spec.values()) == {1}
        AugmentPipe(**spec)


def test_state_dict_layout_and_roundtrip():
    pipe = AugmentPipe(**augpipe_specs['bgcfnc'])
    sd = pipe.state_dict()
    assert list(sd) == ['p', 'Hz_geom', 'Hz_fbank']
    assert sd['p'].shape == () and sd['p'].item() == 1
    assert sd['Hz_geom'].shape == (12,) and sd['Hz_fbank'].shape == (4, 43)
    assert all(v.dtype == torch.float32 for v in sd.values())

    pipe.p.fill_(0.42)
    other = AugmentPipe(**augpipe_specs['bgcfnc'])
    other.load_state_dict(pipe.state_dict())
    assert other.p.item() == pytest.approx(0.42)
    x = _images(h=32, w=32)
    torch.manual_seed(3); a = pipe(x)
    torch.manual_seed(3); b = other(x)
    assert torch.equal(a, b)


def test_pickle_roundtrip():
    pipe = AugmentPipe(xflip=1, brightness=1, imgfilter=1, imgfilter_bands=[1, 0, 1, 0], noise_std=0.3)
    pipe.p.fill_(0.7)
    copy = pickle.loads(pickle.dumps(pipe))
    assert copy.imgfilter_bands == [1, 0, 1, 0] and copy.noise_std == 0.3 and copy.p.item() == pytest.approx(0.7)
    x = _images(h=24, w=24)
    torch.manual_seed(9); a = pipe(x)
    torch.manual_seed(9); b = copy(x)
    assert torch.equal(a, b)


def test_filters():
    pipe = AugmentPipe()
    # Geometric low-pass: normalised to unit DC gain and orthogonal to its even shifts (sum h[k] h[k+2n] = delta/2).
    h = pipe.Hz_geom.double().numpy()
    assert h.sum() == pytest.approx(1, abs=1e-6)
    acf = np.correlate(h, h, mode='full')[h.size - 1:]
    assert np.allclose(acf[::2], [0.5] + [0] * (acf[::2].size - 1), atol=1e-6)
    # Filter bank: symmetric rows, DC only in the coarsest band, rows summing to a unit impulse.
    bank = pipe.Hz_fbank.double().numpy()
    assert np.allclose(bank, bank[:, ::-1], atol=1e-7)
    assert np.allclose(bank.sum(axis=1), [1, 0, 0, 0], atol=1e-6)
    impulse = np.zeros(bank.shape[1]); impulse[bank.shape[1] // 2] = 1
    assert np.allclose(bank.sum(axis=0), impulse, atol=1e-6)


#----------------------------------------------------------------------------
# Identity, shapes, dtypes, errors.

@pytest.mark.parametrize('preset', list(augpipe_specs))
@pytest.mark.parametrize('channels', [1, 3])
def test_p0_is_exact_identity(preset, channels):
    pipe = AugmentPipe(**augpipe_specs[preset])
    pipe.p.zero_()
    x = _images(n=3, c=channels, h=12, w=20) # small enough that the filter's padding has to fold
    torch.manual_seed(0)
    y = pipe(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(y, x)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_shape_and_dtype_preserved(dtype):
    pipe = AugmentPipe(**augpipe_specs['bgcfnc'])
    x = _images(n=4, h=16, w=24, dtype=dtype)
    torch.manual_seed(1)
    y = pipe(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert not torch.equal(y, x)


def test_bad_inputs():
    with pytest.raises(ValueError, match='batch, channels, height, width'):
        AugmentPipe(xflip=1)(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match='2 channels'):
        AugmentPipe(brightness=1)(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match='imgfilter_bands'):
        AugmentPipe(imgfilter=1, imgfilter_bands=[1, 1])(torch.zeros(1, 3, 8, 8))


def test_probability_follows_p():
    # x-flip fires with probability xflip * p, and then flips with probability 1/2.
    n = 800
    x = torch.linspace(-1, 1, 8).expand(n, 1, 8, 8).contiguous()
    pipe = AugmentPipe(xflip=1)
    for p, expected in [(1.0, 0.5), (0.5, 0.25), (0.0, 0.0)]:
        pipe.p.fill_(p)
        torch.manual_seed(0)
        y = pipe(x)
        flipped = (y[:, 0, 0, 0] > 0).double().mean().item()
        assert flipped == pytest.approx(expected, abs=0.06)


#----------------------------------------------------------------------------
# Single augmentations in debug mode.

def test_xflip_and_rotate90():
    # The resampling filter is not symmetric, so flips are exact only up to a sub-pixel phase: use a smooth image.
    xx, yy = _centred_grid(16, 16)
    x = (_ramp(xx, yy) + 0.001 * xx * yy).float().expand(2, 3, 16, 16)
    assert torch.allclose(AugmentPipe(xflip=1)(x, debug_percentile=0.75), x.flip(3), atol=0.01)
    assert torch.equal(AugmentPipe(xflip=1)(x, debug_percentile=0.25), x)
    for k, dp in [(1, 0.3), (2, 0.55), (3, 0.8)]:
        y = AugmentPipe(rotate90=1)(x, debug_percentile=dp)
        assert torch.allclose(y, torch.rot90(x, k, dims=(2, 3)), atol=0.01), k


@pytest.mark.parametrize('h,w', [(16, 16), (12, 20)])
def test_xint_shifts_with_reflection(h, w):
    # Whole-pixel shifts commute with the resampling filters, so they are exact even on noise.
    x = _images(c=3, h=h, w=w)
    y = AugmentPipe(xint=1, xint_max=0.25)(x, debug_percentile=0.9) # t = 0.2 of the size, rounded
    sx, sy = round(0.2 * w), round(0.2 * h)
    expected = torch.nn.functional.pad(x, [sx, 0, sy, 0], mode='reflect')[..., :h, :w]
    assert torch.allclose(y, expected, atol=1e-5)
    y = AugmentPipe(xint=1, xint_max=0.25)(x, debug_percentile=0.1) # the other way
    expected = torch.nn.functional.pad(x, [0, sx, 0, sy], mode='reflect')[..., sy:, sx:]
    assert torch.allclose(y, expected, atol=1e-5)


@pytest.mark.parametrize('name', ['scale', 'aniso', 'rotate', 'xfrac'])
def test_general_geometry_on_ramp(name):
    h, w, dp = 24, 32, 0.65
    z = _z(dp)
    t = (2 * dp - 1) * math.pi
    # Where each output pixel (centred coordinates) is sampled from in the input.
    source = {
        'scale': lambda x, y: (x / 2 ** (0.2 * z), y / 2 ** (0.2 * z)),
        'aniso': lambda x, y: (x / 2 ** (0.2 * z), y * 2 ** (0.2 * z)),
        'rotate': lambda x, y: (math.cos(t) * x - math.sin(t) * y, math.sin(t) * x + math.cos(t) * y),
        'xfrac': lambda x, y: (x - 0.125 * z * w, y - 0.125 * z * h),
    }[name]
    xx, yy = _centred_grid(h, w)
    img = _ramp(xx, yy).float().expand(1, 3, h, w)
    out = AugmentPipe(**{name: 1})(img, debug_percentile=dp)[0].double()
    sx, sy = source(xx, yy)
    # Away from the borders, where reflection bends the ramp.
    inside = ((sx.abs() <= (w - 1) / 2 - 5) & (sy.abs() <= (h - 1) / 2 - 5) &
              (xx.abs() <= (w - 1) / 2 - 4) & (yy.abs() <= (h - 1) / 2 - 4))
    assert inside.sum() > 100
    err = (out - _ramp(sx, sy)).abs()[:, inside]
    assert err.max() < 0.005


def test_geometry_keeps_constant_images():
    # Reflection padding means no border ever leaks in.
    x = torch.full([2, 3, 16, 16], 0.3)
    for dp in [0.05, 0.5, 0.95]:
        y = AugmentPipe(**augpipe_specs['bg'])(x, debug_percentile=dp)
        assert torch.allclose(y, x, atol=1e-5)


def test_color_transforms():
    x = _images(c=3, h=8, w=8)
    dp = 0.8
    z = _z(dp)
    grey = x.mean(dim=1, keepdim=True)
    cases = [
        (dict(brightness=1), x + 0.2 * z),
        (dict(contrast=1), x * 2 ** (0.5 * z)),         # scales about 0, i.e. mid-grey of [-1, 1] images
        (dict(lumaflip=1), x - 2 * grey),               # negates the grey component, keeps chroma
        (dict(saturation=1), grey + (x - grey) * 2 ** z),
    ]
    for kwargs, expected in cases:
        assert torch.allclose(AugmentPipe(**kwargs)(x, debug_percentile=dp), expected, atol=1e-5), kwargs
    # A third of a turn about the grey axis cycles R -> G -> B.
    assert torch.allclose(AugmentPipe(hue=1)(x, debug_percentile=5 / 6), x.roll(1, dims=1), atol=1e-5)
    assert torch.allclose(AugmentPipe(lumaflip=1)(x, debug_percentile=0.3), x, atol=0)


def test_color_on_grey_images():
    x = _images(c=1, h=8, w=8)
    z = _z(0.8)
    assert torch.allclose(AugmentPipe(brightness=1, contrast=1)(x, debug_percentile=0.8),
                          (x + 0.2 * z) * 2 ** (0.5 * z), atol=1e-5)
    assert torch.allclose(AugmentPipe(lumaflip=1)(x, debug_percentile=0.8), -x, atol=1e-6)
    assert torch.equal(AugmentPipe(hue=1, saturation=1)(x, debug_percentile=0.8), x) # no colour to change


@pytest.mark.parametrize('h,w', [(32, 36), (8, 12)])
@pytest.mark.parametrize('bands', [[1, 1, 1, 1], [0, 1, 0, 0]])
def test_imgfilter_matches_numpy(h, w, bands):
    pipe = AugmentPipe(imgfilter=1, imgfilter_bands=bands)
    x = _images(n=2, c=3, h=h, w=w)
    dp = 0.8
    y = pipe(x, debug_percentile=dp).double().numpy()

    # Gains: each enabled band in turn is amplified by 2**(z * std), then renormalised for the 1/f power model.
    power = np.array([10, 1, 1, 1]) / 13
    g = np.ones(4)
    for i, on in enumerate(bands):
        t = np.ones(4)
        t[i] = 2 ** _z(dp) if on else 1
        g *= t / np.sqrt((power * t ** 2).sum())
    kernel = g @ pipe.Hz_fbank.double().numpy()
    r = kernel.size // 2
    padded = np.pad(x.double().numpy(), [(0, 0), (0, 0), (r, r), (r, r)], mode='reflect')
    rows = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode='valid'), 3, padded)
    expected = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode='valid'), 2, rows)
    assert np.abs(y - expected).max() < 1e-5


def test_imgfilter_constant_image():
    # Only the coarsest band carries DC, so a flat image is scaled by that band's gain alone, once per axis.
    x = torch.full([1, 3, 24, 24], 0.5)
    y = AugmentPipe(imgfilter=1, imgfilter_bands=[0, 1, 1, 1])(x, debug_percentile=0.9)
    t = 2 ** _z(0.9)
    power = np.array([10, 1, 1, 1]) / 13
    dc_gain = np.prod([1 / np.sqrt(power[0] + power[i] * t ** 2 + (1 - power[0] - power[i])) for i in [1, 2, 3]])
    assert torch.allclose(y, torch.full_like(x, 0.5 * dc_gain ** 2), atol=1e-5)


def test_noise():
    x = torch.zeros([1, 3, 64, 64])
    pipe = AugmentPipe(noise=1)
    torch.manual_seed(0)
    y = pipe(x, debug_percentile=0.6)
    sigma = 0.1 * torch.erfinv(torch.tensor(0.6)).item() # half-normal percentile
    assert y.std().item() == pytest.approx(sigma, rel=0.05)
    torch.manual_seed(0)
    assert torch.equal(pipe(x, debug_percentile=0.6), y)


@pytest.mark.parametrize('dp,h,w,rows,cols', [(0.5, 16, 16, (4, 12), (4, 12)), (0.25, 16, 24, (0, 8), (0, 12))])
def test_cutout(dp, h, w, rows, cols):
    # Box of half the image size centred at (dp, dp) in unit coordinates; a pixel is cut if its centre is inside.
    x = torch.ones([2, 3, h, w])
    y = AugmentPipe(cutout=1, cutout_size=0.5)(x, debug_percentile=dp)
    expected = torch.ones_like(x)
    expected[:, :, rows[0]:rows[1], cols[0]:cols[1]] = 0
    assert torch.equal(y, expected)


#----------------------------------------------------------------------------
# Differentiability.

@pytest.mark.parametrize('debug_percentile', [None, 0.7])
def test_gradcheck(debug_percentile):
    # Re-seed inside so that every evaluation draws the same augmentation (noise is random even in debug mode).
    pipe = AugmentPipe(**augpipe_specs['bgcfnc'])
    def fn(v):
        torch.manual_seed(4)
        return pipe(v, debug_percentile=debug_percentile)
    x = _images(n=2, c=3, h=8, w=8, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(fn, [x], fast_mode=True)


def test_gradients_reach_input():
    pipe = AugmentPipe(**augpipe_specs['bgcfnc'])
    x = _images(n=4, h=16, w=16).requires_grad_(True)
    torch.manual_seed(2)
    pipe(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
