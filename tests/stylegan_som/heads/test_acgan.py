"""ACGANHead: hand-worked outputs and auxiliary loss, the split, argument checks, pickling, the registry."""

import math
import pickle

import pytest
import torch

from stylegan_som import plugins
from stylegan_som.heads.acgan import ACGANHead

#----------------------------------------------------------------------------

def _head():
    head = ACGANHead(in_features=4, num_heads=2, c_dim=3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1., 0., 1., 0.], [0., 1., 0., 2.]]))
        head.bias.copy_(torch.tensor([0.25, -1.]))
        head.class_weight.copy_(torch.tensor([[2., 0., 0., 0.], [0., 0., 0., 0.], [0., 0., 0., -2.]]))
        head.class_bias.copy_(torch.tensor([0., 0.5, 0.]))
    return head

def test_hand_worked_outputs_and_split():
    head = _head()
    h = torch.tensor([[1., 2., 0., -1.], [0., 0., 2., 0.]])
    # Gain 1/sqrt(4) = 0.5 on every weight: logits as LinearHead's, then the classes (1, 0.5, 1) and (0, 0.5, 0).
    out = head(h, torch.zeros(2, 3))
    assert out.shape == (2, 5)
    logits, classes = head.split_outputs(out)
    assert logits.flatten().tolist() == pytest.approx([0.75, -1., 1.25, -1.])
    assert classes.flatten().tolist() == pytest.approx([1., 0.5, 1., 0., 0.5, 0.])

def test_aux_loss_is_cross_entropy_times_weight():
    head = _head()
    classes = torch.tensor([[1., 0.5, 1.], [0., 0.5, 0.]])
    c = torch.tensor([[1., 0., 0.], [0., 1., 0.]])
    lse0 = math.log(2 * math.e + math.exp(0.5))
    lse1 = math.log(2 + math.exp(0.5))
    assert head.aux_loss(classes, c).tolist() == pytest.approx([lse0 - 1, lse1 - 0.5])
    head2 = ACGANHead(in_features=4, num_heads=2, c_dim=3, aux_weight=0.5)
    assert head2.aux_loss(classes, c).tolist() == pytest.approx([(lse0 - 1) / 2, (lse1 - 0.5) / 2])
    # Soft labels: the expected cross-entropy.
    soft = torch.tensor([[0.5, 0., 0.5], [0., 1., 0.]])
    assert float(head.aux_loss(classes, soft)[0]) == pytest.approx(lse0 - 1)

def test_needs_labels_and_checks_shapes():
    with pytest.raises(ValueError, match='needs labels'):
        ACGANHead(in_features=4, num_heads=1, c_dim=0)
    with pytest.raises(ValueError, match='num_heads'):
        ACGANHead(in_features=4, num_heads=0, c_dim=2)
    with pytest.raises(AssertionError):
        _head().split_outputs(torch.zeros(2, 4))
    assert ACGANHead.conditional

def test_registered_and_pickles():
    assert plugins.HEADS.class_name('acgan') == 'stylegan_som.heads.acgan.ACGANHead'
    head = plugins.HEADS.build('acgan', in_features=4, num_heads=2, c_dim=3)
    copy = pickle.loads(pickle.dumps(head))
    h = torch.randn(5, 4)
    assert torch.equal(copy(h), head(h))
    assert torch.equal(copy.aux_loss(copy(h)[:, 2:], torch.eye(3)[[0, 1, 2, 0, 1]]),
        head.aux_loss(head(h)[:, 2:], torch.eye(3)[[0, 1, 2, 0, 1]]))
