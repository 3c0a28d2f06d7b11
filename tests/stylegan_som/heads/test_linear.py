"""LinearHead: hand-worked logits, StyleGAN2 `out` layer compatibility, argument checks, pickling."""

import pickle

import pytest
import torch

from stylegan_som import plugins
from stylegan_som.heads.linear import LinearHead
from stylegan_som.networks.stylegan2 import FullyConnectedLayer

#----------------------------------------------------------------------------

def test_hand_worked_logits():
    head = LinearHead(in_features=4, num_heads=2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1., 0., 1., 0.], [0., 1., 0., 2.]]))
        head.bias.copy_(torch.tensor([0.25, -1.]))
    h = torch.tensor([[1., 2., 0., -1.], [0., 0., 2., 0.]])
    # weight gain 1/sqrt(4) = 0.5: head 0 sees (1 + 0) * 0.5 + 0.25, head 1 sees (2 - 2) * 0.5 - 1, ...
    expected = torch.tensor([[0.75, -1.], [1.25, -1.]])
    assert torch.allclose(head(h, None), expected, atol=1e-6)
    assert torch.allclose(head(h, torch.ones([2, 3])), expected, atol=1e-6) # labels are ignored

def test_matches_stylegan2_out_layer():
    torch.manual_seed(0)
    fc = FullyConnectedLayer(16, 1)
    head = LinearHead(16)
    assert list(head.state_dict()) == list(fc.state_dict()) == ['weight', 'bias']
    with torch.no_grad():
        fc.bias.fill_(0.3)
    head.load_state_dict(fc.state_dict())
    x = torch.randn([5, 16])
    assert torch.equal(head(x), fc(x))

def test_lr_multiplier_keeps_initial_function():
    torch.manual_seed(1)
    a = LinearHead(8, num_heads=3)
    torch.manual_seed(1)
    b = LinearHead(8, num_heads=3, lr_multiplier=0.1)
    x = torch.randn([4, 8])
    assert torch.allclose(a(x), b(x), atol=1e-6)

@pytest.mark.parametrize('k', [0, -1, 1.5])
def test_bad_num_heads(k):
    with pytest.raises(ValueError, match='num_heads'):
        LinearHead(8, num_heads=k)

def test_registered_and_persistent():
    assert plugins.HEADS.class_name('linear') == 'stylegan_som.heads.linear.LinearHead'
    head = plugins.HEADS.build('linear', in_features=6, num_heads=2, c_dim=3)
    assert head.init_kwargs == dict(in_features=6, num_heads=2, c_dim=3)
    copy = pickle.loads(pickle.dumps(head))
    x = torch.randn([3, 6])
    assert torch.equal(copy(x), head(x))

#----------------------------------------------------------------------------
