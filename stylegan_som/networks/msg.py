"""MSG-GAN (Karnewar & Wang 2020, multi-scale gradients), `--msg=1`: G's image at every resolution enters D at the
block of that resolution, so D's gradients reach every scale of G directly.

The networks carry it themselves, as small hooks, because a network pickle holds the source of the modules its
classes come from and must load without this package (upstream's loader): a wrapper or mixin defined here would
make every pickle import it. What each backbone adds:
- G: `synthesis(ws, return_pyramid=True)` returns [image, image at r1, image at r2, ...], full size first, then
  the scales below it highest first; the plain call still returns the image alone, so generate.py, the metrics
  and upstream's loader see an ordinary G. StyleGAN2 returns its skip architecture's running image after each
  block (the accumulated ToRGB outputs; no new layers). dcgan and resnet send the features at each resolution
  through a 1x1 to-RGB (`msg_torgb{r}`, built for synthesis_kwargs.msg_resolutions) and the output activation.
- D: `msg=True` builds a combine layer `msg{r}` for each resolution r below the input's at which a block reads
  r x r features, lists them in `D.msg_resolutions` and takes the image as that pyramid (a single image is
  pooled by D itself). The combine function is cat_lin (see stylegan2._msg_split, small.build_msg).

This module holds what the loss runner does with pyramids. A pyramid is a list of tensors [N, C, r, r] in
D.msg_resolutions' order after the full-size image; everything here also takes a single tensor (--msg=0)."""

import torch

#----------------------------------------------------------------------------

def is_pyramid(img):
    return isinstance(img, (list, tuple))

def levels(img):
    """The tensors of a pyramid, or [img]."""
    return list(img) if is_pyramid(img) else [img]

def final(img):
    """The full-size image."""
    return img[0] if is_pyramid(img) else img

def apply(fn, img):
    """fn on every level, keeping the form (a list stays a list, a tensor a tensor)."""
    return [fn(level) for level in img] if is_pyramid(img) else fn(img)

def leaves(img, requires_grad):
    """Detached copies of every level, each an input whose gradient a penalty can take on its own."""
    return apply(lambda level: level.detach().requires_grad_(requires_grad), img)

def pyramid(img, resolutions):
    """The reals' pyramid: [img] and, for each r of resolutions, img average-pooled by img_res / r (the mean over
    each block of pixels; one operator for every level, so pooling again from a pooled level gives the same)."""
    res = img.shape[2]
    bad = [r for r in resolutions if res % r != 0]
    if bad:
        raise ValueError(f'MSG-GAN: resolutions {bad} do not divide the image size {res}')
    return [img] + [torch.nn.functional.avg_pool2d(img, res // r) for r in resolutions]

def lerp(a, b, alpha):
    """a * alpha + b * (1 - alpha) on every level (the same alpha [N, 1, 1, 1] for all: one interpolate)."""
    if is_pyramid(a):
        return [x * alpha + y * (1 - alpha) for x, y in zip(a, b)]
    return a * alpha + b * (1 - alpha)

def resolutions_of(D):
    """The scales D takes below its input's (none without msg), also under DDP."""
    return list(getattr(getattr(D, 'module', D), 'msg_resolutions', None) or [])

#----------------------------------------------------------------------------
