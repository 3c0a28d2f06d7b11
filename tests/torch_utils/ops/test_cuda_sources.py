"""Checks of the CUDA sources in torch_utils/ops that need no GPU.

- the sources exist and their pybind11 bindings match the calls made by bias_act.py / upfirdn2d.py;
- the kernels' arithmetic, run on the CPU: each .cu is compiled with g++ after replacing the launch
  syntax and CUDA built-ins with a sequential emulation (one thread per block), then compared with
  independent PyTorch formulations (autograd for the derivative passes);
- with nvcc on PATH, .ci/compile_cuda.sh compiles everything for real (marker `nvcc`).
"""

import ast
import ctypes
import os
import random
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.utils.cpp_extension

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
OPS_DIR = os.path.join(REPO, 'torch_utils', 'ops')

# name -> (number of C++ arguments, Python module calling it)
BINDINGS = {'bias_act': (11, 'bias_act.py'), 'upfirdn2d': (12, 'upfirdn2d.py')}

#----------------------------------------------------------------------------
# Sources and bindings.

@pytest.mark.parametrize('name', sorted(BINDINGS))
def test_sources_exist(name):
    for ext in ['.cpp', '.cu', '.h']:
        assert os.path.isfile(os.path.join(OPS_DIR, name + ext)), f'missing torch_utils/ops/{name}{ext}'


def _strip_comments(src):
    return re.sub(r'//[^\n]*|/\*.*?\*/', '', src, flags=re.S)


@pytest.mark.parametrize('name', sorted(BINDINGS))
def test_binding_matches_python_side(name):
    num_args, py_file = BINDINGS[name]
    cpp = _strip_comments(open(os.path.join(OPS_DIR, name + '.cpp'), encoding='utf-8').read())

    # Exactly one m.def, exporting `name` from the C++ function of the same name.
    defs = re.findall(r'\bm\.def\(\s*"(\w+)"\s*,\s*&(\w+)', cpp)
    assert defs == [(name, name)], f'{name}.cpp: expected one m.def("{name}", &{name}), found {defs}'
    assert 'PYBIND11_MODULE(TORCH_EXTENSION_NAME' in cpp
    sig = re.search(r'torch::Tensor\s+' + name + r'\s*\(([^)]*)\)\s*\{', cpp)
    assert sig is not None, f'{name}.cpp: definition of torch::Tensor {name}(...) not found'
    params = [p for p in sig.group(1).split(',') if p.strip()]
    assert len(params) == num_args, f'{name}.cpp: {name}() takes {len(params)} arguments, expected {num_args}'

    # Every plugin call in the Python wrapper passes that many positional arguments, and the
    # get_plugin() call names files that exist.
    py_path = os.path.join(OPS_DIR, py_file)
    if not os.path.isfile(py_path):
        pytest.skip(f'torch_utils/ops/{py_file} not written yet')
    tree = ast.parse(open(py_path, encoding='utf-8').read())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    plugin_calls = [c for c in calls if isinstance(c.func, ast.Attribute) and c.func.attr == name
                    and isinstance(c.func.value, ast.Name) and c.func.value.id == '_plugin']
    assert plugin_calls, f'{py_file}: no _plugin.{name}(...) call found'
    for call in plugin_calls:
        if any(isinstance(a, ast.Starred) for a in call.args) or call.keywords:
            continue
        assert len(call.args) == num_args, f'{py_file}:{call.lineno}: _plugin.{name}() called with {len(call.args)} arguments'
    loaders = [c for c in calls if (getattr(c.func, 'attr', None) or getattr(c.func, 'id', None)) == 'get_plugin']
    assert loaders, f'{py_file}: no get_plugin(...) call found'
    for call in loaders:
        kwargs = {k.arg: k.value for k in call.keywords}
        module_name = call.args[0] if call.args else kwargs.get('module_name')
        assert isinstance(module_name, ast.Constant) and module_name.value == f'sgsom_{name}_plugin'
        for key in ['sources', 'headers']:
            if isinstance(kwargs.get(key), ast.List):
                for elt in kwargs[key].elts:
                    if isinstance(elt, ast.Constant):
                        assert os.path.isfile(os.path.join(OPS_DIR, elt.value)), f'{py_file}: {key} names missing file {elt.value}'

