"""Networks: the base config's sizes and overrides, the backbone (--arch, --g-arch), D's width and packing."""

import inspect

import click

import dnnlib
from stylegan_som import plugins
from .spec import Group, Option, check
from .presets import CFG_SPECS, CFG_HELP, SMALL_CFGS, small

def init_params(kwargs):
    """The constructor parameters (with defaults) of the class of `kwargs`."""
    from torch_utils import persistence # pylint: disable=import-outside-toplevel
    cls = dnnlib.util.get_obj_by_name(kwargs.class_name)
    if persistence.is_persistent(cls): # the decorator's __init__ takes *args, **kwargs
        cls = cls.__bases__[0]
    return inspect.signature(cls.__init__).parameters

def backbone_of(kwargs):
    """The --arch name of a Generator/Discriminator class name."""
    module = kwargs.class_name.rsplit('.', 1)[0]
    names = [name for name in plugins.BACKBONES.names() if plugins.BACKBONES.class_name(name) == module]
    return names[0] if names else module.rsplit('.', 1)[-1]

# (flag, option name, minimum, description name, where in the StyleGAN2 kwargs)
_SIZE_OVERRIDES = [
    ('--cbase', 'cbase', 'cbase', [('G', 'synthesis_kwargs', 'channel_base'), ('D', None, 'channel_base')]),
    ('--cmax', 'cmax', 'cmax', [('G', 'synthesis_kwargs', 'channel_max'), ('D', None, 'channel_max')]),
    ('--map', 'map_depth', 'map', [('G', 'mapping_kwargs', 'num_layers')]),
    ('--mbstd-group', 'mbstd_group', 'mbstd', [('D', 'epilogue_kwargs', 'mbstd_group_size')]),
]

def _apply_sizes(opts, args):
    for flag, name, desc, places in _SIZE_OVERRIDES:
        value = opts[name]
        if value is None:
            continue
        check(value >= 1, f'{flag} must be at least 1, got {value}')
        for net, sub, key in places:
            kwargs = args[f'{net}_kwargs']
            (kwargs[sub] if sub else kwargs)[key] = value
        opts.desc.add(desc, f'{desc}{value}')
    group = args.D_kwargs.epilogue_kwargs.mbstd_group_size
    check(args.batch_gpu < group or args.batch_gpu % group == 0, f'--mbstd-group={group}: the images per process '
        f'and round (--batch-gpu={args.batch_gpu}) must be a multiple of the group size, or smaller than it')

def _small_kwargs(opts, args):
    """(G_kwargs, D_kwargs) of a small backbone, from the config's sizes and --cbase/--cmax/--map/--mbstd-group."""
    arch, g_arch, cfg = opts.arch, opts.g_arch, opts.cfg
    sizes = small(cfg) if small(cfg).get('arch') == arch else dict(G=dict(), D=dict()) # the config's fit its own
    old_G, old_D = args.G_kwargs, args.D_kwargs
    G = dnnlib.EasyDict(class_name=f'{plugins.BACKBONES.class_name(g_arch)}.Generator', z_dim=old_G.z_dim,
        w_dim=old_G.z_dim, mapping_kwargs=dnnlib.EasyDict(num_layers=(opts.map_depth or 0)),
        synthesis_kwargs=dnnlib.EasyDict(sizes['G'] if g_arch == arch else dict()))
    if opts.map_depth:
        G.w_dim = old_G.w_dim
    D = dnnlib.EasyDict(class_name=f'{plugins.BACKBONES.class_name(arch)}.Discriminator', **sizes['D'])
    if opts.mbstd_group is not None: # minibatch stddev only when asked for (off in the configs)
        check('mbstd_group_size' in init_params(D), f'--mbstd-group: the {arch} discriminator has no minibatch '
            'standard deviation')
        D.mbstd_group_size = old_D.epilogue_kwargs.mbstd_group_size
    if plugins.BACKBONES.info(arch).conv: # channel budget from --cbase/--cmax, else a small config's, else the network's
        spec = CFG_SPECS[cfg]
        for key, flag, value in [('channel_base', opts.cbase, spec['cbase']), ('channel_max', opts.cmax, spec['cmax'])]:
            value = flag if flag is not None else (value if cfg in SMALL_CFGS and value > 0 else None)
            if value is not None:
                G.synthesis_kwargs[key] = D[key] = value
    else:
        check(opts.cbase is None and opts.cmax is None, f'--cbase/--cmax size convolutional networks; {arch} has none')
    return G, D

