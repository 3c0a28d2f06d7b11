"""Mode-coverage leaderboard: a fixed protocol of regimes (dataset, config, length, seeds) by columns (loss, K heads,
overrides), every cell on the same budget, mean and std over seeds, with a mark where a SOM column beats the best
K=1 baseline of its row by more than two standard errors. Writes the table at the top of bench/RESULTS.md.

    python bench/leaderboard.py --quick --jobs=2             # ring8, ring8-nor1, grid25-nor1 x 3 columns x 3 seeds
    python bench/leaderboard.py --jobs=2                     # the whole protocol; rerun it to go on where it stopped
    python bench/leaderboard.py --regimes=ring8,grid25 --columns='K=1 plain,PacGAN,SOM K=4' --jobs=2
    python bench/leaderboard.py --regimes=ring8 --extra-column='SOM K=4 balance:k=4,set=loss_kwargs.som_kwargs.g_weights=balance'
    python bench/leaderboard.py --regimes=ring8 --seeds=0-2 --kimg=200 --json=/tmp/try.jsonl --no-write   # try things
    python bench/leaderboard.py --from-json=bench/runs/leaderboard.jsonl --no-write                     # table only

A run is bench/modes.py's run_one: train.py's settings for the regime's --cfg and --data at its length, with the
column's --loss, --som-d=K and overrides, trained in a worker process of one thread, its final G_ema scored by the
regime's metric (metrics/mode_coverage.py). Each finished run is appended at once to --json (JSON lines: regime,
column, seed, the run's spec, results, CPU and wall seconds, the full training options); a run whose regime, column,
spec (which holds the length and every override) and seed are already there with a result is skipped, so the
protocol can be filled in over several sittings, and failed runs are tried again. The table is built from every
matching record of the file: cells never mix lengths or definitions.

Cells: covered modes / high-quality share / KL (reverse KL to the uniform mode distribution for the 2-D toys and
discs8, the KL of the triples' distribution for stacked MNIST; lower is better), each mean +- std over the seeds.
The primary metric is the KL: a row's best K=1 baseline is the K=1 column of lowest mean KL; a SOM column (K > 1)
whose KL is lower by more than 2 * sqrt(s1^2/n1 + s2^2/n2) (Welch) is bold with a dagger, and so are its modes
where it covers more by that margin.

--quick: 27 runs of 1000 kimg on the 2-D toys, about 60 CPU seconds each here (one thread; measured for K=1 and
K=4 at 1000 kimg on ring8; rpgan's penalties every step cost more), so 15-20 minutes with --jobs=2 on 2 cores.
Its records and table are separate (bench/runs/leaderboard-quick.jsonl; its own markers, under the main table).
"""

import argparse
import json
import multiprocessing
import os
import shlex
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import modes # pylint: disable=wrong-import-position

BENCH = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.join(BENCH, 'runs')

#----------------------------------------------------------------------------
# The protocol.

# Columns. k: SOM heads (1: a single D, a baseline). loss: train.py --loss (None: the config's). topo: --som-topo.
# pack: PacGAN's pack size (D_kwargs.pack_size through --d-pack), 'regime' for the regime's. set: KEY.PATH=VALUE
# overrides of the training options. train: more keyword arguments of train.setup_training_loop_kwargs.
# SOM columns name their rule for G's loss, so that records stay what they were if train.py's default changes.
SOM_RULE = ('loss_kwargs.som_kwargs.g_weights=transport',)
COLUMN_DEFAULTS = dict(k=1, loss=None, topo=None, pack=None, set=(), train={})
COLUMNS = {name: dict(COLUMN_DEFAULTS, **fields) for name, fields in {
    'K=1 plain':     dict(),
    'K=1 rpgan':     dict(loss='rpgan'),
    'PacGAN':        dict(pack='regime'),
    'SOM K=4':       dict(k=4, set=SOM_RULE),
    'SOM K=9':       dict(k=9, set=SOM_RULE),
    'SOM K=4 rpgan': dict(k=4, loss='rpgan', set=SOM_RULE),
}.items()}

# No gradient penalty at all: the config's loss becomes the plain non-saturating one (no R1 by default), and
# rpgan's R1 and R2 go to zero. Keyed by the column's loss (None: the config's).
NO_PENALTY = {None: dict(loss='ns'), 'rpgan': dict(set=('loss_kwargs.r1_gamma=0', 'loss_kwargs.r2_gamma=0'))}

