"""SOM arithmetic against hand-worked values: map distances, neighbourhood weights of a small batch, the sigma
schedule and head occupancy."""

import math

import pytest
import torch

from stylegan_som import som

R2 = math.sqrt(2)

def test_grid_distances_by_hand():
    # 2 x 2 lattice: heads 0 1 / 2 3.
    expected = torch.tensor([[0, 1, 1, R2], [1, 0, R2, 1], [1, R2, 0, 1], [R2, 1, 1, 0]])
    got = som.topology_distances(4, 'grid')
    assert got.dtype == torch.float32 and got.shape == (4, 4)
    assert torch.allclose(got, expected)
    # 3 x 3 lattice: heads 0 (0,0), 5 (1,2), 7 (2,1), 8 (2,2).
    d9 = som.topology_distances(9, 'grid')
    assert d9[0, 8] == pytest.approx(2 * R2) and d9[1, 5] == pytest.approx(R2)
    assert d9[5, 7] == pytest.approx(R2) and d9[3, 5] == pytest.approx(2) and d9[2, 8] == pytest.approx(2) and d9[2, 6] == pytest.approx(2 * R2)
    assert torch.equal(d9, d9.T) and torch.all(d9.diagonal() == 0)

def test_linear_and_circular_distances_by_hand():
    assert torch.equal(som.topology_distances(4, 'linear'), torch.tensor(
        [[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]], dtype=torch.float32))
    d = som.topology_distances(6, 'circular')
    step = 2 * math.pi / 6
    assert d[0, 1] == pytest.approx(step) and d[0, 5] == pytest.approx(step)   # wraps around
    assert d[0, 3] == pytest.approx(math.pi) and d[1, 5] == pytest.approx(2 * step)
    assert d[4, 1] == pytest.approx(math.pi) and torch.equal(d, d.T)

def test_single_head_and_bad_input():
    for topology in som.TOPOLOGIES:
        assert torch.equal(som.topology_distances(1, topology), torch.zeros(1, 1))
        assert som.topology_diameter(1, topology) == 0
    with pytest.raises(ValueError, match='square'):
        som.topology_distances(6, 'grid')
    with pytest.raises(ValueError, match='unknown SOM topology'):
        som.topology_distances(4, 'torus')
    with pytest.raises(ValueError, match='positive integer'):
        som.topology_distances(0, 'linear')

def test_diameters_and_default_sigma_start():
    assert som.topology_diameter(9, 'grid') == pytest.approx(2 * R2)
    assert som.topology_diameter(5, 'linear') == pytest.approx(4)
    assert som.topology_diameter(5, 'circular') == pytest.approx(2 * math.pi / 5 * 2)
    assert som.topology_diameter(8, 'circular') == pytest.approx(math.pi)
    assert som.default_sigma_start(4, 'grid') == pytest.approx(R2 / 2)
    assert som.default_sigma_start(25, 'grid') == pytest.approx(2 * R2)
    assert som.default_sigma_start(2, 'linear') == pytest.approx(0.5)
    assert som.default_sigma_start(2, 'linear', sigma_end=0.8) == pytest.approx(0.8) # never widens

def test_sigma_schedule_is_exponential_in_progress():
    assert som.sigma_schedule(0, 1000, 2.0, 0.5) == pytest.approx(2.0)
    assert som.sigma_schedule(500, 1000, 2.0, 0.5) == pytest.approx(1.0)         # geometric midpoint
    assert som.sigma_schedule(250, 1000, 2.0, 0.5) == pytest.approx(2.0 * 0.25 ** 0.25)
    assert som.sigma_schedule(1000, 1000, 2.0, 0.5) == pytest.approx(0.5)
    assert som.sigma_schedule(5000, 1000, 2.0, 0.5) == pytest.approx(0.5)        # held past the end
    with pytest.raises(ValueError, match='positive'):
        som.sigma_schedule(0, 10, 0.0, 0.3)

