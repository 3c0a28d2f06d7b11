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
