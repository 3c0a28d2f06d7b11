"""upfirdn2d and its wrappers against the plain zero-insert / pad / convolve / decimate formulation."""

import itertools
import warnings

import numpy as np
import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import upfirdn2d
from .plain_ops import plain_upfirdn2d, pads, pair

FILTERS = {
    'none': lambda: None,
    'binomial4': lambda: upfirdn2d.setup_filter([1, 3, 3, 1]),                        # 4x4, as in the networks
    'asym2d': lambda: upfirdn2d.setup_filter([[1., 2.], [-3., 4.], [5., 0.5]], normalize=False),
    'sep8': lambda: upfirdn2d.setup_filter([1., -2., 3., 7., 2., 5., -1., 4.]),         # separable (>= 8 taps)
    'sep3': lambda: upfirdn2d.setup_filter([1., 2., 5.], separable=True),
}
PADDINGS = [0, [2, 1], [1, -2, 3, 0]]


def _rand(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _out_size(size, up, down, p0, p1, taps):
    return (size * up + p0 + p1 - taps) // down + 1


@pytest.mark.parametrize('fname', sorted(FILTERS))
@pytest.mark.parametrize('up,down', [(1, 1), (2, 1), (1, 2), (3, 2), ([1, 3], [2, 1])])
def test_matches_plain_formulation(fname, up, down):
    f = FILTERS[fname]()
    fh = 1 if f is None else f.shape[0]
    fw = 1 if f is None else f.shape[-1]
    for seed, (padding, flip, gain) in enumerate(itertools.product(PADDINGS, [False, True], [1, 2.5])):
        x0, x1, y0, y1 = pads(padding)
        (upx, upy), (downx, downy) = pair(up), pair(down)
        if min(_out_size(7, upy, downy, y0, y1, fh), _out_size(6, upx, downx, x0, x1, fw)) < 1:
            continue
        x = _rand(2, 3, 7, 6, seed=seed).requires_grad_()
        ours = upfirdn2d.upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain, impl='ref')
        ref = plain_upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=gain)
        what = f'filter={fname} up={up} down={down} padding={padding} flip={flip} gain={gain}'
        assert ours.shape == ref.shape, what
        torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-10, msg=what)
        dy = _rand(*ref.shape, seed=seed + 1000)
        g_ours, = torch.autograd.grad(ours, x, dy)
        g_ref, = torch.autograd.grad(ref, x, dy)
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-10, atol=1e-10, msg=what)


@pytest.mark.parametrize('fname', ['binomial4', 'sep8', 'asym2d'])
def test_higher_order_gradients(fname):
    # The op is linear, y = A x, so the input gradient is A^T dy and differentiating <A^T dy, q> with
    # respect to dy must give A q: the double backward has to reproduce the forward op.
    f = FILTERS[fname]()
    for seed, (up, down, padding) in enumerate([(2, 1, [2, 1]), (1, 2, [1, 2, 0, 3]), ([2, 1], [1, 3], [0, -1, 3, 1])]):
        op = lambda t: upfirdn2d.upfirdn2d(t, f, up=up, down=down, padding=padding, flip_filter=True, gain=1.5)
        x = _rand(2, 2, 7, 6, seed=seed).requires_grad_()
        y = op(x)
        dy = _rand(*y.shape, seed=seed + 1).requires_grad_()
        g, = torch.autograd.grad(y, x, dy, create_graph=True)
        q = _rand(*x.shape, seed=seed + 2).requires_grad_()
        gg, = torch.autograd.grad(g, dy, q, create_graph=True)
        torch.testing.assert_close(gg, op(q))
        ggg, = torch.autograd.grad(gg, q, dy) # and once more: back to A^T dy
        torch.testing.assert_close(ggg, g)
    x = _rand(1, 1, 3, 4, seed=0).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda t: upfirdn2d.upfirdn2d(t, f, up=2, down=[1, 2], padding=[1, 0, 2, 1]), (x,))


def test_float32_and_channels_last():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = _rand(2, 4, 8, 8, seed=1)
    ref = plain_upfirdn2d(x, f, up=2, down=1, padding=[2, 1])
    for xx in [x.float(), x.float().to(memory_format=torch.channels_last)]:
        y = upfirdn2d.upfirdn2d(xx, f, up=2, padding=[2, 1])
        assert y.dtype == torch.float32
        torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-5)


