"""Plain PyTorch formulations of the resampling ops, written straight from their definitions, used as
the independent reference in the ops tests. Slow and simple on purpose; not imported by the package."""

import torch
import torch.nn.functional as F


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def pads(padding):
    """int / [x, y] / [x0, x1, y0, y1] -> (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


def zero_insert(x, upx, upy):
    """Put x[i, j] at [i * upy, j * upx] of an all-zero image `up` times larger."""
    n, c, h, w = x.shape
    z = x.new_zeros([n, c, h * upy, w * upx])
    z[:, :, ::upy, ::upx] = x
    return z


def pad_or_crop(x, x0, x1, y0, y1):
    """Zero-pad positive amounts, crop negative ones."""
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    h, w = x.shape[2], x.shape[3]
    return x[:, :, max(-y0, 0): h - max(-y1, 0), max(-x0, 0): w - max(-x1, 0)]


def full_filter(f, gain, dtype):
    """2-D filter tensor: a 1-D (separable) filter becomes its outer product; gain applied once."""
    if f is None:
        f = torch.ones([1, 1])
    f = f.to(torch.float64)
    if f.ndim == 1:
        f = torch.outer(f, f)
    return (f * gain).to(dtype)


def fir_valid(x, f2d, flip_filter):
    """Per-channel 'valid' filtering. flip_filter=False is a true convolution, so the kernel is
    flipped before torch's correlation; True is a correlation."""
    k = f2d if flip_filter else f2d.flip([0, 1])
    c = x.shape[1]
    return F.conv2d(x, k[None, None].repeat(c, 1, 1, 1), groups=c)


def plain_upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    upx, upy = pair(up)
    downx, downy = pair(down)
    x0, x1, y0, y1 = pads(padding)
    x = zero_insert(x, upx, upy)
    x = pad_or_crop(x, x0, x1, y0, y1)
    x = fir_valid(x, full_filter(f, gain, x.dtype), flip_filter)
    return x[:, :, ::downy, ::downx]