def _apply_backbone(opts, args):
    arch, g_arch, cfg = opts.arch, opts.g_arch, opts.cfg
    if opts.g_arch_given: # the conv backbones share z -> image at any resolution, so their Gs and Ds pair freely
        mixable = plugins.BACKBONES.names(mixable=True)
        check(g_arch in mixable and arch in mixable, f'--g-arch={g_arch} with the {arch} discriminator: only '
            f'{" and ".join(mixable)} pair with each other')
    if args.G_kwargs.class_name.startswith(plugins.BACKBONES.class_name(g_arch) + '.') and \
            args.D_kwargs.class_name.startswith(plugins.BACKBONES.class_name(arch) + '.'):
        return # the base config's networks are already these
    args.G_kwargs, args.D_kwargs = _small_kwargs(opts, args)
    args.loss_kwargs.pl_weight = 0          # a single w: no path length to regularise ...
    args.loss_kwargs.style_mixing_prob = 0  # ... and nothing to mix
    args.G_reg_interval = None              # hence no separate G regularisation phase
    conf = small(cfg)
    if 'betas' in conf:
        args.G_opt_kwargs.betas = list(conf['betas'])
        args.D_opt_kwargs.betas = list(conf['betas'])
    if 'glr' in conf and opts.glr is None: # G's own rate (CFG_SPECS' lrate is D's)
        args.G_opt_kwargs.lr = conf['glr']
    if 'D_reg_interval' in conf:
        args.D_reg_interval = conf['D_reg_interval']
    if cfg not in SMALL_CFGS:
        opts.desc.add('arch', arch)
    if g_arch != arch:
        opts.desc.add('g_arch', f'g{g_arch}')

def _apply_width_pack(opts, args):
    D = args.D_kwargs
    if opts.d_width is not None: # the channel budget of convolutional Ds, the MLP's features
        check(opts.d_width > 0, f'--d-width must be a positive fraction of G\'s width, got {opts.d_width}')
        params = init_params(D)
        keys = [key for key in ('channel_base', 'channel_max', 'layer_features') if key in D or key in params]
        check(keys, f'--d-width: {D.class_name} has no width setting (channel_base, channel_max, layer_features)')
        for key in keys:
            width = D[key] if key in D else params[key].default
            D[key] = max(int(round(width * opts.d_width)), 1)
        opts.desc.add('d_width', f'dwidth{opts.d_width:g}')
    if opts.d_pack is not None: # PacGAN: D scores packs of this many samples
        d_pack = opts.d_pack
        check(d_pack >= 1, f'--d-pack must be at least 1, got {d_pack}')
        check('pack_size' in init_params(D), f'--d-pack: the {backbone_of(D)} discriminator cannot pack samples; '
            f'use --arch={", ".join(n for n in plugins.BACKBONES.names() if "pack_size" in d_params_of(n))}')
        check(d_pack == 1 or not args.training_set_kwargs.use_labels,
            f'--d-pack={d_pack}: a pack mixes samples of different labels; packing needs --cond=0')
        check(args.batch_gpu % d_pack == 0, f'--d-pack={d_pack}: the images per process and round '
            f'(--batch-gpu={args.batch_gpu}) must be a multiple of the pack size')
        group, packs = D.get('mbstd_group_size', 0), args.batch_gpu // d_pack
        check(not group or packs < group or packs % group == 0, f'--d-pack={d_pack} with --mbstd-group={group}: '
            f'the packs per round ({packs}) must be a multiple of the group size, or fewer than it')
        D.pack_size = d_pack
        opts.desc.add('d_pack', f'pack{d_pack}')

def d_params_of(arch):
    return init_params(dnnlib.EasyDict(class_name=f'{plugins.BACKBONES.class_name(arch)}.Discriminator'))

def _apply_freeze(opts, args):
    if opts.freezed is not None:
        check(opts.freezed >= 0, f'--freezed must be non-negative, got {opts.freezed}')
        check('block_kwargs' in args.D_kwargs, # the per-block kwargs of StyleGAN2's D, where freeze_layers goes
            '--freezed needs --arch=stylegan2 (it freezes StyleGAN2 discriminator layers)')
        opts.desc.add('freezed', f'freezed{opts.freezed:d}')
        args.D_kwargs.block_kwargs.freeze_layers = opts.freezed

def _apply_eq_lr(opts, args):
    """--eq-lr: equalised learning rate in the small backbones' layers (StyleGAN2's always has it; nothing to set)."""
    if opts.eq_lr is None:
        return
    stylegan2 = args.G_kwargs.class_name == f'{plugins.BACKBONES.class_name("stylegan2")}.Generator'
    check(not stylegan2 or opts.eq_lr, '--eq-lr=0: StyleGAN2\'s layers always have an equalised learning rate')
    if opts.eq_lr and not stylegan2:
        args.G_kwargs.synthesis_kwargs.eq_lr = args.G_kwargs.mapping_kwargs.eq_lr = True
        args.D_kwargs.eq_lr = True # before --som-share=none copies D's kwargs into each member
        opts.desc.add('eq_lr', 'eqlr')

def _msg_levels(D_kwargs, resolution):
    """The scales an MSG-GAN D takes below `resolution`, as its own layout decides (the small Ds are built
    here to read it; StyleGAN2's takes every power of two down to 4)."""
    import torch # pylint: disable=import-outside-toplevel
    if D_kwargs.class_name == f'{plugins.BACKBONES.class_name("stylegan2")}.Discriminator':
        return [2 ** k for k in range(int(resolution).bit_length() - 2, 1, -1)]
    with torch.random.fork_rng(devices=[]):
        D = dnnlib.util.construct_class_by_name(**D_kwargs, c_dim=0, img_resolution=resolution, img_channels=3)
    return D.msg_resolutions

