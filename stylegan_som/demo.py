"""First run: the same GAN with one discriminator head and with SOM heads, side by side, on an embedded 2-D
dataset (no download, CPU, about two minutes).

    python -m stylegan_som.demo --outdir=demo                 # ring8, seed 0, 1000 kimg each
    python -m stylegan_som.demo --outdir=demo --seed=3 --som-d=9

Each run is a plain `train.py --cfg=toy --data=ring8 --kimg=1000 --seed=S [--som-d=K]` in its own run directory
under --outdir (log, stats, snapshots, scatter plots). The demo then puts both final scatter plots into one picture,
`demo-<data>-seed<S>.png`, with each run's modes covered / high-quality share / reverse KL (the modes metric of the
dataset, metrics/mode_coverage.py) written under it, and prints the two lines. The budget is where the
leaderboard in bench/RESULTS.md shows SOM heads ahead beyond noise; at the toy config's full 4000 kimg both runs
cover every mode."""

import glob
import json
import os
import re
import subprocess
import sys

import click
import PIL.Image
import PIL.ImageDraw

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTION = 64 # pixels of text under each plot

#----------------------------------------------------------------------------

def train_one(outdir, data, kimg, seed, som_d):
    """One train.py run; returns its run directory."""
    cmd = [sys.executable, os.path.join(REPO, 'train.py'), f'--outdir={outdir}', '--cfg=toy', f'--data={data}',
        f'--kimg={kimg}', f'--seed={seed}', f'--snap={10**6}', f'--tick={max(kimg // 10, 1)}']
    if som_d > 1:
        cmd.append(f'--som-d={som_d}')
    before = set(glob.glob(os.path.join(outdir, '*')))
    with open(os.devnull, 'w') as quiet:
        subprocess.run(cmd, check=True, stdout=quiet)
    new = sorted(set(glob.glob(os.path.join(outdir, '*'))) - before)
    return new[-1]

def final_metric(run_dir):
    """The last line of the run's metric-modes_*.jsonl: (metric name, results)."""
    (path,) = glob.glob(os.path.join(run_dir, 'metric-modes_*.jsonl'))
    with open(path) as f:
        last = json.loads(f.read().strip().splitlines()[-1])
    return last['metric'], last['results']

def caption(name, metric, results):
    modes, hq, rkl = (results[metric], results[f'{metric}_hq'], results[f'{metric}_rkl'])
    rkl = 'n/a (no sample on a mode)' if rkl != rkl else f'{rkl:.3f}'
    return f'{name}: {modes} modes, {hq:.0%} high quality, reverse KL {rkl}'

def side_by_side(pictures, captions, fname):
    images = [PIL.Image.open(p).convert('RGB') for p in pictures]
    width, height = sum(i.width for i in images), max(i.height for i in images) + CAPTION
    canvas = PIL.Image.new('RGB', (width, height), (255, 255, 255))
    draw = PIL.ImageDraw.Draw(canvas)
    x = 0
    for image, text in zip(images, captions):
        canvas.paste(image, (x, 0))
        name, _, rest = text.partition(': ')
        draw.text((x + 10, image.height + 8), name, fill=(0, 0, 0))
        draw.text((x + 10, image.height + 30), rest, fill=(0, 0, 0))
        x += image.width
    canvas.save(fname)

def last_fakes(run_dir):
    return sorted(glob.glob(os.path.join(run_dir, 'fakes[0-9]*.png')), key=lambda p: int(re.findall(r'\d+', os.path.basename(p))[0]))[-1]

#----------------------------------------------------------------------------

@click.command()
@click.option('--outdir', help='Where the two run directories and the picture go', metavar='DIR', required=True)
@click.option('--data', help='Built-in 2-D dataset', type=click.Choice(['ring8', 'grid25', 'grid25-unequal']), default='ring8', show_default=True)
@click.option('--kimg', help='Training length of each run', type=click.IntRange(min=1), default=1000, show_default=True)
@click.option('--seed', help='Seed of both runs', type=int, default=0, show_default=True)
@click.option('--som-d', help='SOM heads of the second run', type=click.IntRange(min=2), default=4, show_default=True)
def main(outdir, data, kimg, seed, som_d):
    """Train one head and SOM heads on the same data, seed and budget; draw both."""
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as err:
        raise click.ClickException(f'--outdir={outdir}: cannot create it ({err.strerror})')
    runs = []
    for name, k in [('one head', 1), (f'{som_d} SOM heads', som_d)]:
        print(f'Training with {name} ({data}, {kimg} kimg, seed {seed})...', flush=True)
        try:
            run_dir = train_one(outdir, data, kimg, seed, k)
        except subprocess.CalledProcessError as err:
            raise click.ClickException(f'the {name} run failed (train.py exit code {err.returncode}); its log is under {outdir}')
        metric, results = final_metric(run_dir)
        runs.append((run_dir, caption(name, metric, results)))
        print(f'  {runs[-1][1]}   ({run_dir})', flush=True)
    fname = os.path.join(outdir, f'demo-{data}-seed{seed}.png')
    side_by_side([last_fakes(d) for d, _ in runs], [c for _, c in runs], fname)
    print(f'Side by side: {fname}')

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter
