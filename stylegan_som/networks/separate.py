"""K complete discriminators side by side, as the official SOMGAN StyleGAN code trains them (no shared trunk):
the baseline that `--som-share=none` builds to measure what sharing the trunk saves. Each member is a
single-head discriminator built from the same kwargs; the logits of all members form the [N, K] output that
the loss's SOM weighting expects.

Persistent and importing only torch, dnnlib and torch_utils, like every plugin that lives inside a network
pickle: the members are persistent objects themselves, so unpickling never runs the constructor below."""

import torch

import dnnlib
from torch_utils import persistence

#----------------------------------------------------------------------------

@persistence.persistent_class
class SeparateDiscriminators(torch.nn.Module):
    """image [N, C, H, W], c [N, c_dim] -> logits [N, num_heads], member k's single logit in column k.

    discriminator_kwargs: class_name and arguments of one member (c_dim, img_resolution and img_channels are
    added, as the training loop does for any D). Members are initialised independently (different draws)."""

    def __init__(self, c_dim, img_resolution, img_channels, num_heads=1, discriminator_kwargs={}):
        super().__init__()
        if int(num_heads) != num_heads or num_heads < 1:
            raise ValueError(f'SeparateDiscriminators: num_heads must be a positive integer, got {num_heads!r}')
        if 'class_name' not in discriminator_kwargs:
            raise ValueError('SeparateDiscriminators: discriminator_kwargs needs the class_name of the members')
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_heads = int(num_heads)
        self.discriminators = torch.nn.ModuleList([dnnlib.util.construct_class_by_name(**discriminator_kwargs,
            c_dim=c_dim, img_resolution=img_resolution, img_channels=img_channels) for _ in range(self.num_heads)])
        self.msg_resolutions = list(getattr(self.discriminators[0], 'msg_resolutions', [])) # MSG-GAN: the same for all

    def forward(self, img, c, **block_kwargs):
        logits = [member(img, c, **block_kwargs) for member in self.discriminators]
        for k, member_logits in enumerate(logits):
            if member_logits.ndim != 2 or member_logits.shape[1] != 1:
                raise ValueError(f'SeparateDiscriminators: member {k} returned logits of shape '
                    f'{tuple(member_logits.shape)}, expected [N, 1]')
        return torch.cat(logits, dim=1)

#----------------------------------------------------------------------------
