"""Tests for stylegan_som.nonfinite: a NaN or infinite gradient, loss or weight stops training with a message
naming where, which and the last good snapshot; on a CPU at once, on a GPU (deferred) at the end of the tick."""

import pytest
import torch

from stylegan_som import nonfinite
from torch_utils import training_stats

#----------------------------------------------------------------------------

def _guard(device='cpu', last=None):
    return nonfinite.Guard(device, describe=lambda: ('tick 3, kimg 1.5 (step 7)', last))

def _net_with_grad(value):
    net = torch.nn.Linear(2, 1)
    net(torch.ones(1, 2)).sum().backward()
    net.weight.grad[0, 1] = value
    return net

def test_finite_gradients_pass():
    guard = _guard()
    guard.check_gradients('Dmain', _net_with_grad(1e30)) # large is not non-finite
    guard.check_gradients('Gmain', torch.nn.Linear(2, 1)) # no gradients at all (a skipped phase)
    guard.check_tick(dict(G=torch.nn.Linear(2, 2), D=None))

@pytest.mark.parametrize('value', [float('nan'), float('inf'), -float('inf')])
def test_cpu_stops_in_the_step(value):
    with pytest.raises(nonfinite.NonFiniteError) as info:
        _guard(last='/runs/00000-x/network-snapshot-000004.pkl').check_gradients('Dmain', _net_with_grad(value))
    assert str(info.value) == ('training diverged at tick 3, kimg 1.5 (step 7): the D loss (phase Dmain) has non-finite '
        'gradients; stopped without saving, the last good snapshot is /runs/00000-x/network-snapshot-000004.pkl')

def test_deferred_flags_are_read_at_the_tick():
    guard = _guard('cuda') # only the flag handling differs on a GPU; the tensors may stay on the CPU here
    assert guard.deferred
    guard.check_gradients('Gmain', _net_with_grad(0.5))
    guard.check_gradients('Greg', _net_with_grad(float('nan'))) # no exception yet: nothing was read from the device
    guard.check_gradients('Greg', _net_with_grad(0.5)) # a later finite step does not clear the flag
    with pytest.raises(nonfinite.NonFiniteError, match=r'G regularisation \(path length\) \(phase Greg\).*no snapshot was written'):
        guard.check_tick(dict(G=torch.nn.Linear(2, 2)))
    guard.check_tick(dict(G=torch.nn.Linear(2, 2))) # flags are per tick

def test_weights_and_buffers_are_checked():
    net = torch.nn.BatchNorm1d(3)
    guard = _guard()
    guard.check_tick(dict(D=net, augment_pipe=None))
    net.running_var[1] = float('inf')
    with pytest.raises(nonfinite.NonFiniteError, match=r'D\.running_var holds non-finite values'):
        guard.check_tick(dict(D=net))

def test_reported_losses_are_checked():
    # Names of this test's own (training_stats' totals are per process; the real loss names stay clean).
    guard = nonfinite.Guard('cpu', describe=lambda: ('tick 0', None), loss_regex=r'GuardTest/(G|D)/loss')
    training_stats.report('GuardTest/G/loss', torch.tensor([1.0, 2.0]))
    guard.check_tick({})
    training_stats.report('GuardTest/D/loss', torch.tensor([1.0, float('nan')]))
    training_stats.report('GuardTest/scores', torch.tensor([float('nan')])) # not a loss: not checked
    with pytest.raises(nonfinite.NonFiniteError, match='GuardTest/D/loss is nan'):
        guard.check_tick({})
    # A later run in the same process: the NaN stays in the totals, so that statistic is skipped, not misread.
    guard = nonfinite.Guard('cpu', describe=lambda: ('tick 0', None), loss_regex=r'GuardTest/(G|D)/loss')
    assert guard.unreadable == {'GuardTest/D/loss'}
    training_stats.report('GuardTest/D/loss', torch.tensor([1.0]))
    training_stats.report('GuardTest/G/loss', torch.tensor([float('inf')]))
    with pytest.raises(nonfinite.NonFiniteError, match='GuardTest/G/loss is inf'):
        guard.check_tick({})

#----------------------------------------------------------------------------
