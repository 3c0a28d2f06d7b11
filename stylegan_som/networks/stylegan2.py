"""StyleGAN2 generator and discriminator, interchangeable with StyleGAN2-ADA's `training.networks`.

Class and function names, constructor arguments (names, defaults, meaning), attributes, forward
signatures and state_dict keys are those of the reference implementation, so parameters copy by name
between the two and pickles move both ways. The source of this module is embedded into network
pickles and must run against the reference `torch_utils` too: import nothing but torch, numpy and
`torch_utils` names that the reference also has.

Differences are in speed only; results agree to float32 rounding:
- demodulation never builds per-sample weights [batch, out, in, kh, kw] (see modulated_conv2d());
- on CPU, float32 3x3 convolutions without resampling run as Winograd F(4x4, 3x3) (see winograd_cpu),
  and inference with several samples uses the non-fused modulated convolution.
"""

import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence
from torch_utils.ops import conv2d_resample
from torch_utils.ops import upfirdn2d
from torch_utils.ops import bias_act
from torch_utils.ops import fma

#----------------------------------------------------------------------------

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
def modulated_conv2d(
    x,                          # Input [batch_size, in_channels, in_height, in_width].
    weight,                     # Shared weight [out_channels, in_channels, kernel_height, kernel_width].
    styles,                     # Per-sample input-channel scales [batch_size, in_channels].
    noise           = None,     # Optional noise added to the output.
    up              = 1,        # Integer upsampling factor.
    down            = 1,        # Integer downsampling factor.
    padding         = 0,        # Padding with respect to the upsampled image.
    resample_filter = None,     # Filter from upfirdn2d.setup_filter() used for resampling.
    demodulate      = True,     # Normalise each output channel of the modulated weight to unit norm?
    flip_weight     = True,     # False = convolution, True = correlation (as torch's conv2d).
    fused_modconv   = True,     # One grouped conv with per-sample weights instead of scaling activations?
):
    batch_size = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    misc.assert_shape(weight, [out_channels, in_channels, kh, kw])
    misc.assert_shape(x, [batch_size, in_channels, None, None])
    misc.assert_shape(styles, [batch_size, in_channels])

    # Under fp16, rescale weight and styles so the conv cannot overflow; demodulation undoes the scale.
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / np.sqrt(in_channels * kh * kw) / weight.norm(float('inf'), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float('inf'), dim=1, keepdim=True)

    # The modulated weight of sample n is weight[o,i,:,:] * styles[n,i]; its squared norm per output
    # channel is sum_i styles[n,i]^2 * sum_k weight[o,i,k]^2, i.e. a [N,I] x [I,O] product.
    dcoefs = None
    if demodulate:
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt() # [NO]

    if not fused_modconv:
        # Scale the activations instead of the weight: one ordinary conv serves the whole batch.
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = _conv2d_resample(x=x, w=weight.to(x.dtype), f=resample_filter, up=up, down=down,
            padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            return fma.fma(x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1), noise.to(x.dtype))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        if noise is not None:
            return x.add_(noise.to(x.dtype))
        return x

    # Fused: fold the batch into channel groups, one group per sample with its own weight.
    with misc.suppress_tracer_warnings(): # the batch size becomes a constant when tracing
        batch_size = int(batch_size)
    w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1) # [NOIkk]
    if demodulate:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample.conv2d_resample(x=x, w=w.to(x.dtype), f=resample_filter, up=up, down=down,
        padding=padding, groups=batch_size, flip_weight=flip_weight)
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise)
    return x

#----------------------------------------------------------------------------

@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    def __init__(self,
        in_features,                # Number of input features.
        out_features,               # Number of output features.
        bias            = True,     # Add a bias before the activation?
        activation      = 'linear', # Activation name from bias_act.activation_funcs.
        lr_multiplier   = 1,        # Learning-rate multiplier (equalised learning rate).
        bias_init       = 0,        # Initial bias value.
    ):
        super().__init__()
        self.activation = activation
        # Parameters are stored divided by the runtime gains, so Adam's step size scales with lr_multiplier.
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None
        if self.bias is not None:
            b = self.bias.to(x.dtype)
            b = b * self.bias_gain if self.bias_gain != 1 else b
        if b is not None and self.activation == 'linear':
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act.bias_act(x.matmul(w.t()), b, act=self.activation)

#----------------------------------------------------------------------------

@persistence.persistent_class
class Conv2dLayer(torch.nn.Module):
    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        kernel_size,                    # Width and height of the kernel.
        bias            = True,         # Add a bias before the activation?
        activation      = 'linear',     # Activation name from bias_act.activation_funcs.
        up              = 1,            # Integer upsampling factor.
        down            = 1,            # Integer downsampling factor.
        resample_filter = [1,3,3,1],    # Low-pass filter used for resampling.
        conv_clamp      = None,         # Clamp outputs to +-conv_clamp, None = no clamping.
        channels_last   = False,        # Store the weight in channels_last memory format?
        trainable       = True,         # False = weight and bias are buffers (frozen layers).
    ):
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format)
        bias = torch.zeros([out_channels]) if bias else None
        if trainable:
            self.weight = torch.nn.Parameter(weight)
            self.bias = torch.nn.Parameter(bias) if bias is not None else None
        else:
            self.register_buffer('weight', weight)
            if bias is not None:
                self.register_buffer('bias', bias)
            else:
                self.bias = None

    def forward(self, x, gain=1):
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = _conv2d_resample(x=x, w=w.to(x.dtype), f=self.resample_filter, up=self.up,
            down=self.down, padding=self.padding, flip_weight=(self.up == 1)) # either works; correlation is cheaper
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

#----------------------------------------------------------------------------

