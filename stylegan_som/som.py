"""Self-organising-map arithmetic for K discriminator heads (SOMGAN): the fixed map of the heads, the
neighbourhood weights of real samples, the width schedule and the heads' occupancy.

Pure functions of tensors and numbers, no training state: the schedule is a function of the images seen so
far, so a resumed run picks it up exactly. With one head every weight is 1 and the loss is the plain one."""

import math

import numpy as np
import torch

TOPOLOGIES = ('grid', 'linear', 'circular')

# How G's loss combines the heads: their plain mean; per fake the heads around its best-matching head; that
# neighbourhood with the share of fakes that over-occupy their unit sent to the units fakes under-occupy (in
# expectation, the same mixture for every fake of a unit); or each fake sent to a unit by a balanced assignment
# (Sinkhorn) whose unit shares are the reals', preferring the units a fake already scores highest on.
G_WEIGHTINGS = ('mean', 'neighbourhood', 'balance', 'transport')

#----------------------------------------------------------------------------

def _check_num_heads(num_heads):
    if int(num_heads) != num_heads or num_heads < 1:
        raise ValueError(f'the number of SOM heads must be a positive integer, got {num_heads!r}')
    return int(num_heads)

def grid_side(num_heads):
    """Side of the square lattice of `num_heads` heads; ValueError when that is not a perfect square."""
    num_heads = _check_num_heads(num_heads)
    side = math.isqrt(num_heads)
    if side * side != num_heads:
        raise ValueError(f'the grid topology needs a square number of heads (4, 9, 16, ...), got {num_heads}; '
            'use the linear or circular topology, or a square count')
    return side

def head_coordinates(num_heads, topology='grid'):
    """Where each head sits: [K, 2] lattice (row, column) for 'grid', [K, 1] index otherwise."""
    num_heads = _check_num_heads(num_heads)
    if topology not in TOPOLOGIES:
        raise ValueError(f'unknown SOM topology {topology!r}; choose from {", ".join(TOPOLOGIES)}')
    idx = torch.arange(num_heads, dtype=torch.float64)
    if topology == 'grid':
        side = grid_side(num_heads)
        return torch.stack([torch.div(idx, side, rounding_mode='floor'), idx % side], dim=1)
    return idx[:, None]

def topology_distances(num_heads, topology='grid'):
    """[K, K] float32 matrix of distances between heads on the map.

    grid: Euclidean distance between lattice points of a sqrt(K) x sqrt(K) square with unit spacing;
    linear: |i - j|; circular: geodesic on a circle of circumference 2*pi, i.e. 2*pi/K * min(|i-j|, K-|i-j|)."""
    return _distances64(num_heads, topology).to(torch.float32)

def _distances64(num_heads, topology):
    coords = head_coordinates(num_heads, topology)
    if topology == 'grid':
        dist = torch.cdist(coords, coords)
    else:
        steps = (coords - coords.T).abs()
        if topology == 'circular':
            dist = (2 * math.pi / num_heads) * torch.minimum(steps, num_heads - steps)
        else:
            dist = steps
    return dist

def topology_diameter(num_heads, topology='grid'):
    """Largest distance between two heads (0 for a single head); float64, so defaults written to
    training_options.json read cleanly (sqrt(2)/2, not its float32 rounding)."""
    return float(_distances64(num_heads, topology).max())

#----------------------------------------------------------------------------

DEFAULT_SIGMA_END = 0.3

# The SOM settings of a run that does not choose them (train.py's --som-* defaults, made explicit in the
# options); sigma_start defaults to default_sigma_start(). G's rule: transport, the one rule ahead beyond noise on
# the 2-D mixtures and level with the others on images (bench/RESULTS.md, the leaderboard's SOM columns).
DEFAULTS = dict(topology='grid', sigma_end=DEFAULT_SIGMA_END, normalize=True, g_weights='transport', bmu='logit',
    pairs='index')

def default_sigma_start(num_heads, topology='grid', sigma_end=DEFAULT_SIGMA_END):
    """Half the map's diameter: at the start every head learns from most reals. Never below sigma_end, so the
    default schedule never widens (e.g. 2 heads on a line: diameter 1)."""
    return max(topology_diameter(num_heads, topology) / 2, float(sigma_end))

def sigma_schedule(cur_nimg, total_nimg, sigma_start, sigma_end=DEFAULT_SIGMA_END):
    """Neighbourhood width after cur_nimg of total_nimg images: exponential from sigma_start to sigma_end,
    held at sigma_end past the end."""
    if not (sigma_start > 0 and sigma_end > 0):
        raise ValueError(f'SOM sigma must be positive, got start {sigma_start} and end {sigma_end}')
    t = min(max(float(cur_nimg) / max(float(total_nimg), 1.0), 0.0), 1.0)
    return float(sigma_start) * (float(sigma_end) / float(sigma_start)) ** t

#----------------------------------------------------------------------------

