"""SOM and plugins: D's head (--d-head), blocks inserted by resolution (--g-blocks, --d-blocks; --g-attn and
--d-attn for attention), D's normalisation, and the self-organising map of D's K heads (--som-*). Applied to the
final backbone's kwargs, last among the groups that shape the networks, because --som-share=none wraps D."""

import click

import dnnlib
from stylegan_som import plugins, som
from .spec import Group, Option, UserError, check, comma_list
from .networks import backbone_of, init_params, d_params_of
from .presets import SOM_DEFAULTS_BY_CFG

SOM_SHARE = ('trunk', 'none')

def _apply_head(opts, args):
    """Default: StyleGAN2's own conditioning (cmap) with --cond=1, a plain linear output without; networks
    without a cmap path pick their head themselves (projection with labels, linear without)."""
    name = opts.d_head
    if name is None:
        return
    check(name in plugins.HEADS, f'--d-head: unknown head {name!r}; choose from {", ".join(plugins.HEADS.names())}')
    head = plugins.HEADS.info(name)
    if head.needs_labels:
        check(bool(opts.cond), f'--d-head={name} is a class-conditional head: it needs --cond=1')
    if head.backbones is not None:
        check(opts.arch in head.backbones, f'--d-head={name} exists only in the {" and ".join(head.backbones)} '
            f'discriminator, not in {args.D_kwargs.class_name}')
    if head.d_kwargs: # D constructor arguments (concat: CGAN's labels with D's input), checked on the backbone
        backbone = backbone_of(args.D_kwargs)
        if not all(key in init_params(args.D_kwargs) for key in head.d_kwargs):
            takers = [n for n in plugins.BACKBONES.names() if all(key in d_params_of(n) for key in head.d_kwargs)]
            others = [n for n in plugins.HEADS.names(needs_labels=True, d_kwargs=None)
                if plugins.HEADS.info(n).backbones is None or backbone in plugins.HEADS.info(n).backbones]
            raise UserError(f'--d-head={name} is for the small backbones ({", ".join(takers)}), not {backbone}; '
                f'{backbone} conditions D with --d-head={" or ".join(others)}')
        args.D_kwargs.update(head.d_kwargs)
    if head.class_name is None: # the network's own layer
        args.D_kwargs.pop('head_kwargs', None)
    else:
        args.D_kwargs.head_kwargs = dnnlib.EasyDict(class_name=head.class_name)
    opts.desc.add('d_head', name)

def parse_blocks(opts, net):
    """[(flag, block name, resolution)] of --g-blocks/--d-blocks (NAME@RES,...) and of their attention shorthand
    (--g-attn/--d-attn: RES,...) for net 'g' or 'd'."""
    out = [(f'--{net}-attn', 'attention', res) for res in (opts[f'{net}_attn'] or [])]
    for item in (opts[f'{net}_blocks'] or []):
        name, _, res = item.partition('@')
        check(name in plugins.BLOCKS, f'--{net}-blocks: unknown block {name!r} in {item!r}; choose from '
            f'{", ".join(plugins.BLOCKS.names())} (NAME@RES, comma-separated)')
        out.append((f'--{net}-blocks', name, res))
    for flag, name, res in out:
        try:
            int(res)
        except ValueError:
            raise UserError(f'{flag}: {res!r} is not a resolution; give comma-separated integers' if name == 'attention'
                and flag.endswith('attn') else f'{flag}: {res!r} is not a resolution; give NAME@RES, e.g. {name}@16') from None
    return [(flag, name, int(res)) for flag, name, res in out]