def test_neighbourhood_weights_hand_batch():
    # Three reals, four heads on a 2 x 2 grid. BMUs: 0, 3, and 1 (tie of heads 1 and 2: the first wins).
    logits = torch.tensor([[3.0, 1, 0, 0], [0, 0, 0, 5], [1, 2, 2, 0]], requires_grad=True)
    h = som.neighbourhood_weights(logits, som.topology_distances(4, 'grid'), sigma=1.0)
    e1, e2 = math.exp(-0.5), math.exp(-1.0) # distance 1 and sqrt(2) at sigma 1
    expected = torch.tensor([[1, e1, e1, e2], [e2, e1, e1, 1], [e1, 1, e2, e1]])
    assert torch.allclose(h, expected) and not h.requires_grad
    # Narrower sigma: neighbours fade, the BMU keeps weight 1; per sample, not normalised over the batch.
    h = som.neighbourhood_weights(logits, som.topology_distances(4, 'grid'), sigma=0.5)
    assert torch.allclose(h[0], torch.tensor([1, math.exp(-2), math.exp(-2), math.exp(-4)]))
    # One head: weight 1 whatever sigma.
    one = som.neighbourhood_weights(torch.randn(5, 1), som.topology_distances(1), sigma=0.3)
    assert torch.equal(one, torch.ones(5, 1))
    with pytest.raises(ValueError, match='do not match'):
        som.neighbourhood_weights(logits, som.topology_distances(9, 'grid'), sigma=1.0)

def test_bmu_occupancy():
    logits = torch.tensor([[3.0, 1, 0, 0], [0, 0, 0, 5], [1, 2, 2, 0], [9, 0, 0, 0]])
    assert torch.allclose(som.bmu_occupancy(logits), torch.tensor([0.5, 0.25, 0, 0.25]))
    assert som.best_matching_units(logits).tolist() == [0, 3, 1, 0]

def test_normalized_weights_have_mean_one_per_head():
    logits = torch.tensor([[3.0, 1, 0, 0], [0, 0, 0, 5], [1, 2, 2, 0]])
    plain = som.neighbourhood_weights(logits, som.topology_distances(4, 'grid'), sigma=1.0)
    h = som.neighbourhood_weights(logits, som.topology_distances(4, 'grid'), sigma=1.0, normalize=True)
    e1, e2 = math.exp(-0.5), math.exp(-1.0)
    # Column 2 by hand: (e1, e1, e2) / mean.
    col = torch.tensor([e1, e1, e2])
    assert torch.allclose(h[:, 2], col / col.mean())
    assert torch.allclose(h, plain / plain.mean(0, keepdim=True))
    # Finite where every weight of a head underflows (25 heads, far corner, tiny sigma).
    logits = torch.zeros(8, 25)
    logits[:, 0] = 1 # every sample's BMU is head 0; head 24 is 4*sqrt(2) away
    h = som.neighbourhood_weights(logits, som.topology_distances(25, 'grid'), sigma=0.05, normalize=True)
    assert torch.isfinite(h).all() and torch.allclose(h.mean(0), torch.ones(25))
    assert torch.equal(som.neighbourhood_weights(torch.randn(3, 1), torch.zeros(1, 1), 0.3, normalize=True), torch.ones(3, 1))

def test_generator_weights_follow_each_fakes_own_neighbourhood():
    # Fakes' BMUs 0 and 3 on a 2 x 2 grid at sigma 1: rows h(b) rescaled to sum K = 4.
    logits = torch.tensor([[3.0, 1, 0, 0], [0, 0, 0, 5]], requires_grad=True)
    w = som.generator_weights(logits, som.topology_distances(4, 'grid'), sigma=1.0)
    e1, e2 = math.exp(-0.5), math.exp(-1.0)
    row = torch.tensor([1, e1, e1, e2])
    assert torch.allclose(w[0], 4 * row / row.sum()) and torch.allclose(w[1], 4 * row.flip(0) / row.sum())
    assert not w.requires_grad
    # Narrow sigma: the BMU alone (weight K); wide sigma: every head alike (weight 1, the plain mean).
    assert torch.allclose(som.generator_weights(logits, som.topology_distances(4, 'grid'), 0.01)[0], torch.tensor([4.0, 0, 0, 0]))
    assert torch.allclose(som.generator_weights(logits, som.topology_distances(4, 'grid'), 1e4), torch.ones(2, 4))
    assert torch.equal(som.generator_weights(torch.randn(3, 1), torch.zeros(1, 1), 0.3), torch.ones(3, 1))

