"""Differentiable augmentation pipeline for adaptive discriminator augmentation (ADA).

Semantics follow StyleGAN2-ADA (Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data"): constructor kwargs, the `p` / `Hz_geom` / `Hz_fbank` buffers and the order of random draws all match, so
an `augment_pipe` from either code base loads into the other and a fixed seed draws the same augmentations.
This module rides inside network pickles and is executed by upstream's loader too, so it imports only torch,
numpy and torch_utils names that upstream also provides.
"""

import numpy as np
import torch
from torch_utils import persistence
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix
from torch_utils.ops import upfirdn2d

#----------------------------------------------------------------------------
# Low-pass decomposition filters (dec_lo, as listed by PyWavelets) of a few orthogonal wavelet families.
# Only sym6 (geometric resampling) and sym2 (filter bank) are used; the rest are kept for experiments.

wavelets = {
    'haar': [0.7071067811865476, 0.7071067811865476],
    'db1': [0.7071067811865476, 0.7071067811865476],
    'db2': [-0.12940952255126037, 0.2241438680420134, 0.8365163037378079, 0.48296291314453416],
    'db3': [0.03522629188570953, -0.08544127388202666, -0.13501102001025458, 0.45987750211849154, 0.8068915093110925,
        0.33267055295008263],
    'db4': [-0.010597401785069032, 0.0328830116668852, 0.030841381835560764, -0.18703481171909309,
        -0.027983769416859854, 0.6308807679298589, 0.7148465705529157, 0.2303778133088965],
    'db5': [0.0033357252854737712, -0.012580751999081999, -0.006241490212798274, 0.07757149384004572,
        -0.032244869584638375, -0.24229488706638203, 0.13842814590132074, 0.7243085284377729, 0.6038292697971896,
        0.16010239797419293],
    'db6': [-0.0010773010853084796, 0.004777257510945511, 0.0005538422011614961, -0.03158203931748603,
        0.027522865530305727, 0.09750160558732304, -0.12976686756726194, -0.22626469396543983, 0.31525035170919763,
        0.7511339080210954, 0.49462389039845306, 0.11154074335010947],
    'db7': [0.00035371379997452024, -0.0018016407040474908, 0.0004295779729213665, 0.01255099855609984,
        -0.01657454163066688, -0.03802993693501441, 0.08061260915108308, 0.07130921926683026, -0.22403618499387498,
        -0.14390600392856498, 0.4697822874051931, 0.7291320908462351, 0.3965393194819173, 0.07785205408500918],
    'db8': [-0.00011747678412476953, 0.0006754494064505693, -0.00039174037337694705, -0.004870352993451574,
        0.008746094047405777, 0.013981027917398282, -0.044088253930794755, -0.017369301001807547,
        0.12874742662047847, 0.0004724845739132828, -0.2840155429615469, -0.015829105256349306, 0.5853546836542067,
        0.6756307362972898, 0.31287159091429995, 0.05441584224310401],
    'sym2': [-0.12940952255092145, 0.22414386804185735, 0.836516303737469, 0.48296291314469025],
    'sym3': [0.035226291882100656, -0.08544127388224149, -0.13501102001039084, 0.4598775021193313,
        0.8068915093133388, 0.3326705529509569],
    'sym4': [-0.07576571478927333, -0.02963552764599851, 0.49761866763201545, 0.8037387518059161,
        0.29785779560527736, -0.09921954357684722, -0.012603967262037833, 0.0322231006040427],
    'sym5': [0.027333068345077982, 0.029519490925774643, -0.039134249302383094, 0.1993975339773936,
        0.7234076904024206, 0.6339789634582119, 0.01660210576452232, -0.17532808990845047, -0.021101834024758855,
        0.019538882735286728],
    'sym6': [0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564,
        0.04472490177066578, 0.0017677118642428036, -0.007800708325034148],
    'sym7': [0.002681814568257878, -0.0010473848886829163, -0.01263630340325193, 0.03051551316596357,
        0.0678926935013727, -0.049552834937127255, 0.017441255086855827, 0.5361019170917628, 0.767764317003164,
        0.2886296317515146, -0.14004724044296152, -0.10780823770381774, 0.004010244871533663, 0.010268176708511255],
    'sym8': [-0.0033824159510061256, -0.0005421323317911481, 0.03169508781149298, 0.007607487324917605,
        -0.1432942383508097, -0.061273359067658524, 0.4813596512583722, 0.7771857517005235, 0.3644418948353314,
        -0.05194583810770904, -0.027219029917056003, 0.049137179673607506, 0.003808752013890615,
        -0.01495225833704823, -0.0003029205147213668, 0.0018899503327594609],
}

