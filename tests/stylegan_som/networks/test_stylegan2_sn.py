"""Spectral normalisation of the StyleGAN2 discriminator (Discriminator(spectral_norm=True)): which weights are
normalised, sigma_max of the effective (equalised-lr) weights against an SVD, the random stream left alone, exact
pickle and deepcopy round trips (power-iteration vectors included), a pickle that loads without this package,
Freeze-D, float16, and a few training steps with R1."""

import copy
import io
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from stylegan_som.networks import stylegan2
from torch_utils import misc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
parametrize = torch.nn.utils.parametrize

D_ARGS = dict(c_dim=3, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
    epilogue_kwargs=dict(mbstd_group_size=2))

def _D(seed=0, **kwargs):
    torch.manual_seed(seed)
    return stylegan2.Discriminator(**dict(D_ARGS, **kwargs)).requires_grad_(False)

def _inputs(seed=1, n=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn([n, 3, 16, 16], generator=g), torch.eye(3)[torch.arange(n) % 3]

def _normalised(D):
    """{(module name, tensor name): module} for every spectrally normalised tensor."""
    return {(name, t): m for name, m in D.named_modules() if parametrize.is_parametrized(m) for t in m.parametrizations}

def _sigma(m, t):
    eff = getattr(m, t) * getattr(m, t + '_gain', 1)
    return float(torch.linalg.matrix_norm(eff.detach().flatten(1).double(), ord=2))

def _tensors(module):
    return {n: t.detach().clone() for n, t in misc.named_params_and_buffers(module)}

def _assert_same_tensors(a, b):
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys()
    for name in ta:
        assert torch.equal(ta[name], tb[name]), name

#----------------------------------------------------------------------------

def test_off_by_default():
    D = _D()
    assert not _normalised(D) and D.spectral_norm is False
    assert D.b16.conv0.weight_gain != 1

def test_every_weight_normalised_to_unit_sigma():
    D = _D(spectral_norm=True, attn_resolutions=[8]).train()
    found = _normalised(D)
    # Every weight matrix and kernel of the network, and nothing else (biases, filters, gains stay plain).
    plain = stylegan2.Discriminator(**dict(D_ARGS, attn_resolutions=[8]))
    expected = {(n.rsplit('.', 1)[0] if '.' in n else '', n.rsplit('.', 1)[-1]) for n, p in plain.named_parameters() if p.ndim >= 2}
    assert set(found) == expected
    assert ('attn8', 'query_weight') in found and ('mapping.embed', 'weight') in found and ('b4.out', 'weight') in found
    for (name, t), m in found.items():
        if hasattr(m, t + '_gain'):
            assert getattr(m, t + '_gain') == 1, (name, t)

    # The estimate comes from below (sigma(W / estimate) >= 1) and is close after a few forwards ...
    img, c = _inputs()
    for _ in range(3):
        D(img, c)
    for (name, t), m in found.items():
        assert 1 - 1e-4 < _sigma(m, t) < 1.06, (name, t)
    # ... and exact once the power iteration (one step per training-mode access) has converged.
    for (name, t), m in found.items():
        for _ in range(300):
            getattr(m, t)
        assert abs(_sigma(m, t) - 1) < 1e-3, (name, t)

    # The layer computes with W / sigma(W) in place of gain * W: compare a layer with its written-out formula.
    fc = D.b4.fc
    raw = fc.parametrizations.weight.original.detach().double()
    w = raw / torch.linalg.matrix_norm(raw, ord=2)
    x = torch.randn([2, raw.shape[1]])
    ref = torch.nn.functional.leaky_relu(x.double() @ w.t() + fc.bias.double(), 0.2) * np.sqrt(2)
    assert float((fc.eval()(x).double() - ref).abs().max()) < 1e-5

def test_eval_mode_leaves_vectors_alone():
    D = _D(spectral_norm=True).eval()
    before = _tensors(D)
    D(*_inputs())
    _assert_same_tensors_dict(before, _tensors(D))
    D.train()(*_inputs())
    assert not torch.equal(before['b16.conv0.parametrizations.weight.0._u'], D.b16.conv0.parametrizations.weight[0]._u)

def _assert_same_tensors_dict(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name

def test_construction_leaves_rng_and_initial_weights():
    D0 = _D()
    rng0 = torch.get_rng_state()
    D1 = _D(spectral_norm=True)
    assert torch.equal(rng0, torch.get_rng_state()) # the start vectors come from a forked generator
    plain = lambda n: re.sub(r'parametrizations\.([^.]+)\.original$', r'\1', n)
    t1 = {plain(n): t for n, t in misc.named_params_and_buffers(D1) if not n.endswith(('._u', '._v'))}
    t0 = dict(misc.named_params_and_buffers(D0))
    assert t0.keys() == t1.keys()
    for name in t0:
        assert torch.equal(t0[name], t1[name]), name

def _round_trips(D):
    yield 'pickle', pickle.loads(pickle.dumps(D))
    yield 'deepcopy', copy.deepcopy(D)

def test_pickle_and_deepcopy_are_exact():
    D = _D(spectral_norm=True, attn_resolutions=[4]).train()
    img, c = _inputs()
    for _ in range(2):
        D(img, c)
    D.eval()
    for how, D2 in _round_trips(D):
        ref = D(img, c)
        assert type(D2.b16.conv0).__name__ == 'ParametrizedConv2dLayer', how
        assert type(D2.attn4).__name__ == 'ParametrizedSelfAttention', how
        assert not D2.training and not D2.b16.conv0.parametrizations.training, how
        _assert_same_tensors(D, D2)
        assert [n for n, _ in D.named_parameters()] == [n for n, _ in D2.named_parameters()], how
        assert torch.equal(D2(img, c), ref), how
        # The copy continues the power iteration exactly where the original is.
        D2.train()
        D.train()
        torch.manual_seed(3)
        out2 = D2(img, c)
        torch.manual_seed(3)
        out = D(img, c)
        assert torch.equal(out, out2), how
        _assert_same_tensors(D, D2)
        D.eval()
    # The live network still works after being pickled (pickling must not touch it).
    assert type(D.b16.conv0).__name__ == 'ParametrizedConv2dLayer'
    assert torch.isfinite(D(img, c)).all()

def test_pickle_loads_without_this_package(tmp_path):
    D = _D(spectral_norm=True, attn_resolutions=[8]).eval()
    img, c = _inputs()
    path = tmp_path / 'D.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(D=D, img=img, c=c, ref=D(img, c)), f)
    # A fresh interpreter that cannot import stylegan_som: the classes come from the source in the pickle.
    script = (
        'import sys, pickle, importlib.abc\n'
        'class Block(importlib.abc.MetaPathFinder):\n'
        '    def find_spec(self, name, path, target=None):\n'
        '        if name.split(".")[0] == "stylegan_som": raise ImportError("blocked: " + name)\n'
        'sys.meta_path.insert(0, Block())\n'
        'import torch\n'
        f'data = pickle.load(open({str(path)!r}, "rb"))\n'
        'D = data["D"]\n'
        'assert type(D.b16.conv0).__name__ == "ParametrizedConv2dLayer"\n'
        'assert torch.equal(D(data["img"], data["c"]), data["ref"])\n'
        'assert not [m for m in sys.modules if m.startswith("stylegan_som")]\n'
        'print("ok")\n')
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-c', script], cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and 'ok' in result.stdout, result.stderr[-3000:]

def test_frozen_layers_and_float16():
    D = _D(spectral_norm=True, block_kwargs=dict(freeze_layers=2), num_fp16_res=2, conv_clamp=256).train()
    frozen = D.b16.fromrgb.parametrizations.weight
    assert 'original' in dict(frozen.named_buffers()) and 'original' not in dict(frozen.named_parameters())
    img, c = _inputs()
    out = D(img, c)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert _sigma(D.b16.fromrgb, 'weight') < 1.06
    D2 = pickle.loads(pickle.dumps(D.eval()))
    assert torch.equal(D2(img, c), D(img, c))
    assert 'original' in dict(D2.b16.fromrgb.parametrizations.weight.named_buffers())

def test_training_steps_with_r1():
    D = _D(spectral_norm=True, attn_resolutions=[8]).train().requires_grad_(True)
    opt = torch.optim.Adam(D.parameters(), lr=0.01, betas=(0.0, 0.99))
    real, c = _inputs(seed=1)
    before = _tensors(D)
    for step in range(3):
        fake = torch.randn_like(real) * 0.5
        real_in = real.detach().requires_grad_(True)
        real_logits = D(real_in, c)
        r1_grad, = torch.autograd.grad(real_logits.sum(), real_in, create_graph=True) # double backward through SN
        loss = (torch.nn.functional.softplus(-real_logits).mean() + torch.nn.functional.softplus(D(fake, c)).mean()
            + r1_grad.square().sum(dim=[1, 2, 3]).mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        assert D.b8.conv0.parametrizations.weight.original.grad is not None
        assert D.attn8.gamma.grad is not None and float(D.attn8.gamma.grad) != 0
        opt.step()
        assert torch.isfinite(loss), step
    after = _tensors(D)
    assert not torch.equal(before['b8.conv0.parametrizations.weight.original'], after['b8.conv0.parametrizations.weight.original'])
    assert not torch.equal(before['b8.conv0.parametrizations.weight.0._u'], after['b8.conv0.parametrizations.weight.0._u'])
    for (name, t), m in _normalised(D).items():
        assert _sigma(m, t) < 1.2, (name, t)

def test_only_spectral_norm_pickles():
    D = _D(spectral_norm=True)
    class Double(torch.nn.Module):
        def forward(self, w):
            return w * 2
    parametrize.register_parametrization(D.b4.fc, 'weight', Double())
    with pytest.raises(TypeError, match='only spectral normalisation'):
        pickle.dumps(D)
    buf = io.BytesIO()
    with pytest.raises(TypeError):
        pickle.dump(D, buf)

#----------------------------------------------------------------------------
