"""Training length: how many images, in what batches, reported how often."""

from .spec import Group, Option, UserError, check

def _apply_kimg(opts, args):
    kimg = opts.kimg
    if kimg is None:
        return
    check(kimg > 0, f'--kimg must be positive, got {kimg:g}')
    kimg = int(kimg) if float(kimg).is_integer() else float(kimg) # whole numbers stay integers in the options
    opts.desc.add('kimg', f'kimg{kimg:g}' if isinstance(kimg, float) else f'kimg{kimg:d}')
    args.total_kimg = kimg

def _apply_batch(opts, args):
    gpus, batch, batch_gpu = opts.gpus, opts.batch, opts.batch_gpu
    if batch is not None:
        check(batch >= 1 and batch % gpus == 0, f'--batch must be at least 1 and divisible by --gpus={gpus}, got {batch}')
        opts.desc.add('batch', f'batch{batch}')
        args.batch_size = batch
        args.batch_gpu = batch // gpus
    elif args.batch_size % gpus != 0 or args.batch_size < gpus:
        raise UserError(f'--gpus={gpus}: the {opts.cfg} config\'s batch of {args.batch_size} does not split over '
            f'{gpus} processes; set --batch')
    else:
        args.batch_gpu = min(args.batch_gpu, args.batch_size // gpus)
    if batch_gpu is not None:
        check(batch_gpu >= 1, f'--batch-gpu must be at least 1, got {batch_gpu}')
        args.batch_gpu = batch_gpu
    check(args.batch_size % (gpus * args.batch_gpu) == 0, f'--batch-gpu={args.batch_gpu}: the batch of '
        f'{args.batch_size} must be a multiple of --gpus x --batch-gpu = {gpus * args.batch_gpu}')

def apply(opts, args):
    _apply_kimg(opts, args)
    _apply_batch(opts, args)
    if opts.tick is not None:
        check(opts.tick >= 1, f'--tick must be at least 1, got {opts.tick}')
        args.kimg_per_tick = opts.tick
    elif 'tick' in opts.spec:
        args.kimg_per_tick = opts.spec.tick # configs that take seconds per kimg report more often

GROUP = Group('Training length', [
    Option('--kimg',      help='Training length in thousands of real images, instead of the config\'s; fractions allowed (0.5)', type=float, metavar='KIMG'),
    Option('--batch',     help='Images per optimizer step (all processes), instead of the config\'s', type=int, metavar='INT'),
    Option('--batch-gpu', help='Images per process and accumulation round [default: batch / gpus]', type=int, metavar='INT'),
    Option('--tick',      help='Thousands of images between progress lines [default: 4; tiny: 1]', type=int, metavar='KIMG'),
], apply)