# The vanilla GAN of the GAN zoo's mode-collapse study: the original minimax objective, no gradient penalty (rpgan
# columns without theirs too).
VANILLA = {None: dict(loss='minimax'), 'rpgan': NO_PENALTY['rpgan']}

TOY_KIMG = 1000 # the 2-D toys' length (the toy config's own is 4000)

# Regimes. data / cfg: train.py --data / --cfg. metric: its name in metrics/metric_main.py, whose results are
# METRIC, METRIC_hq and METRIC_<kl>. modes: how many there are. kimg / seeds: the protocol's length and seeds
# 0..seeds-1. pack: PacGAN's pack size. per_loss: overrides by column loss (see NO_PENALTY). set / train: as in
# the columns, for every column of the regime (a column's own come last). columns: only these (None: all).
# placeholder: why it cannot run yet (left out unless named, and then refused).
REGIME_DEFAULTS = dict(cfg='toy', kimg=TOY_KIMG, seeds=10, kl='rkl', pack=2, per_loss={}, set=(), train={},
    columns=None, placeholder=None, about='')
K1_AND_SOM = ('K=1 plain', 'SOM K=4') # stacked MNIST: best K=1 baseline and best SOM variant, 1000 CPU s a run
NO_PACK = tuple(name for name in COLUMNS if COLUMNS[name]['pack'] is None) # StyleGAN2's D has no pack_size
REGIMES = {name: dict(REGIME_DEFAULTS, **fields) for name, fields in {
    'ring8':            dict(data='ring8', metric='modes_ring8', modes=8, about='toy config (R1 every step)'),
    'grid25':           dict(data='grid25', metric='modes_grid25', modes=25, pack=4, about='toy config (R1 every step)'),
    'ring8-nor1':       dict(data='ring8', metric='modes_ring8', modes=8, per_loss=NO_PENALTY,
                             about='no gradient penalty: --loss=ns for plain columns, rpgan with r1_gamma = r2_gamma = 0'),
    'grid25-nor1':      dict(data='grid25', metric='modes_grid25', modes=25, pack=4, per_loss=NO_PENALTY,
                             about='no gradient penalty, as ring8-nor1'),
    'grid25-unequal':   dict(data='grid25-unequal', metric='modes_grid25_unequal', modes=25, pack=4,
                             about='grid25 with mode weights from 10:1 (reverse KL against them), toy config'),
    'ring8-vanilla':    dict(data='ring8', metric='modes_ring8', modes=8, per_loss=VANILLA,
                             about='vanilla GAN: --loss=minimax, no gradient penalty'),
    'stacked-mnist':    dict(data='stacked-mnist', cfg='stacked-mnist', metric='modes_stacked_mnist', modes=1000,
                             kl='kl', kimg=400, seeds=3, columns=K1_AND_SOM, about='DCGAN, the config\'s 400 kimg'),
    'stacked-mnist-dq': dict(data='stacked-mnist', cfg='stacked-mnist', metric='modes_stacked_mnist', modes=1000,
                             kl='kl', kimg=400, seeds=3, columns=K1_AND_SOM, train=dict(d_width=0.25),
                             about='D at a quarter of G\'s width'),
    'mnist-vanilla':    dict(data='mnist', cfg='stacked-mnist', metric='modes_mnist', modes=10, kl='kl', kimg=100,
                             seeds=3, columns=K1_AND_SOM, per_loss=VANILLA,
                             about='vanilla GAN on MNIST: the DCGAN config, --loss=minimax, no gradient penalty'),
    'discs8':           dict(data='discs8', cfg='tiny', metric='modes_discs8', modes=8, kimg=10, seeds=5,
                             train=dict(aug='noaug'), columns=NO_PACK, about='StyleGAN2 tiny config, no augmentation'),
}.items()}

# --quick: what it selects unless --regimes, --columns or --seeds say otherwise, and where it writes.
QUICK = dict(regimes=('ring8-nor1', 'grid25-nor1', 'ring8'), columns=('K=1 plain', 'K=1 rpgan', 'SOM K=4'),
    seeds=(0, 1, 2), json=os.path.join(RUNS, 'leaderboard-quick.jsonl'),
    markers=('<!-- leaderboard-quick:begin -->', '<!-- leaderboard-quick:end -->'))
