"""Small PyTorch helpers used throughout networks and the training loop (API of StyleGAN2-ADA's torch_utils.misc)."""

import contextlib
import re
import warnings

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------
# Cached constant tensors: networks build the same small constants (filters, gains) on every forward pass;
# caching them avoids re-creating and re-uploading them to the device each time.

_constant_cache = dict()

def constant(value, shape=None, dtype=None, device=None, memory_format=None):
    value = np.asarray(value)
    shape = tuple(shape) if shape is not None else None
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    device = torch.device(device) if device is not None else torch.device('cpu')
    memory_format = memory_format if memory_format is not None else torch.contiguous_format

    key = (value.shape, value.dtype, value.tobytes(), shape, dtype, device, memory_format)
    tensor = _constant_cache.get(key, None)
    if tensor is None:
        tensor = torch.as_tensor(value.copy(), dtype=dtype, device=device)
        if shape is not None:
            tensor = tensor.expand(torch.broadcast_shapes(tensor.shape, shape))
        tensor = tensor.contiguous(memory_format=memory_format)
        _constant_cache[key] = tensor
    return tensor

#----------------------------------------------------------------------------
# NaN/Inf replacement (native since torch 1.8; kept as a name because network code calls misc.nan_to_num).

nan_to_num = torch.nan_to_num

#----------------------------------------------------------------------------
# Assertion that survives torch.jit.trace as a graph op instead of a Python-time check.

symbolic_assert = torch._assert # pylint: disable=protected-access

#----------------------------------------------------------------------------

class suppress_tracer_warnings(warnings.catch_warnings):
    """Silence torch.jit.TracerWarning inside the block (shape checks on traced tensors emit them by design)."""

    def __enter__(self):
        super().__enter__()
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        return self

#----------------------------------------------------------------------------

def assert_shape(tensor, ref_shape):
    """Check `tensor.shape` against `ref_shape`. None entries match any size; entries (or sizes) that are
    tensors, as during tracing, are checked symbolically."""
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f'Wrong number of dimensions: got {tensor.ndim}, expected {len(ref_shape)}')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(ref_size, torch.Tensor) or isinstance(size, torch.Tensor):
            with suppress_tracer_warnings(): # as_tensor on a traced value becomes a constant; that's intended
                symbolic_assert(torch.equal(torch.as_tensor(size), torch.as_tensor(ref_size)),
                    f'Wrong size for dimension {idx}: expected {ref_size}')
        elif size != ref_size:
            raise AssertionError(f'Wrong size for dimension {idx}: got {size}, expected {ref_size}')

#----------------------------------------------------------------------------

def profiled_function(fn):
    """Decorator: run `fn` inside a profiler range named after it, so it shows up in torch.profiler traces."""
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    decorator.__name__ = fn.__name__
    decorator.__doc__ = fn.__doc__
    return decorator

#----------------------------------------------------------------------------

class InfiniteSampler(torch.utils.data.Sampler):
    """Endless stream of dataset indices for one of `num_replicas` ranks.

    With `shuffle`, the order starts as a seeded permutation and keeps mixing as it goes: after each step the
    item just visited is swapped with a random one up to `window_size * len(dataset)` positions behind it, so
    successive epochs differ without ever re-shuffling everything. Ranks take every num_replicas-th step."""

    def __init__(self, dataset, rank=0, num_replicas=1, shuffle=True, seed=0, window_size=0.5):
        if len(dataset) <= 0:
            raise AssertionError('InfiniteSampler: the dataset is empty')
        assert num_replicas > 0, f'num_replicas must be positive, got {num_replicas}'
        assert 0 <= rank < num_replicas, f'rank must be in [0, {num_replicas}), got {rank}'
        assert 0 <= window_size <= 1, f'window_size must be in [0, 1], got {window_size}'
        super().__init__() # newer torch rejects the dataset argument here
        self.dataset = dataset
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.window_size = window_size

    def __iter__(self):
        order = np.arange(len(self.dataset))
        rnd = None
        window = 0
        if self.shuffle:
            rnd = np.random.RandomState(self.seed)
            rnd.shuffle(order)
            window = int(np.rint(order.size * self.window_size))

        step = 0
        while True:
            i = step % order.size
            if step % self.num_replicas == self.rank:
                yield order[i]
            if window >= 2:
                j = (i - rnd.randint(window)) % order.size
                order[i], order[j] = order[j], order[i]
            step += 1

#----------------------------------------------------------------------------
# Parameters and buffers.

def params_and_buffers(module):
    assert isinstance(module, torch.nn.Module)
    return list(module.parameters()) + list(module.buffers())

def named_params_and_buffers(module):
    assert isinstance(module, torch.nn.Module)
    return list(module.named_parameters()) + list(module.named_buffers())

