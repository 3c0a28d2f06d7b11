"""Tests for torch_utils.training_stats, single-process and with two gloo processes."""

import json
import math
import os

import numpy as np
import pytest
import torch

from torch_utils import training_stats as ts


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    """The module keeps global counters; give every test its own."""
    monkeypatch.setattr(ts, '_counters', dict())
    monkeypatch.setattr(ts, '_cumulative', dict())
    monkeypatch.setattr(ts, '_rank', 0)
    monkeypatch.setattr(ts, '_sync_device', None)
    monkeypatch.setattr(ts, '_sync_called', False)

#----------------------------------------------------------------------------

def test_mean_std_num_against_numpy():
    rng = np.random.RandomState(0)
    a = rng.randn(7).astype(np.float32)
    b = rng.randn(2, 3).astype(np.float32)
    c = ts.Collector()
    assert ts.report('Loss/x', torch.from_numpy(a)) is not None
    ts.report('Loss/x', b) # numpy works too
    ts.report('Loss/x', 1.25) # and Python scalars
    c.update()
    ref = np.concatenate([a, b.ravel(), [1.25]]).astype(np.float64)
    assert c.num('Loss/x') == ref.size
    assert c.mean('Loss/x') == pytest.approx(ref.mean(), rel=1e-6)
    assert c.std('Loss/x') == pytest.approx(ref.std(), rel=1e-5) # population std
    assert c['Loss/x'] == c.mean('Loss/x')
    d = c.as_dict()
    assert set(d) == {'Loss/x'} and d['Loss/x'].num == ref.size and d['Loss/x'].mean == c.mean('Loss/x')


def test_report_returns_value_and_counts_as_float64():
    t = torch.tensor([1.0, 2.0], requires_grad=True)
    assert ts.report('v', t) is t
    counters = ts._counters['v']
    (moments,) = counters.values()
    assert moments.dtype == torch.float64 and moments.tolist() == [2.0, 3.0, 5.0]


def test_periods_and_keep_previous():
    ts.report('a', [100.0]) # before the collector exists: not part of any of its periods
    c = ts.Collector()
    c_fresh = ts.Collector(keep_previous=False)
    ts.report('a', [1.0, 3.0])
    c.update()
    c_fresh.update()
    assert c.num('a') == 2 and c.mean('a') == 2.0 and c.std('a') == 1.0
    assert c_fresh.mean('a') == 2.0 # collectors don't steal each other's values
    # A period with no new values: kept by default, cleared with keep_previous=False.
    c.update()
    c_fresh.update()
    assert c.mean('a') == 2.0
    assert c_fresh.num('a') == 0 and math.isnan(c_fresh.mean('a')) and math.isnan(c_fresh.std('a'))
    ts.report('a', 5.0)
    c.update()
    assert c.num('a') == 1 and c.mean('a') == 5.0 and c.std('a') == 0.0


def test_regex_and_unknown_names():
    c = ts.Collector(regex='Loss/.*')
    ts.report('Loss/G', [1.0])
    ts.report('Timing/tick', [2.0])
    ts.report('Loss/empty', []) # registers the name without data
    c.update()
    assert c.names() == ['Loss/G', 'Loss/empty']
    assert c.num('Loss/empty') == 0 and math.isnan(c['Loss/empty'])
    assert math.isnan(c.mean('Loss/never'))
    with pytest.raises(AssertionError, match='Timing/tick'):
        c.mean('Timing/tick')


def test_report0_only_counts_rank0(monkeypatch):
    c = ts.Collector()
    ts.report0('r', [4.0])
    monkeypatch.setattr(ts, '_rank', 1)
    ts.report0('r', [8.0])
    c.update()
    assert c.num('r') == 1 and c.mean('r') == 4.0


def test_non_finite_std_is_nan():
    c = ts.Collector()
    ts.report('inf', [1.0, float('inf')])
    c.update()
    assert math.isnan(c.std('inf'))


def test_init_multiprocessing_after_sync_rejected():
    c = ts.Collector()
    ts.report('x', 1.0)
    c.update()
    with pytest.raises(AssertionError):
        ts.init_multiprocessing(rank=0, sync_device=torch.device('cpu'))

#----------------------------------------------------------------------------
# Two processes over gloo: counters are summed across ranks.

def _worker(rank, init_file, out_dir):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    try:
        from torch_utils import training_stats
        training_stats.init_multiprocessing(rank=rank, sync_device=torch.device('cpu'))
        c = training_stats.Collector()
        training_stats.report('x', torch.arange(3, dtype=torch.float32) + 10 * rank) # rank0: 0,1,2  rank1: 10,11,12
        training_stats.report0('y', [float(rank + 1)])
        c.update()
        res = dict(x=[c.num('x'), c.mean('x'), float(c.std('x'))], y=[c.num('y'), c.mean('y')])
        with open(os.path.join(out_dir, f'{rank}.json'), 'w') as f:
            json.dump(res, f)
    finally:
        dist.destroy_process_group()


def test_two_processes_gloo(tmp_path):
    import multiprocessing
    import torch.multiprocessing as mp
    # fork skips re-importing torch in each child (seconds per child); the children run no parallel
    # CPU kernels, so inheriting the parent's OpenMP state is harmless.
    if 'fork' in multiprocessing.get_all_start_methods():
        mp.start_processes(_worker, args=(str(tmp_path / 'pg_init'), str(tmp_path)), nprocs=2, join=True, start_method='fork')
    else:
        repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        old = os.environ.get('PYTHONPATH')
        os.environ['PYTHONPATH'] = repo_root + (os.pathsep + old if old else '') # spawned children re-import this module
        try:
            mp.spawn(_worker, args=(str(tmp_path / 'pg_init'), str(tmp_path)), nprocs=2, join=True)
        finally:
            if old is None:
                del os.environ['PYTHONPATH']
            else:
                os.environ['PYTHONPATH'] = old
    ref = np.array([0, 1, 2, 10, 11, 12], dtype=np.float64)
    for rank in range(2):
        with open(tmp_path / f'{rank}.json') as f:
            res = json.load(f)
        assert res['x'][0] == 6
        assert res['x'][1] == pytest.approx(ref.mean())
        assert res['x'][2] == pytest.approx(ref.std())
        assert res['y'] == [1, 1.0] # only rank 0's value

#----------------------------------------------------------------------------