FULL = dict(json=os.path.join(RUNS, 'leaderboard.jsonl'), markers=('<!-- leaderboard:begin -->', '<!-- leaderboard:end -->'))

#----------------------------------------------------------------------------
# Statistics: (mean, std, n) triples.

def mean_std(values):
    """(mean, sample std with ddof=1, n) of the finite values; std is nan below two values, mean below one."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    mean = float(x.mean()) if len(x) else float('nan')
    std = float(x.std(ddof=1)) if len(x) > 1 else float('nan')
    return mean, std, len(x)

def welch_se(s1, n1, s2, n2):
    """Standard error of a difference of two means with unequal variances (Welch)."""
    return float(np.sqrt(s1 ** 2 / n1 + s2 ** 2 / n2))

def beats(base, cand, lower_is_better=False):
    """Whether cand's mean is better than base's by more than two standard errors of the difference. Needs two
    values on each side (a std)."""
    (m1, s1, n1), (m2, s2, n2) = base, cand
    if n1 < 2 or n2 < 2:
        return False
    gain = (m1 - m2) if lower_is_better else (m2 - m1)
    return bool(gain > 2 * welch_se(s1, n1, s2, n2))

#----------------------------------------------------------------------------
# Jobs and records.

class UsageError(Exception):
    pass

def parse_column(text):
    """'NAME:k=4,loss=rpgan,set=KEY.PATH=VALUE,train=ARG=VALUE,...' -> (name, column). set and train may repeat;
    a piece that starts with no field name continues the previous value (values may hold commas)."""
    name, colon, body = text.partition(':')
    name = name.strip()
    if not colon or not name or ',' in name:
        raise UsageError(f'--extra-column {text!r}: expected NAME:FIELD=VALUE,... (NAME without commas)')
    pieces = []
    for piece in body.split(','):
        field = piece.split('=', 1)[0].strip()
        if field in COLUMN_DEFAULTS and '=' in piece:
            pieces.append([field, piece.split('=', 1)[1]])
        elif pieces:
            pieces[-1][1] += ',' + piece
        elif piece.strip():
            raise UsageError(f'--extra-column {name!r}: unknown field {field!r}; choose from {", ".join(COLUMN_DEFAULTS)}')
    column = dict(COLUMN_DEFAULTS, set=[], train={})
    for field, value in pieces:
        value = value.strip()
        try:
            if field == 'set':
                modes.parse_set([value]) # checks KEY.PATH=VALUE
                column['set'].append(value)
            elif field == 'train':
                [(path, arg)] = modes.parse_set([value])
                column['train']['.'.join(path)] = arg
            elif field == 'pack' and value == 'regime':
                column['pack'] = value
            elif field in ('k', 'pack'):
                column[field] = int(value)
            else:
                column[field] = value
        except (ValueError, SystemExit) as err:
            raise UsageError(f'--extra-column {name!r}: bad {field}={value!r} ({err})') from None
    if column['k'] < 1:
        raise UsageError(f'--extra-column {name!r}: k must be at least 1')
    column['set'] = tuple(column['set'])
    return name, column

def make_job(regime_name, column_name, seed, regimes=REGIMES, columns=COLUMNS, kimg=None, extra_set=()):
    """The run of a cell and seed: modes.run_one's job, with the spec that identifies it in the records."""
    reg, col = regimes[regime_name], columns[column_name]
    adjust = reg['per_loss'].get(col['loss'], {})
    train_kwargs = dict(reg['train'], **col['train'])
    pack = reg['pack'] if col['pack'] == 'regime' else col['pack']
    if pack:
        train_kwargs['d_pack'] = pack
    spec = dict(data=reg['data'], cfg=reg['cfg'], metric=reg['metric'], kimg=(kimg or reg['kimg']),
        loss=adjust.get('loss', col['loss']), k=col['k'], topo=col['topo'], train=train_kwargs,
        set=list(reg['set']) + list(adjust.get('set', ())) + list(col['set']) + list(extra_set))
    return dict(regime=regime_name, column=column_name, seed=seed, spec=spec, spec_key=spec_key(spec),
        dataset=spec['data'], cfg=spec['cfg'], metric=spec['metric'], kimg=spec['kimg'], loss=spec['loss'],
        k=spec['k'], topo=spec['topo'], train_kwargs=train_kwargs, overrides=modes.parse_set(spec['set']),
        kl_key=f'{spec["metric"]}_{reg["kl"]}', num_modes=reg['modes'], tick=None, threads=1, keep=None)

