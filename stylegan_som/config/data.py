"""Data: what D sees (--data and its labels, subset, x-flips) and how it is augmented."""

import os

import click

import dnnlib
from stylegan_som import plugins
from .spec import Group, Option, UserError, check
from .presets import small

def _augpipe_specs():
    from stylegan_som.augment import augpipe_specs # pylint: disable=import-outside-toplevel
    return augpipe_specs

def init_dataset_kwargs(data, cfg=None, require_pow2=True):
    """Map --data (and --cfg, for the built-in CIFAR-10 of --cfg=cifar) to dataset kwargs for
    dnnlib.util.construct_class_by_name, recording resolution, label use and size explicitly so that every
    process and metric sees the same dataset. Returns (kwargs, name for the run directory).
    require_pow2=False admits e.g. 28x28 images, for the small backbones."""
    from stylegan_som.data import dataset_kwargs_from_data # pylint: disable=import-outside-toplevel
    try:
        kwargs, name = dataset_kwargs_from_data(data, cfg, require_pow2=require_pow2)
    except (IOError, OSError, ValueError) as err: # the dataset code names the file; we name the flag
        raise UserError(f'--data: {err}') from None
    return dnnlib.EasyDict(kwargs), name

def default_workers(num_processes):
    """Upstream's 3 data-loading workers per process, but no more than this machine's cores split over the
    processes: more only oversubscribe a small machine (and make the DataLoader warn about it)."""
    try:
        cores = len(os.sched_getaffinity(0)) # the cores this process may run on (containers, taskset)
    except AttributeError: # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(3, cores // max(num_processes, 1)))

def data_name(args):
    """The dataset's short name, e.g. stacked-mnist for .../stacked-mnist.zip."""
    return os.path.splitext(os.path.basename(str(args.training_set_kwargs.path)))[0]

def is_points(args):
    return args.training_set_kwargs.class_name.endswith('.PointDataset')

def _apply_dataset(opts, args):
    pow2 = plugins.BACKBONES.info(opts.arch).pow2
    args.training_set_kwargs, name = init_dataset_kwargs(opts.data, opts.cfg, require_pow2=pow2)
    opts.desc.add('data', name)
    args.data_loader_kwargs = dnnlib.EasyDict(pin_memory=True, num_workers=default_workers(opts.gpus), prefetch_factor=2)
    data = args.training_set_kwargs
    if opts.cond:
        check(data.use_labels, f'--cond=1 needs labels, but {data.path} has none: give a dataset.json with '
            '"labels" (upstream dataset_tool layout) or one folder per class')
        opts.desc.add('cond', 'cond')
    else:
        data.use_labels = False
    if opts.subset is not None:
        n = data.max_size
        check(1 <= opts.subset <= n, f'--subset must be between 1 and {n}, got {opts.subset}')
        opts.desc.add('subset', f'subset{opts.subset}')
        if opts.subset < n:
            data.max_size = opts.subset
            data.random_seed = opts.seed
    if opts.mirror:
        opts.desc.add('mirror', 'mirror')
        data.xflip = True
    if is_points(args):
        name = data_name(args)
        check(plugins.BACKBONES.info(opts.arch).points, f'--data={name} is 2-D point data, which only '
            f'--arch={"|".join(plugins.BACKBONES.names(points=True))} models (e.g. --cfg=toy)')
        check(not opts.mirror, f'--mirror has no meaning for the 2-D points of --data={name}')
        check(opts.aug in (None, 'noaug'), f'--aug={opts.aug}: augmentation has no meaning for the 2-D points of '
            f'--data={name}; use --aug=noaug')
        args.data_loader_kwargs.num_workers = 0 # points are an array in memory; worker processes only cost

def _apply_augment(opts, args):
    aug = 'ada' if opts.aug is None else opts.aug
    if opts.aug is not None:
        opts.desc.add('aug', aug)
    out = dnnlib.EasyDict(ada_target=0.6) if aug == 'ada' else dnnlib.EasyDict()
    check(aug != 'fixed' or opts.p is not None, '--aug=fixed requires --p')
    if opts.p is not None:
        check(aug == 'fixed', '--p can only be given with --aug=fixed')
        check(0 <= opts.p <= 1, f'--p must be between 0 and 1, got {opts.p}')
        opts.desc.add('p', f'p{opts.p:g}')
        out.augment_p = opts.p
    if opts.target is not None:
        check(aug == 'ada', '--target can only be given with --aug=ada')
        check(0 <= opts.target <= 1, f'--target must be between 0 and 1, got {opts.target}')
        opts.desc.add('target', f'target{opts.target:g}')
        out.ada_target = opts.target
    augpipe = 'bgc' if opts.augpipe is None else opts.augpipe
    if opts.augpipe is not None:
        check(aug != 'noaug', '--augpipe cannot be given with --aug=noaug')
        opts.desc.add('augpipe', augpipe)
    specs = _augpipe_specs()
    check(augpipe in specs, f'--augpipe: unknown pipeline {augpipe!r}; choose from {", ".join(specs)}')
    if aug != 'noaug':
        out.augment_kwargs = dnnlib.EasyDict(class_name='stylegan_som.augment.AugmentPipe', **specs[augpipe])
    # Points, and the small configs that train without augmentation unless --aug says otherwise, get none.
    if not (is_points(args) or (opts.aug is None and small(opts.cfg).get('aug') == 'noaug')):
        args.update(out)

def apply(opts, args):
    _apply_dataset(opts, args)
    _apply_augment(opts, args)

def _augpipe_names():
    return list(_augpipe_specs())

GROUP = Group('Data', [
    Option('--data',    help='Images: folder, zip, tar, CIFAR-10 python tarball or MNIST idx files; or a built-in name (cifar10, mnist, fashion-mnist, stacked-mnist, discs8, ring8, grid25, grid25-unequal)', metavar='PATH'),
    Option('--cond',    help='Condition G and D on the dataset labels [default: false]', type=bool, metavar='BOOL'),
    Option('--subset',  help='Use a fixed random subset of N images [default: all]', type=int, metavar='INT'),
    Option('--mirror',  help='Add x-flipped copies of the images [default: false]', type=bool, metavar='BOOL'),
    Option('--aug',     help='Augmentation of what D sees: ada (adaptive p), fixed (constant --p), noaug [default: ada; noaug for toy and stacked-mnist]', type=click.Choice(['noaug', 'ada', 'fixed'])),
    Option('--p',       help='Augmentation probability with --aug=fixed', type=float, metavar='FLOAT'),
    Option('--target',  help='ADA target for the mean sign of D on reals, with --aug=ada [default: 0.6]', type=float, metavar='FLOAT'),
    Option('--augpipe', help='Which augmentations [default: bgc]', type=lambda: click.Choice(_augpipe_names())),
], apply)
