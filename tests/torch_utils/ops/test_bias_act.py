"""bias_act against activations written out by hand: values, first- and second-order gradients."""

import itertools
import math
import warnings

import pytest
import torch

from torch_utils import custom_ops
from torch_utils.ops import bias_act

SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA = 1.6732632423543772848170429916717

# name -> (f(v, alpha), default alpha, default gain)
PLAIN = {
    'linear':   (lambda v, a: v,                                                        0.0, 1.0),
    'relu':     (lambda v, a: torch.where(v > 0, v, torch.zeros_like(v)),               0.0, math.sqrt(2)),
    'lrelu':    (lambda v, a: torch.where(v > 0, v, v * a),                             0.2, math.sqrt(2)),
    'tanh':     (lambda v, a: (torch.exp(2 * v) - 1) / (torch.exp(2 * v) + 1),          0.0, 1.0),
    'sigmoid':  (lambda v, a: 1 / (1 + torch.exp(-v)),                                  0.0, 1.0),
    'elu':      (lambda v, a: torch.where(v > 0, v, torch.exp(v) - 1),                  0.0, 1.0),
    'selu':     (lambda v, a: SELU_SCALE * torch.where(v > 0, v, SELU_ALPHA * (torch.exp(v) - 1)), 0.0, 1.0),
    'softplus': (lambda v, a: torch.log(1 + torch.exp(v)),                              0.0, 1.0),
    'swish':    (lambda v, a: v / (1 + torch.exp(-v)),                                  0.0, math.sqrt(2)),
}


def plain_bias_act(x, b, dim, act, alpha, gain, clamp):
    f, def_alpha, def_gain = PLAIN[act]
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = f(x, def_alpha if alpha is None else alpha) * (def_gain if gain is None else gain)
    return x if clamp is None else torch.clamp(x, -clamp, clamp)


def _rand(*shape, seed, scale=1.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale


def _check_against_plain(fn, act, use_b, shape, dim, alpha, gain, clamp, seed, second_order=True):
    """Forward, gradients w.r.t. x and b, and gradients of a gradient penalty w.r.t. x, b and dy."""
    what = f'act={act} b={use_b} shape={shape} dim={dim} alpha={alpha} gain={gain} clamp={clamp}'
    x = _rand(*shape, seed=seed, scale=2).requires_grad_()
    b = _rand(shape[dim], seed=seed + 1).requires_grad_() if use_b else None
    ins = [x] + ([b] if use_b else [])
    y = fn(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    y_ref = plain_bias_act(x, b, dim, act, alpha, gain, clamp)
    assert y.shape == x.shape and y.dtype == x.dtype, what
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10, msg=what)

    dy = _rand(*shape, seed=seed + 2).requires_grad_()
    g = torch.autograd.grad(y, ins, dy, create_graph=True)
    g_ref = torch.autograd.grad(y_ref, ins, dy, create_graph=True)
    for a, r in zip(g, g_ref):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10, msg=what)
    if not second_order:
        return
    # Second order, as in R1: differentiate a function of the input gradient, also w.r.t. dy.
    q = _rand(*shape, seed=seed + 3)
    targets = ins + [dy]
    gg = torch.autograd.grad((g[0] * q).sum(), targets, allow_unused=True)
    gg_ref = torch.autograd.grad((g_ref[0] * q).sum(), targets, allow_unused=True)
    for a, r in zip(gg, gg_ref):
        a = torch.zeros_like(targets[0]) if a is None else a
        r = torch.zeros_like(a) if r is None else r
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-9, msg=what)


@pytest.mark.parametrize('act', sorted(PLAIN))
def test_matches_plain_formulation(act):
    grid = itertools.product([False, True], [((3, 4, 5, 2), 1), ((6, 4), 0)], [None, 0.3], [None, 0.6], [None, 0.4])
    for seed, (use_b, (shape, dim), alpha, gain, clamp) in enumerate(grid):
        if alpha is not None and act != 'lrelu':
            continue
        _check_against_plain(bias_act.bias_act, act, use_b, shape, dim, alpha, gain, clamp, seed * 10)


@pytest.mark.parametrize('act,alpha,gain', [('lrelu', -0.5, None), ('lrelu', 0.2, -1.5), ('relu', None, -1.0),
    ('linear', None, -2.0), ('tanh', None, 0.0)])
def test_unusual_signs(act, alpha, gain):
    # Negative slopes/gains cannot use the fused piecewise-linear path; results must still be right.
    for clamp in [None, 0.5]:
        _check_against_plain(bias_act.bias_act, act, True, (2, 3, 4), 1, alpha, gain, clamp, 7)


def test_float32_and_channels_last():
    x = _rand(2, 5, 4, 3, seed=1)
    b = _rand(5, seed=2)
    ref = plain_bias_act(x, b, 1, 'lrelu', None, None, 1.0)
    for xx in [x.float(), x.float().to(memory_format=torch.channels_last)]:
        y = bias_act.bias_act(xx, b.float(), act='lrelu', clamp=1.0)
        assert y.dtype == torch.float32
        torch.testing.assert_close(y.double(), ref, rtol=1e-6, atol=1e-6)
    y = bias_act.bias_act(x.float().to(memory_format=torch.channels_last), b.float(), act='lrelu')
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_defaults_and_table():
    funcs = bias_act.activation_funcs
    assert sorted(funcs) == sorted(PLAIN)
    for name, (_, def_alpha, def_gain) in PLAIN.items():
        spec = funcs[name]
        assert spec.def_alpha == def_alpha and spec.def_gain == pytest.approx(def_gain)
        assert spec.ref in ('', 'x', 'y') and isinstance(spec.has_2nd_grad, bool)
    assert [funcs[n].cuda_idx for n in ['linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus', 'swish']] \
        == list(range(1, 10))
    x = _rand(3, 4, seed=0)
    assert bias_act.bias_act(x) is x # nothing to do


