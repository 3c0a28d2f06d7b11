"""bench/leaderboard.py: the statistics on hand-worked inputs, the protocol's jobs, the table from fabricated
records (cells, marks, partial seeds), skipping recorded runs, the RESULTS.md sections, and one tiny real sitting."""

import importlib
import json
import math
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

@pytest.fixture(scope='module')
def lb():
    sys.path.insert(0, os.path.join(REPO, 'bench'))
    return importlib.import_module('leaderboard')

def test_mean_std(lb):
    assert lb.mean_std([1, 2, 3]) == pytest.approx((2.0, 1.0, 3)) # sample std: sqrt((1 + 0 + 1) / 2)
    assert lb.mean_std([2, 4, float('nan'), None]) == pytest.approx((3.0, math.sqrt(2), 2)) # unscored values left out
    mean, std, n = lb.mean_std([5])
    assert mean == 5 and math.isnan(std) and n == 1
    mean, std, n = lb.mean_std([])
    assert math.isnan(mean) and n == 0

def test_welch_se_and_beats(lb):
    assert lb.welch_se(1, 4, 2, 16) == pytest.approx(math.sqrt(1 / 4 + 4 / 16))
    # Lower is better (KL): 0.30 +- 0.02 against 0.20 +- 0.03 over 3 each: SE sqrt(0.0013 / 3) = 0.0208, 0.10 > 0.042.
    base, cand = (0.30, 0.02, 3), (0.20, 0.03, 3)
    assert lb.beats(base, cand, lower_is_better=True)
    assert not lb.beats(base, cand) # higher is better: cand is worse
    assert not lb.beats(cand, base, lower_is_better=True)
    # Higher is better (modes): 7 +- 1 against 8 +- 1 over 4 each: SE sqrt(1/4 + 1/4) = 0.707, 2 SE = 1.414.
    assert not lb.beats((7, 1, 4), (8, 1, 4))
    assert lb.beats((7, 1, 4), (8.5, 1, 4))
    assert lb.beats((7, 0, 3), (8, 0, 3)) and not lb.beats((8, 0, 3), (8, 0, 3)) # no spread: any gain counts
    assert not lb.beats((7, float('nan'), 1), (8.5, 1, 4)) # one seed: no std, no mark
    assert not lb.beats((0.3, 0.01, 3), (0.1, float('nan'), 1), lower_is_better=True)

def test_protocol_jobs(lb):
    job = lb.make_job('ring8-nor1', 'K=1 plain', 3)
    assert job['loss'] == 'ns' and job['overrides'] == [] and job['kimg'] == lb.TOY_KIMG and job['seed'] == 3
    rp = lb.make_job('grid25-nor1', 'SOM K=4 rpgan', 0)
    assert rp['loss'] == 'rpgan' and rp['k'] == 4
    assert rp['overrides'] == [(['loss_kwargs', 'r1_gamma'], 0), (['loss_kwargs', 'r2_gamma'], 0),
        (['loss_kwargs', 'som_kwargs', 'g_weights'], 'transport')] # the regime's, then the column's
    assert lb.make_job('ring8', 'K=1 plain', 0)['loss'] is None # the toy's own loss, with its R1
    assert lb.make_job('ring8', 'PacGAN', 0)['train_kwargs'] == {'d_pack': 2}
    assert lb.make_job('grid25', 'PacGAN', 0)['train_kwargs'] == {'d_pack': 4}
    dq = lb.make_job('stacked-mnist-dq', 'SOM K=4', 0)
    assert dq['train_kwargs'] == {'d_width': 0.25} and dq['cfg'] == 'stacked-mnist' and dq['kl_key'] == 'modes_stacked_mnist_kl'
    d8 = lb.make_job('discs8', 'SOM K=9', 0, kimg=2)
    assert (d8['cfg'], d8['metric'], d8['kimg'], d8['train_kwargs']) == ('tiny', 'modes_discs8', 2, {'aug': 'noaug'})
    assert d8['spec_key'] != lb.make_job('discs8', 'SOM K=9', 0)['spec_key'] # another length: another cell
    assert 'PacGAN' not in lb.REGIMES['discs8']['columns'] and lb.REGIMES['stacked-mnist']['columns'] == ('K=1 plain', 'SOM K=4')
    assert [r['seeds'] for r in (lb.REGIMES['ring8'], lb.REGIMES['discs8'], lb.REGIMES['stacked-mnist'])] == [10, 5, 3]
    mv = lb.make_job('mnist-vanilla', 'SOM K=4', 0)
    assert (mv['dataset'], mv['metric'], mv['loss'], mv['kl_key']) == ('mnist', 'modes_mnist', 'minimax', 'modes_mnist_kl')

