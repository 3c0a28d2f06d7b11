"""End-to-end tests of calc_metrics.py in child processes, with a stand-in Inception detector and no network."""

import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

import calc_metrics
from metrics import metric_utils
from tests import malicious
from tests.cli_errors import one_error_line
from tests.metrics import standins

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
URL = metric_utils.INCEPTION_URL

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    """A tiny unconditional 8x8 snapshot (recording its dataset like upstream pickles do), the dataset, a detector."""
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    root = tmp_path_factory.mktemp('calc')
    data = str(root / 'data')
    standins.make_image_folder(data, num=16, resolution=8)
    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs=dict(num_layers=1),
        synthesis_kwargs=dict(channel_base=64, channel_max=8)).eval().requires_grad_(False)
    net = dict(G=G, D=None, G_ema=G, augment_pipe=None, training_set_kwargs=dict(
        class_name='training.dataset.ImageFolderDataset', path=data, use_labels=False, max_size=16, xflip=False, resolution=8))
    pkl = str(root / 'x.pkl')
    with open(pkl, 'wb') as f:
        pickle.dump(net, f)
    detector = standins.save_torchscript(standins.StandInInception(), str(root / 'standin.pt'))
    return dict(root=root, data=data, pkl=pkl, net=net, detector=detector)

def _run(args, cwd, cache, **env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith('SGSOM_') and k.lower() not in ('no_proxy',)}
    env.update(PYTHONPATH=REPO, DNNLIB_CACHE_DIR=str(cache), HTTPS_PROXY='http://127.0.0.1:9', HTTP_PROXY='http://127.0.0.1:9',
        https_proxy='http://127.0.0.1:9', http_proxy='http://127.0.0.1:9', **env_extra) # any download fails at once
    return subprocess.run([sys.executable, os.path.join(REPO, 'calc_metrics.py'), *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300)

def _check_line(line, metric, keys, snapshot_pkl):
    rec = json.loads(line)
    assert set(rec) >= {'results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp'}
    assert rec['metric'] == metric and set(rec['results']) == set(keys) and rec['num_gpus'] == 1
    assert rec['snapshot_pkl'] == snapshot_pkl and rec['max_items'] == 16
    return rec

#----------------------------------------------------------------------------

def test_fid_end_to_end(setup, tmp_path):
    res = _run(['--metrics=fid50k_full', f'--network={setup["pkl"]}', f'--data={setup["data"]}', '--max-items=16',
        f'--inception={setup["detector"]}'], cwd=str(tmp_path), cache=tmp_path / 'cache')
    assert res.returncode == 0, res.stdout + res.stderr
    jsonl = os.path.join(os.path.dirname(setup['pkl']), 'metric-fid50k_full.jsonl')
    with open(jsonl) as f:
        lines = f.read().splitlines()
    rec = _check_line(lines[-1], 'fid50k_full', ['fid50k_full'], 'x.pkl')
    assert rec['results']['fid50k_full'] > 0
    assert lines[-1] in res.stdout # printed too
    assert os.listdir(tmp_path / 'cache' / 'gan-metrics') # dataset statistics were cached

def test_safetensors_network(setup, tmp_path):
    # The exported weights file is evaluated like the pickle, with the dataset it records. (FIDs are not compared:
    # the metric draws its latents unseeded, as upstream's; test_weights.py compares the images themselves.)
    from stylegan_som import legacy, weights # pylint: disable=import-outside-toplevel
    st = str(tmp_path / 'x.safetensors')
    weights.save(legacy.load_network_pkl(setup['pkl']), st)
    fids = []
    for net in (setup['pkl'], st):
        res = _run(['--metrics=fid50k_full', f'--network={net}', '--max-items=16', f'--inception={setup["detector"]}'],
            cwd=str(tmp_path), cache=tmp_path / 'cache')
        assert res.returncode == 0, res.stdout + res.stderr
        with open(os.path.join(os.path.dirname(net), 'metric-fid50k_full.jsonl')) as f:
            rec = _check_line(f.read().splitlines()[-1], 'fid50k_full', ['fid50k_full'], os.path.basename(net))
        fids.append(rec['results']['fid50k_full'])
    assert min(fids) > 0

def test_newest_snapshot_and_recorded_dataset(setup, tmp_path):
    runs = tmp_path / 'training-runs'
    for run, kimgs in [('00000-old', [0, 40]), ('00001-mid', [0, 4, 12]), ('00002-new', [])]:
        (runs / run).mkdir(parents=True)
        for kimg in kimgs:
            with open(runs / run / f'network-snapshot-{kimg:06d}.pkl', 'wb') as f:
                pickle.dump(setup['net'], f)
        (runs / run / 'training_options.json').write_text('{}')
    res = _run(['--metrics=fid50k_full,kid50k_full', '--verbose=false'], cwd=str(tmp_path), cache=tmp_path / 'cache',
        SGSOM_INCEPTION=setup['detector'], SGSOM_METRICS_MAX_ITEMS='16')
    assert res.returncode == 0, res.stdout + res.stderr
    chosen = os.path.join('training-runs', '00001-mid', 'network-snapshot-000012.pkl')
    assert chosen in res.stdout and '00002-new' in res.stdout # says which, and why not the newest run
    for metric in ('fid50k_full', 'kid50k_full'):
        with open(runs / '00001-mid' / f'metric-{metric}.jsonl') as f:
            _check_line(f.read().splitlines()[-1], metric, [metric], 'network-snapshot-000012.pkl')

def test_refuses_without_detector(setup, tmp_path):
    res = _run(['--metrics=fid50k_full', f'--network={setup["pkl"]}', f'--data={setup["data"]}'], cwd=str(tmp_path),
        cache=tmp_path / 'cache')
    out = res.stdout + res.stderr
    assert res.returncode != 0
    errors = [line for line in out.splitlines() if line.startswith('Error:')]
    assert len(errors) == 1 and 'Traceback' not in out
    error = errors[0]
    for part in (URL, '--inception=PATH', metric_utils.INCEPTION_ENV, str(tmp_path / 'cache' / 'downloads')):
        assert part in error

#----------------------------------------------------------------------------
# In-process pieces.

def test_find_latest_snapshot(tmp_path):
    with pytest.raises(IOError, match='training-runs'):
        calc_metrics.find_latest_snapshot(str(tmp_path / 'training-runs'))
    runs = tmp_path / 'training-runs'
    (runs / '00003-a').mkdir(parents=True)
    (runs / 'notes').mkdir()
    with pytest.raises(IOError, match='no network-snapshot'):
        calc_metrics.find_latest_snapshot(str(runs))
    (runs / '00002-b').mkdir()
    for name in ('network-snapshot-000100.pkl', 'network-snapshot-000020.pkl', 'network-snapshot-final.pkl'):
        (runs / '00002-b' / name).write_bytes(b'')
    (runs / '00010-c').mkdir()
    (runs / '00010-c' / 'network-snapshot-000000.pkl').write_bytes(b'')
    path, note = calc_metrics.find_latest_snapshot(str(runs))
    assert path == str(runs / '00010-c' / 'network-snapshot-000000.pkl') and note == ''
    (runs / '00010-c' / 'network-snapshot-000000.pkl').unlink()
    path, note = calc_metrics.find_latest_snapshot(str(runs))
    assert path == str(runs / '00002-b' / 'network-snapshot-000100.pkl') and '00010-c' in note and '00003-a' in note

def test_unknown_metric_lists_valid_ones():
    from click.testing import CliRunner
    res = CliRunner().invoke(calc_metrics.calc_metrics, ['--metrics=fid50k_full,nope', '--network=x.pkl'])
    assert res.exit_code == 2
    assert 'modes_ring8' in res.output and 'ppl_wend' in res.output

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Bad input, table-driven: one 'Error:' line naming the flag, file or value, click's exit code (2: a bad option
# value, 1: a file that cannot be used), no traceback, and no result file written.

CALC_BAD = [ # (case, arguments, exit code, what the error line must mention)
    ('missing-pickle',    ['--metrics=fid50k_full', '--network={root}/missing.pkl'],        2, ['--network', 'missing.pkl']),
    ('corrupt-pickle',    ['--metrics=fid50k_full', '--network={root}/corrupt.pkl'],        1, ['corrupt.pkl']),
    ('not-a-network',     ['--metrics=fid50k_full', '--network={root}/nonet.pkl'],          1, ['nonet.pkl', "'G'"]),
    ('unknown-metric',    ['--metrics=fid50k_full,fid_nope', '--network={pkl}'],            2, ['--metrics', 'fid_nope', 'fid50k_full, ']),
    ('bad-gpus',          ['--metrics=fid50k_full', '--network={pkl}', '--gpus=0'],         2, ['--gpus']),
    ('missing-dataset',   ['--metrics=fid50k_full', '--network={pkl}', '--data={root}/nodata'], 1, ['--data', 'nodata']),
    ('no-network-no-run', ['--metrics=fid50k_full'],                                        1, ['--network', 'training-runs']),
    ('reduce-pickle',     ['--metrics=fid50k_full', '--network={root}/reduce.pkl'],         1, ['reduce.pkl', 'Refusing', '.system', '--trust-pickle']),
    ('source-pickle',     ['--metrics=fid50k_full', '--network={root}/source.pkl'],         1, ['source.pkl', 'Refusing', "'Generator'", '--trust-pickle']),
]

@pytest.mark.parametrize('case,args,code,mentions', CALC_BAD, ids=[c[0] for c in CALC_BAD])
def test_bad_input_table(setup, tmp_path, monkeypatch, case, args, code, mentions):
    from click.testing import CliRunner
    root = tmp_path / 'files'
    root.mkdir()
    (root / 'corrupt.pkl').write_bytes(b'\x80\x04\x95 not really a pickle')
    with open(root / 'nonet.pkl', 'wb') as f:
        pickle.dump(dict(G=None, D=None, G_ema=None), f)
    malicious.write_network_pickles(str(root), root / 'marker') # they would write root/marker
    monkeypatch.chdir(tmp_path) # no ./training-runs here
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path / 'cache'))
    before = sorted(os.listdir(os.path.dirname(setup['pkl'])))
    names = dict(root=str(root), pkl=setup['pkl'])
    result = CliRunner().invoke(calc_metrics.calc_metrics, [a.format(**names) for a in args])
    assert result.exit_code == code, f'{case}: {result.exit_code} {result.output}'
    assert isinstance(result.exception, SystemExit), f'uncaught {result.exception!r}'
    one_error_line(result.output, mentions, **names)
    assert sorted(os.listdir(os.path.dirname(setup['pkl']))) == before # no metric-*.jsonl written
    assert sorted(os.listdir(root)) == ['corrupt.pkl', 'nonet.pkl', 'reduce.pkl', 'source.pkl'] # no marker either

#----------------------------------------------------------------------------

def test_newest_snapshot_is_checked_too(setup, tmp_path):
    # With no --network, the newest snapshot under ./training-runs is taken unasked: the same refusal, in a real
    # process; --trust-pickle lets it through (here the "network" then fails to be one).
    run = tmp_path / 'training-runs' / '00003-evil'
    run.mkdir(parents=True)
    paths = malicious.write_network_pickles(str(run), tmp_path / 'marker')
    os.rename(paths['source'], run / 'network-snapshot-000100.pkl')
    res = _run(['--metrics=fid50k_full', '--max-items=16', f'--inception={setup["detector"]}', f'--data={setup["data"]}'],
        cwd=str(tmp_path), cache=tmp_path / 'cache')
    assert res.returncode == 1, res.stdout + res.stderr
    one_error_line(res.stdout + res.stderr, ['Refusing to load', 'network-snapshot-000100.pkl', '--trust-pickle'])
    assert not (tmp_path / 'marker').exists() and not list(run.glob('metric-*'))
    res = _run(['--metrics=fid50k_full', '--max-items=16', f'--inception={setup["detector"]}', f'--data={setup["data"]}',
        '--trust-pickle'], cwd=str(tmp_path), cache=tmp_path / 'cache')
    assert (tmp_path / 'marker').exists(), res.stdout + res.stderr # the flag reached the loader

#----------------------------------------------------------------------------