#----------------------------------------------------------------------------
# CPU emulation of the kernels.

# Stands in for <cuda_runtime_api.h>: CUDA qualifiers vanish, built-in indices become globals that
# the launch macro sets, and a launch runs the grid block by block with one thread per block
# (which keeps __syncthreads() trivially correct).
_EMU_RUNTIME = r'''
#pragma once
#include <math.h>
#include <algorithm>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__
struct EmuDim3 { unsigned x = 1, y = 1, z = 1; };
inline EmuDim3 threadIdx, blockIdx, blockDim, gridDim;
inline unsigned emu_grid = 1;
inline void __syncthreads() {}
using std::max; using std::min;
typedef int cudaError_t;
typedef void* cudaStream_t;
enum { cudaSuccess = 0, cudaErrorInvalidValue = 1 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
#define EMU_LAUNCH(kernel, config, ...) do { gridDim.x = emu_grid; blockDim.x = 1; threadIdx.x = 0; \
    for (blockIdx.x = 0; blockIdx.x < gridDim.x; blockIdx.x++) kernel(__VA_ARGS__); } while (0)
'''

_EMU_BIAS_ACT = r'''
#include "bias_act_emu.cpp"
#define ENTRY(NAME, T) extern "C" int NAME(const T* x, const T* b, const T* xref, const T* yref, const T* dy, T* y, \
    int grad, int act, float alpha, float gain, float clamp, int num_x, int num_b, int step_b, unsigned grid) { \
    BiasActArgs a{x, b, xref, yref, dy, y, grad, act, alpha, gain, clamp, num_x, num_b, step_b}; \
    emu_grid = grid; return launch_bias_act<T>(a, nullptr); }
ENTRY(bias_act_f64, double)
ENTRY(bias_act_f32, float)
ENTRY(bias_act_f16, c10::Half)
'''

_EMU_UPFIRDN2D = r'''
#include "upfirdn2d_emu.cpp"
namespace { float shared_taps[1 << 14]; } // backs the kernel's extern __shared__ array
#define ENTRY(NAME, T) extern "C" int NAME(const T* x, const int* in, const float* f, int fw, int fh, T* y, const int* out, \
    int upx, int upy, int downx, int downy, int padx0, int pady0, int flip, float gain, int channels_last, unsigned grid) { \
    Upfirdn2dArgs a; a.x = x; a.f = f; a.y = y; \
    a.in = {in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]}; \
    a.out = {out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]}; \
    a.filter_w = fw; a.filter_h = fh; a.up_x = upx; a.up_y = upy; a.down_x = downx; a.down_y = downy; \
    a.pad_x0 = padx0; a.pad_y0 = pady0; a.flip = flip; a.gain = gain; a.channels_last = channels_last; \
    emu_grid = grid; return launch_upfirdn2d<T>(a, nullptr); }
ENTRY(upfirdn2d_f64, double)
ENTRY(upfirdn2d_f32, float)
'''


def _emulated_source(cu_path):
    # kernel<...><<<config>>>(args);  ->  EMU_LAUNCH((kernel<...>), (config), args);
    src = open(cu_path, encoding='utf-8').read()
    src, n = re.subn(r'(\w+(?:<[^<>]*>)?)<<<(.*?)>>>\((.*?)\);', r'EMU_LAUNCH((\1), (\2), \3);', src, flags=re.S)
    assert n >= 1, f'{cu_path}: no kernel launch found'
    return src


