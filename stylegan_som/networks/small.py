"""Small generator/discriminator backbones behind StyleGAN2's interface: DCGAN, SNGAN's ResNet and an MLP for
2-D point data. `--arch=dcgan|resnet|mlp` selects them through the modules dcgan.py, resnet.py and mlp.py,
which name these classes Generator and Discriminator.

All three live in this one file because a network pickle embeds the source of the module that defines each
persistent class and must load without this package (upstream StyleGAN2-ADA's loader): the shared layers can
only be reused by classes of the same module. Like every persistent module here, it imports only torch,
numpy, dnnlib and torch_utils.

The generators offer what the loss, the metrics and generate.py use from StyleGAN2's: z_dim, c_dim, w_dim,
img_resolution, img_channels, num_ws (= 1), mapping(z, c, truncation_psi, truncation_cutoff,
skip_w_avg_update) -> ws [N, 1, w_dim], synthesis(ws, **ignored) and forward(z, c, truncation_psi,
truncation_cutoff, **ignored). StyleGAN2-only options (noise_mode, force_fp32, ...) are accepted and ignored.
The discriminators are a trunk (input -> features [N, F]) plus a head built from `head_kwargs` (default:
LinearHead without labels, ProjectionHead with them) returning logits [N, num_heads]. Convolutional trunks
take `attn_resolutions` (attention blocks after the layers of those resolutions, built from `attn_kwargs`,
default the registered SelfAttention); all take `spectral_norm`, `eq_lr` and `concat_labels`.

eq_lr=True (generators: in synthesis_kwargs and mapping_kwargs) gives every convolution and linear layer
StyleGAN's equalised learning rate: weights stored N(0, 1), biases 0, and the weight multiplied at run time by
1/sqrt(fan_in), as StyleGAN2's FullyConnectedLayer and Conv2dLayer do, so that Adam's step, which does not
depend on a parameter's scale, moves every layer's function at the same rate. Batch norm and the heads (which
are equalised already) are unchanged; the default False keeps torch's layers and their initialisation.
concat_labels=True (discriminators) is CGAN's conditioning: the labels enter with the input, concatenated to
the MLP's input vector or as c_dim constant maps next to the image's channels, and the head is unconditional.
"""

import numpy as np
import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence

DEFAULT_LINEAR_HEAD = 'stylegan_som.heads.linear.LinearHead'
DEFAULT_PROJECTION_HEAD = 'stylegan_som.heads.projection.ProjectionHead'
DEFAULT_ATTENTION = 'stylegan_som.blocks.attention.SelfAttention'

#----------------------------------------------------------------------------
# Layers with optional spectral normalisation (one power iteration per training forward, as in SNGAN).
# Written out here instead of torch.nn.utils.parametrizations.spectral_norm: parametrised modules refuse to
# pickle, and network pickles hold the modules themselves.

def _spectral_weight(layer, weight):
    if not layer.spectral_norm:
        return weight
    mat = weight.flatten(1) # [out, in * kh * kw]
    with torch.no_grad():
        u = layer.weight_u
        v = torch.nn.functional.normalize(mat.t().mv(u), dim=0, eps=1e-12)
        u = torch.nn.functional.normalize(mat.mv(v), dim=0, eps=1e-12)
        if layer.training:
            layer.weight_u.copy_(u)
        u, v = u.clone(), v.clone()
    sigma = torch.dot(u, mat.mv(v))
    return weight / sigma

def _init_u(layer, out_features):
    if layer.spectral_norm: # start vector of the power iteration, refined by every training forward
        layer.register_buffer('weight_u', torch.nn.functional.normalize(torch.randn([out_features]), dim=0))

def _init_eq_lr(layer, eq_lr):
    # Equalised learning rate: unit-variance weights, zero biases, the He-style scale 1/sqrt(fan_in) at run time.
    layer.eq_lr = bool(eq_lr)
    layer.weight_gain = 1 / np.sqrt(layer.weight[0].numel()) if eq_lr else 1
    if eq_lr:
        with torch.no_grad():
            layer.weight.normal_()
            if layer.bias is not None:
                layer.bias.zero_()

def _stored_weight(layer):
    return layer.weight * layer.weight_gain if layer.eq_lr else layer.weight

@persistence.persistent_class
class Linear(torch.nn.Module):
    def __init__(self, in_features, out_features, bias=True, spectral_norm=False, eq_lr=False):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.spectral_norm = spectral_norm
        layer = torch.nn.Linear(in_features, out_features, bias=bias)
        self.weight = layer.weight
        self.bias = layer.bias
        _init_u(self, out_features)
        _init_eq_lr(self, eq_lr)

    def forward(self, x):
        return torch.nn.functional.linear(x, _spectral_weight(self, _stored_weight(self)), self.bias)