def test_output_can_be_modified_in_place():
    # Networks add the skip branch into an upsample2d() result in place before calling backward.
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    for f_, kwargs in [(f, dict(up=2, padding=[2, 1])), (None, dict(down=2)), (None, dict(padding=[1, -1, 0, 0]))]:
        x = _rand(1, 2, 6, 6, seed=2).requires_grad_()
        y = upfirdn2d.upfirdn2d(x, f_, **kwargs)
        y.add_(1)
        y.sum().backward()
        ref, = torch.autograd.grad(plain_upfirdn2d(x, f_, **kwargs).sum(), x)
        torch.testing.assert_close(x.grad, ref)

#----------------------------------------------------------------------------
# Wrappers: the padding that centres the filter, and the gain that keeps a constant image constant.

@pytest.mark.parametrize('fname', ['binomial4', 'sep8', 'sep3', 'none'])
def test_wrappers_match_upfirdn2d_with_centring_padding(fname):
    f = FILTERS[fname]()
    fh = 1 if f is None else f.shape[0]
    fw = 1 if f is None else f.shape[-1]
    x = _rand(1, 2, 9, 8, seed=4)
    for k, extra, flip, gain in itertools.product([2, 3], [0, [1, -1, 2, 0]], [False, True], [1, 3.0]):
        e = pads(extra)
        kw = dict(flip_filter=flip, gain=gain)
        y = upfirdn2d.filter2d(x, f, padding=extra, **kw)
        p = [e[0] + fw // 2, e[1] + (fw - 1) // 2, e[2] + fh // 2, e[3] + (fh - 1) // 2]
        torch.testing.assert_close(y, plain_upfirdn2d(x, f, padding=p, **kw))
        y = upfirdn2d.upsample2d(x, f, up=k, padding=extra, **kw)
        p = [e[0] + (fw + k - 1) // 2, e[1] + (fw - k) // 2, e[2] + (fh + k - 1) // 2, e[3] + (fh - k) // 2]
        torch.testing.assert_close(y, plain_upfirdn2d(x, f, up=k, padding=p, flip_filter=flip, gain=gain * k * k))
        y = upfirdn2d.downsample2d(x, f, down=k, padding=extra, **kw)
        p = [e[0] + (fw - k + 1) // 2, e[1] + (fw - k) // 2, e[2] + (fh - k + 1) // 2, e[3] + (fh - k) // 2]
        torch.testing.assert_close(y, plain_upfirdn2d(x, f, down=k, padding=p, **kw))


def test_wrappers_keep_size_and_level():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    x = torch.full([1, 1, 8, 8], 3.0, dtype=torch.float64)
    y = upfirdn2d.filter2d(x, f)
    assert y.shape == x.shape
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], x[:, :, 2:-2, 2:-2])
    y = upfirdn2d.upsample2d(x, f)
    assert y.shape == (1, 1, 16, 16)
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], torch.full_like(y[:, :, 2:-2, 2:-2], 3.0))
    y = upfirdn2d.downsample2d(x, f)
    assert y.shape == (1, 1, 4, 4)
    torch.testing.assert_close(y[:, :, 1:-1, 1:-1], torch.full_like(y[:, :, 1:-1, 1:-1], 3.0))

#----------------------------------------------------------------------------

def test_setup_filter():
    f = upfirdn2d.setup_filter([1, 3, 3, 1])
    assert f.dtype == torch.float32 and f.shape == (4, 4)
    torch.testing.assert_close(f, torch.outer(torch.tensor([1., 3, 3, 1]), torch.tensor([1., 3, 3, 1])) / 64)
    assert upfirdn2d.setup_filter(list(range(1, 9))).shape == (8,)              # >= 8 taps: separable
    assert upfirdn2d.setup_filter(list(range(1, 9)), separable=False).shape == (8, 8)
    assert upfirdn2d.setup_filter([1, 2, 3], separable=True).shape == (3,)
    assert upfirdn2d.setup_filter(None).shape == (1, 1)
    torch.testing.assert_close(upfirdn2d.setup_filter(5.0, normalize=False), torch.tensor([[25.]]))
    torch.testing.assert_close(upfirdn2d.setup_filter([1, 2, 5], normalize=False, flip_filter=True, separable=True),
        torch.tensor([5., 2., 1.]))
    # The gain is spread over the dimensions, so a separable filter carries its square root per axis.
    torch.testing.assert_close(upfirdn2d.setup_filter([1, 1], gain=4), torch.full([2, 2], 1.0))
    torch.testing.assert_close(upfirdn2d.setup_filter([1, 1], gain=4, separable=True), torch.full([2], 1.0))
    t = torch.tensor([1., 2, 3, 4, 5, 6, 7, 8])
    upfirdn2d.setup_filter(t)
    assert t.sum() == 36 # the caller's tensor is left alone
    with pytest.raises(ValueError):
        upfirdn2d.setup_filter([[1, 2], [3, 4]], separable=True)