def _allowed_resolutions(opts, args):
    res = int(args.training_set_kwargs.resolution)
    if plugins.BACKBONES.info(opts.arch).pow2: # feature maps between blocks: 4 .. res/2
        return [2 ** k for k in range(2, res.bit_length() - 1)]
    allowed = [res] # other backbones check their own layout when built; here what any of them could have
    while allowed[-1] % 2 == 0 and allowed[-1] > 4:
        allowed.append(allowed[-1] // 2) # the small backbones halve while even (28 -> 14 -> 7)
    return sorted(allowed)

def _apply_blocks(opts, args):
    D_params = init_params(args.D_kwargs)
    backbone = backbone_of(args.D_kwargs)
    for net in ('g', 'd'):
        blocks = parse_blocks(opts, net)
        for flag in sorted({flag for flag, _, _ in blocks}, reverse=True): # --?-attn first, as before --?-blocks
            check('attn_resolutions' in D_params, f'{flag}: the {backbone} backbone has no '
                f'{"attention blocks" if flag.endswith("attn") else "inserted blocks"}')
        if not blocks:
            continue
        allowed = _allowed_resolutions(opts, args)
        for flag, _, res in blocks:
            check(res in allowed, f'{flag}: no feature maps of {res}x{res} to attend over; choose from '
                f'{",".join(str(r) for r in allowed)}')
        names = sorted({name for _, name, _ in blocks})
        check(len(names) == 1, f'--{net}-blocks: one kind of block per network, got {", ".join(names)}')
        resolutions = sorted({res for _, _, res in blocks})
        target = args.G_kwargs.synthesis_kwargs if net == 'g' else args.D_kwargs
        target.attn_resolutions = resolutions
        block = plugins.BLOCKS.info(names[0])
        if not block.network_default: # the networks build their default block when attn_kwargs names none
            target.attn_kwargs = dnnlib.EasyDict(class_name=block.class_name)
        tag = 'attn' if block.network_default else f'blocks{names[0]}'
        opts.desc.add(f'{net}_blocks', f'{net}{tag}{".".join(str(r) for r in resolutions)}')

def _apply_norms(opts, args):
    D_params = init_params(args.D_kwargs)
    backbone = backbone_of(args.D_kwargs)
    for flag, key, value, what in [('--d-sn', 'spectral_norm', opts.d_sn, 'spectral'),
            ('--d-bn', 'batch_norm', opts.d_bn, 'batch')]:
        if value is not None:
            check(key in D_params, f'{flag}: the {backbone} backbone has no {what} normalisation option')
            args.D_kwargs[key] = bool(value)
            opts.desc.add(flag[2:].replace('-', '_'), f'{flag[2:].replace("-", "")}{int(bool(value))}')

# The --som-* flags that only mean something with several heads, and their som_kwargs entries.
_SOM_FLAGS = [('--som-topo', 'som_topo', 'topology'), ('--som-sigma-start', 'som_sigma_start', 'sigma_start'),
    ('--som-sigma-end', 'som_sigma_end', 'sigma_end'), ('--som-normalize', 'som_normalize', 'normalize'),
    ('--som-g-weights', 'som_g_weights', 'g_weights'), ('--som-bmu', 'som_bmu', 'bmu'), ('--som-pairs', 'som_pairs', 'pairs')]

def som_kwargs(opts):
    """loss_kwargs.som_kwargs for --som-d=K > 1, every value explicit: the flags, else the config's
    (SOM_DEFAULTS_BY_CFG), else stylegan_som.som.DEFAULTS."""
    K = opts.som_d
    defaults = {**som.DEFAULTS, 'sigma_start_floor': None, **SOM_DEFAULTS_BY_CFG.get(opts.cfg, {})}
    topo = defaults['topology'] if opts.som_topo is None else opts.som_topo
    check(topo in som.TOPOLOGIES, f'--som-topo: unknown topology {topo!r}; choose from {", ".join(som.TOPOLOGIES)}')
    if topo == 'grid':
        try:
            som.grid_side(K)
        except ValueError:
            raise UserError(f'--som-topo=grid needs a square --som-d (4, 9, 16, 25, ...), got --som-d={K}; '
                'use --som-topo=linear or --som-topo=circular for other counts') from None
    sigma_end = defaults['sigma_end'] if opts.som_sigma_end is None else opts.som_sigma_end
    check(sigma_end > 0, f'--som-sigma-end must be positive, got {sigma_end}')
    sigma_start = opts.som_sigma_start
    if sigma_start is None: # half the diameter, at least the end width (the config's floor goes with its end)
        floor = defaults['sigma_start_floor'] if opts.som_sigma_end is None else None
        sigma_start = som.default_sigma_start(K, topo, floor or sigma_end)
    check(sigma_start > 0, f'--som-sigma-start must be positive, got {sigma_start}')
    given = lambda name, key: defaults[key] if opts[name] is None else opts[name]
    return dnnlib.EasyDict(num_heads=K, topology=topo, sigma_start=sigma_start, sigma_end=sigma_end,
        normalize=bool(given('som_normalize', 'normalize')), g_weights=given('som_g_weights', 'g_weights'),
        bmu=given('som_bmu', 'bmu'), pairs=given('som_pairs', 'pairs'))

def _apply_som(opts, args):
    K = 1 if opts.som_d is None else opts.som_d
    check(K >= 1, f'--som-d must be at least 1, got {K}')
    opts.som_d = K
    if K == 1:
        for flag, name, _ in _SOM_FLAGS:
            check(opts[name] is None, f'{flag} needs several SOM heads: give --som-d of 2 or more')
    else:
        args.D_kwargs.num_heads = K
        args.loss_kwargs.som_kwargs = som_kwargs(opts)
        opts.desc.add('som', f'som{K}{args.loss_kwargs.som_kwargs.topology}')
    share = 'trunk' if opts.som_share is None else opts.som_share
    check(share in SOM_SHARE, f'--som-share: unknown value {share!r}; choose from {", ".join(SOM_SHARE)}')
    if share == 'none': # K complete single-head discriminators instead of K heads on one trunk (the official code's)
        member = dnnlib.EasyDict(args.D_kwargs)
        member.pop('num_heads', None)
        args.D_kwargs = dnnlib.EasyDict(class_name='stylegan_som.networks.separate.SeparateDiscriminators',
            num_heads=K, discriminator_kwargs=member)
        opts.desc.add('separate', 'separate')
        check(opts.d_head is None or not plugins.HEADS.info(opts.d_head).aux_loss, f'--d-head={opts.d_head} does '
            'not combine with --som-share=none: its auxiliary classifier sits on one shared trunk')
        check(not args.loss_kwargs.get('fm_weight'), '--fm needs one trunk whose features the heads score; '
            '--som-share=none has K separate discriminators')

def apply(opts, args):
    _apply_head(opts, args)
    _apply_blocks(opts, args)
    _apply_norms(opts, args)
    _apply_som(opts, args)

def _names_help(registry):
    return '; '.join(f'{n}: {registry.describe(n)}' for n in registry.names())

GROUP = Group('SOM and plugins', [
    Option('--som-d',         help='Discriminator heads trained as a self-organising map (1 = plain GAN) [default: 1]', type=int, metavar='K'),
    Option('--som-topo',      help='Map of the heads; grid needs a square K [default: grid]', type=click.Choice(list(som.TOPOLOGIES))),
    Option('--som-sigma-start', help='Neighbourhood width at the start [default: half the map\'s diameter, at least the end width; toy: at least 0.3]', type=float, metavar='FLOAT'),
    Option('--som-sigma-end', help='Neighbourhood width at the end of --kimg, reached exponentially [default: 0.3; toy: 1.0]', type=float, metavar='FLOAT'),
    Option('--som-normalize', help='Give every head the same total weight on reals (mean 1 per head over the batch) [default: true]', type=bool, metavar='BOOL'),
    Option('--som-g-weights', help='How G\'s loss weighs the heads: mean (all alike), neighbourhood (the heads around each fake\'s best-matching head), balance (neighbourhood, fakes moved from over- to under-occupied units), transport (each fake sent to one unit by a balanced assignment, then its neighbourhood) [default: transport]', type=click.Choice(list(som.G_WEIGHTINGS))),
    Option('--som-bmu',       help='A sample\'s unit on the map: logit (its highest-scoring head), prototype (its nearest prototype in D\'s features) [default: logit]', type=click.Choice(list(som.BMU_RULES))),
    Option('--som-pairs',     help='With a coupled loss such as rpgan: index (each real paired with the fake at its batch position), unit (with a fake of its own unit, and each fake with a real of its unit) [default: index]', type=click.Choice(list(som.PAIRINGS))),
    Option('--som-share',     help='trunk: K heads on one shared D trunk; none: K complete discriminators [default: trunk]', type=click.Choice(list(SOM_SHARE))),
    Option('--d-head',        help=lambda: 'D head [default: cmap with --cond=1, else linear]: ' + _names_help(plugins.HEADS), type=lambda: click.Choice(plugins.HEADS.names())),
    Option('--g-blocks',      help=lambda: 'Blocks in G on the features after these resolutions\' blocks, NAME@RES comma-separated: ' + _names_help(plugins.BLOCKS), callback=comma_list, metavar='LIST'),
    Option('--d-blocks',      help='Blocks in D on the features entering these resolutions\' blocks, NAME@RES comma-separated', callback=comma_list, metavar='LIST'),
    Option('--g-attn',        help='Self-attention in G: short for --g-blocks=attention@RES,... [default: none]', callback=comma_list, metavar='LIST'),
    Option('--d-attn',        help='Self-attention in D: short for --d-blocks=attention@RES,... [default: none]', callback=comma_list, metavar='LIST'),
    Option('--d-sn',          help='Spectral normalisation of every weight of D [default: false; true for dcgan and resnet, but not in --cfg=stacked-mnist]', type=bool, metavar='BOOL'),
    Option('--d-bn',          help='Batch normalisation after each strided convolution of D (dcgan) [default: true in --cfg=stacked-mnist, else false]', type=bool, metavar='BOOL'),
], apply)
