"""What Soft-CoGAN's couplings of the two generators share (the regularisers couple_*.py, --couple-feature etc.):
each is a pass of its own in G's regularisation phase that draws pairs from the coupled generator
(networks/coupled.py) and adds weight * a distance between the two images of each pair, or their features."""

import torch
import torch.nn.functional as F

import dnnlib
from torch_utils import training_stats

from ...networks.coupled import split_pair # pylint: disable=unused-import (the couplings import it from here)

def coupled_synthesis(loss, what):
    """The coupled synthesis network of the loss's G (unwrapped from DDP); a clear error for any other G."""
    synthesis = getattr(loss.G_synthesis, 'module', loss.G_synthesis)
    if not callable(getattr(synthesis, 'matching_layers', None)):
        raise ValueError(f'{what}: needs a coupled generator (stylegan_som.networks.coupled, --couple=soft), '
            f'not {type(synthesis).__name__}')
    return synthesis

def build_classifier(factory, device, what):
    """The fixed network of a coupling: `factory` names a callable (device) -> module, e.g. the digit classifier
    train.py passes in; frozen and in eval mode."""
    if not factory:
        raise ValueError(f'{what}: needs a classifier factory (loss keyword couple_classifier)')
    net = dnnlib.util.get_obj_by_name(factory)(device=torch.device(device))
    return net.eval().requires_grad_(False)

def digits(img):
    """Generated digits [N, 1, H, W] in [-1, 1] -> [N, 1, 28, 28] as the digit classifier reads them: 32x32 (the
    built-in MNIST's zero-padded digits) cropped to the centre, other sizes resized."""
    if img.shape[1] != 1:
        raise ValueError(f'the digit classifier reads one channel per domain, got {img.shape[1]}')
    if tuple(img.shape[2:]) == (32, 32):
        return img[:, :, 2:30, 2:30]
    if tuple(img.shape[2:]) != (28, 28):
        return F.interpolate(img, size=(28, 28), mode='bilinear', align_corners=False)
    return img

class Coupling:
    """Base of the couplings: weight (0 = off) times self.distance(loss, synthesis, batch, sync) -> (scalar,
    generated pairs), reported as Loss/G/couple_<name>."""
    side = 'G'
    where = 'pass'
    name = None

    def __init__(self, weight, device=None):
        self.weight = weight
        self.device = device

    @property
    def active(self):
        return self.weight != 0

    def distance(self, loss, synthesis, batch, sync):
        raise NotImplementedError

    def run(self, loss, batch, sync, gain):
        synthesis = coupled_synthesis(loss, f'couple_{self.name}')
        value, gen_img = self.distance(loss, synthesis, batch, sync)
        training_stats.report(f'Loss/G/couple_{self.name}', value)
        # The zero term ties the output into the graph so DDP sees every parameter of G_synthesis used.
        (gen_img[:, 0, 0, 0] * 0 + value * self.weight).mean().mul(gain).backward()
