"""Training-loop guarantees, on CPU with the tiny config:

- a snapshot write killed at any moment leaves the previous file intact;
- a run killed with SIGKILL and continued with --resume=latest ends with the same networks, optimizer states and
  augmentation probability as an uninterrupted run;
- two gloo processes (--gpus=2 without CUDA) stay identical across ranks (checked by the loop at every snapshot)
  and match one process that runs the same global batch in two accumulation rounds.
Also unit checks of the data order, the StyleGAN2 loss and the RNG capture."""

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from stylegan_som import snapshot
from stylegan_som.training_loop import ResumableSampler
from tests.test_train import REPO, cpu_env, make_image_folder, run_train, shared_data

#----------------------------------------------------------------------------
# Atomic snapshot writes.

_WRITER = r'''
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from stylegan_som import snapshot
i = 0
while True:
    i += 1
    snapshot.atomic_write_pickle(dict(i=i, blob=np.full(4_000_000, i, dtype=np.int32)), sys.argv[2])
    if i == 1:
        print('ready', flush=True)
'''

def test_atomic_write_survives_kill(tmp_path):
    target = tmp_path / 'network-snapshot-000000.pkl'
    snapshot.atomic_write_pickle(dict(i=0, blob=np.zeros(4_000_000, dtype=np.int32)), target)
    rng = np.random.default_rng(0)
    torn = 0
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, '-c', _WRITER, REPO, str(target)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == 'ready'
        time.sleep(rng.random() * 0.3) # lands at a random point of some write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        with open(target, 'rb') as f:
            data = pickle.load(f) # a torn file would fail here
        assert (data['blob'] == data['i']).all()
        temps = [f for f in os.listdir(tmp_path) if f != target.name]
        torn += len(temps) > 0
        snapshot.remove_stale_temp_files(tmp_path)
        assert os.listdir(tmp_path) == [target.name] # and the leftovers are recognised as such
    assert torn > 0 # at least one kill hit the middle of a write (writes take most of the writer's time)
    assert snapshot.list_snapshots(tmp_path) == [str(target)]

@pytest.mark.parametrize('where', ['mkstemp', 'write', 'fsync'])
def test_write_error_keeps_the_previous_snapshot(tmp_path, monkeypatch, where):
    import errno
    target = tmp_path / 'network-snapshot-000004.pkl'
    snapshot.atomic_write_pickle(dict(i=1), target)
    def full(*_args, **_kwargs):
        if where == 'write':
            _args[1].write(b'partial')
        raise OSError(errno.ENOSPC, 'No space left on device')
    target_fn = dict(mkstemp=(snapshot.tempfile, 'mkstemp'), write=(snapshot.pickle, 'dump'), fsync=(snapshot.os, 'fsync'))[where]
    monkeypatch.setattr(*target_fn, full)
    with pytest.raises(snapshot.SnapshotWriteError) as info:
        snapshot.atomic_write_pickle(dict(i=2), target)
    monkeypatch.undo()
    assert str(info.value) == f'Cannot write {target}: No space left on device; nothing was replaced, earlier snapshots are intact'
    assert isinstance(info.value, OSError)
    assert _load(target) == dict(i=1) and os.listdir(tmp_path) == [target.name] # old file intact, no temporary left

def test_find_latest_snapshot(tmp_path):
    assert snapshot.find_latest_snapshot(tmp_path / 'missing') is None
    for run, kimgs in [('00000-a', [0, 4, 12]), ('00001-a-resumecustom', [16, 20]), ('00002-a-resumecustom', [])]:
        os.makedirs(tmp_path / run)
        for kimg in kimgs:
            (tmp_path / run / f'network-snapshot-{kimg:06d}.pkl').write_bytes(b'x')
    (tmp_path / '00001-a-resumecustom' / '.network-snapshot-000024.pkl.abc.tmp').write_bytes(b'x')
    assert snapshot.find_latest_snapshot(tmp_path) == str(tmp_path / '00001-a-resumecustom' / 'network-snapshot-000020.pkl')

