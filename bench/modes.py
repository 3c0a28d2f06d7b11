"""Mode-coverage study on CPU: SOM heads (K = 1, 4, 9, ...) against the K=1 baseline with the same networks and
budget, on ring8, grid25 and stacked MNIST, over several seeds. Writes a table to bench/RESULTS.md.

    python bench/modes.py                                          # ring8 + grid25, K = 1, 4, 9, seeds 0-9
    python bench/modes.py --datasets=ring8 --ks=1,9 --seeds=0-2 --jobs=2
    python bench/modes.py --datasets=stacked-mnist --ks=1,4 --seeds=0-2 --d-width=1,0.25   # and D at 1/4 width
    python bench/modes.py --datasets=ring8 --set loss_kwargs.r1_gamma=0.1 --no-write   # try a setting
    python bench/modes.py --datasets=stacked-mnist --ks=4 --seeds=0 --kimg=850 --threads=2   # one run on both cores

Every run is `train.py --cfg=<toy or stacked-mnist> --data=<dataset> --som-d=K --seed=S` (plus --kimg, --loss,
--som-topo, --d-width and --set overrides), trained in a worker process with one thread (--threads=N: N threads, whose
idle threads spin when the runs fit the cores, --omp-wait; or
--procs=N: N processes of one thread each, as train.py --gpus=N on a CPU, each with 1/N of the batch, so batch norm
sees smaller batches: rows of their own); its last snapshot's G_ema is scored with the dataset's metric
(modes_ring8, modes_grid25, modes_grid25_unequal, modes_stacked_mnist: see metrics/mode_coverage.py). Reported per
(dataset, D width, length, --set overrides, K): mean and standard error over the seeds of the covered modes, the
high-quality share and the reverse KL (stacked MNIST: the KL, and as high quality the share of samples whose three
digits are read with confidence), the number of runs that covered every mode, and wall and CPU seconds per run
(training and scoring; CPU time is the run's own processes', so other load on the machine inflates wall time only).
Rows with K > 1 show the K=1 row with the same data, D, length and overrides beside them (overrides of the SOM map,
loss_kwargs.som_kwargs.*, do not apply at K=1). With --from-json, --kimg picks the runs of one length.

The table goes between the markers <!-- modes:begin --> and <!-- modes:end --> in bench/RESULTS.md (added at
the end the first time), with the date, the machine and the command; raw per-run results, each with the run's
training options, go to --json.
"""

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_MD = os.path.join(REPO, 'bench', 'RESULTS.md')
BEGIN, END = '<!-- modes:begin -->', '<!-- modes:end -->'

DATASETS = {
    # dataset: (config, metric, number of modes)
    'ring8':         ('toy', 'modes_ring8', 8),
    'grid25':        ('toy', 'modes_grid25', 25),
    'grid25-unequal': ('toy', 'modes_grid25_unequal', 25), # reverse KL against its unequal mode weights
    'stacked-mnist': ('stacked-mnist', 'modes_stacked_mnist', 1000),
}

#----------------------------------------------------------------------------

def parse_int_list(text):
    """'1,4,9' or '0-9' or '0-2,7' -> sorted unique ints."""
    out = set()
    for part in text.split(','):
        part = part.strip()
        if not part:
            continue
        if '-' in part:
            lo, hi = part.split('-', 1)
            out.update(range(int(lo), int(hi) + 1))
        else:
            out.add(int(part))
    return sorted(out)

def parse_set(items):
    """['a.b=1', ...] -> [(['a', 'b'], 1), ...]; values are JSON where they parse, else strings."""
    out = []
    for item in items or []:
        if '=' not in item:
            raise SystemExit(f'--set {item!r}: expected KEY.PATH=VALUE')
        key, value = item.split('=', 1)
        try:
            value = json.loads(value)
        except ValueError:
            pass
        out.append((key.split('.'), value))
    return out

def apply_set(args, overrides):
    import dnnlib
    for path, value in overrides:
        node = args
        for key in path[:-1]:
            if key not in node:
                node[key] = dnnlib.EasyDict()
            node = node[key]
        node[path[-1]] = value

def stderr_mean(values):
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(values) == 0:
        return float('nan'), float('nan')
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(se)

#----------------------------------------------------------------------------
# One run, in a worker process.

