"""Calculate quality metrics for a training snapshot or any compatible network pickle.

Same interface and numbers as StyleGAN2-ADA's calc_metrics.py, plus the mode-coverage benchmarks and options for
machines without internet. Results are printed as JSON lines and appended to `metric-<name>.jsonl` next to the
pickle (when the pickle is a local file).
"""

import copy
import glob
import json
import os
import re
import tempfile

import click
import torch

import dnnlib
from metrics import metric_main
from metrics import metric_utils
from metrics import mode_coverage
from stylegan_som import legacy
from stylegan_som.config.rundir import outdir_problem

#----------------------------------------------------------------------------

# Dataset classes recorded by upstream pickles, and their equivalents here.
_DATASET_CLASS_ALIASES = {
    'training.dataset.ImageFolderDataset': 'stylegan_som.data.images.ImageFolderDataset',
}

def find_latest_snapshot(outdir='training-runs'):
    """Newest network-snapshot-NNNNNN.pkl (or .safetensors) of the newest run (highest run id) under `outdir` that has one.
    Returns (path, note) where note mentions newer runs without snapshots; raises IOError if there is none."""
    if not os.path.isdir(outdir):
        raise IOError(f'No --network given and no run directory {os.path.abspath(outdir)} to take the newest snapshot from')
    runs = []
    for name in os.listdir(outdir):
        m = re.match(r'^(\d+)-', name)
        if m and os.path.isdir(os.path.join(outdir, name)):
            runs.append((int(m.group(1)), name))
    skipped = []
    for _run_id, name in sorted(runs, reverse=True):
        snapshots = []
        for path in glob.glob(os.path.join(glob.escape(os.path.join(outdir, name)), 'network-snapshot-*')):
            m = re.fullmatch(r'network-snapshot-(\d+)\.(pkl|safetensors)', os.path.basename(path)) # the pickle where both
            if m:
                snapshots.append((int(m.group(1)), m.group(2) == 'pkl', path))
        if snapshots:
            note = f' (newer runs without snapshots: {", ".join(skipped)})' if skipped else ''
            return max(snapshots)[2], note
        skipped.append(name)
    raise IOError(f'No --network given and no network-snapshot-*.pkl in any run under {os.path.abspath(outdir)}')

#----------------------------------------------------------------------------

def _apply_local_files(args):
    # Module-level settings do not survive torch.multiprocessing's spawn; every process applies them itself.
    if args.inception is not None:
        metric_utils.set_detector_file(metric_utils.INCEPTION_URL, args.inception)
    if args.vgg16 is not None:
        metric_utils.set_detector_file(metric_utils.VGG16_URL, args.vgg16)
    if args.mnist is not None:
        mode_coverage.set_mnist_dir(args.mnist)

def subprocess_fn(rank, args, temp_dir, local_rank=None):
    """One metric process: of a --gpus=N launch, or (local_rank given) one that torchrun started."""
    if args.num_gpus > 1 and local_rank is None:
        dnnlib.util.Logger(should_flush=True) # a spawned process; the parent's logger covers the single-process case
    _apply_local_files(args)
    from torch_utils import custom_ops, dist_util, training_stats # deferred: only the metric processes need them

    if local_rank is not None:
        device = torch.device('cuda', local_rank) if torch.cuda.is_available() else torch.device('cpu')
        if device.type == 'cuda':
            torch.cuda.set_device(device)
        dist_util.init_process_group('nccl' if device.type == 'cuda' else 'gloo', 'env://')
    elif args.num_gpus > 1:
        device = torch.device('cuda', rank)
        init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
        if os.name == 'nt':
            init_method = 'file:///' + init_file.replace('\\', '/')
            dist_util.init_process_group('gloo', init_method, rank=rank, world_size=args.num_gpus)
        else:
            dist_util.init_process_group('nccl', f'file://{init_file}', rank=rank, world_size=args.num_gpus)
    else:
        device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')

    training_stats.init_multiprocessing(rank=rank, sync_device=(device if args.num_gpus > 1 else None))
    if rank != 0 or not args.verbose:
        custom_ops.verbosity = 'none'

    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False # the reference numbers were computed without TF32
        torch.backends.cudnn.allow_tf32 = False
    G = copy.deepcopy(args.G).eval().requires_grad_(False).to(device)
    if rank == 0 and args.verbose:
        _print_summary(G, device)

    for metric in args.metrics:
        if rank == 0 and args.verbose:
            print(f'Calculating {metric}...')
        progress = metric_utils.ProgressMonitor(verbose=args.verbose)
        result_dict = metric_main.calc_metric(metric=metric, G=G, dataset_kwargs=args.dataset_kwargs,
            num_gpus=args.num_gpus, rank=rank, device=device, progress=progress, max_items=args.max_items)
        if rank == 0:
            metric_main.report_metric(result_dict, run_dir=args.run_dir, snapshot_pkl=args.network_pkl)
        if rank == 0 and args.verbose:
            print()

    if rank == 0 and args.verbose:
        print('Exiting...')
    if args.num_gpus > 1:
        dist_util.teardown() # every rank computed the same metrics; none is left waiting