#----------------------------------------------------------------------------
# Data order.

def test_sampler_resumes_and_splits_like_rounds():
    n, batch = 10, 4
    full = ResumableSampler(n, batch_size=batch, seed=5)
    it = iter(full)
    stream = [next(it) for _ in range(batch * 7)]
    # Every pass over the data is a permutation.
    for epoch in range(2):
        assert sorted(stream[epoch * n:(epoch + 1) * n]) == list(range(n))
    # Starting at step 3 continues the same stream.
    it = iter(ResumableSampler(n, batch_size=batch, seed=5, start_step=3))
    assert [next(it) for _ in range(batch * 4)] == stream[batch * 3:]
    # Two ranks take contiguous halves of each global batch.
    halves = [iter(ResumableSampler(n, batch_size=batch, rank=r, num_replicas=2, seed=5)) for r in range(2)]
    merged = []
    for _step in range(7):
        for h in halves:
            merged += [next(h) for _ in range(batch // 2)]
    assert merged == stream
    # Another seed, another order.
    it = iter(ResumableSampler(n, batch_size=batch, seed=6))
    assert [next(it) for _ in range(n)] != stream[:n]

def test_rng_capture_restore():
    state = snapshot.capture_rng_state('cpu')
    a = (torch.rand(3), np.random.rand(3))
    snapshot.restore_rng_state(state, 'cpu')
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    snapshot.check_plain(state)
    with pytest.raises(TypeError, match='not allowed'):
        snapshot.check_plain(dict(bad=ResumableSampler(1, 1)))

#----------------------------------------------------------------------------
# Kill and resume; DDP. Both train through the command line, on MNIST from ../shared/data (idx files, padded to
# 32x32 greyscale) or, where that is missing, on 8x8 images made here.

def _load(path):
    with open(path, 'rb') as f:
        return pickle.load(f)

def _max_diff(a, b):
    """Largest difference over all parameters and buffers of G, D, G_ema and the augmentation pipe."""
    worst = 0.0
    for key in ('G', 'D', 'G_ema', 'augment_pipe'):
        ta = dict(list(a[key].named_parameters()) + list(a[key].named_buffers()))
        tb = dict(list(b[key].named_parameters()) + list(b[key].named_buffers()))
        assert ta.keys() == tb.keys()
        for name in ta:
            if name.endswith('w_avg'):
                continue # per-process statistic of the mapping network, not trained
            worst = max(worst, float((ta[name].double() - tb[name].double()).abs().max()))
    return worst

def _opt_diff(a, b):
    worst = 0.0
    for name in ('G', 'D'):
        sa = a['training_state']['optimizers'][name]['state']
        sb = b['training_state']['optimizers'][name]['state']
        assert sa.keys() == sb.keys()
        for k in sa:
            for key in ('exp_avg', 'exp_avg_sq', 'step'):
                worst = max(worst, float((torch.as_tensor(sa[k][key]).double() - torch.as_tensor(sb[k][key]).double()).abs().max()))
    return worst

@pytest.fixture(scope='module')
def data8(tmp_path_factory):
    return shared_data('mnist') or make_image_folder(tmp_path_factory.mktemp('data') / 'dots', num=48, res=8)

# ADA with a low target, so p moves and its restoration matters.
COMMON = ['--cfg=tiny', '--tick=1', '--snap=1', '--workers=1', '--seed=7', '--target=0.05']

def _start(outdir, *args):
    cmd = [sys.executable, os.path.join(REPO, 'train.py'), f'--outdir={outdir}', *args, *COMMON]
    return subprocess.Popen(cmd, cwd=REPO, env=cpu_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

def _finish(proc):
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    return out

def _kill_after_snapshot(proc, outdir, kimg, delay):
    """SIGKILL `proc` `delay` seconds after its network-snapshot-<kimg> appears under `outdir`."""
    deadline = time.time() + 300
    while True:
        latest = snapshot.find_latest_snapshot(outdir)
        if latest is not None and latest.endswith(f'network-snapshot-{kimg:06d}.pkl'):
            break
        assert proc.poll() is None, 'training ended before it could be killed:\n' + proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.1)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()

def test_kill_and_resume(data8, tmp_path):
    # The reference and the victim run side by side (one thread each). The victim is killed a second into
    # tick 1, after its first snapshot (written after step 1, mid-way through an ADA interval), and continued
    # with --resume=latest; by the end ADA has moved p, so its state has to have come back too.
    ref, victim = tmp_path / 'ref', tmp_path / 'victim'
    ref_proc = _start(ref, f'--data={data8}', '--kimg=1')
    victim_proc = _start(victim, f'--data={data8}', '--kimg=1')
    _kill_after_snapshot(victim_proc, victim, kimg=0, delay=1.0)
    victim_run = victim / os.listdir(victim)[0]
    for path in snapshot.list_snapshots(victim_run):
        _load(path) # every snapshot on disk is complete
    assert snapshot.find_latest_snapshot(victim).endswith('network-snapshot-000000.pkl')

    res = run_train(f'--outdir={victim}', f'--data={data8}', '--kimg=1', '--resume=latest', *COMMON)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert 'continuing the run' in res.stdout
    resumed_run = victim / sorted(os.listdir(victim))[-1]
    assert resumed_run.name.endswith('-resumecustom')
    assert [os.path.basename(p) for p in snapshot.list_snapshots(resumed_run)] == ['network-snapshot-000001.pkl']
    _finish(ref_proc)
    ref_run = ref / os.listdir(ref)[0]

    a = _load(ref_run / 'network-snapshot-000001.pkl')
    b = _load(resumed_run / 'network-snapshot-000001.pkl')
    assert a['training_state']['cur_nimg'] == b['training_state']['cur_nimg'] == 1000
    assert a['training_state']['augment_p'] > 0
    assert a['training_state']['augment_p'] == pytest.approx(b['training_state']['augment_p'], abs=1e-9)
    assert _max_diff(a, b) < 1e-4
    assert _opt_diff(a, b) < 1e-4
    # And the comparison can fail: the runs did move away from the state they were resumed from.
    assert _max_diff(a, _load(ref_run / 'network-snapshot-000000.pkl')) > 1e-3

def _wait_for_snapshot(proc, outdir, kimg):
    deadline = time.time() + 300
    while not (snapshot.find_latest_snapshot(outdir) or '').endswith(f'network-snapshot-{kimg:06d}.pkl'):
        assert proc.poll() is None, 'training ended before it could be signalled:\n' + proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.1)

def test_sigterm_saves_and_resumes(data8, tmp_path):
    # SIGTERM a second into tick 1, then keep sending SIGINT and SIGTERM every 50 ms until the process is gone:
    # the first signal ends the run after its step with an interrupt snapshot, the rest land in the step, the write
    # and the shutdown and change nothing. --resume=latest then ends where an uninterrupted run ends.
    ref, victim = tmp_path / 'ref', tmp_path / 'victim'
    ref_proc = _start(ref, f'--data={data8}', '--kimg=1')
    victim_proc = _start(victim, f'--data={data8}', '--kimg=1')
    _wait_for_snapshot(victim_proc, victim, kimg=0)
    time.sleep(1.0)
    victim_proc.send_signal(signal.SIGTERM)
    repeats = 0
    while victim_proc.poll() is None:
        time.sleep(0.05)
        victim_proc.send_signal((signal.SIGINT, signal.SIGTERM)[repeats % 2])
        repeats += 1
    out = victim_proc.communicate()[0]
    assert victim_proc.returncode == 143, out[-3000:]
    assert repeats >= 2 and 'Traceback' not in out, out[-3000:]
    run = victim / os.listdir(victim)[0]
    pkl = snapshot.find_latest_snapshot(victim)
    lines = [line for line in out.splitlines() if line.startswith('Interrupted')]
    assert lines == [f'Interrupted by SIGTERM at kimg {lines[0].split("kimg ")[1].split(" ")[0]} '
        f'(step {lines[0].split("(step ")[1].split(")")[0]}): wrote the interrupt snapshot {pkl}; to continue, run the same '
        f'command with --resume=latest (or --resume={pkl})'], out[-3000:]
    assert 'Stopping for SIGTERM after step' in (run / 'log.txt').read_text()
    state = _load(pkl)['training_state']
    assert state['interrupted'] == 'SIGTERM' and 1 < state['batch_idx'] < 1000 // 8 # mid-run, after the first snapshot
    assert not [f for f in os.listdir(run) if f.endswith('.tmp')]

    res = run_train(f'--outdir={victim}', f'--data={data8}', '--kimg=1', '--resume=latest', *COMMON)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f'continuing the run of {pkl} at kimg {state["cur_nimg"] / 1000:.1f}' in res.stdout
    _finish(ref_proc)
    a = _load(ref / os.listdir(ref)[0] / 'network-snapshot-000001.pkl')
    b = _load(victim / sorted(os.listdir(victim))[-1] / 'network-snapshot-000001.pkl')
    assert a['training_state']['cur_nimg'] == b['training_state']['cur_nimg'] == 1000
    assert a['training_state']['augment_p'] == pytest.approx(b['training_state']['augment_p'], abs=1e-9)
    assert _max_diff(a, b) < 1e-4 and _opt_diff(a, b) < 1e-4
    assert _max_diff(a, _load(pkl)) > 1e-3 # the comparison can fail: the resumed run moved on from the snapshot

def test_ddp_matches_single_process(data8, tmp_path):
    # 2 processes x 4 images vs 1 process x 2 rounds x 4 images: same global batch of 8, same mbstd groups.
    # The 2-process run goes to 1 kimg; at every snapshot the loop itself checks that all ranks hold identical
    # networks and augmentation p (it raises otherwise). The single process is only needed for its first step.
    two, one = tmp_path / 'two', tmp_path / 'one'
    two_proc = _start(two, f'--data={data8}', '--kimg=1', '--gpus=2')
    one_proc = _start(one, f'--data={data8}', '--kimg=1', '--batch-gpu=4')
    _kill_after_snapshot(one_proc, one, kimg=0, delay=0)
    out = _finish(two_proc)
    assert 'Distributing across 2 processes' in out
    two_run, one_run = two / os.listdir(two)[0], one / os.listdir(one)[0]

    # After the first step (all four phases: Gmain, Greg, Dmain, Dreg) the networks agree to float rounding.
    # Later they drift apart: the sums are associated differently (local accumulation vs all-reduce), and Adam
    # turns rounding noise in near-zero gradients into full-size steps, so only the first step is compared.
    # Any real mismatch (data split, latents, per-round noise/augmentation, gradient averaging) shows here,
    # since Adam's first step is +-lr per weight whatever the gradient's size.
    a = _load(two_run / 'network-snapshot-000000.pkl')
    b = _load(one_run / 'network-snapshot-000000.pkl')
    assert a['training_state']['batch_idx'] == b['training_state']['batch_idx'] == 1
    assert a['training_state']['num_gpus'] == 2 and b['training_state']['num_gpus'] == 1
    assert _max_diff(a, b) < 1e-4
    assert _opt_diff(a, b) < 1e-6
    assert len(a['training_state']['ranks']) == 2 # per-rank state gathered from both processes

    a = _load(two_run / 'network-snapshot-000001.pkl')
    assert a['training_state']['cur_nimg'] == 1000 and a['training_state']['augment_p'] > 0

def test_ddp_batch_norm_statistics(tmp_path):
    # DCGAN G and D with batch norm: each process normalises its own half of the batch, so the running statistics
    # would differ between ranks (and the loop's consistency check at the snapshot would stop the run); they are
    # averaged after every step. G_ema takes G's. (Also a small backbone under a StyleGAN config: its Adam betas
    # [0, 0.99] used to reach torch as an int and a float, which torch refuses.)
    data = make_image_folder(tmp_path / 'res28', num=16, res=28)
    out = _finish(_start(tmp_path / 'run', f'--data={data}', '--arch=dcgan', '--d-bn=1', '--cbase=256', '--cmax=32',
        '--batch=8', '--kimg=1', '--gpus=2'))
    assert 'Distributing across 2 processes' in out
    run = tmp_path / 'run' / os.listdir(tmp_path / 'run')[0]
    snap = _load(snapshot.list_snapshots(run)[-1])
    assert snap['training_state']['batch_idx'] >= 1
    for name in ['G', 'D']:
        norms = [m for m in snap[name].modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        assert norms and all(m.num_batches_tracked.item() >= 1 for m in norms), name
        assert any(m.running_mean.abs().max() > 0 for m in norms), name # moved from their initial zeros
    for a, b in zip(snap['G_ema'].buffers(), snap['G'].buffers()):
        assert torch.equal(a, b)

#----------------------------------------------------------------------------
# The loss, against a direct formulation.

class _TinyG(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = 3, 0, 3, 2
        self.mapping = _Map()
        self.synthesis = _Synth()

class _Map(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 3)
    def forward(self, z, c, skip_w_avg_update=False):
        _ = c, skip_w_avg_update
        return self.fc(z).unsqueeze(1).repeat(1, 2, 1)

class _Synth(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 3 * 4 * 4)
    def forward(self, ws):
        return self.fc(ws.flatten(1)).reshape(-1, 3, 4, 4)

class _TinyD(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 4 * 4, 1)
    def forward(self, img, c):
        _ = c
        return self.fc(img.flatten(1))

def test_stylegan2_loss_matches_direct_formulas():
    from stylegan_som.loss import StyleGAN2Loss
    torch.manual_seed(0)
    G, D = _TinyG(), _TinyD()
    loss = StyleGAN2Loss(device=torch.device('cpu'), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
        style_mixing_prob=0, r1_gamma=3.0, pl_weight=2.0, pl_decay=0.5)
    z, c = torch.randn(6, 3), torch.zeros(6, 0)
    real = torch.randn(6, 3, 4, 4)
    sp = torch.nn.functional.softplus

    # Dmain: softplus(D(fake)) + softplus(-D(real)), scaled by gain.
    D.requires_grad_(True)
    loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=2.0)
    got = [p.grad.clone() for p in D.parameters()]
    D.zero_grad(set_to_none=True)
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c))
    ((sp(D(fake, c)).mean() + sp(-D(real, c)).mean()) * 2.0).backward()
    for g, p in zip(got, D.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-6)
    D.zero_grad(set_to_none=True)

    # Dreg: gamma/2 * |grad_x D(x)|^2; for a linear D that is gamma/2 * |w|^2, gradient gamma * w.
    loss.accumulate_gradients('Dreg', real, c, z, c, sync=True, gain=1.0)
    assert torch.allclose(D.fc.weight.grad, 3.0 * D.fc.weight.detach(), atol=1e-6)
    D.requires_grad_(False)

    # Greg: pl_mean follows the moving average of path lengths and comes back through state_dict.
    G.requires_grad_(True)
    assert float(loss.pl_mean) == 0
    loss.accumulate_gradients('Greg', real, c, z, c, sync=True, gain=1.0)
    assert float(loss.pl_mean) > 0 and G.synthesis.fc.weight.grad is not None
    state = loss.state_dict()
    loss2 = StyleGAN2Loss(device=torch.device('cpu'), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D)
    loss2.load_state_dict(state)
    assert float(loss2.pl_mean) == float(loss.pl_mean)
    snapshot.check_plain(state)

    # Gmain: softplus(-D(G(z))).
    G.zero_grad(set_to_none=True)
    loss.accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.0)
    got = [p.grad.clone() for p in G.parameters()]
    G.zero_grad(set_to_none=True)
    sp(-D(G.synthesis(G.mapping(z, c)), c)).mean().backward()
    for g, p in zip(got, G.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-6)
    with pytest.raises(ValueError, match='unknown training phase'):
        loss.accumulate_gradients('Gfoo', real, c, z, c, sync=True, gain=1.0)

