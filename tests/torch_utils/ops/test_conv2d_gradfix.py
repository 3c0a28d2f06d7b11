"""conv2d_gradfix against torch.nn.functional: values, gradients, gradients of gradients, no_weight_gradients()."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import conv2d_gradfix


@pytest.fixture
def gradfix_on(monkeypatch):
    monkeypatch.setattr(conv2d_gradfix, 'enabled', True)
    monkeypatch.setattr(conv2d_gradfix, 'weight_gradients_disabled', False)


def _rand(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _cases():
    # (transpose, stride, padding, output_padding, dilation, groups, bias)
    for transpose, stride, padding, dilation, groups, bias in itertools.product(
            [False, True], [1, 2, (2, 1)], [0, 1, (2, 1)], [1, 2], [1, 2], [False, True]):
        for output_padding in ([0, 1 if stride == 2 else (1, 0)] if transpose and stride != 1 else [0]):
            yield transpose, stride, padding, output_padding, dilation, groups, bias


def _conv(ours, transpose, x, w, b, stride, padding, output_padding, dilation, groups):
    if transpose:
        op = conv2d_gradfix.conv_transpose2d if ours else F.conv_transpose2d
        return op(x, w, b, stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    op = conv2d_gradfix.conv2d if ours else F.conv2d
    return op(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def test_matches_torch_up_to_second_order(gradfix_on):
    for seed, (transpose, stride, padding, output_padding, dilation, groups, bias) in enumerate(_cases()):
        what = f'transpose={transpose} stride={stride} padding={padding} output_padding={output_padding} dilation={dilation} groups={groups} bias={bias}'
        x = _rand(2, 4, 7, 6, seed=seed).requires_grad_()
        w = _rand(*((4, 6 // groups) if transpose else (6, 4 // groups)), 3, 2, seed=seed + 1).requires_grad_()
        b = _rand(6, seed=seed + 2).requires_grad_() if bias else None
        ins = [x, w] + ([b] if bias else [])
        args = (x, w, b, stride, padding, output_padding, dilation, groups)
        y, y_ref = _conv(True, transpose, *args), _conv(False, transpose, *args)
        assert y.grad_fn is not None and 'Conv2d' in type(y.grad_fn).__name__, what # the custom op ran
        torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10, msg=what)
        dy = _rand(*y.shape, seed=seed + 3).requires_grad_()
        g = torch.autograd.grad(y, ins, dy, create_graph=True)
        g_ref = torch.autograd.grad(y_ref, ins, dy, create_graph=True)
        for a, r in zip(g, g_ref):
            torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10, msg=what)
        # Second order through both the input and the weight gradient, including w.r.t. dy.
        q = [_rand(*t.shape, seed=seed + 4 + i) for i, t in enumerate(g)]
        loss = sum((a * c).sum() for a, c in zip(g, q))
        loss_ref = sum((a * c).sum() for a, c in zip(g_ref, q))
        targets = ins + [dy]
        gg = torch.autograd.grad(loss, targets, allow_unused=True)
        gg_ref = torch.autograd.grad(loss_ref, targets, allow_unused=True)
        for a, r, t in zip(gg, gg_ref, targets):
            a = torch.zeros_like(t) if a is None else a
            r = torch.zeros_like(t) if r is None else r
            torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10, msg=what)


def test_gradgradcheck(gradfix_on):
    x = _rand(1, 2, 4, 3, seed=0).requires_grad_()
    w = _rand(2, 2, 2, 2, seed=1).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda x, w: conv2d_gradfix.conv2d(x, w, stride=2, padding=1), (x, w))
    assert torch.autograd.gradgradcheck(lambda x, w: conv2d_gradfix.conv_transpose2d(x, w, stride=2, output_padding=1), (x, w))


def test_no_weight_gradients(gradfix_on):
    x = _rand(2, 3, 5, 5, seed=0).requires_grad_()
    w = _rand(4, 3, 3, 3, seed=1).requires_grad_()
    with conv2d_gradfix.no_weight_gradients():
        assert conv2d_gradfix.weight_gradients_disabled
        y = conv2d_gradfix.conv2d(x, w, padding=1)
        gx, gw = torch.autograd.grad(y.square().sum(), [x, w], create_graph=True, allow_unused=True)
    assert gw is None and not conv2d_gradfix.weight_gradients_disabled
    # R1: the input gradient taken without weight gradients, then the penalty differentiated w.r.t. w.
    y_ref = F.conv2d(x, w, padding=1)
    gx_ref, = torch.autograd.grad(y_ref.square().sum(), x, create_graph=True)
    torch.testing.assert_close(gx, gx_ref)
    penalty_w, = torch.autograd.grad(gx.square().sum(), w)
    penalty_w_ref, = torch.autograd.grad(gx_ref.square().sum(), w)
    torch.testing.assert_close(penalty_w, penalty_w_ref)


def test_no_weight_gradients_restores_flag_on_error(gradfix_on):
    with pytest.raises(KeyError):
        with conv2d_gradfix.no_weight_gradients():
            raise KeyError('boom')
    assert not conv2d_gradfix.weight_gradients_disabled
    with conv2d_gradfix.no_weight_gradients(disable=False):
        assert not conv2d_gradfix.weight_gradients_disabled


def test_disabled_uses_torch(monkeypatch):
    monkeypatch.setattr(conv2d_gradfix, 'enabled', False)
    x = _rand(1, 2, 4, 4, seed=0).requires_grad_()
    w = _rand(3, 2, 3, 3, seed=1)
    y = conv2d_gradfix.conv2d(x, w, padding=1)
    assert 'Convolution' in type(y.grad_fn).__name__
    torch.testing.assert_close(y, F.conv2d(x, w, padding=1))


def test_string_padding_and_float32_channels_last(gradfix_on):
    x = _rand(2, 4, 6, 5, seed=0).float()
    w = _rand(8, 4, 3, 3, seed=1).float()
    torch.testing.assert_close(conv2d_gradfix.conv2d(x, w, padding='same'), F.conv2d(x, w, padding='same'))
    xc = x.to(memory_format=torch.channels_last).requires_grad_()
    y = conv2d_gradfix.conv2d(xc, w, stride=2)
    torch.testing.assert_close(y, F.conv2d(x, w, stride=2))
    g, = torch.autograd.grad(y.sum(), xc)
    torch.testing.assert_close(g, torch.autograd.grad(F.conv2d(xc, w, stride=2).sum(), xc)[0])
