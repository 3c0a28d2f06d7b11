"""Every registered objective on a hand-worked batch: two reals with logits r = (2, -1), two fakes with
f = (0.5, -3), one head. Values and gradients below are worked out by hand from the textbook single-D forms;
then a two-head case with SOM weights."""

import math

import pytest
import torch

from stylegan_som import plugins
from stylegan_som.losses.base import defaults_of

R, F = [2.0, -1.0], [0.5, -3.0]

def sp(x):
    return math.log1p(math.exp(x))

def sig(x):
    return 1 / (1 + math.exp(-x))

# Softmax over the whole batch (reals then fakes) and its log-partition.
_EXP = [math.exp(x) for x in R + F]
LSE = math.log(sum(_EXP))
P = [e / sum(_EXP) for e in _EXP]

# name: (D loss, dD/dr, dD/df, G loss, dG/df)
CASES = {
    'stylegan2': (
        (sp(-2) + sp(1)) / 2 + (sp(0.5) + sp(-3)) / 2,
        [-(1 - sig(2)) / 2, -(1 - sig(-1)) / 2], [sig(0.5) / 2, sig(-3) / 2],
        (sp(-0.5) + sp(3)) / 2, [-(1 - sig(0.5)) / 2, -(1 - sig(-3)) / 2]),
    'hinge': (
        (0 + 2) / 2 + (1.5 + 0) / 2, [0, -0.5], [0.5, 0],
        -(0.5 - 3) / 2, [-0.5, -0.5]),
    'wgan': (
        -(2 - 1) / 2 + (0.5 - 3) / 2, [-0.5, -0.5], [0.5, 0.5],
        1.25, [-0.5, -0.5]),
    'lsgan': (
        (0.5 * 1 + 0.5 * 4) / 2 + (0.5 * 0.25 + 0.5 * 9) / 2, [0.5, -1], [0.25, -1.5],
        (0.5 * 0.25 + 0.5 * 16) / 2, [-0.25, -2]),
    # Means: r 0.5, f -1.25. D: reals relu(1-(r-mf)) = (0, 0.75), fakes relu(1+(f-mr)) = (1, 0).
    # G: fakes relu(1-(f-mr)) = (1, 4.5), reals relu(1+(r-mf)) = (4.25, 1.25).
    'rahinge': (
        0.375 + 0.5, [-0.25, -0.75], [0.75, 0.25],
        2.75 + 2.75, [-1.0, -1.0]),
    # L_D = -mean(r) + log sum exp(batch); L_G = -mean(batch) + log sum exp(batch).
    'softmax': (
        -0.5 + LSE, [-0.5 + P[0], -0.5 + P[1]], [P[2], P[3]],
        0.375 + LSE, [-0.25 + P[2], -0.25 + P[3]]),
    # Pairs (r, f) = (2, 0.5), (-1, -3). D: sp(f - r) = sp(-1.5), sp(-2) on the pairs, nothing on fakes alone;
    # G: sp(r - f) = sp(1.5), sp(2).
    'rpgan': (
        (sp(-1.5) + sp(-2)) / 2, [-sig(-1.5) / 2, -sig(-2) / 2], [sig(-1.5) / 2, sig(-2) / 2],
        (sp(1.5) + sp(2)) / 2, [-sig(1.5) / 2, -sig(2) / 2]),
}
CASES['ns'] = CASES['stylegan2']
# D as the non-saturating loss; G: log(1 - sig(f)) = -sp(f), gradient -sig(f) per sample.
CASES['minimax'] = CASES['ns'][:3] + (-(sp(0.5) + sp(-3)) / 2, [-sig(0.5) / 2, -sig(-3) / 2])
CASES['wgan-gp'] = CASES['wgan']
CASES['relativistic-hinge'] = CASES['rahinge'] # the same class under MSG-GAN's name
# Least squares on s = sig(x): D 1/2 (s(r) - 1)^2 + 1/2 s(f)^2, G 1/2 (s(f) - 1)^2; ds/dx = s (1 - s).
_S = {x: sig(x) for x in R + F}
CASES['lsgan-sigmoid'] = (
    (0.5 * (_S[2] - 1) ** 2 + 0.5 * (_S[-1] - 1) ** 2) / 2 + (0.5 * _S[0.5] ** 2 + 0.5 * _S[-3] ** 2) / 2,
    [(_S[x] - 1) * _S[x] * (1 - _S[x]) / 2 for x in R], [_S[x] ** 2 * (1 - _S[x]) / 2 for x in F],
    (0.5 * (_S[0.5] - 1) ** 2 + 0.5 * (_S[-3] - 1) ** 2) / 2, [(_S[x] - 1) * _S[x] * (1 - _S[x]) / 2 for x in F])

def test_every_registered_loss_has_a_case():
    assert sorted(CASES) == plugins.LOSSES.names()