def best_matching_units(logits):
    """Index of the head with the highest logit for each sample: [N, K] -> [N] int64 (first head on ties)."""
    return logits.detach().argmax(dim=1)

def neighbourhood_weights(logits, distances, sigma, normalize=False):
    """h[n, k] = exp(-d(k, b(n))^2 / (2 sigma^2)) where b(n) = argmax_k logits[n, k].

    No gradient flows through the choice of b(n) nor through h. By default each sample is weighted on its own
    and the best-matching head gets weight 1. With `normalize`, each head's column is rescaled to mean 1 over
    the batch, h[n, k] / mean_m h[m, k] (computed in log space, so it stays finite when sigma is small and
    every h of a head underflows): every head then learns from reals with the same total weight however few
    it wins, while the per-sample proportions stay those of the neighbourhood."""
    if logits.ndim != 2 or distances.shape != (logits.shape[1], logits.shape[1]):
        raise ValueError(f'neighbourhood_weights: logits {tuple(logits.shape)} do not match distances '
            f'{tuple(distances.shape)}')
    if logits.shape[1] == 1:
        return torch.ones_like(logits)
    if not sigma > 0:
        raise ValueError(f'neighbourhood_weights: sigma must be positive, got {sigma}')
    dist = distances.to(device=logits.device, dtype=torch.float32)[best_matching_units(logits)] # [N, K]
    log_h = dist.square() * (-0.5 / float(sigma) ** 2)
    if normalize:
        log_h = log_h - (log_h.logsumexp(dim=0, keepdim=True) - math.log(logits.shape[0]))
    return torch.exp(log_h).to(logits.dtype)

def generator_weights(logits, distances, sigma):
    """Weights [N, K] of the heads in G's loss when each fake is judged by its own neighbourhood:
    w[m, k] = K * h_k(b(m)) / sum_j h_j(b(m)), with b(m) the fake's best-matching head. Each row sums to K,
    so mean_k w[m, k] * l[m, k] keeps the scale of the plain mean over heads (which is w = 1, and what one head
    gives). No gradient flows through the weights."""
    if logits.shape[1] == 1:
        return torch.ones_like(logits)
    h = neighbourhood_weights(logits, distances, sigma)
    return (h * (logits.shape[1] / h.sum(dim=1, keepdim=True))).to(logits.dtype)

def bmu_occupancy(logits):
    """Share of the samples each head wins: [N, K] -> [K], sums to 1."""
    num_heads = logits.shape[1]
    wins = torch.nn.functional.one_hot(best_matching_units(logits), num_heads)
    return wins.to(torch.float32).mean(dim=0)

#----------------------------------------------------------------------------

# Whom a coupled objective (rpgan) compares each sample with: the sample of the other side at the same batch
# position, or one of the same unit, so that a head's pair is two samples of its own region.
PAIRINGS = ('index', 'unit')

def match_partners(units, partner_units, num_units):
    """For each sample of unit units[m] ([M] int64), the index [M] of a partner of the same unit among
    partner_units ([N] int64): the j-th sample of unit u (in batch order) takes the (j mod n_u)-th of u's n_u
    partners; a sample whose unit has no partner keeps the one at its own position (m mod N). Deterministic, no
    host sync."""
    M, N = units.shape[0], partner_units.shape[0]
    arange = torch.arange(M, device=units.device)
    counts = torch.bincount(partner_units, minlength=num_units)
    starts = counts.cumsum(0) - counts
    own_counts = torch.bincount(units, minlength=num_units)
    own_starts = own_counts.cumsum(0) - own_counts
    own_order = torch.argsort(units, stable=True)
    rank = torch.empty_like(units)
    rank[own_order] = arange - own_starts[units[own_order]] # j: how many earlier samples share m's unit
    have = counts[units]
    slot = (starts[units] + rank % have.clamp(min=1)).clamp(max=N - 1)
    picked = torch.argsort(partner_units, stable=True)[slot]
    return torch.where(have > 0, picked, arange % N)

BMU_RULES = ('logit', 'prototype') # a sample's unit: its highest-scoring head, or its nearest prototype

def prototype_scores(features, prototypes):
    """-|features_n - prototype_k|^2, [N, K]: the BMU rules above read the argmax of such scores."""
    return -torch.cdist(features.detach().float(), prototypes.to(features.device).float()).square()

def init_prototypes(features, num_heads):
    """K prototypes [K, F] from a first batch of features: K samples evenly spaced through the batch."""
    idx = torch.linspace(0, features.shape[0] - 1, num_heads).round().long()
    return features.detach().float()[idx].clone()

