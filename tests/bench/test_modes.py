"""bench/modes.py: argument parsing, the summary table (mean and standard error by hand), the RESULTS.md
section, and one tiny real run through train.py's settings and the metric."""

import importlib
import json
import os
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

@pytest.fixture(scope='module')
def modes():
    # Importable by name, as --procs' spawned processes need (they find its functions by module name and sys.path).
    sys.path.insert(0, os.path.join(REPO, 'bench'))
    return importlib.import_module('modes')

def test_parsing(modes):
    assert modes.parse_int_list('0-3,7, 2') == [0, 1, 2, 3, 7]
    assert modes.parse_set(['loss_kwargs.r1_gamma=0.1', 'a.b="x"', 'c=word']) == [
        (['loss_kwargs', 'r1_gamma'], 0.1), (['a', 'b'], 'x'), (['c'], 'word')]
    args = {'loss_kwargs': {'r1_gamma': 1}}
    modes.apply_set(args, [(['loss_kwargs', 'r1_gamma'], 0.5), (['new', 'key'], 3)])
    assert args['loss_kwargs']['r1_gamma'] == 0.5 and args['new']['key'] == 3
    for bad in ['--d-width=0', '--d-width=1,x', '--procs=0', '--procs=2 --jobs=2']:
        with pytest.raises(SystemExit):
            modes.main(bad.split() + ['--no-write'])

def test_omp_wait_policy(modes, monkeypatch):
    # Spinning threads only when the runs have the cores to themselves and a run has a team of threads.
    monkeypatch.delenv('OMP_WAIT_POLICY', raising=False)
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 1}, raising=False)
    assert modes.omp_wait_policy('auto', jobs=1, threads=2) == 'ACTIVE'
    assert modes.omp_wait_policy('auto', jobs=2, threads=2) == 'PASSIVE' # 4 threads on 2 cores
    assert modes.omp_wait_policy('auto', jobs=2, threads=1) == 'PASSIVE'
    assert modes.omp_wait_policy('auto', jobs=1, threads=3) == 'PASSIVE'
    assert modes.omp_wait_policy('active', jobs=2, threads=2) == 'ACTIVE'
    monkeypatch.setenv('OMP_WAIT_POLICY', 'passive') # the user's setting wins over auto
    assert modes.omp_wait_policy('auto', jobs=1, threads=2) == 'passive'

def _run(dataset, k, seed, modes_found, hq=None, rkl=None, kl=None, **extra):
    metric = {'ring8': 'modes_ring8', 'stacked-mnist': 'modes_stacked_mnist'}[dataset]
    res = {metric: modes_found}
    for name, value in [('_hq', hq), ('_rkl', rkl), ('_kl', kl)]:
        if value is not None:
            res[metric + name] = value
    return dict(dataset=dataset, k=k, seed=seed, ok=True, results=res, wall=10.0 + seed, cpu=5.0, **extra)

