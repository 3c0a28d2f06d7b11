"""train.py's options: one group per section of --help (data.py, networks.py, som_plugins.py, loss.py, length.py,
performance.py, output.py), each a list of options and one apply(opts, args) that turns their values into
training_loop kwargs; the --cfg presets as data (presets.py); run directories (rundir.py).

A new flag is one Option in the group it belongs to: with `sets='kwarg'` (and `minimum`, `tag`) when it only sets
one training_loop kwarg, else plus what its group's apply does with opts.<name>. setup_training_loop_kwargs and
--help pick it up from GROUPS."""

import torch

import dnnlib
from stylegan_som import plugins
from . import base, coupled, data, length, loss, networks, output, performance, som_plugins
from .spec import Desc, UserError, check
from .presets import CFG_SPECS, arch_of
from .rundir import check_outdir

# --help order.
GROUPS = [data.GROUP, coupled.GROUP, networks.GROUP, som_plugins.GROUP, loss.GROUP, length.GROUP, performance.GROUP, output.GROUP]

# Apply order: each step reads what the earlier ones built. The preset (base) makes the StyleGAN2 kwargs from the
# dataset's resolution; length fixes the batch split the network checks need; the backbone replaces the StyleGAN2
# kwargs before performance and loss settings go on them; plugins go on the final networks, and --som-share=none
# wraps D last, then --data2 wraps G and D in their coupled versions (its paired dataset made right after --data);
# output compares a --resume pickle with the final kwargs.
PIPELINE = [data.GROUP.apply, coupled.apply_data, base.apply, length.GROUP.apply, networks.GROUP.apply,
    performance.GROUP.apply, loss.GROUP.apply, som_plugins.GROUP.apply, coupled.apply_networks, output.GROUP.apply]

def option_names():
    return [name for group in GROUPS for name in group.names()]

def resolve(opts):
    """The values several groups read, with their defaults: device, process count, config, backbones, seed."""
    if opts.device_type is None:
        opts.device_type = 'cuda' if torch.cuda.is_available() else 'cpu'
    gpus, world_size = opts.gpus, opts.world_size
    if world_size is not None:
        check(gpus is None or gpus == world_size, f'--gpus={gpus} but torchrun started {world_size} processes')
        gpus = world_size
    else:
        gpus = 1 if gpus is None else gpus
        check(gpus >= 1 and (gpus & (gpus - 1)) == 0, f'--gpus must be a power of two, got {gpus}')
    opts.gpus = gpus
    check_outdir(opts.outdir)
    opts.seed = 0 if opts.seed is None else opts.seed
    check(opts.seed >= 0, f'--seed must be non-negative, got {opts.seed}')
    opts.cfg = 'auto' if opts.cfg is None else opts.cfg
    check(opts.cfg in CFG_SPECS, f'--cfg: unknown config {opts.cfg!r}; choose from {", ".join(CFG_SPECS)}')
    opts.arch = arch_of(opts.arch, opts.cfg)
    check(opts.arch in plugins.BACKBONES, f'--arch: unknown backbone {opts.arch!r}; choose from '
        f'{", ".join(plugins.BACKBONES.names())}')
    opts.g_arch_given = opts.g_arch is not None
    opts.g_arch = opts.arch if opts.g_arch is None else opts.g_arch
    opts.loss = 'stylegan2' if opts.loss is None else opts.loss

def setup_training_loop_kwargs(outdir='training-runs', device_type=None, world_size=None, metric_names=None, **values):
    """Turn command-line values (keyword arguments named as train.py's options, e.g. som_sigma_end=0.5; missing
    ones take their defaults) into (run description, training_loop kwargs). Every problem is a UserError.
    metric_names: the metrics --metrics may name (None: not checked here)."""
    known = set(option_names())
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f'setup_training_loop_kwargs: unknown option(s) {", ".join(unknown)}')
    opts = dnnlib.EasyDict({name: None for name in known})
    opts.update(values, outdir=outdir, device_type=device_type, world_size=world_size, metric_names=metric_names,
        desc=Desc())
    resolve(opts)
    args = dnnlib.EasyDict()
    for step in PIPELINE:
        step(opts, args)
    return str(opts.desc), _ordered(args)

# training_options.json's order of entries (as before the options were grouped); others follow in their order.
_KEY_ORDER = ('num_gpus', 'image_snapshot_ticks', 'network_snapshot_ticks', 'random_seed', 'training_set_kwargs',
    'data_loader_kwargs', 'G_kwargs', 'D_kwargs', 'G_opt_kwargs', 'D_opt_kwargs', 'loss_kwargs', 'total_kimg',
    'batch_size', 'batch_gpu', 'ema_kimg', 'ema_rampup', 'metrics', 'kimg_per_tick', 'ada_target', 'augment_p',
    'augment_kwargs', 'cudnn_benchmark', 'allow_tf32', 'G_reg_interval')

def _ordered(args):
    keys = [k for k in _KEY_ORDER if k in args] + [k for k in args if k not in _KEY_ORDER]
    return dnnlib.EasyDict((k, args[k]) for k in keys)
