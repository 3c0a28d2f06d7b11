"""fma(a, b, c) against a * b + c, with broadcasting in every operand."""

import pytest
import torch

from torch_utils.ops import fma

SHAPES = [
    ((2, 3, 4), (2, 3, 4), (2, 3, 4)),
    ((2, 3, 1), (3, 4), (1, 1, 4)),       # broadcast dims of size 1 and missing leading dims
    ((4,), (2, 3, 1), (3, 4)),
    ((5, 1, 3, 1), (1, 2, 1, 1), (2, 3, 1)),
    ((), (2, 2), (1,)),
]


def _rand(shape, seed):
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize('sa,sb,sc', SHAPES)
def test_matches_plain_formulation(sa, sb, sc):
    a, b, c = (_rand(s, i).requires_grad_() for i, s in enumerate([sa, sb, sc]))
    y = fma.fma(a, b, c)
    y_ref = a * b + c
    torch.testing.assert_close(y, y_ref)
    dy = _rand(y.shape, 7).requires_grad_()
    g = torch.autograd.grad(y, [a, b, c], dy, create_graph=True)
    g_ref = torch.autograd.grad(y_ref, [a, b, c], dy, create_graph=True)
    for t, x, r in zip([a, b, c], g, g_ref):
        assert x.shape == t.shape
        torch.testing.assert_close(x, r)
    # Second order (the penalty of a gradient), including w.r.t. dy.
    loss = (g[0] * _rand(sa, 8)).sum() + (g[1] * _rand(sb, 9)).sum()
    loss_ref = (g_ref[0] * _rand(sa, 8)).sum() + (g_ref[1] * _rand(sb, 9)).sum()
    for x, r in zip(torch.autograd.grad(loss, [a, b, dy]), torch.autograd.grad(loss_ref, [a, b, dy])):
        torch.testing.assert_close(x, r)


def test_only_requested_gradients():
    a, b = _rand((2, 3), 0).requires_grad_(), _rand((2, 3), 1)
    c = _rand((1, 3), 2)
    y = fma.fma(a, b, c)
    y.sum().backward()
    torch.testing.assert_close(a.grad, b)
    assert b.grad is None and c.grad is None