def test_parse_column(lb):
    name, col = lb.parse_column('SOM K=4 balance:k=4,loss=rpgan,set=loss_kwargs.som_kwargs.g_weights=balance,'
        'set=a.b=[1,2],train=som_sigma_end=0.5')
    assert name == 'SOM K=4 balance' and col['k'] == 4 and col['loss'] == 'rpgan' and col['pack'] is None
    assert col['set'] == ('loss_kwargs.som_kwargs.g_weights=balance', 'a.b=[1,2]') # a value may hold commas
    assert col['train'] == {'som_sigma_end': 0.5}
    assert lb.parse_column('P4:pack=4')[1]['pack'] == 4 and lb.parse_column('P:pack=regime')[1]['pack'] == 'regime'
    for bad in ['no colon', ':k=4', 'x:kk=4', 'x:k=four', 'x:k=0', 'x:set=novalue']:
        with pytest.raises(lb.UsageError):
            lb.parse_column(bad)

def test_bad_flags(lb, capsys):
    for bad in [['--regimes=ring9'], ['--regimes=mixture-hard'], ['--columns=K=2'], ['--seeds=x'], ['--kimg=0'],
            ['--extra-column=SOM K=4:k=4'], ['--regimes=stacked-mnist', '--columns=SOM K=9']]:
        with pytest.raises(SystemExit) as err:
            lb.main(bad + ['--no-write'])
        assert str(err.value).startswith('leaderboard.py: error: ') and '\n' not in str(err.value)
    with pytest.raises(SystemExit) as err:
        lb.main(['--regimes=ring9'])
    assert 'choose from ring8, grid25' in str(err.value)

#----------------------------------------------------------------------------
# Tables from fabricated records.

def _record(job, modes_found, hq, kl, ok=True):
    res = {job['metric']: modes_found, job['metric'] + '_hq': hq, job['kl_key']: kl}
    return dict(job, ok=True, results=res, cpu=60.0, wall=70.0) if ok else dict(job, ok=False, error='ValueError: x')

def _plan(lb, regimes, columns, seeds=(0, 1, 2)):
    return {r: {c: [lb.make_job(r, c, s) for s in seeds] for c in columns if lb.REGIMES[r]['columns'] is None
        or c in lb.REGIMES[r]['columns']} for r in regimes}

