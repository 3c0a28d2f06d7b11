"""Shared parts of the small backbones (stylegan_som/networks/small.py): spectral normalisation, the mapping
network, resolutions, head and attention plumbing, and the import rule that keeps pickles upstream-loadable."""

import ast
import copy
import os
import pickle

import numpy as np
import pytest
import torch

from torch_utils import misc
from stylegan_som.networks import small

#----------------------------------------------------------------------------

def test_imports_only_what_upstream_has():
    # The module's source travels inside pickles and runs against upstream's packages when loaded there.
    tree = ast.parse(open(small.__file__).read())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split('.')[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, 'relative imports would not resolve in a pickle'
            roots.add(node.module.split('.')[0])
    assert roots <= {'torch', 'numpy', 'dnnlib', 'torch_utils'}, roots

@pytest.mark.parametrize('res, r0', [(32, 4), (64, 4), (28, 7), (16, 4), (8, 4), (4, 4), (14, 7), (1, 1), (6, 6)])
def test_start_resolution(res, r0):
    assert small.start_resolution(res) == r0

#----------------------------------------------------------------------------
# Spectral normalisation.

def _with_singular_values(weight, values, seed=0):
    """Overwrite weight [out, ...] with U diag(values) V^T (random orthogonal U, V): a known spectrum."""
    gen = torch.Generator().manual_seed(seed)
    out, fan_in = weight.shape[0], weight[0].numel()
    u, _ = torch.linalg.qr(torch.randn(out, out, generator=gen))
    v, _ = torch.linalg.qr(torch.randn(fan_in, fan_in, generator=gen))
    s = torch.zeros(out, fan_in)
    s[range(len(values)), range(len(values))] = torch.tensor(values)
    with torch.no_grad():
        weight.copy_((u @ s @ v.t()).reshape(weight.shape))

def test_spectral_norm_divides_by_largest_singular_value():
    torch.manual_seed(0)
    layer = small.Linear(7, 5, spectral_norm=True).train()
    _with_singular_values(layer.weight, [4.0, 1.0, 0.5, 0.25, 0.1])
    x = torch.randn(3, 7)
    for _ in range(15): # power iteration, one step per training forward; converges like (1/4)^(2 steps)
        layer(x)
    expected = x @ (layer.weight / 4.0).t() + layer.bias
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)

def test_spectral_norm_conv_uses_flattened_kernel():
    torch.manual_seed(1)
    conv = small.Conv2d(2, 3, 3, padding=1, spectral_norm=True).train()
    _with_singular_values(conv.weight, [2.0, 0.5, 0.25]) # of the [3, 2*3*3] matrix
    x = torch.randn(1, 2, 4, 4)
    for _ in range(15):
        conv(x)
    expected = torch.nn.functional.conv2d(x, conv.weight / 2.0, conv.bias, padding=1)
    torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)

def test_spectral_norm_eval_does_not_update_u_and_gradients_flow():
    layer = small.Linear(4, 3, spectral_norm=True)
    u0 = layer.weight_u.clone()
    layer.eval()(torch.randn(2, 4))
    assert torch.equal(layer.weight_u, u0)
    layer.train()
    out = layer(torch.randn(2, 4)).sum()
    out.backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
    assert not torch.equal(layer.weight_u, u0)

def test_no_spectral_norm_is_a_plain_layer():
    layer = small.Linear(4, 3)
    assert 'weight_u' not in dict(layer.named_buffers())
    x = torch.randn(2, 4)
    torch.testing.assert_close(layer(x), x @ layer.weight.t() + layer.bias)

def test_spectral_norm_pickles_with_its_power_iteration_state():
    layer = small.Conv2d(2, 3, 3, spectral_norm=True).train()
    layer(torch.randn(1, 2, 5, 5))
    clone = pickle.loads(pickle.dumps(layer))
    assert torch.equal(clone.weight_u, layer.weight_u)
    x = torch.randn(1, 2, 5, 5)
    assert torch.equal(clone.eval()(x), layer.eval()(x))

#----------------------------------------------------------------------------
# Mapping.

def test_mapping_identity_and_truncation():
    m = small.MappingNetwork(z_dim=6, c_dim=0, w_dim=6).train()
    assert m.identity and len(list(m.parameters())) == 0
    z = torch.randn(5, 6)
    ws = m(z, None)
    assert ws.shape == (5, 1, 6)
    torch.testing.assert_close(ws[:, 0], z)
    # w_avg: running mean with beta 0.995 from zero.
    torch.testing.assert_close(m.w_avg, z.mean(0) * 0.005)
    m.eval()
    avg = m.w_avg.clone()
    psi = 0.5
    torch.testing.assert_close(m(z, None, truncation_psi=psi)[:, 0], avg + psi * (z - avg))
    assert torch.equal(m.w_avg, avg) # eval: no update
    m.train()
    m(z, None, skip_w_avg_update=True)
    assert torch.equal(m.w_avg, avg)

