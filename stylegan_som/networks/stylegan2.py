"""StyleGAN2 generator and discriminator, interchangeable with StyleGAN2-ADA's `training.networks`.

Class and function names, constructor arguments (names, defaults, meaning), attributes, forward
signatures and state_dict keys follow the reference implementation, so parameters copy by name between
the two and network pickles move both ways. This module's source travels inside those pickles and must
also run against the reference `torch_utils`: it imports nothing but torch, numpy and `torch_utils` names
that the reference has too.

Differences are in speed only; results agree to float32 rounding:
- demodulation never builds per-sample weights [batch, out, in, kh, kw] (see modulated_conv2d());
- on CPU, float32 3x3 convolutions without resampling run as Winograd F(4x4, 3x3) (see winograd_cpu),
  and inference with several samples uses the non-fused modulated convolution.
"""

import copy
import numpy as np
import torch
import dnnlib
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import conv2d_resample
from torch_utils.ops import upfirdn2d
from torch_utils.ops import bias_act
from torch_utils.ops import fma

#----------------------------------------------------------------------------
# Small shared pieces.

def _act_gain(activation):
    return bias_act.activation_funcs[activation].def_gain

def _clamp(conv_clamp, gain):
    # Layers scaled by `gain` (resnet branches) clamp at a proportionally scaled bound.
    return None if conv_clamp is None else conv_clamp * gain

def _conv_weight(out_channels, in_channels, kernel_size, channels_last=False):
    w = torch.randn([out_channels, in_channels, kernel_size, kernel_size])
    return w.to(memory_format=(torch.channels_last if channels_last else torch.contiguous_format))

def _block_precision(use_fp16, channels_last, force_fp32):
    """(dtype, memory_format) a synthesis/discriminator block computes in."""
    if use_fp16 and not force_fp32:
        return torch.float16, (torch.channels_last if channels_last else torch.contiguous_format)
    return torch.float32, torch.contiguous_format

@misc.profiled_function
def normalize_2nd_moment(x, dim=1, eps=1e-8):
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()

#----------------------------------------------------------------------------
# Winograd F(4x4, 3x3) for stride-1 3x3 convolutions on CPU, where they dominate training time and
# oneDNN runs near peak FLOP rate already: a 4x4 output tile takes 36 multiplies per channel pair
# instead of 144, and the channel contraction becomes 36 batched matrix products. Written with
# differentiable torch ops, so autograd supplies the backward and the double backward (R1).
# Interpolation points 0, 1, -1, 1/2, -2 (+ infinity) give float32 errors of a few 1e-6 relative to
# the output's largest value, against a few 1e-7 for direct convolution.

winograd_cpu = True # module switch (tests compare both paths)

_WINOGRAD_BT = [    # input transform [6, 6]
    [1, -3/2,   -2,  3/2,   1, 0],
    [0,   -1,  1/2,  5/2,   1, 0],
    [0,    1, -5/2,  1/2,   1, 0],
    [0,   -2,   -1,    2,   1, 0],
    [0,  1/2,   -1, -1/2,   1, 0],
    [0,    1, -3/2,   -2, 3/2, 1]]
_WINOGRAD_G = [     # kernel transform [6, 3]
    [     1,     0,     0],
    [   1/3,   1/3,   1/3],
    [  -1/3,   1/3,  -1/3],
    [-16/15, -8/15, -4/15],
    [  1/15, -2/15,  4/15],
    [     0,     0,     1]]
_WINOGRAD_AT = [    # output transform [4, 6]
    [1, 1,  1,   1,  1, 0],
    [0, 1, -1, 1/2, -2, 0],
    [0, 1,  1, 1/4,  4, 0],
    [0, 1, -1, 1/8, -8, 1]]

_winograd_cache = dict()

def _winograd_matrices(device):
    # 2-D transforms as Kronecker products, so each is a single matrix product over the 36 tile positions.
    if device not in _winograd_cache:
        mats = [torch.tensor(m, dtype=torch.float64) for m in (_WINOGRAD_BT, _WINOGRAD_G, _WINOGRAD_AT)]
        _winograd_cache[device] = [torch.kron(m, m).to(dtype=torch.float32, device=device) for m in mats] # [36,36], [36,9], [16,36]
    return _winograd_cache[device]

