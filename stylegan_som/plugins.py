"""Registries of the pluggable parts: discriminator heads, network blocks, losses and backbones.

A plugin is one class in one module plus one `register()` line below. Registries map a short name (what the
command line says) to a dotted class name (what `dnnlib.util.construct_class_by_name` and the options saved in
training_options.json use), so nothing is imported until it is built and the training loop never branches on
plugin names. Each entry also carries what the rest of the code needs to know about it (keyword arguments of
register(), read with info(); absent keys take the registry's defaults), and train.py, attach.py and --help derive
their choices and checks from these entries. Plugin classes that live inside networks are persistent and import
only torch, numpy, dnnlib and torch_utils, so pickles holding them stay loadable by upstream StyleGAN2-ADA's loader."""

import dnnlib

#----------------------------------------------------------------------------

class Registry:
    """Named plugins of one kind, each a class name plus facts about it (`defaults` lists the facts and their
    values for entries that do not state them)."""

    def __init__(self, kind, **defaults):
        self.kind = kind
        self.defaults = defaults
        self._entries = dict()

    def register(self, name, class_name, **info):
        unknown = set(info) - set(self.defaults)
        if unknown:
            raise ValueError(f'{self.kind} "{name}": unknown fact(s) {", ".join(sorted(unknown))}; '
                f'{self.kind} entries know {", ".join(self.defaults)}')
        if name in self._entries and self._entries[name]['class_name'] != class_name:
            raise ValueError(f'{self.kind} "{name}" is already registered as {self._entries[name]["class_name"]}')
        self._entries[name] = dict(self.defaults, **info, class_name=class_name)
        return class_name

    def unregister(self, name):
        """For tests that register a plugin at run time."""
        self._entries.pop(name, None)

    def names(self, **facts):
        """Sorted names, only those whose facts have the given values (e.g. names(mixable=True))."""
        return sorted(name for name, entry in self._entries.items() if all(entry[k] == v for k, v in facts.items()))

    def __contains__(self, name):
        return name in self._entries

    def info(self, name):
        if name not in self._entries:
            raise ValueError(f'unknown {self.kind} "{name}"; choose from: {", ".join(self.names())}')
        return dnnlib.EasyDict(self._entries[name])

    def class_name(self, name):
        return self.info(name).class_name

    def describe(self, name):
        """One line for --help: the entry's help, else the first line of its class's docstring."""
        entry = self.info(name)
        if entry.help or entry.class_name is None:
            return entry.help
        try:
            doc = dnnlib.util.get_obj_by_name(entry.class_name).__doc__ or ''
        except (ImportError, AttributeError):
            doc = ''
        return doc.strip().split('\n')[0]

    def kwargs(self, name, **kwargs):
        """Plain dict for construct_class_by_name, as stored in training_options.json."""
        return dnnlib.EasyDict(class_name=self.class_name(name), **kwargs)

    def build(self, name, **kwargs):
        return dnnlib.util.construct_class_by_name(**self.kwargs(name, **kwargs))

#----------------------------------------------------------------------------

# features [N, F] (+ labels) -> logits [N, K]. needs_labels: scores (image, label) pairs, so --cond=1;
# backbones: the only backbones that have it (None: any); class_name None: the network's own layer, no plugin.
# d_kwargs: D constructor arguments the head sets (only backbones whose D takes them have it); aux_loss: the head
# declares split_outputs(out) -> (logits, extra) and aux_loss(extra, labels) -> [N], which the loss adds (one
# head on one shared trunk).
HEADS = Registry('discriminator head', help='', needs_labels=False, backbones=None, d_kwargs=None, aux_loss=False)
# feature map [N, C, H, W] -> same shape, inserted by resolution (--g-blocks, --d-blocks; the networks'
# attn_resolutions and attn_kwargs). network_default: the class the networks build when attn_kwargs names none.
BLOCKS = Registry('network block', help='', network_default=False)
# --loss=NAME: an Objective on logits [N, K]; its regularisers are the class's `defaults`.
LOSSES = Registry('loss', help='')
# --arch=NAME: a module with a Generator and a Discriminator class. conv: image convnets (--cbase/--cmax size
# them); mixable: G and D pair with other mixable backbones (--g-arch); points: models 2-D point data; pow2:
# needs power-of-two resolutions; msg: G gives its image at every resolution and D takes them (--msg=1, MSG-GAN).
BACKBONES = Registry('backbone', help='', conv=True, mixable=False, points=False, pow2=False, msg=False)

#----------------------------------------------------------------------------

HEADS.register('cmap',       None, needs_labels=True, backbones=('stylegan2',),
    help='StyleGAN2\'s own conditioning: a projection onto an MLP embedding of the label')
HEADS.register('linear',     'stylegan_som.heads.linear.LinearHead', help='K linear outputs, no labels')
HEADS.register('projection', 'stylegan_som.heads.projection.ProjectionHead', needs_labels=True,
    help='Projection discriminator (Miyato & Koyama)')
HEADS.register('mlp',        'stylegan_som.heads.mlp.MLPHead', help='A hidden layer per head')
HEADS.register('concat',     None, needs_labels=True, d_kwargs=dict(concat_labels=True),
    help='CGAN: labels concatenated to D\'s input, an unconditional head (dcgan, resnet, mlp)')
HEADS.register('acgan',      'stylegan_som.heads.acgan.ACGANHead', needs_labels=True, aux_loss=True,
    help='ACGAN: real/fake logits plus an auxiliary classifier, its cross-entropy added to both losses')

BLOCKS.register('attention', 'stylegan_som.blocks.attention.SelfAttention', network_default=True,
    help='SAGAN self-attention (--g-attn/--d-attn)')

LOSSES.register('stylegan2', 'stylegan_som.losses.stylegan2.StyleGAN2',
    help='Non-saturating logistic, R1 (--gamma), path length and style mixing where the config has them')
LOSSES.register('ns',        'stylegan_som.losses.ns.NonSaturating',
    help='The same non-saturating logistic loss alone: no R1, no path length, no style mixing')
LOSSES.register('minimax',   'stylegan_som.losses.minimax.Minimax', help='The original minimax loss; no R1')
LOSSES.register('hinge',     'stylegan_som.losses.hinge.Hinge', help='Hinge loss; R1')
LOSSES.register('wgan',      'stylegan_som.losses.wgan.WGAN', help='Wasserstein, D\'s weights clipped to [-0.01, 0.01]; no R1')
LOSSES.register('wgan-gp',   'stylegan_som.losses.wgan_gp.WGANGP', help='Wasserstein with gradient penalty 10 on interpolates; no R1')
LOSSES.register('lsgan',     'stylegan_som.losses.lsgan.LSGAN', help='Least squares (targets 0 for fakes, 1 for reals); R1')
LOSSES.register('lsgan-sigmoid', 'stylegan_som.losses.lsgan_sigmoid.LSGANSigmoid',
    help='Least squares on sigmoid(D) instead of the raw logit (MSG-GAN\'s name); R1')
LOSSES.register('softmax',   'stylegan_som.losses.softmax.SoftmaxGAN', help='SoftMax GAN (softmax over the batch); R1')
LOSSES.register('rahinge',   'stylegan_som.losses.rahinge.RelativisticAverageHinge', help='Relativistic average hinge; R1')
LOSSES.register('relativistic-hinge', 'stylegan_som.losses.rahinge.RelativisticAverageHinge',
    help='Relativistic average hinge under MSG-GAN\'s name (an alias of rahinge); R1')
LOSSES.register('rpgan',     'stylegan_som.losses.rpgan.RelativisticPairing',
    help='Relativistic pairing (R3GAN); R1 and R2 (--r2-gamma), every step')

BACKBONES.register('stylegan2', 'stylegan_som.networks.stylegan2', pow2=True, msg=True,
    help='StyleGAN2\'s generator and discriminator (every config but toy and stacked-mnist)')
BACKBONES.register('dcgan',     'stylegan_som.networks.dcgan', mixable=True, msg=True,
    help='DCGAN (SNGAN\'s standard CNN): batch norm in G, spectral norm in D')
BACKBONES.register('resnet',    'stylegan_som.networks.resnet', mixable=True, msg=True, help='SNGAN\'s ResNet G and D')
BACKBONES.register('mlp',       'stylegan_som.networks.mlp', conv=False, points=True,
    help='Multilayer perceptrons for 2-D points (--data=ring8, grid25)')
