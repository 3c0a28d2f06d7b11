"""Mode-collapse study of the vanilla GAN (the GANs-Implementations study): the original minimax or the
non-saturating loss with no R1, an MLP on ring8 and the DCGAN on MNIST, each without and with SOM heads
(--som-d=4). Writes into --outdir, per dataset, a sample sheet over training (rows: K=1 and K=4, columns: the
snapshots) and a coverage curve (modes covered and the KL to uniform coverage at every snapshot), plus a JSON
of the numbers.

    python bench/collapse_study.py --outdir=bench/figures                      # both datasets, K = 1 and 4
    python bench/collapse_study.py --outdir=/tmp/collapse --data=ring8 --loss=minimax
    python bench/collapse_study.py --outdir=/tmp/collapse --quick              # a minute or two: CI

Every run is `train.py --cfg=<toy for ring8, stacked-mnist for mnist> --data=<dataset> --loss=<loss>
--lr-rampdown=0 [--som-d=4] --kimg=N --tick=T --snap=1 --metrics=<modes_ring8 | modes_mnist>` in a child
process: the loss's defaults drop R1 (ns and minimax have none), --lr-rampdown=0 keeps the learning rates
constant as a plain GAN's, and the training loop scores G_ema with the dataset's mode metric at every snapshot
(metrics/mode_coverage.py: ring8 modes of 8 and reverse KL; MNIST digits drawn of 10 and the KL of the digit
histogram to uniform). Steps are optimizer steps, the GANs-Implementations figures' unit (batch 256 on ring8, 32
on MNIST in these configs)."""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import figures_lib # pylint: disable=wrong-import-position

# dataset: config, metric, modes, batch, (kimg, kimg per snapshot) for a full and a --quick run.
DATASETS = {
    'ring8': dict(cfg='toy', metric='modes_ring8', modes=8, batch=256, full=(1280, 256), quick=(4, 2)),
    'mnist': dict(cfg='stacked-mnist', metric='modes_mnist', modes=10, batch=32, full=(100, 20), quick=(1, 1)),
}
KS = (1, 4)

#----------------------------------------------------------------------------

def fail(message):
    print(f'collapse_study.py: error: {message}', file=sys.stderr)
    raise SystemExit(2)

def train_command(data, k, loss, kimg, tick, seed, outdir):
    spec = DATASETS[data]
    cmd = [sys.executable, os.path.join(REPO, 'train.py'), f'--outdir={outdir}', f'--cfg={spec["cfg"]}',
        f'--data={data}', f'--loss={loss}', '--lr-rampdown=0', f'--kimg={kimg}', f'--tick={tick}', '--snap=1',
        f'--metrics={spec["metric"]}', f'--seed={seed}', '--workers=1']
    if k > 1:
        cmd.append(f'--som-d={k}')
    return cmd

def run_one(data, k, loss, kimg, tick, seed, outdir):
    """Train one run; returns its run directory and the child's CPU seconds."""
    os.makedirs(outdir, exist_ok=True)
    before = os.times()
    start = time.time()
    res = subprocess.run(train_command(data, k, loss, kimg, tick, seed, outdir), cwd=REPO, capture_output=True,
        text=True, env=dict(os.environ, CUDA_VISIBLE_DEVICES=os.environ.get('CUDA_VISIBLE_DEVICES', '')))
    after = os.times()
    if res.returncode != 0:
        fail(f'train.py failed for {data} K={k} (exit {res.returncode}):\n{(res.stdout + res.stderr)[-2000:]}')
    runs = sorted(d for d in os.listdir(outdir) if os.path.isdir(os.path.join(outdir, d)))
    cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return os.path.join(outdir, runs[-1]), cpu, time.time() - start

def read_metrics(run_dir, metric):
    """[(kimg, results dict)] from the run's metric-<metric>.jsonl, in snapshot order."""
    rows = []
    with open(os.path.join(run_dir, f'metric-{metric}.jsonl')) as f:
        for line in f:
            entry = json.loads(line)
            kimg = int(os.path.basename(entry['snapshot_pkl']).split('-')[-1].split('.')[0])
            rows.append((kimg, entry['results']))
    return rows

def _load_G(pkl):
    from stylegan_som import legacy
    with open(pkl, 'rb') as f:
        return legacy.load_network_pkl(f)['G_ema'].eval()