def test_mapping_with_labels():
    torch.manual_seed(0)
    m = small.MappingNetwork(z_dim=4, c_dim=3, w_dim=8, num_layers=2)
    assert not m.identity
    z = torch.randn(2, 4)
    c = torch.eye(3)[:2]
    ws = m(z, c)
    assert ws.shape == (2, 1, 8)
    assert not torch.allclose(m(z, torch.eye(3)[1:3]), ws) # the label matters
    with pytest.raises(AssertionError):
        m(z, torch.zeros(2, 2))

def test_mapping_lr_multiplier_same_function_slower_steps():
    z, c = torch.randn(5, 4), torch.eye(3)[[0, 1, 2, 0, 1]]
    nets = {}
    for g in (1, 0.01):
        torch.manual_seed(0)
        nets[g] = small.MappingNetwork(z_dim=4, c_dim=3, w_dim=8, num_layers=2, lr_multiplier=g)
    torch.testing.assert_close(nets[0.01](z, c), nets[1](z, c)) # the same initial function
    moved = {}
    for g, m in nets.items():
        before = m.fc1.weight.detach() * g
        opt = torch.optim.Adam(m.parameters(), lr=0.1)
        m(z, c).square().sum().backward()
        opt.step()
        moved[g] = float((m.fc1.weight.detach() * g - before).abs().max()) # Adam's first step: lr per weight
    assert moved[1] == pytest.approx(0.1, rel=1e-3) and moved[0.01] == pytest.approx(0.001, rel=1e-3)

def test_mapping_layers_train_under_bf16_autocast():
    # --cfg=stacked-mnist trains in bf16 autocast; the running mean w_avg stays float32.
    m = small.MappingNetwork(z_dim=4, c_dim=0, w_dim=8, num_layers=3).train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        ws = m(torch.randn(5, 4), None)
    assert ws.dtype == torch.bfloat16 and m.w_avg.dtype == torch.float32
    torch.testing.assert_close(m.w_avg, ws[:, 0].float().mean(0) * 0.005)

#----------------------------------------------------------------------------
# Head and attention plugins.

def test_default_heads():
    plain = small.build_head(10, 3, 0, {})
    cond = small.build_head(10, 3, 4, {})
    assert type(plain).__name__ == 'LinearHead' and type(cond).__name__ == 'ProjectionHead'
    assert plain(torch.randn(2, 10), torch.zeros(2, 0)).shape == (2, 3)
    assert cond(torch.randn(2, 10), torch.eye(4)[:2]).shape == (2, 3)
    named = small.build_head(10, 2, 0, dict(class_name='stylegan_som.heads.projection.ProjectionHead'))
    assert type(named).__name__ == 'ProjectionHead'

def test_default_attention_starts_as_identity():
    block = small.build_attention(8, {})
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(block(x), x) # zero-initialised gain

def test_check_attn_rejects_unknown_resolution():
    with pytest.raises(ValueError, match='attn_resolutions'):
        small.DCGANSynthesis(w_dim=4, img_resolution=16, img_channels=1, attn_resolutions=[3])
    with pytest.raises(TypeError, match='attn_resolutions'): # no feature maps, no attention
        small.MLPDiscriminator(c_dim=0, img_resolution=1, img_channels=2, attn_resolutions=[1])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('arch, res, channels, D_kwargs', [
    ('dcgan', 28, 3, dict(channel_base=128, channel_max=8)),
    ('resnet', 16, 3, dict(channel_base=128, channel_max=8)),
    ('resnet', 16, 3, dict(channel_base=128, channel_max=8, num_final_blocks=0)),
    ('mlp', 1, 2, dict(layer_features=16, num_layers=2)),
    ('mlp', 1, 2, dict(layer_features=16, num_layers=0))])
def test_minibatch_stddev_in_every_discriminator(arch, res, channels, D_kwargs):
    # --mbstd-group on any small backbone: with the statistic a sample's score depends on its group partner.
    from . import _common as common
    _, D = common.build(arch, res, channels, D_kwargs=dict(D_kwargs, mbstd_group_size=2))
    _, D0 = common.build(arch, res, channels, D_kwargs=D_kwargs)
    assert sum(p.numel() for p in D.parameters()) > sum(p.numel() for p in D0.parameters()) # one more input
    D.eval(), D0.eval()
    img, c = torch.randn(4, channels, res, res), torch.zeros(4, 0)
    alike = img.clone()
    alike[2:] = alike[:2] # partners (0, 2) and (1, 3) identical: no spread within their groups
    assert not torch.allclose(D(img, c)[:2], D(alike, c)[:2])
    torch.testing.assert_close(D0(img, c)[:2], D0(alike, c)[:2])
    assert D(img, c).shape == (4, 1)
    with pytest.raises(ValueError, match='not divisible'):
        D(img[:3], c[:3])
    copy.deepcopy(D)(img, c) # and it pickles like the rest
    pickle.loads(pickle.dumps(D))(img, c)