def test_table(lb):
    plan = _plan(lb, ['ring8', 'grid25', 'stacked-mnist'], ['K=1 plain', 'K=1 rpgan', 'SOM K=4'])
    job = lambda r, c, s: plan[r][c][s]
    records = []
    # ring8: rpgan is the best baseline by KL (0.27 +- 0.02); SOM's 0.12 +- 0.02 beats it by 0.15 > 2 * 0.0163;
    # its 8 modes against rpgan's 7 +- 1 are 1 < 2 * sqrt(1/3) = 1.15 ahead: no mark on modes.
    for s, (m, kl) in enumerate([(6, 0.30), (7, 0.32), (8, 0.34)]):
        records.append(_record(job('ring8', 'K=1 plain', s), m, 0.9, kl))
    for s, (m, kl) in enumerate([(6, 0.25), (7, 0.27), (8, 0.29)]):
        records.append(_record(job('ring8', 'K=1 rpgan', s), m, 0.8, kl))
    for s, kl in enumerate([0.10, 0.12, 0.14]):
        records.append(_record(job('ring8', 'SOM K=4', s), 8, 0.95, kl))
    records.append(_record(lb.make_job('ring8', 'SOM K=4', 0, kimg=2), 0, 0.0, 5.0)) # another length: not mixed in
    # grid25: more modes by 24.67 - 21 = 3.67 > 2 * sqrt(1/3 + 1/9) = 1.33, KL no better; rpgan failed (not landed).
    for s, (m, kl) in enumerate([(20, 0.5), (21, 0.6), (22, 0.7)]):
        records.append(_record(job('grid25', 'K=1 plain', s), m, 0.5, kl))
    for s, m in enumerate([24, 25, 25]):
        records.append(_record(job('grid25', 'SOM K=4', s), m, 0.6, 0.55))
        records.append(_record(job('grid25', 'K=1 rpgan', s), 0, 0, 0, ok=False))
    # stacked MNIST: one seed each so far, and one of SOM's failed; its KL is the plain KL.
    records.append(_record(job('stacked-mnist', 'K=1 plain', 0), 990, 0.7, 0.2))
    records.append(_record(job('stacked-mnist', 'SOM K=4', 0), 1000, 0.8, 0.05))
    records.append(_record(job('stacked-mnist', 'SOM K=4', 1), 0, 0, 0, ok=False))
    columns = dict(lb.COLUMNS)
    lines = lb.build_table(records, plan, columns).splitlines()
    assert lines[0] == '| regime (length, seeds n) | K=1 plain | K=1 rpgan | SOM K=4 | CPU s/run |'
    cells = lambda row: [c.strip() for c in row.strip('|').split(' | ')]
    ring8, grid25, mnist = cells(lines[2]), cells(lines[3]), cells(lines[4])
    assert ring8 == ['ring8 (1000 kimg, 3 seeds)', '7.00 ± 1.00 / 90.0 ± 0.0% / 0.320 ± 0.020',
        '7.00 ± 1.00 / 80.0 ± 0.0% / 0.270 ± 0.020', '8.00 ± 0.00 / 95.0 ± 0.0% / **0.120 ± 0.020**†', '60']
    assert grid25[1:4] == ['21.00 ± 1.00 / 50.0 ± 0.0% / 0.600 ± 0.100', 'not run (3 failed)',
        '**24.67 ± 0.58**† / 60.0 ± 0.0% / 0.550 ± 0.000']
    assert mnist[1:4] == ['990.0 / 70.0% / 0.200 (1/3 seeds)', '·', '1000.0 / 80.0% / 0.050 (1/3 seeds, 1 failed)']
    assert 'mean ± std' in lines[6] and 'n seeds' in lines[6] and 'Welch' in lines[6]

def test_table_no_mode(lb):
    # A run with no sample on a mode has no KL (NaN): it counts at log(8), a collapse onto one mode.
    plan = _plan(lb, ['ring8'], ['K=1 plain', 'SOM K=4'], seeds=(0, 1))
    records = [_record(plan['ring8']['K=1 plain'][0], 0, 0.0, float('nan')),
        _record(plan['ring8']['K=1 plain'][1], 8, 0.9, 0.1)]
    s = lb.summarise_cell(records, plan['ring8']['K=1 plain'])
    assert s['empty'] == 1 and s['kl'][:2] == pytest.approx(((math.log(8) + 0.1) / 2, (math.log(8) - 0.1) / math.sqrt(2)))
    row = lb.build_table(records, plan, dict(lb.COLUMNS)).splitlines()[2]
    assert '(1 on no mode)' in row and '| not run |' in row