@persistence.persistent_class
class Conv2d(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, spectral_norm=False,
            eq_lr=False):
        super().__init__()
        self.stride = stride
        self.padding = padding
        self.spectral_norm = spectral_norm
        layer = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.weight = layer.weight
        self.bias = layer.bias
        _init_u(self, out_channels)
        _init_eq_lr(self, eq_lr)

    def forward(self, x):
        return torch.nn.functional.conv2d(x, _spectral_weight(self, _stored_weight(self)), self.bias,
            stride=self.stride, padding=self.padding)

# The generators' layers: torch's own, or with eq_lr their equalised versions (same parameter names and shapes).

@persistence.persistent_class
class EqLinear(torch.nn.Linear):
    """torch.nn.Linear with an equalised learning rate; lr_multiplier slows it further (StyleGAN's mapping)."""

    def __init__(self, in_features, out_features, bias=True, lr_multiplier=1):
        super().__init__(in_features, out_features, bias=bias)
        with torch.no_grad():
            self.weight.normal_().div_(lr_multiplier)
            if self.bias is not None:
                self.bias.zero_()
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        bias = None if self.bias is None else self.bias * self.bias_gain
        return torch.nn.functional.linear(x, self.weight * self.weight_gain, bias)

@persistence.persistent_class
class EqConv2d(torch.nn.Conv2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with torch.no_grad():
            self.weight.normal_()
            if self.bias is not None:
                self.bias.zero_()
        self.weight_gain = 1 / np.sqrt(self.weight[0].numel()) # in_channels * kh * kw

    def forward(self, x):
        return self._conv_forward(x, self.weight * self.weight_gain, self.bias)

@persistence.persistent_class
class EqConvTranspose2d(torch.nn.ConvTranspose2d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with torch.no_grad():
            self.weight.normal_()
            if self.bias is not None:
                self.bias.zero_()
        # Weight [in, out, kh, kw]; fan-in counted as StyleGAN's up-sampling convolutions do: in * kh * kw.
        self.weight_gain = 1 / np.sqrt(self.weight.shape[0] * self.weight[0, 0].numel())

    def forward(self, x):
        return torch.nn.functional.conv_transpose2d(x, self.weight * self.weight_gain, self.bias, stride=self.stride,
            padding=self.padding, output_padding=self.output_padding, groups=self.groups, dilation=self.dilation)

def _linear(eq_lr, *args, **kwargs):
    return EqLinear(*args, **kwargs) if eq_lr else torch.nn.Linear(*args, **kwargs)

def _conv(eq_lr, *args, **kwargs):
    return EqConv2d(*args, **kwargs) if eq_lr else torch.nn.Conv2d(*args, **kwargs)

def _conv_transpose(eq_lr, *args, **kwargs):
    return EqConvTranspose2d(*args, **kwargs) if eq_lr else torch.nn.ConvTranspose2d(*args, **kwargs)

def concat_labels(x, c, c_dim):
    """CGAN's input conditioning: labels [N, c_dim] appended to x [N, F] or, as constant maps, to x [N, C, H, W]."""
    if c is None:
        raise ValueError(f'concat_labels: this discriminator takes labels of dimension {c_dim} with its input, got None')
    misc.assert_shape(c, [x.shape[0], c_dim])
    c = c.to(x.dtype)
    if x.ndim == 4:
        c = c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, c], dim=1)

#----------------------------------------------------------------------------
# Shared plumbing of the small backbones.

def start_resolution(img_resolution):
    """Resolution of the first feature map: img_resolution halved while it stays even and >= 4."""
    r = int(img_resolution)
    while r % 2 == 0 and r // 2 >= 4:
        r //= 2
    return r

def minibatch_stddev(x, group_size):
    """x [N, C, H, W] -> [N, C + 1, H, W]: appends the standard deviation of the features over groups of group_size
    samples (sample i in group i % (N / group_size)), averaged into one map, so that D can see a batch that lacks
    variety (StyleGAN's minibatch standard deviation, one map)."""
    N, C, H, W = x.shape
    G = min(int(group_size), int(N))
    if N % G != 0:
        raise ValueError(f'minibatch stddev: batch size {N} is not divisible by the group size {G}')
    spread = x.reshape(G, -1, C, H, W).var(dim=0, unbiased=False).add(1e-8).sqrt().mean(dim=[1, 2, 3]) # [N / G]
    return torch.cat([x, spread.reshape(-1, 1, 1, 1).repeat(G, 1, H, W)], dim=1)