@pytest.fixture(scope='module')
def emu(tmp_path_factory):
    cxx = os.environ.get('CXX', 'g++')
    if shutil.which(cxx) is None:
        pytest.skip(f'no host C++ compiler ({cxx}) for the kernel emulation')
    work = tmp_path_factory.mktemp('cuda_emu')
    (work / 'cuda_runtime_api.h').write_text(_EMU_RUNTIME)
    torch_include = torch.utils.cpp_extension.include_paths()[0]
    libs = {}
    for name, wrapper in [('bias_act', _EMU_BIAS_ACT), ('upfirdn2d', _EMU_UPFIRDN2D)]:
        (work / f'{name}_emu.cpp').write_text(_emulated_source(os.path.join(OPS_DIR, name + '.cu')))
        (work / f'{name}_wrap.cpp').write_text(wrapper)
        lib = work / f'{name}_emu.so'
        cmd = [cxx, '-std=c++17', '-O1', '-shared', '-fPIC', f'-I{work}', f'-I{OPS_DIR}', '-isystem', torch_include,
               str(work / f'{name}_wrap.cpp'), '-o', str(lib)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert res.returncode == 0, f'emulated build of {name}.cu failed:\n{res.stderr[-4000:]}'
        libs[name] = ctypes.CDLL(str(lib))
    return libs


def _ptr(t):
    return ctypes.c_void_p(t.data_ptr() if t is not None and t.numel() else None)

#----------------------------------------------------------------------------
# bias_act: forward against plain torch ops, derivative passes against autograd, called the way
# bias_act.py's autograd Functions call the plugin.

# act code -> (function, saved reference: 'x', 'y' or '', has a second derivative)
_ACTS = {
    1: (lambda x, a: x,                                     '',  False),
    2: (lambda x, a: torch.relu(x),                         'y', False),
    3: (lambda x, a: torch.nn.functional.leaky_relu(x, a),  'y', False),
    4: (lambda x, a: torch.tanh(x),                         'y', True),
    5: (lambda x, a: torch.sigmoid(x),                      'y', True),
    6: (lambda x, a: torch.nn.functional.elu(x),            'y', True),
    7: (lambda x, a: torch.nn.functional.selu(x),           'y', True),
    8: (lambda x, a: torch.nn.functional.softplus(x),       'y', True),
    9: (lambda x, a: x * torch.sigmoid(x),                  'x', True),
}


def _bias_act_emu(emu, x, b, xref, yref, dy, grad, dim, act, alpha, gain, clamp, grid=3):
    fn = {torch.float64: emu['bias_act'].bias_act_f64, torch.float32: emu['bias_act'].bias_act_f32,
          torch.float16: emu['bias_act'].bias_act_f16}[x.dtype]
    y = torch.full_like(x, float('nan'))
    step_b = x.stride(dim) if b is not None and x.shape[dim] > 1 else 1
    res = fn(_ptr(x), _ptr(b), _ptr(xref), _ptr(yref), _ptr(dy), _ptr(y), grad, act, ctypes.c_float(alpha),
             ctypes.c_float(gain), ctypes.c_float(clamp), x.numel(), 0 if b is None else b.numel(), step_b, grid)
    assert res == 0
    return y


@pytest.mark.parametrize('act', sorted(_ACTS))
def test_bias_act_kernel_emulated(emu, act):
    func, ref, has_2nd = _ACTS[act]
    rng = random.Random(act)
    torch.manual_seed(act)
    for trial in range(12):
        shape = [rng.randint(1, 4) for _ in range(rng.randint(1, 4))]
        dim = rng.randrange(len(shape))
        x = torch.randn(shape, dtype=torch.float64) * 3
        if len(shape) == 4 and trial % 2:
            x = x.contiguous(memory_format=torch.channels_last)
        b = torch.randn(shape[dim], dtype=torch.float64) if trial % 3 else None
        alpha = rng.choice([0.2, 0.3])
        gain = rng.choice([1.0, 0.7, float(np.sqrt(2))])
        clamp = rng.choice([-1.0, 0.5, 2.0])

        xg = x.clone().requires_grad_(True)
        y_ref = func(xg + (0 if b is None else b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])), alpha) * gain
        if clamp >= 0:
            y_ref = y_ref.clamp(-clamp, clamp)
        y = _bias_act_emu(emu, x, b, None, None, None, 0, dim, act, alpha, gain, clamp)
        assert torch.allclose(y, y_ref.detach(), atol=1e-10), f'forward act={act} trial={trial}'

        # First-derivative pass; only the tensors bias_act.py saves are passed.
        dy = torch.randn_like(x)
        (dx_ref,) = torch.autograd.grad(y_ref, xg, dy, create_graph=True)
        keep_x = ref == 'x' or has_2nd
        sx, sb, sy = (x if keep_x else None), (b if keep_x else None), (y if ref == 'y' else None)
        dx = _bias_act_emu(emu, dy, sb, sx, sy, None, 1, dim, act, alpha, gain, clamp)
        if not (act == 1 and clamp >= 0): # linear keeps no y, so its pass cannot mask clamped values
            assert torch.allclose(dx, dx_ref.detach(), atol=1e-9), f'1st derivative act={act} trial={trial}'

        # Second-derivative pass.
        if has_2nd:
            d_dx = torch.randn_like(x)
            (d_x_ref,) = torch.autograd.grad(dx_ref, xg, d_dx)
            d_x = _bias_act_emu(emu, d_dx, sb, sx, sy, dy, 2, dim, act, alpha, gain, clamp)
            assert torch.allclose(d_x, d_x_ref, atol=1e-8), f'2nd derivative act={act} trial={trial}'


