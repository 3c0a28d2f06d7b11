"""train.py and calc_metrics.py on several machines, tested on this one: two torchrun agents as two nodes (c10d
rendezvous on localhost, CPU, gloo), one process each. The run writes one run directory from rank 0, splits the
global batch over the ranks and reduces the statistics over them, matches one process with the same global batch at
step 1, and ends with exit 0 on both agents; a snapshot continues on another number of processes; a killed node
makes the other stop with one line, and --resume=latest goes on from there."""

import json
import os
import pickle
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from stylegan_som import legacy, snapshot
from tests.stylegan_som.test_attach import run_in_upstream_like_process
from tests.stylegan_som.test_training_loop import _load, _max_diff, _opt_diff
from tests.test_train import REPO, cpu_env, make_image_folder, run_train
from tests.metrics import standins

# The tiny config with ADA moving p; a global batch of 32 (16 per node) keeps 1 kimg at 32 steps.
COMMON = ['--cfg=tiny', '--tick=1', '--snap=1', '--workers=1', '--seed=7', '--target=0.05', '--batch=32']

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def node_cmd(port, script, *args):
    """One node's launcher, as docs/usage.md gives it (python -m torch.distributed.run is torchrun)."""
    return [sys.executable, '-m', 'torch.distributed.run', '--nnodes=2', '--nproc-per-node=1', '--rdzv-backend=c10d',
        f'--rdzv-endpoint=127.0.0.1:{port}', os.path.join(REPO, script), *args]

def start_nodes(logdir, script, *args, env=None):
    """Two agents; the first hosts the rendezvous store (it is listening before the second starts). Each runs in a
    session of its own, so that a node can be killed with everything it started."""
    os.makedirs(logdir, exist_ok=True)
    port = free_port()
    nodes = []
    for i in range(2):
        log = open(os.path.join(logdir, f'node{i}.log'), 'w')
        nodes.append(subprocess.Popen(node_cmd(port, script, *args), cwd=REPO, env=env or cpu_env(), stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True))
        log.close()
        deadline = time.time() + 120
        while i == 0:
            try:
                socket.create_connection(('127.0.0.1', port), timeout=1).close()
                break
            except OSError:
                assert nodes[0].poll() is None and time.time() < deadline, read_log(logdir, 0)
                time.sleep(0.2)
    return nodes

def kill_node(agent):
    """SIGKILL an agent and its training processes (torchrun starts those in sessions of their own)."""
    import psutil # pylint: disable=import-outside-toplevel
    procs = psutil.Process(agent.pid).children(recursive=True) + [psutil.Process(agent.pid)]
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    agent.wait()

def read_log(logdir, i):
    with open(os.path.join(logdir, f'node{i}.log')) as f:
        return f.read()

def finish_nodes(nodes, logdir, timeout=600):
    """(exit codes, logs) once both agents are done; an agent still running after `timeout` fails the test."""
    codes = []
    for node in nodes:
        try:
            codes.append(node.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            for n in nodes:
                if n.poll() is None:
                    kill_node(n)
            raise AssertionError('an agent hung:\n' + '\n'.join(read_log(logdir, i)[-3000:] for i in range(2)))
    return codes, [read_log(logdir, i) for i in range(2)]

def _kill_after_first_stats(proc, outdir):
    """SIGKILL `proc` once its step-1 snapshot and the stats.jsonl line of tick 0 are on disk (the line is written
    after the snapshot: killing on the snapshot alone can leave stats.jsonl empty)."""
    deadline = time.time() + 300
    while True:
        latest = snapshot.find_latest_snapshot(outdir)
        if latest is not None and latest.endswith('network-snapshot-000000.pkl'):
            stats = os.path.join(os.path.dirname(latest), 'stats.jsonl')
            if os.path.exists(stats) and open(stats).read().endswith('\n'):
                break
        assert proc.poll() is None, 'training ended before it could be killed:\n' + proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.1)
    proc.kill()
    proc.communicate()

def _stats(run_dir):
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        return [json.loads(line) for line in f]

@pytest.fixture(scope='module')
def data8(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('data') / 'dots', num=48, res=8)

