"""New-user frictions of the command lines, end to end: --outdir checked before anything is printed, with one
error line on stderr (train.py, generate.py, calc_metrics.py); a quiet console with the full options only in
training_options.json (or with --verbose / --dry-run); fractional --kimg; a GPU config on a CPU says so;
generate.py on a 2-D toy snapshot writes points.npy and a scatter plot."""

import json
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from tests.cli_errors import one_error_line
from tests.test_train import cpu_env, make_image_folder, run_train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def run_script(script, *args):
    return subprocess.run([sys.executable, os.path.join(REPO, script), *args], cwd=REPO, env=cpu_env(),
        capture_output=True, text=True, timeout=600)

@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
    """(run_dir, stdout) of a 0.256-kimg toy run: one step of 256 points."""
    outdir = tmp_path_factory.mktemp('toy') / 'runs'
    res = run_train(f'--outdir={outdir}', '--data=ring8', '--cfg=toy', '--kimg=0.256', '--snap=1')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    runs = os.listdir(outdir)
    assert runs == ['00000-ring8-toy-kimg0.256'], runs
    return outdir / runs[0], res.stdout

def test_fractional_kimg(toy_run):
    run_dir, stdout = toy_run
    options = json.load(open(run_dir / 'training_options.json'))
    assert options['total_kimg'] == 0.256
    ticks = [line for line in stdout.splitlines() if line.startswith('tick ')]
    assert ticks[-1].split()[3] == '0.3', ticks # kimg 0.256, printed to one decimal

def test_quiet_console(toy_run):
    run_dir, stdout = toy_run
    head = stdout.split('Loading training set...')[0].strip().splitlines()
    assert len(head) == 4 and head[0] == f'Output directory:   {run_dir}', head
    assert '"G_kwargs"' not in stdout and 'G_kwargs' in open(run_dir / 'training_options.json').read()

def test_verbose_and_dry_run_print_the_options(tmp_path):
    for flag in ('--verbose', '--dry-run'):
        res = run_train(f'--outdir={tmp_path / "runs"}', '--data=ring8', '--cfg=toy', flag, '--dry-run')
        assert res.returncode == 0, res.stderr
        assert '"G_kwargs"' in res.stdout and 'Dry run; exiting.' in res.stdout

def test_generate_on_a_toy_snapshot(toy_run, tmp_path):
    run_dir, _ = toy_run
    pkl = sorted(run_dir.glob('network-snapshot-*.pkl'))[-1]
    out = tmp_path / 'points'
    res = run_script('generate.py', f'--network={pkl}', '--seeds=0-99', f'--outdir={out}')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert sorted(os.listdir(out)) == ['points.npy', 'points.png']
    points = np.load(out / 'points.npy')
    assert points.shape == (100, 2) and points.dtype == np.float32 and np.isfinite(points).all()
    with PIL.Image.open(out / 'points.png') as img:
        pixels = np.asarray(img.convert('RGB'))
    assert pixels.shape == (512, 512, 3)
    assert ((pixels[:, :, 0] > 200) & (pixels[:, :, 1] < 80)).any() # the red rings of ring8's mode centres
    assert 'ring8 mode centres' in res.stdout

@pytest.mark.parametrize('case', ['file', 'under-file', 'not-writable'])
def test_outdir_checked_first(tmp_path, case):
    (tmp_path / 'notes').write_text('x')
    outdir, problem = {'file': (tmp_path / 'notes', 'is a file, not a folder'),
        'under-file': (tmp_path / 'notes' / 'runs', 'cannot be created'),
        'not-writable': ('/proc/1/runs', '/proc/1 is not writable')}[case]
    res = run_train(f'--outdir={outdir}', '--data=ring8', '--cfg=toy')
    assert res.returncode == 2 and res.stdout == '', res.stdout
    assert problem in one_error_line(res.stderr, ['Error: --outdir: '])
    res = run_script('generate.py', '--network=/no/such.pkl', '--seeds=0', f'--outdir={outdir}')
    assert res.returncode == 2 and res.stdout == '', res.stdout # before the network is even looked at
    assert problem in one_error_line(res.stderr, ['--outdir'])

def test_calc_metrics_results_folder_checked(tmp_path, monkeypatch):
    import calc_metrics # pylint: disable=import-outside-toplevel
    monkeypatch.setattr(calc_metrics, 'outdir_problem', lambda path: f"{path} is not writable") # as root, every folder is writable
    (tmp_path / 'x.pkl').write_bytes(b'not a pickle')
    from click.testing import CliRunner # pylint: disable=import-outside-toplevel
    result = CliRunner().invoke(calc_metrics.calc_metrics, [f'--network={tmp_path / "x.pkl"}',
        '--metrics=modes_ring8'])
    assert result.output.splitlines()[0] == f'Warning: the results go next to the pickle, but {tmp_path} is not writable: they are only printed'
    assert 'Loading network' in result.output.splitlines()[1] # the warning comes before anything else

@pytest.mark.parametrize('cfg,warned', [('cifar', True), ('auto', True), ('cpu', False), ('tiny', False)])
def test_gpu_config_on_a_cpu(tmp_path, cfg, warned):
    data = make_image_folder(tmp_path / 'shapes', num=4, res=32)
    res = run_train(f'--outdir={tmp_path / "runs"}', f'--data={data}', f'--cfg={cfg}', '--metrics=none', '--dry-run')
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.startswith('Warning:')]
    if warned:
        assert len(lines) == 1 and f'--cfg={cfg} is a GPU config' in lines[0] and '--cfg=cpu' in lines[0], res.stderr
    else:
        assert lines == [], res.stderr

def test_bad_kimg(tmp_path):
    res = run_train(f'--outdir={tmp_path / "runs"}', '--data=ring8', '--cfg=toy', '--kimg=0')
    assert res.returncode == 2
    one_error_line(res.stderr, ['Error: --kimg must be positive, got 0'])
