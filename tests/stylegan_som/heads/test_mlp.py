"""MLPHead: hand-worked logits, per-head independence, registry and use as a D head plugin, pickling."""

import pickle

import pytest
import torch

from stylegan_som import plugins
from stylegan_som.heads.mlp import MLPHead
from stylegan_som.networks.small import MLPDiscriminator

#----------------------------------------------------------------------------

def test_hand_worked_logits():
    head = MLPHead(in_features=4, num_heads=2, hidden_features=1)
    with torch.no_grad():
        head.hidden_weight.copy_(torch.tensor([[[1., 0., 0., 0.]], [[0., 0., 0., 2.]]]))
        head.hidden_bias.copy_(torch.tensor([[0.], [-1.]]))
        head.weight.copy_(torch.tensor([[2.], [1.]]))
        head.bias.copy_(torch.tensor([0.5, 0.]))
    x = torch.tensor([[4., 0., 0., 1.]])
    # Gains 1/sqrt(4) and 1/sqrt(1). Head 0: hidden 4 * 0.5 + 0 = 2 -> 2 * 2 + 0.5 = 4.5.
    # Head 1: hidden 2 * 0.5 - 1 = 0 -> lrelu 0 -> 0. With x[3] = -1: hidden -2 -> lrelu -0.4 -> -0.4.
    assert torch.allclose(head(x), torch.tensor([[4.5, 0.]]))
    x[0, 3] = -1
    assert torch.allclose(head(x, torch.ones(1, 3)), torch.tensor([[4.5, -0.4]])) # labels are ignored

def test_heads_are_independent():
    torch.manual_seed(0)
    head = MLPHead(in_features=6, num_heads=3, hidden_features=5)
    x = torch.randn(4, 6)
    head(x)[:, 1].sum().backward()
    assert head.hidden_weight.grad[1].abs().sum() > 0
    assert head.hidden_weight.grad[[0, 2]].abs().sum() == 0 and head.weight.grad[[0, 2]].abs().sum() == 0

def test_registered_and_builds_inside_a_discriminator():
    assert plugins.HEADS.class_name('mlp') == 'stylegan_som.heads.mlp.MLPHead'
    D = MLPDiscriminator(c_dim=0, img_resolution=1, img_channels=2, num_heads=4,
        head_kwargs=dict(class_name='stylegan_som.heads.mlp.MLPHead', hidden_features=8))
    assert isinstance(D.head, MLPHead) and D.head.hidden_weight.shape[:2] == (4, 8)
    assert D(torch.randn(6, 2, 1, 1), None).shape == (6, 4)
    copy = pickle.loads(pickle.dumps(D))
    x = torch.randn(3, 2, 1, 1)
    assert torch.equal(copy(x, None), D(x, None))

def test_bad_arguments():
    with pytest.raises(ValueError, match='num_heads'):
        MLPHead(4, num_heads=0)
