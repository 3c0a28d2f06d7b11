"""Process groups of multi-process runs (torchrun, or --gpus=N): start-up with a timeout on collectives, a
teardown that leaves no rank waiting, one line when another process is lost, and the note a resumed run prints
when the number of processes changed."""

import datetime
import os
import sys

import torch

#----------------------------------------------------------------------------

TIMEOUT_ENV = 'SGSOM_DIST_TIMEOUT'  # seconds a collective may wait for the other processes
DEFAULT_TIMEOUT = 1800              # torch's own default; the first metric pass can keep rank 0 busy for minutes
PEER_LOST_EXIT = 6                  # exit code of a process whose peers were lost (see train.py's other codes)

class DistConfigError(ValueError):
    """A bad setting of the distributed environment; the message is one line naming it."""

def env_ranks():
    """(rank, local_rank, world_size) when started by torchrun (or another env:// launcher), else None."""
    if 'RANK' in os.environ and 'WORLD_SIZE' in os.environ:
        return int(os.environ['RANK']), int(os.environ.get('LOCAL_RANK', os.environ['RANK'])), int(os.environ['WORLD_SIZE'])
    return None

def collective_timeout():
    """The timeout of every collective, from $SGSOM_DIST_TIMEOUT (seconds) or the default."""
    text = os.environ.get(TIMEOUT_ENV, '').strip()
    if not text:
        return datetime.timedelta(seconds=DEFAULT_TIMEOUT)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if not seconds > 0:
        raise DistConfigError(f'{TIMEOUT_ENV} must be a positive number of seconds, got {text!r}')
    return datetime.timedelta(seconds=seconds)

def init_process_group(backend, init_method, rank=None, world_size=None):
    """torch.distributed.init_process_group with the collective timeout: a process whose peer died or hangs
    stops with an error after that long instead of waiting forever."""
    kwargs = dict(backend=backend, init_method=init_method, timeout=collective_timeout())
    if rank is not None:
        kwargs.update(rank=rank, world_size=world_size)
    torch.distributed.init_process_group(**kwargs)

#----------------------------------------------------------------------------
# Failures of other processes.

_PEER_LOST_HINTS = ('connection closed', 'connection reset', 'broken pipe', 'timed out', 'timeout',
    'connection refused', 'socket closed', 'read error', 'write error')

def is_peer_failure(err):
    """Whether `err`, raised by a collective, means that another process is gone or stopped answering."""
    if isinstance(err, getattr(torch.distributed, 'DistError', ())) and not isinstance(err, DistConfigError):
        return True
    if isinstance(err, RuntimeError):
        text = str(err).lower()
        return ('gloo' in text or 'nccl' in text or 'tcp' in text) and any(h in text for h in _PEER_LOST_HINTS)
    return False

def peer_failure_line(err, rank):
    """One line for the log: which process stopped and what to do next."""
    reason = (str(err).strip().splitlines() or [type(err).__name__])[-1].strip()
    if len(reason) > 160:
        reason = reason[:157] + '...'
    return (f'Error: rank {rank} lost contact with another training process (a node died or stopped answering '
        f'within {collective_timeout().total_seconds():g} s, {TIMEOUT_ENV}): {reason}; the snapshots written so far are '
        'complete, continue with --resume=latest')

#----------------------------------------------------------------------------
# Teardown.

def teardown():
    """End a run on every rank together: a barrier, so that no rank tears its connections down while another
    still waits in a collective, then destroy_process_group."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    try:
        torch.distributed.barrier()
    finally:
        torch.distributed.destroy_process_group()

def end_run(rank, together, exit_code):
    """The end of a process of a multi-process run: teardown() when every rank stops at this point (the run is
    done, or stopped for a signal at an agreed step), else only destroy_process_group (an error of this rank's
    own, while the others may be anywhere); then leave() with `exit_code`."""
    try:
        if together:
            teardown()
        elif torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    except Exception as err: # pylint: disable=broad-except
        if not is_peer_failure(err):
            raise
        print(peer_failure_line(err, rank))
        exit_code = exit_code or PEER_LOST_EXIT
    leave(exit_code)

def leave(exit_code=0):
    """Exit a process of a multi-process run after teardown(), without the interpreter's shutdown.

    Once DistributedDataParallel has wrapped a module, torch keeps the gloo process group alive after
    destroy_process_group (its worker threads and sockets survive); at interpreter shutdown those threads can
    then run into the finalising interpreter when a peer closes its end (std::terminate, SIGABRT), and the
    launcher of the aborted process never reaches torchrun's exit barrier, so the others hang. Everything the
    run writes is closed or flushed by then; os._exit ends the process with the right code and nothing else."""
    for stream in (sys.stdout, sys.stderr): # dnnlib.util.Logger flushes log.txt with them
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(exit_code)

#----------------------------------------------------------------------------
# Resuming with another number of processes.

def world_size_note(old_num_gpus, num_gpus, batch_size):
    """The log line of a run continued on `num_gpus` processes from a snapshot of `old_num_gpus`, or None."""
    if old_num_gpus is None or int(old_num_gpus) == int(num_gpus):
        return None
    return (f'World size changed: the snapshot was trained on {old_num_gpus} process(es), this run has {num_gpus} '
        f'({batch_size // num_gpus} images each); kept: the image counter, tick and step, optimizer states, '
        'augmentation p and ADA window, data order and per-step latents of the global batch of '
        f'{batch_size}, the loss state and RNG of rank 0 (the trajectory is not bit-identical)')

#----------------------------------------------------------------------------