def omp_wait_policy(choice, jobs, threads):
    """OMP_WAIT_POLICY for the runs. Threads that spin between ops train 1.4x (DCGAN, stacked MNIST) to 2x
    (StyleGAN2 --cfg=tiny) faster on an otherwise idle machine, but 4-6x slower when they share its cores (train.py
    keeps passive for that reason). Here the runs are all the work: spin when they use more than one thread and
    fit the cores together; one thread has no team to wait for."""
    if choice != 'auto':
        return choice.upper()
    if 'OMP_WAIT_POLICY' in os.environ:
        return os.environ['OMP_WAIT_POLICY']
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    return 'ACTIVE' if threads > 1 and jobs * threads <= cores else 'PASSIVE'

def run_one(job):
    """Train one configuration and score its final G_ema. Returns a dict of results (or the error)."""
    sys.path.insert(0, REPO)
    if 'torch' not in sys.modules: # a fresh worker: the policy only counts before torch loads its OpenMP runtime
        os.environ['OMP_WAIT_POLICY'] = job.get('omp_wait', 'PASSIVE')
    import torch
    torch.set_num_threads(job['threads'])
    import dnnlib
    import train
    from metrics import metric_main
    from stylegan_som import legacy, training_loop

    d_width = job.get('d_width', 1)
    width = '' if d_width == 1 else f'-dwidth{d_width:g}'
    out_dir = tempfile.mkdtemp(prefix=f'modes-{job["dataset"]}{width}-K{job["k"]}-s{job["seed"]}-')
    # The job may name its own config and metric (bench/leaderboard.py's regimes), and more train.py settings.
    cfg, metric, _num_modes = DATASETS.get(job['dataset'], (None, None, None))
    cfg, metric = job.get('cfg', cfg), job.get('metric', metric)
    procs = job.get('procs', 1)
    t0, c0 = time.time(), _cpu_seconds()
    try:
        kwargs = dict(data=job['dataset'], cfg=cfg, seed=job['seed'], kimg=job['kimg'], gpus=procs, metrics=[],
            som_d=job['k'], som_topo=job['topo'], loss=job['loss'], snap=10**9, tick=job['tick'],
            d_width=(None if d_width == 1 else d_width))
        _desc, args = train.setup_training_loop_kwargs(**dict(kwargs, **job.get('train_kwargs', {})))
        # The pool's workers are daemonic processes, which may not start DataLoader workers of their own: load
        # images in-process (2-D points do so anyway).
        args.data_loader_kwargs.num_workers = 0
        apply_set(args, job['overrides'])
        args.run_dir = out_dir
        # No training_stats.init_multiprocessing: one process (rank 0, no sync device) is its default, and an
        # init after another run's first update in the same process (e.g. a test session) is refused.
        log = open(os.path.join(out_dir, 'log.txt'), 'w')
        stdout = sys.stdout
        sys.stdout = log # the training loop's progress lines go to the run's log
        try:
            if procs > 1:
                torch.multiprocessing.spawn(fn=_train_rank, args=(args, out_dir), nprocs=procs)
            else:
                loop_args = dict(args)
                callbacks = metric_main.training_callbacks(loop_args.pop('metrics', []))
                training_loop.training_loop(rank=0, device=torch.device('cpu'), snapshot_callbacks=callbacks, **loop_args)
        finally:
            sys.stdout = stdout
            log.close()
        train_wall, train_cpu = time.time() - t0, _cpu_seconds() - c0
        snaps = sorted(f for f in os.listdir(out_dir) if f.startswith('network-snapshot-'))
        with open(os.path.join(out_dir, snaps[-1]), 'rb') as f:
            G = legacy.load_network_pkl(f)['G_ema']
        if metric in ('modes_stacked_mnist', 'modes_mnist'): # the digit classifier's training data
            train.use_builtin_mnist_for_metrics()
        torch.manual_seed(job['seed']) # the metric's latents
        result = metric_main.calc_metric(metric=metric, G=G, dataset_kwargs=args.training_set_kwargs, num_gpus=1,
            rank=0, device=torch.device('cpu'))
        res = dict(result.results)
        return dict(job, ok=True, results=res, train_wall=train_wall, train_cpu=train_cpu,
            wall=time.time() - t0, cpu=_cpu_seconds() - c0,
            som_kwargs=dict(args.loss_kwargs.get('som_kwargs') or {}), # the map as run (the config's defaults change)
            training_options=json.loads(json.dumps(args, default=str))) # and everything else, as training_options.json
    except Exception as err: # pylint: disable=broad-except
        import traceback
        return dict(job, ok=False, error=f'{type(err).__name__}: {err}', trace=traceback.format_exc())
    finally:
        if job['keep'] is None:
            shutil.rmtree(out_dir, ignore_errors=True)
        else:
            dest = os.path.join(job['keep'], os.path.basename(out_dir))
            shutil.move(out_dir, dest)

