"""K unconditional logits from a feature vector: logit_k = <w_k, h> + b_k."""

import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

@persistence.persistent_class
class LinearHead(torch.nn.Module):
    """features [N, in_features] -> logits [N, num_heads].

    Parameters are stored unit-scale and multiplied by 1/sqrt(in_features) at run time (equalised learning
    rate, as in the StyleGAN2 layers): Adam then moves every head as fast as the trunk it sits on, and with
    num_heads=1 the parameters `weight` [1, F] and `bias` [1] are exactly those of StyleGAN2's final `out`
    layer, so an unconditional StyleGAN2 discriminator's head copies over by name. Labels are accepted
    (c_dim) but not used: this head is unconditional."""

    def __init__(self, in_features, num_heads=1, c_dim=0, lr_multiplier=1):
        if int(num_heads) != num_heads or num_heads < 1:
            raise ValueError(f'LinearHead: num_heads must be a positive integer, got {num_heads!r}')
        super().__init__()
        self.in_features = int(in_features)
        self.num_heads = int(num_heads)
        self.c_dim = int(c_dim)
        self.weight = torch.nn.Parameter(torch.randn([self.num_heads, self.in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.zeros([self.num_heads]))
        self.weight_gain = lr_multiplier / np.sqrt(self.in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x, c=None):
        misc.assert_shape(x, [None, self.in_features])
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype)
        if self.bias_gain != 1:
            b = b * self.bias_gain
        return torch.addmm(b.unsqueeze(0), x, w.t())

    def extra_repr(self):
        return f'in_features={self.in_features}, num_heads={self.num_heads}'

#----------------------------------------------------------------------------
