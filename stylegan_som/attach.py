"""Attach plugins (SOM heads, a projection head, attention blocks, ...) to the networks of any compatible pickle.

Every persistent network records the arguments it was built with (`init_kwargs`), whether this code base or
upstream StyleGAN2-ADA (or the official SOMGAN code) wrote it. Attaching rebuilds each network with this code
base's class from those arguments, overridden by the plugin arguments (and, in training, by the run's
per-run settings, see `RUN_KWARGS`), then copies every parameter and buffer by name. Parameters the pickle
lacks stay freshly initialised; plugins are built to change nothing at first where that is possible
(attention gains start at zero).

Changing the number of discriminator heads K_old -> K_new copies the trained head into every new head:
parameters of a head module (one with `num_heads`) are read as K_old blocks along their first axis and
block k of the result is block k mod K_old, with a little noise on the copies beyond the first K_old
(`head_noise` times the block's RMS) so that the best-matching units of SOM training are not all tied.
Fewer heads keep the first K_new. A SOMGAN pickle (D0 .. D{K-1}, K full discriminators) becomes one D with
K heads: the trunk of D0 and the head of every Dk.

    python -m stylegan_som.attach --network=x.pkl --som-d=4 --g-attn=16 --out=y.pkl
"""

import copy
import os
import re

import click
import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence

from . import weights

#----------------------------------------------------------------------------
# Which constructor arguments come from where.

# Plugin arguments: the caller's value (or its absence, meaning the default) always wins over the pickle's.
PLUGIN_KWARGS = ('num_heads', 'head_kwargs', 'attn_resolutions', 'attn_kwargs', 'spectral_norm')

# In training, these also follow the run rather than the pickle: the data (label/image shape), speed and
# precision, Freeze-D and the minibatch-stddev group (tied to the batch split). Everything else (widths,
# depths, architecture) is the pickle's, so its parameters fit.
RUN_KWARGS = PLUGIN_KWARGS + ('c_dim', 'img_resolution', 'img_channels', 'num_fp16_res', 'conv_clamp',
    'fp16_channels_last', 'freeze_layers', 'mbstd_group_size')

# Classes of this code base that stand in for networks written elsewhere, by class name.
STYLEGAN2 = weights.STYLEGAN2

class AttachError(ValueError):
    """A network cannot be rebuilt or its parameters cannot be carried over; the message says which and why."""

#----------------------------------------------------------------------------

def merge_kwargs(old, new, keys, unset=PLUGIN_KWARGS):
    """`old` (nested dicts) with every entry named in `keys`, at any depth, taken from `new` where `new` has
    it. Where `new` lacks one, it is removed (back to the constructor default) if it is also named in
    `unset` (plugins: not asking for one means none), else `old`'s is kept. Other entries of `new` are
    ignored. Nested dicts are merged the same way."""
    out = dnnlib.EasyDict(copy.deepcopy(dict(old)))
    for k in set(old) | set(new):
        if k in keys:
            if k in new:
                out[k] = copy.deepcopy(new[k])
            elif k in unset:
                out.pop(k, None)
        elif isinstance(new.get(k), dict) and isinstance(old.get(k, {}), dict):
            sub = merge_kwargs(old.get(k, {}), new[k], keys, unset)
            if sub or k in old:
                out[k] = sub
        elif isinstance(old.get(k), dict):
            out[k] = merge_kwargs(old[k], {}, keys, unset)
    return out

def kwargs_differences(old, new, prefix=''):
    """['key: old -> new', ...] for the entries of `new` that differ from `old` (nested dicts flattened)."""
    diffs = []
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(old.get(k), dict):
            diffs += kwargs_differences(old[k], v, f'{prefix}{k}.')
        elif k not in old or old[k] != v:
            diffs.append(f'{prefix}{k}: {old.get(k, "(default)")!r} -> {v!r}')
    return diffs

def recorded_kwargs(module, what):
    """The keyword arguments `module` was built with (persistent classes record them)."""
    kwargs = getattr(module, 'init_kwargs', None)
    if kwargs is None:
        raise AttachError(f'{what} ({type(module).__name__}) records no init kwargs (not a persistent class), so it '
            'cannot be rebuilt with plugins')
    if getattr(module, 'init_args', ()):
        raise AttachError(f'{what} ({type(module).__name__}) was built with positional arguments; only keyword '
            'arguments can be merged with plugin arguments')
    return dnnlib.EasyDict(kwargs)

