"""Train a StyleGAN2-ADA generator, with StyleGAN2-ADA's command line (plus StyleGAN3's size and rate
overrides and small configs that train on a CPU). The options, their groups and what they set are in
stylegan_som/config/; the process launch in stylegan_som/launch.py."""

import os
import sys

# Idle OpenMP threads sleep instead of spinning: with spinning threads, any other busy process on the machine makes
# each of the many small ops of CPU training wait for a descheduled thread (figures in bench/RESULTS.md). It only
# takes effect before torch loads its OpenMP runtime, hence here; an explicit setting wins (ACTIVE is faster on a
# machine of one's own).
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import click  # pylint: disable=wrong-import-position
import torch  # pylint: disable=wrong-import-position

import dnnlib  # pylint: disable=wrong-import-position
from torch_utils import persistence  # pylint: disable=wrong-import-position
from metrics import metric_main  # pylint: disable=wrong-import-position
from stylegan_som import config, launch  # pylint: disable=wrong-import-position
from stylegan_som.config import presets, rundir  # pylint: disable=wrong-import-position
from stylegan_som.config.help import GroupedCommand  # pylint: disable=wrong-import-position

# What other modules and the bench scripts import from here.
UserError = config.UserError
def setup_training_loop_kwargs(**values):
    """config.setup_training_loop_kwargs with --metrics checked against metrics/metric_main.py."""
    return config.setup_training_loop_kwargs(metric_names=metric_main.list_valid_metrics(), **values)

CFG_SPECS = presets.CFG_SPECS
init_dataset_kwargs = config.data.init_dataset_kwargs
use_builtin_mnist_for_metrics = config.output.use_builtin_mnist_for_metrics
subprocess_fn = launch.subprocess_fn
pick_run_dir = rundir.pick_run_dir
DATA_ERROR_EXIT, NONFINITE_EXIT, SNAPSHOT_ERROR_EXIT = launch.DATA_ERROR_EXIT, launch.NONFINITE_EXIT, launch.SNAPSHOT_ERROR_EXIT

HELP = """Train a GAN as in "Training Generative Adversarial Networks with Limited Data" (StyleGAN2-ADA).

Examples:

\b
# A small model on a CPU in minutes, on the built-in 2-D ring of 8 Gaussians (generated, no download).
python train.py --data=ring8 --cfg=toy --kimg=0.5 --snap=1

\b
# A small image model on a CPU (the built-in CIFAR-10 is fetched once into the cache).
python train.py --data=cifar10 --cfg=cpu --kimg=10 --snap=5

\b
# Class-conditional images on 2 GPUs, from a folder or zip of one's own with a dataset.json of labels.
python train.py --outdir=training-runs --data=mydataset.zip --gpus=2 --cfg=cifar --cond=1

\b
# Continue the newest run under --outdir exactly where its last snapshot left off.
python train.py --data=mydataset.zip --cfg=cifar --resume=latest

Plugins (heads, blocks, losses, backbones) are listed in stylegan_som/plugins.py; --som-d=K trains D's K heads as
a self-organising map. Without CUDA, training runs on the CPU and --gpus=N starts N CPU processes (gloo); under
torchrun, the number of processes comes from torchrun."""

def _cpu_warning(cfg, device_type):
    cfg = cfg or 'auto'
    if device_type != 'cuda' and cfg in presets.GPU_CFGS:
        print(f'Warning: --cfg={cfg} is a GPU config (many minutes per kimg on a CPU, large snapshots); '
            'for a CPU use --cfg=cpu, tiny, toy or stacked-mnist', file=sys.stderr)

def main(ctx, outdir, dry_run, verbose, trust_pickle, **values):
    dist_env = launch.torchrun_env()
    device_type = 'cuda' if torch.cuda.is_available() else 'cpu'
    if trust_pickle: # through the environment, so that every training process sees it
        os.environ[persistence.TRUST_ENV] = '1'
    try:
        rundir.check_outdir(outdir)
        run_desc, args = setup_training_loop_kwargs(outdir=outdir, device_type=device_type,
            world_size=(dist_env[2] if dist_env is not None else None), **values)
        launch.check_settings(args.num_gpus, dist_env) # a bad $SGSOM_DIST_TIMEOUT stops here, before any process
        config.data.check_images(args, values.get('check_images'), values.get('skip_bad_images'))
        if dist_env is None and device_type == 'cuda' and args.num_gpus > torch.cuda.device_count():
            raise UserError(f'--gpus={args.num_gpus} but only {torch.cuda.device_count()} CUDA device(s) are visible')
    except UserError as err:
        ctx.fail(str(err))
    if dist_env is None or dist_env[0] == 0:
        _cpu_warning(values.get('cfg'), device_type)
    dnnlib.util.Logger(should_flush=True) # after option errors, which click prints to stderr
    summary = lambda args: rundir.print_options(args, device_type, verbose=(verbose or dry_run))

    if dry_run:
        if dist_env is None or dist_env[0] == 0:
            args.run_dir = rundir.pick_run_dir(outdir, run_desc)
            summary(args)
            print('Dry run; exiting.')
        return
    if dist_env is not None:
        launch.launch_torchrun(args, run_desc, outdir, dist_env, device_type, summary, metric_main.training_callbacks)
        return
    args.run_dir = rundir.pick_run_dir(outdir, run_desc)
    summary(args)
    try:
        rundir.fetch_resume_pkl(args)
        rundir.create_run_dir(args)
    except UserError as err:
        ctx.fail(str(err))
    launch.launch(args, device_type, metric_main.training_callbacks)

def _command():
    params = [param for group in config.GROUPS for param in group.params()]
    sections = [(group.title, group.names()) for group in config.GROUPS]
    return GroupedCommand('train.py', callback=click.pass_context(main), params=params, help=HELP,
        sections=sections, context_settings=dict(max_content_width=120))

main = _command()

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter
