"""Upsample, pad, FIR-filter and downsample a batch of 2-D images (a 2-D scipy.signal.upfirdn()).

For every channel: insert `up - 1` zeros after each pixel, pad (negative = crop), convolve with the FIR
filter keeping only fully-covered outputs, then keep every `down`-th pixel. The CUDA plugin does this in
one kernel; the PyTorch path maps it onto a single strided (transposed) depthwise convolution, which is
exactly the same linear map. Both are autograd Functions whose backward is upfirdn2d itself (the adjoint
swaps up/down and flips the filter), so gradients of any order are available.
"""

import os
import numpy as np
import torch
import torch.nn.functional as F

from .. import custom_ops
from .. import misc

#----------------------------------------------------------------------------
# CUDA plugin, built on first use. A failed build warns once and the PyTorch path takes over for good.

_plugin = None # the loaded module once _init() has succeeded
_lazy_plugin = custom_ops.LazyPlugin('upfirdn2d', lambda: custom_ops.get_plugin('sgsom_upfirdn2d_plugin',
    sources=['upfirdn2d.cpp', 'upfirdn2d.cu'], headers=['upfirdn2d.h'], source_dir=os.path.dirname(__file__),
    extra_cuda_cflags=['--use_fast_math']))

def _init():
    global _plugin
    _plugin = _lazy_plugin.get()
    return _plugin is not None

#----------------------------------------------------------------------------
# Argument parsing, shared with conv2d_resample.

def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

def _parse_scaling(scaling):
    if _is_int(scaling):
        scaling = [scaling, scaling]
    if not (isinstance(scaling, (list, tuple)) and len(scaling) == 2 and all(_is_int(s) for s in scaling)):
        raise ValueError(f'upfirdn2d: up/down must be an int or a pair [x, y] of ints, got {scaling!r}')
    sx, sy = int(scaling[0]), int(scaling[1])
    if sx < 1 or sy < 1:
        raise ValueError(f'upfirdn2d: up/down factors must be >= 1, got {scaling!r}')
    return sx, sy

def _parse_padding(padding):
    if _is_int(padding):
        padding = [padding, padding]
    if not (isinstance(padding, (list, tuple)) and len(padding) in (2, 4) and all(_is_int(p) for p in padding)):
        raise ValueError(f'upfirdn2d: padding must be an int, [x, y] or [x0, x1, y0, y1] of ints, got {padding!r}')
    if len(padding) == 2:
        padx, pady = padding
        padding = [padx, padx, pady, pady]
    padx0, padx1, pady0, pady1 = (int(p) for p in padding)
    return padx0, padx1, pady0, pady1

def _get_filter_size(f):
    if f is None:
        return 1, 1
    if not (isinstance(f, torch.Tensor) and f.ndim in (1, 2)):
        raise ValueError('upfirdn2d: filter must be None or a 1-D/2-D tensor (see setup_filter())')
    with misc.suppress_tracer_warnings():
        fw = int(f.shape[-1])
        fh = int(f.shape[0])
    misc.assert_shape(f, [fh, fw][:f.ndim])
    if fw < 1 or fh < 1:
        raise ValueError(f'upfirdn2d: filter must have at least one tap, got shape {list(f.shape)}')
    return fw, fh

#----------------------------------------------------------------------------

