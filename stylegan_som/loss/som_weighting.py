"""SOM heads: how a D with K heads (logits [N, K]) on a map weighs each sample per head.

Per accumulation round each real x_n picks its best-matching head b(n) = argmax_k D_k(x_n), and head k weighs
that real's term by h_k(n) = exp(-d(k, b(n))^2 / (2 sigma^2)) on the heads' map; sigma shrinks over training
(set_progress). G's loss weighs each fake's heads by the neighbourhood of that fake's own best-matching head
(g_weights='neighbourhood', som.generator_weights), or takes the plain mean over heads (g_weights='mean', the
SOMGAN paper's rule); 'balance' and 'transport' move fakes between units by the reals' and fakes' unit shares
(som.balance_weights, som.transport_weights), the reals' shares a running mean of decay occupancy_decay. With one
head every weight is 1 (None).

Options (som_kwargs of StyleGAN2Loss): num_heads (checked against D's output; default: whatever D returns),
topology ('grid', 'linear' or 'circular'), sigma_start (default: half the map's diameter), sigma_end, normalize
(default True: each head's weights rescaled to mean 1 over the round's reals, som.neighbourhood_weights; without
it a head that wins no reals gets almost no real signal but full fake signal and never wins again), g_weights
(default 'mean'), bmu ('logit': the highest-scoring head; 'prototype': the nearest of K prototypes of D's
features that learn from the reals by Kohonen's rule at prototype_rate, som.update_prototypes), pairs (for a
coupled objective such as rpgan: 'index' pairs the real and the fake at one batch position, 'unit' pairs each
with a sample of the other side in the same unit, som.match_partners). The class keeps the SOMGAN paper's rule
(mean) as its default; train.py's are som.DEFAULTS (transport, bench/RESULTS.md).

The occupancies and prototypes are training state (state_dict); sigma follows from (cur_nimg, total_nimg)."""

import torch

from torch_utils import training_stats

from .. import pictures
from .. import som

#----------------------------------------------------------------------------