def _apply_msg(opts, args):
    """--msg=1: MSG-GAN. D takes a scale at each of its blocks; G gives an image at each of those resolutions."""
    if not opts.msg:
        return
    for flag, name in (('--arch', opts.arch), ('--g-arch', opts.g_arch)):
        check(plugins.BACKBONES.info(name).msg, f'--msg=1: {flag}={name} has no blocks at several resolutions; use '
            f'{" or ".join(plugins.BACKBONES.names(msg=True))}')
    check('augment_kwargs' not in args, '--msg=1 trains without augmentation (it would have to transform every '
        'scale alike); add --aug=noaug')
    G, D = args.G_kwargs, args.D_kwargs
    if opts.g_arch == 'stylegan2':
        architecture = G.synthesis_kwargs.get('architecture', 'skip')
        check(architecture == 'skip', f'--msg=1: StyleGAN2\'s generator needs the skip architecture, not {architecture}')
    D.msg = True
    levels = _msg_levels(D, args.training_set_kwargs.resolution)
    check(levels, f'--msg=1: at {args.training_set_kwargs.resolution}x{args.training_set_kwargs.resolution} the '
        f'{opts.arch} discriminator has one block resolution only; MSG-GAN needs several')
    if opts.g_arch != 'stylegan2': # StyleGAN2's skip architecture has every scale already
        from stylegan_som.networks.small import start_resolution # pylint: disable=import-outside-toplevel
        resolution = args.training_set_kwargs.resolution
        r, has = start_resolution(resolution), [] # the small generators' feature maps: r0, doubled up to the output
        while r < resolution:
            has, r = has + [r], r * 2
        missing = [res for res in levels if res not in has]
        check(not missing, f'--msg=1: the {opts.arch} discriminator takes scales {levels}, and the {opts.g_arch} '
            f'generator has no image at {missing} (it has {has})')
        G.synthesis_kwargs.msg_resolutions = levels
    args.loss_kwargs.msg = True
    opts.desc.add('msg', 'msg')

def apply(opts, args):
    _apply_sizes(opts, args)
    _apply_backbone(opts, args)
    _apply_eq_lr(opts, args)
    _apply_freeze(opts, args)
    _apply_width_pack(opts, args)
    _apply_msg(opts, args)

def _cfg_help():
    return 'Base configuration [default: auto]: ' + '; '.join(f'{k}: {v.rstrip(".")}' for k, v in CFG_HELP.items())

def _arch_help():
    return ('Networks [default: stylegan2; toy: mlp; stacked-mnist: dcgan]: '
        + '; '.join(f'{n}: {plugins.BACKBONES.describe(n)}' for n in plugins.BACKBONES.names()))

GROUP = Group('Networks', [
    Option('--cfg',         help=_cfg_help, type=click.Choice(list(CFG_SPECS))),
    Option('--arch',        help=_arch_help, type=lambda: click.Choice(plugins.BACKBONES.names())),
    Option('--g-arch',      help=lambda: f'G\'s own backbone, paired with --arch\'s D: {" or ".join(plugins.BACKBONES.names(mixable=True))} with either [default: as --arch]', type=lambda: click.Choice(plugins.BACKBONES.names(mixable=True))),
    Option('--cbase',       help='Channel budget: a layer at resolution r gets min(cbase / r, cmax) channels', type=int, metavar='INT'),
    Option('--cmax',        help='Most channels in any layer', type=int, metavar='INT'),
    Option('--map', '--map-depth', 'map_depth', help='Layers in the mapping network', type=int, metavar='INT'),
    Option('--mbstd-group', help='Group size of D\'s minibatch standard deviation', type=int, metavar='INT'),
    Option('--d-width',     help='Width of D as a fraction of G\'s: scales D\'s channel budget (or the MLP\'s features) [default: 1]', type=float, metavar='FRAC'),
    Option('--d-pack',      help='PacGAN: D scores packs of this many samples, concatenated as channels (dcgan, resnet, mlp) [default: 1]', type=int, metavar='INT'),
    Option('--eq-lr',       help='Equalised learning rate in the layers of dcgan, resnet and mlp (StyleGAN2 always has it) [default: false]', type=bool, metavar='BOOL'),
    Option('--msg',         help='MSG-GAN: G\'s image at every resolution enters D\'s block of that resolution, reals as average-pooled copies (stylegan2, dcgan, resnet; needs --aug=noaug: no augmentation of pyramids) [default: false]', type=bool, metavar='BOOL'),
    Option('--freezed',     help='Keep this many of D\'s highest-resolution layers fixed [default: 0]', type=int, metavar='INT'),
], apply)