def test_skip_branch_output_can_be_modified_in_place():
    # The resnet blocks do `x = y.add_(x)` on a linear, clamped, bias-free bias_act() output.
    x = _rand(2, 3, 4, 4, seed=3, scale=3).requires_grad_()
    y = bias_act.bias_act(x, None, act='linear', gain=math.sqrt(0.5), clamp=1.0)
    y.add_(1.0)
    y.sum().backward()
    ref, = torch.autograd.grad(plain_bias_act(x, None, 1, 'linear', None, math.sqrt(0.5), 1.0).sum(), x)
    torch.testing.assert_close(x.grad, ref)


def test_bad_arguments_raise():
    x = torch.zeros([2, 3])
    with pytest.raises(ValueError, match='unknown activation'):
        bias_act.bias_act(x, act='gelu')
    with pytest.raises(ValueError, match='clamp'):
        bias_act.bias_act(x, act='relu', clamp=-1)
    with pytest.raises(ValueError, match='elements'):
        bias_act.bias_act(x, torch.zeros([2]), dim=1)
    with pytest.raises(ValueError, match='impl'):
        bias_act.bias_act(x, impl='fast')

#----------------------------------------------------------------------------
# CUDA plugin: build failure, and the Python side of the plugin path driven by a stand-in plugin.

@pytest.fixture
def fresh_plugin_state(monkeypatch):
    monkeypatch.setattr(bias_act, '_plugin', None)
    monkeypatch.setattr(bias_act._lazy_plugin, 'tried', False)
    monkeypatch.setattr(bias_act._lazy_plugin, 'module', None)


def test_cpu_tensors_never_build_the_plugin(fresh_plugin_state, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError('get_plugin must not be called for CPU tensors')
    monkeypatch.setattr(custom_ops, 'get_plugin', fail)
    bias_act.bias_act(torch.zeros([2, 3]), torch.zeros([3]), act='lrelu', impl='cuda')


def test_failed_build_warns_once_and_falls_back(fresh_plugin_state, monkeypatch):
    calls = []
    def fail(module_name, sources, **kwargs):
        calls.append((module_name, sources, kwargs))
        raise OSError('ninja is missing')
    monkeypatch.setattr(custom_ops, 'get_plugin', fail)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert bias_act._init() is False
        assert bias_act._init() is False
    assert len(calls) == 1
    name, sources, kwargs = calls[0]
    assert name == 'sgsom_bias_act_plugin' and sources == ['bias_act.cpp', 'bias_act.cu']
    assert kwargs['headers'] == ['bias_act.h'] and kwargs['extra_cuda_cflags'] == ['--use_fast_math']
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 1 and 'bias_act' in msgs[0] and 'ninja is missing' in msgs[0]


class _StandInPlugin:
    """The binding's contract in plain PyTorch. grad=0: the forward value. grad=1: x is the incoming gradient;
    the derivative comes from xref + b when xref is given, else from the sign of yref (relu/lrelu), else it is 1.
    grad=2: x is the gradient of the first pass's output, dy the first pass's incoming gradient. The clamp
    mask needs yref (swish: recomputed from xref); without it nothing is masked (as in the kernel)."""
    def __init__(self):
        self.calls = []

    def bias_act(self, x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp):
        assert not torch.is_grad_enabled()
        name = [n for n, s in bias_act.activation_funcs.items() if s.cuda_idx == act][0]
        self.calls.append((name, grad))
        f = lambda v: PLAIN[name][0](v, alpha)
        bshape = [-1 if i == dim else 1 for i in range(x.ndim)]
        bb = b.reshape(bshape) if b.numel() else 0
        if grad == 0:
            y = f(x + bb) * gain
            return y.clamp(-clamp, clamp) if clamp >= 0 else y
        if xref.numel():
            with torch.enable_grad():
                v = (xref + bb).detach().requires_grad_()
                d1, = torch.autograd.grad(f(v).sum(), v, create_graph=True)
                d2, = torch.autograd.grad(d1.sum(), v) if grad == 2 else (None,)
            deriv = d1 if grad == 1 else d2 * dy
        elif yref.numel():
            assert grad == 1
            deriv = torch.where(yref > 0, torch.ones_like(yref), torch.full_like(yref, alpha if name == 'lrelu' else 0.0))
        else:
            assert grad == 1
            deriv = torch.ones_like(x)
        out = x * gain * deriv
        if name == 'swish' and xref.numel(): # swish keeps x, not y; the kernel recomputes y for the mask
            yref = f(xref + bb) * gain
        if clamp >= 0 and yref.numel():
            out = torch.where(yref.abs() < clamp, out, torch.zeros_like(out))
        return out


@pytest.mark.parametrize('act', sorted(PLAIN))
def test_plugin_path_python_side(fresh_plugin_state, monkeypatch, act):
    plugin = _StandInPlugin()
    monkeypatch.setattr(bias_act, '_plugin', plugin)
    def via_plugin(x, b, dim, act, alpha, gain, clamp):
        return bias_act._bias_act_cuda(dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp).apply(x, b)
    for seed, (use_b, clamp) in enumerate([(True, None), (False, None), (True, 0.4)]):
        if act == 'linear' and clamp is not None:
            continue # the CUDA path does not mask linear gradients at the clamp (nothing is saved for it)
        _check_against_plain(via_plugin, act, use_b, (2, 3, 4, 2), 1, None, None, clamp, seed * 5)
    assert (act, 0) in plugin.calls
    if bias_act.activation_funcs[act].has_2nd_grad:
        assert (act, 2) in plugin.calls