def guess_class_name(module, what):
    """This code base's class for a network from a pickle (see weights.guess_class_name); raises AttachError."""
    try:
        return weights.guess_class_name(module, what)
    except weights.UnknownClassError as err:
        raise AttachError(str(err)) from None

#----------------------------------------------------------------------------
# Parameter transfer.

def _head_prefixes(module):
    # Submodules scoring K heads at once (heads, and the StyleGAN2 epilogue): their tensors hold K blocks.
    return tuple(f'{name}.' for name, m in module.named_modules() if name and getattr(m, 'num_heads', None) is not None)

def _plain_name(name):
    # torch parametrisations (spectral norm) keep a weight as `<m>.parametrizations.<name>.original`; match it
    # with the plain `<m>.<name>` of a network without them, and the other way round.
    return re.sub(r'\.?parametrizations\.([^.]+)\.original$', r'.\1', name).lstrip('.')

_SN_VECTOR = re.compile(r'^(?:(.*)\.)?parametrizations\.([^.]+)\.\d+\._[uv]$')

def _blocks(tensor, k):
    if tensor.ndim == 0 or tensor.shape[0] % k != 0:
        return None
    return list(tensor.reshape(k, tensor.shape[0] // k, *tensor.shape[1:]).unbind(0))

def transfer(srcs, dst, head_noise=0.01, seed=0):
    """Copy parameters and buffers of `dst` by name from the modules `srcs` (one, or the K discriminators of a
    SOMGAN pickle, each giving its heads) and return a report dict of name lists: copied, tiled (head count
    grew), reduced (head count shrank), fresh (not in the pickle), mismatched (in the pickle with another
    shape; left fresh), unused (in the pickle, not in the new network)."""
    gen = torch.Generator().manual_seed(seed)
    src_tensors = [{_plain_name(n): t for n, t in misc.named_params_and_buffers(s)} for s in srcs]
    src_heads = [int(getattr(s, 'num_heads', 1)) for s in srcs]
    k_src = sum(src_heads)
    k_dst = int(getattr(dst, 'num_heads', 1))
    prefixes = _head_prefixes(dst)
    report = dnnlib.EasyDict(copied=[], tiled=[], reduced=[], fresh=[], mismatched=[], unused=[])
    dst_names = set()
    plain_copies = set() # weights copied as they are from srcs[0]: only their spectral-norm vectors still fit
    sn_vectors = []
    with torch.no_grad():
        for full_name, tensor in misc.named_params_and_buffers(dst):
            name = _plain_name(full_name)
            dst_names.add(name)
            if _SN_VECTOR.match(name):
                sn_vectors.append((name, tensor))
                continue
            first = src_tensors[0].get(name)
            if first is None:
                report.fresh.append(name)
                continue
            in_head = name.startswith(prefixes)
            if first.shape == tensor.shape and (len(srcs) == 1 or not in_head):
                tensor.copy_(first.detach())
                report.copied.append(name)
                plain_copies.add(name)
                continue
            blocks = None
            if in_head and all(name in t for t in src_tensors):
                parts = [_blocks(t[name].detach(), k) for t, k in zip(src_tensors, src_heads)]
                if all(p is not None for p in parts):
                    blocks = [b for p in parts for b in p]
            target = _blocks(tensor, k_dst)
            if blocks is None or target is None or blocks[0].shape != target[0].shape:
                if first.shape == tensor.shape: # shared layers next to the heads (SOMGAN: from D0)
                    tensor.copy_(first.detach())
                    report.copied.append(name)
                    plain_copies.add(name)
                else:
                    report.mismatched.append(f'{name} {list(first.shape)} -> {list(tensor.shape)}')
                continue
            out = []
            for k in range(k_dst):
                b = blocks[k % k_src].to(tensor.dtype)
                if k >= k_src and head_noise > 0 and tensor.is_floating_point():
                    b = b + torch.randn(b.shape, generator=gen).to(b.dtype) * (head_noise * b.float().square().mean().sqrt())
                out.append(b)
            tensor.copy_(torch.stack(out).reshape(tensor.shape))
            (report.tiled if k_dst > k_src else report.reduced if k_dst < k_src else report.copied).append(name)
        # Power-iteration vectors of spectral norm belong to one weight: copied only along with it, else
        # left fresh and converged for the weight it now has (_refresh_spectral_norm).
        for name, tensor in sn_vectors:
            m = _SN_VECTOR.match(name)
            weight = '.'.join(filter(None, [m.group(1), m.group(2)]))
            src = src_tensors[0].get(name)
            if weight in plain_copies and src is not None and src.shape == tensor.shape:
                tensor.copy_(src.detach())
                report.copied.append(name)
            else:
                report.fresh.append(name)
    report.unused = [n for n in src_tensors[0] if n not in dst_names]
    report.heads = (k_src, k_dst)
    _refresh_spectral_norm(dst, set(report.fresh))
    return report

def _refresh_spectral_norm(module, fresh, n_iters=100):
    """Converge the power-iteration vectors of spectrally normalised weights that were copied in while their
    vectors are fresh (they belong to the random initial weight, so sigma would be wrong, and in eval mode
    nothing updates them). Each training-mode read of such a weight runs one power iteration; 15 left sigma 7%
    off for some random starts (a conv weight's top singular values lie close), 100 cost milliseconds, once."""
    parametrize = torch.nn.utils.parametrize
    for prefix, m in module.named_modules():
        if not parametrize.is_parametrized(m):
            continue
        for name, plist in m.parametrizations.items():
            u_name = '.'.join(filter(None, [prefix, 'parametrizations', name, '0', '_u']))
            if not hasattr(plist[0], '_u') or u_name not in fresh:
                continue
            was_training = plist.training
            plist.train(True)
            with torch.no_grad():
                for _ in range(n_iters):
                    getattr(m, name)
            plist.train(was_training)

def describe(report, what):
    """One line per kind of outcome, for the log."""
    lines = [f'{what}: {len(report.copied)} tensors copied']
    k_src, k_dst = report.heads
    if report.tiled:
        lines.append(f'  {k_src} -> {k_dst} heads, trained head(s) copied into the new ones: {", ".join(report.tiled)}')
    if report.reduced:
        lines.append(f'  {k_src} -> {k_dst} heads, kept the first {k_dst}: {", ".join(report.reduced)}')
    sn_vectors = [n for n in report.fresh if re.search(r'parametrizations\.[^.]+\.\d+\._[uv]$', n)]
    fresh = [n for n in report.fresh if n not in sn_vectors]
    if fresh:
        lines.append(f'  freshly initialised (not in the pickle): {", ".join(fresh)}')
    if sn_vectors:
        lines.append(f'  spectral norm: fresh power-iteration vectors for {len(sn_vectors) // 2} weights')
    if report.mismatched:
        lines.append(f'  freshly initialised (other shape in the pickle): {", ".join(report.mismatched)}')
    if report.unused:
        lines.append(f'  not used from the pickle: {", ".join(report.unused)}')
    return '\n'.join(lines)

#----------------------------------------------------------------------------
# Rebuilding networks.

def rebuild(old, class_name, kwargs, keys, what, extra_srcs=(), head_noise=0.01, seed=0, strict=False, template=None):
    """(new module, report, effective kwargs): `class_name` built from `old`'s recorded kwargs merged with
    `kwargs` for the entries in `keys`, parameters copied from `old` (and `extra_srcs`, see transfer()).
    `template`: a module whose same-named tensors fill what the pickle lacks (G_ema takes G's fresh plugins).
    strict: the pickle must provide every tensor with the right shape (continuing a run).
    If `old` is of another class than `class_name` (by name), its kwargs do not apply: the network is built
    from `kwargs` alone, as upstream builds a run's networks, and parameters are copied where names match."""
    if type(old).__name__ != class_name.rsplit('.', 1)[-1]:
        effective = dnnlib.EasyDict(copy.deepcopy(dict(kwargs)))
    else:
        effective = recorded_kwargs(old, what)
        if 'c_dim' not in effective and class_name.endswith(('.Generator', '.Discriminator')) and 'c_dim' not in kwargs:
            effective.c_dim = 0 # SOMGAN's networks take no labels
        effective = merge_kwargs(effective, kwargs, keys)
    try:
        new = dnnlib.util.construct_class_by_name(class_name=class_name, **effective)
    except Exception as err:
        raise AttachError(f'cannot rebuild {what} as {class_name} from its recorded kwargs {dict(effective)}: '
            f'{type(err).__name__}: {err}') from err
    report = transfer([old, *extra_srcs], new, head_noise=head_noise, seed=seed)
    if strict and (report.fresh or report.mismatched or report.tiled or report.reduced):
        raise AttachError(f'{what} does not match the pickle exactly, cannot continue its run:\n' + describe(report, what))
    if template is not None and (report.fresh or report.mismatched):
        names = set(report.fresh) | {m.split(' ')[0] for m in report.mismatched}
        src = dict(misc.named_params_and_buffers(template))
        with torch.no_grad():
            for name, tensor in misc.named_params_and_buffers(new):
                if name in names and name in src and src[name].shape == tensor.shape:
                    tensor.copy_(src[name])
    return new, report, effective

def can_rebuild(data):
    """Whether every network of a loaded pickle records its init kwargs (persistent classes), so that
    networks_from_pickle() can rebuild it."""
    from . import legacy # pylint: disable=import-outside-toplevel
    nets = [data.get('G'), data.get('G_ema')] + legacy.discriminators(data)
    return all(isinstance(getattr(m, 'init_kwargs', None), dict) and not getattr(m, 'init_args', ()) for m in nets)

def networks_from_pickle(data, G_kwargs, D_kwargs, common_kwargs={}, keys=RUN_KWARGS, head_noise=0.01, seed=0,
        strict=False, log=print):
    """(G, D, G_ema) rebuilt from a loaded pickle for a training run: classes from G_kwargs/D_kwargs.class_name,
    constructor arguments from the pickle overridden by the run's for `keys` (see RUN_KWARGS). Logs what was
    copied and what is new through `log` (None = quiet)."""
    from . import legacy # pylint: disable=import-outside-toplevel
    G_run = dnnlib.EasyDict({k: v for k, v in G_kwargs.items() if k != 'class_name'}, **common_kwargs)
    D_run = dnnlib.EasyDict({k: v for k, v in D_kwargs.items() if k != 'class_name'}, **common_kwargs)
    Ds = legacy.discriminators(data)
    G, rep_G, eff_G = rebuild(data['G'], G_kwargs['class_name'], G_run, keys, 'G', head_noise=head_noise, seed=seed, strict=strict)
    D, rep_D, eff_D = rebuild(Ds[0], D_kwargs['class_name'], D_run, keys, 'D', extra_srcs=Ds[1:], head_noise=head_noise,
        seed=seed + 1, strict=strict)
    G_ema, rep_E, _ = rebuild(data['G_ema'], G_kwargs['class_name'], G_run, keys, 'G_ema', head_noise=head_noise, seed=seed,
        strict=strict, template=G)
    if log is not None:
        ignored = [d for d in kwargs_differences(eff_G, G_run) if d.split(':')[0].split('.')[-1] not in keys]
        ignored += [f'D {d}' for d in kwargs_differences(eff_D, D_run) if d.split(':')[0].split('.')[-1] not in keys]
        if ignored and not strict:
            log('The networks keep the shape of the pickle\'s; these settings of the run are not used: ' + '; '.join(ignored))
        if len(Ds) > 1:
            log(f'D: {len(Ds)} discriminators in the pickle (SOMGAN layout); trunk from D0, head k from Dk.')
        for rep, what in [(rep_G, 'G'), (rep_D, 'D'), (rep_E, 'G_ema')]:
            log(describe(rep, what))
    return G, D, G_ema

def attach(data, G_plugin_kwargs={}, D_plugin_kwargs={}, G_class_name=None, D_class_name=None, head_noise=0.01,
        seed=0, log=print):
    """A new pickle dict: `data` (as returned by legacy.load_network_pkl) with G, D and G_ema rebuilt with the
    plugin arguments (entries of PLUGIN_KWARGS, nested as in the constructors, e.g. D: num_heads=4, G:
    synthesis_kwargs=dict(attn_resolutions=[16]); also c_dim, to give an unconditional pickle labels).
    Classes: G_class_name/D_class_name, else those recorded in the pickle's training state, else ours of the
    same name (guess_class_name). Every other entry of `data` is kept,
    except the training state (it no longer matches the networks) and a SOMGAN pickle's D0 .. D{K-1}."""
    from . import legacy, snapshot # pylint: disable=import-outside-toplevel
    state = data.get(snapshot.STATE_KEY) or {}
    Ds = legacy.discriminators(data)
    if G_class_name is None:
        G_class_name = (state.get('G_kwargs') or {}).get('class_name') or guess_class_name(data['G'], 'G')
    if D_class_name is None:
        D_class_name = (state.get('D_kwargs') or {}).get('class_name') or guess_class_name(Ds[0], 'D')
    if len(Ds) > 1 and 'num_heads' not in D_plugin_kwargs:
        D_plugin_kwargs = dict(D_plugin_kwargs, num_heads=len(Ds)) # keep every SOMGAN discriminator as a head
    G, D, G_ema = networks_from_pickle(data, dict(G_plugin_kwargs, class_name=G_class_name),
        dict(D_plugin_kwargs, class_name=D_class_name), keys=PLUGIN_KWARGS + ('c_dim',), head_noise=head_noise, seed=seed,
        log=log)
    out = {k: v for k, v in data.items() if k != snapshot.STATE_KEY and not (len(Ds) > 1 and k in [f'D{i}' for i in range(len(Ds))])}
    out.update(G=G.eval().requires_grad_(False), D=D.eval().requires_grad_(False), G_ema=G_ema.eval().requires_grad_(False))
    return out

#----------------------------------------------------------------------------
# Command line.

def plugin_kwargs(som_d=None, g_attn=None, d_attn=None, d_head=None, d_sn=None, c_dim=None):
    """(G plugin kwargs, D plugin kwargs) for the StyleGAN2 networks from the command-line values."""
    from . import plugins # pylint: disable=import-outside-toplevel
    G = dnnlib.EasyDict(synthesis_kwargs=dnnlib.EasyDict())
    D = dnnlib.EasyDict()
    if som_d is not None:
        D.num_heads = som_d
    if g_attn:
        G.synthesis_kwargs.attn_resolutions = list(g_attn)
    if d_attn:
        D.attn_resolutions = list(d_attn)
    if d_head is not None and plugins.HEADS.class_name(d_head) is not None: # None: the network's own (cmap)
        D.head_kwargs = dnnlib.EasyDict(class_name=plugins.HEADS.class_name(d_head))
    if d_sn:
        D.spectral_norm = True
    if c_dim is not None:
        G.c_dim = D.c_dim = c_dim
    return G, D

def _head_names():
    """Heads a StyleGAN2 pickle can take: not those that set D constructor arguments (concat's input labels,
    which StyleGAN2's D does not have)."""
    from . import plugins # pylint: disable=import-outside-toplevel
    return plugins.HEADS.names(d_kwargs=None)

def _int_list(ctx, param, value):
    _ = ctx
    if value is None:
        return None # not given: keep the pickle's
    if value.strip().lower() in ('', 'none'):
        return [] # remove
    try:
        return [int(x) for x in value.split(',') if x.strip()]
    except ValueError:
        raise click.BadParameter(f'expected comma-separated resolutions such as 16,32, got {value!r}', param=param)

@click.command(context_settings=dict(max_content_width=120))
@click.pass_context
@click.option('--network', 'network_pkl', help='Network pickle or .safetensors weights file to read (path or URL)', metavar='PKL', required=True)
@click.option('--out', 'out_pkl', help='Network pickle to write', metavar='PKL', required=True)
@click.option('--som-d', help='Number of discriminator heads (SOM units) [default: as in the pickle: 1]', type=int, metavar='INT')
@click.option('--g-attn', help='Self-attention in G at these resolutions, e.g. 16,32', callback=_int_list, metavar='LIST')
@click.option('--d-attn', help='Self-attention in D at these resolutions', callback=_int_list, metavar='LIST')
@click.option('--d-head', help='D head: a registered head plugin (linear, projection, mlp, ...) or cmap (StyleGAN2\'s own conditioning) [default: as in the pickle]',
    type=click.Choice(_head_names()))
@click.option('--d-sn', help='Spectral normalisation in D', type=bool, metavar='BOOL')
@click.option('--c-dim', help='Label dimension of G and D [default: as in the pickle]', type=int, metavar='INT')
@click.option('--head-noise', help='Relative noise on copied heads [default: 0.01]', type=float, default=0.01, metavar='FLOAT')
@click.option('--seed', help='Seed for fresh parameters and head noise [default: 0]', type=int, default=0, metavar='INT')
@click.option('--trust-pickle', help='Load network pickles even where they would run code this installation does not know (only for files you trust) [env: SGSOM_TRUST_PICKLES=1]', is_flag=True)
def main(ctx, network_pkl, out_pkl, som_d, g_attn, d_attn, d_head, d_sn, c_dim, head_noise, seed, trust_pickle):
    """Rebuild the networks of a pickle (StyleGAN2-ADA's, SOMGAN's or ours) with plugins attached and write a new
    pickle that upstream's loader can still open.

    \b
    # Four SOM heads on D and self-attention at 16x16 in G:
    python -m stylegan_som.attach --network=ffhq.pkl --som-d=4 --g-attn=16 --out=ffhq-som4.pkl
    """
    from . import legacy, snapshot # pylint: disable=import-outside-toplevel
    if som_d is not None and som_d < 1:
        ctx.fail(f'--som-d must be at least 1, got {som_d}')
    if c_dim is not None and c_dim < 0:
        ctx.fail(f'--c-dim must be non-negative, got {c_dim}')
    if head_noise < 0:
        ctx.fail(f'--head-noise must be non-negative, got {head_noise}')
    for flag, values in [('--g-attn', g_attn or []), ('--d-attn', d_attn or [])]:
        bad = [r for r in values if r < 4 or r & (r - 1)]
        if bad:
            ctx.fail(f'{flag}: resolutions must be powers of two >= 4, got {",".join(map(str, bad))}')
    out_dir = os.path.dirname(os.path.abspath(out_pkl))
    if not os.path.isdir(out_dir):
        ctx.fail(f'--out: no such directory: {out_dir}')
    try:
        with dnnlib.util.open_url(network_pkl) as f:
            data = legacy.load_network_pkl(f, trust=(trust_pickle or None))
    except (IOError, OSError, ValueError) as err:
        ctx.fail(f'--network: {err}')
    G_plugin, D_plugin = plugin_kwargs(som_d=som_d, g_attn=g_attn, d_attn=d_attn, d_head=d_head, d_sn=d_sn, c_dim=c_dim)
    # Options not given keep the pickle's value: merge_kwargs treats an absent plugin key as "default", so
    # fill them in from the pickle first.
    Ds = legacy.discriminators(data)
    G_plugin = _keep_unset(G_plugin, _plugin_part(data['G']))
    D_plugin = _keep_unset(D_plugin, _plugin_part(Ds[0]), d_head=d_head, somgan=len(Ds) > 1)
    # Explicit "off" values remove the entry (constructor default) rather than pass an empty setting.
    if g_attn == []:
        G_plugin.get('synthesis_kwargs', {}).pop('attn_resolutions', None)
    if d_attn == []:
        D_plugin.pop('attn_resolutions', None)
    if d_sn is False:
        D_plugin.pop('spectral_norm', None)
    torch.manual_seed(seed) # fresh parameters
    try:
        out = attach(data, G_plugin, D_plugin, head_noise=head_noise, seed=seed)
    except AttachError as err:
        ctx.fail(str(err))
    try:
        snapshot.atomic_write_pickle(out, out_pkl)
    except snapshot.SnapshotWriteError as err:
        raise click.ClickException(f'--out: {err}')
    print(f'Wrote {out_pkl}')

def _plugin_part(module):
    # The plugin entries of a network's recorded kwargs (nested), nothing else.
    kwargs = getattr(module, 'init_kwargs', None) or {}
    def keep(d):
        out = {}
        for k, v in d.items():
            if k in PLUGIN_KWARGS:
                out[k] = copy.deepcopy(v)
            elif isinstance(v, dict):
                sub = keep(v)
                if sub:
                    out[k] = sub
        return out
    return keep(kwargs)

def _keep_unset(given, recorded, d_head=None, somgan=False):
    # Start from the pickle's plugin settings and apply the flags that were given on top.
    out = dnnlib.EasyDict(copy.deepcopy(recorded))
    if somgan:
        out.pop('num_heads', None)
    def put(dst, src):
        for k, v in src.items():
            if isinstance(v, dict) and k not in PLUGIN_KWARGS and isinstance(dst.get(k), dict):
                put(dst[k], v)
            else:
                dst[k] = copy.deepcopy(v)
    put(out, given)
    from . import plugins # pylint: disable=import-outside-toplevel
    if d_head is not None and plugins.HEADS.class_name(d_head) is None: # the network's own layer: no plugin
        out.pop('head_kwargs', None)
    return out

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