def _print_summary(G, device):
    from torch_utils import misc
    z = torch.empty([1, G.z_dim], device=device)
    inputs = [z, torch.empty([1, legacy.label_dim(G)], device=device)] if legacy.takes_labels(G) else [z]
    try:
        misc.print_module_summary(G, inputs)
    except Exception as e: # the summary is a courtesy; some generators (e.g. 2-D toys) do not fit its table
        print(f'(No network summary: {type(e).__name__}: {e})')

#----------------------------------------------------------------------------

class CommaSeparatedList(click.ParamType):
    name = 'list'

    def convert(self, value, param, ctx):
        _ = param, ctx
        if isinstance(value, list):
            return value
        if value is None or value.lower() == 'none' or value == '':
            return []
        return value.split(',')

#----------------------------------------------------------------------------

@click.command()
@click.pass_context
@click.option('network_pkl', '--network', help='Network pickle (or .safetensors weights file) to evaluate, a path or URL [default: newest snapshot under ./training-runs]', metavar='PATH')
@click.option('--metrics', help='Metrics to compute, comma-separated, or "none"', type=CommaSeparatedList(), default='fid50k_full', show_default=True)
@click.option('--data', help='Real images to compare with, a folder or zip [default: the training set recorded in the pickle]', metavar='PATH')
@click.option('--mirror', help='Add x-flipped copies of the real images, as when training with --mirror [default: as recorded]', type=bool, metavar='BOOL')
@click.option('--gpus', help='How many GPUs to split the work over', type=int, default=1, metavar='INT', show_default=True)
@click.option('--verbose', help='Print progress and details', type=bool, default=True, metavar='BOOL', show_default=True)
@click.option('--inception', help=f'Local Inception-v3 detector file (.pt) instead of downloading [env: {metric_utils.INCEPTION_ENV}]', metavar='PATH')
@click.option('--vgg16', help=f'Local VGG16 feature network file (.pt) instead of downloading [env: {metric_utils.VGG16_ENV}]', metavar='PATH')
@click.option('--mnist', help=f'Directory of the MNIST idx files, for modes_stacked_mnist and modes_mnist [env: {mode_coverage.MNIST_DIR_ENV}]', metavar='DIR')
@click.option('--max-items', help=f'Smoke tests: cap every sample count at N; results are not comparable [env: {metric_utils.MAX_ITEMS_ENV}]', type=click.IntRange(min=1), metavar='N')
@click.option('--trust-pickle', help='Load network pickles even where they would run code this installation does not know (only for files you trust) [env: SGSOM_TRUST_PICKLES=1]', is_flag=True)