class SOMWeighting:
    def __init__(self, device, num_heads=None, topology='grid', sigma_start=None, sigma_end=som.DEFAULT_SIGMA_END,
            normalize=True, g_weights='mean', occupancy_decay=0.99, bmu='logit', prototype_rate=0.05, pairs='index'):
        if topology not in som.TOPOLOGIES:
            raise ValueError(f'som_kwargs.topology: unknown topology {topology!r}; choose from {", ".join(som.TOPOLOGIES)}')
        if g_weights not in som.G_WEIGHTINGS:
            raise ValueError(f'som_kwargs.g_weights: unknown value {g_weights!r}; choose from {", ".join(som.G_WEIGHTINGS)}')
        for name, value in [('sigma_start', sigma_start), ('sigma_end', sigma_end)]:
            if value is not None and not value > 0:
                raise ValueError(f'som_kwargs.{name} must be positive, got {value}')
        if not 0 <= occupancy_decay < 1:
            raise ValueError(f'som_kwargs.occupancy_decay must be in [0, 1), got {occupancy_decay}')
        if bmu not in som.BMU_RULES:
            raise ValueError(f'som_kwargs.bmu: unknown value {bmu!r}; choose from {", ".join(som.BMU_RULES)}')
        if pairs not in som.PAIRINGS:
            raise ValueError(f'som_kwargs.pairs: unknown value {pairs!r}; choose from {", ".join(som.PAIRINGS)}')
        if not 0 < prototype_rate <= 1:
            raise ValueError(f'som_kwargs.prototype_rate must be in (0, 1], got {prototype_rate}')
        self.device = device
        self.num_heads = num_heads
        self.topology = topology
        self.sigma_start = sigma_start
        self.sigma_end = sigma_end
        self.normalize = bool(normalize)
        self.g_weights = g_weights
        self.occupancy_decay = float(occupancy_decay)
        self.bmu = bmu
        self.prototype_rate = float(prototype_rate)
        self.pairs = pairs
        self._occupancy = dict(real=None, fake=None) # running shares of best-matching units, [K] float32 each
        self._prototypes = None # [K, F] float32 on the device: with bmu='prototype', a Kohonen map of D's features
        self._distances = None # [K, K] on the device, built for the first K seen
        self._progress = (0, 1)
        if num_heads is not None:
            self._map(num_heads)

    @property
    def wants_features(self):
        """Whether the best-matching units come from D's features (the runner then captures them)."""
        return self.bmu == 'prototype'

    def _map(self, num_heads):
        """Distances between the heads, checked against the number of logits D returns."""
        if self.num_heads is not None and num_heads != self.num_heads:
            raise ValueError(f'D returns {num_heads} logits per image but som_kwargs.num_heads is {self.num_heads}')
        if self._distances is None or self._distances.shape[0] != num_heads:
            self._distances = som.topology_distances(num_heads, self.topology).to(self.device)
        return self._distances

    def set_progress(self, cur_nimg, total_nimg):
        self._progress = (cur_nimg, total_nimg)

    def sigma(self, num_heads=None):
        """Neighbourhood width now (None for a single head, which needs none)."""
        num_heads = self.num_heads if num_heads is None else num_heads
        if num_heads is None or num_heads == 1:
            return None
        start = self.sigma_start
        if start is None:
            start = som.default_sigma_start(num_heads, self.topology, self.sigma_end)
        return som.sigma_schedule(*self._progress, sigma_start=start, sigma_end=self.sigma_end)

    def _uses_prototypes(self, logits):
        return self.bmu == 'prototype' and logits.shape[1] > 1

    def bmu_scores(self, logits, features):
        """Scores [N, K] whose argmax is each sample's unit: D's logits, or closeness to the prototypes."""
        if not self._uses_prototypes(logits):
            return logits
        if self._prototypes is None:
            self._prototypes = som.init_prototypes(features, logits.shape[1])
        return som.prototype_scores(features, self._prototypes).to(logits.dtype)

    def real_weights(self, real_logits, real_features=None, learn=True):
        """Weights [N, K] for the reals of this round, or None with one head (weight 1). With prototypes and
        `learn` (once per D step), the map first learns from this batch of D's features."""
        num_heads = real_logits.shape[1]
        distances = self._map(num_heads)
        if num_heads == 1:
            return None
        sigma = self.sigma(num_heads)
        if learn and self._uses_prototypes(real_logits):
            self.bmu_scores(real_logits, real_features) # initialises the map on the first batch
            self._prototypes = som.update_prototypes(self._prototypes, real_features, distances, sigma,
                self.prototype_rate)
        scores = self.bmu_scores(real_logits, real_features)
        return som.neighbourhood_weights(scores, distances, sigma, normalize=self.normalize)

    def fake_weights(self, gen_logits, gen_features=None):
        """Weights [N, K] of the heads in G's loss, or None for the plain mean over heads."""
        num_heads = gen_logits.shape[1]
        if num_heads == 1 or self.g_weights == 'mean':
            return None
        distances, sigma = self._map(num_heads), self.sigma(num_heads)
        gen_logits = self.bmu_scores(gen_logits, gen_features)
        real = self._occupancy['real']
        if self.g_weights == 'neighbourhood' or real is None: # before the first D step: nothing to balance
            return som.generator_weights(gen_logits, distances, sigma)
        if self.g_weights == 'transport':
            return som.transport_weights(gen_logits, distances, sigma, real)
        fake = self._track_occupancy('fake', gen_logits)
        return som.balance_weights(gen_logits, distances, sigma, real, fake)

    def fake_partners(self, real_logits, gen_logits, g_weights=None, gen_features=None, real_features=None):
        """The reals' logits reordered so that row m is fake m's partner in G's coupled loss: with pairs='unit' a
        real of the fake's unit (the head G's loss weighs most for it, else its best-matching head); else as
        given."""
        if self.pairs == 'index' or real_logits.shape[1] == 1:
            return real_logits
        fake_scores = g_weights if g_weights is not None else self.bmu_scores(gen_logits, gen_features)
        fake_units = som.best_matching_units(fake_scores)
        real_units = som.best_matching_units(self.bmu_scores(real_logits, real_features))
        return real_logits[som.match_partners(fake_units, real_units, real_logits.shape[1])]

    def real_partners(self, gen_logits, real_logits, real_features=None):
        """The fakes' logits reordered so that row n is real n's partner in D's coupled loss: with pairs='unit' a
        fake whose highest logit is at real n's unit; else as given."""
        if self.pairs == 'index' or gen_logits.shape[1] == 1:
            return gen_logits
        real_units = som.best_matching_units(self.bmu_scores(real_logits, real_features))
        fake_units = som.best_matching_units(gen_logits)
        return gen_logits[som.match_partners(real_units, fake_units, gen_logits.shape[1])]

    def _track_occupancy(self, side, logits):
        """Running mean (decay occupancy_decay per step) of the share of `side`'s samples each head wins."""
        batch = som.bmu_occupancy(logits.detach()) # stays on the device: no host sync per step
        old = self._occupancy[side]
        new = batch if old is None or old.shape != batch.shape else batch.lerp(old, self.occupancy_decay)
        self._occupancy[side] = new
        return new

    def report(self, real_logits, real_features=None):
        """After D's main term: the reals' running occupancy (for the G rules that need it) and the statistics
        SOM/sigma and SOM/occupancy/<k> (mean = share of reals head k wins)."""
        scores = self.bmu_scores(real_logits, real_features)
        num_heads = scores.shape[1]
        if self.g_weights in ('balance', 'transport'):
            self._track_occupancy('real', scores)
        training_stats.report('SOM/sigma', self.sigma(num_heads))
        wins = torch.nn.functional.one_hot(som.best_matching_units(scores), num_heads).to(torch.float32)
        for k in range(num_heads):
            training_stats.report(f'SOM/occupancy/{k}', wins[:, k])

    def tick_report(self, stats, want_pictures=False):
        """'som-sigma 1.23 bmu 0.31/0.22/0.25/0.22': the neighbourhood width and the share of reals each head won
        over the tick (with more than 9 heads, the smallest and largest share); at image snapshots the map of
        those shares as a picture. Nothing for a run whose D has one head (no SOM statistics)."""
        if 'SOM/sigma' not in stats or not stats['SOM/sigma'].num:
            return [], {}
        occupancy = pictures.occupancy_from_stats(stats)
        shares = [float(share) for share in occupancy]
        text = f'som-sigma {stats["SOM/sigma"].mean:<5.3f}'
        if len(shares) <= 9:
            text += ' bmu ' + '/'.join(f'{share:.2f}' for share in shares)
        else:
            text += f' bmu min {min(shares):.2f} max {max(shares):.2f} of {len(shares)}'
        images = {}
        if want_pictures and len(shares) >= 2:
            images['occupancy'] = pictures.occupancy_image(occupancy, self.topology)
        return [text], images

    def state_dict(self):
        state = dict()
        for side, occupancy in self._occupancy.items():
            if occupancy is not None:
                state[f'som_occupancy_{side}'] = occupancy.detach().cpu().clone()
        if self._prototypes is not None:
            state['som_prototypes'] = self._prototypes.detach().cpu().clone()
        return state

    def load_state_dict(self, state):
        for side in self._occupancy:
            value = state.get(f'som_occupancy_{side}')
            self._occupancy[side] = None if value is None else torch.as_tensor(value, dtype=torch.float32).to(self.device).clone()
        value = state.get('som_prototypes')
        self._prototypes = None if value is None else torch.as_tensor(value, dtype=torch.float32).to(self.device).clone()

#----------------------------------------------------------------------------
