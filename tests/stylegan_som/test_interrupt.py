"""Tests for stylegan_som.interrupt: signals are recorded, not acted on; handlers come back when no signal came;
a launcher forwards signals to its training processes. (The end-to-end SIGTERM test of a training run is in
test_training_loop.py.)"""

import os
import signal
import subprocess
import sys
import time

from stylegan_som import interrupt

#----------------------------------------------------------------------------

def test_records_first_signal_and_counts_repeats():
    before = signal.getsignal(signal.SIGTERM)
    with interrupt.StopOnSignal() as stop:
        assert stop.requested() == 0
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT) # no KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.01)
        assert stop.requested() == signal.SIGTERM and stop.repeats == 2
    # Stopped: the signals stay ignored (SIG_IGN survives interpreter shutdown, a Python handler does not).
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN and signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    signal.signal(signal.SIGTERM, before)
    signal.signal(signal.SIGINT, signal.default_int_handler)

def test_handlers_restored_when_nothing_came():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with interrupt.StopOnSignal() as stop:
        assert signal.getsignal(signal.SIGINT) != before[0]
    assert stop.requested() == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before

def test_message_and_exit_codes():
    err = interrupt.Interrupted(signal.SIGINT, '/r/network-snapshot-000003.pkl', 'kimg 3.2 (step 400)')
    assert err.exit_code == 130 and interrupt.Interrupted(signal.SIGTERM, None, 'x').exit_code == 143
    assert str(err) == ('Interrupted by SIGINT at kimg 3.2 (step 400): wrote the interrupt snapshot '
        '/r/network-snapshot-000003.pkl; to continue, run the same command with --resume=latest '
        '(or --resume=/r/network-snapshot-000003.pkl)')

CHILD = '''
import signal, sys, time
from stylegan_som import interrupt
with interrupt.StopOnSignal() as stop:
    print('ready', flush=True)
    while not stop.requested():
        time.sleep(0.01)
print(signal.Signals(stop.requested()).name, flush=True)
'''

def test_launcher_forwards_to_children():
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    child = subprocess.Popen([sys.executable, '-c', CHILD], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == 'ready'
        before = signal.getsignal(signal.SIGTERM)
        with interrupt.ForwardSignals([child.pid, 2 ** 22 + 12345]) as fwd: # a gone pid is skipped
            os.kill(os.getpid(), signal.SIGTERM)
            assert child.wait(timeout=30) == 0
        assert fwd.requested() == signal.SIGTERM and child.stdout.read().strip() == 'SIGTERM'
    finally:
        child.kill()
        child.stdout.close()
    signal.signal(signal.SIGTERM, before)
    signal.signal(signal.SIGINT, signal.default_int_handler)

#----------------------------------------------------------------------------
