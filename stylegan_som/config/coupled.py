"""Coupled generators (CoGAN, Soft-CoGAN): a second domain (--data2), how the two generators are coupled
(--couple) and the soft couplings' weights (--couple-feature etc.). apply_data makes the paired dataset right after
--data is resolved; apply_networks wraps the final G and D in their coupled versions (networks/coupled.py), after
every group that shapes them, and before output compares a --resume pickle with the final kwargs."""

import click

import dnnlib
from stylegan_som import plugins
from .spec import Group, Option, UserError, check

COUPLINGS = ('hard', 'soft', 'none')
# --data2 names that are MNIST under a fixed transform of stylegan_som.data.coupled (no download beyond MNIST's).
BUILTIN_DOMAINS = {'mnist-negative': 'negative', 'mnist-edges': 'edges'}
# (option name, flag) of the soft couplings; the option name is also the loss keyword of its regulariser.
SOFT = [('couple_feature', '--couple-feature'), ('couple_semantic', '--couple-semantic'),
    ('couple_cycle', '--couple-cycle'), ('couple_perceptual', '--couple-perceptual')]
# The fixed digit classifier of the semantic and perceptual couplings: a factory in metrics/, named (not imported)
# here, since stylegan_som never imports metrics.
CLASSIFIER_FACTORY = 'metrics.mode_coverage.coupling_classifier'
# The pairs metric of each built-in pair of domains (--data=mnist --data2=...).
PAIR_METRICS = {'mnist-negative': 'pairs_mnist_negative', 'mnist-edges': 'pairs_mnist_edges'}

def _is_idx(path):
    from stylegan_som.data.images import ImageFolderDataset # pylint: disable=import-outside-toplevel
    dataset = ImageFolderDataset(path=path)
    try:
        return dataset._type == 'idx' # pylint: disable=protected-access
    finally:
        dataset.close()

def _domain_b(data2, cfg, path_a):
    """(path, transform, short name) of --data2. The built-in domains transform --data's own digits where --data is
    MNIST idx files (the built-in mnist or a folder of one's own), else the built-in MNIST's."""
    from stylegan_som.data import builtin, dataset_kwargs_from_data # pylint: disable=import-outside-toplevel
    try:
        if data2 in BUILTIN_DOMAINS:
            path = path_a if _is_idx(path_a) else builtin.BUILTIN['mnist']()
            return path, BUILTIN_DOMAINS[data2], data2
        kwargs, name = dataset_kwargs_from_data(data2, cfg, require_pow2=False)
    except (IOError, OSError, ValueError) as err:
        raise UserError(f'--data2: {err}') from None
    check(kwargs.class_name.endswith('.ImageFolderDataset'), f'--data2={data2}: coupled domains are images, not points')
    return kwargs.path, None, name

def apply_data(opts, args):
    given = [flag for name, flag in SOFT if opts[name] is not None] + (['--couple'] if opts.couple else [])
    if opts.data2 is None:
        check(not given, f'{given[0] if given else ""} couples two domains: give the second with --data2')
        check(opts.cfg != 'cogan', '--cfg=cogan trains coupled generators: give the second domain with --data2')
        return
    A = args.training_set_kwargs
    check(A.class_name.endswith('.ImageFolderDataset'), '--data2: coupled domains are images, but --data is not')
    path2, transform2, name2 = _domain_b(opts.data2, opts.cfg, A.path)
    kwargs = dnnlib.EasyDict(class_name='stylegan_som.data.coupled.CoupledDataset', path=A.path, path2=path2,
        transform2=transform2, pair_seed=opts.seed, **{k: v for k, v in A.items() if k not in ('class_name', 'path')})
    try:
        dataset = dnnlib.util.construct_class_by_name(**kwargs)
    except (IOError, OSError, ValueError) as err:
        raise UserError(f'--data2: {err}') from None
    try:
        channels = dataset.domain_channels
    finally:
        dataset.close()
    check(channels[0] == channels[1], f'--data2={opts.data2}: the domains must have the same number of channels, '
        f'but --data has {channels[0]} and --data2 {channels[1]}')
    args.training_set_kwargs = kwargs
    opts.desc.add('data', f'+{name2}')

