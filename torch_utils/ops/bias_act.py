"""Fused bias + activation + gain + clamp, with first- and second-order gradients.

Three implementations of one function:
- CUDA plugin (x on a CUDA device, impl='cuda'), built on first use;
- a fused PyTorch path for the piecewise-linear activations (linear/relu/lrelu), which works in place on
  one buffer and reads the gradient's branch off the saved output; its backward is again piecewise
  linear, so double backward (R1 / path-length penalties) stays exact;
- plain PyTorch ops for everything else.
As on the CUDA path, relu/lrelu outputs must not be modified in place before the backward pass (autograd
reports it if they are); linear outputs may be.
"""

import os
import numpy as np
import torch
import torch.nn.functional as F
import dnnlib

from .. import custom_ops

#----------------------------------------------------------------------------
# Supported activations. `ref` says what the CUDA gradient pass reads back: 'x' = the input,
# 'y' = the output, '' = nothing. `has_2nd_grad` = the derivative depends on x (not piecewise constant).

def _act(func, def_alpha, def_gain, cuda_idx, ref, has_2nd_grad):
    return dnnlib.EasyDict(func=func, def_alpha=def_alpha, def_gain=def_gain, cuda_idx=cuda_idx, ref=ref,
        has_2nd_grad=has_2nd_grad)

activation_funcs = {
    'linear':   _act(lambda x, **_: x,                             0,   1,          1, '',  False),
    'relu':     _act(lambda x, **_: F.relu(x),                     0,   np.sqrt(2), 2, 'y', False),
    'lrelu':    _act(lambda x, alpha, **_: F.leaky_relu(x, alpha), 0.2, np.sqrt(2), 3, 'y', False),
    'tanh':     _act(lambda x, **_: torch.tanh(x),                 0,   1,          4, 'y', True),
    'sigmoid':  _act(lambda x, **_: torch.sigmoid(x),              0,   1,          5, 'y', True),
    'elu':      _act(lambda x, **_: F.elu(x),                      0,   1,          6, 'y', True),
    'selu':     _act(lambda x, **_: F.selu(x),                     0,   1,          7, 'y', True),
    'softplus': _act(lambda x, **_: F.softplus(x),                 0,   1,          8, 'y', True),
    'swish':    _act(lambda x, **_: torch.sigmoid(x) * x,          0,   np.sqrt(2), 9, 'x', True),
}

#----------------------------------------------------------------------------
# CUDA plugin, built on first use. A failed build warns once and the PyTorch path takes over for good.

_plugin = None # the loaded module once _init() has succeeded
_lazy_plugin = custom_ops.LazyPlugin('bias_act', lambda: custom_ops.get_plugin('sgsom_bias_act_plugin',
    sources=['bias_act.cpp', 'bias_act.cu'], headers=['bias_act.h'], source_dir=os.path.dirname(__file__),
    extra_cuda_cflags=['--use_fast_math']))

def _init():
    global _plugin
    _plugin = _lazy_plugin.get()
    return _plugin is not None

#----------------------------------------------------------------------------

def bias_act(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None, impl='cuda'):
    r"""Add a bias, apply an activation, scale by a gain and clamp, all optional.

    Args:
        x:      Input tensor of any shape.
        b:      1-D bias with x.shape[dim] elements and x's dtype, or None.
        dim:    The dimension of x that `b` runs along (ignored without b).
        act:    Activation name, see `activation_funcs`; 'linear' = none.
        alpha:  Shape parameter of the activation (lrelu slope), or None for its default.
        gain:   Output scale, or None for the activation's default (sqrt(2) for relu/lrelu/swish).
        clamp:  Clamp the result to [-clamp, +clamp], or None for no clamping.
        impl:   'cuda' (plugin when x is on a CUDA device) or 'ref' (default: 'cuda').

    Returns:
        Tensor of x's shape and dtype. First- and second-order gradients are supported.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'bias_act: x must be a torch.Tensor, got {type(x).__name__}')
    if impl not in ('ref', 'cuda'):
        raise ValueError(f"bias_act: impl must be 'ref' or 'cuda', got {impl!r}")
    if impl == 'cuda' and x.device.type == 'cuda' and _init():
        return _bias_act_cuda(dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp).apply(x, b)
    return _bias_act_ref(x=x, b=b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)

#----------------------------------------------------------------------------

def _resolve(act, alpha, gain, clamp):
    """Fill in the activation's defaults; clamp < 0 means no clamping."""
    if act not in activation_funcs:
        raise ValueError(f'bias_act: unknown activation {act!r}; expected one of {sorted(activation_funcs)}')
    if clamp is not None and not clamp >= 0:
        raise ValueError(f'bias_act: clamp must be None or >= 0, got {clamp!r}')
    spec = activation_funcs[act]
    return (spec, float(spec.def_alpha if alpha is None else alpha), float(spec.def_gain if gain is None else gain),
        -1.0 if clamp is None else float(clamp))

