"""WGAN's Lipschitz constraint by clipping: every parameter of D clamped to [-clip, clip] after each optimizer
step that changed D. StyleGAN2 layers scale their stored weights at run time, so the clamp applies to the stored
values."""

import torch

class WeightClip:
    side = 'D'
    where = 'step'

    def __init__(self, clip, device=None):
        _ = device
        self.clip = clip

    @property
    def active(self):
        return bool(self.clip)

    def apply(self, loss):
        with torch.no_grad():
            for param in loss.D.parameters():
                param.clamp_(-self.clip, self.clip)
