"""Stop a diverged run instead of training on NaN: the training loop checks every phase's gradients (before
upstream's nan_to_num would hide them), the losses reported over each tick and, at each tick, the weights.

On a CPU the gradient check is read at once, so the run stops in the step that failed. On a GPU reading it would
wait for the device in every step; the flags stay on the device instead and are read once per tick, with the tick's
other statistics."""

import torch

from torch_utils import training_stats

#----------------------------------------------------------------------------

# Which loss a phase's gradients come from (phase names of the training loop).
PHASE_LOSSES = {'Gmain': 'G loss', 'Greg': 'G regularisation (path length)', 'Gboth': 'G loss',
    'Dmain': 'D loss', 'Dreg': 'D regularisation (R1/R2/GP)', 'Dboth': 'D loss'}

# Reported losses checked per tick (training_stats names of stylegan_som.loss).
LOSS_STATS = r'Loss/(G|D)/(loss|reg|fm)'

class NonFiniteError(RuntimeError):
    """Training produced a NaN or infinity; the message says where and which."""

#----------------------------------------------------------------------------

class Guard:
    """`describe()` -> (position text, path of the last snapshot written or None), for the error message."""

    def __init__(self, device, describe, loss_regex=LOSS_STATS):
        self.deferred = torch.device(device).type == 'cuda' # see the module docstring
        self.describe = describe
        self.flags = dict() # phase name -> device bool tensor: all gradients finite so far this tick
        self.loss_stats = training_stats.Collector(regex=loss_regex, keep_previous=False)
        # training_stats keeps running totals per process: after a NaN (an earlier run in this process, e.g. a
        # benchmark) every later period of that statistic reads NaN, so those can no longer be checked.
        self.unreadable = {name for name, total in self.loss_stats._cumulative.items() # pylint: disable=protected-access
            if not bool(total.isfinite().all())}

    def fail(self, what):
        where, last = self.describe()
        last = f'the last good snapshot is {last}' if last is not None else 'no snapshot was written before it'
        raise NonFiniteError(f'training diverged at {where}: {what}; stopped without saving, {last}')

    def check_gradients(self, phase_name, module):
        """After a phase's backward pass, before anything rewrites the gradients: are all of them finite?"""
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if len(grads) == 0:
            return
        finite = torch.stack([g.isfinite().all() for g in grads]).all()
        if not self.deferred:
            if not bool(finite):
                self.fail(f'the {_loss_of(phase_name)} (phase {phase_name}) has non-finite gradients')
            return
        self.flags[phase_name] = finite if phase_name not in self.flags else (self.flags[phase_name] & finite)

    def check_tick(self, modules):
        """At the end of a tick, on every rank: the deferred gradient flags, the tick's reported losses, and the
        parameters and buffers of `modules` ({name: module or None})."""
        bad = [name for name, flag in self.flags.items() if not bool(flag)]
        self.flags.clear()
        if bad:
            self.fail(f'the {_loss_of(bad[0])} (phase {", ".join(bad)}) has non-finite gradients')
        self.loss_stats.update()
        for name in self.loss_stats.names():
            if name not in self.unreadable and self.loss_stats.num(name) > 0 and not _finite(self.loss_stats.mean(name)):
                self.fail(f'{name} is {self.loss_stats.mean(name)}')
        for key, module in modules.items():
            if module is None:
                continue
            for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
                if tensor.is_floating_point() and not bool(tensor.isfinite().all()):
                    self.fail(f'{key}.{name} holds non-finite values')

def _loss_of(phase_name):
    return PHASE_LOSSES.get(phase_name, f'loss of phase {phase_name}')

def _finite(x):
    return x == x and abs(x) != float('inf')

#----------------------------------------------------------------------------