#----------------------------------------------------------------------------
# Presets for train.py --augpipe: b = pixel blitting, g = general geometry, c = colour, f = image-space
# filtering, n = additive noise, c (last) = cutout. Values are probability multipliers for AugmentPipe.

augpipe_specs = {
    'blit':   dict(xflip=1, rotate90=1, xint=1),
    'geom':   dict(scale=1, rotate=1, aniso=1, xfrac=1),
    'color':  dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1),
    'filter': dict(imgfilter=1),
    'noise':  dict(noise=1),
    'cutout': dict(cutout=1),
}
for _name, _parts in [('bg', 'blit geom'), ('bgc', 'bg color'), ('bgcf', 'bgc filter'), ('bgcfn', 'bgcf noise'),
                      ('bgcfnc', 'bgcfn cutout')]:
    augpipe_specs[_name] = {k: v for part in _parts.split() for k, v in augpipe_specs[part].items()}
del _name, _parts

#----------------------------------------------------------------------------
# Homogeneous transformation matrices. Entries may mix Python numbers with per-sample tensors; the result is
# then a batch of matrices [..., rows, cols] (float32, as the pipeline's sampling maths is done in float32).

def _matrix(rows, device=None):
    entries = [x for row in rows for x in row]
    tensors = [x for x in entries if isinstance(x, torch.Tensor)]
    if not tensors:
        return torch.tensor(rows, dtype=torch.float32, device=device)
    shape = torch.broadcast_shapes(*[x.shape for x in tensors])
    like = tensors[0]
    entries = [x.expand(shape) if isinstance(x, torch.Tensor) else
               torch.full(shape, float(x), dtype=like.dtype, device=like.device) for x in entries]
    return torch.stack(entries, dim=-1).reshape(*shape, len(rows), len(rows[0]))

def _translate2d(tx, ty, device=None):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], device)

def _scale2d(sx, sy, device=None):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], device)

def _rotate2d(theta):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]])

# The geometric stage builds the map from output pixels back to input pixels, hence these inverses.
def _inv_translate2d(tx, ty, device=None):
    return _translate2d(-tx, -ty, device)

def _inv_scale2d(sx, sy, device=None):
    return _scale2d(1 / sx, 1 / sy, device)

def _inv_rotate2d(theta):
    return _rotate2d(-theta)

def _translate3d(tx, ty, tz):
    return _matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]])

def _scale3d(sx, sy, sz):
    return _matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]])

def _rotate3d(axis, theta):
    # Rodrigues' rotation about the unit vector `axis` (only its xyz part is used).
    x, y, z = axis[0], axis[1], axis[2]
    s, c = torch.sin(theta), torch.cos(theta)
    d = 1 - c
    return _matrix([
        [x * x * d + c,     x * y * d - z * s, x * z * d + y * s, 0],
        [y * x * d + z * s, y * y * d + c,     y * z * d - x * s, 0],
        [z * x * d - y * s, z * y * d + x * s, z * z * d + c,     0],
        [0,                 0,                 0,                 1]])

#----------------------------------------------------------------------------

