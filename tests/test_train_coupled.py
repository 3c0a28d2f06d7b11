"""train.py --data2 end to end on CPU (hard and soft coupling, a few steps on random 'digits' in MNIST's files, no
download), and generate.py drawing each seed as a pair A | B."""

import json
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from tests.test_train import REPO, _write_idx, cpu_env, run_train

@pytest.fixture(scope='module')
def idx_digits(tmp_path_factory):
    root = tmp_path_factory.mktemp('digits')
    rng = np.random.default_rng(0)
    _write_idx(os.path.join(root, 'train-images-idx3-ubyte.gz'), rng.integers(0, 256, [64, 28, 28]))
    _write_idx(os.path.join(root, 'train-labels-idx1-ubyte.gz'), rng.integers(0, 10, [64]))
    return str(root)

@pytest.mark.parametrize('couple', [['--couple=hard'], ['--couple=soft', '--couple-feature=1']], ids=['hard', 'soft'])
def test_coupled_run_and_generate(idx_digits, tmp_path, couple):
    outdir = tmp_path / 'runs'
    result = run_train(f'--outdir={outdir}', f'--data={idx_digits}', '--data2=mnist-negative', '--cfg=cogan',
        *couple, '--kimg=0.064', '--snap=1', '--metrics=none', '--cbase=256', '--cmax=16')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run,) = os.listdir(outdir)
    run_dir = outdir / run
    with open(run_dir / 'training_options.json') as f:
        opts = json.load(f)
    assert opts['training_set_kwargs']['transform2'] == 'negative'
    assert opts['training_set_kwargs']['path2'] == idx_digits # --data's own digits, negated
    assert opts['G_kwargs']['couple'] == couple[0].split('=')[1]
    if len(couple) > 1:
        assert opts['loss_kwargs']['couple_feature'] == 1
        stats = [json.loads(line) for line in open(run_dir / 'stats.jsonl')]
        assert any('Loss/G/couple_feature' in s for s in stats)
    with PIL.Image.open(run_dir / 'reals.png') as img, PIL.Image.open(run_dir / 'fakes_init.png') as fakes:
        assert img.mode == fakes.mode == 'L' and img.size[0] == 2 * img.size[1] # pairs side by side

    out = tmp_path / 'gen'
    pkl = sorted(p for p in os.listdir(run_dir) if p.endswith('.pkl'))[-1]
    result = subprocess.run([sys.executable, os.path.join(REPO, 'generate.py'), f'--network={run_dir / pkl}',
        '--seeds=0-1', f'--outdir={out}'], cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with PIL.Image.open(out / 'seed0000.png') as img:
        assert img.mode == 'L' and img.size == (64, 32) # A | B