def _check_couplings(opts, args):
    couple = opts.couple or 'hard'
    check(couple in COUPLINGS, f'--couple: unknown coupling {couple!r}; choose from {", ".join(COUPLINGS)}')
    weights = {name: opts[name] for name, _ in SOFT if opts[name] is not None}
    for name, flag in SOFT:
        if name in weights:
            check(weights[name] >= 0, f'{flag} must be non-negative, got {weights[name]}')
            check(couple == 'soft', f'{flag} is a soft coupling: it needs --couple=soft, not --couple={couple}')
    check(couple != 'soft' or any(weights.values()), '--couple=soft needs the weight of at least one soft coupling: '
        + ', '.join(f'{flag}=W' for _, flag in SOFT))
    check(not args.loss_kwargs.get('fm_weight'), '--fm with --data2: the coupled D scores each domain with its own '
        'D, so there is no single feature layer to match')
    check(opts.d_head is None or not plugins.HEADS.info(opts.d_head).aux_loss, f'--d-head={opts.d_head} does not '
        'combine with --data2: its auxiliary classifier sits on one D, the coupled D has two')
    check(opts.d_pack in (None, 1), f'--d-pack={opts.d_pack} does not combine with --data2 (a pack mixes domains)')
    separate = args.D_kwargs.class_name.endswith('.SeparateDiscriminators')
    check(not (separate and couple == 'hard'), '--som-share=none with --couple=hard: separate discriminators have no '
        'layers to share; use --couple=soft or none')
    check(not (weights.get('couple_cycle') and opts.gpus > 1), '--couple-cycle trains on one process only: its '
        'encoder is not used by G\'s forward pass, which several processes (DDP) need')
    check(opts.aug in (None, 'noaug'), f'--aug={opts.aug} with --data2: pairs train without augmentation; use --aug=noaug')
    check(not opts.msg, '--msg=1 with --data2: the coupled D takes each domain whole, not its scales; drop one of them')
    return couple, weights

def apply_networks(opts, args):
    if opts.data2 is None:
        return
    couple, weights = _check_couplings(opts, args)
    for key in ('augment_kwargs', 'ada_target', 'augment_p'):
        args.pop(key, None)
    args.G_kwargs = dnnlib.EasyDict(class_name='stylegan_som.networks.coupled.CoupledGenerator', couple=couple,
        generator_kwargs=args.G_kwargs, encoder=bool(weights.get('couple_cycle')))
    args.D_kwargs = dnnlib.EasyDict(class_name='stylegan_som.networks.coupled.CoupledDiscriminator', couple=couple,
        discriminator_kwargs=args.D_kwargs)
    opts.desc.add('couple', f'couple{couple}')
    for name, value in weights.items():
        if value:
            args.loss_kwargs[name] = value
            opts.desc.add('couple', f'-{name.split("_")[1][:4]}{value:g}')
    if weights.get('couple_semantic') or weights.get('couple_perceptual'):
        args.loss_kwargs.couple_classifier = CLASSIFIER_FACTORY
    metric = PAIR_METRICS.get(opts.data2) if args.training_set_kwargs.transform2 else None
    if opts.metrics is None: # the pairs metric of a built-in pair, else none (FID and the others read 1 or 3 channels)
        opts.metrics = [metric] if metric is not None else []
    if set(opts.metrics) & set(PAIR_METRICS.values()) or weights.get('couple_semantic') or weights.get('couple_perceptual'):
        from .output import use_builtin_mnist_for_metrics # pylint: disable=import-outside-toplevel
        path = args.training_set_kwargs.path # the digit classifier learns from --data's MNIST files where it has them
        use_builtin_mnist_for_metrics(path if args.training_set_kwargs.transform2 and _is_idx(path) else None)

def _couple_help():
    return ('How the generators of --data and --data2 are coupled: hard (CoGAN: they share their first layers, the '
        'discriminators their last), soft (separate, coupled by --couple-feature etc.), none (two independent GANs) '
        '[default: hard]')

GROUP = Group('Coupled generators', [
    Option('--data2',   help='Second domain for coupled generators: images as --data, or mnist-negative (255 - x), '
                             'mnist-edges (edge maps of MNIST); drawn unpaired', metavar='PATH'),
    Option('--couple',  help=_couple_help, type=click.Choice(list(COUPLINGS))),
    Option('--couple-feature',    help='Soft coupling: distance between the two generators\' features at matching layers [default: 0, off]', type=float, metavar='W'),
    Option('--couple-semantic',   help='Soft coupling: a fixed digit classifier reads both images of a pair as the same class (symmetric KL) [default: 0, off]', type=float, metavar='W'),
    Option('--couple-cycle',      help='Soft coupling: latent cycle through an encoder trained with G, E(G_A(z)) = E(G_B(z)) = z [default: 0, off]', type=float, metavar='W'),
    Option('--couple-perceptual', help='Soft coupling: distance between the digit classifier\'s hidden features of the two images [default: 0, off]', type=float, metavar='W'),
])
