"""--arch=mlp for 2-D points: [N, 2, 1, 1] in data coordinates, K heads, labels, pickle round trip, and the
mode-coverage metric accepting its output."""

import numpy as np
import pytest
import torch

from metrics import mode_coverage
from stylegan_som.networks import mlp
from . import _common as common

def test_points_in_data_coordinates():
    G, D = common.build('mlp', 1, 2, G_kwargs=dict(synthesis_kwargs=dict(layer_features=16, num_layers=2)),
        D_kwargs=dict(layer_features=16, num_layers=2))
    img, c = common.check_generator_interface(G)
    assert img.shape == (3, 2, 1, 1)
    # A linear output, no squashing: with a large output bias the points leave [-1, 1].
    with torch.no_grad():
        G.synthesis.out.bias.fill_(3.0)
    assert (G(torch.randn(4, G.z_dim), torch.zeros(4, 0)) > 1).all()
    assert D(img, c).shape == (3, 1) and D.num_features == 16
    points = G(torch.randn(10, G.z_dim), torch.zeros(10, 0)).reshape(10, 2).detach().numpy()
    res = mode_coverage.score_points(points, mode_coverage.TOYS['ring8']['means'], 0.01)
    assert res['modes'] == 0 # all points near (3, 3), far from the ring

def test_written_out_forward():
    G, D = common.build('mlp', 1, 2, G_kwargs=dict(synthesis_kwargs=dict(layer_features=5, num_layers=1)),
        D_kwargs=dict(layer_features=6, num_layers=1, num_heads=3))
    z = torch.randn(4, G.z_dim)
    s = G.synthesis
    expected = s.out(torch.relu(s.fc0(z)))
    torch.testing.assert_close(G(z, torch.zeros(4, 0)).reshape(4, 2), expected)
    x = torch.randn(4, 2, 1, 1)
    h = torch.nn.functional.leaky_relu(x.reshape(4, 2) @ D.fc0.weight.t() + D.fc0.bias, 0.2)
    torch.testing.assert_close(D(x, torch.zeros(4, 0)), D.head(h, None))

@pytest.mark.parametrize('c_dim, num_heads', [(0, 4), (8, 1), (8, 9)])
def test_heads_labels_roundtrip(c_dim, num_heads):
    G, D = common.build('mlp', 1, 2, c_dim=c_dim, D_kwargs=dict(num_heads=num_heads, spectral_norm=True,
        layer_features=32))
    img, c = common.check_generator_interface(G)
    common.check_heads_share_trunk(D, img, c, num_heads)
    common.check_roundtrip(G, D, img, c)

def test_bad_activation():
    with pytest.raises(ValueError, match='activation'):
        mlp.Generator(z_dim=2, c_dim=0, w_dim=2, img_resolution=1, img_channels=2,
            synthesis_kwargs=dict(activation='swishy'))

def test_trains():
    G, D = common.build('mlp', 1, 2, c_dim=8, D_kwargs=dict(num_heads=4))
    common.check_trains(G, D, c_dim=8)