def _check_bias(x, b, dim):
    if b is None:
        return
    if not (isinstance(b, torch.Tensor) and b.ndim == 1):
        raise ValueError('bias_act: b must be a 1-D tensor or None')
    if not 0 <= dim < x.ndim:
        raise ValueError(f'bias_act: dim={dim} is out of range for x of shape {list(x.shape)}')
    if b.shape[0] != x.shape[dim]:
        raise ValueError(f'bias_act: b has {b.shape[0]} elements but x.shape[{dim}] is {x.shape[dim]}')

def _reduce_to_bias(g, dim):
    return g.sum([i for i in range(g.ndim) if i != dim])

def _bias_shape(x, dim):
    return [-1 if i == dim else 1 for i in range(x.ndim)]

def _bias_act_ref(x, b=None, dim=1, act='linear', alpha=None, gain=None, clamp=None):
    """PyTorch implementation of bias_act(); works on any device."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'bias_act: x must be a torch.Tensor, got {type(x).__name__}')
    spec, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    _check_bias(x, b, dim)

    # Nothing but a bias: let autograd handle the add.
    if act == 'linear' and gain == 1 and clamp < 0:
        return x if b is None else x + b.reshape(_bias_shape(x, dim))

    # Piecewise-linear activation with positive gain and slope: the sign of y tells the branch.
    if act in ('linear', 'relu', 'lrelu') and gain > 0 and (act != 'lrelu' or alpha >= 0):
        slope = {'linear': 1.0, 'relu': 0.0, 'lrelu': alpha}[act]
        return _BiasActPiecewise.apply(x, b, (dim, slope, gain, clamp))

    if b is not None:
        x = x + b.reshape(_bias_shape(x, dim))
    x = spec.func(x, alpha=alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x

class _BiasActPiecewise(torch.autograd.Function):
    # y = clamp(gain * act(x + b)); dy/dx = gain * (1 if y > 0 else slope), zeroed where |y| reached clamp.
    # relu/lrelu keep y to read the branch from (as the CUDA path does). linear keeps x and b instead and
    # recomputes the clamp mask, because callers add into linear outputs in place (resnet skips).
    @staticmethod
    def forward(ctx, x, b, cfg): # pylint: disable=arguments-differ
        dim, slope, gain, clamp = cfg
        y = torch.add(x, b.reshape(_bias_shape(x, dim))) if b is not None else x.clone()
        if slope == 0:
            F.relu_(y)
        elif slope != 1:
            F.leaky_relu_(y, slope)
        if gain != 1:
            y.mul_(gain)
        if clamp >= 0:
            y.clamp_(-clamp, clamp)
        if slope != 1:
            ctx.save_for_backward(y)
        elif clamp >= 0:
            ctx.save_for_backward(x, b)
        ctx.cfg = cfg
        return y

    @staticmethod
    def backward(ctx, dy): # pylint: disable=arguments-differ
        dim, slope, gain, clamp = ctx.cfg
        dx = db = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            ref = None
            if slope != 1:
                ref, = ctx.saved_tensors
            elif clamp >= 0:
                x, b = ctx.saved_tensors
                with torch.no_grad(): # the pre-clamp output, computed exactly as in forward()
                    ref = torch.add(x, b.reshape(_bias_shape(x, dim))) if b is not None else x.clone()
                    ref.mul_(gain)
            dx = _BiasActPiecewiseGrad.apply(dy, ref, ctx.cfg)
        if ctx.needs_input_grad[1]:
            db = _reduce_to_bias(dx, dim)
        return dx, db, None

class _BiasActPiecewiseGrad(torch.autograd.Function):
    # dx = dy * s(ref) is linear in dy and s is piecewise constant, so the backward is this same map.
    @staticmethod
    def forward(ctx, dy, ref, cfg): # pylint: disable=arguments-differ
        _, slope, gain, clamp = cfg
        dx = dy
        if slope != 1:
            dx = torch.ops.aten.leaky_relu_backward(dx, ref, slope, True)
        if clamp >= 0:
            dx = torch.ops.aten.hardtanh_backward(dx, ref, -clamp, clamp) # zero where |y| reached clamp
        if dx is dy:
            dx = dy * gain if gain != 1 else dy.clone()
        elif gain != 1:
            dx.mul_(gain)
        ctx.save_for_backward(ref)
        ctx.cfg = cfg
        return dx

    @staticmethod
    def backward(ctx, d_dx): # pylint: disable=arguments-differ
        ref, = ctx.saved_tensors
        d_dy = None
        if ctx.needs_input_grad[0]:
            d_dy = _BiasActPiecewiseGrad.apply(d_dx, ref, ctx.cfg)
        return d_dy, None, None

#----------------------------------------------------------------------------
# CUDA plugin path. Plugin call: bias_act(x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp), where
# empty tensors stand for absent ones and grad selects the value (0), the first (1) or the second (2)
# derivative pass. What a derivative pass can read is decided by the activation's `ref`: relu/lrelu and
# friends read the output y, swish reads x; linear reads nothing, so its gradient is not masked at the
# clamp (this matches the reference CUDA kernels; the PyTorch path does mask it).

def _bias_act_cuda(dim=1, act='linear', alpha=None, gain=None, clamp=None):
    """Returns an object whose .apply(x, b) runs bias_act() through the CUDA plugin."""
    _, alpha, gain, clamp = _resolve(act, alpha, gain, clamp)
    return _CudaApply(_CudaCfg(dim, act, alpha, gain, clamp))

class _CudaCfg:
    def __init__(self, dim, act, alpha, gain, clamp):
        spec = activation_funcs[act]
        self.dim, self.act, self.alpha, self.gain, self.clamp = dim, act, alpha, gain, clamp
        self.code = spec.cuda_idx
        self.keep_x = ('x' in spec.ref) or spec.has_2nd_grad # x (and b) are needed by the derivative passes
        self.keep_y = ('y' in spec.ref)
        self.curved = spec.has_2nd_grad # second derivative not identically zero
        self.identity = (act == 'linear' and gain == 1 and clamp < 0) # apart from the bias

    def run(self, x, b, xref, yref, dy, grad):
        return _plugin.bias_act(x, b, xref, yref, dy, grad, self.dim, self.code, self.alpha, self.gain, self.clamp)

class _CudaApply:
    def __init__(self, cfg):
        self.cfg = cfg

    def apply(self, x, b):
        _check_bias(x, b, self.cfg.dim)
        if b is None and self.cfg.identity:
            return x
        return _BiasActCuda.apply(x, b, self.cfg)

def _layout(t):
    # The kernel walks memory linearly; keep channels_last tensors as they are.
    return torch.channels_last if t.ndim > 2 and t.stride(1) == 1 else torch.contiguous_format

class _BiasActCuda(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, cfg): # pylint: disable=arguments-differ
        ctx.layout = _layout(x)
        ctx.cfg = cfg
        x = x.contiguous(memory_format=ctx.layout)
        none = x.new_empty([0])
        b = none if b is None else b.contiguous()
        y = cfg.run(x, b, none, none, none, 0)
        ctx.save_for_backward(x if cfg.keep_x else none, b if cfg.keep_x else none, y if cfg.keep_y else none)
        return y

    @staticmethod
    def backward(ctx, dy): # pylint: disable=arguments-differ
        cfg = ctx.cfg
        dx = db = None
        if any(ctx.needs_input_grad[:2]):
            x, b, y = ctx.saved_tensors
            dx = dy if cfg.identity else _BiasActCudaGrad.apply(dy.contiguous(memory_format=ctx.layout), x, b, y, cfg)
        if ctx.needs_input_grad[1]:
            db = _reduce_to_bias(dx, cfg.dim)
        return dx, db, None

class _BiasActCudaGrad(torch.autograd.Function):
    # dx = dy * gain * act'(x + b), masked at the clamp. Linear in dy; depends on x only for curved activations.
    @staticmethod
    def forward(ctx, dy, x, b, y, cfg): # pylint: disable=arguments-differ
        ctx.layout = _layout(dy)
        ctx.cfg = cfg
        none = dy.new_empty([0])
        ctx.save_for_backward(dy if cfg.curved else none, x, b, y)
        return cfg.run(dy, b, x, y, none, 1)

    @staticmethod
    def backward(ctx, d_dx): # pylint: disable=arguments-differ
        cfg = ctx.cfg
        dy, x, b, y = ctx.saved_tensors
        d_dx = d_dx.contiguous(memory_format=ctx.layout)
        d_dy = d_x = d_b = None
        if ctx.needs_input_grad[0]:
            d_dy = _BiasActCudaGrad.apply(d_dx, x, b, y, cfg)
        if cfg.curved and any(ctx.needs_input_grad[1:3]):
            d_x = cfg.run(d_dx, b, x, y, dy, 2) # d_dx * dy * gain * act''(x + b), masked at the clamp
            if ctx.needs_input_grad[2]:
                d_b = _reduce_to_bias(d_x, cfg.dim)
        return d_dy, d_x, d_b, None, None

#----------------------------------------------------------------------------