def test_skip_recorded(lb, tmp_path, capsys):
    jobs = [lb.make_job('ring8', 'K=1 plain', s) for s in range(3)]
    records = [_record(jobs[0], 8, 1, 0), _record(jobs[1], 0, 0, 0, ok=False),
        _record(lb.make_job('ring8', 'K=1 plain', 2, kimg=5), 8, 1, 0)]
    assert [j['seed'] for j in lb.to_run(jobs, records)] == [1, 2] # failed: again; another length: not this one
    # A sitting whose runs are all recorded runs nothing, and tabulates the records.
    path = tmp_path / 'runs.jsonl'
    path.write_text(''.join(json.dumps(_record(j, 8, 0.9, 0.01)) + '\n' for j in jobs) + '{"cut off\n')
    assert lb.main(['--regimes=ring8', '--columns=K=1 plain', '--seeds=0-2', f'--json={path}', '--no-write']) == 0
    out = capsys.readouterr().out
    assert '3 runs in the selection, 3 already in' in out and '0 to run' in out
    assert '--seeds=0-2 instead of the protocol' in out and '| ring8 (1000 kimg, 3 seeds) | 8.00 ± 0.00 / 90.0 ± 0.0% / 0.010 ± 0.000 |' in out
    assert lb.main(['--regimes=ring8', '--columns=K=1 plain', f'--from-json={path},{tmp_path / "none.jsonl"}',
        '--no-write']) == 0
    assert '(3/10 seeds)' in capsys.readouterr().out # the protocol's ten seeds

def test_results_sections(lb, tmp_path):
    path = tmp_path / 'RESULTS.md'
    # A results file without the leaderboard yet: a title, an intro, and a section of another script.
    path.write_text('# Results\n\nIntro line.\n\n## Modes\n\n<!-- modes:begin -->\n| m |\n<!-- modes:end -->\n\nNotes.\n')
    original = path.read_text()
    title, intro, rest = original.split('\n\n', 2)
    write = lambda table, quick: lb.modes.write_results(table, 'cmd', '', path=str(path),
        markers=lb.QUICK['markers'] if quick else lb.FULL['markers'], place=lb.PLACES[lb.QUICK['markers'] if quick else lb.FULL['markers']])
    write('| quick 1 |', True) # the quick one first: under the intro
    write('| full 1 |', False) # then the main one: under the intro, above the quick one
    write('| full 2 |', False)
    text = path.read_text()
    assert text.startswith(f'{title}\n\n{intro}\n\n## Mode-coverage leaderboard: `bench/leaderboard.py`\n\n<!-- leaderboard:begin -->')
    assert text.index('| full 2 |') < text.index('<!-- leaderboard:end -->') < text.index('| quick 1 |')
    assert '| full 1 |' not in text and text.count('<!-- leaderboard:begin -->') == 1
    assert text.endswith(rest) and '<!-- modes:begin -->' in text # the rest as it was
    # The quick section the first time when the main one is there: right under it.
    path.write_text(original)
    write('| full |', False)
    write('| quick |', True)
    text = path.read_text()
    assert '<!-- leaderboard:end -->\n\n### Quick subset: `bench/leaderboard.py --quick`\n\n<!-- leaderboard-quick:begin -->' in text
    assert text.endswith('<!-- leaderboard-quick:end -->\n\n' + rest)

#----------------------------------------------------------------------------

