"""2-D convolution combined with FIR up/downsampling, arranged so the convolution runs at the lower of the
two resolutions whenever possible (strided conv for down, transposed strided conv for up)."""

import torch

from .. import misc
from . import conv2d_gradfix
from . import upfirdn2d
from .upfirdn2d import _parse_padding
from .upfirdn2d import _get_filter_size

#----------------------------------------------------------------------------

def _get_weight_shape(w):
    with misc.suppress_tracer_warnings(): # sizes become constants when tracing
        shape = [int(s) for s in w.shape]
    misc.assert_shape(w, shape)
    return shape

def _conv(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    # torch's conv2d is a correlation; flip_weight=False asks for a true convolution.
    if not flip_weight:
        w = w.flip([2, 3])
    if transpose:
        return conv2d_gradfix.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return conv2d_gradfix.conv2d(x, w, stride=stride, padding=padding, groups=groups)

def _centring_padding(padding, fw, fh, up, down):
    # User padding refers to the upsampled image; each resampling step adds what keeps the filter centred.
    px0, px1, py0, py1 = _parse_padding(padding)
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2
    return px0, px1, py0, py1

def _transposed_weight(w, groups):
    # conv_transpose2d wants [in_channels, out_channels // groups, kh, kw], swapped within each group.
    if groups == 1:
        return w.transpose(0, 1)
    return w.unflatten(0, (groups, -1)).transpose(1, 2).flatten(0, 1)

#----------------------------------------------------------------------------

def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    r"""2-D convolution with optional FIR up- and/or downsampling.

    The result equals: upsample by zero insertion (`up`), pad once (`padding`, plus what the filter needs),
    filter with `f` (gain up**2, only if up > 1), convolve with `w`, filter with `f` and decimate (only if
    down > 1). The implementation reorders these steps where that is cheaper and exactly equivalent.

    Args:
        x:           Input [batch_size, in_channels, in_height, in_width].
        w:           Weight [out_channels, in_channels//groups, kernel_height, kernel_width], x's dtype.
        f:           Float32 low-pass filter from upfirdn2d.setup_filter(), or None (identity).
        up:          Integer upsampling factor (default: 1).
        down:        Integer downsampling factor (default: 1).
        padding:     Padding of the upsampled image: int, [x, y] or [x0, x1, y0, y1] (default: 0).
        groups:      Number of channel groups (default: 1).
        flip_weight: True: correlate with `w`, as torch's conv2d does; False: convolve (default: True).
        flip_filter: False: convolve with `f`; True: correlate (default: False).

    Returns:
        Tensor [batch_size, out_channels, out_height, out_width].
    """
    if not (isinstance(x, torch.Tensor) and x.ndim == 4):
        raise ValueError('conv2d_resample: x must be a 4-D tensor [N, C, H, W]')
    if not (isinstance(w, torch.Tensor) and w.ndim == 4 and w.dtype == x.dtype):
        raise ValueError(f'conv2d_resample: w must be a 4-D tensor with the dtype of x ({x.dtype})')
    if not (f is None or (isinstance(f, torch.Tensor) and f.ndim in (1, 2) and f.dtype == torch.float32)):
        raise ValueError('conv2d_resample: f must be None or a float32 1-D/2-D filter from setup_filter()')
    for name, value in (('up', up), ('down', down), ('groups', groups)):
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f'conv2d_resample: {name} must be an int >= 1, got {value!r}')
    _, _, kh, kw = _get_weight_shape(w)
    fw, fh = _get_filter_size(f)
    px0, px1, py0, py1 = _centring_padding(padding, fw, fh, up, down)
    pads = [px0, px1, py0, py1]
    pointwise = (kw == 1 and kh == 1)

    if up == 1 and down > 1:
        if pointwise: # a 1x1 conv commutes with the per-channel filter: decimate first, then mix channels
            x = upfirdn2d.upfirdn2d(x=x, f=f, down=down, padding=pads, flip_filter=flip_filter)
            return _conv(x, w, groups=groups, flip_weight=flip_weight)
        # Filter at full resolution; the strided conv computes only the pixels that are kept.
        x = upfirdn2d.upfirdn2d(x=x, f=f, padding=pads, flip_filter=flip_filter)
        return _conv(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    if up > 1 and down == 1 and pointwise: # mix channels at low resolution, then upsample
        x = _conv(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x=x, f=f, up=up, padding=pads, gain=up**2, flip_filter=flip_filter)

    if up > 1:
        # Zero insertion followed by the conv is a strided transposed conv (which convolves, hence the
        # inverted flip). It already spans kw-1 / kw-up of the padding on each side; the crop that both
        # sides still share is left to the transposed conv's own padding, the rest to the filter pass.
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        crop_x = max(0, -max(px0, px1))
        crop_y = max(0, -max(py0, py1))
        x = _conv(x, _transposed_weight(w, groups), stride=up, padding=[crop_y, crop_x], groups=groups,
            transpose=True, flip_weight=not flip_weight)
        x = upfirdn2d.upfirdn2d(x=x, f=f, padding=[px0 + crop_x, px1 + crop_x, py0 + crop_y, py1 + crop_y],
            gain=up**2, flip_filter=flip_filter)
        if down > 1:
            x = upfirdn2d.upfirdn2d(x=x, f=f, down=down, flip_filter=flip_filter)
        return x

    # No resampling: the conv pads by itself when the padding is symmetric and non-negative.
    if px0 == px1 and py0 == py1 and min(px0, py0) >= 0:
        return _conv(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    x = upfirdn2d.upfirdn2d(x=x, f=None, padding=pads)
    return _conv(x, w, groups=groups, flip_weight=flip_weight)

#----------------------------------------------------------------------------