def _cpu_seconds():
    # This process's CPU time and that of its finished children (--procs' training processes).
    import resource
    return time.process_time() + sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])

def _run_in_process(ctx, job):
    receive, send = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_send_result, args=(job, send))
    worker.start()
    send.close()
    try:
        result = receive.recv()
    except EOFError: # the worker died without a result (killed, out of memory): a failed run, not a crash
        result = None
    worker.join()
    if result is None:
        result = dict(job, ok=False, error=f'the run\'s process exited with code {worker.exitcode}', trace='')
    return result

def _send_result(job, send):
    send.send(run_one(job))

def _train_rank(rank, args, out_dir):
    # One of --procs training processes; train.py's own (gloo, one thread each), its log lines to the run's log only.
    sys.path.insert(0, REPO)
    import train
    sys.stdout = open(os.devnull, 'w')
    from metrics import metric_main
    train.subprocess_fn(rank, args, out_dir, device_type='cpu', callbacks_fn=metric_main.training_callbacks)

#----------------------------------------------------------------------------
# Table.

def summarise(runs):
    """{(dataset, D width, kimg, settings, k): summary dict} over the successful runs. Runs of another length
    (--kimg) or with other --set overrides are rows of their own."""
    groups = {}
    for r in runs:
        if r['ok']:
            groups.setdefault(_row_key(r) + (r['k'],), []).append(r)
    out = {}
    order = lambda key: (key[0], -key[1], key[2] or 0, key[3], key[4])
    for key in sorted(groups, key=order):
        rs = groups[key]
        dataset, d_width, k = key[0], key[1], key[-1]
        _cfg, metric, num_modes = DATASETS[dataset]
        res = [r['results'] for r in rs]
        s = dict(dataset=dataset, d_width=d_width, k=k, runs=len(rs), num_modes=num_modes,
            modes=stderr_mean([x[metric] for x in res]),
            full=sum(int(x[metric] == num_modes) for x in res),
            wall=stderr_mean([r['wall'] for r in rs]), cpu=stderr_mean([r['cpu'] for r in rs]))
        hq = [x.get(metric + '_hq') for x in res] # stacked MNIST: not in runs recorded before it was measured
        s['hq'] = stderr_mean([100 * h for h in hq] if None not in hq else [])
        if dataset == 'stacked-mnist':
            s['kl'] = stderr_mean([x[metric + '_kl'] for x in res])
        else:
            s['rkl'] = stderr_mean([x[metric + '_rkl'] for x in res])
        out[key] = s
    return out

def _d_width(run):
    return float(run.get('d_width', 1)) # runs recorded before --d-width had full-width D

def _row_key(run):
    """(dataset, D width, kimg or None for the config's, sorted 'key.path=value' overrides)."""
    settings = tuple(sorted(f'{".".join(path)}={value if isinstance(value, str) else json.dumps(value)}'
        for path, value in run.get('overrides') or []))
    procs = run.get('procs', 1) # N processes normalise batches of 1/N in D's and G's batch norm: another setting
    return (run['dataset'], _d_width(run), run.get('kimg'), settings + ((f'procs={procs}',) if procs > 1 else ()))

def _baseline_key(key):
    """The K=1 row beside a row: same data, D, length and overrides, less those of the SOM map (no map at K=1)."""
    dataset, d_width, kimg, settings, _k = key
    return (dataset, d_width, kimg, tuple(s for s in settings if not s.startswith('loss_kwargs.som_kwargs.')), 1)

def _row_name(key):
    dataset, d_width, kimg, settings, _k = key
    parts = ([f'D at {d_width:g} of G\'s width'] if d_width != 1 else []) + ([f'{kimg} kimg'] if kimg else [])
    return ', '.join([dataset] + parts + [s.replace('loss_kwargs.', '', 1) for s in settings])

def _fmt(pair, digits):
    mean, se = pair
    if not np.isfinite(mean):
        return 'n/a'
    return f'{mean:.{digits}f} ± {se:.{digits}f}'

def _fmt_share(pair):
    return _fmt(pair, 1) + ('%' if np.isfinite(pair[0]) else '')

