"""Coupled generators and discriminators for two image domains (CoGAN, Liu & Tuzel 2016; Soft-CoGAN): images of
a pair are domain A's channels followed by domain B's, each domain having img_channels / 2 of them.

The two members of a pair are built from the same kwargs (any backbone). couple='hard' is CoGAN's weight sharing:
the generators share their mapping and every synthesis layer but the domain's own ones (those of the top
resolution and the output layers, OWN_G_LAYERS), so one latent draws the same high-level content in both domains;
the discriminators share every layer but their first ones (those of the top resolution). Shared layers are the
same module objects, registered in both members. couple='soft' or 'none' keeps the two networks separate (soft:
the loss couples them with the regularisers of loss/regularisers/couple_*.py).

Persistent, importing only torch, dnnlib and torch_utils, like every network module."""

import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence

COUPLINGS = ('hard', 'soft', 'none')
OWN_G_LAYERS = ('torgb', 'out_norm') # the generators' layers after the last block, own in every coupling

def _own_layer(name, img_resolution, extra=()):
    return name.endswith(str(img_resolution)) or name in extra

def share_layers(module_a, module_b, img_resolution, extra_own=()):
    """Make module_b's children the very modules of module_a's, except its own ones; returns the shared names."""
    shared = []
    for name, child in list(module_a.named_children()):
        if not _own_layer(name, img_resolution, extra_own):
            setattr(module_b, name, child)
            shared.append(name)
    return shared

def split_pair(img, channels=None):
    """Pairs [N, 2 C, H, W] -> (A [N, C, H, W], B [N, C, H, W]); channels: C, checked where given."""
    channels = img.shape[1] // 2 if channels is None else channels
    misc.assert_shape(img, [None, 2 * channels, None, None])
    return img[:, :channels], img[:, channels:]

def _check_coupling(couple, img_channels, what):
    if couple not in COUPLINGS:
        raise ValueError(f'{what}: couple must be one of {", ".join(COUPLINGS)}, got {couple!r}')
    if img_channels % 2:
        raise ValueError(f'{what}: a pair of domains needs an even number of channels (A\'s, then B\'s), got {img_channels}')

#----------------------------------------------------------------------------

@persistence.persistent_class
class Encoder(torch.nn.Module):
    """image [N, C, H, W] -> z [N, z_dim]: strided convolutions down to 4x4 or less, average-pooled to 4x4, then
    linear. The latent cycle of Soft-CoGAN (--couple-cycle) maps both domains' images back through it."""

    def __init__(self, img_channels, z_dim, channels=32):
        super().__init__()
        self.conv0 = torch.nn.Conv2d(img_channels, channels, 4, stride=2, padding=1)
        self.conv1 = torch.nn.Conv2d(channels, channels * 2, 4, stride=2, padding=1)
        self.fc = torch.nn.Linear(channels * 2 * 16, z_dim)

    def forward(self, img):
        x = torch.nn.functional.leaky_relu(self.conv0(img.to(torch.float32)), 0.2)
        x = torch.nn.functional.leaky_relu(self.conv1(x), 0.2)
        return self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))

@persistence.persistent_class
class CoupledMapping(torch.nn.Module):
    """z, c -> ws: with a shared mapping (hard) its ws, which both syntheses read; else A's ws then B's along the
    ws axis, [N, num_ws_A + num_ws_B, w_dim]."""

    def __init__(self, mapping_a, mapping_b):
        super().__init__()
        self.a = mapping_a
        self.b = mapping_b
        self.z_dim, self.c_dim, self.w_dim = mapping_a.z_dim, mapping_a.c_dim, mapping_a.w_dim

    @property
    def shared(self):
        return self.a is self.b

    def forward(self, z, c, **kwargs):
        ws = self.a(z, c, **kwargs)
        return ws if self.shared else torch.cat([ws, self.b(z, c, **kwargs)], dim=1)

