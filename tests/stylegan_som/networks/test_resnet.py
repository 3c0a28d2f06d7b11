"""--arch=resnet (SNGAN's ResNet): shapes, residual blocks against a written-out formula, K heads, labels,
pickle round trip, a few training steps."""

import pytest
import torch

from stylegan_som.networks import resnet, small
from . import _common as common

SMALL = dict(G_kwargs=dict(synthesis_kwargs=dict(channel_base=128, channel_max=8)),
    D_kwargs=dict(channel_base=128, channel_max=8))

@pytest.mark.parametrize('res, channels, g_blocks, d_blocks, d_r0', [(32, 3, [8, 16, 32], [32, 16], 8),
    (28, 1, [14, 28], [28], 14), (16, 3, [8, 16], [16], 8)])
def test_shapes(res, channels, g_blocks, d_blocks, d_r0):
    G, D = common.build('resnet', res, channels, **SMALL)
    assert G.synthesis.block_resolutions == g_blocks
    assert D.block_resolutions == d_blocks and D.r0 == d_r0
    img, c = common.check_generator_interface(G)
    assert D(img, c).shape == (3, 1)
    assert D.features(img).shape == (3, 8)

def test_blocks_match_written_out_formula():
    torch.manual_seed(0)
    up = small.ResBlockUp(3, 5, up=True, batch_norm=False)
    x = torch.randn(2, 3, 4, 4)
    nearest = lambda t: t.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    h = up.conv1(torch.relu(up.conv0(nearest(torch.relu(x)))))
    torch.testing.assert_close(up(x), h + up.skip(nearest(x)))

    down = small.ResBlockDown(3, 5, down=True, first=False, spectral_norm=False)
    pool = lambda t: torch.nn.functional.avg_pool2d(t, 2)
    h = pool(down.conv1(torch.relu(down.conv0(torch.relu(x)))))
    torch.testing.assert_close(down(x), h + pool(down.skip(x)))

    first = small.ResBlockDown(3, 5, down=True, first=True, spectral_norm=False)
    h = pool(first.conv1(torch.relu(first.conv0(x)))) # no ReLU on the image
    torch.testing.assert_close(first(x), h + first.skip(pool(x)))

    same = small.ResBlockDown(5, 5, down=False, spectral_norm=False)
    y = torch.randn(2, 5, 4, 4)
    assert same.skip is None
    torch.testing.assert_close(same(y), same.conv1(torch.relu(same.conv0(torch.relu(y)))) + y)

def test_heads_labels_roundtrip():
    G, D = common.build('resnet', 16, 3, c_dim=4, G_kwargs=SMALL['G_kwargs'],
        D_kwargs=dict(SMALL['D_kwargs'], num_heads=9))
    img, c = common.check_generator_interface(G)
    common.check_heads_share_trunk(D, img, c, 9)
    common.check_roundtrip(G, D, img, c)
    assert resnet.Generator is small.ResNetGenerator

def test_trains():
    G, D = common.build('resnet', 16, 3, **SMALL)
    common.check_trains(G, D)