def test_summary_and_table(modes):
    runs = [_run('ring8', 1, 0, 8, 0.9, 0.1), _run('ring8', 1, 1, 6, 0.7, 0.3),
        _run('ring8', 4, 0, 8, 0.98, 0.01), _run('ring8', 4, 1, 8, 0.96, 0.03), _run('ring8', 4, 2, 8, 0.97, 0.02),
        _run('stacked-mnist', 1, 0, 990, kl=0.1), _run('stacked-mnist', 1, 1, 980, hq=0.6, kl=0.2),
        dict(dataset='ring8', k=9, seed=0, ok=False, error='x'),
        _run('stacked-mnist', 4, 0, 950, hq=0.5, kl=0.3, d_width=0.25),
        _run('stacked-mnist', 1, 0, 700, hq=0.3, kl=1.5, d_width=0.25)]
    summary = modes.summarise(runs)
    key = lambda dataset, d_width, k: (dataset, d_width, None, (), k)
    assert list(summary) == [key('ring8', 1, 1), key('ring8', 1, 4), key('stacked-mnist', 1, 1),
        key('stacked-mnist', 0.25, 1), key('stacked-mnist', 0.25, 4)] # failed runs are left out; full-width D first
    s1, s4 = summary[key('ring8', 1, 1)], summary[key('ring8', 1, 4)]
    assert s1['modes'] == pytest.approx((7.0, 1.0)) # mean 7, sample std sqrt(2), se sqrt(2)/sqrt(2)
    assert s1['full'] == 1 and s4['full'] == 3 and s4['runs'] == 3
    assert s4['hq'] == pytest.approx((97.0, 1.0 / np.sqrt(3)))
    assert s1['wall'] == pytest.approx((10.5, 0.5))
    table = modes.format_table(summary).splitlines()
    assert table[0].startswith('| dataset | K | runs |') and len(table) == 2 + 5
    row4 = table[3]
    assert '| ring8 | 4 | 3 | 8.00 ± 0.00 (3/3) | 97.0 ± 0.6% | 0.020 ± 0.006 |' in row4
    assert row4.rstrip(' |').endswith('7.00 ± 1.00 / 80.0 ± 10.0% / 0.200 ± 0.100') # the K=1 baseline beside it
    # Stacked MNIST's high-quality share (confidently read digits) only where every run of the row measured it.
    assert '| stacked-mnist | 1 | 2 | 985.00 ± 5.00 (0/2) | n/a | KL 0.150 ± 0.050 |' in table[4]
    # The narrow-D rows are their own group, with their own K=1 baseline beside them.
    assert table[6].startswith("| stacked-mnist, D at 0.25 of G's width | 4 | 1 | 950.00 ± 0.00 (0/1) | 50.0 ± 0.0% | KL 0.300")
    assert table[6].rstrip(' |').endswith('700.0 ± 0.0 / 30.0 ± 0.0% / KL 1.500 ± 0.000')

def test_rows_by_length_and_overrides(modes):
    # Runs of another length or with other overrides are rows of their own; the K=1 row beside a row has the same
    # length and overrides, less the SOM map's (K=1 has no map).
    som = [(['loss_kwargs', 'som_kwargs', 'g_weights'], 'neighbourhood')]
    runs = [_run('stacked-mnist', 1, 0, 700, kl=1.5, kimg=100), _run('stacked-mnist', 4, 0, 800, kl=1.0, kimg=100),
        _run('stacked-mnist', 1, 0, 900, kl=0.5, kimg=400), _run('stacked-mnist', 4, 0, 950, kl=0.2, kimg=400, overrides=som),
        _run('stacked-mnist', 4, 1, 970, kl=0.1, kimg=400, overrides=som),
        _run('stacked-mnist', 4, 0, 10, kl=5.0, kimg=400, overrides=[(['loss_kwargs', 'r1_gamma'], 1)])]
    summary = modes.summarise(runs)
    assert len(summary) == 5
    nbh = summary[('stacked-mnist', 1, 400, ('loss_kwargs.som_kwargs.g_weights=neighbourhood',), 4)]
    assert nbh['runs'] == 2 and nbh['modes'] == pytest.approx((960.0, 10.0))
    table = modes.format_table(summary).splitlines()[2:]
    assert [row.split(' | ')[0] for row in table] == ['| stacked-mnist, 100 kimg'] * 2 + ['| stacked-mnist, 400 kimg'] + [
        '| stacked-mnist, 400 kimg, r1_gamma=1', '| stacked-mnist, 400 kimg, som_kwargs.g_weights=neighbourhood']
    assert table[1].rstrip(' |').endswith('700.0 ± 0.0 / KL 1.500 ± 0.000')
    assert table[4].rstrip(' |').endswith('900.0 ± 0.0 / KL 0.500 ± 0.000')
    assert table[3].endswith(' | 5 |  |') # no K=1 run with R1: nothing beside it

def test_results_section_replaced(modes, tmp_path):
    path = tmp_path / 'RESULTS.md'
    path.write_text('# Benchmark results\n\n## Other\n\ntext\n')
    modes.write_results('| table 1 |', 'python bench/modes.py --x', 'a note', path=str(path))
    text = path.read_text()
    assert text.startswith('# Benchmark results\n\n## Other\n\ntext\n\n## Mode coverage')
    assert '| table 1 |' in text and '`python bench/modes.py --x`' in text and 'a note' in text
    modes.write_results('| table 2 |', 'cmd', '', path=str(path))
    text = path.read_text()
    assert '| table 2 |' in text and '| table 1 |' not in text and text.count(modes.BEGIN) == 1
    assert text.count('## Mode coverage') == 1 and '## Other' in text