@persistence.persistent_class
class CoupledSynthesis(torch.nn.Module):
    """ws -> pair [N, 2 C, H, W] (A's channels, then B's). `encoder`: Soft-CoGAN's latent encoder, trained with G
    (the training loop optimises G's parameters), or None."""

    def __init__(self, synthesis_a, synthesis_b, shared_ws, encoder=None):
        super().__init__()
        self.a = synthesis_a
        self.b = synthesis_b
        self.shared_ws = shared_ws
        self.encoder = encoder
        self.w_dim = synthesis_a.w_dim
        self.img_resolution = synthesis_a.img_resolution
        self.img_channels = synthesis_a.img_channels * 2
        self.num_ws = synthesis_a.num_ws if shared_ws else synthesis_a.num_ws + synthesis_b.num_ws

    def forward(self, ws, **kwargs):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        ws_a, ws_b = (ws, ws) if self.shared_ws else (ws[:, :self.a.num_ws], ws[:, self.a.num_ws:])
        return torch.cat([self.a(ws_a, **kwargs), self.b(ws_b, **kwargs)], dim=1)

    def matching_layers(self):
        """[(name, layer of A, layer of B)]: the layers of the two syntheses by the same name that are not shared
        and not output layers, whose outputs the feature coupling compares."""
        layers_b = dict(self.b.named_children())
        return [(name, la, layers_b[name]) for name, la in self.a.named_children()
            if name in layers_b and layers_b[name] is not la and name not in OWN_G_LAYERS]

@persistence.persistent_class
class CoupledGenerator(torch.nn.Module):
    """z [N, z_dim], c -> pair [N, img_channels, H, W]; img_channels counts both domains. generator_kwargs: class
    name and arguments of each domain's generator (without c_dim, img_resolution, img_channels). encoder: build
    the latent encoder of --couple-cycle."""

    def __init__(self, c_dim, img_resolution, img_channels, couple='hard', generator_kwargs={}, encoder=False):
        super().__init__()
        _check_coupling(couple, img_channels, 'CoupledGenerator')
        if 'class_name' not in generator_kwargs:
            raise ValueError('CoupledGenerator: generator_kwargs needs the class_name of the two generators')
        common = dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels // 2)
        gen_a = dnnlib.util.construct_class_by_name(**generator_kwargs, **common)
        gen_b = dnnlib.util.construct_class_by_name(**generator_kwargs, **common)
        self.couple = couple
        self.z_dim, self.c_dim, self.w_dim = gen_a.z_dim, c_dim, gen_a.w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        if couple == 'hard':
            gen_b.mapping = gen_a.mapping
            share_layers(gen_a.synthesis, gen_b.synthesis, img_resolution, OWN_G_LAYERS)
        enc = Encoder(img_channels // 2, self.z_dim) if encoder else None
        self.mapping = CoupledMapping(gen_a.mapping, gen_b.mapping)
        self.synthesis = CoupledSynthesis(gen_a.synthesis, gen_b.synthesis, shared_ws=(couple == 'hard'), encoder=enc)
        self.num_ws = self.synthesis.num_ws

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)

    def to_display(self, img):
        """Pairs [N, 2 C, H, W] -> [N, C, H, 2 W], A left of B, for image grids and generate.py."""
        img_a, img_b = split_pair(img, self.img_channels // 2)
        return torch.cat([img_a, img_b], dim=3)

#----------------------------------------------------------------------------

@persistence.persistent_class
class CoupledDiscriminator(torch.nn.Module):
    """pair [N, img_channels, H, W], c -> logits [2 N, num_heads]: rows 0..N-1 are D_A's scores of the A images,
    rows N..2N-1 D_B's of the B images. Stacking the domains as samples of their own keeps each D a proper
    discriminator of its own domain under every objective (a sum or mean of the two logits would score the pair,
    which is unpaired in the data), and keeps logits per sample and head for the SOM weights and the penalties.
    hard: the two share every layer but the top resolution's (their first)."""

    def __init__(self, c_dim, img_resolution, img_channels, couple='hard', discriminator_kwargs={}):
        super().__init__()
        _check_coupling(couple, img_channels, 'CoupledDiscriminator')
        if 'class_name' not in discriminator_kwargs:
            raise ValueError('CoupledDiscriminator: discriminator_kwargs needs the class_name of the two discriminators')
        common = dict(c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels // 2)
        self.a = dnnlib.util.construct_class_by_name(**discriminator_kwargs, **common)
        self.b = dnnlib.util.construct_class_by_name(**discriminator_kwargs, **common)
        if couple == 'hard':
            shared = share_layers(self.a, self.b, img_resolution)
            if not shared:
                raise ValueError(f'CoupledDiscriminator: {discriminator_kwargs["class_name"]} has no layers below '
                    f'the top resolution to share')
        self.couple = couple
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.num_heads = getattr(self.a, 'num_heads', 1)

    def forward(self, img, c, **block_kwargs):
        img_a, img_b = split_pair(img, self.img_channels // 2)
        return torch.cat([self.a(img_a, c, **block_kwargs), self.b(img_b, c, **block_kwargs)], dim=0)

#----------------------------------------------------------------------------