def spec_key(spec):
    return json.dumps(spec, sort_keys=True)

def record_key(r):
    return (r['regime'], r['column'], r['seed'], r['spec_key'])

def load_records(paths):
    """Records of JSON-lines files; missing files hold none, a cut-off last line (a killed sitting) is skipped."""
    out = []
    for path in paths:
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            for num, line in enumerate(f, 1):
                try:
                    out.append(json.loads(line)) if line.strip() else None
                except ValueError:
                    print(f'{path}:{num}: not a JSON record, skipped', file=sys.stderr)
    return [r for r in out if isinstance(r, dict) and 'spec_key' in r]

def to_run(jobs, records):
    """The jobs whose cell and seed have no successful record yet."""
    done = {record_key(r) for r in records if r.get('ok')}
    return [j for j in jobs if record_key(j) not in done]

def append_record(path, r):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'a') as f:
        f.write(json.dumps({k: v for k, v in r.items() if k != 'trace'}) + '\n')
        f.flush()

#----------------------------------------------------------------------------
# Table.

def summarise_cell(records, jobs):
    """Statistics of one cell over its jobs' seeds: the last successful record of each seed counts."""
    keys = {record_key(j) for j in jobs}
    ok = {record_key(r): r for r in records if r.get('ok') and record_key(r) in keys}
    failed = {record_key(r) for r in records if not r.get('ok') and record_key(r) in keys} - set(ok)
    rs = list(ok.values())
    metric, kl_key = jobs[0]['metric'], jobs[0]['kl_key']
    hq = [r['results'].get(metric + '_hq') for r in rs]
    kl = [r['results'].get(kl_key) for r in rs]
    # No sample on any mode leaves the KL undefined (an empty histogram): count it as the worst a histogram
    # reaches, all on one mode (log of the number of modes), rather than leave the run out of the mean.
    empty = [not (v is not None and np.isfinite(v)) and r['results'][metric] == 0 for v, r in zip(kl, rs)]
    kl = [float(np.log(jobs[0]['num_modes'])) if e and jobs[0]['num_modes'] else v for v, e in zip(kl, empty)]
    return dict(n=len(rs), planned=len(jobs), failed=len(failed), empty=sum(empty),
        modes=mean_std([r['results'][metric] for r in rs]),
        hq=mean_std([100 * h for h in hq if h is not None]),
        kl=mean_std(kl),
        cpu=mean_std([r['cpu'] for r in rs]))

def _fmt(stat, digits, unit=''):
    mean, std, n = stat
    if n == 0:
        return 'n/a'
    return f'{mean:.{digits}f}' + (f' ± {std:.{digits}f}' if n > 1 else '') + unit

# Marks, strongest first: beating every K=1 baseline of the row, or the best unpacked one (plain or rpgan: the
# baselines a SOM column replaces one for one; PacGAN changes what D sees).
MARKS = (('†', True), ('‡', False))

def _mark(text, mark):
    return f'**{text}**{mark}' if mark else text

def _win(bases, s, key, lower_is_better=False):
    """The strongest mark whose baseline (the best K=1 cell on `key`, by MARKS) s beats on `key`, or ''."""
    for (mark, _), base in zip(MARKS, bases.get(key, ())):
        if base is not None and beats(base[key], s[key], lower_is_better=lower_is_better):
            return mark
    return ''

def format_cell(s, bases={}, mode_digits=2): # pylint: disable=dangerous-default-value
    """'modes / HQ / KL' with marks where s beats the baselines (MARKS order); '(n/N seeds)' and failures when
    short."""
    if s['n'] == 0:
        return f'not run ({s["failed"]} failed)' if s['failed'] else 'not run'
    text = (f'{_mark(_fmt(s["modes"], mode_digits), _win(bases, s, "modes"))} / {_fmt(s["hq"], 1, "%")} / '
        f'{_mark(_fmt(s["kl"], 3), _win(bases, s, "kl", lower_is_better=True))}')
    short = [f'{s["n"]}/{s["planned"]} seeds'] if s['n'] < s['planned'] else []
    short += [f'{s["failed"]} failed'] if s['failed'] else []
    short += [f'{s["empty"]} on no mode'] if s.get('empty') else []
    return text + (f' ({", ".join(short)})' if short else '')

