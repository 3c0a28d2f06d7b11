"""Self-attention over the pixels of a feature map, as in SAGAN (Zhang et al. 2019)."""

import numpy as np
import torch
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

@persistence.persistent_class
class SelfAttention(torch.nn.Module):
    """x [N, C, H, W] -> x + gamma * out(attention(query(x), key(x), value(x))), same shape and dtype.

    Every pixel attends to all H*W pixels: 1x1 projections to key_channels queries and keys (default C/8)
    and value_channels values (default C/2), softmax attention through torch's scaled_dot_product_attention,
    and a 1x1 projection back to C channels. gamma starts at 0, so a freshly attached block passes x through
    bit for bit (x + 0 * y == x for finite y) while its gradient still reaches gamma.

    Two choices differ from SAGAN's code, both for the StyleGAN2 networks it sits in:
    - projection weights are stored unit-scale and multiplied by 1/sqrt(fan_in) at run time (equalised
      learning rate, as in every StyleGAN2 layer), so Adam's step moves them as fast as the layers around
      them; `<name>_gain` holds each runtime gain (spectral normalisation resets it, see the Discriminator);
    - dot products are scaled by 1/sqrt(key_channels) (the transformer convention, torch's default) instead
      of SAGAN's unscaled ones: with unit-scale projections the unscaled logits grow with the width and
      would start with a near one-hot softmax in wide layers.
    Runs in the input's dtype (float16 inside StyleGAN2's fp16 blocks, where conv_clamp keeps the features
    small enough for it) and keeps a channels_last input channels_last."""

    def __init__(self, channels, key_channels=None, value_channels=None):
        super().__init__()
        self.channels = int(channels)
        self.key_channels = max(self.channels // 8, 1) if key_channels is None else int(key_channels)
        self.value_channels = max(self.channels // 2, 1) if value_channels is None else int(value_channels)
        if min(self.channels, self.key_channels, self.value_channels) < 1:
            raise ValueError(f'SelfAttention: channels, key_channels and value_channels must be positive, got '
                f'{channels}, {key_channels}, {value_channels}')
        C, K, V = self.channels, self.key_channels, self.value_channels
        self.query_weight = torch.nn.Parameter(torch.randn([K, C]))
        self.key_weight = torch.nn.Parameter(torch.randn([K, C]))
        self.value_weight = torch.nn.Parameter(torch.randn([V, C]))
        self.out_weight = torch.nn.Parameter(torch.randn([C, V]))
        self.gamma = torch.nn.Parameter(torch.zeros([]))
        self.query_weight_gain = self.key_weight_gain = self.value_weight_gain = 1 / np.sqrt(C)
        self.out_weight_gain = 1 / np.sqrt(V)

    def _weight(self, name, dtype):
        return (getattr(self, name) * getattr(self, name + '_gain')).to(dtype)

    def forward(self, x):
        misc.assert_shape(x, [None, self.channels, None, None])
        N, C, H, W = x.shape
        dtype = x.dtype
        # Pixels as a sequence, channels innermost: [N, H*W, C] (a view for channels_last inputs).
        seq = x.flatten(2).transpose(1, 2)
        q = seq.matmul(self._weight('query_weight', dtype).t()).unsqueeze(1) # [N, 1, HW, K]
        k = seq.matmul(self._weight('key_weight', dtype).t()).unsqueeze(1)   # [N, 1, HW, K]
        v = seq.matmul(self._weight('value_weight', dtype).t()).unsqueeze(1) # [N, 1, HW, V]
        a = torch.nn.functional.scaled_dot_product_attention(q, k, v).squeeze(1) # [N, HW, V]
        y = a.matmul(self._weight('out_weight', dtype).t())                  # [N, HW, C]
        y = y.transpose(1, 2).reshape(N, C, H, W)
        return x + self.gamma.to(dtype) * y

    def extra_repr(self):
        return f'channels={self.channels}, key_channels={self.key_channels}, value_channels={self.value_channels}'

#----------------------------------------------------------------------------