def test_bias_act_kernel_emulated_low_precision(emu):
    x = torch.linspace(-6, 6, 96, dtype=torch.float64).reshape(2, 3, 4, 4)
    b = torch.tensor([0.5, -0.25, 0.0], dtype=torch.float64)
    for act in sorted(_ACTS):
        y64 = _bias_act_emu(emu, x, b, None, None, None, 0, 1, act, 0.2, 1.4, 3.0)
        for dtype, tol in [(torch.float32, 1e-5), (torch.float16, 1e-2)]:
            y = _bias_act_emu(emu, x.to(dtype), b.to(dtype), None, None, None, 0, 1, act, 0.2, 1.4, 3.0).double()
            assert torch.allclose(y, y64, atol=tol, rtol=tol), f'act={act} {dtype}'

    # Extreme inputs stay finite in every pass.
    x = torch.tensor([-1e4, -100, -85, -50, -30, 0, 30, 50, 85, 100, 1e4], dtype=torch.float32)
    ones = torch.ones_like(x)
    for act in sorted(_ACTS):
        y = _bias_act_emu(emu, x, None, None, None, None, 0, 0, act, 0.2, 1.0, -1.0)
        assert torch.isfinite(y).all(), f'act={act}'
        for grad, dy in [(1, None), (2, ones)]:
            assert torch.isfinite(_bias_act_emu(emu, ones, None, x, y, dy, grad, 0, act, 0.2, 1.0, -1.0)).all()

#----------------------------------------------------------------------------
# upfirdn2d: against upsample-by-zero-insertion, pad/crop, conv2d and striding in plain torch.

