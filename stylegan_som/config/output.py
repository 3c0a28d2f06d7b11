"""Output and starting point: where runs go, how often they are saved and measured, the seed, and --resume."""

import json
import os

import dnnlib
from .spec import Group, Option, UserError, check, comma_list
from .presets import DEFAULT_METRICS, MODE_METRICS, RESUME_SPECS, SMALL_CFGS
from .data import data_name, is_points

# Network arguments that only change speed/precision, not the parameters: a snapshot made with other values
# (e.g. fp16 on a GPU) can still continue its run (e.g. in fp32 on a CPU).
PERFORMANCE_KWARGS = ('num_fp16_res', 'conv_clamp', 'fp16_channels_last')

def use_builtin_mnist_for_metrics(mnist_dir=None):
    """Point the digit classifier of modes_stacked_mnist and modes_mnist at `mnist_dir` (the folder of idx files a
    run trains on) or else the built-in MNIST files (those the built-in stacked-MNIST set was made from), unless
    SGSOM_MNIST_DIR already names a folder."""
    if not os.environ.get('SGSOM_MNIST_DIR'):
        from stylegan_som.data import builtin # pylint: disable=import-outside-toplevel
        os.environ['SGSOM_MNIST_DIR'] = mnist_dir or builtin.idx_dataset_dir('mnist')

def _apply_metrics(opts, args):
    metrics, name = opts.metrics, data_name(args)
    if metrics is None and (opts.cfg in SMALL_CFGS or is_points(args)): # the dataset's mode-coverage metric
        metrics = [MODE_METRICS[name]] if name in MODE_METRICS else []
    elif metrics is None:
        metrics = list(DEFAULT_METRICS.get(opts.cfg, ['fid50k_full']))
    if opts.metric_names is not None: # the caller's metric registry (metrics/ sits above this package)
        bad = [m for m in metrics if m not in opts.metric_names]
        check(not bad, f'--metrics: unknown metric(s) {",".join(bad)}; choose from ' + ', '.join(opts.metric_names))
    args.metrics = metrics
    if {'modes_stacked_mnist', 'modes_mnist'} & set(metrics) and name in ('stacked-mnist', 'mnist'):
        path = str(args.training_set_kwargs.path) # --data=mnist: the built-in folder; or a folder of one's own
        use_builtin_mnist_for_metrics(path if name == 'mnist' and os.path.isdir(path) else None)

def _apply_resume(opts, args):
    """--resume: upstream's transfer sources by name, 'latest' under --outdir, or a pickle."""
    resume = opts.resume
    if resume is None:
        return
    if resume == 'noresume':
        opts.desc.add('resume', 'noresume')
    elif resume in RESUME_SPECS:
        opts.desc.add('resume', f'resume{resume}')
        args.resume_pkl = RESUME_SPECS[resume]
    elif resume == 'latest':
        from stylegan_som import snapshot # pylint: disable=import-outside-toplevel
        found = snapshot.find_latest_snapshot(opts.outdir)
        if found is None:
            print(f'--resume=latest: no snapshot under {opts.outdir}; starting a new run.')
        else:
            opts.desc.add('resume', 'resumecustom')
            args.resume_pkl = found
    else:
        check(dnnlib.util.is_url(resume, allow_file_urls=True) or os.path.isfile(resume), f'--resume: no such file: {resume}')
        opts.desc.add('resume', 'resumecustom')
        args.resume_pkl = resume

def _strip_performance(obj):
    if isinstance(obj, dict):
        return {k: _strip_performance(v) for k, v in obj.items() if k not in PERFORMANCE_KWARGS}
    return obj

