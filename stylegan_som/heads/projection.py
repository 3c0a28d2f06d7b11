"""Projection discriminator head (Miyato & Koyama, "cGANs with Projection Discriminator", 2018), K heads.

    logit_k(h, y) = psi_k(h) + <V_k y, h> / sqrt(F)

h [N, F] are the trunk's features, y [N, c_dim] the label (one-hot, soft, or any real vector), psi_k a linear
unconditional score and V_k [F, c_dim] head k's label embedding. For a one-hot y, V_k y is the embedding
vector of that class, as in the paper. Each of the K heads has its own psi_k and V_k, so SOM heads that
specialise on different modes can also weigh the classes differently."""

import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

@persistence.persistent_class
class ProjectionHead(torch.nn.Module):
    """features [N, in_features], labels [N, c_dim] -> logits [N, num_heads].

    Equalised learning rate (parameters stored unit-scale, gains applied at run time):
    - psi: `weight` [K, F] with gain 1/sqrt(F) and `bias` [K], the same names and numbers as LinearHead, so
      an unconditional head (or StyleGAN2's `out` layer) copies into the psi part by name;
    - `embed` [K*F, c_dim] with gain 1: a one-hot label activates a single column, so its effective fan-in
      is 1, and a fresh class embedding is a unit-variance vector like nn.Embedding's;
    - the inner product is scaled by 1/sqrt(F), which keeps the projection term at the size of psi's at
      initialisation (the same scaling StyleGAN2 applies to its own label projection).
    With c_dim=0 only psi remains."""

    conditional = True # scores (image, label) pairs: --d-head=projection needs labels

    def __init__(self, in_features, num_heads=1, c_dim=0, lr_multiplier=1):
        if int(num_heads) != num_heads or num_heads < 1:
            raise ValueError(f'ProjectionHead: num_heads must be a positive integer, got {num_heads!r}')
        if int(c_dim) != c_dim or c_dim < 0:
            raise ValueError(f'ProjectionHead: c_dim must be a non-negative integer, got {c_dim!r}')
        super().__init__()
        self.in_features = int(in_features)
        self.num_heads = int(num_heads)
        self.c_dim = int(c_dim)
        K, F = self.num_heads, self.in_features
        self.weight = torch.nn.Parameter(torch.randn([K, F]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.zeros([K]))
        self.embed = torch.nn.Parameter(torch.randn([K * F, self.c_dim]) / lr_multiplier)
        self.weight_gain = lr_multiplier / np.sqrt(F)
        self.bias_gain = lr_multiplier
        self.embed_gain = lr_multiplier
        self.proj_gain = 1 / np.sqrt(F)

    def forward(self, x, c=None):
        misc.assert_shape(x, [None, self.in_features])
        N = x.shape[0]
        K, F = self.num_heads, self.in_features
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype)
        if self.bias_gain != 1:
            b = b * self.bias_gain
        out = torch.addmm(b.unsqueeze(0), x, w.t()) # psi: [N, K]
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f'ProjectionHead: labels of dimension {self.c_dim} are required, got None')
            misc.assert_shape(c, [N, self.c_dim])
            v = c.to(x.dtype).matmul((self.embed.to(x.dtype) * self.embed_gain).t()) # [N, K*F]: V_k y for every head
            proj = torch.bmm(v.reshape(N, K, F), x.unsqueeze(2)).squeeze(2)        # [N, K]: <V_k y, h>
            out = out + proj * self.proj_gain
        return out

    def extra_repr(self):
        return f'in_features={self.in_features}, num_heads={self.num_heads}, c_dim={self.c_dim}'

#----------------------------------------------------------------------------