@pytest.fixture(scope='module')
def two_nodes(data8, tmp_path_factory):
    """A 1-kimg run on two nodes, and one process with the same global batch in two rounds stopped after step 1."""
    root = tmp_path_factory.mktemp('torchrun')
    nodes = start_nodes(root / 'logs', 'train.py', f'--outdir={root / "two"}', f'--data={data8}', '--kimg=1', *COMMON)
    one = subprocess.Popen([sys.executable, os.path.join(REPO, 'train.py'), f'--outdir={root / "one"}', f'--data={data8}',
        '--kimg=1', '--batch-gpu=16', *COMMON], cwd=REPO, env=cpu_env(), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    _kill_after_first_stats(one, root / 'one')
    codes, logs = finish_nodes(nodes, root / 'logs')
    assert codes == [0, 0], '\n'.join(log[-3000:] for log in logs)
    runs = os.listdir(root / 'two')
    assert len(runs) == 1, runs # rank 0 made the run directory, the other rank used it
    return root / 'two' / runs[0], root / 'one' / os.listdir(root / 'one')[0], logs, root

def test_one_run_directory_split_batch_reduced_stats(two_nodes):
    run_dir, _one, logs, _root = two_nodes
    assert set(os.listdir(run_dir)) == {'training_options.json', 'log.txt', 'stats.jsonl', 'reals.png', 'fakes_init.png',
        'fakes000000.png', 'fakes000001.png', 'network-snapshot-000000.pkl', 'network-snapshot-000001.pkl'}
    with open(run_dir / 'training_options.json') as f:
        opts = json.load(f)
    assert opts['num_gpus'] == 2 and opts['batch_size'] == 32 and opts['batch_gpu'] == 16
    log = (run_dir / 'log.txt').read_text()
    assert 'Distributing across 2 processes' in log
    assert log.count('\ntick ') == 2 and sum(out.count('Exiting...') for out in logs) == 1 # rank 0 alone reports
    stats = _stats(run_dir)
    assert [s['Progress/tick']['mean'] for s in stats] == [0, 1] # one line per tick, from rank 0
    # Each rank scores its own 16 fakes and reals per step; the counts are of both ranks' images.
    assert stats[0]['Loss/G/loss']['num'] == stats[0]['Loss/D/loss']['num'] == 32
    assert stats[1]['Loss/G/loss']['num'] == 32 * 31 # the remaining 31 steps of the kimg (1024 images)
    state = _load(run_dir / 'network-snapshot-000001.pkl')['training_state']
    assert state['num_gpus'] == 2 and len(state['ranks']) == 2 and state['cur_nimg'] == 1024

def test_matches_one_process_at_step_1(two_nodes):
    # Every rank reads its own half of the global batch: only then are the losses and the step those of one
    # process that runs the whole batch (two rounds of 16), to float rounding.
    run_dir, one_dir, _logs, _root = two_nodes
    two, one = _stats(run_dir)[0], _stats(one_dir)[0]
    for name in ('Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake', 'Loss/signs/real'):
        assert two[name]['num'] == one[name]['num'], name
        assert two[name]['mean'] == pytest.approx(one[name]['mean'], rel=1e-5, abs=1e-6), name
    a, b = _load(run_dir / 'network-snapshot-000000.pkl'), _load(one_dir / 'network-snapshot-000000.pkl')
    assert a['training_state']['batch_idx'] == b['training_state']['batch_idx'] == 1
    assert _max_diff(a, b) < 1e-4 and _opt_diff(a, b) < 1e-6

def test_snapshot_loads_in_upstream_loader(two_nodes, tmp_path):
    run_dir, _one, _logs, _root = two_nodes
    pkl = run_dir / 'network-snapshot-000001.pkl'
    data = legacy.load_network_pkl(str(pkl))
    gen = torch.Generator().manual_seed(0)
    io = dict(z=torch.randn([2, data['G_ema'].z_dim], generator=gen), c=torch.zeros([2, 0]),
        img=torch.rand([2, 3, 8, 8], generator=gen) * 2 - 1)
    img, logits = run_in_upstream_like_process(tmp_path, pkl, io)
    with torch.no_grad():
        ours = data['G_ema'](io['z'], io['c'], noise_mode='const')
        assert torch.allclose(img, ours, atol=1e-5) and torch.allclose(logits, data['D'](io['img'], io['c']), atol=1e-5)
    assert img.shape == (2, 3, 8, 8) and float(img.std()) > 0 # it draws

def test_resume_one_process_snapshot_on_two_nodes(two_nodes, data8):
    # The single process's step-1 snapshot (with p set to 0.3) continues on two nodes to the end of the kimg.
    run_dir, one_dir, _logs, root = two_nodes
    src = _load(one_dir / 'network-snapshot-000000.pkl')
    src['training_state']['augment_p'] = 0.3
    pkl = root / 'moved' / 'network-snapshot-000000.pkl'
    os.makedirs(pkl.parent)
    with open(pkl, 'wb') as f:
        pickle.dump(src, f)
    nodes = start_nodes(root / 'logs-resume', 'train.py', f'--outdir={root / "resumed"}', f'--data={data8}', '--kimg=1',
        f'--resume={pkl}', *COMMON)
    codes, logs = finish_nodes(nodes, root / 'logs-resume')
    assert codes == [0, 0], '\n'.join(log[-3000:] for log in logs)
    resumed = root / 'resumed' / os.listdir(root / 'resumed')[0]
    log = (resumed / 'log.txt').read_text()
    notes = [line for line in log.splitlines() if line.startswith('World size changed')]
    assert len(notes) == 1 and notes[0].startswith('World size changed: the snapshot was trained on 1 process(es), '
        'this run has 2 (16 images each); kept: the image counter'), notes
    stats = _stats(resumed)
    assert stats[0]['Progress/kimg']['mean'] == pytest.approx(1.024) # went on from image 32, not from 0
    assert stats[0]['Progress/augment']['mean'] == pytest.approx(0.3, abs=0.01)
    end = _load(resumed / 'network-snapshot-000001.pkl')['training_state']
    ref = _load(run_dir / 'network-snapshot-000001.pkl')['training_state']
    assert end['cur_nimg'] == ref['cur_nimg'] == 1024 and end['batch_idx'] == ref['batch_idx'] == 32
    assert end['num_gpus'] == 2 and abs(end['augment_p'] - 0.3) < 0.01
    # Adam's step counts went on from the snapshot's (a fresh optimizer would be one step short on each).
    for name in ('G', 'D'):
        steps = [float(v['step']) for v in end['optimizers'][name]['state'].values()]
        assert steps == [float(v['step']) for v in ref['optimizers'][name]['state'].values()], name

def test_killed_node_then_resume_on_one_process(data8, tmp_path):
    # Kill the second node (its agent and its training process) after the first snapshot: the first node's
    # process stops with one line within the collective timeout, every snapshot on disk is complete, and
    # --resume=latest continues the run in one process.
    out = tmp_path / 'runs'
    env = cpu_env(SGSOM_DIST_TIMEOUT='20')
    nodes = start_nodes(tmp_path / 'logs', 'train.py', f'--outdir={out}', f'--data={data8}', '--kimg=20', *COMMON, env=env)
    deadline = time.time() + 300
    while not (snapshot.find_latest_snapshot(out) or '').endswith('network-snapshot-000000.pkl'):
        assert nodes[0].poll() is None and nodes[1].poll() is None and time.time() < deadline, read_log(tmp_path / 'logs', 0)
        time.sleep(0.2)
    time.sleep(1.0)
    kill_node(nodes[1])
    start = time.time()
    codes, logs = finish_nodes(nodes[:1], tmp_path / 'logs', timeout=180)
    assert codes[0] != 0 and time.time() - start < 180
    lines = [line for line in logs[0].splitlines() if 'lost contact' in line]
    assert len(lines) == 1 and lines[0].startswith('Error: rank ') and 'SGSOM_DIST_TIMEOUT' in lines[0] \
        and lines[0].endswith('continue with --resume=latest'), logs[0][-3000:]
    run = out / os.listdir(out)[0]
    for path in snapshot.list_snapshots(run):
        _load(path) # complete, whichever moment the kill hit

    latest = snapshot.find_latest_snapshot(out)
    res = run_train(f'--outdir={out}', f'--data={data8}', '--kimg=1', '--resume=latest', *COMMON)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f'continuing the run of {latest}' in res.stdout
    assert 'World size changed: the snapshot was trained on 2 process(es), this run has 1 (32 images each)' in res.stdout
    resumed = out / sorted(os.listdir(out))[-1]
    end = _load(snapshot.list_snapshots(resumed)[-1])['training_state']
    assert end['num_gpus'] == 1 and end['cur_nimg'] == 1024
    assert end['cur_nimg'] > _load(latest)['training_state']['cur_nimg']

def test_calc_metrics_on_two_nodes(two_nodes, tmp_path):
    run_dir, _one, _logs, _root = two_nodes
    pkl = run_dir / 'network-snapshot-000001.pkl'
    detector = standins.save_torchscript(standins.StandInInception(), str(tmp_path / 'standin.pt'))
    env = cpu_env(DNNLIB_CACHE_DIR=str(tmp_path / 'cache'))
    nodes = start_nodes(tmp_path / 'logs', 'calc_metrics.py', '--metrics=fid50k_full', f'--network={pkl}',
        '--max-items=16', f'--inception={detector}', env=env)
    codes, logs = finish_nodes(nodes, tmp_path / 'logs', timeout=300)
    assert codes == [0, 0], '\n'.join(log[-3000:] for log in logs)
    with open(run_dir / 'metric-fid50k_full.jsonl') as f:
        lines = f.read().splitlines()
    assert len(lines) == 1 # rank 0 alone reports
    rec = json.loads(lines[0])
    assert rec['num_gpus'] == 2 and rec['snapshot_pkl'] == 'network-snapshot-000001.pkl' and rec['max_items'] == 16
    assert np.isfinite(rec['results']['fid50k_full']) and rec['results']['fid50k_full'] > 0
    assert sum(log.count('"metric": "fid50k_full"') for log in logs) == 1