def _mismatches(data, state, args):
    """What differs between the pickle's run and this one: networks (up to speed settings) and dataset."""
    reasons = []
    for what, key in [('generator', 'G_kwargs'), ('discriminator', 'D_kwargs')]:
        if _strip_performance(state[key]) != _strip_performance(json.loads(json.dumps(args[key]))):
            reasons.append(what)
    old_data, new_data = data.get('training_set_kwargs') or {}, args.training_set_kwargs
    for key in ('resolution', 'use_labels'):
        if old_data.get(key) != new_data.get(key):
            reasons.append(f'dataset {key}')
    old_name = os.path.splitext(os.path.basename(str(old_data.get('path', ''))))[0]
    new_name = os.path.splitext(os.path.basename(str(new_data.get('path', ''))))[0]
    if old_name != new_name:
        reasons.append(f'dataset ({old_name} vs {new_name})')
    return reasons

def continues_run(args):
    """Whether --resume continues the run that wrote the pickle (restoring optimizer states, counters, p and
    RNG) rather than starting a new run from its weights (upstream's transfer learning). It continues when the
    pickle carries a training state and was trained with the same networks on the same data."""
    path = args.resume_pkl
    if dnnlib.util.is_url(path):
        return False # upstream's pretrained pickles carry no training state
    from stylegan_som import legacy, snapshot # pylint: disable=import-outside-toplevel
    try:
        with open(path, 'rb') as f:
            data = legacy.load_network_pkl(f)
        state = snapshot.get_training_state(data)
    except Exception as err: # pylint: disable=broad-except
        raise UserError(f'--resume: cannot load {path}: {err}') from None
    if state is None:
        print(f'--resume: {path} has no training state; starting a new run from its weights.')
        return False
    reasons = _mismatches(data, state, args)
    if reasons:
        print(f'--resume: {path} was trained with a different {", ".join(reasons)}; starting a new run from its weights.')
        return False
    print(f'--resume: continuing the run of {path} at kimg {state["cur_nimg"] / 1000:.1f} (optimizer states, '
        'augmentation, counters and RNG restored).')
    snapshot.remove_stale_temp_files(os.path.dirname(os.path.abspath(path))) # left by a writer that was killed
    return True

def apply(opts, args):
    snap = 50 if opts.snap is None else opts.snap
    check(snap >= 1, f'--snap must be at least 1, got {snap}')
    args.image_snapshot_ticks = args.network_snapshot_ticks = snap
    args.random_seed = opts.seed
    if opts.seed != 0: # runs that differ only in the seed get told apart by name
        opts.desc.add('seed', f'seed{opts.seed}')
    _apply_metrics(opts, args)
    _apply_resume(opts, args)
    if args.get('resume_pkl') is not None: # last: the pickle's recorded kwargs are compared with the final ones
        if continues_run(args):
            args.resume_training_state = True
        else:
            args.ada_kimg = 100         # let ADA react fast at the start of a transfer
            args.ema_rampup = None      # the pretrained G is a good EMA start

def _resume_help():
    return ('Network pickle to start from (a snapshot of this code base trained with the same networks and data '
        'continues its run exactly), "latest" (the newest snapshot under --outdir), or one of upstream\'s '
        f'transfer-learning networks: {", ".join(RESUME_SPECS)} [default: noresume]')

GROUP = Group('Output and starting point', [
    Option('--outdir',       help='Parent folder of the run directories', metavar='DIR', default='training-runs', show_default=True),
    Option('--snap',         help='Ticks between network and image snapshots [default: 50]', type=int, metavar='TICKS'),
    Option('--metrics',      help='Metrics at each snapshot, comma-separated, or "none" [default: fid50k_full; none for tiny and cpu; the mode-coverage metric of toy and stacked-mnist data]', callback=comma_list, metavar='LIST'),
    Option('--seed',         help='Seed for initialisation, data order and noise [default: 0]', type=int, metavar='INT'),
    Option('--resume',       help=_resume_help, metavar='PKL'),
    Option('--trust-pickle', help='Load the --resume pickle even where it would run code this installation does not know (only for files you trust) [env: SGSOM_TRUST_PICKLES=1]', is_flag=True),
    Option('-n', '--dry-run', help='Show the full options and the run directory, then stop', is_flag=True),
    Option('--verbose',      help='Print the full options (always in the run\'s training_options.json) and more detail', is_flag=True),
], apply)
