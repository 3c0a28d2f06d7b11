"""python -m stylegan_som.demo end to end on a tiny budget: two run directories, one side-by-side picture whose
captions carry each run's figures, and one clear line for a bad --outdir."""

import os
import subprocess
import sys

import PIL.Image

from tests.test_train import REPO, cpu_env

def _demo(*args):
    return subprocess.run([sys.executable, '-m', 'stylegan_som.demo', *args], cwd=REPO, env=cpu_env(),
        capture_output=True, text=True, timeout=600)

def test_two_runs_and_one_picture(tmp_path):
    out = tmp_path / 'demo'
    result = _demo(f'--outdir={out}', '--kimg=2', '--seed=1')
    assert result.returncode == 0, result.stderr
    runs = sorted(d for d in os.listdir(out) if os.path.isdir(out / d))
    assert len(runs) == 2 and runs[0].startswith('00000-ring8-toy')
    assert 'som4' not in runs[0] and 'som4' in runs[1]
    lines = [l for l in result.stdout.splitlines() if 'modes,' in l]
    assert len(lines) == 2 and lines[0].lstrip().startswith('one head:') and lines[1].lstrip().startswith('4 SOM heads:')
    picture = PIL.Image.open(out / 'demo-ring8-seed1.png')
    single = PIL.Image.open(sorted((out / runs[0]).glob('fakes0*.png'))[-1])
    assert picture.size == (2 * single.width, single.height + 64)

def test_bad_outdir_is_one_line(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    result = _demo(f'--outdir={blocker}/sub', '--kimg=1')
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert '--outdir' in result.stderr and len(result.stderr.strip().splitlines()) == 1
