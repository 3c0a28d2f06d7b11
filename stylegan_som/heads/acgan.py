"""ACGAN's discriminator head (Odena et al., "Conditional Image Synthesis with Auxiliary Classifier GANs", 2017):
K real/fake logits and, beside them, c_dim class logits from the same features.

    out = [psi_1(h) ... psi_K(h) | a_1(h) ... a_C(h)]        [N, K + c_dim]

psi_k are unconditional linear scores (LinearHead's parameters and numbers, so StyleGAN2's `out` layer copies
into them by name) and a the auxiliary classifier, shared by the K heads. The head declares what its extra
outputs are for: `split_outputs` separates them from the logits and `aux_loss` is their per-sample loss, the
cross-entropy against the labels (reals: the dataset's, fakes: the ones G was conditioned on), times
aux_weight. stylegan_som.loss.StyleGAN2Loss adds it to D's loss on reals and fakes and to G's loss on fakes,
as ACGAN's L_C, which both networks maximise; the SOM weights act on the logits only."""

import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

@persistence.persistent_class
class ACGANHead(torch.nn.Module):
    """features [N, in_features], labels (unused here) -> [N, num_heads + c_dim]. Labels are one-hot vectors or
    distributions over the c_dim classes. Equalised learning rate as LinearHead."""

    conditional = True # needs labels: --d-head=acgan with --cond=1

    def __init__(self, in_features, num_heads=1, c_dim=0, aux_weight=1, lr_multiplier=1):
        if int(num_heads) != num_heads or num_heads < 1:
            raise ValueError(f'ACGANHead: num_heads must be a positive integer, got {num_heads!r}')
        if int(c_dim) != c_dim or c_dim < 1:
            raise ValueError(f'ACGANHead: the auxiliary classifier needs labels (c_dim >= 1), got c_dim={c_dim!r}')
        super().__init__()
        self.in_features = int(in_features)
        self.num_heads = int(num_heads)
        self.c_dim = int(c_dim)
        self.aux_weight = float(aux_weight)
        K, C, F = self.num_heads, self.c_dim, self.in_features
        self.weight = torch.nn.Parameter(torch.randn([K, F]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.zeros([K]))
        self.class_weight = torch.nn.Parameter(torch.randn([C, F]) / lr_multiplier)
        self.class_bias = torch.nn.Parameter(torch.zeros([C]))
        self.weight_gain = lr_multiplier / np.sqrt(F)
        self.bias_gain = lr_multiplier

    def forward(self, x, c=None):
        misc.assert_shape(x, [None, self.in_features])
        w = torch.cat([self.weight, self.class_weight]).to(x.dtype) * self.weight_gain
        b = torch.cat([self.bias, self.class_bias]).to(x.dtype) * self.bias_gain
        return torch.addmm(b.unsqueeze(0), x, w.t())

    def split_outputs(self, out):
        """D's output [N, K + c_dim] -> (real/fake logits [N, K], class logits [N, c_dim])."""
        misc.assert_shape(out, [None, self.num_heads + self.c_dim])
        return out[:, :self.num_heads], out[:, self.num_heads:]

    def aux_loss(self, class_logits, c):
        """aux_weight times the cross-entropy of the class logits against the labels, per sample: [N]."""
        misc.assert_shape(c, [class_logits.shape[0], self.c_dim])
        return -(c.to(class_logits.dtype) * class_logits.log_softmax(dim=1)).sum(dim=1) * self.aux_weight

    def extra_repr(self):
        return f'in_features={self.in_features}, num_heads={self.num_heads}, c_dim={self.c_dim}'

#----------------------------------------------------------------------------
