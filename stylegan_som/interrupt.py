"""Stopping a run on SIGTERM or SIGINT (Ctrl-C) without losing it: the training loop finishes the step it is in,
writes an interrupt snapshot (atomically, like every snapshot) and ends; train.py then exits with 128 + the
signal number (143, 130), as a process killed by it would, and says how to continue.

The handlers only record the signal, so nothing runs in the middle of a step or of a write. A second signal is
recorded and otherwise ignored: it cannot tear the snapshot being written (kill -9 can still abandon it, and then
the previous snapshots are intact)."""

import os
import signal
import threading

#----------------------------------------------------------------------------

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

class Interrupted(Exception):
    """Raised by the training loop after it stopped for a signal and wrote its interrupt snapshot."""

    def __init__(self, signum, snapshot_pkl, where):
        self.signum, self.snapshot_pkl, self.where = signum, snapshot_pkl, where
        name = signal.Signals(signum).name
        if snapshot_pkl is None:
            text = f'Interrupted by {name} at {where}; no snapshot written (snapshots are off)'
        else:
            text = (f'Interrupted by {name} at {where}: wrote the interrupt snapshot {snapshot_pkl}; to continue, '
                f'run the same command with --resume=latest (or --resume={snapshot_pkl})')
        super().__init__(text)

    @property
    def exit_code(self):
        return 128 + self.signum

class StopOnSignal:
    """While active (a `with` block), SIGTERM and SIGINT set `signum` instead of ending the process. In a thread
    other than the main one (where Python allows no handlers) it does nothing."""

    def __init__(self):
        self.signum = None  # the first signal received
        self.repeats = 0    # signals received after it (ignored)
        self._previous = dict()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info):
        if self.signum is not None: # stopping: further signals stay ignored until the process has exited. SIG_IGN,
            for signum in self._previous: # not our handler, which Python's shutdown would reset to the default
                signal.signal(signum, signal.SIG_IGN)
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum, _frame):
        # No printing here: the handler may run in the middle of another write to the same stream.
        if self.signum is None:
            self.signum = signum
        else:
            self.repeats += 1

    def requested(self):
        """The signal number received, or 0."""
        return self.signum or 0

class ForwardSignals(StopOnSignal):
    """For a launcher process: pass SIGTERM/SIGINT on to the training processes `pids` (which stop at the same
    step, each with its own StopOnSignal) instead of ending the launcher while they are still writing."""

    def __init__(self, pids):
        super().__init__()
        self.pids = list(pids)

    def _handle(self, signum, frame):
        super()._handle(signum, frame)
        for pid in self.pids:
            try:
                os.kill(pid, signum) # a child that got it from the terminal too takes this as a repeat, and ignores it
            except OSError: # already gone
                pass

def ignore_stop_signals(_worker_id=None):
    """DataLoader worker_init_fn: workers leave SIGTERM/SIGINT (which a terminal or a scheduler sends to the whole
    process group) to the training process, which shuts them down once its step is done."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)

#----------------------------------------------------------------------------