def best_baseline(cells, columns, packed=True, key='kl'):
    """The K=1 cell best on `key` (lowest mean KL, or most modes), PacGAN's included or not, or None."""
    base = [cells[c] for c in cells if columns[c]['k'] == 1 and cells[c]['n'] > 0 and np.isfinite(cells[c][key][0])
        and (packed or columns[c]['pack'] is None)]
    if not base:
        return None
    return min(base, key=lambda s: s[key][0]) if key == 'kl' else max(base, key=lambda s: s[key][0])

def build_table(records, plan, columns, regimes=REGIMES, notes=()):
    """plan: {regime: {column: [jobs]}} in table order; columns: the column table (for K). Markdown lines."""
    names = [c for c in columns if any(c in cells for cells in plan.values())]
    lines = ['| regime (length, seeds n) | ' + ' | '.join(names) + ' | CPU s/run |', '| --- ' * (len(names) + 2) + '|']
    for regime, cells in plan.items():
        reg = regimes[regime]
        stats = {c: summarise_cell(records, jobs) for c, jobs in cells.items()}
        bases = {key: [best_baseline(stats, columns, packed, key) for _, packed in MARKS] for key in ('kl', 'modes')}
        row = []
        for c in names:
            som = columns[c]['k'] > 1
            row.append(format_cell(stats[c], bases if som else {}, 1 if reg['modes'] and reg['modes'] >= 100 else 2)
                if c in stats else '·')
        cpu = sorted({f'{s["cpu"][0]:.0f}' for s in stats.values() if s['n']}, key=float)
        jobs = next(iter(cells.values()))
        label = f'{regime} ({jobs[0]["kimg"]} kimg, {len(jobs)} seed{"s" if len(jobs) != 1 else ""})'
        lines.append(f'| {label} | ' + ' | '.join(row) + f' | {"-".join(dict.fromkeys(cpu[:1] + cpu[-1:]))} |')
    legend = ['', 'Each cell: covered modes / high-quality share / KL (reverse KL to uniform modes for the 2-D toys and '
        'discs8, KL for stacked MNIST; lower is better), **mean ± std** (sample standard deviation) over the n seeds '
        'of the protocol; "(n/N seeds)" where fewer are done. '
        '**x**†: a SOM column beats the row\'s best K=1 baseline on that figure (the K=1 column of lowest mean KL, or '
        'of most modes, PacGAN included) by more than two standard errors of the difference of means (Welch: '
        'sqrt(s1²/n1 + s2²/n2)); **x**‡: it beats the best of K=1 plain and K=1 rpgan so, but not PacGAN. '
        '"on no mode": runs none of whose samples lies on a mode (KL undefined), counted at the KL of a collapse '
        'onto one mode, log(modes). ·: not in the regime\'s protocol. Same length, networks and seeds in a row.',
        '', 'Regimes: ' + '; '.join(f'{r}: --data={regimes[r]["data"]} --cfg={regimes[r]["cfg"]}'
            + (f', {regimes[r]["about"]}' if regimes[r]['about'] else '') for r in plan) + '.',
        '', 'Columns: ' + '; '.join(f'{c}: {_describe(columns[c])}' for c in names) + '.']
    return '\n'.join(lines + legend + (['', *notes] if notes else []))

def _describe(col):
    parts = [f'K={col["k"]}', f'--loss={col["loss"] or "(config)"}'] + ([f'--som-topo={col["topo"]}'] if col['topo'] else [])
    parts += [f'pack {col["pack"]}' if col['pack'] != 'regime' else 'pack: the regime\'s (2; grid25: 4)'] if col['pack'] else []
    return ', '.join(parts + list(col['set']) + [f'{k}={v}' for k, v in col['train'].items()])

def _place_under_intro(heading):
    """Where a section goes the first time: under the title line and the intro paragraph."""
    def place(text, section):
        parts = text.split('\n\n', 2)
        if len(parts) < 3:
            return text.rstrip('\n') + f'\n\n{heading}\n\n{section}\n'
        return f'{parts[0]}\n\n{parts[1]}\n\n{heading}\n\n{section}\n\n{parts[2]}'
    return place