def setup_filter(f, device=torch.device('cpu'), normalize=True, flip_filter=False, gain=1, separable=None):
    r"""Turn a filter description into the float32 tensor that upfirdn2d() expects.

    Args:
        f:           None (identity), [] or a scalar (impulse), a 1-D list/array/tensor of taps, or a
                     2-D [filter_height, filter_width] array.
        device:      Device of the result (default: cpu).
        normalize:   Scale the taps to sum to one, so a constant signal keeps its level (default: True).
        flip_filter: Flip the filter (default: False).
        gain:        Overall signal gain; spread as gain**0.5 per axis for separable filters (default: 1).
        separable:   Keep a 1-D filter separable; None = only when it has at least 8 taps, because
                     two 1-D passes only pay off for long filters.

    Returns:
        Float32 tensor [filter_taps] (separable) or [filter_height, filter_width].
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim not in (0, 1, 2) or f.numel() == 0:
        raise ValueError(f'setup_filter: expected a scalar, 1-D or 2-D non-empty filter, got shape {list(f.shape)}')
    if f.ndim == 0:
        f = f.reshape([1])
    if separable is None:
        separable = (f.ndim == 1 and f.numel() >= 8)
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if f.ndim != (1 if separable else 2):
        raise ValueError('setup_filter: a 2-D filter cannot be made separable')
    if normalize:
        f = f / f.sum() # out of place: never modify the caller's tensor
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)

#----------------------------------------------------------------------------

def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Pad, upsample, filter and downsample a batch of 2-D images.

    Per channel: (1) upsample by inserting `up - 1` zeros after each pixel, (2) pad with zeros
    (negative padding crops), (3) convolve with the FIR filter `f`, keeping only outputs whose
    footprint lies inside the padded image, (4) keep every `down`-th pixel.

    Args:
        x:           Float16/32/64 tensor [batch_size, num_channels, in_height, in_width].
        f:           Float32 filter [filter_height, filter_width], separable [filter_taps], or None (identity).
        up:          Upsampling factor, int or [x, y] (default: 1).
        down:        Downsampling factor, int or [x, y] (default: 1).
        padding:     Padding of the upsampled image: int, [x, y] or [x0, x1, y0, y1] (default: 0).
        flip_filter: False: convolve with `f`; True: correlate (default: False).
        gain:        Overall scaling of the signal (default: 1).
        impl:        'cuda' (plugin when x is on a CUDA device) or 'ref' (default: 'cuda').

    Returns:
        Tensor [batch_size, num_channels, out_height, out_width].
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'upfirdn2d: x must be a torch.Tensor, got {type(x).__name__}')
    if impl not in ('ref', 'cuda'):
        raise ValueError(f"upfirdn2d: impl must be 'ref' or 'cuda', got {impl!r}")
    if impl == 'cuda' and x.device.type == 'cuda' and _init():
        return _upfirdn2d_cuda(up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain).apply(x, f)
    return _upfirdn2d_ref(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=gain)

#----------------------------------------------------------------------------
# PyTorch implementation.

def _check_args(x, f):
    if not (isinstance(x, torch.Tensor) and x.ndim == 4):
        raise ValueError(f'upfirdn2d: x must be a 4-D tensor [N, C, H, W], got shape {list(getattr(x, "shape", []))}')
    if f is not None:
        if not (isinstance(f, torch.Tensor) and f.ndim in (1, 2) and f.dtype == torch.float32):
            raise ValueError('upfirdn2d: filter must be a float32 1-D/2-D tensor from setup_filter(), or None')
        if f.requires_grad:
            raise ValueError('upfirdn2d: gradients with respect to the filter are not supported')

def _make_cfg(up, down, padding, flip_filter, gain):
    # Everything but x and f, parsed once into the flat tuple that both implementations take.
    upx, upy = _parse_scaling(up)
    downx, downy = _parse_scaling(down)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    return (upx, upy, downx, downy, padx0, padx1, pady0, pady1, bool(flip_filter), float(gain))

def _upfirdn2d_ref(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    """PyTorch implementation of upfirdn2d(); works on any device."""
    _check_args(x, f)
    return _Upfirdn2d.apply(x, f, _make_cfg(up, down, padding, flip_filter, gain), False)

def _split_pad(p0, p1):
    # Largest symmetric part that a conv's own `padding` argument can take; the rest is returned.
    p = max(0, min(p0, p1))
    return p, p0 - p, p1 - p

def _fir_pass(x, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter):
    """One upfirdn pass with a 2-D filter `w` [fh, fw] (already scaled and in x's dtype)."""
    num_channels = x.shape[1]
    fh, fw = w.shape

    if upx == 1 and upy == 1:
        # Plain padding + correlation; downsampling becomes the conv stride (only kept outputs are computed).
        if not flip_filter:
            w = w.flip([0, 1])
        py, ry0, ry1 = _split_pad(pady0, pady1)
        px, rx0, rx1 = _split_pad(padx0, padx1)
        if rx0 or rx1 or ry0 or ry1:
            x = F.pad(x, [rx0, rx1, ry0, ry1]) # negative values crop
        return F.conv2d(x, w[None, None].expand(num_channels, 1, fh, fw), stride=(downy, downx),
            padding=(py, px), groups=num_channels)

    # Zero insertion followed by correlation with g equals a strided transposed conv with g flipped:
    # out[o] = T[o + fw - 1 - padx0], where T = conv_transpose(x, flip(g), stride=up) and T is zero
    # outside its natural extent. So crop fw-1-padx0 on the left and fw-upx-padx1 on the right of T.
    if flip_filter:
        w = w.flip([0, 1])
    py, cy0, cy1 = _split_pad(fh - 1 - pady0, fh - upy - pady1)
    px, cx0, cx1 = _split_pad(fw - 1 - padx0, fw - upx - padx1)
    # Missing zeros at the far end (negative crop) smaller than the stride come free via output_padding.
    opy = -cy1 if -upy < cy1 < 0 else 0
    opx = -cx1 if -upx < cx1 < 0 else 0
    cy1 += opy
    cx1 += opx
    x = F.conv_transpose2d(x, w[None, None].expand(num_channels, 1, fh, fw), stride=(upy, upx),
        padding=(py, px), output_padding=(opy, opx), groups=num_channels)
    if cx0 or cx1 or cy0 or cy1:
        x = F.pad(x, [-cx0, -cx1, -cy0, -cy1])
    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x

def _scaled_filter(f, gain, x):
    # Scale in at least float32 (float64 for float64 data), then cast to x's dtype.
    w = f.to(x.device, torch.promote_types(f.dtype, x.dtype))
    return (w * gain if gain != 1 else w).to(x.dtype)

def _upfirdn2d_torch(x, f, cfg):
    upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain = cfg
    if f is None and upx == 1 and upy == 1:
        # Identity filter without upsampling: only padding and decimation remain.
        y = F.pad(x, [padx0, padx1, pady0, pady1])
        if downx > 1 or downy > 1:
            y = y[:, :, ::downy, ::downx]
        y = y * gain if gain != 1 else y
    elif f is None or f.ndim == 2:
        w = _scaled_filter(f if f is not None else torch.ones([1, 1]), gain, x)
        y = _fir_pass(x, w, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter)
    else:
        # Separable: horizontal then vertical 1-D pass, each carrying gain**0.5 like setup_filter() does.
        w = _scaled_filter(f, np.sqrt(gain), x)
        y = _fir_pass(x, w[None, :], upx, 1, downx, 1, padx0, padx1, 0, 0, flip_filter)
        y = _fir_pass(y, w[:, None], 1, upy, 1, downy, 0, 0, pady0, pady1, flip_filter)
    # Autograd forbids in-place updates of a custom Function's output that is a view, and callers do add
    # into upfirdn2d results in place, so views (from the decimating slices) are materialised here.
    return y.clone() if y._is_view() else y

def _adjoint_cfg(cfg, f, in_shape, out_shape):
    # The transpose of upfirdn2d is upfirdn2d with up/down swapped and the filter flipped; the padding
    # is chosen so that output pixel i of the adjoint lands on input pixel i of the forward pass.
    upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain = cfg
    fw, fh = _get_filter_size(f)
    ih, iw = in_shape[2], in_shape[3]
    oh, ow = out_shape[2], out_shape[3]
    return (downx, downy, upx, upy,
        fw - padx0 - 1, iw * upx - ow * downx + padx0 - upx + 1,
        fh - pady0 - 1, ih * upy - oh * downy + pady0 - upy + 1,
        not flip_filter, gain)

class _Upfirdn2d(torch.autograd.Function):
    """upfirdn2d through the CUDA plugin (use_plugin=True; f must then be a tensor) or through PyTorch. The
    backward pass is the same op again, with the adjoint configuration, so gradients of any order exist."""

    @staticmethod
    def forward(ctx, x, f, cfg, use_plugin): # pylint: disable=arguments-differ
        y = _run_plugin(x, f, cfg) if use_plugin else _upfirdn2d_torch(x, f, cfg)
        ctx.save_for_backward(f)
        ctx.cfg = cfg
        ctx.use_plugin = use_plugin
        ctx.in_shape = x.shape
        ctx.out_shape = y.shape
        return y

    @staticmethod
    def backward(ctx, dy): # pylint: disable=arguments-differ
        f, = ctx.saved_tensors
        dx = None
        if ctx.needs_input_grad[0]:
            dx = _Upfirdn2d.apply(dy, f, _adjoint_cfg(ctx.cfg, f, ctx.in_shape, ctx.out_shape), ctx.use_plugin)
        return dx, None, None, None

#----------------------------------------------------------------------------
# CUDA plugin path.

def _upfirdn2d_cuda(up=1, down=1, padding=0, flip_filter=False, gain=1):
    """Returns an object whose .apply(x, f) runs upfirdn2d() through the CUDA plugin."""
    return _CudaApply(_make_cfg(up, down, padding, flip_filter, gain))

class _CudaApply:
    def __init__(self, cfg):
        self.cfg = cfg
    def apply(self, x, f):
        _check_args(x, f)
        if f is None:
            f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
        return _Upfirdn2d.apply(x, f, self.cfg, True)

def _run_plugin(x, f, cfg):
    upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain = cfg
    if f.ndim == 2:
        return _plugin.upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip_filter, gain)
    g = float(np.sqrt(gain))
    x = _plugin.upfirdn2d(x, f[None, :], upx, 1, downx, 1, padx0, padx1, 0, 0, flip_filter, g)
    return _plugin.upfirdn2d(x, f[:, None], 1, upy, 1, downy, 0, 0, pady0, pady1, flip_filter, g)

