"""GPU path check: custom CUDA ops, training-step speed against upstream, and an end-to-end run, in one script.

    python bench/gpu_check.py                                   # one GPU: the full check (sized for <= 8 min on an H100)
    python bench/gpu_check.py --upstream=/path/to/stylegan2-ada-pytorch --out=gpu_check.json
    python bench/gpu_check.py --device=cpu --quick              # CPU smoke run in seconds (what CI runs)
    python bench/gpu_check.py --device=cpu --quick --e2e        # ... with the end-to-end runs too (about a minute)

It prints a table per section and writes everything it measured to --out (default: gpu_check.json), with the
device name, torch / CUDA / cuDNN versions, the commits and the date. Nothing in it is a stored result.

1. Custom ops. Build status of the bias_act and upfirdn2d plugins ('built', or 'fallback' with the warning that
   torch_utils/custom_ops.LazyPlugin gives when a build fails), and that fallback path itself, driven by a
   simulated build failure: one warning naming the op, no retry, results equal to impl='ref'. Parity of
   impl='cuda' against impl='ref' (same dtype, same inputs) for the value, the input gradients and the
   double backward (gradient of <dx, q> with respect to x, b and dy), in float32 and float16, over a grid of
   shapes, biases, activations, alphas, gains, clamps, memory layouts (bias_act) and filters, up/down factors,
   paddings, flips and gains (upfirdn2d). conv2d_gradfix and grid_sample_gradfix with this torch: value and
   gradients (second order where they provide it) equal to torch's own conv2d / conv_transpose2d /
   grid_sample, and no_weight_gradients() gives no weight gradient, restores its flag, and leaves the R1-style
   penalty's weight gradient exact. With --device=cpu there are no kernels: the reference path in float32 is
   compared with itself in float64 on the same (float32-rounded) inputs instead.
   Cases: upfirdn2d's filters and paddings and conv2d_gradfix's case generator are imported from
   tests/torch_utils/ops/ (a local copy is used if the tests cannot be imported); bias_act's grid is the one of
   tests/torch_utils/ops/test_bias_act.py (written out here: the test builds it inside a function), with the
   clamp 0.5 instead of 0.4, as 0.4 is not a float16 value: a float16 output clamped to 0.39990 lies below the
   clamp, so neither path masks its gradient there, where float64 does (the networks' 256 is exact).

   Tolerances. Upstream ships no tests of its ops, so these are the tests' here: float32 1e-5 (the float32 ops
   tests and test_cuda_sources.py's emulated kernels against float64), float16 1e-2 (test_cuda_sources.py's
   float16 kernel check). The error of a tensor a against its reference b is max|a - b| / max(1, max|b|): an
   absolute error for tensors of magnitude <= 1, relative to the tensor's peak above that (sums over long or
   unnormalised filters reach tens). Inputs are nudged off the clamp boundary (|y| within 1% of the clamp),
   where float16 rounding in the reference path's several steps could put one element on the other side of the
   clamp and switch its gradient off. The linear activation's gradients at a clamp are not compared on CUDA:
   the kernel, like upstream's, does not mask them (nothing is saved to mask with; see test_bias_act.py).
   TF32 is off (as in training by default), so that the float32 reference convolutions are float32.

2. Training step: Gmain + Dmain + Dreg (R1 every step), each with an Adam step, at --cfg=cifar (batch 64,
   512 channels, fp16 at the 4 highest resolutions with conv_clamp=256, as upstream's config; and fp32, no
   clamp, as upstream's --fp32) with SOM K=1 and K=4 heads (D_kwargs.num_heads) through the training loss
   (bench/som_overhead.Setup). Images per second = batch / median step time over the timed steps after
   warm-up (torch.cuda.synchronize around each), peak memory = torch.cuda.max_memory_allocated over those
   steps, one subprocess per setup, timed steps taken in turn. With --upstream, bench/step_time.train_step
   runs in upstream's code and ours (K=1) on the same weights and inputs; one step without updates first
   compares losses and all gradients (step_time.compare). "Equal outputs": in fp32, losses within 1e-4 and
   each phase's whole-gradient L2 error within 1e-3; in fp16, ours-vs-upstream within twice upstream's own
   fp16-vs-fp32 difference (or the fp32 limits, if larger). cuDNN autotuning on, TF32 off, as the training
   loop. --quick: --cfg=tiny's networks at batch 4 (fp32 only on a CPU).

3. End to end: train.py --cfg=tiny --data=discs8 --kimg=2 --gpus=1 (fp16 layers, the plugins, ADA's
   grid_sample_gradfix), its last snapshot drawn by generate.py and scored by calc_metrics.py with
   modes_discs8 (no downloaded detector), and the same training under torchrun --nproc-per-node=1.
   --quick skips the real runs (about a minute on a small CPU) and only checks both command lines with
   train.py --dry-run, saying so; --e2e runs them anyway (1 kimg).

Targets (PASS / FAIL lines, 'n/a' where not measurable, e.g. on a CPU): the CUDA kernels agree with the
reference to the tolerances above; the fp16 step runs at >= 1.2x upstream's images per second on the same
GPU at equal outputs; K=4 heads run at >= 95% of K=1's images per second. Exit status: 0 when every check and
every measurable target passes, 1 otherwise, 2 for bad flags.
"""

import argparse
import datetime
import glob
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

# Idle OpenMP threads sleep instead of spinning (as train.py sets it, before torch loads its OpenMP runtime): the
# CPU checks run many tiny ops, which spinning threads stall badly on a busy machine. An explicit setting wins.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # pylint: disable=wrong-import-position

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, 'bench')
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)
import step_time  # pylint: disable=wrong-import-position  # train_step, cifar_kwargs, compare, Worker protocol

#----------------------------------------------------------------------------
# Settings (what the docstring states).

TOL = {'float32': 1e-5, 'float16': 1e-2}       # ops parity, error as in scaled_err()
CLAMP_MARGIN = 0.01                            # inputs nudged off |y| = clamp by this fraction of the clamp
EQUAL_FP32 = dict(loss=1e-4, grad_l2=1e-3)     # ours vs upstream, fp32 step
EQUAL_FP16_FACTOR = 2.0                        # fp16: at most this times upstream's own fp16-vs-fp32 difference
SPEEDUP_TARGET = 1.2                           # ours fp16 step vs upstream's
HEADS_TARGET = 0.95                            # K=4 images/s at least this share of K=1's

class FlagError(Exception):
    """A bad command-line value: printed as one 'Error:' line, exit status 2."""

#----------------------------------------------------------------------------
# Small helpers.