@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    def __init__(self,
        z_dim,                      # Latent (Z) dimensionality, 0 = no latent.
        c_dim,                      # Label (C) dimensionality, 0 = no label.
        w_dim,                      # Intermediate latent (W) dimensionality.
        num_ws,                     # Number of copies of w to output, None = output [N, w_dim].
        num_layers      = 8,        # Number of mapping layers.
        embed_features  = None,     # Label embedding size, None = w_dim.
        layer_features  = None,     # Hidden layer size, None = w_dim.
        activation      = 'lrelu',  # Activation name from bias_act.activation_funcs.
        lr_multiplier   = 0.01,     # Learning-rate multiplier of the mapping layers.
        w_avg_beta      = 0.995,    # Decay of the running average of w (for truncation), None = no tracking.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]

        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            setattr(self, f'fc{idx}', FullyConnectedLayer(features[idx], features[idx + 1],
                activation=activation, lr_multiplier=lr_multiplier))
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        # Normalised latent and normalised label embedding, side by side.
        parts = []
        if self.z_dim > 0:
            misc.assert_shape(z, [None, self.z_dim])
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim > 0:
            misc.assert_shape(c, [None, self.c_dim])
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)

        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])

        # Truncation trick: pull w towards its average (only the first truncation_cutoff ws, if given).
        if truncation_psi != 1:
            assert self.w_avg_beta is not None, 'truncation needs w_avg (w_avg_beta=None disables it)'
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    def __init__(self,
        in_channels,                    # Number of input channels.
        out_channels,                   # Number of output channels.
        w_dim,                          # Intermediate latent (W) dimensionality.
        resolution,                     # Output resolution of this layer.
        kernel_size     = 3,            # Width and height of the kernel.
        up              = 1,            # Integer upsampling factor.
        use_noise       = True,         # Add per-pixel noise?
        activation      = 'lrelu',      # Activation name from bias_act.activation_funcs.
        resample_filter = [1,3,3,1],    # Low-pass filter used for resampling.
        conv_clamp      = None,         # Clamp outputs to +-conv_clamp, None = no clamping.
        channels_last   = False,        # Store the weight in channels_last memory format?
    ):
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer('resample_filter', upfirdn2d.setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = bias_act.activation_funcs[activation].def_gain

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        if use_noise:
            self.register_buffer('noise_const', torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode='random', fused_modconv=True, gain=1):
        assert noise_mode in ['random', 'const', 'none'], f'noise_mode must be random, const or none, got {noise_mode!r}'
        misc.assert_shape(x, [None, self.weight.shape[1], self.resolution // self.up, self.resolution // self.up])
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == 'random':
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif self.use_noise and noise_mode == 'const':
            noise = self.noise_const * self.noise_strength

        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, noise=noise, up=self.up, padding=self.padding,
            resample_filter=self.resample_filter, flip_weight=(self.up == 1), fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)

#----------------------------------------------------------------------------

@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]).to(memory_format=memory_format))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size ** 2))

    def forward(self, x, w, fused_modconv=True):
        # No demodulation: the weight gain goes into the styles instead.
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisBlock(torch.nn.Module):
    def __init__(self,
        in_channels,                        # Number of input channels, 0 = first block (learned constant input).
        out_channels,                       # Number of output channels.
        w_dim,                              # Intermediate latent (W) dimensionality.
        resolution,                         # Resolution of this block.
        img_channels,                       # Number of image channels.
        is_last,                            # Last block (always has a ToRGB layer)?
        architecture        = 'skip',       # 'orig', 'skip' or 'resnet'.
        resample_filter     = [1,3,3,1],    # Low-pass filter used for resampling.
        conv_clamp          = None,         # Clamp conv outputs to +-conv_clamp, None = no clamping.
        use_fp16            = False,        # Run this block in float16?
        fp16_channels_last  = False,        # Use channels_last memory format when in float16?
        **layer_kwargs,                     # Arguments for SynthesisLayer.
    ):
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
        self.num_conv = 0   # number of ws consumed by the conv layers ...
        self.num_torgb = 0  # ... and by ToRGB (which shares its w with the next block's first conv)

        if in_channels == 0:
            self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        if in_channels != 0:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim, resolution=resolution, up=2,
                resample_filter=resample_filter, conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution,
            conv_clamp=conv_clamp, channels_last=self.channels_last, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == 'skip':
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim,
                conv_clamp=conv_clamp, channels_last=self.channels_last)
            self.num_torgb += 1
        if in_channels != 0 and architecture == 'resnet':
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs):
        misc.assert_shape(ws, [None, self.num_conv + self.num_torgb, self.w_dim])
        w_iter = iter(ws.unbind(dim=1))
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format
        if fused_modconv is None:
            # Per-sample weights (one grouped conv) pay off for inference on GPU in float32, or for a single
            # sample. Otherwise one shared conv over the style-scaled batch is faster: on CPU by ~2.5x.
            with misc.suppress_tracer_warnings():
                n = int(ws.shape[0])
            fused_modconv = (not self.training) and (n == 1 or (dtype == torch.float32 and ws.device.type != 'cpu'))

        if self.in_channels == 0:
            x = self.const.to(dtype=dtype, memory_format=memory_format)
            x = x.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
        else:
            misc.assert_shape(x, [None, self.in_channels, self.resolution // 2, self.resolution // 2])
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=np.sqrt(0.5), **layer_kwargs)
            x = y.add_(x)
        else:
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)

        if img is not None:
            misc.assert_shape(img, [None, self.img_channels, self.resolution // 2, self.resolution // 2])
            img = upfirdn2d.upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == 'skip':
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
            y = y.to(dtype=torch.float32, memory_format=torch.contiguous_format)
            img = img.add_(y) if img is not None else y

        assert x.dtype == dtype
        assert img is None or img.dtype == torch.float32
        return x, img

#----------------------------------------------------------------------------

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    def __init__(self,
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution (a power of two >= 4).
        img_channels,               # Number of image channels.
        channel_base    = 32768,    # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max     = 512,      # Maximum number of channels in any layer.
        num_fp16_res    = 0,        # Run the N highest resolutions in float16.
        **block_kwargs,             # Arguments for SynthesisBlock.
    ):
        assert img_resolution >= 4 and img_resolution & (img_resolution - 1) == 0, \
            f'img_resolution must be a power of two >= 4, got {img_resolution}'
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(2, self.img_resolution_log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        self.num_ws = 0
        for res in self.block_resolutions:
            is_last = (res == self.img_resolution)
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim=w_dim, resolution=res,
                img_channels=img_channels, is_last=is_last, use_fp16=(res >= fp16_resolution), **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if is_last else 0)
            setattr(self, f'b{res}', block)

    def forward(self, ws, **block_kwargs):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f'b{res}')
            # Each block sees its convs' ws plus the next one, which its ToRGB shares with the next block.
            x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + block.num_torgb), **block_kwargs)
            w_idx += block.num_conv
        return img

