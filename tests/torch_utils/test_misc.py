"""Tests for torch_utils.misc."""

import itertools
import warnings

import numpy as np
import pytest
import torch

from torch_utils import misc

#----------------------------------------------------------------------------

def test_constant_values_and_cache():
    a = misc.constant([1, 2, 3])
    assert a.dtype == torch.get_default_dtype() and a.device.type == 'cpu'
    assert torch.equal(a, torch.tensor([1.0, 2.0, 3.0]))
    assert misc.constant([1, 2, 3]) is a # cached
    assert misc.constant(np.array([1, 2, 3])) is a # same value, same key
    assert misc.constant([1, 2, 4]) is not a
    b = misc.constant([1, 2, 3], dtype=torch.int64)
    assert b.dtype == torch.int64 and b is not a
    c = misc.constant(5, shape=[2, 3], dtype=torch.float64)
    assert c.shape == (2, 3) and c.dtype == torch.float64 and c.is_contiguous() and bool((c == 5).all())
    d = misc.constant([1, 2], shape=[3, 2])
    assert torch.equal(d, torch.tensor([[1.0, 2.0]] * 3))
    e = misc.constant(np.ones([1, 3, 2, 2]), memory_format=torch.channels_last)
    assert e.is_contiguous(memory_format=torch.channels_last)


def test_nan_to_num():
    x = torch.tensor([float('nan'), float('inf'), -float('inf'), 1.5])
    y = misc.nan_to_num(x)
    assert y[0] == 0 and y[1] == torch.finfo(x.dtype).max and y[2] == torch.finfo(x.dtype).min and y[3] == 1.5
    y = misc.nan_to_num(x, nan=0.0, posinf=7.0, neginf=-7.0)
    assert y.tolist() == [0.0, 7.0, -7.0, 1.5]

#----------------------------------------------------------------------------

def test_assert_shape_eager():
    x = torch.zeros(2, 3, 4)
    misc.assert_shape(x, [2, 3, 4])
    misc.assert_shape(x, [None, 3, None])
    misc.assert_shape(x, (2, torch.tensor(3), None)) # tensors as reference sizes
    with pytest.raises(AssertionError, match='number of dimensions: got 3, expected 2'):
        misc.assert_shape(x, [2, 3])
    with pytest.raises(AssertionError, match='dimension 1: got 3, expected 5'):
        misc.assert_shape(x, [2, 5, 4])
    with pytest.raises(AssertionError, match='dimension 2'):
        misc.assert_shape(x, [2, 3, torch.tensor(5)])


@pytest.mark.filterwarnings('ignore::DeprecationWarning') # torch.jit.trace itself is deprecated
def test_assert_shape_traced():
    def fn(x):
        misc.assert_shape(x, [None, 4])
        misc.assert_shape(x, [x.shape[0], 4])
        return x * 2
    with warnings.catch_warnings():
        warnings.simplefilter('error', torch.jit.TracerWarning) # suppress_tracer_warnings must catch them all
        traced = torch.jit.trace(fn, (torch.ones(3, 4),), check_trace=False)
    assert torch.equal(traced(torch.ones(5, 4)), torch.full([5, 4], 2.0))


def test_suppress_tracer_warnings_scoped():
    with misc.suppress_tracer_warnings():
        warnings.warn('hidden', torch.jit.TracerWarning)
    with pytest.warns(torch.jit.TracerWarning):
        warnings.warn('visible', torch.jit.TracerWarning)


def test_profiled_function():
    @misc.profiled_function
    def add_one(x, *, k=1):
        """doc"""
        return x + k
    assert add_one.__name__ == 'add_one'
    assert add_one(1, k=2) == 3
    with torch.autograd.profiler.profile() as prof:
        add_one(torch.zeros(1))
    assert any(evt.name == 'add_one' for evt in prof.function_events)

#----------------------------------------------------------------------------

def _take(sampler, k):
    return [int(i) for i in itertools.islice(iter(sampler), k)]


def test_infinite_sampler_matches_reference_order():
    # Orders produced by StyleGAN2-ADA's sampler (numpy RandomState stream), so resumed runs see the same data.
    assert _take(misc.InfiniteSampler(list(range(7))), 25) == \
        [6, 2, 1, 3, 0, 5, 2, 3, 6, 0, 4, 1, 5, 6, 3, 1, 5, 0, 6, 2, 4, 1, 5, 0, 6]
    assert _take(misc.InfiniteSampler(list(range(7)), rank=1, num_replicas=2, seed=3), 12) == \
        [6, 3, 0, 3, 0, 4, 5, 0, 1, 2, 0, 5]
    assert _take(misc.InfiniteSampler(list(range(5)), window_size=0), 8) == [2, 0, 1, 3, 4, 2, 0, 1]


