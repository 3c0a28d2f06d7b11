"""Train a StyleGAN2-ADA generator, with StyleGAN2-ADA's command line (plus StyleGAN3's size and rate
overrides and small configs that train on a CPU)."""

import json
import os
import re
import signal
import tempfile

# Idle OpenMP threads sleep instead of spinning. CPU training runs many small ops; with spinning threads, any
# other busy process on the machine makes each op wait for a descheduled thread, and training slows down more
# than tenfold (measured: 2 threads 330 s/kimg vs 34 s/kimg passive on a loaded 2-core machine). On an idle
# machine spinning is faster (2 threads, 2 cores: --cfg=tiny 6.7 s/kimg vs 13.2, stacked-mnist 2.1 vs 2.9), so
# OMP_WAIT_POLICY=ACTIVE is worth setting there. It only takes effect before torch loads its OpenMP runtime,
# hence here; an explicit setting wins.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import click  # pylint: disable=wrong-import-position
import torch  # pylint: disable=wrong-import-position

import dnnlib
from torch_utils import custom_ops
from torch_utils import dist_util
from torch_utils import persistence
from torch_utils import training_stats

#----------------------------------------------------------------------------

class UserError(Exception):
    """A bad command-line value; reported by click as one usage error naming the flag."""

#----------------------------------------------------------------------------
# Base configs. The first six are upstream StyleGAN2-ADA's (cbase = fmaps * 32768); 'auto' is filled in from
# the resolution and process count. 'tiny' and 'cpu' are ours: small networks that train on a CPU, for the
# tests (tiny, seconds per kimg) and the README demo (cpu, about a minute per kimg at 32x32).

CFG_SPECS = {
    #            ref_gpus  kimg     mb  mbstd  cbase  cmax  lrate   gamma  ema  ramp  map
    'auto':      dict(ref_gpus=-1, kimg=25000,  mb=-1, mbstd=-1, cbase=-1,    cmax=512, lrate=-1,     gamma=-1,   ema=-1,  ramp=0.05, map=2),
    'stylegan2': dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  cbase=32768, cmax=512, lrate=0.002,  gamma=10,   ema=10,  ramp=None, map=8),
    'paper256':  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  cbase=16384, cmax=512, lrate=0.0025, gamma=1,    ema=20,  ramp=None, map=8),
    'paper512':  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  cbase=32768, cmax=512, lrate=0.0025, gamma=0.5,  ema=20,  ramp=None, map=8),
    'paper1024': dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  cbase=32768, cmax=512, lrate=0.002,  gamma=2,    ema=10,  ramp=None, map=8),
    'cifar':     dict(ref_gpus=2,  kimg=100000, mb=64, mbstd=32, cbase=32768, cmax=512, lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2),
    'tiny':      dict(ref_gpus=1,  kimg=20,     mb=8,  mbstd=4,  cbase=512,   cmax=32,  lrate=0.0025, gamma=0.01, ema=2.5, ramp=0.05, map=2, z_dim=64,  w_dim=64, tick=1),
    'cpu':       dict(ref_gpus=1,  kimg=200,    mb=16, mbstd=4,  cbase=2048,  cmax=64,  lrate=0.0025, gamma=0.01, ema=5,   ramp=0.05, map=2, z_dim=128, w_dim=128),
    # Small backbones on a CPU (--arch, see SMALL_CFGS for the rest): 2-D toys, and stacked MNIST with DCGAN.
    'toy':       dict(ref_gpus=1,  kimg=4000,   mb=256, mbstd=4, cbase=0,     cmax=0,   lrate=0.001,  gamma=0.01, ema=50,  ramp=0.3,  map=0, z_dim=16,  w_dim=16),
    'stacked-mnist': dict(ref_gpus=1, kimg=400,  mb=32, mbstd=4,  cbase=1024,  cmax=128, lrate=0.0002, gamma=0,    ema=5,   ramp=0.05, map=0, z_dim=100, w_dim=100),
}

# Configs that behave like upstream's 'cifar': no path-length regularisation, no style mixing, plain D.
CIFAR_LIKE = ('cifar', 'tiny', 'cpu', 'toy', 'stacked-mnist')

# Metrics that run when --metrics is not given. FID50k on a CPU takes hours, so the CPU configs skip it.
DEFAULT_METRICS = dict(tiny=[], cpu=[])
DEFAULT_METRICS.update({'toy': [], 'stacked-mnist': []}) # the mode-coverage metric of the dataset (_setup_backbone)

# Transfer-learning sources of upstream StyleGAN2-ADA (--resume=<name>).
RESUME_SPECS = {
    'ffhq256':     'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl',
    'ffhq512':     'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug.pkl',
    'ffhq1024':    'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/ffhq-res1024-mirror-stylegan2-noaug.pkl',
    'celebahq256': 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl',
    'lsundog256':  'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/lsundog-res256-paper256-kimg100000-noaug.pkl',
}

# Network arguments that only change speed/precision, not the parameters: a snapshot made with other values
# (e.g. fp16 on a GPU) can still continue its run (e.g. in fp32 on a CPU).
PERFORMANCE_KWARGS = ('num_fp16_res', 'conv_clamp', 'fp16_channels_last')

def _augpipe_specs():
    from stylegan_som.augment import augpipe_specs
    return augpipe_specs

#----------------------------------------------------------------------------
# Dataset hook: everything about --data goes through this one function.

def init_dataset_kwargs(data, cfg=None, require_pow2=True):
    """Map --data (and --cfg, for the built-in CIFAR-10 of --cfg=cifar) to dataset kwargs for
    dnnlib.util.construct_class_by_name, recording resolution, label use and size explicitly so that every
    process and metric sees the same dataset. Returns (kwargs, name for the run directory).
    require_pow2=False admits e.g. 28x28 images, for the small backbones."""
    from stylegan_som.dataset import dataset_kwargs_from_data
    try:
        kwargs, name = dataset_kwargs_from_data(data, cfg, require_pow2=require_pow2)
    except (IOError, OSError, ValueError) as err: # the dataset code names the file; we name the flag
        raise UserError(f'--data: {err}')
    return dnnlib.EasyDict(kwargs), name

#----------------------------------------------------------------------------

def _check(cond, message):
    if not cond:
        raise UserError(message)

def _strip_performance(obj):
    if isinstance(obj, dict):
        return {k: _strip_performance(v) for k, v in obj.items() if k not in PERFORMANCE_KWARGS}
    return obj

def torchrun_env():
    """(rank, local_rank, world_size) when started by torchrun (or another env:// launcher), else None."""
    return dist_util.env_ranks()

def _check_outdir(outdir):
    # Before anything is read or written: the run directory goes under the nearest existing folder.
    path = os.path.abspath(outdir)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    if not os.path.isdir(path):
        where = '' if path == os.path.abspath(outdir) else f', so {outdir} cannot be created'
        raise UserError(f'--outdir: {path} is a file, not a folder{where}')

def default_workers(num_processes):
    """Upstream's 3 data-loading workers per process, but no more than this machine's cores split over the
    processes: more only oversubscribe a small machine (and make the DataLoader warn about it)."""
    try:
        cores = len(os.sched_getaffinity(0)) # the cores this process may run on (containers, taskset)
    except AttributeError: # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(3, cores // max(num_processes, 1)))