def _upfirdn2d_ref(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
    n, c, h, w = x.shape
    u = torch.zeros([n, c, h * upy, w * upx], dtype=x.dtype)
    u[:, :, ::upy, ::upx] = x
    u = torch.nn.functional.pad(u, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    u = u[:, :, max(-pady0, 0):u.shape[2] - max(-pady1, 0), max(-padx0, 0):u.shape[3] - max(-padx1, 0)]
    # Correlation as a sum of shifted copies (torch's conv2d is needlessly slow on tiny CPU inputs).
    weight = (f if flip else f.flip([0, 1])).to(x.dtype) * gain # flip=False means true convolution
    fh, fw = f.shape
    out_h, out_w = u.shape[2] - fh + 1, u.shape[3] - fw + 1
    y = sum(u[:, :, i:i + out_h, j:j + out_w] * weight[i, j] for i in range(fh) for j in range(fw))
    return y[:, :, ::downy, ::downx]


def _upfirdn2d_emu(emu, x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain, channels_last, grid):
    fh, fw = f.shape
    out_h = (x.shape[2] * upy + pady0 + pady1 - fh) // downy + 1
    out_w = (x.shape[3] * upx + padx0 + padx1 - fw) // downx + 1
    y = torch.full([x.shape[0], x.shape[1], out_h, out_w], float('nan'), dtype=x.dtype)
    if channels_last:
        y = y.contiguous(memory_format=torch.channels_last)
    desc = lambda t: (ctypes.c_int * 8)(*t.shape, *[s if d > 1 else 0 for s, d in zip(t.stride(), t.shape)])
    fn = {torch.float64: emu['upfirdn2d'].upfirdn2d_f64, torch.float32: emu['upfirdn2d'].upfirdn2d_f32}[x.dtype]
    f = f.contiguous()
    res = fn(_ptr(x), desc(x), _ptr(f), fw, fh, _ptr(y), desc(y), upx, upy, downx, downy, padx0, pady0,
             int(flip), ctypes.c_float(gain), int(channels_last), grid)
    assert res == 0
    return y


def test_upfirdn2d_kernel_emulated(emu):
    rng = random.Random(0)
    torch.manual_seed(0)
    checked = 0
    while checked < 200:
        h, w = rng.randint(1, 6), rng.randint(1, 6)
        upx, upy, downx, downy = [rng.choice([1, 1, 2, 3]) for _ in range(4)]
        fh, fw = rng.randint(1, 5), rng.randint(1, 5)
        padx0, padx1, pady0, pady1 = [rng.randint(-4, 5) for _ in range(4)]
        if h * upy + pady0 + pady1 < fh or w * upx + padx0 + padx1 < fw:
            continue
        dtype = rng.choice([torch.float32, torch.float64])
        layout = rng.choice(['contiguous', 'channels_last', 'transposed'])
        x = torch.randn([rng.randint(1, 2), rng.randint(1, 3), h, w], dtype=dtype)
        if layout == 'channels_last':
            x = x.contiguous(memory_format=torch.channels_last)
        elif layout == 'transposed':
            x = x.transpose(2, 3).contiguous().transpose(2, 3)
        f = torch.randn([fh, fw])
        flip = rng.random() < 0.5
        gain = rng.choice([1.0, 4.0])
        args = (upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain)
        y = _upfirdn2d_emu(emu, x, f, *args, channels_last=rng.random() < 0.5, grid=rng.choice([1, 5]))
        y_ref = _upfirdn2d_ref(x, f, *args)
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        assert y.shape == y_ref.shape and torch.allclose(y, y_ref, atol=tol, rtol=tol), f'{layout} {x.shape} {f.shape} {args}'
        checked += 1


def test_upfirdn2d_kernel_emulated_large_filter(emu):
    # More taps than fit in shared memory: the kernel reads the filter from global memory.
    # Large paddings keep the output (and the emulation's work) small.
    x = torch.randn([1, 2, 3, 4], dtype=torch.float64)
    f = torch.randn([111, 112])
    for flip in [False, True]:
        args = (2, 2, 1, 1, 104, 3, 105, 2, flip, 1.0)
        y = _upfirdn2d_emu(emu, x, f, *args, channels_last=False, grid=2)
        assert y.shape == (1, 2, 3, 4)
        assert torch.allclose(y, _upfirdn2d_ref(x, f, *args), atol=1e-9)

#----------------------------------------------------------------------------
# Real compile with nvcc.

@pytest.mark.nvcc
def test_compile_cuda_sources():
    if shutil.which('nvcc') is None:
        pytest.skip('nvcc not on PATH')
    script = os.path.join(REPO, '.ci', 'compile_cuda.sh')
    res = subprocess.run(['bash', script], env=dict(os.environ, PYTHON=sys.executable),
                         capture_output=True, text=True, check=False, timeout=1200)
    assert res.returncode == 0, f'.ci/compile_cuda.sh failed:\n{res.stdout[-6000:]}\n{res.stderr[-2000:]}'