def scaled_err(a, b):
    """max|a - b| / max(1, max|b|); inf for a shape mismatch or a non-finite value."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return 0.0
    d = (a - b).abs().max().item()
    peak = b.abs().max().item()
    if not (math.isfinite(d) and math.isfinite(peak)):
        return math.inf
    return d / max(1.0, peak)

def _sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)

def _rand(shape, gen, scale=1.0):
    return torch.randn(shape, generator=gen, dtype=torch.float64) * scale

def _fmt(v, spec='.1e'):
    return 'n/a' if v is None else ('inf' if v == math.inf else format(v, spec))

def _first_line(text, limit=300):
    lines = [l.strip() for l in str(text).strip().splitlines() if l.strip()]
    line = lines[0] if lines else ''
    return line if len(line) <= limit else line[:limit] + '...'

def _jsonable(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj

def _git_commit(path):
    try:
        res = subprocess.run(['git', '-C', path, 'rev-parse', 'HEAD'], capture_output=True, text=True, timeout=10)
        return (res.stdout.strip() or None) if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None

def _tool_line(cmd):
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        lines = res.stdout.strip().splitlines()
        return lines[-1].strip() if res.returncode == 0 and lines else None
    except (OSError, subprocess.SubprocessError):
        return None

def _cpu_name():
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

def header(title):
    print()
    print(f'== {title} ' + '=' * max(0, 100 - len(title)))

#----------------------------------------------------------------------------
# Command line.

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise FlagError(f'{message} (see --help)')

def parse_args(argv):
    parser = _Parser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--upstream', metavar='DIR', help='stylegan2-ada-pytorch checkout to compare the training step with')
    parser.add_argument('--out', metavar='FILE.json', default='gpu_check.json', help='where to write the results (default: gpu_check.json)')
    parser.add_argument('--device', choices=['cuda', 'cpu'], default='cuda', help='cuda (default) or cpu (with --quick)')
    parser.add_argument('--quick', action='store_true', help='tiny shapes and networks; skips the real end-to-end runs')
    parser.add_argument('--e2e', action='store_true', help='with --quick: run the end-to-end part anyway (1 kimg)')
    parser.add_argument('--worker', choices=['ours', 'upstream'], help=argparse.SUPPRESS)
    parser.add_argument('--spec', help=argparse.SUPPRESS)
    return parser.parse_args(argv)

def check_flags(args):
    if args.device == 'cuda' and not torch.cuda.is_available():
        built = f'torch {torch.__version__}, built {"with CUDA " + torch.version.cuda if torch.version.cuda else "without CUDA"}'
        raise FlagError(f'--device=cuda: CUDA is not available here ({built}); for the CPU checks run '
            f'python bench/gpu_check.py --device=cpu --quick')
    if args.device == 'cpu' and not args.quick:
        raise FlagError('--device=cpu needs --quick: the full checks (cifar config, 2-kimg runs) are sized for a GPU')
    if args.e2e and not args.quick:
        raise FlagError('--e2e only applies with --quick (the full check always runs the end-to-end part)')
    if args.upstream is not None:
        for rel in [os.path.join('training', 'networks.py'), os.path.join('torch_utils', 'ops', 'bias_act.py')]:
            if not os.path.isfile(os.path.join(args.upstream, rel)):
                raise FlagError(f'--upstream={args.upstream}: no {rel} there; give a stylegan2-ada-pytorch checkout')
        args.upstream = os.path.abspath(args.upstream)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if os.path.isdir(args.out) or not os.path.isdir(out_dir):
        raise FlagError(f'--out={args.out}: {"is a folder" if os.path.isdir(args.out) else "its folder does not exist"}')

def collect_meta(args, device):
    meta = dict(date=datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec='seconds'),
        host=platform.node(), platform=platform.platform(), python=platform.python_version(), torch=torch.__version__,
        cuda=torch.version.cuda, cudnn=(torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None),
        device=device.type, quick=args.quick, argv=sys.argv[1:], repo_commit=_git_commit(REPO),
        upstream=args.upstream, upstream_commit=(_git_commit(args.upstream) if args.upstream else None),
        nvcc=_tool_line(['nvcc', '--version']) if shutil.which('nvcc') else None)
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        meta.update(device_name=torch.cuda.get_device_name(device), capability=f'{props.major}.{props.minor}',
            gpu_memory_bytes=props.total_memory, driver=_tool_line(['nvidia-smi', '--query-gpu=driver_version',
            '--format=csv,noheader']) if shutil.which('nvidia-smi') else None)
    else:
        meta.update(device_name=_cpu_name(), cpu_threads=torch.get_num_threads())
    return meta

#----------------------------------------------------------------------------
# 1. Custom ops: plugin builds, the fallback path, parity grids.

def _op_modules():
    from torch_utils.ops import bias_act, upfirdn2d # pylint: disable=import-outside-toplevel
    return {'bias_act': bias_act, 'upfirdn2d': upfirdn2d}

def plugin_status(device):
    """Build (or load from the cache) each plugin as the ops do on first use; the warning text on failure. In the
    reverse order of the training workers (started before), so that a first build of the two runs in parallel."""
    from torch_utils import custom_ops # pylint: disable=import-outside-toplevel
    status = {}
    for name, mod in reversed(list(_op_modules().items())):
        if device.type != 'cuda':
            status[name] = dict(status='not built', note='CPU tensors always take the reference path; no plugin is built')
            continue
        old_verbosity, custom_ops.verbosity = custom_ops.verbosity, 'none'
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                t0 = time.perf_counter()
                ok = mod._init() # pylint: disable=protected-access
                seconds = time.perf_counter() - t0
        finally:
            custom_ops.verbosity = old_verbosity
        msgs = [str(w.message) for w in caught if name in str(w.message)]
        if ok:
            status[name] = dict(status='built', seconds=seconds)
        else:
            status[name] = dict(status='fallback', seconds=seconds, warning=msgs[0] if msgs else '(no warning)')
    return {name: status[name] for name in _op_modules()}

def _fallback_probe(name, device):
    gen = torch.Generator().manual_seed(1)
    if name == 'bias_act':
        from torch_utils.ops import bias_act # pylint: disable=import-outside-toplevel
        x, b = _rand([2, 4, 3, 3], gen).float().to(device), _rand([4], gen).float().to(device)
        return lambda impl: bias_act.bias_act(x, b, act='lrelu', clamp=0.5, impl=impl)
    from torch_utils.ops import upfirdn2d # pylint: disable=import-outside-toplevel
    x, f = _rand([2, 3, 6, 6], gen).float().to(device), upfirdn2d.setup_filter([1, 3, 3, 1], device=device)
    return lambda impl: upfirdn2d.upfirdn2d(x, f, up=2, padding=[2, 1], impl=impl)

def fallback_check(device):
    """Each op with a plugin whose build fails (simulated): one warning naming the op, one build attempt, and
    impl='cuda' giving exactly impl='ref''s result. The real plugin state is restored afterwards."""
    from torch_utils import custom_ops # pylint: disable=import-outside-toplevel
    results = {}
    for name, mod in _op_modules().items():
        attempts = []
        def failing_build():
            attempts.append(1)
            raise RuntimeError('simulated build failure (bench/gpu_check.py)')
        probe = _fallback_probe(name, device)
        saved = (mod._lazy_plugin, mod._plugin) # pylint: disable=protected-access
        mod._lazy_plugin = custom_ops.LazyPlugin(name, failing_build) # pylint: disable=protected-access
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                inited = [mod._init(), mod._init()] # pylint: disable=protected-access
                y_cuda = probe('cuda') # CUDA tensors: takes the fallback; CPU tensors: the reference path anyway
                y_cuda2 = probe('cuda')
            y_ref = probe('ref')
        finally:
            mod._lazy_plugin, mod._plugin = saved # pylint: disable=protected-access
        msgs = [str(w.message) for w in caught]
        same = bool(torch.equal(y_cuda, y_ref) and torch.equal(y_cuda2, y_ref))
        ok = (inited == [False, False] and len(attempts) == 1 and len(msgs) == 1 and name in msgs[0]
            and 'simulated build failure' in msgs[0] and same)
        results[name] = dict(status='fallback', warning=msgs[0] if msgs else None, warnings=len(msgs),
            build_attempts=len(attempts), matches_ref=same, passed=ok)
    return results

# Local copies of the test grids, used only when tests/ cannot be imported (e.g. pytest not installed).
def _local_upfirdn2d_cases(upfirdn2d):
    filters = {
        'none': lambda: None,
        'binomial4': lambda: upfirdn2d.setup_filter([1, 3, 3, 1]),
        'asym2d': lambda: upfirdn2d.setup_filter([[1., 2.], [-3., 4.], [5., 0.5]], normalize=False),
        'sep8': lambda: upfirdn2d.setup_filter([1., -2., 3., 7., 2., 5., -1., 4.]),
        'sep3': lambda: upfirdn2d.setup_filter([1., 2., 5.], separable=True),
    }
    return filters, [0, [2, 1], [1, -2, 3, 0]]

def _local_conv_cases():
    import itertools # pylint: disable=import-outside-toplevel
    for transpose, stride, padding, dilation, groups, bias in itertools.product(
            [False, True], [1, 2, (2, 1)], [0, 1, (2, 1)], [1, 2], [1, 2], [False, True]):
        for output_padding in ([0, 1 if stride == 2 else (1, 0)] if transpose and stride != 1 else [0]):
            yield transpose, stride, padding, output_padding, dilation, groups, bias

def case_sources():
    """(upfirdn2d filters, paddings, conv2d case generator, where they came from)."""
    from torch_utils.ops import upfirdn2d # pylint: disable=import-outside-toplevel
    try:
        from tests.torch_utils.ops import test_upfirdn2d, test_conv2d_gradfix # pylint: disable=import-outside-toplevel
        return test_upfirdn2d.FILTERS, test_upfirdn2d.PADDINGS, test_conv2d_gradfix._cases, 'tests/torch_utils/ops' # pylint: disable=protected-access
    except Exception as err: # pylint: disable=broad-except
        filters, paddings = _local_upfirdn2d_cases(upfirdn2d)
        return filters, paddings, _local_conv_cases, f'local copy (tests not importable: {_first_line(err, 120)})'

# up/down pairs of tests/torch_utils/ops/test_upfirdn2d.py's parametrisation.
UPDOWN = [(1, 1), (2, 1), (1, 2), (3, 2), ([1, 3], [2, 1])]