#----------------------------------------------------------------------------
# Learning-rate ramp-down.

class RecordingAdam(torch.optim.Adam):
    """Adam that records the learning rate of every step it takes."""
    steps = []
    def step(self, closure=None):
        RecordingAdam.steps.append(self.param_groups[0]['lr'])
        return super().step(closure)

def test_lr_rampdown_factor():
    from stylegan_som.training_loop import lr_rampdown_factor
    assert lr_rampdown_factor(500, 1000, None) == 1.0 and lr_rampdown_factor(999, 1000, 0) == 1.0
    assert lr_rampdown_factor(0, 1000, 0.25) == 1.0 and lr_rampdown_factor(750, 1000, 0.25) == pytest.approx(1.0)
    assert lr_rampdown_factor(875, 1000, 0.25) == pytest.approx(0.5)
    assert lr_rampdown_factor(1000, 1000, 0.25) == pytest.approx(0.0)
    assert lr_rampdown_factor(1200, 1000, 0.25) == pytest.approx(0.0) # resumed past the end

def test_training_loop_applies_lr_rampdown(tmp_path):
    # 2 kimg of --cfg=toy at batch 256 is 8 steps of one G and one D optimizer (R1 every step, no lazy phases);
    # the ramp covers the second half, so the learning rates follow the half-cosine over steps 4-7.
    import train
    from stylegan_som.training_loop import lr_rampdown_factor, training_loop
    _desc, args = train.setup_training_loop_kwargs(cfg='toy', data='ring8', kimg=2, lr_rampdown=0.5,
        device_type='cpu', metrics=[])
    assert args.lr_rampdown == 0.5
    lrates = {}
    for name in ('G', 'D'):
        args[f'{name}_opt_kwargs'].class_name = f'{__name__}.RecordingAdam'
        lrates[name] = args[f'{name}_opt_kwargs'].lr
    args.update(run_dir=str(tmp_path), image_snapshot_ticks=None, network_snapshot_ticks=None)
    RecordingAdam.steps = []
    del args['metrics'] # names for train.py, which turns them into the loop's snapshot_callbacks
    training_loop(**args)
    batch = args.batch_size
    want = [lrates[name] * lr_rampdown_factor(i * batch, 2000, 0.5) for i in range(8) for name in 'GD']
    assert len(RecordingAdam.steps) == len(want)
    assert RecordingAdam.steps == pytest.approx(want)
    assert RecordingAdam.steps[0] == lrates['G'] and RecordingAdam.steps[-1] < 0.2 * lrates['D']

