"""torch_utils.dist_util without processes: the timeout setting, the lost-peer line, the world-size note."""

import datetime
import os
import subprocess
import sys

import pytest
import torch

from torch_utils import dist_util
from tests.test_train import REPO, cpu_env

def test_collective_timeout(monkeypatch):
    monkeypatch.delenv(dist_util.TIMEOUT_ENV, raising=False)
    assert dist_util.collective_timeout() == datetime.timedelta(seconds=1800)
    monkeypatch.setenv(dist_util.TIMEOUT_ENV, '2.5')
    assert dist_util.collective_timeout() == datetime.timedelta(seconds=2.5)
    for bad in ('0', '-3', 'ten', 'nan'):
        monkeypatch.setenv(dist_util.TIMEOUT_ENV, bad)
        with pytest.raises(dist_util.DistConfigError, match=f"^SGSOM_DIST_TIMEOUT must be a positive number of seconds, got '{bad}'$"):
            dist_util.collective_timeout()

def test_env_ranks(monkeypatch):
    for name in ('RANK', 'LOCAL_RANK', 'WORLD_SIZE'):
        monkeypatch.delenv(name, raising=False)
    assert dist_util.env_ranks() is None
    monkeypatch.setenv('RANK', '3')
    monkeypatch.setenv('WORLD_SIZE', '4')
    assert dist_util.env_ranks() == (3, 3, 4)
    monkeypatch.setenv('LOCAL_RANK', '1')
    assert dist_util.env_ranks() == (3, 1, 4)

def test_peer_failure(monkeypatch):
    monkeypatch.setenv(dist_util.TIMEOUT_ENV, '20')
    closed = RuntimeError('[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:4711')
    assert dist_util.is_peer_failure(closed)
    assert dist_util.is_peer_failure(torch.distributed.DistBackendError('anything'))
    assert not dist_util.is_peer_failure(RuntimeError('mat1 and mat2 shapes cannot be multiplied'))
    assert not dist_util.is_peer_failure(ValueError('gloo connection closed'))
    line = dist_util.peer_failure_line(closed, rank=1)
    assert line == ('Error: rank 1 lost contact with another training process (a node died or stopped answering within '
        '20 s, SGSOM_DIST_TIMEOUT): [../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer '
        '[127.0.0.1]:4711; the snapshots written so far are complete, continue with --resume=latest')
    assert '\n' not in dist_util.peer_failure_line(RuntimeError('x' * 500 + '\nlast line'), rank=0)

def test_world_size_note():
    assert dist_util.world_size_note(2, 2, 32) is None
    assert dist_util.world_size_note(None, 2, 32) is None # a snapshot that does not say
    note = dist_util.world_size_note(1, 4, 64)
    assert note.startswith('World size changed: the snapshot was trained on 1 process(es), this run has 4 (16 images each); '
        'kept: the image counter, tick and step, optimizer states, augmentation p')
    assert 'not bit-identical' in note and '\n' not in note

def test_bad_timeout_is_one_usage_line(tmp_path):
    # train.py --gpus=2 checks the setting before any process starts.
    res = subprocess.run([sys.executable, os.path.join(REPO, 'train.py'), f'--outdir={tmp_path / "runs"}', '--data=ring8',
        '--cfg=toy', '--gpus=2', '--dry-run'], cwd=REPO, env=cpu_env(SGSOM_DIST_TIMEOUT='soon'), capture_output=True,
        text=True, timeout=120)
    assert res.returncode == 2 and 'Traceback' not in res.stderr, res.stderr
    assert "SGSOM_DIST_TIMEOUT must be a positive number of seconds, got 'soon'" in res.stderr.strip().splitlines()[-1]
    assert not os.path.exists(tmp_path / 'runs')
