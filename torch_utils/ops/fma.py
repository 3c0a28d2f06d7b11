"""Fused multiply-add a * b + c with broadcasting, whose backward only computes the gradients asked for."""

import torch

#----------------------------------------------------------------------------

def fma(a, b, c): # => a * b + c
    return _FusedMultiplyAdd.apply(a, b, c)

#----------------------------------------------------------------------------

class _FusedMultiplyAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, c): # pylint: disable=arguments-differ
        ctx.save_for_backward(a, b)
        ctx.shape_c = c.shape
        return torch.addcmul(c, a, b)

    @staticmethod
    def backward(ctx, dout): # pylint: disable=arguments-differ
        a, b = ctx.saved_tensors
        da = db = dc = None
        if ctx.needs_input_grad[0]:
            da = _sum_to_shape(dout * b, a.shape)
        if ctx.needs_input_grad[1]:
            db = _sum_to_shape(dout * a, b.shape)
        if ctx.needs_input_grad[2]:
            dc = _sum_to_shape(dout, ctx.shape_c)
        return da, db, dc

#----------------------------------------------------------------------------

def _sum_to_shape(x, shape):
    """Undo broadcasting: sum `x` over the leading dims and the dims where `shape` has size 1."""
    lead = x.ndim - len(shape)
    assert lead >= 0
    dims = [i for i in range(x.ndim) if x.shape[i] != 1 and (i < lead or shape[i - lead] == 1)]
    if dims:
        x = x.sum(dim=dims, keepdim=True)
    if lead:
        x = x.reshape(shape)
    assert x.shape == shape
    return x

#----------------------------------------------------------------------------