def _place_after(marker, heading):
    """Under the section that ends with marker, else under the intro."""
    def place(text, section):
        if marker not in text:
            return _place_under_intro(heading)(text, section)
        head, tail = text.split(marker, 1)
        return f'{head}{marker}\n\n{heading}\n\n{section}{tail}'
    return place

PLACES = {
    FULL['markers']: _place_under_intro('## Mode-coverage leaderboard: `bench/leaderboard.py`'),
    QUICK['markers']: _place_after(FULL['markers'][1], '### Quick subset: `bench/leaderboard.py --quick`'),
}

#----------------------------------------------------------------------------

def _names(text, table, flag):
    names = [n.strip() for n in text.split(',') if n.strip()]
    bad = [n for n in names if n not in table]
    if bad or not names:
        raise UsageError(f'{flag}: unknown {", ".join(map(repr, bad)) or "(none given)"}; choose from {", ".join(table)}')
    return names

def plan_jobs(opts, columns):
    """{regime: {column: [jobs]}} of the selection."""
    regimes = (_names(opts.regimes, REGIMES, '--regimes') if opts.regimes else
        list(QUICK['regimes']) if opts.quick else [r for r in REGIMES if not REGIMES[r]['placeholder']])
    for r in regimes:
        if REGIMES[r]['placeholder']:
            raise UsageError(f'--regimes: {r} is a placeholder: {REGIMES[r]["placeholder"]} (bench/leaderboard.py REGIMES)')
    extra = [c for c in columns if c not in COLUMNS]
    chosen = (_names(opts.columns, columns, '--columns') if opts.columns else
        list(QUICK['columns']) if opts.quick else list(COLUMNS))
    chosen += [c for c in extra if c not in chosen] # columns defined on the command line always run
    seeds = modes.parse_int_list(opts.seeds) if opts.seeds else (list(QUICK['seeds']) if opts.quick else None)
    plan = {}
    for r in regimes:
        allowed = REGIMES[r]['columns']
        cells = [c for c in chosen if allowed is None or c in allowed or c in extra]
        plan[r] = {c: [make_job(r, c, s, columns=columns, kimg=opts.kimg, extra_set=opts.set or ())
            for s in (seeds if seeds is not None else range(REGIMES[r]['seeds']))] for c in cells}
    return {r: cells for r, cells in plan.items() if cells}

def run_jobs(jobs, n_parallel, json_path):
    """Runs in worker processes of one thread, each record appended to json_path as it comes. Returns them."""
    done, start = [], time.time()
    if not jobs:
        return done
    ctx = multiprocessing.get_context('spawn')
    wait = modes.omp_wait_policy('auto', n_parallel, 1)
    with ctx.Pool(processes=min(n_parallel, len(jobs)), maxtasksperchild=1) as pool:
        for r in pool.imap_unordered(modes.run_one, [dict(j, omp_wait=wait) for j in jobs]):
            done.append(r)
            append_record(json_path, r)
            tag = f'[{len(done)}/{len(jobs)} {time.time() - start:.0f}s] {r["regime"]} / {r["column"]} / seed {r["seed"]}'
            if r['ok']:
                print(f'{tag}: {json.dumps(r["results"])} cpu {r["cpu"]:.0f}s wall {r["wall"]:.0f}s', flush=True)
            else:
                print(f'{tag}: FAILED {r["error"]}', flush=True)
    return done