def pack(x, pack_size):
    """PacGAN's packing (Lin et al. 2018): x [N, C, ...] -> [N / pack_size, pack_size * C, ...], consecutive
    samples side by side as channels, so that D scores pack_size samples at once and can see how varied they are."""
    if pack_size == 1:
        return x
    if x.shape[0] % pack_size != 0:
        raise ValueError(f'pack_size {pack_size}: the batch of {x.shape[0]} samples is not a multiple of it')
    return x.reshape(x.shape[0] // pack_size, pack_size * x.shape[1], *x.shape[2:])

def _check_pack(pack_size, c_dim):
    if int(pack_size) != pack_size or pack_size < 1:
        raise ValueError(f'pack_size must be a positive integer, got {pack_size}')
    if pack_size > 1 and c_dim > 0:
        raise ValueError(f'pack_size {pack_size}: packing scores several samples at once, which a conditional D '
            f'(c_dim {c_dim}) cannot; use pack_size 1')
    return int(pack_size)

def build_head(in_features, num_heads, c_dim, head_kwargs):
    kwargs = dict(head_kwargs)
    class_name = kwargs.pop('class_name', None) or (DEFAULT_PROJECTION_HEAD if c_dim > 0 else DEFAULT_LINEAR_HEAD)
    return dnnlib.util.construct_class_by_name(class_name=class_name, in_features=in_features, num_heads=num_heads,
        c_dim=c_dim, **kwargs)

def build_attention(channels, attn_kwargs):
    kwargs = dict(attn_kwargs)
    class_name = kwargs.pop('class_name', None) or DEFAULT_ATTENTION
    return dnnlib.util.construct_class_by_name(class_name=class_name, channels=channels, **kwargs)

# The same rule as stylegan2._msg_split, kept twice on purpose: each network module imports only what upstream
# has (tests/stylegan_som/networks/test_small.py), so that the pickles embedding it load there.
def msg_split(img, resolutions, owner):
    """MSG-GAN's input to a discriminator with msg=True: (full-resolution image, {r: image at r x r}) from the
    pyramid [img, at resolutions[0], ...] (a list: G's outputs or the reals' pooled copies), or from one image,
    pooled here (average pooling by img_res / r, the loss's operator for reals). Without resolutions, one image."""
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

def build_msg(owner, resolutions, channels, img_channels, **conv_kwargs):
    """MSG-GAN's combine layers msg{r}: cat_lin, a 1x1 convolution of [features; image] back to the features'
    channels. Of the paper's three combine functions it is the one that keeps every block's channel count, so
    the backbone's layers stay as they are and only these are added."""
    for res in resolutions:
        setattr(owner, f'msg{res}', Conv2d(channels(res) + img_channels, channels(res), 1, **conv_kwargs))
    owner.msg_resolutions = list(resolutions)

def msg_combine(owner, x, scales, res, pack_size=1):
    if res not in scales:
        return x
    return getattr(owner, f'msg{res}')(torch.cat([x, pack(scales[res].to(x.dtype), pack_size)], dim=1))

@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    """z (and c) -> ws [N, 1, w_dim]. Without labels, extra layers or a width change it is the identity on z,
    as in a plain DCGAN; otherwise z and an embedding of c are concatenated and mapped by num_layers (>= 1)
    linear layers. A running mean w_avg supports the truncation trick (psi < 1 pulls w towards it).
    lr_multiplier scales the layers' learning rate, as StyleGAN's mapping network does (0.01 there): the weights
    are stored divided by it and multiplied back in forward, so Adam's steps on them shrink by that factor."""

    def __init__(self, z_dim, c_dim, w_dim, num_ws=1, num_layers=0, embed_features=None, w_avg_beta=0.995,
            lr_multiplier=1, eq_lr=False):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.w_avg_beta = w_avg_beta
        self.identity = (c_dim == 0 and num_layers == 0 and z_dim == w_dim)
        self.num_layers = 0 if self.identity else max(num_layers, 1)
        embed_features = 0 if c_dim == 0 else (z_dim if embed_features is None else embed_features)
        self.eq_lr = bool(eq_lr) # EqLinear layers apply lr_multiplier themselves
        layer = (lambda fin, fout: EqLinear(fin, fout, lr_multiplier=lr_multiplier)) if eq_lr else torch.nn.Linear
        if c_dim > 0:
            self.embed = layer(c_dim, embed_features)
        sizes = [z_dim + embed_features] + [w_dim] * self.num_layers
        self.lr_multiplier = lr_multiplier
        for idx in range(self.num_layers):
            setattr(self, f'fc{idx}', layer(sizes[idx], sizes[idx + 1]))
        if lr_multiplier != 1 and not eq_lr: # same initial function, parameters stored at 1 / lr_multiplier
            with torch.no_grad():
                for layer in self.children():
                    for param in layer.parameters():
                        param.div_(lr_multiplier)
        self.register_buffer('w_avg', torch.zeros([w_dim]))

    def _linear(self, layer, x):
        g = self.lr_multiplier
        return layer(x) if (g == 1 or self.eq_lr) else torch.nn.functional.linear(x, layer.weight * g, layer.bias * g)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        misc.assert_shape(z, [None, self.z_dim])
        w = z.to(torch.float32)
        if self.c_dim > 0:
            misc.assert_shape(c, [None, self.c_dim])
            w = torch.cat([w, self._linear(self.embed, c.to(torch.float32))], dim=1)
        for idx in range(self.num_layers):
            w = self._linear(getattr(self, f'fc{idx}'), w)
            if idx < self.num_layers - 1:
                w = torch.nn.functional.leaky_relu(w, 0.2)
        if self.training and self.w_avg_beta is not None and not skip_w_avg_update:
            self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta)) # w is bf16 under autocast
        w = w.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            w[:, :cutoff] = self.w_avg.lerp(w[:, :cutoff], truncation_psi)
        return w