def _band_filters(lowpass, num_bands=4):
    """Zero-phase 1-D filters splitting a signal into octave bands (coarsest first); their sum is a unit impulse.

    Each band is the power response of the wavelet's high-pass (or, for band 0, low-pass) filter, pushed down
    the octaves by dilating and smoothing with the low-pass power response. Float64 numpy, returned [bands, taps].
    """
    lo = np.asarray(lowpass, dtype=np.float64)
    hi = lo * (-1.0) ** np.arange(lo.size)          # quadrature mirror: H(-z)
    lo2 = np.convolve(lo, lo[::-1]) / 2             # halved so that lo2 + hi2 is a unit impulse
    hi2 = np.convolve(hi, hi[::-1]) / 2
    bank = np.zeros([num_bands, 1])
    bank[0, 0] = 1
    for band in range(1, num_bands):
        dilated = np.zeros([num_bands, bank.shape[1] * 2 - 1])
        dilated[:, ::2] = bank
        bank = np.stack([np.convolve(row, lo2) for row in dilated])
        start = (bank.shape[1] - hi2.size) // 2
        bank[band, start : start + hi2.size] += hi2
    return bank

def _reflect_pad(x, pad):
    """Reflect-pad the last two dims by `pad` pixels (no edge repeat). Equal to F.pad(mode='reflect') where that
    works; for images not larger than `pad` it keeps mirroring (period 2*(n-1)) instead of failing."""
    height, width = x.shape[-2:]
    if pad < height and pad < width:
        return torch.nn.functional.pad(x, [pad] * 4, mode='reflect')
    def mirrored(n):
        idx = torch.arange(-pad, n + pad, device=x.device)
        if n == 1:
            return torch.zeros_like(idx)
        idx = idx.remainder(2 * (n - 1))
        return torch.where(idx >= n, 2 * (n - 1) - idx, idx)
    return x[..., mirrored(height)[:, None], mirrored(width)[None, :]]

#----------------------------------------------------------------------------

