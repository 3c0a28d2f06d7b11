"""Loss and regularisers: the objective (--loss), the penalties it brings by default (the Objective's
`defaults`) and the flags that change them, and the learning rates."""

import click

import dnnlib
from stylegan_som import plugins
from .spec import Group, Option, check
from .presets import small

def objective_defaults(loss):
    from stylegan_som.losses.base import defaults_of # pylint: disable=import-outside-toplevel
    return defaults_of(dnnlib.util.get_obj_by_name(plugins.LOSSES.class_name(loss)))

# (option name, flag, run-name part, optimizer kwargs) of the learning rates
_RATES = [('glr', '--glr', 'glr', 'G_opt_kwargs'), ('dlr', '--dlr', 'dlr', 'D_opt_kwargs')]

def _apply_weights(opts, args):
    L = args.loss_kwargs
    if opts.gamma is not None:
        check(opts.gamma >= 0, f'--gamma must be non-negative, got {opts.gamma}')
        opts.desc.add('gamma', f'gamma{opts.gamma:g}')
        L.r1_gamma = opts.gamma
    if opts.fm is not None:
        check(opts.fm >= 0, f'--fm must be non-negative, got {opts.fm}')
        if opts.fm > 0:
            opts.desc.add('fm', f'fm{opts.fm:g}')
            L.fm_weight = opts.fm
    for name, flag, desc, where in _RATES:
        if opts[name] is not None:
            check(opts[name] > 0, f'{flag} must be positive, got {opts[name]}')
            args[where].lr = opts[name]
            opts.desc.add(desc, f'{desc}{opts[name]:g}')
    lr_rampdown = opts.lr_rampdown # the flag, else the small config's default, else off
    if lr_rampdown is not None:
        check(0 <= lr_rampdown <= 1, f'--lr-rampdown must be a fraction of --kimg in [0, 1], got {lr_rampdown}')
        opts.desc.add('lr_rampdown', f'lrdown{lr_rampdown:g}')
    else:
        lr_rampdown = small(opts.cfg).get('lr_rampdown')
    if lr_rampdown:
        args.lr_rampdown = lr_rampdown

def _apply_objective(opts, args):
    """loss_kwargs.objective and the regularisers the objective brings, explicit in the options."""
    L, loss = args.loss_kwargs, opts.loss
    check(loss in plugins.LOSSES, f'--loss: unknown loss {loss!r}; choose from {", ".join(plugins.LOSSES.names())}')
    defaults = objective_defaults(loss)
    L.objective = loss
    if loss != 'stylegan2':
        opts.desc.add('loss', loss)
    if not defaults['r1'] and opts.gamma is None: # an explicit --gamma adds R1 to any objective
        L.r1_gamma = 0
    if not defaults['path_length']:
        L.pl_weight = 0
    if not defaults['style_mixing']:
        L.style_mixing_prob = 0
    for key in ('gp_weight', 'weight_clip'):
        if defaults[key]:
            L[key] = defaults[key]
    r2_gamma = opts.r2_gamma # R2 on fakes; the objective's default is R1's gamma
    if r2_gamma is not None:
        check(r2_gamma >= 0, f'--r2-gamma must be non-negative, got {r2_gamma}')
        opts.desc.add('r2_gamma', f'r2gamma{r2_gamma:g}')
    elif defaults['r2']:
        r2_gamma = L.r1_gamma
    if r2_gamma:
        L.r2_gamma = r2_gamma
    interval = opts.d_reg_interval # D's penalties lazily (the config's), or every step where the objective says so
    if interval is not None:
        check(interval >= 1, f'--d-reg-interval must be at least 1, got {interval}')
        opts.desc.add('d_reg_interval', f'dreg{interval:d}')
        args.D_reg_interval = None if interval == 1 else interval
    elif not defaults['lazy_reg']:
        args.D_reg_interval = None

def apply(opts, args):
    _apply_weights(opts, args)
    _apply_objective(opts, args)

def _loss_help():
    return ('GAN objective, with the regularisers it brings [default: stylegan2]: '
        + '; '.join(f'{n}: {plugins.LOSSES.describe(n)}' for n in plugins.LOSSES.names())
        + '. An explicit --gamma adds R1 to any of them')

GROUP = Group('Loss and regularisers', [
    Option('--loss',        help=_loss_help, type=lambda: click.Choice(plugins.LOSSES.names())),
    Option('--gamma',       help='R1 weight, instead of the config\'s', type=float, metavar='FLOAT'),
    Option('--r2-gamma',    help='R2 weight: zero-centred gradient penalty on fakes, as R1 on reals [default: rpgan: R1\'s gamma; else 0, off]', type=float, metavar='FLOAT'),
    Option('--d-reg-interval', help='Steps between D\'s penalties (R1, R2, GP), lazily at that multiple of the weight; 1 = every step [default: 16; toy and rpgan: 1]', type=int, metavar='INT'),
    Option('--fm',          help='Feature matching in G\'s loss with this weight: the distance between the batch means of D\'s final features on reals and fakes [default: 0, off]', type=float, metavar='FLOAT'),
    Option('--glr',         help='Learning rate of G [default: the config\'s; stacked-mnist: 0.0016, 8x D\'s]', type=float, metavar='FLOAT'),
    Option('--dlr',         help='Learning rate of D', type=float, metavar='FLOAT'),
    Option('--lr-rampdown', help='Take both learning rates to 0 (half-cosine) over this last fraction of --kimg [default: toy and stacked-mnist: 0.25, else off]', type=float, metavar='FRAC'),
], apply)