def _quality(s):
    if s['dataset'] == 'stacked-mnist':
        hq = f' / {_fmt_share(s["hq"])}' if np.isfinite(s['hq'][0]) else ''
        return f'{_fmt(s["modes"], 1)}{hq} / KL {_fmt(s["kl"], 3)}'
    return f'{_fmt(s["modes"], 2)} / {_fmt_share(s["hq"])} / {_fmt(s["rkl"], 3)}'

def format_table(summary):
    lines = ['| dataset | K | runs | modes (all covered) | high quality | reverse KL | wall s/run | CPU s/run | K=1, same budget: modes / HQ / rKL |',
             '| --- | --- | --- | --- | --- | --- | --- | --- | --- |']
    for key, s in summary.items():
        base = summary.get(_baseline_key(key))
        beside = _quality(base) if (base is not None and s['k'] != 1) else ''
        kl = 'KL ' + _fmt(s['kl'], 3) if s['dataset'] == 'stacked-mnist' else _fmt(s['rkl'], 3)
        lines.append(f'| {_row_name(key)} | {s["k"]} | {s["runs"]} | {_fmt(s["modes"], 2)} ({s["full"]}/{s["runs"]}) | {_fmt_share(s["hq"])} | {kl} | '
            f'{s["wall"][0]:.0f} | {s["cpu"][0]:.0f} | {beside} |')
    return '\n'.join(lines)

def write_results(table, command, note, path=RESULTS_MD, markers=(BEGIN, END), place=None):
    """Replace the section between the markers in path, or the first time place it with place(text, section)
    (default: at the end under a heading of its own)."""
    begin, end = markers
    machine = f'{platform.node() or "unknown host"}, {os.cpu_count()} CPU core(s), {platform.processor() or platform.machine()}'
    try:
        load = ', load average %.1f %.1f %.1f' % os.getloadavg()
    except OSError:
        load = ''
    section = '\n'.join([begin, '', f'Run {time.strftime("%Y-%m-%d %H:%M")} on {machine}{load}.', '',
        f'Command: `{command}`', '', table, ''] + ([note, ''] if note else []) + [end])
    text = open(path).read() if os.path.isfile(path) else '# Benchmark results\n'
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    elif place is not None:
        text = place(text, section)
    else:
        text = text.rstrip('\n') + '\n\n## Mode coverage (issue 7): `bench/modes.py`\n\n' + section + '\n'
    with open(path, 'w') as f:
        f.write(text)