#----------------------------------------------------------------------------

@persistence.persistent_class
class Generator(torch.nn.Module):
    def __init__(self,
        z_dim,                      # Latent (Z) dimensionality.
        c_dim,                      # Label (C) dimensionality, 0 = unconditional.
        w_dim,                      # Intermediate latent (W) dimensionality.
        img_resolution,             # Output resolution.
        img_channels,               # Number of image channels.
        mapping_kwargs      = {},   # Arguments for MappingNetwork.
        synthesis_kwargs    = {},   # Arguments for SynthesisNetwork.
    ):
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
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorBlock(torch.nn.Module):
    def __init__(self,
        in_channels,                        # Number of input channels, 0 = first block (reads the image).
        tmp_channels,                       # Number of channels between the two convs.
        out_channels,                       # Number of output channels.
        resolution,                         # Resolution of this block.
        img_channels,                       # Number of image channels.
        first_layer_idx,                    # Index of this block's first layer in the whole network.
        architecture        = 'resnet',     # 'orig', 'skip' or 'resnet'.
        activation          = 'lrelu',      # Activation name from bias_act.activation_funcs.
        resample_filter     = [1,3,3,1],    # Low-pass filter used for resampling.
        conv_clamp          = None,         # Clamp conv outputs to +-conv_clamp, None = no clamping.
        use_fp16            = False,        # Run this block in float16?
        fp16_channels_last  = False,        # Use channels_last memory format when in float16?
        freeze_layers       = 0,            # Freeze-D: the first N layers of the network are not trained.
    ):
        assert in_channels in [0, tmp_channels]
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
        def trainable():
            # Called once per layer, in order: is the next layer past the frozen ones?
            self.num_layers += 1
            return self.first_layer_idx + self.num_layers - 1 >= freeze_layers
        common = dict(activation=activation, conv_clamp=conv_clamp, channels_last=self.channels_last)

        if in_channels == 0 or architecture == 'skip':
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, kernel_size=1, trainable=trainable(), **common)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, kernel_size=3, trainable=trainable(), **common)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, kernel_size=3, down=2, trainable=trainable(),
            resample_filter=resample_filter, **common)
        if architecture == 'resnet':
            self.skip = Conv2dLayer(tmp_channels, out_channels, kernel_size=1, bias=False, down=2,
                trainable=trainable(), resample_filter=resample_filter, channels_last=self.channels_last)

    def forward(self, x, img, force_fp32=False):
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        memory_format = torch.channels_last if self.channels_last and not force_fp32 else torch.contiguous_format

        if x is not None:
            misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
            x = x.to(dtype=dtype, memory_format=memory_format)

        if self.in_channels == 0 or self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            img = img.to(dtype=dtype, memory_format=memory_format)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = upfirdn2d.downsample2d(img, self.resample_filter) if self.architecture == 'skip' else None

        if self.architecture == 'resnet':
            y = self.skip(x, gain=np.sqrt(0.5))
            x = self.conv0(x)
            x = self.conv1(x, gain=np.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv0(x)
            x = self.conv1(x)

        assert x.dtype == dtype
        return x, img

#----------------------------------------------------------------------------

@persistence.persistent_class
class MinibatchStdLayer(torch.nn.Module):
    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x):
        N, C, H, W = x.shape
        with misc.suppress_tracer_warnings(): # the group size becomes a constant when tracing
            G = int(min(self.group_size, N)) if self.group_size is not None else int(N)
        if int(N) % G != 0:
            raise ValueError(f'MinibatchStdLayer: batch size {int(N)} is not divisible by mbstd_group_size {G}')
        F = self.num_channels
        # Sample i falls in group i % (N // G); channels split into F groups whose stddevs are averaged.
        y = x.reshape(G, -1, F, C // F, H, W)
        y = (y - y.mean(dim=0)).square().mean(dim=0)    # [n,F,c,H,W] variance over each group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])       # [n,F] mean stddev
        y = y.reshape(-1, F, 1, 1).repeat(G, 1, H, W)   # [N,F,H,W]
        return torch.cat([x, y], dim=1)

#----------------------------------------------------------------------------

@persistence.persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    def __init__(self,
        in_channels,                    # Number of input channels.
        cmap_dim,                       # Size of the mapped label for the projection, 0 = unconditional.
        resolution,                     # Resolution of this block.
        img_channels,                   # Number of image channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        mbstd_group_size    = 4,        # Group size of the minibatch stddev layer, None = whole minibatch.
        mbstd_num_channels  = 1,        # Features of the minibatch stddev layer, 0 = no such layer.
        activation          = 'lrelu',  # Activation name from bias_act.activation_funcs.
        conv_clamp          = None,     # Clamp conv outputs to +-conv_clamp, None = no clamping.
    ):
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
        self.fc = FullyConnectedLayer(in_channels * (resolution ** 2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, force_fp32=False):
        misc.assert_shape(x, [None, self.in_channels, self.resolution, self.resolution])
        _ = force_fp32 # always float32
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == 'skip':
            misc.assert_shape(img, [None, self.img_channels, self.resolution, self.resolution])
            x = x + self.fromrgb(img.to(dtype=torch.float32, memory_format=torch.contiguous_format))

        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)

        # Projection discriminator: score = <out, cmap> / sqrt(cmap_dim).
        if self.cmap_dim > 0:
            misc.assert_shape(cmap, [None, self.cmap_dim])
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))

        assert x.dtype == torch.float32
        return x