def test_tiny_sitting(lb, tmp_path, capsys):
    # Two real runs of 1 kimg with small networks, one column whose loss does not exist (a FAILED record, as
    # rpgan's are until it lands), the table written to a copy of RESULTS.md; a second sitting runs nothing.
    runs, results = tmp_path / 'runs.jsonl', tmp_path / 'RESULTS.md'
    results.write_text('# Benchmark results\n\nIntro.\n\n## Other\n')
    argv = ['--regimes=ring8', '--columns=K=1 plain,SOM K=4', '--seeds=0', '--kimg=1', '--jobs=2',
        '--set=G_kwargs.synthesis_kwargs.layer_features=16', '--set=D_kwargs.layer_features=16',
        '--extra-column=broken:loss=no-such-loss', f'--json={runs}', f'--results={results}']
    assert lb.main(argv) == 1 # a run failed
    records = [json.loads(line) for line in runs.read_text().splitlines()]
    assert sorted((r['column'], r['ok']) for r in records) == [('K=1 plain', True), ('SOM K=4', True), ('broken', False)]
    failed = next(r for r in records if not r['ok'])
    assert 'no-such-loss' in failed['error']
    som = next(r for r in records if r['column'] == 'SOM K=4')
    assert som['training_options']['total_kimg'] == 1 and som['training_options']['D_kwargs']['num_heads'] == 4
    assert som['cpu'] > 0 and 0 <= som['results']['modes_ring8'] <= 8 and som['regime'] == 'ring8'
    text = results.read_text()
    assert text.startswith('# Benchmark results\n\nIntro.\n\n## Mode-coverage leaderboard') and text.endswith('\n## Other\n')
    assert "Command: `python bench/leaderboard.py --regimes=ring8 '--columns=K=1 plain,SOM K=4'" in text
    assert '| ring8 (1 kimg, 1 seed) |' in text and 'not run (1 failed)' in text
    capsys.readouterr()
    assert lb.main([a for a in argv if not a.startswith('--extra-column')] + ['--no-write']) == 0
    assert '2 runs in the selection, 2 already in' in capsys.readouterr().out and len(runs.read_text().splitlines()) == 3

def test_table_marks_against_pacgan_apart(lb):
    # PacGAN's KL 0.05 +- 0.01 is the row's best; SOM's 0.12 beats K=1 plain (0.32) by far but not PacGAN: ‡, not †.
    plan = _plan(lb, ['ring8'], ['K=1 plain', 'PacGAN', 'SOM K=4'], seeds=(0, 1, 2))
    records = []
    for s, kl in enumerate([0.30, 0.32, 0.34]):
        records.append(_record(plan['ring8']['K=1 plain'][s], 8, 0.9, kl))
    for s, kl in enumerate([0.04, 0.05, 0.06]):
        records.append(_record(plan['ring8']['PacGAN'][s], 8, 0.9, kl))
    for s, kl in enumerate([0.10, 0.12, 0.14]):
        records.append(_record(plan['ring8']['SOM K=4'][s], 8, 0.95, kl))
    row = lb.build_table(records, plan, dict(lb.COLUMNS)).splitlines()[2]
    assert row.split(' | ')[3] == '8.00 ± 0.00 / 95.0 ± 0.0% / **0.120 ± 0.020**‡'
    # And with SOM below PacGAN by more than two standard errors: †.
    records = [r for r in records if r['column'] != 'SOM K=4']
    for s, kl in enumerate([0.010, 0.012, 0.014]):
        records.append(_record(plan['ring8']['SOM K=4'][s], 8, 0.95, kl))
    row = lb.build_table(records, plan, dict(lb.COLUMNS)).splitlines()[2]
    assert row.split(' | ')[3] == '8.00 ± 0.00 / 95.0 ± 0.0% / **0.012 ± 0.002**†'

def test_modes_mark_against_the_baseline_with_most_modes(lb):
    # PacGAN has the best KL but the fewest modes; rpgan the most modes. SOM's 24 modes beat PacGAN's 21 by far,
    # but not rpgan's 24.5: no mark on modes (the baseline of a figure is the best K=1 column on that figure).
    plan = _plan(lb, ['grid25'], ['K=1 rpgan', 'PacGAN', 'SOM K=4'], seeds=(0, 1, 2))
    records = []
    for s, (m, kl) in enumerate([(24, 0.40), (25, 0.39), (24.5, 0.41)]):
        records.append(_record(plan['grid25']['K=1 rpgan'][s], m, 0.4, kl))
    for s, (m, kl) in enumerate([(21, 0.30), (21, 0.31), (21, 0.32)]):
        records.append(_record(plan['grid25']['PacGAN'][s], m, 0.02, kl))
    for s, m in enumerate([24, 24, 24]):
        records.append(_record(plan['grid25']['SOM K=4'][s], m, 0.3, 0.45))
    row = lb.build_table(records, plan, dict(lb.COLUMNS)).splitlines()[2]
    assert row.split(' | ')[3] == '24.00 ± 0.00 / 30.0 ± 0.0% / 0.450 ± 0.000'