def test_infinite_sampler_properties():
    assert _take(misc.InfiniteSampler(list(range(4)), shuffle=False), 10) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    # Ranks interleave the single-process stream.
    full = _take(misc.InfiniteSampler(list(range(9)), seed=5), 30)
    parts = [_take(misc.InfiniteSampler(list(range(9)), rank=r, num_replicas=3, seed=5), 10) for r in range(3)]
    assert [parts[i % 3][i // 3] for i in range(30)] == full
    assert _take(misc.InfiniteSampler(list(range(9)), seed=1), 20) != full[:20]
    loader = torch.utils.data.DataLoader(list(range(10)), sampler=misc.InfiniteSampler(list(range(10))), batch_size=4)
    batch = next(iter(loader))
    assert batch.shape == (4,)
    with pytest.raises(AssertionError):
        misc.InfiniteSampler([])
    with pytest.raises(AssertionError):
        misc.InfiniteSampler([1], rank=1, num_replicas=1)

#----------------------------------------------------------------------------

class _Net(torch.nn.Module):
    def __init__(self, n=3, extra=False):
        super().__init__()
        self.fc = torch.nn.Linear(n, 2)
        self.register_buffer('stat', torch.zeros([2]))
        if extra:
            self.extra = torch.nn.Parameter(torch.zeros([1]))
    def forward(self, x):
        return self.fc(x) + self.stat


def test_params_and_buffers():
    net = _Net()
    assert [n for n, _ in misc.named_params_and_buffers(net)] == ['fc.weight', 'fc.bias', 'stat']
    assert [id(t) for t in misc.params_and_buffers(net)] == [id(net.fc.weight), id(net.fc.bias), id(net.stat)]


def test_copy_params_and_buffers():
    torch.manual_seed(0)
    src, dst = _Net(), _Net(extra=True)
    src.stat.fill_(3)
    misc.copy_params_and_buffers(src, dst) # dst.extra has no source: left alone
    assert torch.equal(dst.fc.weight, src.fc.weight) and torch.equal(dst.stat, src.stat)
    assert dst.fc.weight is not src.fc.weight and dst.fc.weight.requires_grad
    assert torch.equal(dst.extra, torch.zeros([1]))
    with pytest.raises(AssertionError, match='extra'):
        misc.copy_params_and_buffers(src, dst, require_all=True)
    misc.copy_params_and_buffers(dst, src, require_all=True) # the superset as source is fine
    with pytest.raises(AssertionError, match='shape mismatch.*fc.weight'):
        misc.copy_params_and_buffers(_Net(n=4), dst)


def test_ddp_sync_plain_module():
    net = _Net()
    for sync in (True, False):
        with misc.ddp_sync(net, sync):
            net(torch.zeros(1, 3)).sum().backward()
    assert net.fc.weight.grad is not None


def test_check_ddp_consistency_single_process(tmp_path):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    try:
        net = _Net()
        net.stat.fill_(float('nan')) # NaNs compare equal
        misc.check_ddp_consistency(net)
        misc.check_ddp_consistency(net, ignore_regex=r'.*\.stat')
    finally:
        dist.destroy_process_group()

#----------------------------------------------------------------------------

class _Pair(torch.nn.Module):
    def forward(self, x):
        return x, x.to(torch.float64)[:, :1]


class _Outer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = _Net(3)
        self.pair = _Pair()
    def forward(self, x):
        return self.pair(self.inner(x))


def test_print_module_summary(capsys):
    net = _Outer()
    out = misc.print_module_summary(net, [torch.zeros(5, 3)])
    assert isinstance(out, tuple) and out[0].shape == (5, 2)
    lines = [line.split() for line in capsys.readouterr().out.strip().splitlines()]
    rows = {cells[0]: cells for cells in lines}
    assert lines[0][0] == '_Outer'
    assert rows['inner.fc'][1:] == ['8', '-', '[5,', '2]', 'float32']
    assert rows['inner'][1:3] == ['-', '2'] # the buffer belongs to the inner module
    assert rows['pair:0'][3:] == ['[5,', '2]', 'float32']
    assert rows['pair:1'][3:] == ['[5,', '1]', 'float64'] # each output listed with its own shape
    assert rows['Total'][1:3] == ['8', '2']
    # Hooks are removed afterwards.
    assert not net.inner._forward_hooks and not net._forward_pre_hooks

#----------------------------------------------------------------------------