def draw_samples(pkl, data, seed=0):
    """RGB array of one snapshot's samples: ring8 a scatter over the mode centres, MNIST an 8x8 sheet."""
    import torch
    from stylegan_som import pictures
    G = _load_G(pkl)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if data == 'ring8':
            from stylegan_som.data.points import TOYS
            toy = TOYS['ring8']
            z = torch.randn([2500, G.z_dim], generator=gen)
            points = G(z, torch.zeros([2500, G.c_dim])).reshape(2500, -1).numpy()
            return pictures.draw_scatter(points, centres=toy.means, std=toy.std,
                extent=pictures.scatter_extent(toy.means), size=192)
        z = torch.randn([64, G.z_dim], generator=gen)
        img = G(z, torch.zeros([64, G.c_dim]), noise_mode='const')
    img = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy() # [64, 1, 32, 32]
    H, W = img.shape[2:]
    grid = img.reshape(8, 8, H, W).transpose(0, 2, 1, 3).reshape(8 * H, 8 * W)
    return np.repeat(grid[:, :, None], 3, axis=2)

def curves(results, data):
    """The coverage curve's panels: modes covered and the KL (reverse KL for ring8) against steps."""
    spec = DATASETS[data]
    metric = spec['metric']
    kl_key = f'{metric}_rkl' if data == 'ring8' else f'{metric}_kl'
    modes, kls = {}, {}
    for k, rows in results.items():
        steps = [kimg * 1000 // spec['batch'] for kimg, _ in rows]
        modes[f'K={k}'] = (steps, [r[metric] for _, r in rows])
        kls[f'K={k}'] = (steps, [r[kl_key] for _, r in rows])
    a = figures_lib.line_chart(modes, f'{data}: modes covered (of {spec["modes"]})', 'steps', '',
        ylim=(0, spec['modes']))
    b = figures_lib.line_chart(kls, f'{data}: {"reverse KL" if data == "ring8" else "KL of digits to uniform"}',
        'steps', '')
    out = figures_lib.PIL.Image.new('RGB', (a.width + b.width, max(a.height, b.height)), 'white')
    out.paste(a, (0, 0))
    out.paste(b, (a.width, 0))
    return out

#----------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--outdir', required=True, help='where the PNGs, the JSON and the runs go')
    parser.add_argument('--data', default='ring8,mnist', help='comma-separated: ring8, mnist [default: both]')
    parser.add_argument('--loss', default='ns', help='ns (non-saturating) or minimax [default: ns]')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--quick', action='store_true', help='a few kimg per run: checks the pipeline, not collapse')
    parser.add_argument('--kimg', type=int, help='length of every run instead of the dataset\'s')
    args = parser.parse_args(argv)
    datasets = [d.strip() for d in args.data.split(',') if d.strip()]
    for d in datasets:
        if d not in DATASETS:
            fail(f'--data: unknown dataset {d!r}; choose from {", ".join(DATASETS)}')
    if args.loss not in ('ns', 'minimax'):
        fail(f'--loss: the vanilla GAN is ns or minimax, got {args.loss!r}')
    if args.kimg is not None and args.kimg < 1:
        fail(f'--kimg must be at least 1, got {args.kimg}')
    os.makedirs(args.outdir, exist_ok=True)

    summary = {}
    for data in datasets:
        spec = DATASETS[data]
        kimg, tick = spec['quick' if args.quick else 'full']
        if args.kimg is not None:
            kimg, tick = args.kimg, max(args.kimg // 5, 1)
        results, sheets, snapshots = {}, [], None
        for k in KS:
            run_dir, cpu, wall = run_one(data, k, args.loss, kimg, tick, args.seed,
                os.path.join(args.outdir, 'runs', f'{data}-{args.loss}-k{k}'))
            rows = read_metrics(run_dir, spec['metric'])
            results[k] = rows
            snapshots = [kimg_ for kimg_, _ in rows if kimg_ > 0] or [rows[-1][0]]
            sheets.append([draw_samples(os.path.join(run_dir, f'network-snapshot-{s:06d}.pkl'), data, args.seed)
                for s in snapshots])
            summary[f'{data} K={k}'] = dict(run_dir=os.path.relpath(run_dir, args.outdir), cpu_sec=round(cpu, 1),
                wall_sec=round(wall, 1), snapshots=[dict(kimg=s, steps=s * 1000 // spec['batch'], **r) for s, r in rows])
            last = rows[-1][1]
            print(f'{data} K={k}: {" ".join(f"{key} {value:.3f}" for key, value in last.items())} '
                f'at {rows[-1][0]} kimg; {cpu:.0f} CPU s, {wall:.0f} s wall')
        labels = [f'{s * 1000 // spec["batch"]} steps' for s in snapshots]
        title = f'{data}, {args.loss} loss, no R1: rows K=1 and --som-d=4'
        figures_lib.sheet(sheets, [f'K={k}' for k in KS], labels, title=title).save(
            os.path.join(args.outdir, f'collapse-{data}-{args.loss}-samples.png'))
        curves(results, data).save(os.path.join(args.outdir, f'collapse-{data}-{args.loss}-coverage.png'))
        with open(os.path.join(args.outdir, f'collapse-{args.loss}.json'), 'w') as f: # after each dataset
            json.dump(summary, f, indent=1)

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