#----------------------------------------------------------------------------
# Convenience wrappers with the padding that keeps the image centred and sized as expected.

def filter2d(x, f, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Filter a batch of 2-D images with a FIR filter, keeping the image size.

    Args:
        x:           Float16/32/64 tensor [batch_size, num_channels, in_height, in_width].
        f:           Float32 filter [filter_height, filter_width], separable [filter_taps], or None.
        padding:     Extra padding of the output: int, [x, y] or [x0, x1, y0, y1]; negative crops (default: 0).
        flip_filter: False: convolve with `f`; True: correlate (default: False).
        gain:        Overall scaling of the signal (default: 1).
        impl:        'cuda' or 'ref' (default: 'cuda').

    Returns:
        Tensor [batch_size, num_channels, out_height, out_width].
    """
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [padx0 + fw // 2, padx1 + (fw - 1) // 2, pady0 + fh // 2, pady1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

def upsample2d(x, f, up=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Upsample a batch of 2-D images with a FIR interpolation filter; the output is `up` times the input.

    Args:
        x:           Float16/32/64 tensor [batch_size, num_channels, in_height, in_width].
        f:           Float32 filter [filter_height, filter_width], separable [filter_taps], or None.
        up:          Upsampling factor, int or [x, y] (default: 2).
        padding:     Extra padding of the output: int, [x, y] or [x0, x1, y0, y1]; negative crops (default: 0).
        flip_filter: False: convolve with `f`; True: correlate (default: False).
        gain:        Overall scaling of the signal (default: 1); up**2 is added to make up for the zeros.
        impl:        'cuda' or 'ref' (default: 'cuda').

    Returns:
        Tensor [batch_size, num_channels, out_height, out_width].
    """
    upx, upy = _parse_scaling(up)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [
        padx0 + (fw + upx - 1) // 2,
        padx1 + (fw - upx) // 2,
        pady0 + (fh + upy - 1) // 2,
        pady1 + (fh - upy) // 2,
    ]
    return upfirdn2d(x, f, up=up, padding=p, flip_filter=flip_filter, gain=gain*upx*upy, impl=impl)

def downsample2d(x, f, down=2, padding=0, flip_filter=False, gain=1, impl='cuda'):
    r"""Downsample a batch of 2-D images with a FIR anti-aliasing filter; the output is 1/`down` of the input.

    Args:
        x:           Float16/32/64 tensor [batch_size, num_channels, in_height, in_width].
        f:           Float32 filter [filter_height, filter_width], separable [filter_taps], or None.
        down:        Downsampling factor, int or [x, y] (default: 2).
        padding:     Extra padding of the input: int, [x, y] or [x0, x1, y0, y1]; negative crops (default: 0).
        flip_filter: False: convolve with `f`; True: correlate (default: False).
        gain:        Overall scaling of the signal (default: 1).
        impl:        'cuda' or 'ref' (default: 'cuda').

    Returns:
        Tensor [batch_size, num_channels, out_height, out_width].
    """
    downx, downy = _parse_scaling(down)
    padx0, padx1, pady0, pady1 = _parse_padding(padding)
    fw, fh = _get_filter_size(f)
    p = [
        padx0 + (fw - downx + 1) // 2,
        padx1 + (fw - downx) // 2,
        pady0 + (fh - downy + 1) // 2,
        pady1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=down, padding=p, flip_filter=flip_filter, gain=gain, impl=impl)

#----------------------------------------------------------------------------