def setup_training_loop_kwargs(
    # General (not in the run name).
    gpus=None, snap=None, metrics=None, seed=None, outdir='training-runs',
    # Dataset.
    data=None, cond=None, subset=None, mirror=None,
    # Base config and its overrides.
    cfg=None, gamma=None, kimg=None, batch=None, batch_gpu=None, cbase=None, cmax=None, map_depth=None, glr=None,
    dlr=None, mbstd_group=None, tick=None, lr_rampdown=None, d_width=None, d_pack=None, fm=None,
    # Augmentation.
    aug=None, p=None, target=None, augpipe=None,
    # Transfer learning / resume.
    resume=None, freezed=None,
    # Backbone (see _setup_backbone).
    arch=None, g_arch=None,
    # Performance.
    fp32=None, nhwc=None, allow_tf32=None, nobench=None, workers=None, bf16=None,
    # Where it runs: 'cuda' or 'cpu'; number of processes already launched (torchrun), or None.
    device_type=None, world_size=None,
    # Loss objective and SOM discriminator heads (see _setup_som_and_loss).
    loss=None, som_d=None, som_topo=None, som_sigma_start=None, som_sigma_end=None, som_share=None,
    som_normalize=None, som_g_weights=None, som_bmu=None, r2_gamma=None, d_reg_interval=None,
    # Discriminator head (see _setup_d_head).
    d_head=None,
    # Self-attention blocks and D's normalisation (see _setup_attention_norm).
    g_attn=None, d_attn=None, d_sn=None, d_bn=None,
):
    """Turn command-line values into (run description, training_loop kwargs). Every problem is a UserError."""
    args = dnnlib.EasyDict()
    given_aug, given_metrics = aug, metrics # before defaults fill them in; _setup_backbone needs to know
    if device_type is None:
        device_type = 'cuda' if torch.cuda.is_available() else 'cpu'

    # General.
    if world_size is not None:
        _check(gpus is None or gpus == world_size, f'--gpus={gpus} but torchrun started {world_size} processes')
        gpus = world_size
    else:
        gpus = 1 if gpus is None else gpus
        _check(gpus >= 1 and (gpus & (gpus - 1)) == 0, f'--gpus must be a power of two, got {gpus}')
    args.num_gpus = gpus

    _check_outdir(outdir)

    snap = 50 if snap is None else snap
    _check(snap >= 1, f'--snap must be at least 1, got {snap}')
    args.image_snapshot_ticks = args.network_snapshot_ticks = snap

    seed = 0 if seed is None else seed
    _check(seed >= 0, f'--seed must be non-negative, got {seed}')
    args.random_seed = seed

    # Dataset.
    cfg = 'auto' if cfg is None else cfg
    args.training_set_kwargs, desc = init_dataset_kwargs(data, cfg, require_pow2=(_arch_of(arch, cfg) == 'stylegan2'))
    args.data_loader_kwargs = dnnlib.EasyDict(pin_memory=True, num_workers=default_workers(gpus), prefetch_factor=2)

    if cond:
        _check(args.training_set_kwargs.use_labels, f'--cond=1 needs labels, but {args.training_set_kwargs.path} '
            'has none: give a dataset.json with "labels" (upstream dataset_tool layout) or one folder per class')
        desc += '-cond'
    else:
        args.training_set_kwargs.use_labels = False

    if subset is not None:
        n = args.training_set_kwargs.max_size
        _check(1 <= subset <= n, f'--subset must be between 1 and {n}, got {subset}')
        desc += f'-subset{subset}'
        if subset < n:
            args.training_set_kwargs.max_size = subset
            args.training_set_kwargs.random_seed = args.random_seed

    if mirror:
        desc += '-mirror'
        args.training_set_kwargs.xflip = True

    # Base config.
    desc += f'-{cfg}'
    spec = dnnlib.EasyDict(CFG_SPECS[cfg])
    res = args.training_set_kwargs.resolution
    if cfg == 'auto':
        desc += f'{gpus:d}'
        spec.ref_gpus = gpus
        spec.mb = max(min(gpus * min(4096 // res, 32), 64), gpus)   # bounded GPU memory per process
        spec.mbstd = min(spec.mb // gpus, 4)                        # fixed group size keeps other settings stable
        spec.cbase = 32768 if res >= 512 else 16384
        spec.lrate = 0.002 if res >= 1024 else 0.0025
        spec.gamma = 0.0002 * (res ** 2) / spec.mb                  # upstream's heuristic
        spec.ema = spec.mb * 10 / 32

    args.G_kwargs = dnnlib.EasyDict(class_name='stylegan_som.networks.stylegan2.Generator', z_dim=spec.get('z_dim', 512),
        w_dim=spec.get('w_dim', 512), mapping_kwargs=dnnlib.EasyDict(), synthesis_kwargs=dnnlib.EasyDict())
    args.D_kwargs = dnnlib.EasyDict(class_name='stylegan_som.networks.stylegan2.Discriminator',
        block_kwargs=dnnlib.EasyDict(), mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict())
    args.G_kwargs.synthesis_kwargs.channel_base = args.D_kwargs.channel_base = spec.cbase
    args.G_kwargs.synthesis_kwargs.channel_max = args.D_kwargs.channel_max = spec.cmax
    args.G_kwargs.mapping_kwargs.num_layers = spec.map
    args.G_kwargs.synthesis_kwargs.num_fp16_res = args.D_kwargs.num_fp16_res = 4 # mixed precision at the top 4 resolutions
    args.G_kwargs.synthesis_kwargs.conv_clamp = args.D_kwargs.conv_clamp = 256   # keeps fp16 activations finite
    args.D_kwargs.epilogue_kwargs.mbstd_group_size = spec.mbstd

    args.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    args.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    args.loss_kwargs = dnnlib.EasyDict(class_name='stylegan_som.loss.StyleGAN2Loss', r1_gamma=spec.gamma)

    args.total_kimg = spec.kimg
    args.batch_size = spec.mb
    args.batch_gpu = max(spec.mb // spec.ref_gpus, 1)
    args.ema_kimg = spec.ema
    args.ema_rampup = spec.ramp

    if cfg in CIFAR_LIKE:
        args.loss_kwargs.pl_weight = 0          # no path-length regularisation
        args.loss_kwargs.style_mixing_prob = 0  # no style mixing
        args.D_kwargs.architecture = 'orig'     # no residual connections in D

    if metrics is None:
        metrics = list(DEFAULT_METRICS.get(cfg, ['fid50k_full']))
    from metrics import metric_main
    bad = [m for m in metrics if not metric_main.is_valid_metric(m)]
    _check(not bad, f'--metrics: unknown metric(s) {",".join(bad)}; choose from ' + ', '.join(metric_main.list_valid_metrics()))
    args.metrics = metrics

    if gamma is not None:
        _check(gamma >= 0, f'--gamma must be non-negative, got {gamma}')
        desc += f'-gamma{gamma:g}'
        args.loss_kwargs.r1_gamma = gamma

    if fm is not None:
        _check(fm >= 0, f'--fm must be non-negative, got {fm}')
        if fm > 0:
            desc += f'-fm{fm:g}'
            args.loss_kwargs.fm_weight = fm

    if kimg is not None:
        _check(kimg >= 1, f'--kimg must be at least 1, got {kimg}')
        desc += f'-kimg{kimg:d}'
        args.total_kimg = kimg

    if batch is not None:
        _check(batch >= 1 and batch % gpus == 0, f'--batch must be at least 1 and divisible by --gpus={gpus}, got {batch}')
        desc += f'-batch{batch}'
        args.batch_size = batch
        args.batch_gpu = batch // gpus
    elif args.batch_size % gpus != 0 or args.batch_size < gpus:
        raise UserError(f'--gpus={gpus}: the {cfg} config\'s batch of {args.batch_size} does not split over {gpus} '
            'processes; set --batch')
    else:
        args.batch_gpu = min(args.batch_gpu, args.batch_size // gpus)

    if batch_gpu is not None:
        _check(batch_gpu >= 1, f'--batch-gpu must be at least 1, got {batch_gpu}')
        args.batch_gpu = batch_gpu
    _check(args.batch_size % (gpus * args.batch_gpu) == 0, f'--batch-gpu={args.batch_gpu}: the batch of '
        f'{args.batch_size} must be a multiple of --gpus x --batch-gpu = {gpus * args.batch_gpu}')

    # StyleGAN3-style size and rate overrides.
    if cbase is not None:
        _check(cbase >= 1, f'--cbase must be at least 1, got {cbase}')
        args.G_kwargs.synthesis_kwargs.channel_base = args.D_kwargs.channel_base = cbase
        desc += f'-cbase{cbase}'
    if cmax is not None:
        _check(cmax >= 1, f'--cmax must be at least 1, got {cmax}')
        args.G_kwargs.synthesis_kwargs.channel_max = args.D_kwargs.channel_max = cmax
        desc += f'-cmax{cmax}'
    if map_depth is not None:
        _check(map_depth >= 1, f'--map must be at least 1, got {map_depth}')
        args.G_kwargs.mapping_kwargs.num_layers = map_depth
        desc += f'-map{map_depth}'
    if glr is not None:
        _check(glr > 0, f'--glr must be positive, got {glr}')
        args.G_opt_kwargs.lr = glr
        desc += f'-glr{glr:g}'
    if dlr is not None:
        _check(dlr > 0, f'--dlr must be positive, got {dlr}')
        args.D_opt_kwargs.lr = dlr
        desc += f'-dlr{dlr:g}'
    if mbstd_group is not None:
        _check(mbstd_group >= 1, f'--mbstd-group must be at least 1, got {mbstd_group}')
        args.D_kwargs.epilogue_kwargs.mbstd_group_size = mbstd_group
        desc += f'-mbstd{mbstd_group}'
    group = args.D_kwargs.epilogue_kwargs.mbstd_group_size
    _check(args.batch_gpu < group or args.batch_gpu % group == 0, f'--mbstd-group={group}: the images per process '
        f'and round (--batch-gpu={args.batch_gpu}) must be a multiple of the group size, or smaller than it')
    if tick is not None:
        _check(tick >= 1, f'--tick must be at least 1, got {tick}')
        args.kimg_per_tick = tick
    elif 'tick' in spec:
        args.kimg_per_tick = spec.tick # configs that take seconds per kimg report more often

    # Augmentation.
    if aug is None:
        aug = 'ada'
    else:
        desc += f'-{aug}'
    if aug == 'ada':
        args.ada_target = 0.6
    elif aug == 'fixed':
        _check(p is not None, '--aug=fixed requires --p')
    if p is not None:
        _check(aug == 'fixed', '--p can only be given with --aug=fixed')
        _check(0 <= p <= 1, f'--p must be between 0 and 1, got {p}')
        desc += f'-p{p:g}'
        args.augment_p = p
    if target is not None:
        _check(aug == 'ada', '--target can only be given with --aug=ada')
        _check(0 <= target <= 1, f'--target must be between 0 and 1, got {target}')
        desc += f'-target{target:g}'
        args.ada_target = target
    if augpipe is None:
        augpipe = 'bgc'
    else:
        _check(aug != 'noaug', '--augpipe cannot be given with --aug=noaug')
        desc += f'-{augpipe}'
    specs = _augpipe_specs()
    _check(augpipe in specs, f'--augpipe: unknown pipeline {augpipe!r}; choose from {", ".join(specs)}')
    if aug != 'noaug':
        args.augment_kwargs = dnnlib.EasyDict(class_name='stylegan_som.augment.AugmentPipe', **specs[augpipe])

    if args.random_seed != 0: # runs that differ only in the seed get told apart by name
        desc += f'-seed{args.random_seed}'

    # Transfer learning and resume. See resolve_resume() for 'latest' and for continuing a run.
    if resume is None or resume == 'noresume':
        if resume == 'noresume':
            desc += '-noresume'
    elif resume in RESUME_SPECS:
        desc += f'-resume{resume}'
        args.resume_pkl = RESUME_SPECS[resume]
    elif resume == 'latest':
        from stylegan_som import snapshot
        found = snapshot.find_latest_snapshot(outdir)
        if found is None:
            print(f'--resume=latest: no snapshot under {outdir}; starting a new run.')
        else:
            desc += '-resumecustom'
            args.resume_pkl = found
    else:
        _check(dnnlib.util.is_url(resume, allow_file_urls=True) or os.path.isfile(resume),
            f'--resume: no such file: {resume}')
        desc += '-resumecustom'
        args.resume_pkl = resume

    if freezed is not None:
        _check(freezed >= 0, f'--freezed must be non-negative, got {freezed}')
        desc += f'-freezed{freezed:d}'
        args.D_kwargs.block_kwargs.freeze_layers = freezed

    # Performance.
    if fp32 or device_type != 'cuda':
        # fp16 is a GPU speed-up; on a CPU it would only be slower and less exact.
        args.G_kwargs.synthesis_kwargs.num_fp16_res = args.D_kwargs.num_fp16_res = 0
        if fp32:
            args.G_kwargs.synthesis_kwargs.conv_clamp = args.D_kwargs.conv_clamp = None
    if nhwc:
        args.G_kwargs.synthesis_kwargs.fp16_channels_last = args.D_kwargs.block_kwargs.fp16_channels_last = True
    if nobench:
        args.cudnn_benchmark = False
    if allow_tf32:
        args.allow_tf32 = True
    if workers is not None:
        _check(workers >= 1, f'--workers must be at least 1, got {workers}')
        args.data_loader_kwargs.num_workers = workers

    desc = _setup_d_head(args, desc, d_head=d_head, cond=cond) # before the SOM setup, which may wrap D_kwargs

    # Backbone: small networks replace the StyleGAN2 kwargs built above; before the SOM heads, which go on D.
    desc = _setup_backbone(args, desc, arch=arch, g_arch=g_arch, cfg=cfg, metrics=given_metrics, aug=given_aug,
        cbase=cbase, cmax=cmax, map_depth=map_depth, mbstd_group=mbstd_group, freezed=freezed, nhwc=nhwc,
        mirror=mirror, workers=workers, glr=glr)

    desc = _setup_d_width(args, desc, d_width=d_width) # on the chosen backbone, before the SOM heads wrap D
    desc = _setup_d_pack(args, desc, d_pack=d_pack)
    stylegan2_backbone = args.G_kwargs.class_name == 'stylegan_som.networks.stylegan2.Generator'
    if bf16 is None and SMALL_CFGS.get(cfg, {}).get('bf16') == 'auto': # the config's default, where it is a speed-up
        bf16 = device_type == 'cpu' and _cpu_has_native_bf16() and not stylegan2_backbone
    if bf16:
        _check(device_type == 'cpu', '--bf16 is for training on a CPU; on a GPU the fp16 layers do this (--fp32=0)')
        _check(not stylegan2_backbone,
            '--bf16: the stylegan2 backbone sets its own precision per layer; bf16 autocast is for dcgan, resnet, mlp')
        args.loss_kwargs.bf16 = True
    desc = _setup_attention_norm(args, desc, g_attn=g_attn, d_attn=d_attn, d_sn=d_sn, d_bn=d_bn) # chosen backbone

    # Learning-rate ramp-down at the end of the run: --lr-rampdown, else the small config's default, else off.
    if lr_rampdown is not None:
        _check(0 <= lr_rampdown <= 1, f'--lr-rampdown must be a fraction of --kimg in [0, 1], got {lr_rampdown}')
        desc += f'-lrdown{lr_rampdown:g}'
    else:
        lr_rampdown = SMALL_CFGS.get(cfg, {}).get('lr_rampdown')
    if lr_rampdown:
        args.lr_rampdown = lr_rampdown

    # Loss objective and SOM heads: after every option that shapes D_kwargs, because --som-share=none wraps them.
    desc = _setup_som_and_loss(args, desc, gamma=gamma, loss=loss, som_d=som_d, som_topo=som_topo,
        som_sigma_start=som_sigma_start, som_sigma_end=som_sigma_end, som_share=som_share, som_normalize=som_normalize,
        som_g_weights=som_g_weights, som_bmu=som_bmu, cfg=cfg)
    desc = _setup_regularisers(args, desc, loss=loss, r2_gamma=r2_gamma, d_reg_interval=d_reg_interval)

    # Whether --resume continues its run: last, once every option has shaped G_kwargs and D_kwargs (the
    # pickle's recorded kwargs are compared with the final ones).
    if args.get('resume_pkl') is not None:
        if _continues_run(args):
            args.resume_training_state = True
        else:
            args.ada_kimg = 100         # let ADA react fast at the start of a transfer
            args.ema_rampup = None      # the pretrained G is a good EMA start
    return desc, args

#----------------------------------------------------------------------------
# Discriminator head (--d-head).

def _head_names():
    """StyleGAN2's own label projection, then every registered head plugin."""
    from stylegan_som import plugins
    return ['cmap'] + plugins.HEADS.names()

def _head_is_conditional(d_head):
    from stylegan_som import plugins
    return d_head == 'cmap' or getattr(dnnlib.util.get_obj_by_name(plugins.HEADS.class_name(d_head)), 'conditional', False)

def _setup_d_head(args, desc, d_head=None, cond=None):
    """--d-head: how D turns its features into scores. Default: StyleGAN2's own conditioning (cmap, a projection
    onto an MLP embedding of the label, as upstream) with --cond=1, a plain linear output without; networks
    without a cmap path pick their head themselves (projection with labels, linear without)."""
    if d_head is None:
        return desc
    from stylegan_som import plugins
    _check(d_head in _head_names(), f'--d-head: unknown head {d_head!r}; choose from {", ".join(_head_names())}')
    if _head_is_conditional(d_head):
        _check(bool(cond), f'--d-head={d_head} is a class-conditional head: it needs --cond=1')
    if d_head == 'cmap':
        _check(args.D_kwargs.class_name == 'stylegan_som.networks.stylegan2.Discriminator',
            f'--d-head=cmap exists only in the StyleGAN2 discriminator, not in {args.D_kwargs.class_name}')
        args.D_kwargs.pop('head_kwargs', None)
    else:
        args.D_kwargs.head_kwargs = dnnlib.EasyDict(class_name=plugins.HEADS.class_name(d_head))
    return desc + f'-{d_head}'

#----------------------------------------------------------------------------
# Backbones (--arch): StyleGAN2, or small networks for CPU studies (stylegan_som/networks/small.py).

# What the small-backbone configs set besides CFG_SPECS: the backbone, Adam betas, augmentation, network sizes.
SMALL_CFGS = {
    'toy':           dict(arch='mlp',   betas=[0.0, 0.99], aug='noaug', D_reg_interval=None, lr_rampdown=0.25,
                          G=dict(layer_features=128, num_layers=4), D=dict(layer_features=128, num_layers=3)),
    'stacked-mnist': dict(arch='dcgan', betas=[0.5, 0.99], aug='noaug', lr_rampdown=0.25, glr=0.0016, bf16='auto',
                          G=dict(), D=dict(spectral_norm=False, batch_norm=True)),
}
# toy: R1 in every step (D_reg_interval=None): lazily, every 16 steps at 16x the weight, it stopped the MLPs
# from learning ring8 at all. The learning-rate ramp-down over the last quarter lets G settle onto the modes, and
# a fourth layer in G gives it sharper steps between them (fewer samples in between; five layers were unstable).
# stacked-mnist: G learns slower than D here, so G's rate is 8x D's (CFG_SPECS' lrate); with batch norm in D instead
# of spectral norm and batches of 32 (twice the steps per image) every full-width run drew all 1,000 triples (KL 0.11
# at 420 kimg, against at most 990 triples and KL >= 0.52 before). bf16 where the CPU computes it natively (AVX-512
# BF16, AMX) doubles the kimg per second. Narrower nets (cmax 64), a wider G (cbase 2048 at 100 kimg), the minibatch
# stddev (--mbstd-group) and the toy's sigma schedule did worse; the toy's G rule (neighbourhood,
# SOM_DEFAULTS_BY_CFG) did better. See bench/RESULTS.md for what these settings reach.

# Plugin options another part of train.py may have put on the StyleGAN2 kwargs; they carry over to any backbone.
_D_PLUGIN_KEYS = ('num_heads', 'head_kwargs', 'attn_resolutions', 'attn_kwargs', 'spectral_norm')
_G_PLUGIN_KEYS = ('attn_resolutions', 'attn_kwargs')

# Backbones whose G and D may be mixed (--g-arch): image convnets with z_dim = w_dim and no mapping by default.
_MIXABLE_ARCHS = ('dcgan', 'resnet')

def _backbone_names():
    from stylegan_som import plugins
    return plugins.BACKBONES.names()

def _arch_of(arch, cfg):
    if arch is not None:
        return arch
    return SMALL_CFGS[cfg]['arch'] if cfg in SMALL_CFGS else 'stylegan2'

def use_builtin_mnist_for_metrics(mnist_dir=None):
    """Point the digit classifier of modes_stacked_mnist and modes_mnist at `mnist_dir` (the folder of idx files a
    run trains on) or else the built-in MNIST files (those the built-in stacked-MNIST set was made from), unless
    SGSOM_MNIST_DIR already names a folder."""
    if not os.environ.get('SGSOM_MNIST_DIR'):
        from stylegan_som import datasets_builtin
        os.environ['SGSOM_MNIST_DIR'] = mnist_dir or datasets_builtin.idx_dataset_dir('mnist')

def _setup_backbone(args, desc, arch=None, g_arch=None, cfg=None, metrics=None, aug=None, cbase=None, cmax=None,
        map_depth=None, mbstd_group=None, freezed=None, nhwc=None, mirror=None, workers=None, glr=None):
    """Swap in a small backbone (--arch=dcgan|resnet|mlp, or the default of --cfg=toy / stacked-mnist), and set
    what point data (--data=ring8|grid25) needs; --g-arch gives G a backbone of its own. Returns the new run
    description."""
    from stylegan_som import plugins
    cfg = 'auto' if cfg is None else cfg
    arch = _arch_of(arch, cfg)
    _check(arch in plugins.BACKBONES, f'--arch: unknown backbone {arch!r}; choose from {", ".join(plugins.BACKBONES.names())}')
    if g_arch is not None: # the conv backbones share z -> image at any resolution, so their Gs and Ds pair freely
        _check(g_arch in _MIXABLE_ARCHS and arch in _MIXABLE_ARCHS, f'--g-arch={g_arch} with the {arch} '
            f'discriminator: only {" and ".join(_MIXABLE_ARCHS)} pair with each other')
    g_arch = arch if g_arch is None else g_arch
    points = args.training_set_kwargs.class_name.endswith('.PointDataset')
    data_name = os.path.splitext(os.path.basename(str(args.training_set_kwargs.path)))[0] # stacked-mnist.zip
    if points:
        _check(arch == 'mlp', f'--data={data_name} is 2-D point data, which only --arch=mlp models (e.g. --cfg=toy)')
        _check(not mirror, f'--mirror has no meaning for the 2-D points of --data={data_name}')
        _check(aug in (None, 'noaug'), f'--aug={aug}: augmentation has no meaning for the 2-D points of --data={data_name}; use --aug=noaug')
    if metrics is None and (cfg in SMALL_CFGS or points): # the dataset's mode-coverage metric
        toy_metric = {'ring8': 'modes_ring8', 'grid25': 'modes_grid25', 'grid25-unequal': 'modes_grid25_unequal',
            'stacked-mnist': 'modes_stacked_mnist', 'mnist': 'modes_mnist'}
        args.metrics = [toy_metric[data_name]] if data_name in toy_metric else []
    if {'modes_stacked_mnist', 'modes_mnist'} & set(args.metrics) and data_name in ('stacked-mnist', 'mnist'):
        path = str(args.training_set_kwargs.path) # --data=mnist: the built-in folder; or a folder of one's own
        use_builtin_mnist_for_metrics(path if data_name == 'mnist' and os.path.isdir(path) else None)
    if points or (aug is None and SMALL_CFGS.get(cfg, {}).get('aug') == 'noaug'):
        for key in ('augment_kwargs', 'ada_target', 'augment_p'):
            args.pop(key, None)
    if points and workers is None:
        args.data_loader_kwargs.num_workers = 0 # points are an array in memory; worker processes only cost
    if arch == 'stylegan2':
        return desc

    _check(freezed is None, '--freezed needs --arch=stylegan2 (it freezes StyleGAN2 discriminator layers)')
    _check(not nhwc, '--nhwc needs --arch=stylegan2 (its fp16 layers)')
    small = SMALL_CFGS.get(cfg, dict())
    sizes = small if small.get('arch') == arch else dict(G=dict(), D=dict()) # the config's sizes fit its own backbone
    module = plugins.BACKBONES.class_name(arch)
    old_G, old_D = args.G_kwargs, args.D_kwargs
    spec = CFG_SPECS[cfg]
    G_module = plugins.BACKBONES.class_name(g_arch)
    G_sizes = sizes['G'] if g_arch == arch else dict() # the config's G sizes fit its own G
    G_kwargs = dnnlib.EasyDict(class_name=f'{G_module}.Generator', z_dim=old_G.z_dim, w_dim=old_G.z_dim,
        mapping_kwargs=dnnlib.EasyDict(num_layers=(map_depth or 0)), synthesis_kwargs=dnnlib.EasyDict(G_sizes))
    if map_depth:
        G_kwargs.w_dim = old_G.w_dim
    D_kwargs = dnnlib.EasyDict(class_name=f'{module}.Discriminator', **sizes['D'])
    if mbstd_group is not None: # minibatch stddev only when asked for (off in the configs), in the group size
        _check('mbstd_group_size' in _d_init_params(D_kwargs), # resolved and checked against the batch above
            f'--mbstd-group: the {arch} discriminator has no minibatch standard deviation')
        D_kwargs.mbstd_group_size = old_D.epilogue_kwargs.mbstd_group_size
    if arch != 'mlp': # convolutional: channel budget from --cbase/--cmax, else a small config's, else the network's
        for key, flag, value in [('channel_base', cbase, spec['cbase']), ('channel_max', cmax, spec['cmax'])]:
            value = flag if flag is not None else (value if cfg in SMALL_CFGS and value > 0 else None)
            if value is not None:
                G_kwargs.synthesis_kwargs[key] = D_kwargs[key] = value
    else:
        _check(cbase is None and cmax is None, '--cbase/--cmax size convolutional networks; the MLP has none')
    for key in _G_PLUGIN_KEYS:
        if key in old_G.synthesis_kwargs:
            G_kwargs.synthesis_kwargs[key] = old_G.synthesis_kwargs[key]
    for key in _D_PLUGIN_KEYS:
        if key in old_D:
            D_kwargs[key] = old_D[key]
    args.G_kwargs, args.D_kwargs = G_kwargs, D_kwargs

    args.loss_kwargs.pl_weight = 0          # a single w: no path length to regularise ...
    args.loss_kwargs.style_mixing_prob = 0  # ... and nothing to mix
    args.G_reg_interval = None              # hence no separate G regularisation phase
    if 'betas' in small:
        args.G_opt_kwargs.betas = list(small['betas'])
        args.D_opt_kwargs.betas = list(small['betas'])
    if 'glr' in small and glr is None: # G's own rate (CFG_SPECS' lrate is D's)
        args.G_opt_kwargs.lr = small['glr']
    if 'D_reg_interval' in small:
        args.D_reg_interval = small['D_reg_interval']
    if cfg not in SMALL_CFGS:
        desc += f'-{arch}'
    if g_arch != arch:
        desc += f'-g{g_arch}'
    return desc

def _cpu_has_native_bf16():
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX); elsewhere autocast emulates it, slowly."""
    checks = [getattr(torch.cpu, name, None) for name in ('_is_avx512_bf16_supported', '_is_amx_tile_supported')]
    return any(check() for check in checks if check is not None)

def _d_init_params(D_kwargs):
    """The constructor parameters (with defaults) of the discriminator class of D_kwargs."""
    import inspect
    from torch_utils import persistence
    D_class = dnnlib.util.get_obj_by_name(D_kwargs.class_name)
    if persistence.is_persistent(D_class): # the decorator's __init__ takes *args, **kwargs
        D_class = D_class.__bases__[0]
    return inspect.signature(D_class.__init__).parameters

# What --d-width scales in a discriminator's kwargs: the channel budget of convolutional ones, the MLP's features.
_D_WIDTH_KEYS = ('channel_base', 'channel_max', 'layer_features')

def _setup_d_width(args, desc, d_width=None):
    """--d-width: D narrower (or wider) than G by this factor, e.g. 0.25 for the stacked-MNIST study's weak D."""
    if d_width is None:
        return desc
    _check(d_width > 0, f'--d-width must be a positive fraction of G\'s width, got {d_width}')
    params = _d_init_params(args.D_kwargs)
    keys = [key for key in _D_WIDTH_KEYS if key in args.D_kwargs or key in params]
    _check(keys, f'--d-width: {args.D_kwargs.class_name} has no width setting ({", ".join(_D_WIDTH_KEYS)})')
    for key in keys:
        width = args.D_kwargs[key] if key in args.D_kwargs else params[key].default
        args.D_kwargs[key] = max(int(round(width * d_width)), 1)
    return desc + f'-dwidth{d_width:g}'

def _setup_d_pack(args, desc, d_pack=None):
    """--d-pack: PacGAN, D scores packs of this many samples (D_kwargs.pack_size; the small backbones)."""
    if d_pack is None:
        return desc
    _check(d_pack >= 1, f'--d-pack must be at least 1, got {d_pack}')
    backbone = args.D_kwargs.class_name.rsplit('.', 2)[-2]
    _check('pack_size' in _d_init_params(args.D_kwargs),
        f'--d-pack: the {backbone} discriminator cannot pack samples; use --arch=dcgan, resnet or mlp')
    _check(d_pack == 1 or not args.training_set_kwargs.use_labels,
        f'--d-pack={d_pack}: a pack mixes samples of different labels; packing needs --cond=0')
    _check(args.batch_gpu % d_pack == 0, f'--d-pack={d_pack}: the images per process and round '
        f'(--batch-gpu={args.batch_gpu}) must be a multiple of the pack size')
    group = args.D_kwargs.get('mbstd_group_size', 0)
    packs = args.batch_gpu // d_pack
    _check(not group or packs < group or packs % group == 0, f'--d-pack={d_pack} with --mbstd-group={group}: '
        f'the packs per round ({packs}) must be a multiple of the group size, or fewer than it')
    args.D_kwargs.pack_size = d_pack
    return desc + f'-pack{d_pack}'

#----------------------------------------------------------------------------
# Self-attention blocks (--g-attn, --d-attn) and D's normalisation (--d-sn, --d-bn).

def _attn_resolutions(values, flag, allowed):
    out = []
    for value in values:
        try:
            res = int(value)
        except ValueError:
            raise UserError(f'{flag}: {value!r} is not a resolution; give comma-separated integers') from None
        _check(res in allowed, f'{flag}: no feature maps of {res}x{res} to attend over; choose from '
            f'{",".join(str(r) for r in allowed)}')
        out.append(res)
    return sorted(set(out))

def _setup_attention_norm(args, desc, g_attn=None, d_attn=None, d_sn=None, d_bn=None):
    """--g-attn/--d-attn: resolutions of self-attention blocks (G: on the features after those blocks, D: on
    those entering them), into G_kwargs.synthesis_kwargs and D_kwargs.attn_resolutions; --d-sn and --d-bn:
    D_kwargs.spectral_norm and batch_norm. Runs on the final backbone's kwargs. Returns the new run description."""
    if not g_attn and not d_attn and d_sn is None and d_bn is None:
        return desc
    D_params = _d_init_params(args.D_kwargs)
    backbone = args.D_kwargs.class_name.rsplit('.', 2)[-2]
    res = args.training_set_kwargs.resolution
    if args.D_kwargs.class_name == 'stylegan_som.networks.stylegan2.Discriminator':
        allowed = [2 ** k for k in range(2, int(res).bit_length() - 1)] # feature maps between blocks: 4 .. res/2
    else: # other backbones check their own layout when built; here only what any of them could have
        allowed = [int(res)] # the small backbones halve while even (28 -> 14 -> 7)
        while allowed[-1] % 2 == 0 and allowed[-1] > 4:
            allowed.append(allowed[-1] // 2)
        allowed = sorted(allowed)
    for flag, values in [('--g-attn', g_attn), ('--d-attn', d_attn)]:
        if not values:
            continue
        _check('attn_resolutions' in D_params, f'{flag}: the {backbone} backbone has no attention blocks')
        resolutions = _attn_resolutions(values, flag, allowed)
        if flag == '--g-attn':
            args.G_kwargs.synthesis_kwargs.attn_resolutions = resolutions
        else:
            args.D_kwargs.attn_resolutions = resolutions
        desc += f'-{flag[2:].replace("-", "")}{".".join(str(r) for r in resolutions)}'
    norms = [('--d-sn', 'spectral_norm', d_sn, 'spectral'), ('--d-bn', 'batch_norm', d_bn, 'batch')]
    for flag, key, value, what in norms:
        if value is not None:
            _check(key in D_params, f'{flag}: the {backbone} backbone has no {what} normalisation option')
            args.D_kwargs[key] = bool(value)
            desc += f'-{flag[2:].replace("-", "")}{int(bool(value))}'
    return desc

#----------------------------------------------------------------------------
# Loss objective (--loss) and self-organising multi-head discriminator (--som-*).

SOM_SHARE = ('trunk', 'none')
# SOM defaults that differ by --cfg (else the SOMGAN paper's rule: G's loss is the mean over heads; sigma goes from
# half the map's diameter, at least sigma_end, to 0.3), where other values measured better (bench/RESULTS.md).
# 2-D toys: G's loss by a balanced assignment of the fakes to units (transport): on ring8 at 1000 kimg it covered all
# 8 modes at 89-96% high quality where one head collapsed and the neighbourhood rule reached 48-60% (the leaderboard
# and the screens of 2026-12-06); sigma from half the diameter (at least 0.3) to 1.0 balanced the modes better than
# ending at 0.3. Stacked MNIST: the neighbourhood rule (K=4, 100 kimg, 3 seeds: 788 modes against the mean's 615).
SOM_DEFAULTS_BY_CFG = {'toy': dict(g_weights='transport', sigma_end=1.0, sigma_start_floor=0.3),
    'stacked-mnist': dict(g_weights='neighbourhood')}

def _setup_regularisers(args, desc, loss=None, r2_gamma=None, d_reg_interval=None):
    """R2 on fakes (--r2-gamma; the objective's default: R1's gamma) and how often D's penalties run
    (--d-reg-interval; the default: the config's, every step for objectives that say lazy_reg=False)."""
    from stylegan_som import plugins
    from stylegan_som.losses.base import defaults_of

    defaults = defaults_of(dnnlib.util.get_obj_by_name(plugins.LOSSES.class_name(loss or 'stylegan2')))
    if r2_gamma is not None:
        _check(r2_gamma >= 0, f'--r2-gamma must be non-negative, got {r2_gamma}')
        desc += f'-r2gamma{r2_gamma:g}'
    elif defaults['r2']:
        r2_gamma = args.loss_kwargs.r1_gamma
    if r2_gamma:
        args.loss_kwargs.r2_gamma = r2_gamma
    if d_reg_interval is not None:
        _check(d_reg_interval >= 1, f'--d-reg-interval must be at least 1, got {d_reg_interval}')
        desc += f'-dreg{d_reg_interval:d}'
        args.D_reg_interval = None if d_reg_interval == 1 else d_reg_interval
    elif not defaults['lazy_reg']:
        args.D_reg_interval = None
    return desc

def _setup_som_and_loss(args, desc, gamma=None, loss=None, som_d=None, som_topo=None, som_sigma_start=None,
        som_sigma_end=None, som_share=None, som_normalize=None, som_g_weights=None, som_bmu=None, cfg=None):
    """Fill loss_kwargs.objective and the objective's default regularisers, and for --som-d=K > 1 the K heads
    of D (D_kwargs.num_heads) and their map (loss_kwargs.som_kwargs, every value explicit). Returns the new
    run description."""
    from stylegan_som import plugins, som
    from stylegan_som.losses.base import defaults_of

    loss = 'stylegan2' if loss is None else loss
    _check(loss in plugins.LOSSES, f'--loss: unknown loss {loss!r}; choose from {", ".join(plugins.LOSSES.names())}')
    defaults = defaults_of(dnnlib.util.get_obj_by_name(plugins.LOSSES.class_name(loss)))
    args.loss_kwargs.objective = loss
    if loss != 'stylegan2':
        desc += f'-{loss}'
    if not defaults['r1'] and gamma is None: # an explicit --gamma adds R1 to any objective
        args.loss_kwargs.r1_gamma = 0
    if not defaults['path_length']:
        args.loss_kwargs.pl_weight = 0
    if not defaults['style_mixing']:
        args.loss_kwargs.style_mixing_prob = 0
    if defaults['gp_weight']:
        args.loss_kwargs.gp_weight = defaults['gp_weight']
    if defaults['weight_clip']:
        args.loss_kwargs.weight_clip = defaults['weight_clip']

    som_d = 1 if som_d is None else som_d
    _check(som_d >= 1, f'--som-d must be at least 1, got {som_d}')
    if som_d == 1:
        for flag, value in [('--som-topo', som_topo), ('--som-sigma-start', som_sigma_start),
                ('--som-sigma-end', som_sigma_end), ('--som-normalize', som_normalize), ('--som-g-weights', som_g_weights),
                ('--som-bmu', som_bmu)]:
            _check(value is None, f'{flag} needs several SOM heads: give --som-d of 2 or more')
    else:
        topo = 'grid' if som_topo is None else som_topo
        _check(topo in som.TOPOLOGIES, f'--som-topo: unknown topology {topo!r}; choose from {", ".join(som.TOPOLOGIES)}')
        if topo == 'grid':
            try:
                som.grid_side(som_d)
            except ValueError:
                raise UserError(f'--som-topo=grid needs a square --som-d (4, 9, 16, 25, ...), got --som-d={som_d}; '
                    'use --som-topo=linear or --som-topo=circular for other counts') from None
        cfg_defaults = {'g_weights': 'mean', 'sigma_end': som.DEFAULT_SIGMA_END, 'sigma_start_floor': None,
            **SOM_DEFAULTS_BY_CFG.get(cfg, {})}
        sigma_end = cfg_defaults['sigma_end'] if som_sigma_end is None else som_sigma_end
        _check(sigma_end > 0, f'--som-sigma-end must be positive, got {sigma_end}')
        sigma_start = som_sigma_start
        if sigma_start is None: # half the diameter, at least the end width (the config's floor goes with its end)
            floor = cfg_defaults['sigma_start_floor'] if som_sigma_end is None else None
            sigma_start = som.default_sigma_start(som_d, topo, floor or sigma_end)
        _check(sigma_start > 0, f'--som-sigma-start must be positive, got {sigma_start}')
        args.D_kwargs.num_heads = som_d
        args.loss_kwargs.som_kwargs = dnnlib.EasyDict(num_heads=som_d, topology=topo, sigma_start=sigma_start,
            sigma_end=sigma_end, normalize=(True if som_normalize is None else bool(som_normalize)),
            g_weights=(cfg_defaults['g_weights'] if som_g_weights is None else som_g_weights),
            bmu=('logit' if som_bmu is None else som_bmu))
        desc += f'-som{som_d}{topo}'

    som_share = 'trunk' if som_share is None else som_share
    _check(som_share in SOM_SHARE, f'--som-share: unknown value {som_share!r}; choose from {", ".join(SOM_SHARE)}')
    if som_share == 'none':
        # K complete single-head discriminators instead of K heads on one trunk (the official code's layout).
        member = dnnlib.EasyDict(args.D_kwargs)
        member.pop('num_heads', None)
        args.D_kwargs = dnnlib.EasyDict(class_name='stylegan_som.networks.separate.SeparateDiscriminators',
            num_heads=som_d, discriminator_kwargs=member)
        desc += '-separate'
        _check(not args.loss_kwargs.get('fm_weight'), '--fm needs one trunk whose features the heads score; '
            '--som-share=none has K separate discriminators')
    return desc

#----------------------------------------------------------------------------

def _continues_run(args):
    """Whether --resume continues the run that wrote the pickle (restoring optimizer states, counters, p and
    RNG) rather than starting a new run from its weights (upstream's transfer learning). It continues when the
    pickle carries a training state and was trained with the same networks on the same data."""
    path = args.resume_pkl
    if dnnlib.util.is_url(path):
        return False # upstream's pretrained pickles carry no training state
    from stylegan_som import legacy, snapshot
    try:
        with open(path, 'rb') as f:
            data = legacy.load_network_pkl(f)
        state = snapshot.get_training_state(data)
    except Exception as err: # pylint: disable=broad-except
        raise UserError(f'--resume: cannot load {path}: {err}')
    if state is None:
        print(f'--resume: {path} has no training state; starting a new run from its weights.')
        return False
    reasons = []
    if _strip_performance(state['G_kwargs']) != _strip_performance(json.loads(json.dumps(args.G_kwargs))):
        reasons.append('generator')
    if _strip_performance(state['D_kwargs']) != _strip_performance(json.loads(json.dumps(args.D_kwargs))):
        reasons.append('discriminator')
    old_data = data.get('training_set_kwargs') or {}
    new_data = args.training_set_kwargs
    for key in ('resolution', 'use_labels'):
        if old_data.get(key) != new_data.get(key):
            reasons.append(f'dataset {key}')
    old_name = os.path.splitext(os.path.basename(str(old_data.get('path', ''))))[0]
    new_name = os.path.splitext(os.path.basename(str(new_data.get('path', ''))))[0]
    if old_name != new_name:
        reasons.append(f'dataset ({old_name} vs {new_name})')
    if reasons:
        print(f'--resume: {path} was trained with a different {", ".join(reasons)}; starting a new run from its weights.')
        return False
    print(f'--resume: continuing the run of {path} at kimg {state["cur_nimg"] / 1000:.1f} (optimizer states, '
        'augmentation, counters and RNG restored).')
    snapshot.remove_stale_temp_files(os.path.dirname(os.path.abspath(path))) # left by a writer that was killed
    return True

#----------------------------------------------------------------------------
# Launch.

def _init_distributed(rank, num_gpus, temp_dir, device):
    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    init_file = os.path.abspath(os.path.join(temp_dir, '.torch_distributed_init'))
    init_method = ('file:///' + init_file.replace('\\', '/')) if os.name == 'nt' else f'file://{init_file}'
    if os.name == 'nt':
        backend = 'gloo'
    dist_util.init_process_group(backend, init_method, rank=rank, world_size=num_gpus)

def _device_for(local_rank, device_type):
    if device_type == 'cuda':
        torch.cuda.set_device(local_rank)
        return torch.device('cuda', local_rank)
    return torch.device('cpu')

def subprocess_fn(rank, args, temp_dir, device_type='cuda'):
    """One training process of a --gpus=N launch (or the only one)."""
    dnnlib.util.Logger(file_name=os.path.join(args.run_dir, 'log.txt'), file_mode='a', should_flush=True)
    device = _device_for(rank, device_type)
    if args.num_gpus > 1:
        _init_distributed(rank, args.num_gpus, temp_dir, device)
        if device_type == 'cpu':
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.num_gpus)) # processes share the cores
    _run(rank, args, device)

# Exit code of a process stopped by bad data found during training (click's usage errors exit with 2).
DATA_ERROR_EXIT = 3
# Exit code of a run stopped because a loss or a weight turned NaN or infinite (stylegan_som.nonfinite).
NONFINITE_EXIT = 4
# Exit code of a run stopped because a snapshot could not be written (disk full, ...).
SNAPSHOT_ERROR_EXIT = 5

def data_error_line(err):
    """The dataset's own one-line message, also when a DataLoader worker raised it: the main process then
    re-raises it with the worker's traceback as its text, and the message is that traceback's last line."""
    lines = str(err).strip().splitlines() or ['']
    prefix = f'{type(err).__module__}.{type(err).__name__}: '
    if len(lines) > 1 and lines[-1].startswith(prefix):
        return lines[-1][len(prefix):]
    return ' '.join(line.strip() for line in lines)

def _run(rank, args, device):
    from stylegan_som import interrupt, training_loop
    from stylegan_som.dataset_sources import DatasetError
    from stylegan_som.nonfinite import NonFiniteError
    from stylegan_som.legacy import NetworkPickleError
    from stylegan_som.snapshot import SnapshotWriteError
    training_stats.init_multiprocessing(rank=rank, sync_device=(device if args.num_gpus > 1 else None))
    if rank != 0:
        custom_ops.verbosity = 'none'
    exit_code = None # set when the process ends with a code of its own
    together = True  # whether every rank ends here at the same step (then they pass a last barrier together)
    try:
        with interrupt.StopOnSignal() as stop: # SIGTERM/SIGINT: finish the step, write a snapshot, exit 143/130
            training_loop.training_loop(rank=rank, device=device, stop_fn=stop.requested, **args)
    except interrupt.Interrupted as err:
        if rank == 0:
            print(err)
        exit_code = err.exit_code
    except DatasetError as err:
        # A file that passed the header check at start-up but cannot be decoded (e.g. truncated): one line
        # naming it, in the log too, instead of a traceback through the data loader.
        print(f'Error: --data: {data_error_line(err)}')
        exit_code, together = DATA_ERROR_EXIT, False
    except NetworkPickleError as err: # a --resume URL, loaded only here (local files were checked up front)
        if rank == 0:
            print(f'Error: --resume: {err}')
        exit_code, together = 2, False
    except NonFiniteError as err:
        if rank == 0:
            print(f'Error: {err} (try lower --glr/--dlr, or a larger --gamma)')
        exit_code, together = NONFINITE_EXIT, False
    except SnapshotWriteError as err:
        print(f'Error: {err}')
        exit_code, together = SNAPSHOT_ERROR_EXIT, False
    except Exception as err: # pylint: disable=broad-except
        if args.num_gpus > 1 and dist_util.is_peer_failure(err):
            print(dist_util.peer_failure_line(err, rank)) # no teardown: the others are gone or stuck
            dist_util.leave(dist_util.PEER_LOST_EXIT)
        if args.num_gpus > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        raise
    if args.num_gpus > 1:
        dist_util.end_run(rank, together, exit_code or 0)
    if exit_code is not None:
        raise SystemExit(exit_code) from None

def pick_run_dir(outdir, desc):
    prev = [x for x in os.listdir(outdir) if os.path.isdir(os.path.join(outdir, x))] if os.path.isdir(outdir) else []
    ids = [int(m.group()) for m in (re.match(r'^\d+', x) for x in prev) if m is not None]
    return os.path.join(outdir, f'{max(ids, default=-1) + 1:05d}-{desc}')

def print_options(args, device_type='cuda'):
    print()
    print('Training options:')
    print(json.dumps(args, indent=2))
    print()
    print(f'Output directory:   {args.run_dir}')
    print(f'Training data:      {args.training_set_kwargs.path}')
    print(f'Training duration:  {args.total_kimg} kimg')
    print(f'Number of {"GPUs" if device_type == "cuda" else "processes"}:'.ljust(20) + f'{args.num_gpus}')
    print(f'Number of images:   {args.training_set_kwargs.max_size}')
    print(f'Image resolution:   {args.training_set_kwargs.resolution}')
    print(f'Conditional model:  {args.training_set_kwargs.use_labels}')
    print(f'Dataset x-flips:    {args.training_set_kwargs.xflip}')
    print()

def create_run_dir(args):
    """Make the run directory and write training_options.json; an OSError becomes a UserError naming --outdir.
    The id is taken atomically (mkdir): when another run got it first, the next free one is used and args.run_dir
    says which."""
    try:
        outdir, name = os.path.split(args.run_dir)
        os.makedirs(outdir or '.', exist_ok=True)
        run_id, desc = name.split('-', 1)
        run_id = int(run_id)
        while True:
            try:
                os.mkdir(args.run_dir)
                break
            except FileExistsError:
                taken = int(os.path.basename(pick_run_dir(outdir, desc)).split('-', 1)[0])
                run_id = max(run_id + 1, taken)
                args.run_dir = os.path.join(outdir, f'{run_id:05d}-{desc}')
                print(f'Output directory:   {args.run_dir} (the id first picked was taken meanwhile)')
        with open(os.path.join(args.run_dir, 'training_options.json'), 'wt') as f:
            json.dump(args, f, indent=2)
    except OSError as err:
        raise UserError(f'--outdir: cannot create {args.run_dir}: {err.strerror or err}') from None

def fetch_resume_pkl(args):
    """Download a --resume URL into the cache before the run directory exists, so that an offline machine
    fails with one message naming --resume instead of leaving an empty run behind. Local files were checked
    while parsing the options."""
    url = args.get('resume_pkl')
    if url is None or not dnnlib.util.is_url(url, allow_file_urls=True):
        return
    try:
        with dnnlib.util.open_url(url):
            pass
    except (OSError, ValueError) as err:
        raise UserError(f'--resume: {err}') from None

#----------------------------------------------------------------------------

def _comma_list(ctx, param, value):
    _ = ctx, param
    if value is None:
        return None
    if value.lower() == 'none' or value == '':
        return []
    return [x.strip() for x in value.split(',') if x.strip()]

def _som_choices(name):
    from stylegan_som import som
    return list(getattr(som, name))

def _loss_names():
    from stylegan_som import plugins
    return plugins.LOSSES.names()

def _augpipe_names():
    try:
        return list(_augpipe_specs())
    except ImportError:
        return ['blit', 'geom', 'color', 'filter', 'noise', 'cutout', 'bg', 'bgc', 'bgcf', 'bgcfn', 'bgcfnc']

@click.command(context_settings=dict(max_content_width=120))
@click.pass_context

# General.
@click.option('--outdir',       help='Parent folder of the run directories', metavar='DIR', default='training-runs', show_default=True)
@click.option('--gpus',         help='Processes to train with: one per GPU, or CPU processes without CUDA [default: 1]', type=int, metavar='INT')
@click.option('--snap',         help='Ticks between network and image snapshots [default: 50]', type=int, metavar='TICKS')
@click.option('--metrics',      help='Metrics at each snapshot, comma-separated, or "none" [default: fid50k_full; none for tiny and cpu]', callback=_comma_list, metavar='LIST')
@click.option('--seed',         help='Seed for initialisation, data order and noise [default: 0]', type=int, metavar='INT')
@click.option('-n', '--dry-run', help='Show the options and the run directory, then stop', is_flag=True)

# Dataset.
@click.option('--data',         help='Images: folder, zip, tar, CIFAR-10 python tarball or MNIST idx files', metavar='PATH')
@click.option('--cond',         help='Condition G and D on the dataset labels [default: false]', type=bool, metavar='BOOL')
@click.option('--subset',       help='Use a fixed random subset of N images [default: all]', type=int, metavar='INT')
@click.option('--mirror',       help='Add x-flipped copies of the images [default: false]', type=bool, metavar='BOOL')

# Base config and overrides.
@click.option('--cfg',          help='Base configuration [default: auto]', type=click.Choice(list(CFG_SPECS)))
@click.option('--gamma',        help='R1 weight, instead of the config\'s', type=float, metavar='FLOAT')
@click.option('--kimg',         help='Training length in thousands of real images, instead of the config\'s', type=int, metavar='INT')
@click.option('--batch',        help='Images per optimizer step (all processes), instead of the config\'s', type=int, metavar='INT')
@click.option('--batch-gpu',    help='Images per process and accumulation round [default: batch / gpus]', type=int, metavar='INT')
@click.option('--cbase',        help='Channel budget: a layer at resolution r gets min(cbase / r, cmax) channels', type=int, metavar='INT')
@click.option('--cmax',         help='Most channels in any layer', type=int, metavar='INT')
@click.option('--fm',           help='Feature matching in G\'s loss with this weight: the distance between the batch means of D\'s final features on reals and fakes [default: 0, off]', type=float, metavar='FLOAT')
@click.option('--map', '--map-depth', 'map_depth', help='Layers in the mapping network', type=int, metavar='INT')
@click.option('--glr',          help='Learning rate of G [default: the config\'s; stacked-mnist: 0.0016, 8x D\'s]', type=float, metavar='FLOAT')
@click.option('--dlr',          help='Learning rate of D', type=float, metavar='FLOAT')
@click.option('--lr-rampdown',  help='Take both learning rates to 0 (half-cosine) over this last fraction of --kimg [default: toy and stacked-mnist: 0.25, else off]', type=float, metavar='FRAC')
@click.option('--d-width',      help='Width of D as a fraction of G\'s: scales D\'s channel budget (or the MLP\'s features) [default: 1]', type=float, metavar='FRAC')
@click.option('--d-pack',       help='PacGAN: D scores packs of this many samples, concatenated as channels (dcgan, resnet, mlp) [default: 1]', type=int, metavar='INT')
@click.option('--mbstd-group',  help='Group size of D\'s minibatch standard deviation', type=int, metavar='INT')
@click.option('--tick',         help='Thousands of images between progress lines [default: 4; tiny: 1]', type=int, metavar='KIMG')

# Augmentation of what D sees.
@click.option('--aug',          help='ada: adaptive p; fixed: constant --p; noaug: none [default: ada]', type=click.Choice(['noaug', 'ada', 'fixed']))
@click.option('--p',            help='Augmentation probability with --aug=fixed', type=float, metavar='FLOAT')
@click.option('--target',       help='ADA target for the mean sign of D on reals, with --aug=ada [default: 0.6]', type=float, metavar='FLOAT')
@click.option('--augpipe',      help='Which augmentations [default: bgc]', type=click.Choice(_augpipe_names()))

# Starting point.
@click.option('--resume',       help='Network pickle to start from, a name below, or "latest" [default: noresume]', metavar='PKL')
@click.option('--freezed',      help='Keep this many of D\'s highest-resolution layers fixed [default: 0]', type=int, metavar='INT')
@click.option('--trust-pickle', help='Load the --resume pickle even where it would run code this installation does not know (only for files you trust) [env: SGSOM_TRUST_PICKLES=1]', is_flag=True)

# Speed.
@click.option('--fp32',         help='Train in float32 throughout (no fp16 layers)', type=bool, metavar='BOOL')
@click.option('--bf16',         help='On a CPU, run G and D in bfloat16 autocast (faster with AVX-512 BF16 or AMX) [default: stacked-mnist: true on such a CPU; else false]', type=bool, metavar='BOOL')
@click.option('--nhwc',         help='Channels-last memory layout for the fp16 layers', type=bool, metavar='BOOL')
@click.option('--nobench',      help='Turn off cuDNN autotuning', type=bool, metavar='BOOL')
@click.option('--allow-tf32',   help='Let matmul and convolutions use TF32', type=bool, metavar='BOOL')
@click.option('--workers',      help='Data-loading worker processes per training process [default: 3, at most the cores per process]', type=int, metavar='INT')

# Backbone.
@click.option('--arch',         help='Networks: stylegan2, or small ones for CPU studies, see "Backbones" below [default: stylegan2; toy: mlp; stacked-mnist: dcgan]', type=click.Choice(_backbone_names()))
@click.option('--g-arch',       help='G\'s own backbone, paired with --arch\'s D: dcgan or resnet with either [default: as --arch]', type=click.Choice(_MIXABLE_ARCHS))

# Loss and SOM discriminator heads.
@click.option('--loss',         help='GAN objective, see "Losses" below [default: stylegan2]', type=click.Choice(_loss_names()))
@click.option('--r2-gamma',     help='R2 weight: zero-centred gradient penalty on fakes, as R1 on reals [default: rpgan: R1\'s gamma; else 0, off]', type=float, metavar='FLOAT')
@click.option('--d-reg-interval', help='Steps between D\'s penalties (R1, R2, GP), lazily at that multiple of the weight; 1 = every step [default: 16; toy and rpgan: 1]', type=int, metavar='INT')
@click.option('--som-d',        help='Discriminator heads trained as a self-organising map (1 = plain GAN) [default: 1]', type=int, metavar='K')
@click.option('--som-topo',     help='Map of the heads; grid needs a square K [default: grid]', type=click.Choice(_som_choices('TOPOLOGIES')))
@click.option('--som-sigma-start', help='Neighbourhood width at the start [default: half the map\'s diameter, at least the end width; toy: at least 0.3]', type=float, metavar='FLOAT')
@click.option('--som-sigma-end', help='Neighbourhood width at the end of --kimg, reached exponentially [default: 0.3; toy: 1.0]', type=float, metavar='FLOAT')
@click.option('--som-normalize', help='Give every head the same total weight on reals (mean 1 per head over the batch); without it one head tends to win every real [default: true]', type=bool, metavar='BOOL')
@click.option('--som-g-weights', help='How G\'s loss weighs the heads: mean (all alike), neighbourhood (per fake, the heads around its own best-matching head), balance (neighbourhood, with the share of fakes that over-occupy their head\'s unit sent to the units fakes under-occupy, by the reals\' and fakes\' running shares of units), transport (each fake sent to one unit by a balanced assignment of the batch in the reals\' unit shares, then its neighbourhood) [default: transport with --cfg=toy, neighbourhood with stacked-mnist, else mean]', type=click.Choice(_som_choices('G_WEIGHTINGS')))
@click.option('--som-bmu',      help='A sample\'s unit on the map: logit (its highest-scoring head), prototype (its nearest prototype in D\'s features, a Kohonen map learnt from the reals) [default: logit]', type=click.Choice(_som_choices('BMU_RULES')))
@click.option('--som-share',    help='trunk: K heads on one shared D trunk; none: K complete discriminators [default: trunk]', type=click.Choice(list(SOM_SHARE)))
@click.option('--d-head',       help='D head: cmap (StyleGAN2\'s label projection), projection (Miyato & Koyama), linear, mlp (a hidden layer per head) [default: cmap with --cond=1, else linear]', type=click.Choice(_head_names()))

# Attention and spectral normalisation.
@click.option('--g-attn',       help='Self-attention in G on the features after these resolutions\' blocks, comma-separated [default: none]', callback=_comma_list, metavar='LIST')
@click.option('--d-attn',       help='Self-attention in D on the features entering these resolutions\' blocks, comma-separated [default: none]', callback=_comma_list, metavar='LIST')
@click.option('--d-sn',         help='Spectral normalisation of every weight of D [default: false; true for dcgan and resnet, but not in --cfg=stacked-mnist]', type=bool, metavar='BOOL')
@click.option('--d-bn',         help='Batch normalisation after each strided convolution of D (dcgan) [default: true in --cfg=stacked-mnist, else false]', type=bool, metavar='BOOL')

def main(ctx, outdir, dry_run, **config_kwargs):
    """Train a GAN as in "Training Generative Adversarial Networks with Limited Data" (StyleGAN2-ADA).

    Examples:

    \b
    # Train with a custom dataset on 1 GPU.
    python train.py --outdir=~/training-runs --data=~/mydataset.zip --gpus=1

    \b
    # Class-conditional CIFAR-10 on 2 GPUs.
    python train.py --outdir=~/training-runs --data=~/datasets/cifar10.zip --gpus=2 --cfg=cifar --cond=1

    \b
    # A small model on a CPU in minutes.
    python train.py --data=~/datasets/cifar10.zip --cfg=cpu --kimg=10 --snap=5

    \b
    # Continue the newest run under --outdir exactly where its last snapshot left off.
    python train.py --data=~/datasets/cifar10.zip --cfg=cifar --resume=latest

    \b
    Base configs (--cfg):
      auto       Reasonable defaults from the resolution and GPU count.
      stylegan2  StyleGAN2 config F at 1024x1024.
      paper256   FFHQ and LSUN Cat at 256x256, as in the paper.
      paper512   BreCaHAD and AFHQ at 512x512, as in the paper.
      paper1024  MetFaces at 1024x1024, as in the paper.
      cifar      CIFAR-10 at 32x32, as in the paper.
      tiny       Very small networks for tests (seconds per kimg on a CPU).
      cpu        Small networks for a CPU demo (about a minute per kimg at 32x32).
      toy        MLPs on the 2-D toys (--data=ring8 or grid25), a few CPU minutes per run.
      stacked-mnist  DCGAN on stacked MNIST at 28x28 (--data=stacked-mnist), sized for a CPU.

    \b
    Backbones (--arch):
      stylegan2  StyleGAN2's generator and discriminator (every config but toy and stacked-mnist).
      dcgan      DCGAN (SNGAN's standard CNN): transposed convolutions with batch norm in G, spectral norm in D.
      resnet     SNGAN's ResNet generator and discriminator.
      mlp        Multilayer perceptrons for 2-D points (--data=ring8, grid25).
    --g-arch gives G the other conv backbone: --cfg=stacked-mnist --g-arch=resnet pairs SNGAN's ResNet G with
    the config's DCGAN D.
    Heads (--som-d), losses and attention work with each; the small ones have one w, so no path-length
    regularisation and no style mixing. Built-in datasets (--data=NAME): cifar10, discs8, mnist, fashion-mnist
    and stacked-mnist (fetched or made once into the cache), ring8, grid25 and grid25-unequal (2-D points,
    generated).

    \b
    Resume sources (--resume):
      ffhq256 ffhq512 ffhq1024 celebahq256 lsundog256   upstream's transfer-learning networks
      <PATH or URL>  A network pickle. A snapshot of this code base trained with the same networks and
                     data continues its run exactly (counters, optimizers, augmentation, RNG); any other
                     pickle starts a new run from its weights.
      latest         The newest snapshot under --outdir (a new run if there is none).

    \b
    Losses (--loss), with the regularisers each gets by default:
      stylegan2  Non-saturating logistic, R1 (--gamma), path length and style mixing where the config has them.
      ns         The same non-saturating logistic loss alone: no R1, no path length, no style mixing.
      minimax    The original minimax loss (G minimises log(1 - D(G(z)))); no R1.
      hinge      Hinge loss; R1.
      lsgan      Least squares (targets 0 for fakes, 1 for reals); R1.
      softmax    SoftMax GAN (softmax over the batch); R1.
      rahinge    Relativistic average hinge; R1.
      rpgan      Relativistic pairing, softplus(D(G(z)) - D(x)) per pair (R3GAN); R1 and R2 (--r2-gamma), every step.
      wgan       Wasserstein, D's weights clipped to [-0.01, 0.01] after each step; no R1.
      wgan-gp    Wasserstein with gradient penalty 10 on interpolates (lazy, like R1); no R1.
    An explicit --gamma adds R1 to any of them. Every loss works with --som-d heads and conditional D.

    \b
    SOM heads (--som-d=K): D's K heads sit on a map (--som-topo); each real image trains its best-matching
    head fully and the others by exp(-d^2 / (2 sigma^2)), sigma shrinking from --som-sigma-start to
    --som-sigma-end over --kimg. The tick line shows sigma and the share of reals each head wins.

    \b
    Without CUDA, training runs on the CPU; --gpus=N then starts N CPU processes (gloo). Batch norm (dcgan,
    resnet) normalises each process's share of the batch; the running statistics are averaged after each step.
    Under torchrun, the number of processes comes from torchrun. Idle threads sleep (OMP_WAIT_POLICY=PASSIVE)
    so that a busy machine does not stall training; on a machine of its own, OMP_WAIT_POLICY=ACTIVE python
    train.py ... runs 1.4-2x faster.
    """
    dist_env = torchrun_env()
    device_type = 'cuda' if torch.cuda.is_available() else 'cpu'
    if config_kwargs.pop('trust_pickle'): # through the environment, so that every training process sees it
        os.environ[persistence.TRUST_ENV] = '1'
    try:
        run_desc, args = setup_training_loop_kwargs(outdir=outdir, device_type=device_type,
            world_size=(dist_env[2] if dist_env is not None else None), **config_kwargs)
        if args.num_gpus > 1 or dist_env is not None:
            dist_util.collective_timeout() # a bad $SGSOM_DIST_TIMEOUT stops here, before any process starts
        if dist_env is None and device_type == 'cuda' and args.num_gpus > torch.cuda.device_count():
            raise UserError(f'--gpus={args.num_gpus} but only {torch.cuda.device_count()} CUDA device(s) are visible')
    except (UserError, dist_util.DistConfigError) as err:
        ctx.fail(str(err))
    dnnlib.util.Logger(should_flush=True) # after option errors, which click prints to stderr

    if dist_env is not None:
        _main_torchrun(args, run_desc, outdir, dry_run, dist_env, device_type)
        return

    args.run_dir = pick_run_dir(outdir, run_desc)
    print_options(args, device_type)
    if device_type != 'cuda':
        print(f'CUDA is not available: training on the CPU with {args.num_gpus} process(es).')
    if dry_run:
        print('Dry run; exiting.')
        return

    print('Creating output directory...')
    try:
        fetch_resume_pkl(args)
        create_run_dir(args)
    except UserError as err:
        ctx.fail(str(err))
    print('Launching processes...')
    with tempfile.TemporaryDirectory() as temp_dir:
        if args.num_gpus == 1:
            subprocess_fn(rank=0, args=args, temp_dir=temp_dir, device_type=device_type)
            return
        from stylegan_som import interrupt
        try:
            procs = torch.multiprocessing.spawn(fn=subprocess_fn, args=(args, temp_dir, device_type), nprocs=args.num_gpus, join=False)
            with interrupt.ForwardSignals([p.pid for p in procs.processes]): # the processes stop together, with a snapshot
                while not procs.join():
                    pass
        except torch.multiprocessing.ProcessExitedException as err:
            if err.exit_code not in (2, DATA_ERROR_EXIT, NONFINITE_EXIT, SNAPSHOT_ERROR_EXIT, dist_util.PEER_LOST_EXIT,
                    128 + signal.SIGTERM, 128 + signal.SIGINT):
                raise
            raise SystemExit(err.exit_code) from None # the process said why in one line

def _main_torchrun(args, run_desc, outdir, dry_run, dist_env, device_type):
    # Processes already exist; rank 0 names and creates the run directory and tells the others.
    rank, local_rank, world_size = dist_env
    if dry_run:
        if rank == 0:
            args.run_dir = pick_run_dir(outdir, run_desc)
            print_options(args, device_type)
            print('Dry run; exiting.')
        return
    device = _device_for(local_rank, device_type)
    dist_util.init_process_group(('nccl' if device_type == 'cuda' else 'gloo'), 'env://')
    box = [None]
    if rank == 0:
        args.run_dir = pick_run_dir(outdir, run_desc)
        print_options(args, device_type)
        try:
            fetch_resume_pkl(args)
            create_run_dir(args)
        except UserError as err:
            print(f'Error: {err}')
            args.run_dir = None # the other ranks stop too
        box = [args.run_dir]
    torch.distributed.broadcast_object_list(box, src=0)
    if box[0] is None:
        torch.distributed.destroy_process_group()
        raise SystemExit(2)
    args.run_dir = box[0]
    dnnlib.util.Logger(file_name=os.path.join(args.run_dir, 'log.txt'), file_mode='a', should_flush=True)
    if device_type == 'cpu':
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(int(os.environ.get('LOCAL_WORLD_SIZE', world_size)), 1)))
    _run(rank, args, device)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