#----------------------------------------------------------------------------

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    def __init__(self,
        c_dim,                          # Label (C) dimensionality, 0 = unconditional.
        img_resolution,                 # Input resolution.
        img_channels,                   # Number of image channels.
        architecture        = 'resnet', # 'orig', 'skip' or 'resnet'.
        channel_base        = 32768,    # Channels at resolution r: min(channel_base // r, channel_max).
        channel_max         = 512,      # Maximum number of channels in any layer.
        num_fp16_res        = 0,        # Run the N highest resolutions in float16.
        conv_clamp          = None,     # Clamp conv outputs to +-conv_clamp, None = no clamping.
        cmap_dim            = None,     # Size of the mapped label, None = channels at 4x4.
        block_kwargs        = {},       # Arguments for DiscriminatorBlock.
        mapping_kwargs      = {},       # Arguments for MappingNetwork (label mapping).
        epilogue_kwargs     = {},       # Arguments for DiscriminatorEpilogue.
    ):
        super().__init__()
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2 ** i for i in range(self.img_resolution_log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)

        if cmap_dim is None:
            cmap_dim = channels[4]
        if c_dim == 0:
            cmap_dim = 0

        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        layer_idx = 0
        for res in self.block_resolutions:
            block = DiscriminatorBlock(channels[res] if res < img_resolution else 0, channels[res], channels[res // 2],
                resolution=res, first_layer_idx=layer_idx, use_fp16=(res >= fp16_resolution), **block_kwargs, **common)
            setattr(self, f'b{res}', block)
            layer_idx += block.num_layers
        if c_dim > 0:
            self.mapping = MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **mapping_kwargs)
        self.b4 = DiscriminatorEpilogue(channels[4], cmap_dim=cmap_dim, resolution=4, **epilogue_kwargs, **common)

    def forward(self, img, c, **block_kwargs):
        x = None
        for res in self.block_resolutions:
            x, img = getattr(self, f'b{res}')(x, img, **block_kwargs)
        cmap = self.mapping(None, c) if self.c_dim > 0 else None
        return self.b4(x, img, cmap)

#----------------------------------------------------------------------------