def _conv3x3_winograd(x, w):
    """Equals torch.nn.functional.conv2d(x, w, padding=1) for float32 x [N,I,H,W], w [O,I,3,3], H and W
    multiples of 4. Returns a channels_last tensor."""
    N, I, H, W = x.shape
    O = w.shape[0]
    th, tw = H // 4, W // 4
    kin, kw, kout = _winograd_matrices(x.device)
    # Overlapping 6x6 tiles at stride 4 of the zero-padded input, channels innermost: [36, N*th*tw*I].
    d = torch.nn.functional.pad(x.permute(0, 2, 3, 1), [0, 0, 1, 1, 1, 1]) # [N, H+2, W+2, I]
    d = d.unfold(1, 6, 4).unfold(2, 6, 4).permute(4, 5, 0, 1, 2, 3).reshape(36, -1)
    v = (kin @ d).reshape(36, N * th * tw, I)
    u = (kw @ w.permute(2, 3, 1, 0).reshape(9, I * O)).reshape(36, I, O)
    y = torch.bmm(v, u) # [36, tiles, O]
    y = (kout @ y.reshape(36, -1)).reshape(4, 4, N, th, tw, O)
    y = y.permute(2, 3, 0, 4, 1, 5).reshape(N, H, W, O)
    return y.permute(0, 3, 1, 2)

def _conv2d_resample(x, w, f=None, up=1, down=1, padding=0, flip_weight=True):
    """conv2d_resample.conv2d_resample(), but plain float32 3x3 convs on CPU go through Winograd."""
    # Below 8x8 the transforms cost more than they save.
    if (winograd_cpu and up == 1 and down == 1 and padding == 1 and x.device.type == 'cpu' and x.dtype == torch.float32
            and w.shape[2:] == (3, 3) and x.shape[2] % 4 == 0 and x.shape[3] % 4 == 0 and min(x.shape[2:]) >= 8):
        return _conv3x3_winograd(x, w if flip_weight else w.flip([2, 3]))
    return conv2d_resample.conv2d_resample(x=x, w=w, f=f, up=up, down=down, padding=padding, flip_weight=flip_weight)

#----------------------------------------------------------------------------

@misc.profiled_function
def modulated_conv2d(x, weight, styles, noise=None, up=1, down=1, padding=0, resample_filter=None,
        demodulate=True, flip_weight=True, fused_modconv=True):
    """Convolution of x [N,I,H,W] with weight [O,I,kh,kw] scaled per sample by styles [N,I] along the
    input channels, optionally normalised per sample and output channel (demodulate) and plus noise.
    up/down/padding/resample_filter/flip_weight as in conv2d_resample(). fused_modconv=True runs one
    grouped convolution with a weight per sample; False scales the activations around one shared
    convolution instead (same result, cheaper when the batch is large or gradients are needed)."""
    N = x.shape[0]
    O, I, kh, kw = weight.shape
    misc.assert_shape(weight, [O, I, kh, kw])
    misc.assert_shape(x, [N, I, None, None])
    misc.assert_shape(styles, [N, I])

    # fp16 would overflow in the unnormalised conv; demodulation cancels any scale, so shrink both factors.
    if demodulate and x.dtype == torch.float16:
        weight = weight * (1 / np.sqrt(I * kh * kw) / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)

    # Norm of sample n's modulated kernel for output o: sum_i styles[n,i]^2 * sum_k weight[o,i,k]^2,
    # an [N,I] x [I,O] product.
    dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt() if demodulate else None

    if not fused_modconv:
        scale = lambda t: t.to(x.dtype).reshape(N, -1, 1, 1)
        y = _conv2d_resample(x=x * scale(styles), w=weight.to(x.dtype), f=resample_filter, up=up, down=down,
            padding=padding, flip_weight=flip_weight)
        if dcoefs is not None:
            return y * scale(dcoefs) if noise is None else fma.fma(y, scale(dcoefs), noise.to(x.dtype))
        return y if noise is None else y.add_(noise.to(x.dtype))

    # Fused: the batch becomes channel groups of a single-image convolution, one group per sample.
    with misc.suppress_tracer_warnings(): # the batch size becomes a constant when tracing
        N = int(N)
    w = weight.unsqueeze(0) * styles.reshape(N, 1, I, 1, 1) # [N,O,I,kh,kw]
    if dcoefs is not None:
        w = w * dcoefs.reshape(N, O, 1, 1, 1)
    y = conv2d_resample.conv2d_resample(x=x.reshape(1, N * I, *x.shape[2:]), w=w.reshape(N * O, I, kh, kw).to(x.dtype),
        f=resample_filter, up=up, down=down, padding=padding, groups=N, flip_weight=flip_weight)
    y = y.reshape(N, O, *y.shape[2:])
    return y if noise is None else y.add_(noise)

#----------------------------------------------------------------------------

@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalised learning rate: parameters are stored divided by their runtime gains,
    so Adam's effective step scales with lr_multiplier. bias_init is the initial bias value."""

    def __init__(self, in_features, out_features, bias=True, activation='linear', lr_multiplier=1, bias_init=0):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        weight = self.weight.to(x.dtype).mul(self.weight_gain)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        if bias is not None and self.bias_gain != 1:
            bias = bias.mul(self.bias_gain)
        if self.activation == 'linear' and bias is not None:
            return torch.addmm(bias.unsqueeze(0), x, weight.t()) # one fused op for the common case
        return bias_act.bias_act(x.matmul(weight.t()), bias, act=self.activation)