@pytest.mark.parametrize('arch, res, channels, D_kwargs', [
    ('dcgan', 28, 3, dict(channel_base=128, channel_max=8)),
    ('resnet', 16, 3, dict(channel_base=128, channel_max=8)),
    ('resnet', 16, 3, dict(channel_base=128, channel_max=8, num_final_blocks=1, mbstd_group_size=2)),
    ('mlp', 1, 2, dict(layer_features=16, num_layers=2)),
    ('mlp', 1, 2, dict(layer_features=16, num_layers=0))])
def test_packing_in_every_discriminator(arch, res, channels, D_kwargs):
    # --d-pack (PacGAN): one score per pack of consecutive samples, depending on every sample of its pack only.
    from . import _common as common
    _, D = common.build(arch, res, channels, D_kwargs=dict(D_kwargs, pack_size=2, num_heads=3))
    D.eval()
    img, c = torch.randn(8, channels, res, res), torch.zeros(8, 0)
    logits = D(img, c)
    assert logits.shape == (4, 3)
    for idx in (0, 1): # either member of the first pack changes its score
        other = img.clone()
        other[idx] = torch.randn(channels, res, res)
        assert not torch.allclose(D(other, c)[0], logits[0])
    if not D_kwargs.get('mbstd_group_size'): # else the statistic couples the packs of one group, by design
        other = img.clone()
        other[2:] = torch.randn(6, channels, res, res)
        torch.testing.assert_close(D(other, c)[0], logits[0]) # the other packs do not
    with pytest.raises(ValueError, match='not a multiple'):
        D(img[:7], c[:7])
    torch.testing.assert_close(pickle.loads(pickle.dumps(D))(img, c), logits)
    with pytest.raises(ValueError, match='conditional'):
        common.build(arch, res, channels, c_dim=2, D_kwargs=dict(D_kwargs, pack_size=2))
    with pytest.raises(ValueError, match='positive integer'):
        common.build(arch, res, channels, D_kwargs=dict(D_kwargs, pack_size=0))
    _, D1 = common.build(arch, res, channels, D_kwargs=dict(D_kwargs, pack_size=1)) # 1 is the plain network
    _, D0 = common.build(arch, res, channels, D_kwargs=D_kwargs)
    D1.eval(), D0.eval()
    torch.testing.assert_close(D1(img, c), D0(img, c))

#----------------------------------------------------------------------------
# Equalised learning rate (--eq-lr) and CGAN's input conditioning (--d-head=concat).

_ARCHS = [('dcgan', 16, 3, dict(channel_base=128, channel_max=8)), ('resnet', 16, 3, dict(channel_base=128, channel_max=8)),
    ('mlp', 1, 2, dict(layer_features=16, num_layers=2))]

def _layers(module):
    """Every convolution and linear layer of a network, except the heads' (equalised already) and attention."""
    return [(name, m) for name, m in module.named_modules() if not name.startswith('head') and
        isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d, small.Linear, small.Conv2d))]

def test_equalised_layers_by_hand():
    torch.manual_seed(0)
    layer = small.EqLinear(4, 2)
    assert layer.weight_gain == 0.5 and float(layer.bias.detach().abs().sum()) == 0 # 1/sqrt(fan-in 4), zero bias
    x = torch.randn(3, 4)
    torch.testing.assert_close(layer(x), x @ (layer.weight * 0.5).t())
    slow = small.EqLinear(4, 2, lr_multiplier=0.01) # stored at 100x, applied at 0.01/sqrt(4): the same function scale
    assert slow.weight_gain == pytest.approx(0.005) and slow.weight.std() > 10
    conv = small.EqConv2d(3, 5, 3, padding=1)
    assert conv.weight_gain == pytest.approx(1 / np.sqrt(27))
    img = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(conv(img), torch.nn.functional.conv2d(img, conv.weight / np.sqrt(27), conv.bias, padding=1))
    up = small.EqConvTranspose2d(6, 2, 4, stride=2, padding=1) # weight [in 6, out 2, 4, 4]: fan-in 6 * 16
    assert up.weight_gain == pytest.approx(1 / np.sqrt(96))
    torch.testing.assert_close(up(torch.ones(1, 6, 2, 2)), torch.nn.functional.conv_transpose2d(torch.ones(1, 6, 2, 2),
        up.weight / np.sqrt(96), up.bias, stride=2, padding=1))
    d = small.Conv2d(3, 5, 3, padding=1, eq_lr=True) # D's layer, also with spectral norm
    torch.testing.assert_close(d(img), torch.nn.functional.conv2d(img, d.weight / np.sqrt(27), d.bias, padding=1))
    # Spectral norm divides the gain out again: the same function as the plain layer with the same weights.
    sn = small.Linear(4, 2, spectral_norm=True, eq_lr=True).eval()
    plain = small.Linear(4, 2, spectral_norm=True).eval()
    plain.load_state_dict(sn.state_dict())
    torch.testing.assert_close(sn(x), plain(x))