def copy_params_and_buffers(src_module, dst_module, require_all=False):
    """Copy every parameter/buffer of `dst_module` from the same-named tensor of `src_module`.
    Names missing in the source are left as they are, unless `require_all`."""
    assert isinstance(src_module, torch.nn.Module)
    assert isinstance(dst_module, torch.nn.Module)
    src_tensors = dict(named_params_and_buffers(src_module))
    with torch.no_grad(): # in-place writes into leaf parameters are only allowed without autograd
        for name, tensor in named_params_and_buffers(dst_module):
            if name not in src_tensors:
                if require_all:
                    raise AssertionError(f'copy_params_and_buffers: {name!r} missing in source {type(src_module).__name__}')
                continue
            src = src_tensors[name]
            if src.shape != tensor.shape:
                raise AssertionError(f'copy_params_and_buffers: shape mismatch for {name!r}: '
                    f'source {list(src.shape)}, destination {list(tensor.shape)}')
            tensor.copy_(src.detach())

#----------------------------------------------------------------------------

@contextlib.contextmanager
def ddp_sync(module, sync):
    """Within the block, skip DistributedDataParallel gradient all-reduce unless `sync` (for accumulation rounds)."""
    assert isinstance(module, torch.nn.Module)
    if sync or not isinstance(module, torch.nn.parallel.DistributedDataParallel):
        yield
    else:
        with module.no_sync():
            yield

#----------------------------------------------------------------------------

def check_ddp_consistency(module, ignore_regex=None):
    """Assert that every parameter/buffer equals rank 0's copy (NaNs compare equal via nan_to_num).
    Tensors whose '<ModuleType>.<name>' fully matches `ignore_regex` are skipped."""
    assert isinstance(module, torch.nn.Module)
    for name, tensor in named_params_and_buffers(module):
        fullname = type(module).__name__ + '.' + name
        if ignore_regex is not None and re.fullmatch(ignore_regex, fullname):
            continue
        tensor = tensor.detach()
        other = tensor.clone()
        torch.distributed.broadcast(tensor=other, src=0)
        if not (nan_to_num(tensor) == nan_to_num(other)).all():
            raise AssertionError(f'{fullname} differs from rank 0')

#----------------------------------------------------------------------------

def print_module_summary(module, inputs, max_nesting=3, skip_redundant=True):
    """Run `module(*inputs)` once and print a table of submodules with their parameter and buffer counts and
    output shapes/dtypes. Each tensor is counted once, at the first module that owns it. Returns the outputs."""
    assert isinstance(module, torch.nn.Module)
    assert not isinstance(module, torch.jit.ScriptModule)
    assert isinstance(inputs, (tuple, list))

    entries = []
    depth = [0]
    def pre_hook(_mod, _inputs):
        depth[0] += 1
    def post_hook(mod, _inputs, outputs):
        depth[0] -= 1
        if depth[0] <= max_nesting:
            outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            entries.append(dnnlib.EasyDict(mod=mod, outputs=[t for t in outputs if isinstance(t, torch.Tensor)]))
    handles = [mod.register_forward_pre_hook(pre_hook) for mod in module.modules()]
    handles += [mod.register_forward_hook(post_hook) for mod in module.modules()]
    try:
        outputs = module(*inputs)
    finally:
        for h in handles:
            h.remove()

    # Hooks fire innermost first, so children claim their tensors before their parents.
    seen = set()
    for e in entries:
        e.unique_params = [t for t in e.mod.parameters() if id(t) not in seen]
        e.unique_buffers = [t for t in e.mod.buffers() if id(t) not in seen]
        e.unique_outputs = [t for t in e.outputs if id(t) not in seen]
        seen |= {id(t) for t in e.unique_params + e.unique_buffers + e.unique_outputs}
    if skip_redundant:
        entries = [e for e in entries if e.unique_params or e.unique_buffers or e.unique_outputs]

    rows = [[type(module).__name__, 'Parameters', 'Buffers', 'Output shape', 'Datatype']]
    rows.append(['---'] * len(rows[0]))
    param_total = 0
    buffer_total = 0
    names = {mod: name for name, mod in module.named_modules()}
    for e in entries:
        name = '<top-level>' if e.mod is module else names[e.mod]
        param_size = sum(t.numel() for t in e.unique_params)
        buffer_size = sum(t.numel() for t in e.unique_buffers)
        shapes = [str(list(t.shape)) for t in e.outputs]
        dtypes = [str(t.dtype).split('.')[-1] for t in e.outputs]
        rows.append([
            name + (':0' if len(e.outputs) >= 2 else ''),
            str(param_size) if param_size else '-',
            str(buffer_size) if buffer_size else '-',
            (shapes + ['-'])[0],
            (dtypes + ['-'])[0],
        ])
        for idx in range(1, len(e.outputs)):
            rows.append([name + f':{idx}', '-', '-', shapes[idx], dtypes[idx]])
        param_total += param_size
        buffer_total += buffer_size
    rows.append(['---'] * len(rows[0]))
    rows.append(['Total', str(param_total), str(buffer_total), '-', '-'])

    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    print()
    for row in rows:
        print('  '.join(cell.ljust(width) for cell, width in zip(row, widths)))
    print()
    return outputs

#----------------------------------------------------------------------------