def calc_metrics(ctx, network_pkl, metrics, data, mirror, gpus, verbose, inception, vgg16, mnist, max_items, trust_pickle):
    """Calculate quality metrics for a previous training run or a network pickle.

    Examples:

    \b
    # Newest snapshot of the newest run under ./training-runs; the result goes next to it.
    python calc_metrics.py --metrics=fid50k_full

    \b
    # A snapshot of a run: options looked up in the pickle, result appended to metric-pr50k3_full.jsonl there.
    python calc_metrics.py --metrics=pr50k3_full \\
        --network=training-runs/00000-cifar10-auto1/network-snapshot-000000.pkl

    \b
    # A pickle from elsewhere: give the dataset; offline, give the detector file too.
    python calc_metrics.py --metrics=fid50k_full --data=datasets/cifar10.zip --mirror=1 \\
        --network=cifar10.pkl --inception=inception-2015-12-05.pt

    Available metrics:

    \b
      StyleGAN2-ADA paper:
        fid50k_full  FID, all real images vs 50k generated.
        kid50k_full  KID, all real images (up to 1M) vs 50k generated.
        pr50k3_full  Improved precision and recall (k=3), up to 200k real vs 50k generated.
        is50k        Inception score of 50k generated images (the CIFAR-10 protocol).

    \b
      Earlier StyleGAN papers:
        fid50k       FID, 50k real vs 50k generated.
        kid50k       KID, 50k real vs 50k generated.
        pr50k3       Precision and recall (k=3), 50k real vs 50k generated.
        ppl2_wend    Path length in W, path ends, whole image (StyleGAN2 paper).
        ppl_zfull    Path length in Z, whole paths, face crop.
        ppl_wfull    Path length in W, whole paths, face crop.
        ppl_zend     Path length in Z, path ends, face crop.
        ppl_wend     Path length in W, path ends, face crop.

    \b
      Mode coverage (no dataset or downloaded weights needed):
        modes_ring8          Covered modes, high-quality share, reverse KL: 8 Gaussians on a ring (2-D G).
        modes_grid25         The same for a 5x5 grid of Gaussians (2-D G).
        modes_grid25_unequal The same for grid25 with unequal mode weights (10:1), KL against those weights (2-D G).
        modes_stacked_mnist  Covered digit triples out of 1,000, KL, share read with confidence (3-channel 28x28/32x32 G; --mnist).
        modes_mnist          Covered digits out of 10, KL, share read with confidence (1-channel MNIST-sized G; --mnist).

    \b
    Feature detectors are downloaded from upstream's URLs into the dnnlib cache (~/.cache/dnnlib or
    $DNNLIB_CACHE_DIR). Offline, put the file there (the error message names the path) or use
    --inception / --vgg16.
    """
    with dnnlib.util.Logger(should_flush=True):
        _calc_metrics(ctx, network_pkl, metrics, data, mirror, gpus, verbose, inception, vgg16, mnist, max_items, trust_pickle)

