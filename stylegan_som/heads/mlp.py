"""K heads with capacity of their own: one hidden layer per head on the shared trunk's features.

    logit_k(h) = <v_k, lrelu(W_k h + a_k)> + b_k

A linear head per unit (LinearHead) lets K heads differ only by a direction in the trunk's feature space; with a
hidden layer each head can carve out its own region of it, which is what a SOM unit that owns one mode needs.
Equalised learning rate as LinearHead (unit-scale parameters, gains 1/sqrt(fan-in) at run time). Cost: K * H * F
extra multiply-adds per sample (bench/RESULTS.md has the measured step time)."""

import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

@persistence.persistent_class
class MLPHead(torch.nn.Module):
    """features [N, in_features] -> logits [N, num_heads]; labels are accepted (c_dim) but not used.
    hidden_features: H per head [default: in_features]."""

    def __init__(self, in_features, num_heads=1, c_dim=0, hidden_features=None, lr_multiplier=1):
        if int(num_heads) != num_heads or num_heads < 1:
            raise ValueError(f'MLPHead: num_heads must be a positive integer, got {num_heads!r}')
        super().__init__()
        self.in_features = int(in_features)
        self.num_heads = int(num_heads)
        self.c_dim = int(c_dim)
        self.hidden_features = int(hidden_features or in_features)
        K, H, F = self.num_heads, self.hidden_features, self.in_features
        self.hidden_weight = torch.nn.Parameter(torch.randn([K, H, F]) / lr_multiplier)
        self.hidden_bias = torch.nn.Parameter(torch.zeros([K, H]))
        self.weight = torch.nn.Parameter(torch.randn([K, H]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.zeros([K]))
        self.hidden_gain = lr_multiplier / np.sqrt(F)
        self.weight_gain = lr_multiplier / np.sqrt(H)
        self.bias_gain = lr_multiplier

    def forward(self, x, c=None):
        misc.assert_shape(x, [None, self.in_features])
        hidden = torch.einsum('nf,khf->nkh', x, self.hidden_weight.to(x.dtype) * self.hidden_gain)
        hidden = torch.nn.functional.leaky_relu(hidden + self.hidden_bias.to(x.dtype) * self.bias_gain, 0.2)
        logits = torch.einsum('nkh,kh->nk', hidden, self.weight.to(x.dtype) * self.weight_gain)
        return logits + self.bias.to(x.dtype) * self.bias_gain

    def extra_repr(self):
        return f'in_features={self.in_features}, num_heads={self.num_heads}, hidden_features={self.hidden_features}'

#----------------------------------------------------------------------------