#----------------------------------------------------------------------------

@persistence.persistent_class
class Conv2dLayer(torch.nn.Module):
    """Convolution (equalised learning rate) + bias + activation, with optional FIR up/downsampling
    (resample_filter) and output clamping at +-conv_clamp. channels_last stores the weight in that
    memory format; trainable=False registers weight and bias as buffers (frozen layers)."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation='linear', up=1, down=1,
            resample_filter=[1,3,3,1], conv_clamp=None, channels_last=False, trainable=True):
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.act_gain = _act_gain(activation)

        weight = _conv_weight(out_channels, in_channels, kernel_size, channels_last)
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = None if bias is None else torch.nn.Parameter(bias)
        else:
            self.register_buffer('weight', weight)
            if bias is None:
                self.bias = None
            else:
                self.register_buffer('bias', bias)

    def forward(self, x, gain=1):
        weight = (self.weight * self.weight_gain).to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        # Without upsampling, correlation (flip_weight=True) saves a kernel flip; the learned result is the same.
        x = _conv2d_resample(x=x, w=weight, f=self.resample_filter, up=self.up, down=self.down,
            padding=self.padding, flip_weight=(self.up == 1))
        return bias_act.bias_act(x, bias, act=self.activation, gain=self.act_gain * gain, clamp=_clamp(self.conv_clamp, gain))

#----------------------------------------------------------------------------

@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    """z (and label embedding) -> w. z_dim or c_dim may be 0 (absent). num_ws copies of w are output
    ([N, num_ws, w_dim]), or a single [N, w_dim] if num_ws is None. embed_features and layer_features
    default to w_dim. w_avg_beta is the decay of the running mean of w used for truncation (None = no
    tracking, no truncation)."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None,
            activation='lrelu', lr_multiplier=0.01, w_avg_beta=0.995):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        hidden = w_dim if layer_features is None else layer_features
        sizes = [z_dim + embed_features] + [hidden] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            setattr(self, f'fc{idx}', FullyConnectedLayer(fan_in, fan_out, activation=activation, lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        inputs = []
        if self.z_dim > 0:
            misc.assert_shape(z, [None, self.z_dim])
            inputs.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            misc.assert_shape(c, [None, self.c_dim])
            inputs.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        w = torch.cat(inputs, dim=1) if len(inputs) > 1 else inputs[0]
        for idx in range(self.num_layers):
            w = getattr(self, f'fc{idx}')(w)

        if self.training and self.w_avg_beta is not None and not skip_w_avg_update:
            # w_avg <- beta * w_avg + (1 - beta) * batch mean
            self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            w = w.unsqueeze(1).repeat([1, self.num_ws, 1])

        # Truncation: move w towards w_avg by 1 - psi; with a cutoff, only the first truncation_cutoff ws.
        if truncation_psi != 1:
            assert self.w_avg_beta is not None, 'truncation needs w_avg, which w_avg_beta=None turns off'
            if self.num_ws is not None and truncation_cutoff is not None:
                w[:, :truncation_cutoff] = self.w_avg.lerp(w[:, :truncation_cutoff], truncation_psi)
            else:
                w = self.w_avg.lerp(w, truncation_psi)
        return w

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    """Modulated 3x3 convolution (optionally upsampling by `up`) + per-pixel noise + bias + activation,
    producing `resolution` x `resolution` outputs. The style comes from w through the affine layer."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, kernel_size=3, up=1, use_noise=True,
            activation='lrelu', resample_filter=[1,3,3,1], conv_clamp=None, channels_last=False):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = _act_gain(activation)

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1) # styles start around 1
        self.weight = torch.nn.Parameter(_conv_weight(out_channels, in_channels, kernel_size, channels_last))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode='random', fused_modconv=True, gain=1):
        assert noise_mode in ['random', 'const', 'none'], f'noise_mode must be random, const or none, got {noise_mode!r}'
        in_res = self.resolution // self.up
        misc.assert_shape(x, [None, self.weight.shape[1], in_res, in_res])

        noise = None
        if self.use_noise and noise_mode == 'const':
            noise = self.noise_const * self.noise_strength
        elif self.use_noise and noise_mode == 'random':
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength

        x = modulated_conv2d(x=x, weight=self.weight, styles=self.affine(w), noise=noise, up=self.up,
            padding=self.padding, resample_filter=self.resample_filter, flip_weight=(self.up == 1),
            fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain,
            clamp=_clamp(self.conv_clamp, gain))

#----------------------------------------------------------------------------

@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation."""

    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(_conv_weight(out_channels, in_channels, kernel_size, channels_last))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)

    def forward(self, x, w, fused_modconv=True):
        styles = self.affine(w) * self.weight_gain # the equalised-lr gain rides on the styles
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisBlock(torch.nn.Module):
    """One resolution of the synthesis network: [conv0 (upsampling)] + conv1 [+ ToRGB] [+ resnet skip].
    in_channels=0 makes the first block, which starts from a learned constant. architecture: 'orig'
    (ToRGB in the last block only), 'skip' (every block adds to the upsampled image) or 'resnet' (skip
    connection around the convs). The block consumes num_conv + num_torgb ws: its ToRGB shares a w with
    the next block's first conv. use_fp16 runs it in float16 (channels_last if fp16_channels_last).
    Further keyword arguments go to the SynthesisLayers."""

    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture='skip',
            resample_filter=[1,3,3,1], conv_clamp=None, use_fp16=False, fp16_channels_last=False, **layer_kwargs):
        assert architecture in ['orig', 'skip', 'resnet'], f'architecture must be orig, skip or resnet, got {architecture!r}'
        super().__init__()
        self.in_channels = in_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        layer = dict(w_dim=w_dim, resolution=resolution, conv_clamp=conv_clamp, channels_last=self.channels_last)

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, resample_filter=resample_filter, **layer, **layer_kwargs)
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer, **layer_kwargs)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1 if (is_last or architecture == 'skip') else 0
        if self.num_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp, channels_last=self.channels_last)
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs):
        misc.assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim])
        dtype, memory_format = _block_precision(self.use_fp16, self.channels_last, force_fp32)
        if fused_modconv is None:
            # Per-sample weights (one grouped conv) pay off for inference on GPU in float32 and for a
            # single sample; otherwise one shared conv over the style-scaled batch is faster (CPU: ~2.5x).
            with misc.suppress_tracer_warnings():
                n = int(ws.shape[0])
            fused_modconv = (not self.training) and (n == 1 or (dtype == torch.float32 and ws.device.type != 'cpu'))
        w_list = ws.unbind(dim=1)
        kwargs = dict(fused_modconv=fused_modconv, **layer_kwargs)

        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1]).to(memory_format=memory_format)
            x = self.conv1(x, w_list[0], **kwargs)
        else:
            misc.assert_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2])
            x = x.to(dtype=dtype, memory_format=memory_format)
            y = self.skip(x, gain=np.sqrt(0.5)) if self.architecture == 'resnet' else None
            x = self.conv0(x, w_list[0], **kwargs)
            if y is None:
                x = self.conv1(x, w_list[1], **kwargs)
            else: # both branches scaled by sqrt(1/2) keep the variance of the sum
                x = y.add_(self.conv1(x, w_list[1], gain=np.sqrt(0.5), **kwargs))

        if img is not None:
            misc.assert_shape(img, [None, self.img_channels, self.resolution // 2, self.resolution // 2])
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, w_list[self.num_conv], fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = y if img is None else img.add_(y)
        assert x.dtype == dtype and (img is None or img.dtype == torch.float32)
        return x, img

#----------------------------------------------------------------------------
# Ours: blocks inserted by resolution (attn_resolutions) and spectral normalisation of the discriminator
# (spectral_norm). Both are off by default, and the networks are then exactly upstream's.

_DEFAULT_ATTENTION = 'stylegan_som.blocks.attention.SelfAttention' # plugins.BLOCKS 'attention'

def _check_attn_resolutions(attn_resolutions, allowed, owner):
    """Sorted distinct resolutions, each one of `allowed`, or a ValueError naming the first bad value."""
    out = set()
    for res in (attn_resolutions or []):
        ok = isinstance(res, (int, np.integer)) and not isinstance(res, bool) and int(res) in allowed
        if not ok:
            raise ValueError(f'{owner}: attention resolution {res!r} is not available; choose from {allowed} '
                '(feature maps between two blocks, so never img_resolution)')
        out.add(int(res))
    return sorted(out)

def _build_attn(channels, attn_kwargs):
    kwargs = dict(attn_kwargs)
    class_name = kwargs.pop('class_name', None) or _DEFAULT_ATTENTION
    return dnnlib.util.construct_class_by_name(class_name=class_name, channels=channels, **kwargs)

# Spectral normalisation uses torch's parametrisation (torch.nn.utils.parametrizations.spectral_norm: one
# power iteration per training-mode access of the weight, u and v as buffers). It normalises the effective
# weight gain * W of the equalised-lr layers: sigma(g * W) = g * sigma(W), so that is W / sigma(W) whatever
# the gain, and normalised layers set their runtime gain (`<name>_gain`) to 1. Storing W unit-scale (or
# 1/lr_multiplier-scale) still does what equalised lr is for: W / sigma(W) ignores W's scale, so Adam's
# relative step is lr * lr_multiplier in every layer whatever its fan-in.
# torch's parametrised modules refuse to pickle, so a spectrally normalised network pickles de-parametrised
# copies of its submodules (plain weights, u and v as `<name>_sn_u/_sn_v` buffers) and parametrises them
# again when unpickled (Discriminator.__reduce__/__setstate__). That needs only torch, so upstream's loader
# rebuilds the same network, and u and v come back exactly, so a resumed run continues exactly.

def _sn_register(module, name, u=None, v=None):
    weight = getattr(module, name)
    # Registering draws random start vectors: fork the RNG so that building or unpickling a network does not
    # shift the random stream that training draws from.
    with torch.random.fork_rng(devices=([weight.device] if weight.device.type == 'cuda' else [])):
        torch.nn.utils.parametrizations.spectral_norm(module, name=name, n_power_iterations=1, eps=1e-12, dim=0)
    if u is not None:
        sn = module.parametrizations[name][0]
        with torch.no_grad():
            sn._u.copy_(u)
            sn._v.copy_(v)
    module.parametrizations.train(module.training)

def _sn_apply(root):
    """Spectral normalisation of every weight of `root` with two or more dimensions (parameters, and the
    `weight` buffers of layers frozen by Freeze-D)."""
    targets = []
    for m in root.modules():
        targets += [(m, n) for n, p in m._parameters.items() if p is not None and p.ndim >= 2]
        if isinstance(m._buffers.get('weight'), torch.Tensor) and m._buffers['weight'].ndim >= 2:
            targets.append((m, 'weight'))
    for m, name in targets:
        if hasattr(m, name + '_gain'):
            setattr(m, name + '_gain', 1)
        _sn_register(m, name)

def _sn_export(modules):
    """De-parametrised deep copies of a dict of submodules, for pickling."""
    modules = copy.deepcopy(modules)
    for child in modules.values():
        for m in (list(child.modules()) if child is not None else []):
            if not torch.nn.utils.parametrize.is_parametrized(m):
                continue
            plists = list(m.parametrizations.items())
            for name, plist in plists:
                if len(plist) != 1 or not hasattr(plist[0], '_u'):
                    raise TypeError(f'{type(m).__name__}.{name}: only spectral normalisation can be pickled, '
                        f'found parametrisations {[type(p).__name__ for p in plist]}')
            # By hand rather than remove_parametrizations(), which deletes the weight property from the
            # class that torch made for the module: the deep copy shares that class with the live module.
            del m._modules['parametrizations']
            m.__class__ = type(m).__bases__[0]
            for name, plist in plists:
                original = plist.original
                if isinstance(original, torch.nn.Parameter):
                    m.register_parameter(name, original)
                else:
                    m.register_buffer(name, original)
                m.register_buffer(name + '_sn_u', plist[0]._u)
                m.register_buffer(name + '_sn_v', plist[0]._v)
    return modules

def _sn_restore(root):
    """Undo _sn_export on an unpickled network, in place."""
    for m in list(root.modules()):
        for key in [k for k in m._buffers if k.endswith('_sn_u')]:
            name = key[:-len('_sn_u')]
            u = m._buffers.pop(key)
            v = m._buffers.pop(name + '_sn_v')
            _sn_register(m, name, u, v)

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution] through one
    SynthesisBlock per resolution 4, 8, ..., img_resolution. Resolution r has min(channel_base // r,
    channel_max) channels; the num_fp16_res highest resolutions (never 4x4) run in float16. Further
    keyword arguments go to the SynthesisBlocks.
    Ours: attn_resolutions=[r, ...] adds a block `attn{r}` (attn_kwargs: its class_name, default SAGAN
    self-attention, and further arguments) that transforms the r x r features b{r} passes on to the next
    block; b{r}'s own ToRGB sees them before it, so r = img_resolution has no such features to transform."""

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=0,
            attn_resolutions=[], attn_kwargs={}, **block_kwargs):
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0, \
            f'img_resolution must be a power of two >= 4, got {img_resolution}'
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** k for k in range(2, self.img_resolution_log2 + 1)]
        channels = lambda res: min(channel_base // res, channel_max)
        fp16_from = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(channels(res // 2) if res > 4 else 0, channels(res), w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=(res == img_resolution), use_fp16=(res >= fp16_from), **block_kwargs)
            setattr(self, f'b{res}', block)
            self.num_ws += block.num_conv
        self.num_ws += block.num_torgb # only the last ToRGB has a w of its own

        # Ours: attention blocks, built after the upstream blocks.
        self.attn_resolutions = _check_attn_resolutions(attn_resolutions, self.block_resolutions[:-1], 'SynthesisNetwork')
        for res in self.attn_resolutions:
            setattr(self, f'attn{res}', _build_attn(channels(res), attn_kwargs))

    def forward(self, ws, return_pyramid=False, **block_kwargs):
        """Ours: return_pyramid=True (MSG-GAN) returns [img, img at img_resolution / 2, ..., at 4], the skip
        architecture's running image after each block; the first is the usual output."""
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        if return_pyramid and self.b4.architecture != 'skip':
            raise ValueError(f'SynthesisNetwork: return_pyramid needs the skip architecture (an image after every '
                f'block), not {self.b4.architecture!r}')
        ws = ws.to(torch.float32)
        x = img = None
        first = 0
        pyramid = []
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            x, img = block(x, img, ws.narrow(1, first, block.num_conv + block.num_torgb), **block_kwargs)
            first += block.num_conv
            if res in self.attn_resolutions:
                x = getattr(self, f'attn{res}')(x)
            pyramid.append(img) # the next block adds to an upsampled copy, never to this tensor
        return pyramid[::-1] if return_pyramid else img

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    """z [N, z_dim], c [N, c_dim] -> image. mapping_kwargs and synthesis_kwargs go to MappingNetwork and
    SynthesisNetwork; forward() passes truncation to the mapping and anything else to the synthesis
    (noise_mode, force_fp32, fused_modconv)."""

    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, synthesis_kwargs={}):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        return self.synthesis(self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff), **synthesis_kwargs)

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorBlock(torch.nn.Module):
    """One resolution of the discriminator: [FromRGB] + conv0 + conv1 (downsampling) [+ resnet skip].
    in_channels=0 makes the first block, which reads the image; 'skip' blocks read a downsampled copy
    of it too. first_layer_idx numbers this block's layers within the network for Freeze-D: the first
    freeze_layers layers of the network are frozen (buffers instead of parameters). use_fp16 runs the
    block in float16 (channels_last if fp16_channels_last)."""

    def __init__(self, in_channels, tmp_channels, out_channels, resolution, img_channels, first_layer_idx,
            architecture='resnet', activation='lrelu', resample_filter=[1,3,3,1], conv_clamp=None,
            use_fp16=False, fp16_channels_last=False, freeze_layers=0):
        assert in_channels in [0, tmp_channels], f'in_channels must be 0 or tmp_channels ({tmp_channels}), got {in_channels}'
        assert architecture in ['orig', 'skip', 'resnet'], f'architecture must be orig, skip or resnet, got {architecture!r}'
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.img_channels = img_channels
        self.first_layer_idx = first_layer_idx
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = (use_fp16 and fp16_channels_last)
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))

        self.num_layers = 0
        def layer(*args, **kwargs): # the next layer of the network, frozen if among the first freeze_layers
            trainable = (self.first_layer_idx + self.num_layers >= freeze_layers)
            self.num_layers += 1
            return Conv2dLayer(*args, trainable=trainable, channels_last=self.channels_last, **kwargs)

        act = dict(activation=activation, conv_clamp=conv_clamp)
        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = layer(img_channels, tmp_channels, kernel_size=1, **act)
        self.conv0 = layer(tmp_channels, tmp_channels, kernel_size=3, **act)
        self.conv1 = layer(tmp_channels, out_channels, kernel_size=3, down=2, resample_filter=resample_filter, **act)
        if architecture == 'resnet':
            self.skip = layer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2, resample_filter=resample_filter)

    def forward(self, x, img, force_fp32=False):
        dtype, memory_format = _block_precision(self.use_fp16, self.channels_last, force_fp32)
        if x is not None:
            misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
            x = x.to(dtype=dtype, memory_format=memory_format)
        if self.in_channels == 0 or self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None

        if self.architecture == 'resnet': # both branches scaled by sqrt(1/2)
            y = self.skip(x, gain=np.sqrt(0.5))
            x = y.add_(self.conv1(self.conv0(x), gain=np.sqrt(0.5)))
        else:
            x = self.conv1(self.conv0(x))
        assert x.dtype == dtype
        return x, img