#----------------------------------------------------------------------------
# Generators share everything but the synthesis network.

class _GeneratorBase(torch.nn.Module):
    synthesis_class = None

    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, synthesis_kwargs={}):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = self.synthesis_class(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
            **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

def _check_attn(attn_resolutions, resolutions, what):
    attn = [int(r) for r in attn_resolutions]
    bad = [r for r in attn if r not in resolutions]
    if bad:
        raise ValueError(f'attn_resolutions {bad} are not among the {what}\'s resolutions {sorted(set(resolutions))}')
    return attn

def _channels(channel_base, channel_max):
    return lambda res: max(min(channel_base // res, channel_max), 1)

def _norm(batch_norm, channels):
    return torch.nn.BatchNorm2d(channels) if batch_norm else torch.nn.Identity()

#----------------------------------------------------------------------------
# DCGAN (the "standard CNN" of the SNGAN paper).

class _ConvSynthesisBase(torch.nn.Module):
    """What the convolutional synthesis networks share: ws [N, 1, w_dim] -> linear `fc` -> r0 x r0 map, doubled
    up to img_resolution by the subclass's blocks, optional attention after the layers of attn_resolutions."""

    def _init_layout(self, w_dim, img_resolution, img_channels, channel_base, channel_max, attn_resolutions,
            output_activation, eq_lr=False):
        """Set the shape attributes and `fc`; returns the channels-per-resolution function."""
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_ws = 1
        self.output_activation = output_activation
        self.r0 = start_resolution(img_resolution)
        self.block_resolutions = []
        while self.r0 * 2 ** len(self.block_resolutions) < img_resolution:
            self.block_resolutions.append(self.r0 * 2 ** (len(self.block_resolutions) + 1))
        self.attn_resolutions = _check_attn(attn_resolutions, [self.r0] + self.block_resolutions, 'generator')
        channels = _channels(channel_base, channel_max)
        self.fc = _linear(eq_lr, w_dim, channels(self.r0) * self.r0 * self.r0)
        return channels

    def _attend(self, x, res):
        return getattr(self, f'attn{res}')(x) if res in self.attn_resolutions else x

    def _init_msg(self, msg_resolutions, channels, eq_lr):
        """MSG-GAN: a 1x1 to-RGB `msg_torgb{r}` of the features at each r of msg_resolutions (below
        img_resolution), whose images forward(return_pyramid=True) returns after the final one."""
        levels = [self.r0] + self.block_resolutions[:-1]
        bad = [r for r in msg_resolutions if r not in levels]
        if bad:
            raise ValueError(f'msg_resolutions {bad}: this generator has features at {levels} below its output')
        self.msg_resolutions = sorted(set(int(r) for r in msg_resolutions), reverse=True)
        for res in self.msg_resolutions:
            setattr(self, f'msg_torgb{res}', _conv(eq_lr, channels(res), self.img_channels, 1))

    def _out(self, x):
        return torch.tanh(x) if self.output_activation == 'tanh' else x

    def _msg_level(self, pyramid, x, res, relu=False):
        """Adds the image of the features x (ReLU first if relu) at res to `pyramid` (a dict) if MSG-GAN asks for
        that scale."""
        if pyramid is not None and res in self.msg_resolutions:
            pyramid[res] = self._out(getattr(self, f'msg_torgb{res}')(torch.relu(x) if relu else x))

    def _msg_result(self, img, pyramid):
        if pyramid is None:
            return img
        return [img] + [pyramid[res] for res in self.msg_resolutions]

@persistence.persistent_class
class DCGANSynthesis(_ConvSynthesisBase):
    """ws [N, 1, w_dim] -> linear -> r0 x r0 map -> 4x4 stride-2 transposed convolutions (batch norm, ReLU) up to
    img_resolution -> 3x3 convolution -> tanh. r0 = start_resolution(img_resolution) (4 for 32, 7 for 28).
    msg_resolutions (MSG-GAN): the features at those resolutions through 1x1 to-RGBs (see _init_msg)."""

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=2048, channel_max=512, batch_norm=True,
            attn_resolutions=[], attn_kwargs={}, output_activation='tanh', eq_lr=False, msg_resolutions=[]):
        super().__init__()
        channels = self._init_layout(w_dim, img_resolution, img_channels, channel_base, channel_max,
            attn_resolutions, output_activation, eq_lr=eq_lr)
        cin = channels(self.r0)
        self.fc_norm = _norm(batch_norm, cin)
        for res in self.block_resolutions:
            setattr(self, f'up{res}', _conv_transpose(eq_lr, cin, channels(res), 4, stride=2, padding=1))
            setattr(self, f'norm{res}', _norm(batch_norm, channels(res)))
            cin = channels(res)
        self.torgb = _conv(eq_lr, cin, img_channels, 3, padding=1)
        for res in self.attn_resolutions: # last, so that adding attention leaves the other initial weights alone
            setattr(self, f'attn{res}', build_attention(channels(res), attn_kwargs))
        self._init_msg(msg_resolutions, channels, eq_lr)

    def forward(self, ws, return_pyramid=False, **_unused):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        pyramid = dict() if return_pyramid else None
        x = self.fc(ws[:, 0].to(torch.float32)).reshape(ws.shape[0], -1, self.r0, self.r0)
        x = self._attend(torch.relu(self.fc_norm(x)), self.r0)
        self._msg_level(pyramid, x, self.r0)
        for res in self.block_resolutions:
            x = torch.relu(getattr(self, f'norm{res}')(getattr(self, f'up{res}')(x)))
            x = self._attend(x, res)
            self._msg_level(pyramid, x, res)
        return self._msg_result(self._out(self.torgb(x)), pyramid)

@persistence.persistent_class
class DCGANGenerator(_GeneratorBase):
    synthesis_class = DCGANSynthesis

@persistence.persistent_class
class DCGANDiscriminator(torch.nn.Module):
    """image [N, C, R, R], c [N, c_dim] -> logits [N, num_heads]. Per resolution down to r0: a 3x3 convolution
    and a 4x4 stride-2 convolution (leaky ReLU 0.1); then [minibatch stddev +] a 3x3 convolution at r0, flattened
    into the head. mbstd_group_size > 0 adds StyleGAN's minibatch standard deviation as one more feature map;
    batch_norm normalises each strided convolution's output (as in Radford et al.'s DCGAN, whose D has no SN).
    pack_size > 1 scores that many consecutive samples at once (PacGAN, see pack): logits [N / pack_size, ...].
    msg=True (MSG-GAN): the image is a pyramid, each scale entering the convolution that reads its resolution
    (see msg_split, build_msg)."""

    def __init__(self, c_dim, img_resolution, img_channels, channel_base=2048, channel_max=512, spectral_norm=True,
            num_heads=1, head_kwargs={}, attn_resolutions=[], attn_kwargs={}, mbstd_group_size=0, batch_norm=False,
            pack_size=1, eq_lr=False, concat_labels=False, msg=False):
        super().__init__()
        self.concat_labels = bool(concat_labels)
        self.mbstd_group_size = mbstd_group_size
        self.pack_size = _check_pack(pack_size, c_dim)
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_heads = num_heads
        self.r0 = start_resolution(img_resolution)
        self.block_resolutions = []
        r = img_resolution
        while r > self.r0:
            self.block_resolutions.append(r)
            r //= 2
        self.attn_resolutions = _check_attn(attn_resolutions, self.block_resolutions + [self.r0], 'discriminator')
        channels = _channels(channel_base, channel_max)
        sn = dict(spectral_norm=spectral_norm, eq_lr=eq_lr)

        cin = img_channels * self.pack_size + (c_dim if concat_labels else 0)
        for res in self.block_resolutions:
            setattr(self, f'conv{res}', Conv2d(cin, channels(res), 3, padding=1, **sn))
            setattr(self, f'down{res}', Conv2d(channels(res), channels(res // 2), 4, stride=2, padding=1, **sn))
            setattr(self, f'norm{res}', _norm(batch_norm, channels(res // 2)))
            cin = channels(res // 2)
        self.conv_out = Conv2d(cin + (1 if mbstd_group_size else 0), channels(self.r0), 3, padding=1, **sn)
        self.num_features = channels(self.r0) * self.r0 * self.r0
        self.head = build_head(self.num_features, num_heads, 0 if concat_labels else c_dim, head_kwargs)
        for res in self.attn_resolutions: # last, so that adding attention leaves the other initial weights alone
            setattr(self, f'attn{res}', build_attention(channels(res), attn_kwargs))
        levels = (self.block_resolutions[1:] + [self.r0]) if (msg and self.block_resolutions) else []
        build_msg(self, levels, channels, img_channels * self.pack_size, **sn)

    def _attend(self, x, res):
        return getattr(self, f'attn{res}')(x) if res in self.attn_resolutions else x

    def features(self, img, c=None):
        img, scales = msg_split(img, self.__dict__.get('msg_resolutions', []), type(self).__name__)
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        lrelu = lambda t: torch.nn.functional.leaky_relu(t, 0.1)
        x = pack(img.to(torch.float32), self.pack_size)
        if self.__dict__.get('concat_labels', False):
            x = concat_labels(x, c, self.c_dim)
        for res in self.block_resolutions:
            x = msg_combine(self, x, scales, res, self.pack_size)
            x = self._attend(lrelu(getattr(self, f'conv{res}')(x)), res)
            x = lrelu(getattr(self, f'norm{res}')(getattr(self, f'down{res}')(x)))
        x = msg_combine(self, x, scales, self.r0, self.pack_size)
        if self.mbstd_group_size:
            x = minibatch_stddev(x, self.mbstd_group_size)
        x = self._attend(lrelu(self.conv_out(x)), self.r0)
        return x.flatten(1)

    def forward(self, img, c, **_unused):
        return self.head(self.features(img, c), c)

#----------------------------------------------------------------------------
# ResNet (SNGAN's CIFAR-10 networks, after Gulrajani et al.).

@persistence.persistent_class
class ResBlockUp(torch.nn.Module):
    """BN-ReLU-up-conv3x3-BN-ReLU-conv3x3, plus up-conv1x1 shortcut (identity if nothing changes)."""

    def __init__(self, in_channels, out_channels, up=True, batch_norm=True, eq_lr=False):
        super().__init__()
        self.up = up
        self.norm0 = _norm(batch_norm, in_channels)
        self.conv0 = _conv(eq_lr, in_channels, out_channels, 3, padding=1)
        self.norm1 = _norm(batch_norm, out_channels)
        self.conv1 = _conv(eq_lr, out_channels, out_channels, 3, padding=1)
        self.skip = _conv(eq_lr, in_channels, out_channels, 1) if (up or in_channels != out_channels) else None

    def forward(self, x):
        upsample = (lambda t: torch.nn.functional.interpolate(t, scale_factor=2, mode='nearest')) if self.up else (lambda t: t)
        h = self.conv0(upsample(torch.relu(self.norm0(x))))
        h = self.conv1(torch.relu(self.norm1(h)))
        s = upsample(x)
        return h + (self.skip(s) if self.skip is not None else s)

@persistence.persistent_class
class ResBlockDown(torch.nn.Module):
    """(ReLU)-conv3x3-ReLU-conv3x3-(avgpool), plus conv1x1-(avgpool) shortcut. The first block of the trunk
    sees the image: no ReLU in front and the shortcut pools before its convolution (SNGAN's optimised block)."""

    def __init__(self, in_channels, out_channels, down=True, first=False, spectral_norm=True, eq_lr=False):
        super().__init__()
        self.down = down
        self.first = first
        sn = dict(spectral_norm=spectral_norm, eq_lr=eq_lr)
        self.conv0 = Conv2d(in_channels, out_channels, 3, padding=1, **sn)
        self.conv1 = Conv2d(out_channels, out_channels, 3, padding=1, **sn)
        self.skip = Conv2d(in_channels, out_channels, 1, **sn) if (down or in_channels != out_channels) else None

    def forward(self, x):
        pool = (lambda t: torch.nn.functional.avg_pool2d(t, 2)) if self.down else (lambda t: t)
        h = x if self.first else torch.relu(x)
        h = pool(self.conv1(torch.relu(self.conv0(h))))
        if self.skip is None:
            return h + x
        s = self.skip(pool(x)) if self.first else pool(self.skip(x))
        return h + s

@persistence.persistent_class
class ResNetSynthesis(_ConvSynthesisBase):
    """ws [N, 1, w_dim] -> linear -> r0 x r0 map -> up blocks to img_resolution -> BN-ReLU-conv3x3 -> tanh.
    msg_resolutions (MSG-GAN): ReLU of the features at those resolutions through 1x1 to-RGBs (see _init_msg)."""

    def __init__(self, w_dim, img_resolution, img_channels, channel_base=8192, channel_max=256, batch_norm=True,
            attn_resolutions=[], attn_kwargs={}, output_activation='tanh', eq_lr=False, msg_resolutions=[]):
        super().__init__()
        channels = self._init_layout(w_dim, img_resolution, img_channels, channel_base, channel_max,
            attn_resolutions, output_activation, eq_lr=eq_lr)
        cin = channels(self.r0)
        for res in self.block_resolutions:
            setattr(self, f'b{res}', ResBlockUp(cin, channels(res), up=True, batch_norm=batch_norm, eq_lr=eq_lr))
            cin = channels(res)
        self.out_norm = _norm(batch_norm, cin)
        self.torgb = _conv(eq_lr, cin, img_channels, 3, padding=1)
        for res in self.attn_resolutions: # last, so that adding attention leaves the other initial weights alone
            setattr(self, f'attn{res}', build_attention(channels(res), attn_kwargs))
        self._init_msg(msg_resolutions, channels, eq_lr)

    def forward(self, ws, return_pyramid=False, **_unused):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        pyramid = dict() if return_pyramid else None
        x = self.fc(ws[:, 0].to(torch.float32)).reshape(ws.shape[0], -1, self.r0, self.r0)
        x = self._attend(x, self.r0)
        self._msg_level(pyramid, x, self.r0, relu=True)
        for res in self.block_resolutions:
            x = self._attend(getattr(self, f'b{res}')(x), res)
            self._msg_level(pyramid, x, res, relu=True)
        return self._msg_result(self._out(self.torgb(torch.relu(self.out_norm(x)))), pyramid)

@persistence.persistent_class
class ResNetGenerator(_GeneratorBase):
    synthesis_class = ResNetSynthesis

@persistence.persistent_class
class ResNetDiscriminator(torch.nn.Module):
    """image [N, C, R, R], c [N, c_dim] -> logits [N, num_heads]. Down blocks halve the resolution while it stays
    even and at least min_resolution (32 -> 16 -> 8), then num_final_blocks blocks without pooling; ReLU and
    a sum over positions give the features [N, channels]. mbstd_group_size > 0 adds the minibatch standard
    deviation as one more map before the final blocks; pack_size > 1 packs samples as the DCGAN's D does.
    msg=True (MSG-GAN): the image is a pyramid, each scale entering the block that reads its resolution (see
    msg_split, build_msg)."""

    def __init__(self, c_dim, img_resolution, img_channels, channel_base=4096, channel_max=128, spectral_norm=True,
            min_resolution=8, num_final_blocks=2, num_heads=1, head_kwargs={}, attn_resolutions=[], attn_kwargs={},
            mbstd_group_size=0, pack_size=1, eq_lr=False, concat_labels=False, msg=False):
        super().__init__()
        self.concat_labels = bool(concat_labels)
        self.mbstd_group_size = mbstd_group_size
        self.pack_size = _check_pack(pack_size, c_dim)
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_heads = num_heads
        self.block_resolutions = [] # input resolution of each down block
        r = img_resolution
        while r % 2 == 0 and r // 2 >= min_resolution:
            self.block_resolutions.append(r)
            r //= 2
        self.r0 = r
        self.num_final_blocks = num_final_blocks
        self.attn_resolutions = _check_attn(attn_resolutions, [res // 2 for res in self.block_resolutions] + [r],
            'discriminator')
        channels = _channels(channel_base, channel_max)
        sn = dict(spectral_norm=spectral_norm, eq_lr=eq_lr)

        cin = img_channels * self.pack_size + (c_dim if concat_labels else 0)
        for idx, res in enumerate(self.block_resolutions):
            setattr(self, f'b{res}', ResBlockDown(cin, channels(res // 2), down=True, first=(idx == 0), **sn))
            cin = channels(res // 2)
        cin += 1 if mbstd_group_size else 0
        for idx in range(num_final_blocks):
            setattr(self, f'final{idx}', ResBlockDown(cin, channels(self.r0), down=False,
                first=(idx == 0 and not self.block_resolutions), **sn))
            cin = channels(self.r0)
        self.num_features = cin
        self.head = build_head(self.num_features, num_heads, 0 if concat_labels else c_dim, head_kwargs)
        for res in self.attn_resolutions: # last, so that adding attention leaves the other initial weights alone
            setattr(self, f'attn{res}', build_attention(channels(res), attn_kwargs))
        levels = (self.block_resolutions[1:] + [self.r0]) if (msg and self.block_resolutions) else []
        build_msg(self, levels, channels, img_channels * self.pack_size, **sn)

    def _attend(self, x, res):
        return getattr(self, f'attn{res}')(x) if res in self.attn_resolutions else x

    def features(self, img, c=None):
        img, scales = msg_split(img, self.__dict__.get('msg_resolutions', []), type(self).__name__)
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x = pack(img.to(torch.float32), self.pack_size)
        if self.__dict__.get('concat_labels', False):
            x = concat_labels(x, c, self.c_dim)
        for res in self.block_resolutions:
            x = msg_combine(self, x, scales, res, self.pack_size)
            x = self._attend(getattr(self, f'b{res}')(x), res // 2)
        x = msg_combine(self, x, scales, self.r0, self.pack_size)
        if self.mbstd_group_size:
            x = minibatch_stddev(x, self.mbstd_group_size)
        for idx in range(self.num_final_blocks):
            x = getattr(self, f'final{idx}')(x)
        return torch.relu(x).sum(dim=[2, 3])

    def forward(self, img, c, **_unused):
        return self.head(self.features(img, c), c)

#----------------------------------------------------------------------------
# MLP, for 2-D point data: an "image" of img_channels values at img_resolution 1 ([N, 2, 1, 1]). No feature
# maps, hence no attention blocks (and no attn_resolutions argument, so train.py's --g-attn/--d-attn say so).

_ACTIVATIONS = dict(relu=torch.relu, lrelu=lambda t: torch.nn.functional.leaky_relu(t, 0.2), tanh=torch.tanh,
    elu=torch.nn.functional.elu)

def _activation(name):
    if name not in _ACTIVATIONS:
        raise ValueError(f'unknown activation {name!r}; choose from {", ".join(sorted(_ACTIVATIONS))}')
    return _ACTIVATIONS[name]

@persistence.persistent_class
class MLPSynthesis(torch.nn.Module):
    """ws [N, 1, w_dim] -> num_layers hidden layers -> linear output reshaped to [N, C, R, R] (no squashing:
    point data lives in its own coordinates)."""

    def __init__(self, w_dim, img_resolution, img_channels, layer_features=256, num_layers=3, activation='relu',
            batch_norm=False, eq_lr=False):
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_ws = 1
        self.num_layers = num_layers
        self.activation = activation
        _activation(activation)
        sizes = [w_dim] + [layer_features] * num_layers
        for idx in range(num_layers):
            setattr(self, f'fc{idx}', _linear(eq_lr, sizes[idx], sizes[idx + 1]))
            setattr(self, f'norm{idx}', torch.nn.BatchNorm1d(sizes[idx + 1]) if batch_norm else torch.nn.Identity())
        self.out = _linear(eq_lr, sizes[-1], img_channels * img_resolution * img_resolution)

    def forward(self, ws, **_unused):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        act = _activation(self.activation)
        x = ws[:, 0].to(torch.float32)
        for idx in range(self.num_layers):
            x = act(getattr(self, f'norm{idx}')(getattr(self, f'fc{idx}')(x)))
        return self.out(x).reshape(-1, self.img_channels, self.img_resolution, self.img_resolution)

@persistence.persistent_class
class MLPGenerator(_GeneratorBase):
    synthesis_class = MLPSynthesis

@persistence.persistent_class
class MLPDiscriminator(torch.nn.Module):
    """input [N, C, R, R] (flattened), c [N, c_dim] -> num_layers hidden layers -> head -> logits [N, num_heads].
    mbstd_group_size > 0 adds the minibatch standard deviation as one more input of the last layer (or head);
    pack_size > 1 concatenates that many consecutive samples into one input (PacGAN, see pack)."""

    def __init__(self, c_dim, img_resolution, img_channels, layer_features=256, num_layers=3, activation='lrelu',
            spectral_norm=False, num_heads=1, head_kwargs={}, mbstd_group_size=0, pack_size=1, eq_lr=False,
            concat_labels=False):
        super().__init__()
        self.concat_labels = bool(concat_labels)
        self.mbstd_group_size = mbstd_group_size
        self.pack_size = _check_pack(pack_size, c_dim)
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.activation = activation
        _activation(activation)
        sizes = [self.pack_size * img_channels * img_resolution * img_resolution + (c_dim if concat_labels else 0)]
        sizes += [layer_features] * num_layers
        for idx in range(num_layers):
            extra = 1 if (mbstd_group_size and idx == num_layers - 1) else 0
            setattr(self, f'fc{idx}', Linear(sizes[idx] + extra, sizes[idx + 1], spectral_norm=spectral_norm, eq_lr=eq_lr))
        self.num_features = sizes[-1] + (1 if (mbstd_group_size and num_layers == 0) else 0)
        self.head = build_head(self.num_features, num_heads, 0 if concat_labels else c_dim, head_kwargs)

    def features(self, img, c=None):
        misc.assert_shape(img, [None, self.img_channels, self.img_resolution, self.img_resolution])
        act = _activation(self.activation)
        x = pack(img.to(torch.float32), self.pack_size).flatten(1)
        if self.__dict__.get('concat_labels', False):
            x = concat_labels(x, c, self.c_dim)
        for idx in range(self.num_layers):
            if self.mbstd_group_size and idx == self.num_layers - 1:
                x = self._with_stddev(x)
            x = act(getattr(self, f'fc{idx}')(x))
        return self._with_stddev(x) if (self.mbstd_group_size and self.num_layers == 0) else x

    def _with_stddev(self, x):
        return minibatch_stddev(x[:, :, None, None], self.mbstd_group_size).flatten(1)

    def forward(self, img, c, **_unused):
        return self.head(self.features(img, c), c)

#----------------------------------------------------------------------------