@pytest.mark.parametrize('arch, res, channels, D_kwargs', _ARCHS)
def test_eq_lr_in_every_small_backbone(arch, res, channels, D_kwargs):
    from . import _common as common
    eq = dict(eq_lr=True)
    G, D = common.build(arch, res, channels, c_dim=3, G_kwargs=dict(synthesis_kwargs=eq, mapping_kwargs=dict(eq)),
        D_kwargs=dict(D_kwargs, **eq))
    G0, D0 = common.build(arch, res, channels, c_dim=3, D_kwargs=D_kwargs)
    for net, plain in ((G, G0), (D, D0)):
        assert [n for n, _ in _layers(net)] == [n for n, _ in _layers(plain)] # same layers, names and shapes
        assert [p.shape for p in net.parameters()] == [p.shape for p in plain.parameters()]
        for name, layer in _layers(net):
            fan_in = layer.weight.shape[0] if isinstance(layer, torch.nn.ConvTranspose2d) else layer.weight.shape[1]
            fan_in *= layer.weight[0, 0].numel() if layer.weight.ndim == 4 else 1
            assert layer.weight_gain == pytest.approx(1 / np.sqrt(fan_in)), name # He's constant, at run time
            if layer.weight.numel() >= 200: # stored unit-variance
                assert 0.8 < float(layer.weight.std()) < 1.2, name
        for name, layer in _layers(plain): # the default keeps torch's layers
            assert getattr(layer, 'weight_gain', 1) == 1 and float(layer.weight.std()) < 0.8, name
    img, c = common.check_generator_interface(G, n=4)
    common.check_roundtrip(G, D, img.detach(), c)
    # The step that Adam takes on a stored weight moves the function by 1/sqrt(fan_in) of it: scaling a stored
    # weight by a factor changes the layer's output linearly, as without eq_lr, but through the gain.
    name, layer = _layers(G.synthesis)[0]
    x = torch.randn(2, *((layer.in_features,) if isinstance(layer, torch.nn.Linear) else (layer.in_channels, 4, 4)))
    base = layer(x)
    with torch.no_grad():
        layer.weight.mul_(2)
    torch.testing.assert_close(layer(x) - layer.bias.view(-1, *([1] * (x.ndim - 2))), 2 * (base - layer.bias.view(-1, *([1] * (x.ndim - 2)))))

@pytest.mark.parametrize('arch, res, channels, D_kwargs', _ARCHS)
def test_concat_labels_in_every_small_discriminator(arch, res, channels, D_kwargs):
    from . import _common as common
    _, D = common.build(arch, res, channels, c_dim=3, D_kwargs=dict(D_kwargs, concat_labels=True, num_heads=2))
    _, D0 = common.build(arch, res, channels, c_dim=3, D_kwargs=D_kwargs)
    D.eval()
    first = _layers(D)[0][1]
    first0 = _layers(D0)[0][1]
    assert first.weight.shape[1] == first0.weight.shape[1] + 3 # the labels enter with the input
    assert type(D.head).__name__ == 'LinearHead' and type(D0.head).__name__ == 'ProjectionHead' # unconditional head
    img = torch.randn(4, channels, res, res)
    c = torch.eye(3)[[0, 1, 2, 0]]
    out = D(img, c)
    assert out.shape == (4, 2)
    assert not torch.allclose(D(img, torch.eye(3)[[1, 2, 0, 1]]), out) # another class, another score
    # By hand: the input is the image and, per label component, a constant map (MLP: a vector) of its value.
    x = small.concat_labels(img, c, 3)
    assert x.shape == (4, channels + 3, res, res) and torch.equal(x[:, channels:, 0, 0], c) and torch.equal(x[:, channels:].amax([2, 3]), c)
    with pytest.raises(ValueError, match='labels of dimension 3'):
        D(img, None)
    torch.testing.assert_close(pickle.loads(pickle.dumps(D))(img, c), out)