#----------------------------------------------------------------------------

@persistence.persistent_class
class MinibatchStdLayer(torch.nn.Module):
    """Appends num_channels feature maps holding the stddev of the features across a group of
    group_size samples (None = the whole batch), averaged over channels and pixels."""

    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        N, C, H, W = x.shape
        with misc.suppress_tracer_warnings(): # sizes become constants when tracing
            N = int(N)
        G = N if self.group_size is None else min(int(self.group_size), N)
        if N % G != 0:
            raise ValueError(f'MinibatchStdLayer: batch size {N} is not divisible by mbstd_group_size {G}')
        F = self.num_channels
        # Sample i falls in group i % (N // G); the channels split into F sets, each giving one stddev map.
        y = x.reshape(G, -1, F, C // F, H, W)
        y = (y - y.mean(dim=0)).square().mean(dim=0)    # [n,F,c,H,W] variance within each group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])       # [n,F]
        y = y.reshape(-1, F, 1, 1).repeat(G, 1, H, W)   # [N,F,H,W]
        return torch.cat([x, y], dim=1)

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    """The 4x4 end of the discriminator: [FromRGB] + minibatch stddev + conv + fc + out. With
    cmap_dim > 0, out has cmap_dim features and the score is their projection onto the mapped label
    (cmap), scaled by 1/sqrt(cmap_dim); otherwise out is the score.
    Heads (ours): num_heads=K gives K scores [N, K] (with cmap, out has K*cmap_dim features and each
    head projects its own slice); head_kwargs with a class_name makes `out` that head plugin instead,
    called as out(features, c)."""

    def __init__(self, in_channels, cmap_dim, resolution, img_channels, architecture='resnet', mbstd_group_size=4,
            mbstd_num_channels=1, activation='lrelu', conv_clamp=None, num_heads=1, head_kwargs={}):
        assert architecture in ['orig', 'skip', 'resnet'], f'architecture must be orig, skip or resnet, got {architecture!r}'
        super().__init__()
        self.in_channels = in_channels
        self.cmap_dim = cmap_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.architecture = architecture

        if architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, in_channels, kernel_size=1, activation=activation)
        self.mbstd = MinibatchStdLayer(group_size=mbstd_group_size, num_channels=mbstd_num_channels) if mbstd_num_channels > 0 else None
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation=activation)
        self.num_heads = num_heads
        self.head_plugin = 'class_name' in head_kwargs
        if self.head_plugin: # named `out` too, so a plugin with out's parameter names picks up its weights
            assert cmap_dim == 0, 'a head plugin replaces the cmap projection'
            self.out = dnnlib.util.construct_class_by_name(in_features=in_channels, num_heads=num_heads, **head_kwargs)
        else:
            self.out = FullyConnectedLayer(in_channels, num_heads * (cmap_dim if cmap_dim > 0 else 1))

    def forward(self, x, img, cmap, force_fp32=False, c=None): # always float32; force_fp32 accepted for symmetry
        misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.fc(self.conv(x).flatten(1))
        if self.head_plugin:
            x = self.out(x, c)
        else:
            x = self.out(x)
        if self.cmap_dim > 0 and not self.head_plugin:
            misc.assert_shape(cmap, [None, self.cmap_dim])
            if self.num_heads == 1: # upstream's expression, kept verbatim for bit-identical scores
                x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
            else:
                x = (x.reshape(-1, self.num_heads, self.cmap_dim) * cmap.unsqueeze(1)).sum(dim=2) * (1 / np.sqrt(self.cmap_dim))
        assert x.dtype == torch.float32
        return x

#----------------------------------------------------------------------------

# Ours: MSG-GAN (Karnewar & Wang 2020) in the discriminator, msg=True. The image at each resolution r below the
# input's enters at the block that reads r x r features through cat_lin: a 1x1 convolution of [features; image]
# back to the block's channels. Of the paper's three combine functions it is the one that leaves every block's
# channel count as it is, so the backbone's layers are unchanged and only the msg{r} layers are added.

def _msg_split(img, resolutions, owner):
    """(full-resolution image, {r: image at r x r}) from MSG-GAN's pyramid [img, at resolutions[0], ...] (a list,
    G's outputs or the reals' pooled copies), or from one image, pooled here (average pooling by img_res / r, the
    loss's operator for reals). Without resolutions, one image."""
    if not resolutions:
        if isinstance(img, (list, tuple)):
            raise ValueError(f'{owner}: built without msg, it takes one image, not a pyramid of {len(img)}')
        return img, {}
    if isinstance(img, (list, tuple)):
        if len(img) != len(resolutions) + 1:
            raise ValueError(f'{owner}: MSG-GAN\'s pyramid needs {len(resolutions) + 1} images (full size, then '
                f'{resolutions}), got {len(img)}')
        img, levels = img[0], list(img[1:])
    else:
        levels = [torch.nn.functional.avg_pool2d(img, img.shape[2] // res) for res in resolutions]
    for res, level in zip(resolutions, levels):
        misc.assert_shape(level, [img.shape[0], img.shape[1], res, res])
    return img, dict(zip(resolutions, levels))

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    """image [N, img_channels, img_resolution, img_resolution], c [N, c_dim] -> score [N, 1]: one
    DiscriminatorBlock per resolution img_resolution, ..., 8, then the 4x4 epilogue. Channels and fp16
    as in SynthesisNetwork. A conditional D (c_dim > 0) maps c to cmap (cmap_dim features, default: the
    channels at 4x4) and projects onto it. block_kwargs, mapping_kwargs and epilogue_kwargs go to the
    respective parts.
    Ours: num_heads=K scores every image K times ([N, K], SOM heads on a shared trunk); head_kwargs =
    dict(class_name=..., **kwargs) puts a head plugin (stylegan_som/heads) on the 4x4 features instead of
    the final layer and of the cmap path, called with the raw labels. num_heads=1, head_kwargs={} is
    exactly upstream's network.
    Ours: attn_resolutions=[r, ...] adds a block `attn{r}` (attn_kwargs as in SynthesisNetwork) applied
    to the r x r features entering b{r} (b4: the epilogue), so r < img_resolution. spectral_norm=True
    normalises every weight of the network, including heads and attention blocks (see _sn_apply).
    Ours: msg=True (MSG-GAN) takes the image as a pyramid, each scale at its block (see _msg_split); msg_resolutions
    lists the scales below img_resolution, highest first."""

    def __init__(self, c_dim, img_resolution, img_channels, architecture='resnet', channel_base=32768,
            channel_max=512, num_fp16_res=0, conv_clamp=None, cmap_dim=None, block_kwargs={}, mapping_kwargs={},
            epilogue_kwargs={}, num_heads=1, head_kwargs={}, attn_resolutions=[], attn_kwargs={}, spectral_norm=False,
            msg=False):
        if int(num_heads) != num_heads or num_heads < 1:
            raise ValueError(f'Discriminator: num_heads must be a positive integer, got {num_heads!r}')
        head_kwargs = dict(head_kwargs)
        head_plugin = 'class_name' in head_kwargs
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** k for k in range(self.img_resolution_log2, 2, -1)]
        channels = lambda res: min(channel_base // res, channel_max)
        fp16_from = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.num_heads = int(num_heads)
        if c_dim == 0 or head_plugin: # a head plugin takes the labels itself
            cmap_dim = 0
        elif cmap_dim is None:
            cmap_dim = channels(4)

        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels(res) if res < img_resolution else 0, channels(res), channels(res // 2),
                resolution=res, first_layer_idx=layer_idx, use_fp16=(res >= fp16_from), **block_kwargs, **common)
            setattr(self, f'b{res}', block)
            layer_idx += block.num_layers
        if cmap_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs)
        if head_plugin:
            head_kwargs['c_dim'] = c_dim
        self.b4 = DiscriminatorEpilogue(channels(4), cmap_dim=cmap_dim, resolution=4, num_heads=self.num_heads,
            head_kwargs=head_kwargs, **epilogue_kwargs, **common)

        # Ours: attention blocks and spectral normalisation (last: it covers every weight built above).
        allowed = [res for res in self.block_resolutions + [4] if res < img_resolution]
        self.attn_resolutions = _check_attn_resolutions(attn_resolutions, allowed, 'Discriminator')
        for res in self.attn_resolutions:
            setattr(self, f'attn{res}', _build_attn(channels(res), attn_kwargs))
        # Ours: MSG-GAN's combine layers (see _msg_split), after the others so they leave their initial weights alone.
        self.msg_resolutions = [res for res in self.block_resolutions + [4] if res < img_resolution] if msg else []
        for res in self.msg_resolutions:
            setattr(self, f'msg{res}', Conv2dLayer(channels(res) + img_channels, channels(res), kernel_size=1))
        self.spectral_norm = bool(spectral_norm)
        if self.spectral_norm:
            _sn_apply(self)

    def __reduce__(self): # ours: see _sn_export
        fields = super().__reduce__()
        if not self.__dict__.get('spectral_norm', False):
            return fields
        fields = list(fields)
        fields[2] = dict(fields[2], _modules=_sn_export(self._modules))
        return tuple(fields)

    def __setstate__(self, state): # ours: see _sn_restore
        super().__setstate__(state)
        if self.__dict__.get('spectral_norm', False):
            _sn_restore(self)

    def _msg_combine(self, x, scales, res):
        return getattr(self, f'msg{res}')(torch.cat([x, scales[res].to(x.dtype)], dim=1)) if res in scales else x

    def forward(self, img, c, **block_kwargs):
        img, scales = _msg_split(img, self.__dict__.get('msg_resolutions', []), 'Discriminator')
        x = None
        for res in self.block_resolutions:
            if res in self.attn_resolutions:
                x = getattr(self, f'attn{res}')(x)
            x = self._msg_combine(x, scales, res)
            x, img = getattr(self, f'b{res}')(x, img, **block_kwargs)
        if 4 in self.attn_resolutions:
            x = self.attn4(x)
        x = self._msg_combine(x, scales, 4)
        cmap = self.mapping(None, c) if self.b4.cmap_dim > 0 else None
        return self.b4(x, img, cmap, c=c)

#----------------------------------------------------------------------------