def test_one_tiny_run(modes):
    job = dict(dataset='ring8', k=4, seed=0, kimg=1, tick=1, loss=None, topo=None, threads=1, keep=None,
        overrides=[(['G_kwargs', 'synthesis_kwargs', 'layer_features'], 16), (['D_kwargs', 'layer_features'], 16)])
    r = modes.run_one(job)
    assert r['ok'], r.get('trace')
    assert set(r['results']) == {'modes_ring8', 'modes_ring8_hq', 'modes_ring8_rkl'}
    assert 0 <= r['results']['modes_ring8'] <= 8 and r['cpu'] > 0 and r['wall'] >= r['train_wall']
    assert r['som_kwargs']['num_heads'] == 4 and r['som_kwargs']['g_weights'] == 'transport' # the toy's map, recorded
    options = r['training_options'] # the whole run as trained, overrides applied
    assert options['D_kwargs']['layer_features'] == 16 and options['total_kimg'] == 1 and json.dumps(r)

def test_grid25_unequal_run(modes):
    # The weighted grid: its own metric, whose reverse KL is against the data's mode weights.
    assert modes.DATASETS['grid25-unequal'] == ('toy', 'modes_grid25_unequal', 25)
    job = dict(dataset='grid25-unequal', k=1, seed=0, kimg=1, tick=1, loss=None, topo=None, threads=1, keep=None,
        overrides=[(['G_kwargs', 'synthesis_kwargs', 'layer_features'], 16), (['D_kwargs', 'layer_features'], 16)])
    r = modes.run_one(job)
    assert r['ok'], r.get('trace')
    assert set(r['results']) == {'modes_grid25_unequal', 'modes_grid25_unequal_hq', 'modes_grid25_unequal_rkl'}
    assert 0 <= r['results']['modes_grid25_unequal'] <= 25
    assert r['training_options']['training_set_kwargs']['path'] == 'grid25-unequal'

def test_one_run_in_two_processes(modes):
    # --procs=2: train.py's gloo processes (one thread each, half the batch each); the K=1 row of the same split
    # stands beside it.
    job = dict(dataset='ring8', k=4, seed=0, kimg=1, tick=1, loss=None, topo=None, threads=1, keep=None, procs=2,
        overrides=[(['G_kwargs', 'synthesis_kwargs', 'layer_features'], 16), (['D_kwargs', 'layer_features'], 16)])
    r = modes.run_one(job)
    assert r['ok'], r.get('trace')
    assert r['training_options']['num_gpus'] == 2 and r['training_options']['batch_gpu'] * 2 == r['training_options']['batch_size']
    assert r['cpu'] > r['train_cpu'] > 0 # the training processes' CPU time is counted
    base = dict(r, k=1)
    summary = modes.summarise([r, base, dict(r, procs=1)])
    key = ('ring8', 1.0, 1, ('D_kwargs.layer_features=16', 'G_kwargs.synthesis_kwargs.layer_features=16', 'procs=2'), 4)
    assert summary[key]['runs'] == 1 and len(summary) == 3
    name = '| ring8, 1 kimg, D_kwargs.layer_features=16, G_kwargs.synthesis_kwargs.layer_features=16, procs=2'
    rows = [row for row in modes.format_table(summary).splitlines() if row.startswith(name + ' | 4 |')]
    assert len(rows) == 1 and not rows[0].endswith('|  |') # the K=1 run with two processes beside it

def test_run_in_process_that_dies(modes, monkeypatch):
    # A run whose process dies without a result (killed, out of memory) is a failed row, not a crash of the bench.
    import multiprocessing
    monkeypatch.setattr(modes, '_send_result', _die)
    r = modes._run_in_process(multiprocessing.get_context('fork'), dict(dataset='ring8', k=1, seed=3))
    assert r['ok'] is False and 'exited with code 7' in r['error'] and r['seed'] == 3

def _die(job, send):
    os._exit(7)
