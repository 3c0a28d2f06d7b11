"""Registries of the pluggable parts: discriminator heads, network blocks, losses and backbones.

A plugin is one class in one module plus one `register()` line below. Registries map a short name (what the
command line says) to a dotted class name (what `dnnlib.util.construct_class_by_name` and the options saved in
training_options.json use), so nothing is imported until it is built and the training loop never branches on
plugin names. Plugin classes that live inside networks are persistent and import only torch, numpy, dnnlib and
torch_utils, so pickles holding them stay loadable by upstream StyleGAN2-ADA's loader."""

import dnnlib

#----------------------------------------------------------------------------

class Registry:
    """Named plugins of one kind."""

    def __init__(self, kind):
        self.kind = kind
        self._class_names = dict()

    def register(self, name, class_name):
        if name in self._class_names and self._class_names[name] != class_name:
            raise ValueError(f'{self.kind} "{name}" is already registered as {self._class_names[name]}')
        self._class_names[name] = class_name
        return class_name

    def names(self):
        return sorted(self._class_names)

    def __contains__(self, name):
        return name in self._class_names

    def class_name(self, name):
        if name not in self._class_names:
            raise ValueError(f'unknown {self.kind} "{name}"; choose from: {", ".join(self.names())}')
        return self._class_names[name]

    def kwargs(self, name, **kwargs):
        """Plain dict for construct_class_by_name, as stored in training_options.json."""
        return dnnlib.EasyDict(class_name=self.class_name(name), **kwargs)

    def build(self, name, **kwargs):
        return dnnlib.util.construct_class_by_name(**self.kwargs(name, **kwargs))

#----------------------------------------------------------------------------

HEADS = Registry('discriminator head')     # features [N, F] (+ labels) -> logits [N, K]
BLOCKS = Registry('network block')         # feature map [N, C, H, W] -> same shape, inserted by resolution
LOSSES = Registry('loss')                  # --loss=NAME: objective on logits [N, K]
BACKBONES = Registry('backbone')           # --arch=NAME: generator and discriminator classes

#----------------------------------------------------------------------------

# Discriminator heads (features [N, F], labels [N, c_dim] -> logits [N, K]). A head with extra outputs (ACGAN's class
# logits) declares split_outputs(out) -> (logits, extra) and aux_loss(extra, labels) -> [N], which the loss adds.
HEADS.register('linear', 'stylegan_som.heads.linear.LinearHead')
HEADS.register('projection', 'stylegan_som.heads.projection.ProjectionHead')
HEADS.register('mlp',        'stylegan_som.heads.mlp.MLPHead')
HEADS.register('acgan',      'stylegan_som.heads.acgan.ACGANHead')  # + class logits and their aux_loss

# Network blocks (feature map [N, C, H, W] -> same shape; networks' attn_resolutions / attn_kwargs).
BLOCKS.register('attention', 'stylegan_som.blocks.attention.SelfAttention')

# Losses (--loss): objectives in stylegan_som/losses/, applied by stylegan_som.loss.StyleGAN2Loss.
LOSSES.register('stylegan2', 'stylegan_som.losses.stylegan2.StyleGAN2')
LOSSES.register('ns',        'stylegan_som.losses.ns.NonSaturating')
LOSSES.register('minimax',   'stylegan_som.losses.minimax.Minimax')
LOSSES.register('hinge',     'stylegan_som.losses.hinge.Hinge')
LOSSES.register('wgan',      'stylegan_som.losses.wgan.WGAN')
LOSSES.register('wgan-gp',   'stylegan_som.losses.wgan_gp.WGANGP')
LOSSES.register('lsgan',     'stylegan_som.losses.lsgan.LSGAN')
LOSSES.register('lsgan-sigmoid', 'stylegan_som.losses.lsgan_sigmoid.LSGANSigmoid')
LOSSES.register('softmax',   'stylegan_som.losses.softmax.SoftmaxGAN')
LOSSES.register('rahinge',   'stylegan_som.losses.rahinge.RelativisticAverageHinge')
LOSSES.register('relativistic-hinge', 'stylegan_som.losses.rahinge.RelativisticAverageHinge') # MSG-GAN's name
LOSSES.register('rpgan',     'stylegan_som.losses.rpgan.RelativisticPairing')

# Backbones (--arch): modules holding a Generator and a Discriminator class.
BACKBONES.register('stylegan2', 'stylegan_som.networks.stylegan2')
BACKBONES.register('dcgan',     'stylegan_som.networks.dcgan')
BACKBONES.register('resnet',    'stylegan_som.networks.resnet')
BACKBONES.register('mlp',       'stylegan_som.networks.mlp')