#----------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--datasets', default='ring8,grid25', help='comma-separated: ' + ', '.join(DATASETS))
    parser.add_argument('--ks', default='1,4,9', help='numbers of SOM heads, e.g. 1,4,9')
    parser.add_argument('--seeds', default='0-9', help='seeds, e.g. 0-9 or 0,3,5')
    parser.add_argument('--kimg', type=int, default=None, help='training length [default: the config\'s]')
    parser.add_argument('--tick', type=int, default=None, help='kimg between progress lines in the run logs')
    parser.add_argument('--loss', default=None, help='--loss of train.py [default: the config\'s]')
    parser.add_argument('--topo', default=None, help='--som-topo of train.py for K > 1 [default: grid, linear for non-square K]')
    parser.add_argument('--d-width', default='1', help='--d-width of train.py, comma-separated, e.g. 1,0.25 [default: 1]')
    parser.add_argument('--set', action='append', metavar='KEY.PATH=VALUE', help='override a training_loop kwarg, e.g. loss_kwargs.r1_gamma=0.1')
    parser.add_argument('--jobs', type=int, default=1, help='runs in parallel (one thread each)')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--procs', type=int, default=1,
        help='training processes per run (train.py --gpus on a CPU), one thread each; with --jobs=1 only')
    parser.add_argument('--omp-wait', default='auto', choices=['auto', 'active', 'passive'],
        help='OMP_WAIT_POLICY of the runs [default: the environment\'s, else active when runs of several threads '
        'fit the cores together (--jobs x --threads), else passive]')
    parser.add_argument('--keep', default=None, metavar='DIR', help='keep the run directories here')
    parser.add_argument('--json', default=None, metavar='FILE', help='append raw per-run results (JSON lines)')
    parser.add_argument('--note', default='', help='a line written under the table')
    parser.add_argument('--no-write', action='store_true', help='print the table only; leave RESULTS.md alone')
    parser.add_argument('--from-json', default=None, metavar='FILE', help='no runs: tabulate the runs in a --json file')
    opts = parser.parse_args(argv)

    datasets = [d.strip() for d in opts.datasets.split(',') if d.strip()]
    bad = [d for d in datasets if d not in DATASETS]
    if bad:
        parser.error(f'--datasets: unknown {", ".join(bad)}; choose from {", ".join(DATASETS)}')
    ks, seeds = parse_int_list(opts.ks), parse_int_list(opts.seeds)
    if not ks or min(ks) < 1 or not seeds:
        parser.error('--ks and --seeds need at least one value; K >= 1')
    try:
        d_widths = sorted({float(w) for w in opts.d_width.split(',') if w.strip()}, reverse=True)
    except ValueError:
        parser.error(f'--d-width: expected comma-separated fractions, got {opts.d_width!r}')
    if not d_widths or min(d_widths) <= 0:
        parser.error(f'--d-width: expected positive fractions, got {opts.d_width!r}')
    if opts.procs < 1 or (opts.procs > 1 and opts.jobs != 1):
        parser.error(f'--procs={opts.procs}: expected >= 1, and --jobs=1 with more than one '
            '(a run\'s processes take the cores)')
    overrides = parse_set(opts.set)
    omp_wait = omp_wait_policy(opts.omp_wait, opts.jobs, opts.threads)
    if opts.keep:
        os.makedirs(opts.keep, exist_ok=True)
    jobs = []
    for dataset in datasets:
        for k in ks:
            topo = opts.topo
            if topo is None and k > 1 and int(round(np.sqrt(k))) ** 2 != k:
                topo = 'linear'
            for d_width in d_widths:
                for seed in seeds:
                    jobs.append(dict(dataset=dataset, d_width=d_width, k=k, seed=seed, kimg=opts.kimg, tick=opts.tick,
                        loss=opts.loss, topo=(topo if k > 1 else None), overrides=overrides, threads=opts.threads,
                        procs=opts.procs, omp_wait=omp_wait, keep=opts.keep))

    runs = []
    start = time.time()
    if opts.from_json:
        with open(opts.from_json) as f:
            runs = [json.loads(line) for line in f if line.strip()]
        keep = {(j['dataset'], j['d_width'], j['k'], j['seed']) for j in jobs}
        runs = [r for r in runs if (r['dataset'], _d_width(r), r['k'], r['seed']) in keep
            and (opts.kimg is None or r.get('kimg') == opts.kimg)]
        jobs = []
    ctx = multiprocessing.get_context('spawn')
    # A pool's workers may not start processes of their own: with --procs, each run gets a process of its own.
    pool = (ctx.Pool(processes=max(min(opts.jobs, len(jobs)), 1), maxtasksperchild=1) if opts.procs == 1
        else contextlib.nullcontext())
    with pool:
        results = (pool.imap_unordered(run_one, jobs) if opts.procs == 1 else
            (_run_in_process(ctx, job) for job in jobs))
        for r in results:
            runs.append(r)
            tag = f'{r["dataset"]} K={r["k"]} seed={r["seed"]}' + (f' D width {r["d_width"]:g}' if r['d_width'] != 1 else '')
            if r['ok']:
                print(f'[{len(runs)}/{len(jobs)} {time.time() - start:.0f}s] {tag}: {json.dumps(r["results"])} '
                    f'wall {r["wall"]:.0f}s cpu {r["cpu"]:.0f}s', flush=True)
            else:
                print(f'[{len(runs)}/{len(jobs)}] {tag}: FAILED {r["error"]}\n{r["trace"]}', flush=True)
            if opts.json:
                with open(opts.json, 'a') as f:
                    f.write(json.dumps({k: v for k, v in r.items() if k != 'trace'}) + '\n')

    table = format_table(summarise(runs))
    print()
    print(table)
    if not opts.no_write:
        words = argv if argv is not None else sys.argv[1:]
        words = [w for w in words if not w.startswith('--note=')] # the note is printed below anyway
        if '--note' in words:
            i = words.index('--note')
            words = words[:i] + words[i + 2:]
        command = 'python bench/modes.py ' + ' '.join(words)
        write_results(table, command.strip(), opts.note)
        print(f'\nWritten to {RESULTS_MD}')
    return 0 if all(r['ok'] for r in runs) else 1

if __name__ == '__main__':
    sys.exit(main())