def _calc_metrics(ctx, network_pkl, metrics, data, mirror, gpus, verbose, inception, vgg16, mnist, max_items, trust_pickle=False):
    args = dnnlib.EasyDict(metrics=metrics, num_gpus=gpus, network_pkl=network_pkl, verbose=verbose,
        inception=inception, vgg16=vgg16, mnist=mnist, max_items=max_items)
    unknown = [metric for metric in args.metrics if not metric_main.is_valid_metric(metric)]
    if unknown: # one line naming what was wrong, and what would be right
        ctx.fail(f'--metrics: unknown metric(s) {",".join(unknown)}; choose from {", ".join(metric_main.list_valid_metrics())}')
    if not args.num_gpus >= 1:
        ctx.fail('--gpus must be at least 1')
    from torch_utils import dist_util
    dist_env = dist_util.env_ranks() # started by torchrun: its processes do the work, on CPUs too
    if dist_env is not None:
        if gpus not in (1, dist_env[2]):
            ctx.fail(f'--gpus={gpus} but torchrun started {dist_env[2]} processes')
        args.num_gpus = dist_env[2]
        args.verbose = verbose = verbose and dist_env[0] == 0
        try:
            dist_util.collective_timeout()
        except dist_util.DistConfigError as e:
            ctx.fail(str(e))
    elif args.num_gpus > 1 and torch.cuda.device_count() < args.num_gpus:
        ctx.fail(f'--gpus={args.num_gpus} but only {torch.cuda.device_count()} CUDA device(s) are available')
    _apply_local_files(args)
    needs = [metric_main.get_metric_needs(metric) for metric in args.metrics]

    # Network.
    note = None
    if network_pkl is None:
        try:
            network_pkl, note = find_latest_snapshot('training-runs')
        except IOError as e:
            raise click.ClickException(str(e))
        args.network_pkl = network_pkl
    elif not dnnlib.util.is_url(network_pkl, allow_file_urls=True) and not os.path.isfile(network_pkl):
        ctx.fail(f'--network must point to a file or URL: {network_pkl}')
    # Results go next to a local pickle (upstream writes them only into run directories); checked before any output.
    args.run_dir = None
    if os.path.isfile(network_pkl):
        run_dir = os.path.dirname(os.path.abspath(network_pkl))
        problem = outdir_problem(run_dir)
        if problem is None:
            args.run_dir = run_dir
            args.network_pkl = os.path.abspath(network_pkl)
        else:
            click.echo(f'Warning: the results go next to the pickle, but {problem}: they are only printed', err=True)
    if note is not None:
        print(f'No --network given: using the newest snapshot of the newest run, {network_pkl}{note}')
    if args.verbose:
        print(f'Loading network from "{network_pkl}"...')
    try:
        with dnnlib.util.open_url(network_pkl, verbose=args.verbose) as f:
            network_dict = legacy.load_network_pkl(f, trust=(trust_pickle or None))
    except IOError as e:
        raise click.ClickException(str(e))
    args.G = network_dict['G_ema'] # subclass of torch.nn.Module

    # Dataset, when some metric needs one.
    args.dataset_kwargs = dnnlib.EasyDict()
    if any(n.data for n in needs):
        if data is not None:
            args.dataset_kwargs = dnnlib.EasyDict(class_name='stylegan_som.data.images.ImageFolderDataset', path=data)
            origin = '--data'
        elif network_dict['training_set_kwargs'] is not None:
            args.dataset_kwargs = dnnlib.EasyDict(network_dict['training_set_kwargs'])
            name = args.dataset_kwargs.get('class_name')
            args.dataset_kwargs.class_name = _DATASET_CLASS_ALIASES.get(name, name)
            origin = 'the training_set_kwargs recorded in the pickle; use --data to choose another'
        else:
            ctx.fail('Could not look up dataset options; please specify --data')
        args.dataset_kwargs.resolution = args.G.img_resolution
        args.dataset_kwargs.use_labels = (legacy.label_dim(args.G) != 0)
        if mirror is not None:
            args.dataset_kwargs.xflip = mirror
        if args.verbose:
            print('Dataset options:')
            print(json.dumps(args.dataset_kwargs, indent=2))
        try: # fail here, once, rather than in every process
            dnnlib.util.construct_class_by_name(**args.dataset_kwargs).close()
        except Exception as e:
            raise click.ClickException(f'Cannot open the dataset (from {origin}): {e}')

    # Detector files and the MNIST classifier are fetched or trained here, once, before any process starts.
    try:
        for url in dict.fromkeys(url for n in needs for url in n.detectors):
            metric_utils.resolve_detector(url, verbose=args.verbose)
        if any(n.mnist for n in needs):
            mode_coverage.get_mnist_classifier(verbose=args.verbose)
    except (IOError, RuntimeError) as e:
        raise click.ClickException(str(e))

    if args.verbose:
        print('Launching processes...')
    if dist_env is not None:
        subprocess_fn(rank=dist_env[0], args=args, temp_dir=None, local_rank=dist_env[1])
        return
    with tempfile.TemporaryDirectory() as temp_dir:
        if args.num_gpus == 1:
            subprocess_fn(rank=0, args=args, temp_dir=temp_dir)
        else:
            torch.multiprocessing.spawn(fn=subprocess_fn, args=(args, temp_dir), nprocs=args.num_gpus)

#----------------------------------------------------------------------------

if __name__ == "__main__":
    calc_metrics() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
