"""The pieces every option group is made of: a command-line option as data, a group of them with the one function
that turns their values into training_loop kwargs, and the run description those functions add to."""

import click

import dnnlib

#----------------------------------------------------------------------------

class UserError(Exception):
    """A bad command-line value; reported as one line naming the flag."""

def check(cond, message):
    if not cond:
        raise UserError(message)

def comma_list(ctx, param, value):
    """click callback: 'a,b' -> ['a', 'b']; 'none' or '' -> []; not given -> None."""
    _ = ctx, param
    if value is None:
        return None
    if value.lower() == 'none' or value == '':
        return []
    return [x.strip() for x in value.split(',') if x.strip()]

#----------------------------------------------------------------------------

class Option:
    """One click option: its flag names and click's keyword arguments (help, type, metavar, ...). `help` and
    `type` may be callables, evaluated when the command is built, so that choices come from the registries.

    A flag that only sets one training_loop kwarg needs no code: `sets` names it ('n_critic', or nested:
    'loss_kwargs.fm_weight'), `minimum` is the least value allowed, and `tag` ('ncritic{:g}') adds the value to the
    run's name. The group's apply() handles every other flag."""

    def __init__(self, *decls, sets=None, minimum=None, tag=None, **click_kwargs):
        self.decls = decls
        self.sets, self.minimum, self.tag = sets, minimum, tag
        self.click_kwargs = click_kwargs

    def build(self):
        kwargs = {k: (v() if k in ('type', 'help') and callable(v) and not isinstance(v, (type, click.ParamType)) else v)
            for k, v in self.click_kwargs.items()}
        return click.Option(self.decls, **kwargs)

    def apply(self, opts, args):
        """What `sets`, `minimum` and `tag` say, for a given value."""
        param = self.build()
        value = opts.get(param.name)
        if self.sets is None or value is None:
            return
        flag = max(param.opts, key=len)
        check(self.minimum is None or value >= self.minimum, f'{flag} must be at least {self.minimum}, got {value}')
        *path, key = self.sets.split('.')
        target = args
        for part in path:
            target = target.setdefault(part, dnnlib.EasyDict())
        target[key] = value
        if self.tag is not None:
            opts.desc.add(param.name, self.tag.format(value))

class Group:
    """A section of --help and the function `apply(opts, args)` that fills training_loop kwargs (`args`) from the
    values of this group's options (and any other value of `opts`, which holds every option); then the options
    with `sets` apply themselves."""

    def __init__(self, title, options, apply=None):
        self.title = title
        self.options = list(options)
        self.custom_apply = apply

    def apply(self, opts, args):
        if self.custom_apply is not None:
            self.custom_apply(opts, args)
        for option in self.options:
            option.apply(opts, args)

    def params(self):
        return [option.build() for option in self.options]

    def names(self):
        return [option.build().name for option in self.options]

#----------------------------------------------------------------------------

# The order of the parts of a run directory's name, whatever order the groups add them in (names of runs made
# before the options were grouped stay the same).
DESC_ORDER = ('data', 'cond', 'subset', 'mirror', 'cfg', 'gamma', 'fm', 'kimg', 'batch', 'cbase', 'cmax', 'map',
    'glr', 'dlr', 'mbstd', 'aug', 'p', 'target', 'augpipe', 'seed', 'resume', 'freezed', 'd_head', 'arch', 'g_arch',
    'd_width', 'd_pack', 'g_blocks', 'd_blocks', 'd_sn', 'd_bn', 'lr_rampdown', 'loss', 'som', 'separate',
    'r2_gamma', 'd_reg_interval')

class Desc:
    """The run description, as named parts joined in DESC_ORDER; parts not in it follow, in the order added."""

    def __init__(self):
        self.parts = dict()

    def add(self, key, text):
        self.parts[key] = self.parts.get(key, '') + text

    def __str__(self):
        keys = [key for key in DESC_ORDER if key in self.parts] + [key for key in self.parts if key not in DESC_ORDER]
        return '-'.join(self.parts[key] for key in keys)

