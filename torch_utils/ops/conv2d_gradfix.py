"""Drop-in replacements for torch.nn.functional.conv2d() / conv_transpose2d() with a hand-written
backward that is itself made of these ops, so gradients of any order work, and whose weight gradient
can be switched off (no_weight_gradients()) while computing input gradients for a gradient penalty.

Built on torch.convolution() and aten.convolution_backward(), which exist on CPU and CUDA in
PyTorch 2.x. While `enabled` is False (the default) the plain PyTorch ops are called.
"""

import contextlib
import torch

# pylint: disable=redefined-builtin
# pylint: disable=arguments-differ

#----------------------------------------------------------------------------

enabled = False                     # Use the custom op (the training loop turns this on).
weight_gradients_disabled = False   # Skip gradients w.r.t. the weights (set by no_weight_gradients()).

@contextlib.contextmanager
def no_weight_gradients(disable=True):
    """Within this block, convolutions made by this module give no gradient to their weights."""
    global weight_gradients_disabled
    old = weight_gradients_disabled
    if disable:
        weight_gradients_disabled = True
    try:
        yield
    finally:
        weight_gradients_disabled = old

#----------------------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if _should_use_custom_op(input, padding):
        cfg = _make_cfg(False, stride, padding, 0, dilation, groups)
        return _Conv2d.apply(input, weight, bias, cfg)
    return torch.nn.functional.conv2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding,
        dilation=dilation, groups=groups)

def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    if _should_use_custom_op(input, padding):
        cfg = _make_cfg(True, stride, padding, output_padding, dilation, groups)
        return _Conv2d.apply(input, weight, bias, cfg)
    return torch.nn.functional.conv_transpose2d(input=input, weight=weight, bias=bias, stride=stride,
        padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)

#----------------------------------------------------------------------------

def _should_use_custom_op(input, padding):
    if not isinstance(input, torch.Tensor):
        raise TypeError(f'conv2d_gradfix: input must be a torch.Tensor, got {type(input).__name__}')
    # String padding ('same'/'valid') is left to PyTorch, which resolves it itself.
    return enabled and not isinstance(padding, str)

def _pair(v, name):
    v = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(v) != 2 or not all(isinstance(i, int) for i in v):
        raise ValueError(f'conv2d_gradfix: {name} must be an int or a pair of ints, got {v!r}')
    return v

def _make_cfg(transpose, stride, padding, output_padding, dilation, groups):
    stride = _pair(stride, 'stride')
    padding = _pair(padding, 'padding')
    output_padding = _pair(output_padding, 'output_padding')
    dilation = _pair(dilation, 'dilation')
    if not (isinstance(groups, int) and groups >= 1):
        raise ValueError(f'conv2d_gradfix: groups must be a positive int, got {groups!r}')
    if min(stride) < 1 or min(padding) < 0 or min(dilation) < 1:
        raise ValueError(f'conv2d_gradfix: bad stride {stride}, padding {padding} or dilation {dilation}')
    return (transpose, stride, padding, output_padding, dilation, groups)

def _input_grad_cfg(cfg, input_shape, output_shape, weight_shape):
    # The input gradient of a conv is the transposed conv with the same weight, and vice versa. When going
    # to a transposed conv, output_padding restores the input rows/columns the stride skipped over.
    transpose, stride, padding, _, dilation, groups = cfg
    if transpose:
        output_padding = (0, 0)
    else:
        output_padding = tuple(input_shape[i + 2] - (output_shape[i + 2] - 1) * stride[i] + 2 * padding[i]
            - dilation[i] * (weight_shape[i + 2] - 1) - 1 for i in range(2))
    return (not transpose, stride, padding, output_padding, dilation, groups)

def _run(input, weight, bias, cfg):
    transpose, stride, padding, output_padding, dilation, groups = cfg
    return torch.convolution(input, weight, bias, stride, padding, dilation, transpose, output_padding, groups)

#----------------------------------------------------------------------------

class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, weight, bias, cfg):
        ctx.save_for_backward(input, weight)
        ctx.cfg = cfg
        return _run(input, weight, bias, cfg)

    @staticmethod
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        cfg = ctx.cfg
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = _Conv2d.apply(grad_output, weight, None,
                _input_grad_cfg(cfg, input.shape, grad_output.shape, weight.shape))
            assert grad_input.shape == input.shape
        if ctx.needs_input_grad[1] and not weight_gradients_disabled:
            grad_weight = _Conv2dGradWeight.apply(grad_output, input, weight.detach(), cfg)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum([0, 2, 3])
        return grad_input, grad_weight, grad_bias, None

class _Conv2dGradWeight(torch.autograd.Function):
    # grad_weight is bilinear in (grad_output, input), so both of its derivatives are convolutions again.
    @staticmethod
    def forward(ctx, grad_output, input, weight, cfg):
        transpose, stride, padding, output_padding, dilation, groups = cfg
        _, grad_weight, _ = torch.ops.aten.convolution_backward(grad_output, input, weight, None, stride, padding,
            dilation, transpose, output_padding, groups, [False, True, False])
        ctx.save_for_backward(grad_output, input)
        ctx.cfg = cfg
        return grad_weight

    @staticmethod
    def backward(ctx, gg_weight):
        grad_output, input = ctx.saved_tensors
        cfg = ctx.cfg
        gg_output = gg_input = None
        if ctx.needs_input_grad[0]:
            gg_output = _Conv2d.apply(input, gg_weight, None, cfg)
        if ctx.needs_input_grad[1]:
            gg_input = _Conv2d.apply(grad_output, gg_weight, None,
                _input_grad_cfg(cfg, input.shape, grad_output.shape, gg_weight.shape))
        return gg_output, gg_input, None, None

#----------------------------------------------------------------------------
