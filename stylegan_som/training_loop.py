"""The main training loop: StyleGAN2-ADA's phases, EMA, ADA, ticks and snapshots, plus a training state in every
snapshot so that a killed run resumes on exactly the same trajectory. What is evaluated at a snapshot (metrics)
comes in as callbacks built by the caller, and what the loss reports per tick (e.g. the SOM heads' occupancy)
comes from loss.tick_report, so the loop names neither.

Randomness is tied to the position in training rather than to one long RNG stream: the data order is a
function of (seed, image index), and every (step, phase, accumulation round) draws its latents, labels, noise
inputs and augmentations from a generator seeded with (seed, step, phase, global round). A resumed run
therefore sees the same numbers as an uninterrupted one, and N processes with batch B/N per process see the
same numbers as one process with B/N per accumulation round."""

import copy
import json
import os
import signal
import time

import numpy as np
import PIL.Image
import psutil
import torch

import dnnlib
from torch_utils import dist_util
from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix

from . import interrupt
from . import nonfinite
from . import pictures
from . import snapshot as snapshot_lib
from . import weights as weights_lib

#----------------------------------------------------------------------------
# Snapshot image grid.

def setup_snapshot_image_grid(training_set, random_seed=0):
    """Pick the images for reals.png: about 8K x 4K pixels; one row per class for labelled data."""
    rnd = np.random.RandomState(random_seed)
    gw = int(np.clip(7680 // training_set.image_shape[2], 7, 32))
    gh = int(np.clip(4320 // training_set.image_shape[1], 4, 32))

    if not training_set.has_labels:
        order = np.arange(len(training_set))
        rnd.shuffle(order)
        grid_indices = [int(order[i % len(order)]) for i in range(gw * gh)]
    else:
        groups = dict() # label tuple -> dataset indices
        for idx in range(len(training_set)):
            key = tuple(training_set.get_details(idx).raw_label.flat[::-1])
            groups.setdefault(key, []).append(idx)
        keys = sorted(groups.keys())
        for key in keys:
            rnd.shuffle(groups[key])
        grid_indices = []
        for y in range(gh):
            key = keys[y % len(keys)]
            members = groups[key]
            grid_indices += [members[x % len(members)] for x in range(gw)]
            groups[key] = [members[(i + gw) % len(members)] for i in range(len(members))] # next row of this class

    images, labels = zip(*[training_set[i] for i in grid_indices])
    return (gw, gh), np.stack(images), np.stack(labels)

def print_network_summaries(G, D, batch_size, device):
    """Print G's and D's layer tables, leaving both networks exactly as they were. The pass runs in eval mode: in
    training mode it would move G's w_avg and batch-norm statistics by a dummy batch (upstream feeds torch.empty,
    whose uninitialised memory can hold NaN, which then never leaves a batch-norm G's running statistics) and
    advance D's spectral-norm power iteration on this rank only."""
    modes = G.training, D.training
    z = torch.zeros([batch_size, G.z_dim], device=device)
    c = torch.zeros([batch_size, G.c_dim], device=device)
    img = misc.print_module_summary(G.eval(), [z, c])
    misc.print_module_summary(D.eval(), [img, c])
    G.train(modes[0])
    D.train(modes[1])

def save_image_grid(img, fname, drange, grid_size):
    lo, hi = drange
    img = np.asarray(img, dtype=np.float32)
    img = np.rint((img - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)
    gw, gh = grid_size
    _n, C, H, W = img.shape
    img = img.reshape(gh, gw, C, H, W).transpose(0, 3, 1, 4, 2).reshape(gh * H, gw * W, C)
    if C not in (1, 3):
        raise ValueError(f'save_image_grid: expected 1 or 3 channels, got {C}')
    PIL.Image.fromarray(img[:, :, 0] if C == 1 else img, 'L' if C == 1 else 'RGB').save(fname)

#----------------------------------------------------------------------------
# Data order and per-step randomness.

class ResumableSampler(torch.utils.data.Sampler):
    """Endless shuffled stream of dataset indices that can start at any step in O(1).

    The global stream is one fresh permutation per pass over the dataset, seeded by (seed, pass). Step t uses
    global items [t*B, (t+1)*B); rank r takes the contiguous slice r*B/N ... (r+1)*B/N of it, so each rank's
    accumulation rounds line up with those of a single process that runs the whole batch in rounds."""

    def __init__(self, dataset_size, batch_size, rank=0, num_replicas=1, seed=0, start_step=0):
        super().__init__()
        if dataset_size <= 0:
            raise ValueError('ResumableSampler: the dataset is empty')
        if batch_size % num_replicas != 0:
            raise ValueError(f'batch size {batch_size} is not divisible by {num_replicas} processes')
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.rank = rank
        self.num_replicas = num_replicas
        self.seed = seed
        self.start_step = start_step

    def _permutation(self, epoch):
        return np.random.default_rng([self.seed, epoch]).permutation(self.dataset_size)

    def __iter__(self):
        per_rank = self.batch_size // self.num_replicas
        step = self.start_step
        epoch, perm = -1, None
        while True:
            base = step * self.batch_size + self.rank * per_rank
            for k in range(base, base + per_rank):
                if k // self.dataset_size != epoch:
                    epoch = k // self.dataset_size
                    perm = self._permutation(epoch)
                yield int(perm[k % self.dataset_size])
            step += 1

def _derive_seed(*words):
    """A 63-bit seed from a tuple of non-negative integers (stable across runs, platforms and processes)."""
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(2, np.uint32).astype(np.uint64)
        .dot(np.array([1 << 32, 1], dtype=np.uint64)) >> np.uint64(1))

_Z_STREAM, _C_STREAM, _ROUND_STREAM = 1, 2, 3 # keep the streams of a step apart

def _draw_latents(random_seed, batch_idx, phase_idx, batch_size, z_dim):
    gen = torch.Generator().manual_seed(_derive_seed(random_seed, batch_idx, phase_idx, _Z_STREAM))
    return torch.randn([batch_size, z_dim], generator=gen)

def _draw_label_indices(random_seed, batch_idx, phase_idx, batch_size, num_items):
    rnd = np.random.RandomState(_derive_seed(random_seed, batch_idx, phase_idx, _C_STREAM) % (1 << 32))
    return rnd.randint(num_items, size=batch_size)

def lr_rampdown_factor(cur_nimg, total_nimg, rampdown):
    """Multiplier of the learning rates: 1, then a half-cosine from 1 to 0 over the last `rampdown` fraction of
    the run (None or 0 = constant). Letting G settle at the end sharpens its samples (fewer between modes)."""
    if not rampdown:
        return 1.0
    left = max(total_nimg - cur_nimg, 0) / (rampdown * total_nimg)
    return float(0.5 - 0.5 * np.cos(np.pi * min(left, 1.0)))

#----------------------------------------------------------------------------

def _prepare_callbacks(callbacks, device, rank, num_gpus):
    """A snapshot callback is called on all ranks as callback(snapshot_data, snapshot_pkl, run_dir, rank,
    num_gpus, device) and returns {name: value} for tfevents (Metrics/<name>) or None. One with a
    `setup(device, rank, num_gpus)` method is set up here, once, before training; it returns False to be left
    out (e.g. metrics whose detector is unreachable) and must answer the same on all ranks."""
    if callable(callbacks):
        callbacks = [callbacks]
    kept = []
    for callback in callbacks:
        setup = getattr(callback, 'setup', None)
        if setup is None or setup(device=device, rank=rank, num_gpus=num_gpus) is not False:
            kept.append(callback)
    return kept

def _gather_per_rank(obj, num_gpus):
    if num_gpus <= 1:
        return [obj]
    out = [None] * num_gpus
    torch.distributed.all_gather_object(out, obj)
    return out

def _broadcast_module(module):
    # Parameters and buffers from rank 0; used for G_ema, which DDP never touches during training.
    for tensor in misc.params_and_buffers(module):
        torch.distributed.broadcast(tensor.data, src=0)

def _batch_norm_stats(modules):
    # Running statistics of batch-norm layers (the small backbones' G and D; StyleGAN2 has none).
    return [b for m in modules for layer in m.modules() if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm)
        for b in (layer.running_mean, layer.running_var) if b is not None]

def _average_across_processes(tensors):
    # Each process normalises by its own slice of the batch, so their running statistics drift apart; their mean is
    # the statistics of the whole batch (the running averages are linear), and keeps the ranks identical.
    if len(tensors) == 0:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    torch.distributed.all_reduce(flat)
    flat /= torch.distributed.get_world_size()
    for t, new in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(new.reshape(t.shape))

def _agreed_stop(stop_fn, num_gpus, device, pending):
    """The signal number to stop at after this step (0: go on), the same on every rank. With several processes the
    requests are all-reduced now and read one step later, so that a GPU never waits for the answer."""
    local = int(stop_fn() or 0) if stop_fn is not None else 0
    if num_gpus <= 1:
        return local
    flag = torch.tensor([local], dtype=torch.int64, device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    previous, pending[0] = pending[0], flag
    return int(previous.item()) if previous is not None else 0

#----------------------------------------------------------------------------
# Set-up, in the order training_loop runs it (the order fixes what is drawn from the global RNGs).

def _setup_torch(device, rank, random_seed, cudnn_benchmark, allow_tf32):
    """This process's device (default cuda:rank when CUDA is present), the global seeds and the backend switches."""
    if device is None:
        device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')
    device = torch.device(device)
    is_cuda = (device.type == 'cuda')
    # One seed on all ranks: every process builds identical networks, and single- and multi-process runs agree.
    np.random.seed(random_seed)
    torch.manual_seed(random_seed)
    if is_cuda:
        torch.backends.cudnn.benchmark = cudnn_benchmark
        torch.backends.cuda.matmul.allow_tf32 = allow_tf32
        torch.backends.cudnn.allow_tf32 = allow_tf32
    conv2d_gradfix.enabled = is_cuda        # its speed-up is for cuDNN; the plain path is exact on CPU
    grid_sample_gradfix.enabled = True      # the augmentation pipe needs its double backward
    return device

def _load_training_set(training_set_kwargs, rank):
    if rank == 0:
        print('Loading training set...')
    training_set = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    if rank == 0:
        print()
        print('Num images: ', len(training_set))
        print('Image shape:', training_set.image_shape)
        print('Label shape:', training_set.label_shape)
        print()
    return training_set

def _load_resume(resume_pkl, resume_training_state, rank):
    """The resume pickle's contents (None without one) and its training state (None unless continuing its run)."""
    if resume_pkl is None:
        return None, None
    from . import legacy
    if rank == 0:
        print(f'Resuming from "{resume_pkl}"')
    with dnnlib.util.open_url(resume_pkl) as f:
        resume_data = legacy.load_network_pkl(f)
    state = None
    if resume_training_state:
        state = snapshot_lib.get_training_state(resume_data)
        if state is None:
            raise ValueError(f'{resume_pkl}: no training state in this pickle, cannot continue its run')
    return resume_data, state

def _build_networks(training_set, G_kwargs, D_kwargs, resume_pkl, resume_training_state, random_seed, rank, device):
    """G, D and G_ema on `device`, and the training state of the resume pickle (None unless continuing its run).

    A resume always takes the pickle's weights. Networks of persistent classes are rebuilt from the pickle's
    recorded init kwargs plus the run's plugins and per-run settings (attach.RUN_KWARGS), parameters copied by
    name, heads tiled when the head count changes; pickles of other classes fall back to upstream's way (the
    run's networks, parameters copied by name)."""
    if rank == 0:
        print('Constructing networks...')
    common_kwargs = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    resume_data, state = _load_resume(resume_pkl, resume_training_state, rank)
    from . import attach as attach_lib
    if resume_data is not None and attach_lib.can_rebuild(resume_data):
        try:
            G, D, G_ema = attach_lib.networks_from_pickle(resume_data, G_kwargs, D_kwargs, common_kwargs,
                seed=random_seed, strict=(state is not None), log=(print if rank == 0 else None))
        except attach_lib.AttachError as err:
            raise ValueError(f'{resume_pkl}: {err}') from err
        G = G.train().requires_grad_(False).to(device)
        D = D.train().requires_grad_(False).to(device)
        G_ema = G_ema.eval().requires_grad_(False).to(device)
    else:
        G = dnnlib.util.construct_class_by_name(**G_kwargs, **common_kwargs).train().requires_grad_(False).to(device)
        D = dnnlib.util.construct_class_by_name(**D_kwargs, **common_kwargs).train().requires_grad_(False).to(device)
        G_ema = copy.deepcopy(G).eval()
        if resume_data is not None:
            for name, module in [('G', G), ('D', D), ('G_ema', G_ema)]:
                misc.copy_params_and_buffers(resume_data[name], module, require_all=(state is not None))
    return G, D, G_ema, state

class _Ada:
    """ADA: every `interval` steps, move augment_pipe.p toward `target`, the wanted fraction of positive D(real)
    signs. `pending` (count and sum of the signs reported since the last adjustment) is part of the training state;
    flush() folds the new reports into it before each adjustment and each snapshot, so an adjustment averages over
    exactly the same images whether or not a snapshot (and maybe a resume) came in between."""

    def __init__(self, augment_pipe, target, interval, kimg, batch_size, device):
        self.augment_pipe, self.target, self.interval, self.kimg = augment_pipe, target, interval, kimg
        self.batch_size, self.device = batch_size, device
        self.pending = [0, 0.0]
        self.stats = None # None: p stays fixed
        if augment_pipe is not None and target is not None:
            # keep_previous=False: a period without reports must count as empty, not repeat the last one.
            self.stats = training_stats.Collector(regex='Loss/signs/real', keep_previous=False)

    def flush(self):
        if self.stats is not None:
            self.stats.update()
            n = self.stats.num('Loss/signs/real')
            if n > 0:
                self.pending[0] += n
                self.pending[1] += self.stats.mean('Loss/signs/real') * n

    def step(self, batch_idx):
        """Called with the number of steps done; adjusts p on every interval-th."""
        if (self.stats is None) or (batch_idx % self.interval != 0):
            return
        self.flush()
        if self.pending[0] > 0:
            signs_real = self.pending[1] / self.pending[0]
            adjust = np.sign(signs_real - self.target) * (self.batch_size * self.interval) / (self.kimg * 1000)
            self.augment_pipe.p.copy_((self.augment_pipe.p + adjust).max(misc.constant(0, device=self.device)))
        self.pending[:] = [0, 0.0]

def _setup_augmentation(augment_kwargs, augment_p, ada_target, ada_interval, ada_kimg, batch_size, rank, device):
    """The augmentation pipe (None when off: no kwargs, or p = 0 without ADA) and its ADA controller."""
    if rank == 0:
        print('Setting up augmentation...')
    augment_pipe = None
    if (augment_kwargs is not None) and (augment_p > 0 or ada_target is not None):
        augment_pipe = dnnlib.util.construct_class_by_name(**augment_kwargs).train().requires_grad_(False).to(device)
        augment_pipe.p.copy_(torch.as_tensor(augment_p))
    return augment_pipe, _Ada(augment_pipe, ada_target, ada_interval, ada_kimg, batch_size, device)

def _distribute(G, D, G_ema, augment_pipe, num_gpus, rank, device):
    """The modules the loss trains, by name; with several processes those with parameters are wrapped in DDP, and
    G_ema, which DDP never touches, takes rank 0's parameters and buffers."""
    is_cuda = (device.type == 'cuda')
    if rank == 0:
        print(f'Distributing across {num_gpus} {"GPUs" if is_cuda else "processes"}...')
    ddp_modules = dict()
    for name, module in [('G_mapping', G.mapping), ('G_synthesis', G.synthesis), ('D', D), ('augment_pipe', augment_pipe)]:
        if (num_gpus > 1) and (module is not None) and len(list(module.parameters())) != 0:
            module.requires_grad_(True)
            module = torch.nn.parallel.DistributedDataParallel(module, device_ids=([device] if is_cuda else None),
                broadcast_buffers=False)
            module.requires_grad_(False)
        ddp_modules[name] = module
    if num_gpus > 1:
        _broadcast_module(G_ema)
    return ddp_modules

def _setup_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval, n_critic, rank, is_cuda):
    """The training phases (EasyDicts: name, module, opt, interval, every, start_event, end_event) and the
    optimizers by network name.

    Each network gets one optimizer; with lazy regularisation its main and reg phases share it, and lr/betas are
    rescaled by mb_ratio so the effective step matches regularising every step. Every step is one batch of reals
    and one D step; G's phases run on every n_critic-th step (`every`), so kimg counts the reals D has seen and
    G's lazy interval counts G's own steps. The CUDA events time the phases on rank 0."""
    phases = []
    optimizers = dict()
    for name, module, opt_kwargs, reg_interval in [('G', G, G_opt_kwargs, G_reg_interval), ('D', D, D_opt_kwargs, D_reg_interval)]:
        opt_kwargs = dnnlib.EasyDict(opt_kwargs)
        if isinstance(opt_kwargs.get('betas'), (list, tuple)):
            opt_kwargs.betas = [float(beta) for beta in opt_kwargs.betas] # torch's Adam refuses [0, 0.99] (an int)
        if reg_interval is None:
            opt = dnnlib.util.construct_class_by_name(params=module.parameters(), **opt_kwargs)
            phases += [dnnlib.EasyDict(name=name + 'both', module=module, opt=opt, interval=1)]
        else:
            mb_ratio = reg_interval / (reg_interval + 1)
            opt_kwargs.lr = opt_kwargs.lr * mb_ratio
            opt_kwargs.betas = [beta ** mb_ratio for beta in opt_kwargs.betas]
            opt = dnnlib.util.construct_class_by_name(module.parameters(), **opt_kwargs)
            phases += [dnnlib.EasyDict(name=name + 'main', module=module, opt=opt, interval=1)]
            phases += [dnnlib.EasyDict(name=name + 'reg', module=module, opt=opt, interval=reg_interval)]
        optimizers[name] = opt
    for phase in phases:
        phase.every = int(n_critic) if phase.name.startswith('G') else 1
        phase.start_event = phase.end_event = None
        if rank == 0 and is_cuda:
            phase.start_event = torch.cuda.Event(enable_timing=True)
            phase.end_event = torch.cuda.Event(enable_timing=True)
    return phases, optimizers

def _rank_state(state, rank):
    # This rank's part of a training state; ranks beyond those of the saved run take rank 0's.
    return state['ranks'][rank] if rank < len(state['ranks']) else state['ranks'][0]

def _restore_training_state(state, optimizers, augment_pipe, ada, loss, rank, num_gpus, batch_size):
    """The counters (cur_nimg, cur_tick, batch_idx) of the run being continued, after restoring its optimizer
    moments, augmentation p, ADA window and loss state; zeros for a new run. (The global RNGs are restored last,
    by the caller.)"""
    if state is None:
        return 0, 0, 0
    cur_nimg = int(state['cur_nimg'])
    cur_tick = int(state['cur_tick'])
    batch_idx = int(state['batch_idx'])
    for name, opt in optimizers.items():
        # Moments come from the snapshot; lr/betas stay as configured now (they may be overridden on purpose).
        configured = [{k: v for k, v in group.items() if k != 'params'} for group in opt.param_groups]
        opt.load_state_dict(state['optimizers'][name])
        for group, hyper in zip(opt.param_groups, configured):
            group.update(hyper)
    if augment_pipe is not None and state.get('augment_p') is not None:
        augment_pipe.p.copy_(torch.as_tensor(state['augment_p']))
    ada.pending = list(state.get('ada_pending', ada.pending))
    loss.load_state_dict(_rank_state(state, rank)['loss'])
    if rank == 0:
        print(f'Continuing at kimg {cur_nimg / 1e3:.1f}, tick {cur_tick}, step {batch_idx}.')
        note = dist_util.world_size_note(state.get('num_gpus'), num_gpus, batch_size)
        if note is not None:
            print(note)
    return cur_nimg, cur_tick, batch_idx

def _data_iterator(training_set, data_loader_kwargs, batch_size, rank, num_gpus, random_seed, start_step, is_cuda):
    """This rank's endless stream of (images, labels) batches; the sampler starts at step start_step."""
    sampler = ResumableSampler(len(training_set), batch_size=batch_size, rank=rank, num_replicas=num_gpus,
        seed=random_seed, start_step=start_step)
    loader_kwargs = dict(data_loader_kwargs)
    if not is_cuda:
        loader_kwargs['pin_memory'] = False
    if loader_kwargs.get('num_workers', 0) == 0:
        loader_kwargs.pop('prefetch_factor', None)
    else: # SIGTERM/SIGINT are the training process's to handle (see interrupt.py)
        loader_kwargs.setdefault('worker_init_fn', interrupt.ignore_stop_signals)
    return iter(torch.utils.data.DataLoader(dataset=training_set, sampler=sampler,
        batch_size=batch_size // num_gpus, **loader_kwargs))

def _save_fakes(fname, G_ema, grid, training_set):
    # grid = (grid_size, grid_z, grid_c); grid_size None: 2-D points, a scatter plot over the mode centres.
    grid_size, grid_z, grid_c = grid
    if grid_size is None:
        pictures.save_point_fakes(G_ema, grid_z, grid_c, training_set, fname)
    else:
        images = pictures.for_display(G_ema, torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z, grid_c)])).numpy()
        save_image_grid(images, fname, drange=[-1, 1], grid_size=grid_size)

def _export_sample_images(training_set, G_ema, run_dir, random_seed, batch_gpu, rank, device):
    """reals.png and fakes_init.png on rank 0; returns the fakes' grid for _save_fakes (all None on other ranks).
    grid_z comes from its own generator so a resumed run draws the same grid."""
    if rank != 0:
        return None, None, None
    print('Exporting sample images...')
    if getattr(training_set, 'is_points', False): # 2-D point data (data/points.py): scatter plots
        grid_size = None
        grid_z, grid_c = pictures.point_snapshot_latents(training_set, G_ema.z_dim, random_seed, batch_gpu, device)
        pictures.save_point_reals(training_set, os.path.join(run_dir, 'reals.png'))
    else:
        grid_size, images, labels = setup_snapshot_image_grid(training_set=training_set)
        save_image_grid(pictures.for_display(G_ema, images), os.path.join(run_dir, 'reals.png'), drange=[0, 255], grid_size=grid_size)
        grid_z = torch.randn([labels.shape[0], G_ema.z_dim], generator=torch.Generator().manual_seed(random_seed))
        grid_z = grid_z.to(device).split(batch_gpu)
        grid_c = torch.from_numpy(labels).to(device).split(batch_gpu)
    _save_fakes(os.path.join(run_dir, 'fakes_init.png'), G_ema, (grid_size, grid_z, grid_c), training_set)
    return grid_size, grid_z, grid_c

def _open_logs(run_dir, rank):
    """stats.jsonl and a tfevents writer, on rank 0 (tfevents only when tensorboard is installed); else None."""
    stats_jsonl = None
    stats_tfevents = None
    if rank == 0:
        stats_jsonl = open(os.path.join(run_dir, 'stats.jsonl'), 'at')
        try:
            import torch.utils.tensorboard as tensorboard # optional: needs the tensorboard package
            stats_tfevents = tensorboard.SummaryWriter(run_dir)
        except ImportError as err:
            print('Skipping tfevents export:', err)
    return stats_jsonl, stats_tfevents

#----------------------------------------------------------------------------
# One training step.

def _next_reals(training_set_iterator, batch_gpu, device):
    """The step's reals for this rank, split into accumulation rounds; images scaled to [-1, 1]."""
    real_img, real_c = next(training_set_iterator)
    real_img = real_img.to(device)
    if real_img.dtype == torch.uint8: # images; float data (2-D points) is already in its own units
        real_img = real_img.to(torch.float32) / 127.5 - 1
    return real_img.to(torch.float32).split(batch_gpu), real_c.to(device).split(batch_gpu)

def _phase_inputs(training_set, z_dim, random_seed, batch_idx, phase_idx, batch_size, batch_gpu, rank, num_gpus, device):
    """This rank's latents and labels for a phase, split into rounds. They are drawn for the whole global batch, so
    they do not depend on how it is split."""
    rank_slice = slice(rank * batch_size // num_gpus, (rank + 1) * batch_size // num_gpus)
    gen_z = _draw_latents(random_seed, batch_idx, phase_idx, batch_size, z_dim)[rank_slice]
    label_idx = _draw_label_indices(random_seed, batch_idx, phase_idx, batch_size, len(training_set))[rank_slice]
    gen_c = torch.from_numpy(np.stack([training_set.get_label(int(i)) for i in label_idx]))
    return gen_z.to(device).split(batch_gpu), gen_c.to(device).split(batch_gpu)

def _run_phase(phase, loss, rounds, seed_words, first_round, guard, after_optimizer_step, device):
    """One optimizer step of `phase` over this rank's accumulation rounds (real_img, real_c, gen_z, gen_c). Round k
    draws its noise inputs and augmentations from torch's global RNG seeded by (seed_words, first_round + k), its
    index in the global batch."""
    t0 = time.perf_counter()
    if phase.start_event is not None:
        phase.start_event.record(torch.cuda.current_stream(device))
    phase.opt.zero_grad(set_to_none=True)
    phase.module.requires_grad_(True)
    # gain / num_rounds: the gradient is the mean over the whole batch however it is split into rounds and
    # processes (DDP averages over processes), so 1 x B and N x B/N give the same step.
    num_rounds = len(rounds)
    for round_idx, (real_img, real_c, z, c) in enumerate(rounds):
        torch.manual_seed(_derive_seed(*seed_words, first_round + round_idx))
        loss.accumulate_gradients(phase=phase.name, real_img=real_img, real_c=real_c, gen_z=z, gen_c=c,
            sync=(round_idx == num_rounds - 1), gain=phase.interval / num_rounds)
    phase.module.requires_grad_(False)
    guard.check_gradients(phase.name, phase.module) # before nan_to_num, which would hide a diverged loss
    for param in phase.module.parameters():
        if param.grad is not None:
            torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
    phase.opt.step()
    if after_optimizer_step is not None:
        after_optimizer_step(phase.name) # e.g. WGAN weight clipping
    if phase.end_event is not None:
        phase.end_event.record(torch.cuda.current_stream(device))
    elif device.type != 'cuda':
        training_stats.report0('Timing/' + phase.name, (time.perf_counter() - t0) * 1e3)

def _update_ema(G_ema, G, ema_kimg, ema_rampup, cur_nimg, batch_size):
    """G_ema: exponential moving average of G with half-life ema_kimg, shortened early on by the ramp-up."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    ema_beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, ema_beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)

#----------------------------------------------------------------------------
# Once per tick.

def _report_tick(cur_tick, cur_nimg, total_kimg, start_time, tick_start_time, tick_start_nimg, maintenance_time,
        augment_pipe, tick_stats, tick_report, rank, device):
    """The progress line (printed by rank 0; every value also goes to stats.jsonl under its statistic name).
    Returns the tick's end time and its statistics, which the loss's tick_report reads."""
    tick_end_time = time.time()
    tick_sec = tick_end_time - tick_start_time
    sec_per_kimg = tick_sec / max(cur_nimg - tick_start_nimg, 1) * 1e3
    eta_sec = max(total_kimg * 1000 - cur_nimg, 0) / 1e3 * sec_per_kimg
    elapsed = tick_end_time - start_time
    items = [ # (label, statistic, value, how to print it)
        ('tick',        'Progress/tick',            cur_tick,                           '{:<5d}'),
        ('kimg',        'Progress/kimg',            cur_nimg / 1e3,                     '{:<8.1f}'),
        ('time',        'Timing/total_sec',         elapsed,                            'time'),
        ('sec/tick',    'Timing/sec_per_tick',      tick_sec,                           '{:<7.1f}'),
        ('sec/kimg',    'Timing/sec_per_kimg',      sec_per_kimg,                       '{:<7.2f}'),
        ('maintenance', 'Timing/maintenance_sec',   maintenance_time,                   '{:<6.1f}'),
        ('cpumem',      'Resources/cpu_mem_gb',     psutil.Process(os.getpid()).memory_info().rss / 2**30, '{:<6.2f}'),
    ]
    if device.type == 'cuda':
        items.append(('gpumem', 'Resources/peak_gpu_mem_gb', torch.cuda.max_memory_allocated(device) / 2**30, '{:<6.2f}'))
        torch.cuda.reset_peak_memory_stats(device)
    items.append(('augment', 'Progress/augment', float(augment_pipe.p.cpu()) if augment_pipe is not None else 0.0, '{:.3f}'))
    items.append(('eta', 'Timing/eta_sec', eta_sec, 'time'))
    line = []
    for label, stat, value, fmt in items:
        training_stats.report0(stat, value)
        line.append(f'{label} ' + (f'{dnnlib.util.format_time(value):<12s}' if fmt == 'time' else fmt.format(value)))
    tick_stats.update() # all ranks
    tick_dict = {name: value for name, value in tick_stats.as_dict().items() if value.num > 0}
    if tick_report is not None:
        line += tick_report(tick_dict, pictures=False)[0]
    training_stats.report0('Timing/total_hours', elapsed / 3600)
    training_stats.report0('Timing/total_days', elapsed / 86400)
    if rank == 0:
        print(' '.join(line).rstrip())
    return tick_end_time, tick_dict

def _save_network_snapshot(*, run_dir, snapshot_format, nets, loss, optimizers, ada, training_set_kwargs, G_kwargs,
        D_kwargs, augment_kwargs, cur_nimg, cur_tick, batch_idx, random_seed, num_gpus, batch_size, stopped_by,
        rank, device):
    """Upstream's snapshot dict (nets: G, D, G_ema, augment_pipe) plus the training state, written atomically by
    rank 0. Called on all ranks (it gathers each rank's loss and RNG state); returns (snapshot_data, path)."""
    snapshot_data = dict(training_set_kwargs=dict(training_set_kwargs))
    for name, module in nets.items():
        if module is not None:
            if num_gpus > 1:
                misc.check_ddp_consistency(module, ignore_regex=r'.*\.w_avg')
            module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
        snapshot_data[name] = module
        del module
    per_rank = _gather_per_rank(dict(loss=snapshot_lib.to_cpu(loss.state_dict()),
        rng=snapshot_lib.capture_rng_state(device)), num_gpus)
    augment_pipe = nets['augment_pipe']
    training_state = dict(
        version         = snapshot_lib.STATE_VERSION,
        cur_nimg        = int(cur_nimg),
        cur_tick        = int(cur_tick + 1), # the tick this snapshot closes is complete
        batch_idx       = int(batch_idx),
        random_seed     = int(random_seed),
        num_gpus        = int(num_gpus),
        batch_size      = int(batch_size),
        augment_p       = float(augment_pipe.p.cpu()) if augment_pipe is not None else None,
        ada_pending     = [int(ada.pending[0]), float(ada.pending[1])],
        optimizers      = {name: snapshot_lib.to_cpu(opt.state_dict()) for name, opt in optimizers.items()},
        ranks           = per_rank,
        G_kwargs        = json.loads(json.dumps(G_kwargs)),
        D_kwargs        = json.loads(json.dumps(D_kwargs)),
        augment_kwargs  = json.loads(json.dumps(augment_kwargs)),
        interrupted     = signal.Signals(stopped_by).name if stopped_by else None, # an interrupt snapshot
    )
    snapshot_pkl = os.path.join(run_dir, f'network-snapshot-{cur_nimg//1000:06d}.pkl')
    if rank != 0:
        return snapshot_data, weights_lib.snapshot_path(snapshot_pkl, snapshot_format)
    snapshot_lib.check_plain(training_state)
    snapshot_data[snapshot_lib.STATE_KEY] = training_state
    return snapshot_data, weights_lib.write_snapshot(snapshot_data, snapshot_pkl, snapshot_format)

def _report_phase_timings(phases, is_cuda):
    for phase in phases:
        if phase.start_event is not None and phase.end_event is not None:
            phase.end_event.synchronize()
            training_stats.report0('Timing/' + phase.name, phase.start_event.elapsed_time(phase.end_event))
        elif is_cuda:
            training_stats.report0('Timing/' + phase.name, [])

def _write_stats(stats_dict, stats_metrics, stats_jsonl, stats_tfevents, cur_nimg, start_time):
    timestamp = time.time()
    if stats_jsonl is not None:
        stats_jsonl.write(json.dumps(dict(stats_dict, timestamp=timestamp)) + '\n')
        stats_jsonl.flush()
    if stats_tfevents is not None:
        global_step = int(cur_nimg / 1e3)
        walltime = timestamp - start_time
        for name, value in stats_dict.items():
            stats_tfevents.add_scalar(name, value.mean, global_step=global_step, walltime=walltime)
        for name, value in stats_metrics.items():
            stats_tfevents.add_scalar(f'Metrics/{name}', value, global_step=global_step, walltime=walltime)
        stats_tfevents.flush()

#----------------------------------------------------------------------------

def training_loop(
    run_dir                 = '.',      # Output directory.
    training_set_kwargs     = {},       # Dataset: class_name and its arguments.
    data_loader_kwargs      = {},       # Extra arguments for torch.utils.data.DataLoader.
    G_kwargs                = {},       # Generator: class_name and its arguments.
    D_kwargs                = {},       # Discriminator: class_name and its arguments.
    G_opt_kwargs            = {},       # Generator optimizer: class_name and its arguments.
    D_opt_kwargs            = {},       # Discriminator optimizer: class_name and its arguments.
    augment_kwargs          = None,     # Augmentation pipeline: class_name and its arguments; None = none.
    loss_kwargs             = {},       # Loss: class_name and its arguments.
    snapshot_callbacks      = [],       # Called at each network snapshot, e.g. metrics (see _prepare_callbacks).
    random_seed             = 0,        # Global seed.
    num_gpus                = 1,        # Number of processes taking part (GPUs, or CPU processes with gloo).
    rank                    = 0,        # This process, in [0, num_gpus).
    batch_size              = 4,        # Images per optimizer step over all processes.
    batch_gpu               = 4,        # Images per process per accumulation round.
    ema_kimg                = 10,       # Half-life of G_ema in thousands of images.
    ema_rampup              = None,     # Limit the half-life to this fraction of the images seen so far; None = off.
    lr_rampdown             = None,     # Take the learning rates to 0 over this last fraction of total_kimg; None = off.
    G_reg_interval          = 4,        # Lazy regularisation interval for G; None = regularise every step.
    D_reg_interval          = 16,       # Lazy regularisation interval for D; None = regularise every step.
    n_critic                = 1,        # D steps per G step: G's phases run every n_critic-th step (WGAN's n_critic).
    augment_p               = 0,        # Initial augmentation probability.
    ada_target              = None,     # ADA target for the sign of D(real); None = keep p fixed.
    ada_interval            = 4,        # Adjust p every this many steps.
    ada_kimg                = 500,      # p can move by 1 in this many thousand images.
    total_kimg              = 25000,    # Training length in thousands of real images.
    kimg_per_tick           = 4,        # Progress line every this many thousand images.
    image_snapshot_ticks    = 50,       # fakesNNNNNN.png every this many ticks; None = never.
    network_snapshot_ticks  = 50,       # network-snapshot-NNNNNN.pkl every this many ticks; None = never.
    snapshot_format         = 'pkl',    # 'pkl', 'safetensors' (weights + .state.safetensors) or 'both'.
    resume_pkl              = None,     # Start from this network pickle (path or URL).
    resume_training_state   = False,    # Also restore its training state and continue the run it came from.
    cudnn_benchmark         = True,     # torch.backends.cudnn.benchmark.
    allow_tf32              = False,    # Allow TF32 in matmul and convolutions.
    abort_fn                = None,     # Called once per tick; True stops training (same answer on all ranks).
    stop_fn                 = None,     # Called after every step; a signal number stops there with an interrupt snapshot.
    progress_fn             = None,     # Called with (kimg done, total kimg) on all ranks.
    device                  = None,     # torch.device for this process; default cuda:rank when CUDA is present.
):
    start_time = time.time()
    device = _setup_torch(device, rank, random_seed, cudnn_benchmark, allow_tf32)
    is_cuda = (device.type == 'cuda')
    if batch_size % (batch_gpu * num_gpus) != 0:
        raise ValueError(f'batch_size {batch_size} must be a multiple of batch_gpu {batch_gpu} x {num_gpus} processes')
    num_rounds = batch_size // (batch_gpu * num_gpus)
    if int(n_critic) != n_critic or n_critic < 1:
        raise ValueError(f'n_critic must be a positive integer, got {n_critic!r}')

    # Training set, networks (resumed: weights always, the training state only when continuing the same run).
    training_set = _load_training_set(training_set_kwargs, rank)
    G, D, G_ema, state = _build_networks(training_set, G_kwargs, D_kwargs, resume_pkl, resume_training_state,
        random_seed, rank, device)
    if rank == 0:
        print_network_summaries(G, D, batch_gpu, device)
    augment_pipe, ada = _setup_augmentation(augment_kwargs, augment_p, ada_target, ada_interval, ada_kimg,
        batch_size, rank, device)
    nets = dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe) # what a snapshot holds
    ddp_modules = _distribute(G, D, G_ema, augment_pipe, num_gpus, rank, device)
    batch_norm_stats = _batch_norm_stats([G, D])

    # Loss and phases.
    if rank == 0:
        print('Setting up training phases...')
    loss = dnnlib.util.construct_class_by_name(device=device, **ddp_modules, **loss_kwargs)
    phases, optimizers = _setup_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval, n_critic,
        rank, is_cuda)
    base_lrs = {name: [group['lr'] for group in opt.param_groups] for name, opt in optimizers.items()}

    cur_nimg, cur_tick, batch_idx = _restore_training_state(state, optimizers, augment_pipe, ada, loss, rank,
        num_gpus, batch_size)
    if cur_nimg >= total_kimg * 1000:
        if rank == 0:
            print(f'Nothing to do: the run is already at {cur_nimg / 1e3:.1f} of {total_kimg} kimg.')
        return

    training_set_iterator = _data_iterator(training_set, data_loader_kwargs, batch_size, rank, num_gpus,
        random_seed, start_step=batch_idx, is_cuda=is_cuda)
    grid = _export_sample_images(training_set, G_ema, run_dir, random_seed, batch_gpu, rank, device)

    # Logs.
    if rank == 0:
        print('Initializing logs...')
    stats_collector = training_stats.Collector(regex='.*')
    stats_metrics = dict()
    stats_jsonl, stats_tfevents = _open_logs(run_dir, rank)
    snapshot_callbacks = _prepare_callbacks(snapshot_callbacks, device=device, rank=rank, num_gpus=num_gpus)

    if state is not None:
        # Global RNGs last, after everything above that may have drawn from them.
        snapshot_lib.restore_rng_state(_rank_state(state, rank)['rng'], device)
        del state

    # Train.
    if rank == 0:
        print(f'Training for {total_kimg} kimg...')
        print()
    tick_start_nimg = cur_nimg
    tick_start_time = time.time()
    maintenance_time = tick_start_time - start_time
    if progress_fn is not None:
        progress_fn(cur_nimg // 1000, total_kimg)

    last_snapshot = resume_pkl if resume_training_state else None # the last good point of this trajectory
    stopped_by, stop_pending = 0, [None] # signal number that ended the run; the ranks' last stop request
    guard = nonfinite.Guard(device, describe=lambda: (f'tick {cur_tick}, kimg {cur_nimg / 1e3:.1f} (step {batch_idx})', last_snapshot))
    set_progress = getattr(loss, 'set_progress', None) # optional: losses with upstream's bare interface lack it
    after_optimizer_step = getattr(loss, 'after_optimizer_step', None) # optional, too
    tick_report = getattr(loss, 'tick_report', None) # optional: what the loss says about each tick
    tick_stats = training_stats.Collector(regex='.*', keep_previous=False) # the tick's statistics, for the loss
    while True:
        if set_progress is not None:
            set_progress(cur_nimg=cur_nimg, total_nimg=total_kimg * 1000)
        if lr_rampdown:
            lr_factor = lr_rampdown_factor(cur_nimg, total_kimg * 1000, lr_rampdown)
            for name, opt in optimizers.items():
                for group, base_lr in zip(opt.param_groups, base_lrs[name]):
                    group['lr'] = base_lr * lr_factor

        # One step: this rank's slice of the global batch of reals, split into accumulation rounds, through every
        # phase due at this step.
        phase_real_img, phase_real_c = _next_reals(training_set_iterator, batch_gpu, device)
        for phase_idx, phase in enumerate(phases):
            if batch_idx % (phase.interval * phase.every) != 0:
                continue
            gen_z, gen_c = _phase_inputs(training_set, G.z_dim, random_seed, batch_idx, phase_idx, batch_size,
                batch_gpu, rank, num_gpus, device)
            rounds = list(zip(phase_real_img, phase_real_c, gen_z, gen_c))
            _run_phase(phase, loss, rounds, (random_seed, batch_idx, phase_idx, _ROUND_STREAM), rank * num_rounds,
                guard, after_optimizer_step, device)
        if num_gpus > 1:
            _average_across_processes(batch_norm_stats)
        _update_ema(G_ema, G, ema_kimg, ema_rampup, cur_nimg, batch_size)
        cur_nimg += batch_size
        batch_idx += 1
        ada.step(batch_idx)

        # Maintenance once per tick; a stop request (SIGTERM/SIGINT) ends the run here, with a snapshot.
        stopped_by = _agreed_stop(stop_fn, num_gpus, device, stop_pending)
        done = (cur_nimg >= total_kimg * 1000) or (stopped_by != 0)
        if stopped_by and rank == 0:
            print(f'Stopping for {signal.Signals(stopped_by).name} after step {batch_idx}, kimg {cur_nimg / 1e3:.1f}: '
                'writing an interrupt snapshot...')
        if stopped_by:
            training_set_iterator = None # shuts the data-loader workers down; no more data is needed
        if (not done) and (cur_tick != 0) and (cur_nimg < tick_start_nimg + kimg_per_tick * 1000):
            continue

        tick_end_time, tick_dict = _report_tick(cur_tick, cur_nimg, total_kimg, start_time, tick_start_time,
            tick_start_nimg, maintenance_time, augment_pipe, tick_stats, tick_report, rank, device)
        guard.check_tick(nets) # nothing non-finite gets saved
        if (not done) and (abort_fn is not None) and abort_fn():
            done = True
            if rank == 0:
                print()
                print('Aborting...')

        image_snapshot = (rank == 0) and (image_snapshot_ticks is not None) and (done or cur_tick % image_snapshot_ticks == 0)
        if image_snapshot:
            _save_fakes(os.path.join(run_dir, f'fakes{cur_nimg//1000:06d}.png'), G_ema, grid, training_set)

        snapshot_pkl = None
        snapshot_data = None
        if (network_snapshot_ticks is not None) and (done or cur_tick % network_snapshot_ticks == 0):
            ada.flush() # all ranks, same point: the pending ADA window becomes part of the state
            snapshot_data, snapshot_pkl = _save_network_snapshot(run_dir=run_dir, snapshot_format=snapshot_format,
                nets=nets, loss=loss, optimizers=optimizers, ada=ada, training_set_kwargs=training_set_kwargs,
                G_kwargs=G_kwargs, D_kwargs=D_kwargs, augment_kwargs=augment_kwargs, cur_nimg=cur_nimg,
                cur_tick=cur_tick, batch_idx=batch_idx, random_seed=random_seed, num_gpus=num_gpus,
                batch_size=batch_size, stopped_by=stopped_by, rank=rank, device=device)
            last_snapshot = snapshot_pkl

        # Callbacks (metrics) on the snapshot (not when stopping for a signal: they may take hours).
        if (snapshot_data is not None) and not stopped_by:
            for callback in snapshot_callbacks:
                stats_metrics.update(callback(snapshot_data=snapshot_data, snapshot_pkl=snapshot_pkl,
                    run_dir=run_dir, rank=rank, num_gpus=num_gpus, device=device) or {})
        del snapshot_data

        # Statistics.
        _report_phase_timings(phases, is_cuda)
        stats_collector.update()
        stats_dict = stats_collector.as_dict()
        if image_snapshot and tick_report is not None: # e.g. SOM heads: the share of the reals each head won
            for name, image in tick_report(tick_dict, pictures=True)[1].items():
                image.save(os.path.join(run_dir, f'{name}{cur_nimg//1000:06d}.png'))
        _write_stats(stats_dict, stats_metrics, stats_jsonl, stats_tfevents, cur_nimg, start_time)
        if progress_fn is not None:
            progress_fn(cur_nimg // 1000, total_kimg)

        cur_tick += 1
        tick_start_nimg = cur_nimg
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time
        if done:
            break

    if stats_jsonl is not None:
        stats_jsonl.close()
    if stats_tfevents is not None:
        stats_tfevents.close()
    if rank == 0:
        print()
        print('Exiting...')
    if stopped_by:
        snapshot_written = snapshot_pkl if network_snapshot_ticks is not None else None
        raise interrupt.Interrupted(stopped_by, snapshot_written, f'kimg {cur_nimg / 1e3:.1f} (step {batch_idx})')

#----------------------------------------------------------------------------