@pytest.mark.parametrize('name', sorted(CASES))
def test_single_head_value_and_gradient(name):
    d_val, d_dr, d_df, g_val, g_df = CASES[name]
    obj = plugins.LOSSES.build(name)
    r = torch.tensor(R, dtype=torch.float64)[:, None].requires_grad_(True)
    f = torch.tensor(F, dtype=torch.float64)[:, None].requires_grad_(True)
    d = obj.d_loss(r, f)
    assert d.shape == (1,)
    d.sum().backward()
    assert float(d.detach()) == pytest.approx(d_val, abs=1e-12)
    assert r.grad[:, 0].tolist() == pytest.approx(d_dr, abs=1e-12)
    assert f.grad[:, 0].tolist() == pytest.approx(d_df, abs=1e-12)
    # Weights of 1 change nothing.
    assert float(obj.d_loss(r, f, torch.ones_like(r)).detach()) == float(d.detach())

    f.grad = None
    g = obj.g_loss(f, r.detach() if obj.couples else None)
    g.sum().backward()
    assert float(g.detach()) == pytest.approx(g_val, abs=1e-12)
    assert f.grad[:, 0].tolist() == pytest.approx(g_df, abs=1e-12)

def test_relativistic_losses_need_reals_for_G():
    for name in ('rahinge', 'softmax', 'rpgan'):
        with pytest.raises(ValueError, match='needs the logits of reals'):
            plugins.LOSSES.build(name).g_loss(torch.zeros(2, 1))

def test_two_heads_with_weights_hinge_by_hand():
    # Head 0: reals relu(1-r) = (0, 2) weighted (1, 0.25) -> 0.25; fakes relu(1+f) = (1.5, 0) -> 0.75.
    # Head 1: reals relu(1-r) = (1, 0.5) weighted (0.5, 1) -> 0.5; fakes (0, 2) -> 1.
    r = torch.tensor([[2.0, 0.0], [-1.0, 0.5]], requires_grad=True)
    f = torch.tensor([[0.5, -2.0], [-3.0, 1.0]])
    h = torch.tensor([[1.0, 0.5], [0.25, 1.0]])
    d = plugins.LOSSES.build('hinge').d_loss(r, f, h)
    assert d.tolist() == pytest.approx([1.0, 1.5])
    d.mean().backward()
    # d/dr[n, k] = -h[n, k] / (N K) where 1 - r > 0.
    assert r.grad.flatten().tolist() == pytest.approx([0.0, -0.5 / 4, -0.25 / 4, -1.0 / 4])
    # G: mean over heads, no weights: -mean f per head.
    assert plugins.LOSSES.build('hinge').g_loss(f).tolist() == pytest.approx([1.25, 0.5])

def test_default_regularisers():
    def defaults(name):
        return defaults_of(type(plugins.LOSSES.build(name)))
    assert defaults('stylegan2') == dict(r1=True, r2=False, lazy_reg=True, path_length=True, style_mixing=True,
        gp_weight=0, weight_clip=0)
    assert defaults('ns') == dict(r1=False, r2=False, lazy_reg=True, path_length=False, style_mixing=False,
        gp_weight=0, weight_clip=0)
    # R3GAN: R1 and R2, every step, nothing else.
    assert defaults('rpgan') == dict(r1=True, r2=True, lazy_reg=False, path_length=False, style_mixing=False,
        gp_weight=0, weight_clip=0)
    assert defaults('minimax') == defaults('ns')
    assert defaults('wgan')['weight_clip'] == 0.01 and not defaults('wgan')['r1']
    assert defaults('wgan-gp')['gp_weight'] == 10 and not defaults('wgan-gp')['r1']
    for name in ('hinge', 'lsgan', 'lsgan-sigmoid', 'softmax', 'rahinge', 'relativistic-hinge'):
        assert defaults(name)['r1'] and defaults(name)['gp_weight'] == 0 and defaults(name)['weight_clip'] == 0

def test_lsgan_sigmoid_numbers():
    # sig(0) = 1/2: D's loss on a real at logit 0 is 1/2 (1/2 - 1)^2 = 1/8, on a fake the same; G's is 1/8 too.
    obj = plugins.LOSSES.build('lsgan-sigmoid')
    zero = torch.zeros(3, 2)
    assert obj.d_loss(zero, zero).tolist() == pytest.approx([0.25, 0.25])
    assert obj.g_loss(zero).tolist() == pytest.approx([0.125, 0.125])
    # Bounded: a logit of -50 on a real costs at most 1/2 (LSGAN's would be 1/2 * 51^2).
    assert float(obj.d_real(torch.tensor([[-50.0]]))) == pytest.approx(0.5)
    assert type(plugins.LOSSES.build('relativistic-hinge')) is type(plugins.LOSSES.build('rahinge'))

def test_rpgan_pairs_need_equal_batches():
    with pytest.raises(ValueError, match='one to one'):
        plugins.LOSSES.build('rpgan').d_loss(torch.zeros(3, 1), torch.zeros(2, 1))