def _command(argv):
    words = list(argv)
    for i, w in enumerate(words):
        if w == '--note':
            del words[i:i + 2]
            break
    return 'python bench/leaderboard.py ' + shlex.join(w for w in words if not w.startswith('--note='))

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog='\n\n'.join(__doc__.split('\n\n')[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--regimes', help='comma-separated: ' + ', '.join(REGIMES) + ' [default: all but placeholders]')
    parser.add_argument('--columns', help='comma-separated: ' + ', '.join(COLUMNS) + ' [default: all; a regime may '
        'restrict its own, e.g. stacked MNIST runs K=1 plain and SOM K=4]')
    parser.add_argument('--extra-column', action='append', metavar='NAME:FIELD=VALUE,...', help='define (and run) one '
        'more column, e.g. \'SOM K=4 balance:k=4,loss=rpgan,set=loss_kwargs.som_kwargs.g_weights=balance\'; fields: '
        'k, loss, topo, pack (a size or "regime"), set=KEY.PATH=VALUE and train=ARG=VALUE (a keyword of '
        'train.setup_training_loop_kwargs, e.g. train=som_sigma_end=0.5), set and train repeatable; it runs in every '
        'selected regime; give it again with --from-json to tabulate it')
    parser.add_argument('--seeds', help='seeds for every regime, e.g. 0-2 or 0,4 [default: the protocol\'s, 0..n-1]')
    parser.add_argument('--kimg', type=int, help='training length for every regime, to try things: recorded, and '
        'tabulated apart from the protocol\'s [default: the regime\'s]')
    parser.add_argument('--set', action='append', metavar='KEY.PATH=VALUE', help='override for every run (recorded, '
        'so tabulated apart), e.g. D_kwargs.layer_features=16')
    parser.add_argument('--quick', action='store_true', help=f'the quick subset: {", ".join(QUICK["regimes"])} x '
        f'{", ".join(QUICK["columns"])} x seeds 0-2 (15-20 min with --jobs=2 on 2 cores); its own records and table')
    parser.add_argument('--jobs', type=int, default=1, help='runs in parallel, one thread each [default: 1]')
    parser.add_argument('--json', metavar='FILE', help='records to append to and skip runs by [default: '
        'bench/runs/leaderboard.jsonl; --quick: bench/runs/leaderboard-quick.jsonl]')
    parser.add_argument('--from-json', metavar='FILE[,FILE]', help='no runs: the table of these records')
    parser.add_argument('--results', default=modes.RESULTS_MD, metavar='FILE', help='where the table goes [default: bench/RESULTS.md]')
    parser.add_argument('--note', default='', help='a line written under the table')
    parser.add_argument('--no-write', action='store_true', help='print the table only; leave --results alone')
    opts = parser.parse_args(argv)
    try:
        return _main(opts, argv if argv is not None else sys.argv[1:])
    except UsageError as err:
        raise SystemExit(f'leaderboard.py: error: {err}') from None

def _main(opts, argv):
    if opts.jobs < 1 or (opts.kimg is not None and opts.kimg < 1):
        raise UsageError('--jobs and --kimg must be at least 1')
    try:
        if opts.seeds is not None and not modes.parse_int_list(opts.seeds):
            raise ValueError
    except ValueError:
        raise UsageError(f'--seeds: expected seeds such as 0-2 or 0,4, got {opts.seeds!r}') from None
    try:
        modes.parse_set(opts.set)
    except SystemExit as err:
        raise UsageError(str(err)) from None
    columns = dict(COLUMNS)
    for text in opts.extra_column or []:
        name, column = parse_column(text)
        if name in columns:
            raise UsageError(f'--extra-column: {name!r} is already a column; choose another name')
        columns[name] = column
    plan = plan_jobs(opts, columns)
    if not plan:
        raise UsageError('no cell in the selection: the regimes chosen run none of the columns chosen')
    mode = QUICK if opts.quick else FULL
    json_path = opts.json or mode['json']
    jobs = [j for cells in plan.values() for js in cells.values() for j in js]
    if opts.from_json:
        records = load_records([p.strip() for p in opts.from_json.split(',') if p.strip()])
        todo = []
    else:
        records = load_records([json_path])
        todo = to_run(jobs, records)
        print(f'{len(jobs)} runs in the selection, {len(jobs) - len(todo)} already in {json_path}, {len(todo)} to run', flush=True)
    new = run_jobs(todo, opts.jobs, json_path)
    notes = ([f'--seeds={opts.seeds} instead of the protocol\'s.'] if opts.seeds else []) + (
        [f'--kimg={opts.kimg} instead of the protocol\'s lengths.'] if opts.kimg else []) + (
        [f'--set {" ".join(opts.set)} on every run.'] if opts.set else [])
    table = build_table(records + new, plan, columns, notes=notes)
    print()
    print(table)
    if not opts.no_write:
        modes.write_results(table, _command(argv), opts.note, path=opts.results, markers=mode['markers'],
            place=PLACES[mode['markers']])
        print(f'\nWritten to {opts.results}')
    return 0 if all(r['ok'] for r in new) else 1

if __name__ == '__main__':
    sys.exit(main())