def test_bad_arguments_raise():
    x = torch.zeros([1, 1, 4, 4])
    with pytest.raises(ValueError, match='impl'):
        upfirdn2d.upfirdn2d(x, None, impl='triton')
    with pytest.raises(ValueError, match='4-D'):
        upfirdn2d.upfirdn2d(torch.zeros([4, 4]), None)
    with pytest.raises(ValueError, match='padding'):
        upfirdn2d.upfirdn2d(x, None, padding=[1, 2, 3])
    with pytest.raises(ValueError, match='>= 1'):
        upfirdn2d.upfirdn2d(x, None, up=0)
    with pytest.raises(ValueError, match='float32'):
        upfirdn2d.upfirdn2d(x, torch.ones([2, 2], dtype=torch.float64))
    with pytest.raises(ValueError, match='filter'):
        upfirdn2d.upfirdn2d(x, torch.ones([2, 2]).requires_grad_())

#----------------------------------------------------------------------------
# CUDA plugin: build failure, and the Python side of the plugin path driven by a stand-in plugin.

@pytest.fixture
def fresh_plugin_state(monkeypatch):
    monkeypatch.setattr(upfirdn2d, '_plugin', None)
    monkeypatch.setattr(upfirdn2d._lazy_plugin, 'tried', False)
    monkeypatch.setattr(upfirdn2d._lazy_plugin, 'module', None)


def test_cpu_tensors_never_build_the_plugin(fresh_plugin_state, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError('get_plugin must not be called for CPU tensors')
    monkeypatch.setattr(custom_ops, 'get_plugin', fail)
    upfirdn2d.upfirdn2d(torch.zeros([1, 1, 4, 4]), upfirdn2d.setup_filter([1, 1]), impl='cuda')


def test_failed_build_warns_once_and_falls_back(fresh_plugin_state, monkeypatch):
    calls = []
    def fail(module_name, sources, **kwargs):
        calls.append((module_name, sources, kwargs))
        raise RuntimeError('nvcc not found')
    monkeypatch.setattr(custom_ops, 'get_plugin', fail)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert upfirdn2d._init() is False
        assert upfirdn2d._init() is False
    assert len(calls) == 1
    name, sources, kwargs = calls[0]
    assert name == 'sgsom_upfirdn2d_plugin' and sources == ['upfirdn2d.cpp', 'upfirdn2d.cu']
    assert kwargs['headers'] == ['upfirdn2d.h'] and kwargs['extra_cuda_cflags'] == ['--use_fast_math']
    assert kwargs['source_dir'].endswith('ops')
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1 and 'upfirdn2d' in msgs[0] and 'nvcc not found' in msgs[0]


class _StandInPlugin:
    """Implements the binding's contract (2-D float32 filter, gain applied once) with the plain formulation."""
    def __init__(self):
        self.calls = 0

    def upfirdn2d(self, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
        assert f.ndim == 2 and f.dtype == torch.float32 and not torch.is_grad_enabled()
        self.calls += 1
        return plain_upfirdn2d(x, f, up=[upx, upy], down=[downx, downy], padding=[padx0, padx1, pady0, pady1],
            flip_filter=flip, gain=gain)


@pytest.mark.parametrize('fname', ['binomial4', 'sep8', 'none'])
def test_plugin_path_python_side(fresh_plugin_state, monkeypatch, fname):
    plugin = _StandInPlugin()
    monkeypatch.setattr(upfirdn2d, '_plugin', plugin)
    f = FILTERS[fname]()
    for up, down, padding in [(2, 1, [2, 1]), (1, 2, 1), ([1, 2], [3, 1], [0, 2, -1, 1])]:
        x = _rand(2, 2, 7, 6, seed=9).requires_grad_()
        y = upfirdn2d._upfirdn2d_cuda(up=up, down=down, padding=padding, flip_filter=True, gain=2.0).apply(x, f)
        ref = plain_upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=True, gain=2.0)
        torch.testing.assert_close(y, ref)
        dy = _rand(*ref.shape, seed=10).requires_grad_()
        g, = torch.autograd.grad(y, x, dy, create_graph=True)
        g_ref, = torch.autograd.grad(ref, x, dy, create_graph=True)
        torch.testing.assert_close(g, g_ref)
        q = _rand(*g.shape, seed=11)
        torch.testing.assert_close(torch.autograd.grad(g, dy, q)[0], torch.autograd.grad(g_ref, dy, q)[0])
    assert plugin.calls > 0
