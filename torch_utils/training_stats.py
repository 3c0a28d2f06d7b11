"""Training statistics that are cheap to report from anywhere and are averaged across devices and processes.

`report(name, value)` adds the count, sum and sum of squares of the given scalars to a running counter on
the value's own device (no GPU->CPU sync). A `Collector` turns the counters into means and standard
deviations over the interval between two `update()` calls; `update()` gathers all devices and, once
`init_multiprocessing()` has been called, sums the counters over processes with one all_reduce."""

import re

import numpy as np
import torch

import dnnlib

from . import misc

#----------------------------------------------------------------------------

_num_moments    = 3             # [count, sum, sum of squares]
_reduce_dtype   = torch.float32 # dtype for the per-call reduction of the reported values
_counter_dtype  = torch.float64 # dtype of the running counters, so long runs don't lose precision
_rank           = 0             # rank of this process
_sync_device    = None          # device used for all_reduce; None = single process
_sync_called    = False         # set once the first sync happened (init must come before)
_counters       = dict()        # name -> device -> moments tensor, filled by report()
_cumulative     = dict()        # name -> moments tensor on CPU, totals over all syncs so far

#----------------------------------------------------------------------------

def init_multiprocessing(rank, sync_device):
    """Enable cross-process collection. Call after torch.distributed.init_process_group() and before the
    first Collector.update(). `sync_device` is where all_reduce runs (e.g. torch.device('cuda', rank), or
    CPU for gloo); None keeps collection local to this process."""
    global _rank, _sync_device
    if _sync_called:
        raise AssertionError('training_stats.init_multiprocessing() must be called before the first Collector.update()')
    _rank = rank
    _sync_device = sync_device

#----------------------------------------------------------------------------

@misc.profiled_function
def report(name, value):
    """Record scalars (Python number, list, NumPy array or tensor of any shape) under `name`; returns `value`.

    Every process must report every name, in the same order, at least once before a sync (all_reduce sums a
    stacked tensor by position); a process with nothing to add can report an empty list."""
    if name not in _counters:
        _counters[name] = dict()

    elems = torch.as_tensor(value)
    if elems.numel() == 0:
        return value

    elems = elems.detach().flatten().to(_reduce_dtype)
    moments = torch.stack([
        torch.ones_like(elems).sum(),
        elems.sum(),
        elems.square().sum(),
    ]).to(_counter_dtype)

    per_device = _counters[name]
    if moments.device not in per_device:
        per_device[moments.device] = torch.zeros_like(moments)
    per_device[moments.device].add_(moments)
    return value

#----------------------------------------------------------------------------

def report0(name, value):
    """Like report(), but only rank 0's values count; other ranks register the name with no data."""
    report(name, value if _rank == 0 else [])
    return value

#----------------------------------------------------------------------------

class Collector:
    """Means / standard deviations of reported statistics whose names fully match `regex`, over the period
    between the last two update() calls. With `keep_previous`, a statistic that got no new values keeps its
    previous figures instead of becoming empty."""

    def __init__(self, regex='.*', keep_previous=True):
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._cumulative = dict()   # name -> totals seen at our last update
        self._moments = dict()      # name -> moments of the last period
        # Baseline: values reported before construction must not count towards the first period.
        self.update()
        self._moments.clear()

    def names(self):
        """Names reported so far (by anyone) that match the regex."""
        return [name for name in _counters if self._regex.fullmatch(name)]

    def update(self):
        """Close the current period: fetch and (across processes) sum the counters, and make the period's
        statistics visible through num/mean/std/as_dict."""
        if not self._keep_previous:
            self._moments.clear()
        for name, cumulative in _sync(self.names()):
            if name not in self._cumulative:
                self._cumulative[name] = torch.zeros([_num_moments], dtype=_counter_dtype)
            delta = cumulative - self._cumulative[name]
            self._cumulative[name].copy_(cumulative)
            if float(delta[0]) != 0:
                self._moments[name] = delta

    def _get_delta(self, name):
        if not self._regex.fullmatch(name):
            raise AssertionError(f'Statistic {name!r} does not match this collector\'s regex {self._regex.pattern!r}')
        if name not in self._moments:
            self._moments[name] = torch.zeros([_num_moments], dtype=_counter_dtype)
        return self._moments[name]

    def num(self, name):
        """Number of scalars in the last period (0 if none)."""
        return int(self._get_delta(name)[0])

    def mean(self, name):
        """Mean over the last period, NaN if nothing was reported."""
        delta = self._get_delta(name)
        if int(delta[0]) == 0:
            return float('nan')
        return float(delta[1] / delta[0])

    def std(self, name):
        """Population standard deviation over the last period; NaN if empty or non-finite, 0 for one value."""
        delta = self._get_delta(name)
        if int(delta[0]) == 0 or not np.isfinite(float(delta[1])):
            return float('nan')
        if int(delta[0]) == 1:
            return float(0)
        mean = float(delta[1] / delta[0])
        raw_var = float(delta[2] / delta[0])
        return np.sqrt(max(raw_var - np.square(mean), 0)) # clamp: cancellation can go slightly negative

    def as_dict(self):
        """dnnlib.EasyDict(name=EasyDict(num=..., mean=..., std=...), ...) for all matching names."""
        stats = dnnlib.EasyDict()
        for name in self.names():
            stats[name] = dnnlib.EasyDict(num=self.num(name), mean=self.mean(name), std=self.std(name))
        return stats

    def __getitem__(self, name):
        """collector[name] is collector.mean(name)."""
        return self.mean(name)

#----------------------------------------------------------------------------

def _sync(names):
    """Move the per-device counters of `names` into the global CPU totals (summed over processes when
    multiprocessing is on) and return [(name, totals), ...]."""
    if len(names) == 0:
        return []
    global _sync_called
    _sync_called = True

    device = _sync_device if _sync_device is not None else torch.device('cpu')
    deltas = []
    for name in names:
        delta = torch.zeros([_num_moments], dtype=_counter_dtype, device=device)
        for counter in _counters[name].values():
            delta.add_(counter.to(device))
            counter.zero_()
        deltas.append(delta)
    deltas = torch.stack(deltas)

    if _sync_device is not None:
        torch.distributed.all_reduce(deltas)

    deltas = deltas.cpu()
    for idx, name in enumerate(names):
        if name not in _cumulative:
            _cumulative[name] = torch.zeros([_num_moments], dtype=_counter_dtype)
        _cumulative[name].add_(deltas[idx])
    return [(name, _cumulative[name]) for name in names]

#----------------------------------------------------------------------------
