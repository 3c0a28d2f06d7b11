"""Run directories: the --outdir check, the next free run id (taken atomically), training_options.json, and the
console summary of a run's options."""

import json
import os
import re

import dnnlib
from .spec import UserError

def outdir_problem(outdir):
    """Why `outdir` cannot hold output (None if it can): it must be a writable folder, or be creatable under its
    nearest existing parent. Checked before anything is read, printed or written."""
    path = os.path.abspath(outdir)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    where = '' if path == os.path.abspath(outdir) else f', so {outdir} cannot be created'
    if not os.path.isdir(path):
        return f'{path} is a file, not a folder{where}'
    if not os.access(path, os.W_OK | os.X_OK):
        return f'{path} is not writable{where}'
    return None

def check_outdir(outdir):
    problem = outdir_problem(outdir)
    if problem is not None:
        raise UserError(f'--outdir: {problem}')

def pick_run_dir(outdir, desc):
    prev = [x for x in os.listdir(outdir) if os.path.isdir(os.path.join(outdir, x))] if os.path.isdir(outdir) else []
    ids = [int(m.group()) for m in (re.match(r'^\d+', x) for x in prev) if m is not None]
    return os.path.join(outdir, f'{max(ids, default=-1) + 1:05d}-{desc}')

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
    fails with one message naming --resume instead of leaving an empty run behind."""
    url = args.get('resume_pkl')
    if url is None or not dnnlib.util.is_url(url, allow_file_urls=True):
        return
    try:
        with dnnlib.util.open_url(url):
            pass
    except (OSError, ValueError) as err:
        raise UserError(f'--resume: {err}') from None

def _net_name(kwargs):
    parts = kwargs.get('discriminator_kwargs', kwargs).class_name.split('.')
    return f'{parts[-2]}.{parts[-1]}'

def print_options(args, device_type='cuda', verbose=False):
    """A few lines (the full options are in training_options.json); verbose: the full dict as well."""
    if verbose:
        print('Training options:')
        print(json.dumps(args, indent=2))
    data = args.training_set_kwargs
    loss = args.loss_kwargs
    heads = loss.get('som_kwargs', {}).get('num_heads', 1)
    print(f'Output directory:   {args.run_dir}')
    print(f'Training data:      {data.path} ({data.max_size} images, {data.resolution}x{data.resolution}, '
        f'labels: {data.use_labels}, x-flips: {data.xflip})')
    print(f'Networks:           G {_net_name(args.G_kwargs)}, D {_net_name(args.D_kwargs)}, loss '
        f'{loss.get("objective", "stylegan2")}' + (f', {heads} SOM heads' if heads > 1 else ''))
    unit = ('GPU', 'GPUs') if device_type == 'cuda' else ('CPU process', 'CPU processes')
    print(f'Training duration:  {args.total_kimg} kimg, batch {args.batch_size}, on {args.num_gpus} '
        f'{unit[args.num_gpus > 1]}')