def _derivatives(fn, ins, dy, q, names):
    """Value, gradients of <y, dy> w.r.t. the inputs, and gradients of <dx_0, q> w.r.t. the inputs and dy; and the
    name of the autograd node that made y (which implementation ran)."""
    ins = [t.detach().clone().requires_grad_(True) for t in ins]
    dy = dy.detach().clone().requires_grad_(True)
    y = fn(*ins)
    out = {'y': y}
    g = torch.autograd.grad(y, ins, dy, create_graph=True)
    out.update({f'd{n}': t for n, t in zip(names, g)})
    targets = ins + [dy]
    gg = torch.autograd.grad((g[0] * q).sum(), targets, allow_unused=True)
    for n, t, target in zip(names + ['y'], gg, targets):
        out[f'dd{n}'] = torch.zeros_like(target) if t is None else t
    return {k: v.detach() for k, v in out.items()}, type(y.grad_fn).__name__

def _compare(a, b, keys=None):
    keys = sorted(b) if keys is None else keys
    return {k: scaled_err(a[k], b[k]) for k in keys}

def _pairs(device, dtypes):
    """(label, (impl, dtype) under test, (impl, dtype) of the reference) for this device."""
    if device.type == 'cuda':
        return [(f'cuda vs ref', ('cuda', dt), ('ref', dt)) for dt in dtypes]
    return [('ref float32 vs float64', ('ref', torch.float32), ('ref', torch.float64))]

def _to(t, dtype, device, layout='contiguous'):
    if t is None:
        return None
    t = t.to(device=device, dtype=dtype)
    return t.to(memory_format=torch.channels_last) if layout == 'channels_last' and t.ndim == 4 else t

def bias_act_grid(full):
    from torch_utils.ops import bias_act # pylint: disable=import-outside-toplevel
    shapes = [([2, 8, 5, 4], 1), ([6, 5], 0)] + ([([4, 64, 16, 16], 1)] if full else [])
    for act in sorted(bias_act.activation_funcs):
        for shape, dim in shapes:
            for bias in [True, False]:
                for alpha in ([None, 0.3] if act == 'lrelu' else [None]):
                    for gain in ([None, 0.6] if full else [None]):
                        for clamp in [None, 0.5]: # exact in float16, as the networks' 256
                            for layout in (['contiguous', 'channels_last'] if full and shape[1] >= 64 else ['contiguous']):
                                yield dict(act=act, shape=shape, dim=dim, bias=bias, alpha=alpha, gain=gain, clamp=clamp, layout=layout)

def _bias_act_inputs(case, dtype, seed):
    """float64 inputs holding dtype-rounded values, with x nudged off the clamp boundary."""
    from torch_utils.ops import bias_act # pylint: disable=import-outside-toplevel
    gen = torch.Generator().manual_seed(seed)
    shape, dim = case['shape'], case['dim']
    rnd = lambda t: None if t is None else t.to(dtype).double()
    x = rnd(_rand(shape, gen, 2))
    b = rnd(_rand([shape[dim]], gen)) if case['bias'] else None
    dy, q = rnd(_rand(shape, gen)), rnd(_rand(shape, gen))
    clamp = case['clamp']
    if clamp is not None:
        for _ in range(20):
            y = bias_act._bias_act_ref(x, b, dim=dim, act=case['act'], alpha=case['alpha'], gain=case['gain']) # pylint: disable=protected-access
            bad = (y.abs() - clamp).abs() < CLAMP_MARGIN * clamp
            if not bad.any():
                break
            x = rnd(torch.where(bad, x + 5 * CLAMP_MARGIN * clamp, x))
    return x, b, dy, q

def _bias_act_entry(case, label, test, ref, device, seed):
    from torch_utils.ops import bias_act # pylint: disable=import-outside-toplevel
    dtype = test[1]
    x, b, dy, q = _bias_act_inputs(case, dtype, seed)
    layout = case['layout']
    def run(impl, dt):
        fn = lambda xx, bb=None: bias_act.bias_act(xx, bb, dim=case['dim'], act=case['act'], alpha=case['alpha'],
            gain=case['gain'], clamp=case['clamp'], impl=impl)
        ins = [_to(x, dt, device, layout)] + ([_to(b, dt, device)] if b is not None else [])
        return _derivatives(fn, ins, _to(dy, dt, device, layout), _to(q, dt, device, layout), ['x', 'b'][:len(ins)])
    (a, node), (r, _) = run(*test), run(*ref)
    keys = None
    note = None
    if test[0] == 'cuda' and case['act'] == 'linear' and case['clamp'] is not None:
        keys = ['y']
        note = 'gradients not compared: the CUDA path, as upstream\'s, does not mask linear gradients at the clamp'
    entry = dict(op='bias_act', compare=label, dtype=str(dtype).replace('torch.', ''), case=_case_str(case),
        errors=_compare(a, r, keys))
    if device.type == 'cuda':
        truth, _ = run('ref', torch.float64)
        entry['vs_float64'] = {'test': max(_compare(a, truth, keys).values()), 'ref': max(_compare(r, truth, keys).values())}
        entry['autograd_node'] = node # _BiasActCudaBackward when the kernel ran (the identity returns x itself)
    if note:
        entry['note'] = note
    return entry

def upfirdn2d_grid(full, filters, paddings):
    shapes = [[2, 3, 7, 6]]
    for fname in sorted(filters):
        for up, down in UPDOWN:
            for padding in paddings:
                for flip in [False, True]:
                    for gain in ([1, 2.5] if full else [2.5]):
                        yield dict(filter=fname, up=up, down=down, padding=padding, flip=flip, gain=gain, shape=shapes[0], layout='contiguous')
    if full: # the networks' sizes: 32 channels, both layouts
        for fname in ['binomial4', 'sep8']:
            for up, down in UPDOWN:
                for padding in paddings[:2]:
                    for layout in ['contiguous', 'channels_last']:
                        yield dict(filter=fname, up=up, down=down, padding=padding, flip=False, gain=1, shape=[4, 32, 16, 16], layout=layout)

def _upfirdn2d_entry(case, filters, label, test, ref, device, seed):
    from torch_utils.ops import upfirdn2d # pylint: disable=import-outside-toplevel
    f = filters[case['filter']]()
    f = None if f is None else f.to(device)
    op = lambda impl: (lambda xx: upfirdn2d.upfirdn2d(xx, f, up=case['up'], down=case['down'], padding=case['padding'],
        flip_filter=case['flip'], gain=case['gain'], impl=impl))
    gen = torch.Generator().manual_seed(seed)
    x = _rand(case['shape'], gen).to(test[1]).double()
    try:
        with torch.no_grad():
            out_shape = op('ref')(x.to(device)).shape
    except (ValueError, RuntimeError):
        return None # no output for this size (the test skips these too)
    if min(out_shape) < 1:
        return None
    dy, q = _rand(list(out_shape), gen).to(test[1]).double(), _rand(case['shape'], gen).to(test[1]).double()
    layout = case['layout']
    def run(impl, dt):
        return _derivatives(op(impl), [_to(x, dt, device, layout)], _to(dy, dt, device, layout), _to(q, dt, device, layout), ['x'])[0]
    a, r = run(*test), run(*ref)
    entry = dict(op='upfirdn2d', compare=label, dtype=str(test[1]).replace('torch.', ''), case=_case_str(case),
        errors=_compare(a, r))
    if device.type == 'cuda':
        truth = run('ref', torch.float64)
        entry['vs_float64'] = {'test': max(_compare(a, truth).values()), 'ref': max(_compare(r, truth).values())}
    return entry

def _case_str(case):
    return ' '.join(f'{k}={v}'.replace(' ', '') for k, v in case.items())

def _finish(entry):
    errs = list(entry['errors'].values())
    entry['max_err'] = max(errs) if errs else 0.0
    entry['tol'] = TOL[entry['dtype']]
    entry['passed'] = bool(entry['max_err'] <= entry['tol'] and entry.get('ok', True))
    return entry

def conv2d_gradfix_entries(device, dtypes, cases, quick):
    import torch.nn.functional as F # pylint: disable=import-outside-toplevel
    from torch_utils.ops import conv2d_gradfix # pylint: disable=import-outside-toplevel
    entries = []
    saved = (conv2d_gradfix.enabled, conv2d_gradfix.weight_gradients_disabled)
    conv2d_gradfix.enabled, conv2d_gradfix.weight_gradients_disabled = True, False
    try:
        all_cases = list(cases())
        for dtype in dtypes:
            for seed, (transpose, stride, padding, output_padding, dilation, groups, bias) in enumerate(all_cases):
                if quick and seed % 3:
                    continue
                gen = torch.Generator().manual_seed(seed)
                x = _rand([2, 4, 7, 6], gen)
                w = _rand([4, 6 // groups, 3, 2] if transpose else [6, 4 // groups, 3, 2], gen)
                b = _rand([6], gen) if bias else None
                def conv(ours):
                    def fn(xx, ww, bb=None):
                        if transpose:
                            op = conv2d_gradfix.conv_transpose2d if ours else F.conv_transpose2d
                            return op(xx, ww, bb, stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
                        op = conv2d_gradfix.conv2d if ours else F.conv2d
                        return op(xx, ww, bb, stride=stride, padding=padding, dilation=dilation, groups=groups)
                    return fn
                ins = [_to(t, dtype, device) for t in [x, w] + ([b] if bias else [])]
                with torch.no_grad():
                    out_shape = conv(False)(*ins).shape
                dy, q = _to(_rand(list(out_shape), gen), dtype, device), _to(_rand(x.shape, gen), dtype, device)
                names = ['x', 'w', 'b'][:len(ins)]
                (a, node), (r, _) = _derivatives(conv(True), ins, dy, q, names), _derivatives(conv(False), ins, dy, q, names)
                ran = 'Conv2d' in node # the custom op ran, not torch's own
                case = dict(transpose=transpose, stride=stride, padding=padding, output_padding=output_padding,
                    dilation=dilation, groups=groups, bias=bias)
                entries.append(_finish(dict(op='conv2d_gradfix', compare='gradfix vs torch', dtype=str(dtype).replace('torch.', ''),
                    case=_case_str(case), errors=_compare(a, r), custom_op_ran=ran, ok=ran)))
        entries.append(_finish(no_weight_gradients_entry(device)))
    finally:
        conv2d_gradfix.enabled, conv2d_gradfix.weight_gradients_disabled = saved
    return entries

def no_weight_gradients_entry(device):
    """Inside no_weight_gradients(): no weight gradient, and the flag restored after; the R1-style penalty on
    the input gradient still has torch's exact weight gradient."""
    import torch.nn.functional as F # pylint: disable=import-outside-toplevel
    from torch_utils.ops import conv2d_gradfix # pylint: disable=import-outside-toplevel
    gen = torch.Generator().manual_seed(0)
    x = _rand([2, 3, 5, 5], gen).float().to(device).requires_grad_(True)
    w = _rand([4, 3, 3, 3], gen).float().to(device).requires_grad_(True)
    with conv2d_gradfix.no_weight_gradients():
        inside = conv2d_gradfix.weight_gradients_disabled
        y = conv2d_gradfix.conv2d(x, w, padding=1)
        gx, gw = torch.autograd.grad(y.square().sum(), [x, w], create_graph=True, allow_unused=True)
    restored = not conv2d_gradfix.weight_gradients_disabled
    gx_ref, = torch.autograd.grad(F.conv2d(x, w, padding=1).square().sum(), x, create_graph=True)
    pw, = torch.autograd.grad(gx.square().sum(), w)
    pw_ref, = torch.autograd.grad(gx_ref.square().sum(), w)
    ok = bool(inside and gw is None and restored)
    return dict(op='no_weight_gradients', compare='gradfix vs torch', dtype='float32', case='R1-style penalty through conv2d',
        errors={'dx': scaled_err(gx, gx_ref), 'dpenalty_w': scaled_err(pw, pw_ref)}, weight_grad_is_none=gw is None,
        flag_set_inside=inside, flag_restored=restored, ok=ok)

def grid_sample_entries(device, full):
    import torch.nn.functional as F # pylint: disable=import-outside-toplevel
    from torch_utils.ops import grid_sample_gradfix # pylint: disable=import-outside-toplevel
    entries = []
    saved = grid_sample_gradfix.enabled
    grid_sample_gradfix.enabled = True
    try:
        shapes = [([2, 3, 5, 6], [2, 4, 7, 2])] + ([([4, 3, 32, 32], [4, 32, 32, 2])] if full else [])
        for image_shape, grid_shape in shapes:
            for seed in range(3):
                gen = torch.Generator().manual_seed(seed)
                image = _rand(image_shape, gen).float().to(device)
                grid = (_rand(grid_shape, gen) * 0.7).float().to(device) # some samples fall outside
                dy = _rand([image_shape[0], image_shape[1]] + grid_shape[1:3], gen).float().to(device)
                q = _rand(image_shape, gen).float().to(device)
                res = {}
                for name, fn in [('ours', grid_sample_gradfix.grid_sample),
                        ('torch', lambda i, g: F.grid_sample(i, g, mode='bilinear', padding_mode='zeros', align_corners=False))]:
                    i, g, d = image.clone().requires_grad_(True), grid.clone().requires_grad_(True), dy.clone().requires_grad_(True)
                    y = fn(i, g)
                    gi, gg = torch.autograd.grad(y, [i, g], d)
                    res[name] = dict(y=y.detach(), dimage=gi.detach(), dgrid=gg.detach())
                # Second order (R1 through the augmentation; the grid does not require grad there): the image
                # gradient is linear in dy, so its derivative along q is the sampling of q.
                i, d = image.clone().requires_grad_(True), dy.clone().requires_grad_(True)
                gi, = torch.autograd.grad(grid_sample_gradfix.grid_sample(i, grid), i, d, create_graph=True)
                res['ours']['ddy'], = torch.autograd.grad(gi, d, q)
                res['torch']['ddy'] = F.grid_sample(q, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
                entries.append(_finish(dict(op='grid_sample_gradfix', compare='gradfix vs torch', dtype='float32',
                    case=f'image={image_shape} grid={grid_shape} seed={seed}', errors=_compare(res['ours'], res['torch']))))
    finally:
        grid_sample_gradfix.enabled = saved
    return entries

def summarise_parity(entries):
    groups = {}
    for e in entries:
        groups.setdefault((e['op'], e['dtype'], e['compare']), []).append(e)
    rows = []
    for (op, dtype, label), es in groups.items():
        worst = max(es, key=lambda e: e['max_err'])
        rows.append(dict(op=op, dtype=dtype, compare=label, cases=len(es), failed=sum(not e['passed'] for e in es),
            max_err=worst['max_err'], tol=TOL[dtype], worst_case=worst['case'], passed=all(e['passed'] for e in es)))
    return rows

def section_ops(device, quick):
    """Plugins, fallback and parity. On a CPU with one thread: the tensors are tiny, and intra-op threads only add
    synchronisation (the ops tests run single-threaded for the same reason)."""
    threads = torch.get_num_threads()
    if device.type == 'cpu':
        torch.set_num_threads(1)
    try:
        return _section_ops(device, quick)
    finally:
        torch.set_num_threads(threads)

def _section_ops(device, quick):
    full = not quick
    dtypes = [torch.float32, torch.float16] if device.type == 'cuda' else [torch.float32]
    plugins = plugin_status(device)
    fallback = fallback_check(device)
    filters, paddings, conv_cases, source = case_sources()
    entries, skipped = [], {}
    for label, test, ref in _pairs(device, dtypes):
        for op in ['bias_act', 'upfirdn2d']:
            if device.type == 'cuda' and plugins[op]['status'] != 'built':
                skipped[op] = 'plugin not built (fallback): nothing to compare'
                continue
            seed = 0
            grid = bias_act_grid(full) if op == 'bias_act' else upfirdn2d_grid(full, filters, paddings)
            for case in grid:
                seed += 1
                if op == 'bias_act':
                    e = _bias_act_entry(case, label, test, ref, device, seed)
                else:
                    e = _upfirdn2d_entry(case, filters, label, test, ref, device, seed)
                if e is not None:
                    entries.append(_finish(e))
    entries += conv2d_gradfix_entries(device, dtypes, conv_cases, quick)
    entries += grid_sample_entries(device, full)
    return dict(plugins=plugins, fallback=fallback, tolerances=TOL, error='max|a-b| / max(1, max|b|)',
        cases_source=source, parity=entries, summary=summarise_parity(entries), skipped=skipped)

def print_ops(ops):
    print('plugins:')
    for name, s in ops['plugins'].items():
        extra = f'{s["seconds"]:.1f} s' if 'seconds' in s else s.get('note', '')
        print(f'  {name:<10s} {s["status"]:<9s} {extra}' + (f'  warning: {_first_line(s["warning"], 200)}' if s.get('warning') else ''))
    print('fallback on a failed build (simulated):')
    for name, s in ops['fallback'].items():
        print(f'  {name:<10s} {"PASS" if s["passed"] else "FAIL"}  {s["warnings"]} warning, {s["build_attempts"]} build attempt, '
            f'result {"==" if s["matches_ref"] else "!="} impl=ref; "{_first_line(s["warning"] or "", 110)}"')
    print(f'parity (error = {ops["error"]}; tolerances float32 {TOL["float32"]:g}, float16 {TOL["float16"]:g}; cases: {ops["cases_source"]})')
    print(f'  {"op":<20s} {"dtype":<8s} {"compared":<24s} {"cases":>5s} {"failed":>6s} {"max err":>8s} {"tol":>6s}  result  worst case')
    for r in ops['summary']:
        print(f'  {r["op"]:<20s} {r["dtype"]:<8s} {r["compare"]:<24s} {r["cases"]:>5d} {r["failed"]:>6d} {_fmt(r["max_err"]):>8s} '
            f'{r["tol"]:>6g}  {"PASS" if r["passed"] else "FAIL":<6s}  {r["worst_case"][:70]}')
    for op, why in ops['skipped'].items():
        print(f'  {op:<20s} skipped: {why}')

#----------------------------------------------------------------------------
# 2. Training step: one subprocess per setup (ours or upstream's code), driven through step_time's protocol.

def net_kwargs(cfg, res, batch, fp16):
    """G and D kwargs of --cfg (cifar: step_time.cifar_kwargs; tiny: its sizes from train.CFG_SPECS). fp16: the
    4 highest resolutions in fp16 with conv_clamp=256; else fp32 without clamp (upstream's --fp32)."""
    G_kwargs, D_kwargs = step_time.cifar_kwargs(res, 4 if fp16 else 0)
    if cfg != 'cifar':
        import train # pylint: disable=import-outside-toplevel
        spec = train.CFG_SPECS[cfg]
        G_kwargs.update(z_dim=spec.get('z_dim', 512), w_dim=spec.get('w_dim', 512))
        G_kwargs['mapping_kwargs'] = dict(num_layers=spec['map'])
        G_kwargs['synthesis_kwargs'].update(channel_base=spec['cbase'], channel_max=spec['cmax'])
        D_kwargs.update(channel_base=spec['cbase'], channel_max=spec['cmax'])
        D_kwargs['epilogue_kwargs'] = dict(mbstd_group_size=spec['mbstd'])
    D_kwargs['epilogue_kwargs']['mbstd_group_size'] = min(D_kwargs['epilogue_kwargs']['mbstd_group_size'], batch)
    if not fp16:
        G_kwargs['synthesis_kwargs']['conv_clamp'] = D_kwargs['conv_clamp'] = None
    return G_kwargs, D_kwargs

def make_state(path, cfg, res, batch, seed):
    """Weights (G, D with 1 head, D with 4 heads on the same trunk) and inputs that every setup loads."""
    from stylegan_som.networks import stylegan2 # pylint: disable=import-outside-toplevel
    G_kwargs, D_kwargs = net_kwargs(cfg, res, batch, fp16=True) # the precision does not change the parameters
    torch.manual_seed(seed)
    G = stylegan2.Generator(**G_kwargs)
    torch.manual_seed(seed + 1)
    D1 = stylegan2.Discriminator(**D_kwargs)
    D4 = stylegan2.Discriminator(**D_kwargs, num_heads=4)
    d1 = D1.state_dict()
    with torch.no_grad():
        for name, tensor in D4.state_dict().items():
            if name in d1 and d1[name].shape == tensor.shape:
                tensor.copy_(d1[name])
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn([batch, G.z_dim], generator=gen)
    real = torch.rand([batch, 3, res, res], generator=gen) * 2 - 1
    torch.save(dict(G=G.state_dict(), D1=D1.state_dict(), D4=D4.state_dict(), z=z, real=real), path)

class Worker(step_time.Worker):
    """step_time's stdin/stdout protocol (its read/ask), started from a spec file, stderr kept in a log."""

    def __init__(self, label, impl, spec, tmp): # pylint: disable=super-init-not-called
        self.kind = self.label = label
        self.spec = spec
        slug = label.replace(' ', '_').replace('=', '')
        spec_path = os.path.join(tmp, f'{slug}.json')
        with open(spec_path, 'w', encoding='utf-8') as f:
            json.dump(spec, f)
        self.log_path = os.path.join(tmp, f'{slug}.log')
        env = dict(os.environ)
        if impl == 'upstream':
            env.pop('PYTHONPATH', None) # upstream's own dnnlib / torch_utils only
        self.ready = None
        self.error = None
        with open(self.log_path, 'w', encoding='utf-8') as log:
            self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), f'--worker={impl}', f'--spec={spec_path}'],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, cwd=tempfile.gettempdir(), env=env)

    def log_tail(self, chars=1500):
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as f:
                return f.read()[-chars:]
        except OSError:
            return ''

    def call(self, cmd):
        """ask(), but a dead worker sets .error (with its stderr) instead of ending this process."""
        if self.error:
            return None
        try:
            return self.read() if cmd is None else self.ask(cmd)
        except (SystemExit, BrokenPipeError, OSError) as err:
            self.error = f'{_first_line(err)}; stderr: {self.log_tail()}'
            return None

    def close(self):
        """step_time's 'quit', but a worker that does not stop within a minute is killed."""
        if self.proc.stdin.closed:
            return
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write('quit\n')
            self.proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

def training_setups(args, device):
    """[(label, impl, step, fp16, heads)]."""
    precisions = [True, False] if device.type == 'cuda' else [False]
    setups = [(f'ours som {"fp16" if p else "fp32"} K={k}', 'ours', 'som', p, k) for p in precisions for k in [1, 4]]
    if args.upstream:
        for p in precisions:
            for impl in ['ours', 'upstream']:
                setups.append((f'{impl} plain {"fp16" if p else "fp32"} K=1', impl, 'plain', p, 1))
    return setups

def start_training(args, device, tmp):
    """Write the shared state and start every setup's worker (they build nets and plugins while section 1 runs)."""
    cfg, batch = ('tiny', 4) if args.quick else ('cifar', 64)
    res, seed = 32, 0
    state = os.path.join(tmp, 'state.pt')
    make_state(state, cfg, res, batch, seed)
    workers = []
    for label, impl, step, fp16, heads in training_setups(args, device):
        G_kwargs, D_kwargs = net_kwargs(cfg, res, batch, fp16)
        if heads != 1:
            D_kwargs['num_heads'] = heads
        spec = dict(device=device.type, G_kwargs=G_kwargs, D_kwargs=D_kwargs, state=state, D_key=f'D{heads}', step=step,
            seed=seed, gamma=0.01, batch=batch, threads=(1 if device.type == 'cpu' else 4), upstream=args.upstream,
            fp16=fp16, heads=heads, impl=impl, label=label)
        workers.append(Worker(label, impl, spec, tmp))
    config = dict(cfg=cfg, batch=batch, res=res, seed=seed, r1_gamma=0.01, warmup=1 if args.quick else 3,
        steps=3 if args.quick else 10, G_kwargs_fp16=net_kwargs(cfg, res, batch, True)[0], D_kwargs_fp16=net_kwargs(cfg, res, batch, True)[1])
    return workers, config

def _equal_outputs(cmp, floor=None):
    """cmp = step_time.compare(test, reference); floor = the same for upstream fp16 vs fp32 (fp16 limits)."""
    loss_err, phases = cmp
    lim_loss, lim_l2 = EQUAL_FP32['loss'], {p: EQUAL_FP32['grad_l2'] for p in phases}
    if floor is not None:
        lim_loss = max(lim_loss, EQUAL_FP16_FACTOR * floor[0])
        lim_l2 = {p: max(lim_l2[p], EQUAL_FP16_FACTOR * floor[1][p][0]) for p in phases}
    ok = loss_err <= lim_loss and all(phases[p][0] <= lim_l2[p] for p in phases)
    return dict(loss_err=loss_err, grad_l2={p: v[0] for p, v in phases.items()},
        worst_tensor={p: dict(err=v[1], name=v[2]) for p, v in phases.items()}, limits=dict(loss=lim_loss, grad_l2=lim_l2), passed=bool(ok))

def upstream_comparison(workers, tmp):
    by = {w.label: w for w in workers}
    res = {}
    for w in workers:
        if w.spec['step'] == 'plain' and not w.error:
            path = os.path.join(tmp, w.label.replace(' ', '_').replace('=', '') + '.grads.pt')
            if w.call(f'check {path}') is not None:
                res[w.label] = torch.load(path)
    out = {}
    for prec in ['fp32', 'fp16']:
        o, u = res.get(f'ours plain {prec} K=1'), res.get(f'upstream plain {prec} K=1')
        if o is None or u is None:
            if f'ours plain {prec} K=1' in by:
                out[prec] = dict(error='a worker failed before the check')
            continue
        try: # step_time.compare() raises SystemExit when the two gradient sets differ
            floor = None
            if prec == 'fp16':
                u32 = res.get('upstream plain fp32 K=1')
                floor = step_time.compare(u, u32) if u32 is not None else None
                out['fp16_noise_floor'] = None if floor is None else dict(loss_err=floor[0], grad_l2={p: v[0] for p, v in floor[1].items()})
            out[prec] = _equal_outputs(step_time.compare(o, u), floor)
        except SystemExit as err:
            out[prec] = dict(error=str(err))
    return out

def time_workers(workers, warmup, steps):
    live = [w for w in workers if not w.error]
    times = {w.label: [] for w in workers}
    for i in range(warmup + steps):
        if i == warmup:
            for w in live:
                w.call('reset')
        for w in (live if i % 2 == 0 else live[::-1]): # alternate who goes first
            r = w.call('step')
            if r is not None and i >= warmup:
                times[w.label].append(r['seconds'])
    return times

def section_training(workers, config, device, tmp):
    t0 = time.perf_counter()
    for w in workers:
        w.ready = w.call(None)
    startup = time.perf_counter() - t0
    comparison = upstream_comparison(workers, tmp) if any(w.spec['step'] == 'plain' for w in workers) else None
    times = time_workers(workers, config['warmup'], config['steps'])
    runs = []
    for w in workers:
        stats = w.call('stats') or {}
        ts = times[w.label]
        med = statistics.median(ts) if ts and not w.error else None
        runs.append(dict(label=w.label, impl=w.spec['impl'], step=w.spec['step'], precision='fp16' if w.spec['fp16'] else 'fp32',
            heads=w.spec['heads'], img_per_s=(config['batch'] / med if med else None), median_s=med, times_s=ts,
            peak_mem_bytes=stats.get('peak_mem_bytes'), finite=stats.get('finite'),
            plugins=(w.ready or {}).get('plugins'), params=(w.ready or {}).get('params'), error=w.error))
        w.close()
    return dict(config=config, worker_startup_s=startup, runs=runs, upstream_comparison=comparison)

def _run(training, label):
    for r in training['runs']:
        if r['label'] == label:
            return r
    return None

def print_training(tr):
    c = tr['config']
    print(f'--cfg={c["cfg"]}, batch {c["batch"]}, {c["res"]}x{c["res"]}, R1 gamma {c["r1_gamma"]} every step; '
        f'{c["warmup"]} warm-up + {c["steps"]} timed steps per setup, in turn; workers ready after {tr["worker_startup_s"]:.0f} s')
    print(f'  {"setup":<26s} {"img/s":>9s} {"ms/step":>9s} {"peak MB":>9s}  plugins / error')
    for r in tr['runs']:
        mem = f'{r["peak_mem_bytes"] / 2**20:.0f}' if r['peak_mem_bytes'] else 'n/a'
        plugins = ', '.join(f'{k} {v}' for k, v in (r['plugins'] or {}).items()) or '-'
        info = f'ERROR {_first_line(r["error"], 150)}' if r['error'] else plugins + ('' if r['finite'] in (None, True) else '; NON-FINITE weights')
        print(f'  {r["label"]:<26s} {_fmt(r["img_per_s"], ".1f"):>9s} {_fmt(r["median_s"] and r["median_s"] * 1e3, ".1f"):>9s} {mem:>9s}  {info}')
    cmp = tr['upstream_comparison']
    if cmp:
        print('ours vs upstream, one step without updates (losses: max relative error; gradients: L2 error of each phase\'s whole gradient):')
        for prec in ['fp32', 'fp16']:
            e = cmp.get(prec)
            if not e:
                continue
            if 'error' in e:
                print(f'  {prec}: {e["error"]}')
                continue
            grads = ', '.join(f'{p} {_fmt(v)} (<= {_fmt(e["limits"]["grad_l2"][p])})' for p, v in e['grad_l2'].items())
            print(f'  {prec}: {"equal" if e["passed"] else "NOT equal"}: losses {_fmt(e["loss_err"])} (<= {_fmt(e["limits"]["loss"])}); {grads}')

#----------------------------------------------------------------------------
# Worker process.

def _plugin_state(mod, name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ok = mod._init() # pylint: disable=protected-access
    if ok:
        return 'built'
    msgs = [str(w.message) for w in caught]
    return 'fallback: ' + _first_line(msgs[0] if msgs else f'{name} plugin not available', 200)

def worker_main(impl, spec_path):
    with open(spec_path, encoding='utf-8') as f:
        spec = json.load(f)
    torch.set_num_threads(spec['threads'])
    if impl == 'upstream':
        sys.path.insert(0, spec['upstream'])
        from training import networks as net # pylint: disable=import-error,import-outside-toplevel
    else:
        sys.path.insert(0, REPO)
        from stylegan_som.networks import stylegan2 as net # pylint: disable=import-outside-toplevel
    import torch_utils # pylint: disable=import-outside-toplevel
    from torch_utils.ops import conv2d_gradfix, bias_act, upfirdn2d # pylint: disable=import-outside-toplevel
    root = spec['upstream'] if impl == 'upstream' else REPO
    if not os.path.abspath(torch_utils.__file__).startswith(os.path.abspath(root) + os.sep):
        raise SystemExit(f'{impl} worker imported torch_utils from {torch_utils.__file__}, not from {root}')
    device = torch.device(spec['device'])
    plugins = {}
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True # as the training loop
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        plugins = {'bias_act': _plugin_state(bias_act, 'bias_act'), 'upfirdn2d': _plugin_state(upfirdn2d, 'upfirdn2d')}
    conv2d_gradfix.enabled = (device.type == 'cuda') # as the training loop (upstream's falls back to torch's on torch 2)

    G = net.Generator(**spec['G_kwargs']).train().requires_grad_(False)
    D = net.Discriminator(**spec['D_kwargs']).train().requires_grad_(False)
    state = torch.load(spec['state'])
    for module, key in [(G, 'G'), (D, spec['D_key'])]:
        dst = dict(module.named_parameters(), **dict(module.named_buffers()))
        if set(state[key]) != set(dst):
            raise SystemExit(f'{impl}: state_dict names differ: {sorted(set(state[key]) ^ set(dst))[:10]}')
        with torch.no_grad():
            for name, tensor in dst.items():
                tensor.copy_(state[key][name])
    G, D = G.to(device), D.to(device)
    z, real = state['z'].to(device), state['real'].to(device)
    c = torch.zeros([z.shape[0], 0], device=device)
    seed, gamma = spec['seed'], spec['gamma']
    if spec['step'] == 'som':
        import som_overhead # pylint: disable=import-outside-toplevel
        setup = som_overhead.Setup(spec['label'], G, D, device, gamma)
        def step():
            torch.manual_seed(seed)
            setup.step(real, z, c)
    else:
        opt_G = torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
        opt_D = torch.optim.Adam(D.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
        def step():
            step_time.train_step(G, D, opt_G, opt_D, z, c, real, gamma, conv2d_gradfix.no_weight_gradients, seed=seed)
    step_time._reply(dict(ready=True, plugins=plugins, params=dict(G=sum(p.numel() for p in G.parameters()), # pylint: disable=protected-access
        D=sum(p.numel() for p in D.parameters()))))

    with warnings.catch_warnings():
        warnings.simplefilter('ignore') # e.g. upstream's conv2d_gradfix, which does not know this torch
        for line in sys.stdin:
            cmd = line.split()
            if cmd[0] == 'check': # one step without updates: losses and gradients (on the CPU) to a file
                out = step_time.train_step(G, D, None, None, z, c, real, gamma, conv2d_gradfix.no_weight_gradients,
                    update=False, seed=seed)
                out['_grads'] = {k: v.float().cpu() for k, v in out['_grads'].items()}
                torch.save(out, cmd[1])
                step_time._reply(dict(losses={k: v for k, v in out.items() if k != '_grads'})) # pylint: disable=protected-access
            elif cmd[0] == 'step':
                _sync(device)
                t0 = time.perf_counter()
                step()
                _sync(device)
                step_time._reply(dict(seconds=time.perf_counter() - t0)) # pylint: disable=protected-access
            elif cmd[0] == 'reset':
                if device.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats(device)
                step_time._reply(dict(ok=True)) # pylint: disable=protected-access
            elif cmd[0] == 'stats':
                finite = all(bool(torch.isfinite(p).all()) for p in list(G.parameters()) + list(D.parameters()))
                peak = torch.cuda.max_memory_allocated(device) if device.type == 'cuda' else None
                step_time._reply(dict(peak_mem_bytes=peak, finite=finite)) # pylint: disable=protected-access
            elif cmd[0] == 'quit':
                break

#----------------------------------------------------------------------------
# 3. End to end: train.py, generate.py, calc_metrics.py, and train.py under torchrun.

def _env(device):
    env = dict(os.environ, PYTHONPATH=REPO + (os.pathsep + os.environ['PYTHONPATH'] if os.environ.get('PYTHONPATH') else ''))
    # Nothing may be downloaded (as in tests/test_calc_metrics.py): any attempt fails at once.
    env.update(HTTPS_PROXY='http://127.0.0.1:9', HTTP_PROXY='http://127.0.0.1:9', https_proxy='http://127.0.0.1:9',
        http_proxy='http://127.0.0.1:9')
    if device.type == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    return env

def _run_cmd(cmd, env, cwd, timeout):
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        rc, out = res.returncode, res.stdout + res.stderr
    except subprocess.TimeoutExpired as err:
        rc, out = 'timeout', f'{err}\n' + ((err.stdout or b'').decode(errors='replace') if isinstance(err.stdout, bytes) else (err.stdout or ''))
    return dict(cmd=' '.join(os.path.relpath(c, REPO) if c.startswith(REPO) else c for c in cmd), rc=rc,
        seconds=time.perf_counter() - t0), out

def _train_cmd(launcher, outdir, kimg, device, dry_run):
    args = [f'--outdir={outdir}', '--data=discs8', '--cfg=tiny', f'--kimg={kimg}', '--gpus=1', '--snap=1',
        '--metrics=none', '--seed=0'] + (['--workers=1'] if device.type == 'cpu' else []) + (['--dry-run'] if dry_run else [])
    train_py = os.path.join(REPO, 'train.py')
    if launcher == 'torchrun':
        return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node=1', train_py] + args
    return [sys.executable, train_py] + args

def _train_result(rec, out, outdir, kimg, device):
    runs = sorted(glob.glob(os.path.join(outdir, '0*')))
    pkls = sorted(glob.glob(os.path.join(runs[-1], 'network-snapshot-*.pkl'))) if runs else []
    rec['snapshot'] = pkls[-1] if pkls else None
    rec['snapshot_kimg'] = int(os.path.basename(pkls[-1])[17:23]) if pkls else None
    rec['on_gpus'] = 'Number of GPUs:' in out
    rec['plugin_fallback'] = 'could not build the CUDA plugin' in out # the ops' LazyPlugin warning
    stats = os.path.join(runs[-1], 'stats.jsonl') if runs else None
    if stats and os.path.isfile(stats):
        with open(stats, encoding='utf-8') as f:
            lines = f.read().splitlines()
        last = json.loads(lines[-1]) if lines else {}
        rec['sec_per_kimg'] = last.get('Timing/sec_per_kimg', {}).get('mean')
    on_gpu = rec['on_gpus'] and not rec['plugin_fallback']
    rec['passed'] = bool(rec['rc'] == 0 and rec['snapshot_kimg'] == kimg and (on_gpu or device.type != 'cuda'))
    if not rec['passed']:
        rec['output_tail'] = out[-2000:]
    return rec

def section_e2e(args, device, tmp):
    env = _env(device)
    kimg = 1 if args.quick else 2
    if args.quick and not args.e2e:
        res = dict(skipped='--quick: the real runs take about a minute on a small CPU (two 1-kimg trainings, '
            'generate.py, calc_metrics.py); only train.py --dry-run checks both command lines. --e2e runs them.')
        for launcher in ['python', 'torchrun']:
            rec, out = _run_cmd(_train_cmd(launcher, os.path.join(tmp, f'dry-{launcher}'), kimg, device, True), env, tmp, 300)
            rec['passed'] = bool(rec['rc'] == 0 and 'Dry run; exiting.' in out)
            if not rec['passed']:
                rec['output_tail'] = out[-2000:]
            res[f'dry_run_{launcher}'] = rec
        return res

    res = {}
    outdir = os.path.join(tmp, 'runs')
    rec, out = _run_cmd(_train_cmd('python', outdir, kimg, device, False), env, tmp, 300)
    res['train'] = _train_result(rec, out, outdir, kimg, device)
    # torchrun's run goes on while the snapshot is drawn and scored.
    tr_outdir = os.path.join(tmp, 'runs-torchrun')
    tr_log = open(os.path.join(tmp, 'torchrun.log'), 'w+', encoding='utf-8') # pylint: disable=consider-using-with
    tr_cmd = _train_cmd('torchrun', tr_outdir, kimg, device, False)
    t0 = time.perf_counter()
    tr_proc = subprocess.Popen(tr_cmd, env=env, cwd=tmp, stdout=tr_log, stderr=subprocess.STDOUT, text=True)
    pkl = res['train']['snapshot']
    if pkl:
        gen_dir = os.path.join(tmp, 'generated')
        rec, out = _run_cmd([sys.executable, os.path.join(REPO, 'generate.py'), f'--network={pkl}', '--seeds=0-3',
            f'--outdir={gen_dir}'] + (['--device=cpu'] if device.type == 'cpu' else []), env, tmp, 300)
        rec['images'] = len(glob.glob(os.path.join(gen_dir, '*.png')))
        rec['passed'] = bool(rec['rc'] == 0 and rec['images'] == 4)
        if not rec['passed']:
            rec['output_tail'] = out[-2000:]
        res['generate'] = rec
        rec, out = _run_cmd([sys.executable, os.path.join(REPO, 'calc_metrics.py'), '--metrics=modes_discs8',
            f'--network={pkl}', '--verbose=false'] + (['--max-items=500'] if args.quick else []), env, tmp, 300)
        jsonl = os.path.join(os.path.dirname(pkl), 'metric-modes_discs8.jsonl')
        results = None
        if os.path.isfile(jsonl):
            with open(jsonl, encoding='utf-8') as f:
                results = json.loads(f.read().splitlines()[-1]).get('results')
        rec['results'] = results
        rec['passed'] = bool(rec['rc'] == 0 and results and 'modes_discs8' in results)
        if not rec['passed']:
            rec['output_tail'] = out[-2000:]
        res['calc_metrics'] = rec
    else:
        res['generate'] = res['calc_metrics'] = dict(passed=False, error='no snapshot from train.py')
    try:
        rc = tr_proc.wait(timeout=max(30, 300 - (time.perf_counter() - t0)))
    except subprocess.TimeoutExpired:
        tr_proc.kill()
        rc = 'timeout'
    tr_log.seek(0)
    out = tr_log.read()
    tr_log.close()
    rec = dict(cmd=' '.join(os.path.relpath(c, REPO) if c.startswith(REPO) else c for c in tr_cmd), rc=rc, seconds=time.perf_counter() - t0)
    res['torchrun'] = _train_result(rec, out, tr_outdir, kimg, device)
    return res

def print_e2e(e2e):
    if 'skipped' in e2e:
        print(f'real runs skipped: {e2e["skipped"]}')
    for key, rec in e2e.items():
        if not isinstance(rec, dict):
            continue
        detail = ''
        if key in ('train', 'torchrun'):
            detail = (f'snapshot at {rec.get("snapshot_kimg")} kimg, {_fmt(rec.get("sec_per_kimg"), ".1f")} s/kimg'
                + (', on GPU' if rec.get('on_gpus') else '') + (', PLUGIN FALLBACK' if rec.get('plugin_fallback') else ''))
        elif key == 'generate':
            detail = f'{rec.get("images")} images'
        elif key == 'calc_metrics' and rec.get('results'):
            detail = ', '.join(f'{k} {v:.3g}' for k, v in rec['results'].items() if isinstance(v, (int, float)))
        print(f'  {key:<18s} {"PASS" if rec.get("passed") else "FAIL"}  {_fmt(rec.get("seconds"), ".0f"):>4s} s  {detail}')
        print(f'  {"":<18s}       {rec.get("cmd", rec.get("error", ""))}')
        if not rec.get('passed') and rec.get('output_tail'):
            print('    ' + '\n    '.join(rec['output_tail'].strip().splitlines()[-8:]))

#----------------------------------------------------------------------------
# Targets and checks.

def evaluate(results, device, quick):
    targets, failed = [], []
    ops, tr, e2e = results.get('ops'), results.get('training'), results.get('e2e')
    for name in ['ops', 'training', 'e2e']:
        if isinstance(results.get(name), dict) and 'exception' in results[name]:
            failed.append(f'{name}: {results[name]["exception"]}')
    if ops and 'parity' in ops:
        failed += [f'parity {r["op"]} {r["dtype"]} {r["compare"]}: {r["failed"]} of {r["cases"]} cases' for r in ops['summary'] if not r['passed']]
        failed += [f'fallback path of {n}' for n, s in ops['fallback'].items() if not s['passed']]
        if device.type == 'cuda':
            failed += [f'plugin {n}: {s["status"]}' for n, s in ops['plugins'].items() if s['status'] != 'built']
    if tr and 'runs' in tr:
        failed += [f'training {r["label"]}: {_first_line(r["error"], 150)}' for r in tr['runs'] if r['error']]
        failed += [f'training {r["label"]}: non-finite weights' for r in tr['runs'] if r['finite'] is False]
        failed += [f'training {r["label"]}: {k} {v}' for r in tr['runs'] if r['impl'] == 'ours'
            for k, v in (r['plugins'] or {}).items() if v != 'built']
        cmp = tr.get('upstream_comparison') or {}
        if 'fp32' in cmp and not cmp['fp32'].get('passed'):
            failed.append('ours vs upstream fp32 step: outputs differ')
    if e2e:
        failed += [f'e2e {k}' for k, v in e2e.items() if isinstance(v, dict) and not v.get('passed')]

    # Kernels vs reference.
    kern = [r for r in (ops or {}).get('summary', []) if r['op'] in ('bias_act', 'upfirdn2d')]
    if device.type != 'cuda':
        worst = max((r['max_err'] for r in kern), default=None)
        targets.append(dict(name='CUDA kernels agree with the reference paths', status='n/a', value=worst,
            note=f'no CUDA kernels on a CPU; the reference path fp32 vs float64 {"passes" if kern and all(r["passed"] for r in kern) else "FAILS"} instead'))
    else:
        built = ops and all(s['status'] == 'built' for s in ops['plugins'].values())
        ok = bool(built and kern and all(r['passed'] for r in kern))
        targets.append(dict(name='CUDA kernels agree with the reference paths', status='pass' if ok else 'fail',
            value=max((r['max_err'] / r['tol'] for r in kern), default=None),
            note='worst error / tolerance over bias_act and upfirdn2d, fp32 and fp16' + ('' if built else '; a plugin did not build')))

    # fp16 step vs upstream.
    name = f'fp16 training step >= {SPEEDUP_TARGET}x upstream\'s images/s at equal outputs'
    if device.type != 'cuda' or not tr or 'runs' not in tr:
        targets.append(dict(name=name, status='n/a', value=None, note='needs a GPU' if device.type != 'cuda' else 'training section failed'))
    elif not tr.get('upstream_comparison'):
        targets.append(dict(name=name, status='n/a', value=None, note='needs --upstream=DIR'))
    else:
        o, u = _run(tr, 'ours plain fp16 K=1'), _run(tr, 'upstream plain fp16 K=1')
        equal = tr['upstream_comparison'].get('fp16', {}).get('passed', False)
        ratio = o['img_per_s'] / u['img_per_s'] if o and u and o['img_per_s'] and u['img_per_s'] else None
        upstream_plugins = (u or {}).get('plugins') or {}
        note = f'outputs {"equal" if equal else "NOT equal"}'
        if any(v != 'built' for v in upstream_plugins.values()):
            note += '; upstream ran without its CUDA plugins'
        targets.append(dict(name=name, status='pass' if ratio and ratio >= SPEEDUP_TARGET and equal else 'fail', value=ratio, note=note))

    # K=4 vs K=1.
    name = f'SOM K=4 within {round((1 - HEADS_TARGET) * 100)}% of K=1 (images/s)'
    prec = 'fp16' if device.type == 'cuda' else 'fp32'
    k1, k4 = (_run(tr, f'ours som {prec} K=1'), _run(tr, f'ours som {prec} K=4')) if tr and 'runs' in tr else (None, None)
    ratio = k4['img_per_s'] / k1['img_per_s'] if k1 and k4 and k1['img_per_s'] and k4['img_per_s'] else None
    if device.type != 'cuda' or quick:
        targets.append(dict(name=name, status='n/a', value=ratio, note='measured on tiny networks (--quick / CPU): not the target\'s setting'))
    else:
        targets.append(dict(name=name, status='pass' if ratio and ratio >= HEADS_TARGET else 'fail', value=ratio, note=f'{prec}, --cfg=cifar'))
    return targets, failed

def print_targets(targets, failed):
    for t in targets:
        value = _fmt(t['value'], '.3g')
        print(f'  {t["status"].upper():<5s} {t["name"]}: {value}  ({t["note"]})')
    print(f'checks: {"all passed" if not failed else str(len(failed)) + " failed"}')
    for f in failed:
        print(f'  FAIL {f}')

#----------------------------------------------------------------------------

def _section(results, name, fn, *args):
    """Run one section; an exception becomes one line in the output and the JSON, and the others still run."""
    t0 = time.perf_counter()
    try:
        results[name] = fn(*args)
    except Exception as err: # pylint: disable=broad-except
        results[name] = dict(exception=f'{type(err).__name__}: {_first_line(err)}', traceback=traceback.format_exc())
        print(f'  ERROR in this section: {type(err).__name__}: {_first_line(err)} (traceback in the JSON)')
    if isinstance(results[name], dict):
        results[name]['seconds'] = time.perf_counter() - t0
    return results[name]

def write_json(results, path):
    """Written after every section (atomically), so that a run cut short still leaves what it measured."""
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(_jsonable(results), f, indent=1)
    os.replace(tmp, path)

def run_checks(args):
    t_start = time.perf_counter()
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False # exact fp32 for the parity
    sys.path.insert(0, REPO)
    results = dict(meta=collect_meta(args, device))
    m = results['meta']
    print(f'gpu_check: {m["device_name"]} ({m["device"]}), torch {m["torch"]}, CUDA {m["cuda"]}, cuDNN {m["cudnn"]}, '
        f'{m["date"]}{", quick" if args.quick else ""}' + (f', upstream {args.upstream}' if args.upstream else ''))
    write_json(results, args.out)
    with tempfile.TemporaryDirectory(prefix='gpu_check-') as tmp:
        workers, config = [], None
        try:
            try:
                workers, config = start_training(args, device, tmp) # they start up while section 1 runs
            except Exception as err: # pylint: disable=broad-except
                results['training'] = dict(exception=f'{type(err).__name__}: {_first_line(err)}', traceback=traceback.format_exc())

            header('1. Custom ops: plugin builds, fallback, parity of CUDA kernels and gradfix ops')
            ops = _section(results, 'ops', section_ops, device, args.quick)
            if 'parity' in ops:
                print_ops(ops)
            write_json(results, args.out)

            header('2. Training step: images/s, peak memory, SOM K=1 vs K=4' + (', ours vs upstream' if args.upstream else ''))
            if workers:
                tr = _section(results, 'training', section_training, workers, config, device, tmp)
                if 'runs' in tr:
                    print_training(tr)
            else:
                print(f'  ERROR: {results["training"]["exception"]}')
            write_json(results, args.out)
        finally:
            for w in workers:
                w.close()

        header('3. End to end: train.py, generate.py, calc_metrics.py, torchrun')
        e2e = _section(results, 'e2e', section_e2e, args, device, tmp)
        if 'exception' not in e2e:
            print_e2e(e2e)

    header('Targets')
    targets, failed = evaluate(results, device, args.quick)
    results['targets'] = targets
    results['failed_checks'] = failed
    results['seconds'] = time.perf_counter() - t_start
    print_targets(targets, failed)
    write_json(results, args.out)
    print(f'{results["seconds"]:.0f} s; results in {args.out}')
    bad_targets = [t for t in targets if t['status'] == 'fail']
    return 1 if failed or bad_targets else 0

def main(argv=None):
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
        if args.worker:
            return worker_main(args.worker, args.spec)
        check_flags(args)
    except FlagError as err:
        print(f'Error: {err}', file=sys.stderr)
        return 2
    return run_checks(args)

if __name__ == '__main__':
    sys.exit(main())