#----------------------------------------------------------------------------
# The layer tables printed at the start leave the networks untouched.

def test_network_summaries_leave_networks_as_they_were(capsys):
    import dnnlib
    from stylegan_som.training_loop import print_network_summaries
    torch.manual_seed(0)
    # A batch-norm G (dcgan) and a spectral-norm D with 4 heads: a training-mode pass would move G's running
    # statistics and D's power-iteration vectors.
    G = dnnlib.util.construct_class_by_name(class_name='stylegan_som.networks.dcgan.Generator', z_dim=8, w_dim=8,
        c_dim=0, img_resolution=16, img_channels=3, synthesis_kwargs=dict(channel_base=64, channel_max=16)).train()
    D = dnnlib.util.construct_class_by_name(class_name='stylegan_som.networks.dcgan.Discriminator', c_dim=0,
        img_resolution=16, img_channels=3, channel_base=64, channel_max=16, num_heads=4).train()
    before = [(k, v.clone()) for net in (G, D) for k, v in net.state_dict().items()]
    print_network_summaries(G, D, batch_size=4, device=torch.device('cpu'))
    after = [(k, v) for net in (G, D) for k, v in net.state_dict().items()]
    assert [k for k, _ in before] == [k for k, _ in after]
    changed = [k for (k, a), (_, b) in zip(before, after) if not torch.equal(a, b)]
    assert changed == [], changed
    assert G.training and D.training
    assert 'Generator' in capsys.readouterr().out