@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    """ADA augmentations. Every kwarg without a suffix is a probability multiplier (0 = off, 1 = on); a sample
    receives each enabled augmentation independently with probability multiplier * p, where the buffer `p` is
    the overall strength that ADA tunes during training. Inputs are [N, C, H, W] images in [-1, 1], C = 1 or 3."""

    def __init__(self,
        xflip=0, rotate90=0, xint=0, xint_max=0.125,
        scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
        brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0, brightness_std=0.2, contrast_std=0.5,
        hue_max=1, saturation_std=1,
        imgfilter=0, imgfilter_bands=[1,1,1,1], imgfilter_std=1,
        noise=0, cutout=0, noise_std=0.1, cutout_size=0.5,
    ):
        super().__init__()
        self.register_buffer('p', torch.ones([]))

        # Pixel blitting: x-flip, multiples of 90 degrees, integer translation (max as a fraction of the size).
        self.xflip          = float(xflip)
        self.rotate90       = float(rotate90)
        self.xint           = float(xint)
        self.xint_max       = float(xint_max)

        # General geometry: isotropic and anisotropic scaling (log2 std), rotation (max as a fraction of a full
        # turn), fractional translation (std as a fraction of the size).
        self.scale          = float(scale)
        self.rotate         = float(rotate)
        self.aniso          = float(aniso)
        self.xfrac          = float(xfrac)
        self.scale_std      = float(scale_std)
        self.rotate_max     = float(rotate_max)
        self.aniso_std      = float(aniso_std)
        self.xfrac_std      = float(xfrac_std)

        # Colour: brightness offset (std), contrast (log2 std), luma flip, hue rotation about the grey axis (max
        # as a fraction of a full turn), saturation (log2 std).
        self.brightness     = float(brightness)
        self.contrast       = float(contrast)
        self.lumaflip       = float(lumaflip)
        self.hue            = float(hue)
        self.saturation     = float(saturation)
        self.brightness_std = float(brightness_std)
        self.contrast_std   = float(contrast_std)
        self.hue_max        = float(hue_max)
        self.saturation_std = float(saturation_std)

        # Image-space filtering: random log2 gain per octave band, each band's probability further scaled.
        self.imgfilter      = float(imgfilter)
        self.imgfilter_bands = list(imgfilter_bands)
        self.imgfilter_std  = float(imgfilter_std)

        # Corruptions: additive Gaussian noise (std of its half-normal sigma), cutout (square side as a fraction).
        self.noise          = float(noise)
        self.cutout         = float(cutout)
        self.noise_std      = float(noise_std)
        self.cutout_size    = float(cutout_size)

        # Orthogonal low-pass for the 2x up/down resampling around grid_sample: upsampling then downsampling with
        # it is an exact identity, so only the geometric warp itself changes the image.
        self.register_buffer('Hz_geom', upfirdn2d.setup_filter(wavelets['sym6']))

        # Octave filter bank for image-space filtering.
        self.register_buffer('Hz_fbank', torch.as_tensor(_band_filters(wavelets['sym2']), dtype=torch.float32))

    def _gate(self, value, prob, neutral, debug):
        # Per sample: keep `value` with probability `prob`, else use `neutral`. The uniform draw is made even when
        # `debug` overrides the result, so that the random stream is the same in both modes.
        keep = torch.rand([value.shape[0]] + [1] * (value.ndim - 1), device=value.device) < prob
        value = torch.where(keep, value, torch.full_like(value, neutral))
        if debug is not None:
            value = debug.to(value.dtype).expand(value.shape)
        return value

    def forward(self, images, debug_percentile=None):
        """Augment a batch. `debug_percentile` in [0, 1] forces every enabled augmentation on, with its parameter
        at that percentile of its distribution (for inspection and tests)."""
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(f'AugmentPipe: expected images as a [batch, channels, height, width] tensor, '
                             f'got {type(images).__name__} of shape {tuple(getattr(images, "shape", ()))}')
        batch_size, num_channels, height, width = images.shape
        device = images.device
        dp = None
        if debug_percentile is not None:
            dp = torch.as_tensor(debug_percentile, dtype=torch.float32, device=device)

        G_inv = self._sample_geometry(batch_size, height, width, device, dp)
        if G_inv is not None:
            images = self._warp(images, G_inv)

        C = self._sample_color(batch_size, num_channels, device, dp)
        if C is not None:
            images = self._recolor(images, C)

        if self.imgfilter > 0:
            images = self._filter(images, dp)

        if self.noise > 0:
            sigma = torch.randn([batch_size, 1, 1, 1], device=device).abs() * self.noise_std
            sigma = self._gate(sigma, self.noise * self.p, 0, None if dp is None else torch.erfinv(dp) * self.noise_std)
            noise = torch.randn([batch_size, num_channels, height, width], device=device) * sigma
            images = images + noise.to(images.dtype)

        if self.cutout > 0:
            size = torch.full([batch_size, 2, 1, 1, 1], self.cutout_size, device=device)
            size = self._gate(size, self.cutout * self.p, 0, None if dp is None else torch.full_like(dp, self.cutout_size))
            center = torch.rand([batch_size, 2, 1, 1, 1], device=device)
            if dp is not None:
                center = dp.expand(center.shape)
            # Zero the pixels whose centres fall inside the (size x size) box around `center` (unit coordinates).
            x = (torch.arange(width, device=device).reshape(1, 1, 1, -1) + 0.5) / width
            y = (torch.arange(height, device=device).reshape(1, 1, -1, 1) + 0.5) / height
            outside = ((x - center[:, 0]).abs() >= size[:, 0] / 2) | ((y - center[:, 1]).abs() >= size[:, 1] / 2)
            images = images * outside.to(images.dtype)

        return images

    def _sample_geometry(self, batch_size, height, width, device, dp):
        # Inverse transform G_inv [batch, 3, 3] mapping output pixel centres to input positions (centred pixel
        # coordinates), composed in the order the augmentations apply; None when no geometric kwarg is on.
        if not any(m > 0 for m in [self.xflip, self.rotate90, self.xint, self.scale, self.rotate, self.aniso, self.xfrac]):
            return None
        uniform = lambda: torch.rand([batch_size], device=device)
        normal = lambda: torch.randn([batch_size], device=device)
        debug = lambda f: None if dp is None else f(dp)
        G_inv = torch.eye(3, device=device)

        if self.xflip > 0:
            i = self._gate(torch.floor(uniform() * 2), self.xflip * self.p, 0, debug(lambda d: torch.floor(d * 2)))
            G_inv = G_inv @ _inv_scale2d(1 - 2 * i, 1)

        if self.rotate90 > 0:
            i = self._gate(torch.floor(uniform() * 4), self.rotate90 * self.p, 0, debug(lambda d: torch.floor(d * 4)))
            G_inv = G_inv @ _inv_rotate2d(-np.pi / 2 * i)

        if self.xint > 0:
            t = (torch.rand([batch_size, 2], device=device) * 2 - 1) * self.xint_max
            t = self._gate(t, self.xint * self.p, 0, debug(lambda d: (d * 2 - 1) * self.xint_max))
            G_inv = G_inv @ _inv_translate2d(torch.round(t[:, 0] * width), torch.round(t[:, 1] * height))

        if self.scale > 0:
            s = torch.exp2(normal() * self.scale_std)
            s = self._gate(s, self.scale * self.p, 1, debug(lambda d: torch.exp2(torch.erfinv(d * 2 - 1) * self.scale_std)))
            G_inv = G_inv @ _inv_scale2d(s, s)

        # Rotation is split into one before and one after the anisotropic scaling (so that the stretch axis is
        # random too); each fires with p_rot, chosen so that at least one fires with probability rotate * p.
        p_rot = 1 - torch.sqrt((1 - self.rotate * self.p).clamp(0, 1))
        theta_debug = debug(lambda d: (d * 2 - 1) * np.pi * self.rotate_max)
        if self.rotate > 0:
            theta = (uniform() * 2 - 1) * np.pi * self.rotate_max
            theta = self._gate(theta, p_rot, 0, theta_debug)
            G_inv = G_inv @ _inv_rotate2d(-theta)

        if self.aniso > 0:
            s = torch.exp2(normal() * self.aniso_std)
            s = self._gate(s, self.aniso * self.p, 1, debug(lambda d: torch.exp2(torch.erfinv(d * 2 - 1) * self.aniso_std)))
            G_inv = G_inv @ _inv_scale2d(s, 1 / s)

        if self.rotate > 0:
            theta = (uniform() * 2 - 1) * np.pi * self.rotate_max
            theta = self._gate(theta, p_rot, 0, debug(lambda d: torch.zeros_like(d)))
            G_inv = G_inv @ _inv_rotate2d(-theta)

        if self.xfrac > 0:
            t = torch.randn([batch_size, 2], device=device) * self.xfrac_std
            t = self._gate(t, self.xfrac * self.p, 0, debug(lambda d: torch.erfinv(d * 2 - 1) * self.xfrac_std))
            G_inv = G_inv @ _inv_translate2d(t[:, 0] * width, t[:, 1] * height)

        return G_inv

    def _warp(self, images, G_inv):
        batch_size, num_channels, height, width = images.shape
        device = images.device
        untouched = (G_inv == torch.eye(3, device=device)).all(dim=2).all(dim=1)
        source = images
        fpad = self.Hz_geom.shape[0] // 4 # border (input pixels) the up/down filter pair needs on each side

        # Reflect-pad so that the warped output, plus the filter border, only samples reflected image content;
        # the extents come from where the output's corners land, clamped to what one reflection can supply.
        cx, cy = (width - 1) / 2, (height - 1) / 2
        corners = _matrix([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=device)
        reach = (G_inv @ corners.t())[:, :2, :].transpose(0, 1).flatten(1) # [xy, batch * corner]
        margin = torch.cat([-reach, reach]).amax(dim=1) # [left, top, right, bottom], from the centre
        margin = margin + torch.tensor([fpad * 2 - cx, fpad * 2 - cy] * 2, device=device)
        margin = torch.minimum(margin.clamp(min=0), torch.tensor([width - 1, height - 1] * 2, dtype=torch.float32, device=device))
        mx0, my0, mx1, my1 = margin.ceil().to(torch.int64).tolist()
        images = torch.nn.functional.pad(images, [mx0, mx1, my0, my1], mode='reflect')
        G_inv = _translate2d((mx0 - mx1) / 2, (my0 - my1) / 2, device=device) @ G_inv # padding moved the centre

        # Warp at twice the resolution. In the 2x image coordinates double, and the even-length filter puts the
        # fine grid half a fine pixel off the coarse one.
        images = upfirdn2d.upsample2d(x=images, f=self.Hz_geom, up=2)
        G_inv = _scale2d(2, 2, device=device) @ G_inv @ _inv_scale2d(2, 2, device=device)
        G_inv = _translate2d(-0.5, -0.5, device=device) @ G_inv @ _inv_translate2d(-0.5, -0.5, device=device)

        # affine_grid works in [-1, 1] coordinates of the whole image: rescale from pixels on both sides. The output
        # keeps `fpad` extra pixels per side for the downsampling filter, which then crops them off.
        out_h, out_w = (height + fpad * 2) * 2, (width + fpad * 2) * 2
        G_inv = (_scale2d(2 / images.shape[3], 2 / images.shape[2], device=device) @ G_inv
                 @ _inv_scale2d(2 / out_w, 2 / out_h, device=device))
        grid = torch.nn.functional.affine_grid(theta=G_inv[:, :2, :].to(images.dtype),
                                               size=[batch_size, num_channels, out_h, out_w], align_corners=False)
        images = grid_sample_gradfix.grid_sample(images, grid)
        images = upfirdn2d.downsample2d(x=images, f=self.Hz_geom, down=2, padding=-fpad * 2, flip_filter=True)

        # Samples whose transform is the identity come back bit-exact (resampling would add float rounding).
        return torch.where(untouched.reshape(-1, 1, 1, 1), source, images)

    def _sample_color(self, batch_size, num_channels, device, dp):
        # Colour matrix C [batch, 4, 4] acting on homogeneous RGB (C @ rgb_in = rgb_out); None when colour is off.
        chromatic = num_channels > 1 # hue and saturation need colour channels
        if not any(m > 0 for m in [self.brightness, self.contrast, self.lumaflip] +
                   ([self.hue, self.saturation] if chromatic else [])):
            return None
        uniform = lambda *shape: torch.rand([batch_size, *shape], device=device)
        normal = lambda *shape: torch.randn([batch_size, *shape], device=device)
        debug = lambda f: None if dp is None else f(dp)
        I = torch.eye(4, device=device)
        C = I

        if self.brightness > 0:
            b = self._gate(normal() * self.brightness_std, self.brightness * self.p, 0,
                           debug(lambda d: torch.erfinv(d * 2 - 1) * self.brightness_std))
            C = _translate3d(b, b, b) @ C

        if self.contrast > 0:
            c = self._gate(torch.exp2(normal() * self.contrast_std), self.contrast * self.p, 1,
                           debug(lambda d: torch.exp2(torch.erfinv(d * 2 - 1) * self.contrast_std)))
            C = _scale3d(c, c, c) @ C

        # Unit grey axis (homogeneous, w = 0) and the projector onto it.
        v = torch.as_tensor(np.array([1, 1, 1, 0]) / np.sqrt(3), dtype=torch.float32, device=device)
        P = torch.outer(v, v)

        if self.lumaflip > 0:
            i = self._gate(torch.floor(uniform(1, 1) * 2), self.lumaflip * self.p, 0, debug(lambda d: torch.floor(d * 2)))
            C = (I - 2 * P * i) @ C # Householder reflection: negates luma, keeps chroma

        if self.hue > 0 and chromatic:
            theta = self._gate((uniform() * 2 - 1) * np.pi * self.hue_max, self.hue * self.p, 0,
                               debug(lambda d: (d * 2 - 1) * np.pi * self.hue_max))
            C = _rotate3d(v, theta) @ C

        if self.saturation > 0 and chromatic:
            s = self._gate(torch.exp2(normal(1, 1) * self.saturation_std), self.saturation * self.p, 1,
                           debug(lambda d: torch.exp2(torch.erfinv(d * 2 - 1) * self.saturation_std)))
            C = (I + (I - P) * (s - 1)) @ C # scales the chroma part only; written so that s = 1 is exactly I

        return C

    def _recolor(self, images, C):
        batch_size, num_channels, height, width = images.shape
        C = C.to(images.dtype)
        x = images.reshape(batch_size, num_channels, height * width)
        if num_channels == 3:
            x = C[:, :3, :3] @ x + C[:, :3, 3:]
        elif num_channels == 1:
            # Grey images: the average effect of C on a grey pixel (mean of its row sums, and of its offsets).
            gain = C[:, :3, :3].sum(dim=2).mean(dim=1).reshape(-1, 1, 1)
            offset = C[:, :3, 3].mean(dim=1).reshape(-1, 1, 1)
            x = x * gain + offset
        else:
            raise ValueError(f'AugmentPipe: colour augmentations need RGB (3 channels) or grey (1 channel) images, '
                             f'got {num_channels} channels; use an --augpipe without colour (e.g. bg)')
        return x.reshape(batch_size, num_channels, height, width)

    def _filter(self, images, dp):
        batch_size, num_channels, height, width = images.shape
        device = images.device
        num_bands, taps = self.Hz_fbank.shape
        if len(self.imgfilter_bands) != num_bands:
            raise ValueError(f'AugmentPipe: imgfilter_bands needs {num_bands} entries, got {self.imgfilter_bands}')

        # Random gain per band, then renormalised so that an image with a 1/f-like spectrum (most power in the
        # coarsest band) keeps its overall power.
        expected_power = torch.as_tensor(np.array([10, 1, 1, 1]) / 13, dtype=torch.float32, device=device)
        g = torch.ones([batch_size, num_bands], device=device)
        untouched = torch.ones([batch_size], dtype=torch.bool, device=device)
        for band, band_strength in enumerate(self.imgfilter_bands):
            gain = torch.exp2(torch.randn([batch_size], device=device) * self.imgfilter_std)
            debug = None
            if dp is not None:
                debug = torch.exp2(torch.erfinv(dp * 2 - 1) * self.imgfilter_std) if band_strength > 0 else torch.ones_like(dp)
            gain = self._gate(gain, self.imgfilter * self.p * band_strength, 1, debug)
            untouched = untouched & (gain == 1)
            t = torch.where(torch.arange(num_bands, device=device) == band, gain[:, None], torch.ones_like(g))
            t = t / (expected_power * t.square()).sum(dim=-1, keepdim=True).sqrt()
            g = g * t

        # One separable zero-phase filter per sample, applied to each of its channels (grouped convolution).
        kernel = (g @ self.Hz_fbank).to(images.dtype)              # [batch, taps]
        kernel = kernel.repeat_interleave(num_channels, dim=0)     # [batch * channels, taps]
        x = _reflect_pad(images.reshape(1, batch_size * num_channels, height, width), taps // 2)
        x = conv2d_gradfix.conv2d(input=x, weight=kernel[:, None, None, :], groups=batch_size * num_channels)
        x = conv2d_gradfix.conv2d(input=x, weight=kernel[:, None, :, None], groups=batch_size * num_channels)
        x = x.reshape(batch_size, num_channels, height, width)
        return torch.where(untouched.reshape(-1, 1, 1, 1), images, x)

#----------------------------------------------------------------------------
