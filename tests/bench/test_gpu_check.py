"""bench/gpu_check.py in the mode CI runs (--device=cpu --quick): exit status, the JSON's structure, every parity
entry within its tolerance, the printed sections; and the one-line errors for bad flags."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.cli_errors import one_error_line

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, 'bench', 'gpu_check.py')
SECTIONS = ['1. Custom ops', '2. Training step', '3. End to end', 'Targets']

def _env(tmp_path):
    # Own dataset cache (train.py --dry-run draws discs8 into it); nothing may be downloaded.
    env = dict(os.environ, DNNLIB_CACHE_DIR=str(tmp_path / 'cache'), CUDA_VISIBLE_DEVICES='',
        HTTPS_PROXY='http://127.0.0.1:9', HTTP_PROXY='http://127.0.0.1:9', https_proxy='http://127.0.0.1:9', http_proxy='http://127.0.0.1:9')
    env.pop('PYTHONPATH', None) # the script finds the repository itself
    return env

@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('gpu_check')
    res = subprocess.run([sys.executable, SCRIPT, '--device=cpu', '--quick', '--out=tmp.json'], cwd=str(tmp), env=_env(tmp),
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    with open(tmp / 'tmp.json', encoding='utf-8') as f:
        return json.load(f), res.stdout

def test_json_structure(quick):
    rec, _ = quick
    assert set(rec) >= {'meta', 'ops', 'training', 'e2e', 'targets', 'failed_checks', 'seconds'}
    meta = rec['meta']
    assert meta['device'] == 'cpu' and meta['torch'] == torch.__version__ and meta['quick'] is True
    assert meta['date'] and meta['device_name'] and 'cuda' in meta
    assert rec['failed_checks'] == []
    for section in ['ops', 'training', 'e2e']:
        assert 'exception' not in rec[section], rec[section].get('traceback')

def test_ops(quick):
    ops = quick[0]['ops']
    assert set(ops['plugins']) == {'bias_act', 'upfirdn2d'}
    assert all(p['status'] == 'not built' for p in ops['plugins'].values()) # CPU: the reference path only
    for name, fb in ops['fallback'].items(): # the simulated failed build
        assert fb['passed'] and fb['warnings'] == 1 and fb['build_attempts'] == 1 and fb['matches_ref']
        assert name in fb['warning'] and 'falling back' in fb['warning']
    assert ops['tolerances'] == {'float32': 1e-5, 'float16': 1e-2}
    entries = ops['parity']
    assert {e['op'] for e in entries} == {'bias_act', 'upfirdn2d', 'conv2d_gradfix', 'no_weight_gradients', 'grid_sample_gradfix'}
    for e in entries:
        assert e['errors'] and e['tol'] == ops['tolerances'][e['dtype']], e
        assert all(v is not None and v <= e['tol'] for v in e['errors'].values()), e
        assert e['max_err'] <= e['tol'] and e['passed'], e
    # Forward, first- and second-order gradients are all compared.
    ba = [e for e in entries if e['op'] == 'bias_act' and 'bias=True' in e['case']]
    assert ba and set(ba[0]['errors']) == {'y', 'dx', 'db', 'ddx', 'ddb', 'ddy'}
    assert {'y', 'dx', 'ddx', 'ddy'} <= set(next(e for e in entries if e['op'] == 'upfirdn2d')['errors'])
    assert len({e['case'].split()[0] for e in entries if e['op'] == 'bias_act'}) == 9 # every activation
    nwg = next(e for e in entries if e['op'] == 'no_weight_gradients')
    assert nwg['weight_grad_is_none'] and nwg['flag_restored']
    assert all(r['passed'] for r in ops['summary'])

def test_training(quick):
    tr = quick[0]['training']
    assert tr['config']['cfg'] == 'tiny' and tr['config']['batch'] == 4
    runs = {r['label']: r for r in tr['runs']}
    assert set(runs) == {'ours som fp32 K=1', 'ours som fp32 K=4'}
    for r in runs.values():
        assert r['error'] is None and r['finite'] is True
        assert r['img_per_s'] > 0 and len(r['times_s']) == tr['config']['steps']
    assert runs['ours som fp32 K=4']['heads'] == 4 and tr['upstream_comparison'] is None

def test_e2e_and_targets(quick):
    rec, _ = quick
    e2e = rec['e2e']
    assert 'skipped' in e2e # --quick: no real runs, the command lines are checked with --dry-run
    assert e2e['dry_run_python']['passed'] and e2e['dry_run_torchrun']['passed']
    assert 'torch.distributed.run' in e2e['dry_run_torchrun']['cmd']
    targets = rec['targets']
    assert len(targets) == 3 and all(t['status'] in ('pass', 'fail', 'n/a') for t in targets)
    assert all(t['status'] == 'n/a' for t in targets) # nothing of the targets is measurable on a CPU

def test_table_names_every_section(quick):
    stdout = quick[1]
    for title in SECTIONS:
        assert f'== {title}' in stdout, title
    for word in ['bias_act', 'upfirdn2d', 'conv2d_gradfix', 'grid_sample_gradfix', 'ours som fp32 K=4', 'dry_run_torchrun', 'N/A']:
        assert word in stdout, word

@pytest.mark.parametrize('flags,mentions', [
    (['--device=cpu'], ['--device=cpu needs --quick']),
    (['--device=cpu', '--quick', '--upstream=/no/such/dir'], ['--upstream=/no/such/dir', 'training/networks.py']),
    (['--device=tpu'], ['--device']),
])
def test_bad_flags(tmp_path, flags, mentions):
    res = subprocess.run([sys.executable, SCRIPT] + flags, cwd=str(tmp_path), env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    one_error_line(res.stdout + res.stderr, mentions)
    assert not os.listdir(tmp_path) # nothing written

@pytest.mark.skipif(torch.cuda.is_available(), reason='CUDA is available here')
def test_cuda_without_cuda(tmp_path):
    res = subprocess.run([sys.executable, SCRIPT], cwd=str(tmp_path), env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    one_error_line(res.stdout + res.stderr, ['--device=cuda', 'CUDA is not available', '--device=cpu --quick'])
