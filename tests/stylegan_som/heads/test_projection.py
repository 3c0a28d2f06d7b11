"""ProjectionHead: logit_k = psi_k(h) + <V_k y, h> / sqrt(F), checked on hand-worked numbers and against an
independent per-head loop; one-hot and soft labels; c_dim=0; pickling."""

import pickle

import numpy as np
import pytest
import torch

from stylegan_som import plugins
from stylegan_som.heads.linear import LinearHead
from stylegan_som.heads.projection import ProjectionHead

#----------------------------------------------------------------------------

def _hand_head():
    head = ProjectionHead(in_features=4, num_heads=2, c_dim=3)
    embed = torch.zeros([8, 3]) # rows 0-3: head 0's V [F, c_dim]; rows 4-7: head 1's
    embed[0:4, 0] = torch.tensor([1., 1., 1., 1.])
    embed[0:4, 1] = torch.tensor([2., 0., 0., 1.])
    embed[0:4, 2] = torch.tensor([0., 0., 3., 0.])
    embed[4:8, 0] = torch.tensor([0., 0., -1., 0.])
    embed[4:8, 1] = torch.tensor([1., 1., 1., 1.])
    embed[4:8, 2] = torch.tensor([0., 0., 1., 0.])
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1., 0., 1., 0.], [0., 1., 0., 2.]]))
        head.bias.copy_(torch.tensor([0.25, -1.]))
        head.embed.copy_(embed)
    return head

def test_hand_worked_logits():
    head = _hand_head()
    h = torch.tensor([[1., 2., 0., -1.], [0., 0., 2., 0.]])
    c = torch.tensor([[0., 1., 0.], [0.5, 0., 0.5]]) # one-hot class 1; an even mix of classes 0 and 2
    # Sample 0: psi = [(1)*0.5 + 0.25, (2 - 2)*0.5 - 1] = [0.75, -1]
    #   V_0 y = [2,0,0,1], <., h> = 2 - 1 = 1 -> 0.5;  V_1 y = [1,1,1,1], <., h> = 1 + 2 - 1 = 2 -> 1.
    # Sample 1: psi = [2*0.5 + 0.25, -1] = [1.25, -1]
    #   V_0 y = [0.5,0.5,2,0.5], <., h> = 4 -> 2;       V_1 y = [0,0,0,0] -> 0.
    expected = torch.tensor([[1.25, 0.], [3.25, -1.]])
    assert torch.allclose(head(h, c), expected, atol=1e-6)

def test_matches_per_head_formula():
    torch.manual_seed(0)
    K, F, C, N = 3, 5, 4, 6
    head = ProjectionHead(F, num_heads=K, c_dim=C)
    with torch.no_grad():
        head.bias.normal_()
    h = torch.randn([N, F])
    c = torch.softmax(torch.randn([N, C]), dim=1)
    out = head(h, c)
    assert out.shape == (N, K)
    V = head.embed.detach().reshape(K, F, C)
    for k in range(K):
        psi = h @ head.weight[k].detach() / np.sqrt(F) + head.bias[k].detach()
        proj = ((c @ V[k].t()) * h).sum(dim=1) / np.sqrt(F)
        assert torch.allclose(out[:, k], psi + proj, atol=1e-5), k

def test_labels_select_embeddings():
    # With one-hot labels only the embedding columns of the classes present receive gradient.
    torch.manual_seed(0)
    head = ProjectionHead(6, num_heads=2, c_dim=5)
    c = torch.eye(5)[[1, 3, 3]]
    head(torch.randn([3, 6]), c).sum().backward()
    used = head.embed.grad.abs().sum(dim=0) > 0
    assert used.tolist() == [False, True, False, True, False]

def test_unconditional_equals_linear_head():
    torch.manual_seed(0)
    proj = ProjectionHead(8, num_heads=2, c_dim=0)
    lin = LinearHead(8, num_heads=2)
    lin.load_state_dict({k: v for k, v in proj.state_dict().items() if k != 'embed'})
    x = torch.randn([4, 8])
    assert torch.equal(proj(x, torch.zeros([4, 0])), lin(x))
    assert torch.equal(proj(x, None), lin(x))

def test_errors():
    head = ProjectionHead(4, num_heads=2, c_dim=3)
    with pytest.raises(ValueError, match='labels'):
        head(torch.zeros([2, 4]), None)
    with pytest.raises(AssertionError):
        head(torch.zeros([2, 4]), torch.zeros([2, 5]))
    with pytest.raises(ValueError, match='num_heads'):
        ProjectionHead(4, num_heads=0)
    with pytest.raises(ValueError, match='c_dim'):
        ProjectionHead(4, c_dim=-1)

def test_registered_and_persistent():
    assert plugins.HEADS.class_name('projection') == 'stylegan_som.heads.projection.ProjectionHead'
    head = plugins.HEADS.build('projection', in_features=4, num_heads=2, c_dim=3)
    copy = pickle.loads(pickle.dumps(head))
    x, c = torch.randn([3, 4]), torch.eye(3)
    assert torch.equal(copy(x, c), head(x, c))

#----------------------------------------------------------------------------
