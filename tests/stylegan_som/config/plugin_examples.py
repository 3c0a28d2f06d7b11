"""A toy loss, head and block, as a plugin author writes them: each one file, registered by one line. The contract
test copies them into stylegan_som/losses/, heads/ and blocks/ of a copy of the repository; the in-process tests
register them at run time."""

LOSS = '''"""A toy objective: the non-saturating logistic loss without R1."""

import torch

from .base import Objective

class ToyLoss(Objective):
    defaults = dict(r1=False, path_length=False, style_mixing=False)

    def d_real(self, real_logits, fake_logits=None):
        return torch.nn.functional.softplus(-real_logits)

    def d_fake(self, fake_logits, real_logits=None):
        return torch.nn.functional.softplus(fake_logits)

    def g_fake(self, fake_logits, real_logits=None):
        return torch.nn.functional.softplus(-fake_logits)
'''

HEAD = '''"""A toy head: K linear outputs scaled by a learnt factor."""

import torch
from torch_utils import persistence

@persistence.persistent_class
class ToyHead(torch.nn.Module):
    def __init__(self, in_features, num_heads=1, c_dim=0):
        super().__init__()
        self.fc = torch.nn.Linear(in_features, num_heads)
        self.scale = torch.nn.Parameter(torch.ones([]))

    def forward(self, x, c=None):
        return self.fc(x) * self.scale
'''

BLOCK = '''"""A toy block: the feature map times a learnt per-channel factor, starting at 1."""

import torch
from torch_utils import persistence

@persistence.persistent_class
class ToyBlock(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones([1, channels, 1, 1]))

    def forward(self, x):
        return x * self.gain.to(x.dtype)
'''

# (registry, name, module file under stylegan_som/, class name, source)
PLUGINS = [
    ('LOSSES', 'toyloss', 'losses/toyloss.py', 'stylegan_som.losses.toyloss.ToyLoss', LOSS),
    ('HEADS', 'toyhead', 'heads/toyhead.py', 'stylegan_som.heads.toyhead.ToyHead', HEAD),
    ('BLOCKS', 'toyblock', 'blocks/toyblock.py', 'stylegan_som.blocks.toyblock.ToyBlock', BLOCK),
]

def register_lines():
    return ''.join(f"{registry}.register('{name}', '{class_name}')\n" for registry, name, _, class_name, _ in PLUGINS)