def test_balance_weights_by_hand():
    distances = som.topology_distances(2, 'linear')
    logits = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]) # BMUs 0, 0, 1, 0
    sigma = 0.1 # the own neighbourhood is the BMU alone (exp(-50) ~ 0)
    # Reals half and half, fakes 3/4 in unit 0: a unit-0 fake keeps 2/3 of its weight, 1/3 goes to unit 1.
    w = som.balance_weights(logits, distances, sigma, [0.5, 0.5], [0.75, 0.25])
    third = 1 / 3
    expected = torch.tensor([[2 - 2 * third, 2 * third]] * 2 + [[0.0, 2.0]] + [[2 - 2 * third, 2 * third]])
    assert torch.allclose(w, expected, atol=1e-6)
    assert torch.allclose(w.sum(1), torch.full([4], 2.0))
    # Balanced histograms: exactly the neighbourhood weights.
    assert torch.equal(som.balance_weights(logits, distances, 0.7, [0.3, 0.7], [0.3, 0.7]),
        som.generator_weights(logits, distances, 0.7))
    assert torch.equal(som.balance_weights(logits[:, :1], distances[:1, :1], 0.7, [1.0], [1.0]), torch.ones(4, 1))
    with pytest.raises(ValueError, match='occupancies'):
        som.balance_weights(logits, distances, sigma, [1.0], [1.0])

def test_prototypes_follow_kohonens_rule_by_hand():
    distances = som.topology_distances(2, 'linear')
    features = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [12.0, 0.0]])
    protos = som.init_prototypes(features, 2)
    assert torch.equal(protos, features[[0, 3]]) # evenly spaced through the batch
    scores = som.prototype_scores(features, protos)
    assert som.best_matching_units(scores).tolist() == [0, 0, 1, 1]
    assert scores[1].tolist() == [-1.0, -121.0]
    # sigma 0.1: each prototype learns from its own samples only; rate 0.5 goes half way to their mean.
    new = som.update_prototypes(protos, features, distances, 0.1, 0.5)
    assert torch.allclose(new, torch.tensor([[0.25, 0.0], [11.5, 0.0]]))
    # A prototype with no sample in its neighbourhood stays put.
    lonely = som.update_prototypes(torch.tensor([[0.0, 0.0], [100.0, 0.0]]), features[:2], distances, 0.1, 1.0)
    assert torch.allclose(lonely, torch.tensor([[0.5, 0.0], [100.0, 0.0]]))

def test_sinkhorn_meets_both_marginals_and_ignores_offsets():
    torch.manual_seed(0)
    scores = torch.randn(12, 3)
    plan = som.sinkhorn(scores, [0.5, 0.25, 0.25])
    assert torch.allclose(plan.sum(1), torch.full([12], 1 / 12), atol=1e-6)
    assert torch.allclose(plan.sum(0), torch.tensor([0.5, 0.25, 0.25]), atol=2e-3)
    shifted = scores + torch.tensor([5.0, -2.0, 0.5]) + torch.arange(12.0)[:, None]
    assert torch.allclose(som.sinkhorn(shifted, [2, 1, 1]), plan, atol=1e-6) # offsets; marginals renormalised

def test_transport_splits_a_crowd_by_where_each_fake_is():
    # Four fakes, every one best matched by unit 0; the reals are half in unit 1. The two fakes that look most
    # like unit 1 (highest logit_1 - logit_0) are sent there, the others stay: a split, not a uniform nudge.
    logits = torch.tensor([[2.0, 1.0], [2.0, 1.9], [2.0, 0.0], [2.0, 1.5]])
    distances = som.topology_distances(2, 'linear')
    w = som.transport_weights(logits, distances, 0.1, [0.5, 0.5], temperature=0.05)
    assert torch.allclose(w.sum(1), torch.full([4], 2.0))
    assert torch.allclose(w, torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]]), atol=0.05)
    # balance_weights gives every fake of the crowd the same mixture instead.
    b = som.balance_weights(logits, distances, 0.1, [0.5, 0.5], [1.0, 0.0])
    assert torch.allclose(b, torch.ones(4, 2), atol=1e-6)

def test_match_partners_by_hand():
    units = torch.tensor([0, 1, 0, 2, 0])
    partners = torch.tensor([1, 0, 0, 1, 1])
    # unit 0's partners are 1 and 2, taken in turn; unit 1's first is 0; unit 2 has none: its own position.
    assert som.match_partners(units, partners, 3).tolist() == [1, 0, 2, 3, 1]
    # More samples than partners: a sample without a partner of its unit wraps its position.
    assert som.match_partners(torch.tensor([2, 0, 2]), torch.tensor([0, 1]), 3).tolist() == [0, 0, 0]
    every = torch.tensor([3, 1, 2, 0])
    assert som.match_partners(every, every, 4).tolist() == [0, 1, 2, 3] # one each: itself