def update_prototypes(prototypes, features, distances, sigma, rate):
    """One batch of Kohonen's rule: each prototype moves by `rate` towards the neighbourhood-weighted mean of
    the batch, m_k += rate * sum_n h_k(n) (x_n - m_k) / sum_n h_k(n), with h from the samples' nearest prototypes.
    A prototype whose neighbourhood holds no sample (all h underflow) stays where it is."""
    features = features.detach().float()
    prototypes = prototypes.to(features.device).float()
    h = neighbourhood_weights(prototype_scores(features, prototypes), distances, sigma) # [N, K]
    total = h.sum(0) # [K]
    target = (h.T @ features) / total.clamp(min=1e-12)[:, None]
    step = torch.where(total[:, None] > 1e-12, target - prototypes, torch.zeros_like(prototypes))
    return prototypes + rate * step

def balance_weights(logits, distances, sigma, real_occupancy, fake_occupancy):
    """G's head weights [N, K] that move fakes from the units they over-occupy to those they under-occupy, the
    map's two occupancy histograms (reals' and fakes' shares of best-matching units, [K] each) being a direct
    signal of mode balance. A fake whose unit b holds p_f(b) of the fakes but p_r(b) of the reals keeps its own
    neighbourhood (generator_weights) with probability q = min(1, p_r(b) / p_f(b)); the rest of its weight goes to
    the heads of the units in deficit, in proportion to max(0, p_r(k) - p_f(k)): the transport that would make the
    fakes' histogram the reals'. Rows sum to K as in generator_weights; balanced histograms give exactly those
    weights. No gradient flows through the weights."""
    num_heads = logits.shape[1]
    if num_heads == 1:
        return torch.ones_like(logits)
    p_r = torch.as_tensor(real_occupancy, dtype=torch.float32, device=logits.device)
    p_f = torch.as_tensor(fake_occupancy, dtype=torch.float32, device=logits.device)
    if p_r.shape != (num_heads,) or p_f.shape != (num_heads,):
        raise ValueError(f'balance_weights: occupancies {tuple(p_r.shape)}, {tuple(p_f.shape)} do not match {num_heads} heads')
    own = generator_weights(logits, distances, sigma).to(torch.float32) / num_heads # rows sum to 1
    keep = torch.where(p_f > p_r, p_r / p_f.clamp(min=1e-12), torch.ones_like(p_r))[best_matching_units(logits)]
    deficit = (p_r - p_f).clamp(min=0)
    target = deficit / deficit.sum().clamp(min=1e-12)
    w = keep[:, None] * own + (1 - keep[:, None]) * target[None, :]
    return (w * num_heads).to(logits.dtype)

def sinkhorn(scores, col_marginals, temperature=0.1, iters=100):
    """Soft assignment [N, K] of N samples to K units with rows summing to 1/N and columns to col_marginals
    (renormalised to sum 1), maximising sum P * scores + temperature * entropy(P). The plan does not change when a
    constant is added to a row or a column of the scores, so they are centred both ways and scaled to unit std
    first: the temperature then does not depend on their scale. Scaling iterations in float64 on exp(scores / T)
    with each row's maximum taken out (every row keeps an entry of 1, so no row vanishes), in numpy on the host:
    the [N, K] problem is tiny, and torch's per-op overhead made 100 iterations cost half a 2-D toy step."""
    s = scores.detach().to(device='cpu', dtype=torch.float64).numpy()
    s = s - s.mean(axis=0, keepdims=True)
    s = s - s.mean(axis=1, keepdims=True)
    s = s / max(float(s.std()), 1e-6) if s.size > 1 else s
    kernel = np.exp((s - s.max(axis=1, keepdims=True)) / temperature) # [N, K]
    c = np.maximum(np.asarray(torch.as_tensor(col_marginals, dtype=torch.float64).cpu(), dtype=np.float64), 1e-8)
    c = c / c.sum()
    r = np.full(s.shape[0], 1 / s.shape[0])
    u = np.ones_like(r)
    for _ in range(iters):
        v = c / np.maximum(kernel.T @ u, 1e-300)
        u = r / np.maximum(kernel @ v, 1e-300)
    plan = u[:, None] * kernel * v[None, :]
    return torch.from_numpy(plan).to(device=scores.device, dtype=torch.float32)

def transport_weights(logits, distances, sigma, real_occupancy, temperature=0.1):
    """G's head weights [N, K]: each fake's unit from a balanced assignment of the batch of fakes to the units in
    the reals' shares (sinkhorn on the fakes' scores), spread over the map by the neighbourhood of that unit.
    Fakes that crowd one unit are split by how much they already look like each other unit, a function of where
    each fake is, so G is asked to move part of a crowd consistently rather than all of it a little. Rows sum to
    K as in generator_weights. No gradient flows through the weights."""
    num_heads = logits.shape[1]
    if num_heads == 1:
        return torch.ones_like(logits)
    plan = sinkhorn(logits, real_occupancy, temperature) * logits.shape[0] # rows sum to 1
    d = distances.to(device=logits.device, dtype=torch.float32)
    spread = torch.exp(d.square() * (-0.5 / float(sigma) ** 2))
    spread = spread / spread.sum(dim=1, keepdim=True) # row j: unit j's neighbourhood, sums to 1
    return (plan @ spread * num_heads).to(logits.dtype)
