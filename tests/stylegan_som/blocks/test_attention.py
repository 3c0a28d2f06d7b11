"""SAGAN self-attention block (stylegan_som/blocks/attention.py) and its insertion into the StyleGAN2 networks by
resolution (attn_resolutions): shapes, agreement with a softmax attention written out by hand, a zero gain that
leaves a network's output bit-identical while its gradient still flows, float16 and channels_last inputs,
validation, pickling."""

import io
import pickle

import numpy as np
import pytest
import torch

from stylegan_som import plugins
from stylegan_som.blocks.attention import SelfAttention
from stylegan_som.networks import stylegan2
from torch_utils import misc

#----------------------------------------------------------------------------

def _reference(block, x):
    """Softmax attention written out: logits q_i . k_j / sqrt(d), softmax over j, sum of v_j."""
    N, C, H, W = x.shape
    x64 = x.double().reshape(N, C, H * W)
    w = lambda name: getattr(block, name).detach().double() / np.sqrt(getattr(block, name).shape[1])
    q = torch.einsum('kc,ncl->nlk', w('query_weight'), x64)
    k = torch.einsum('kc,ncl->nlk', w('key_weight'), x64)
    v = torch.einsum('vc,ncl->nlv', w('value_weight'), x64)
    logits = torch.einsum('nik,njk->nij', q, k) / np.sqrt(q.shape[2])
    attn = torch.softmax(logits, dim=2)
    y = torch.einsum('cv,nlv->ncl', w('out_weight'), torch.einsum('nij,njv->niv', attn, v))
    return (x64 + float(block.gamma.detach()) * y).reshape(N, C, H, W)

def test_registered():
    assert plugins.BLOCKS.class_name('attention') == 'stylegan_som.blocks.attention.SelfAttention'
    block = plugins.BLOCKS.build('attention', channels=16)
    assert isinstance(block, SelfAttention)

def test_shapes_and_defaults():
    torch.manual_seed(0)
    block = SelfAttention(32)
    assert (block.key_channels, block.value_channels) == (4, 16)
    assert float(block.gamma.detach()) == 0
    x = torch.randn([3, 32, 4, 6]) # not square
    y = block(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    block = SelfAttention(8, key_channels=3, value_channels=5)
    assert tuple(block.query_weight.shape) == (3, 8) and tuple(block.out_weight.shape) == (8, 5)
    assert block(torch.randn([2, 8, 2, 2])).shape == (2, 8, 2, 2)
    with pytest.raises(ValueError, match='positive'):
        SelfAttention(8, key_channels=0)

def test_matches_written_out_softmax_attention():
    torch.manual_seed(1)
    block = SelfAttention(16)
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn([2, 16, 5, 3])
    with torch.no_grad():
        y = block(x)
    ref = _reference(block, x)
    assert float((y.double() - ref).abs().max()) < 1e-5
    assert float((y - x).abs().max()) > 0.05 # the attention term is really there

def test_zero_gain_is_identity_and_gain_gets_gradient():
    torch.manual_seed(2)
    block = SelfAttention(16)
    x = torch.randn([2, 16, 4, 4])
    y = block(x)
    assert torch.equal(y, x)
    r = torch.randn_like(x)
    (y * r).sum().backward()
    # d/dgamma of sum(r * (x + gamma * a)) = sum(r * a), a = the attention term.
    with torch.no_grad():
        block.gamma.fill_(1)
        a = block(x) - x
    assert block.gamma.grad is not None
    assert abs(float(block.gamma.grad) - float((r * a).sum())) < 1e-4 * max(1, abs(float((r * a).sum())))
    assert float(block.gamma.grad) != 0

def test_float16_and_channels_last():
    torch.manual_seed(3)
    block = SelfAttention(16).requires_grad_(False)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    x = torch.randn([2, 16, 4, 4])
    ref = block(x)
    xh = x.half().to(memory_format=torch.channels_last)
    yh = block(xh)
    assert yh.dtype == torch.float16 and yh.is_contiguous(memory_format=torch.channels_last)
    assert float((yh.float() - ref).abs().max()) < 2e-2

#----------------------------------------------------------------------------
# In the StyleGAN2 networks.

G_ARGS = dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
    mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=32))
D_ARGS = dict(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=32,
    epilogue_kwargs=dict(mbstd_group_size=2))

def _G(attn=(), **synthesis):
    torch.manual_seed(0)
    kwargs = dict(G_ARGS, synthesis_kwargs=dict(G_ARGS['synthesis_kwargs'], attn_resolutions=list(attn), **synthesis))
    return stylegan2.Generator(**kwargs).eval().requires_grad_(False)

def _D(attn=(), **kwargs):
    torch.manual_seed(0)
    return stylegan2.Discriminator(**D_ARGS, attn_resolutions=list(attn), **kwargs).eval().requires_grad_(False)

def _copy_all(src, dst):
    """Copy src's tensors into dst by name; every tensor of src must exist in dst."""
    names = {n for n, _ in misc.named_params_and_buffers(dst)}
    assert {n for n, _ in misc.named_params_and_buffers(src)} <= names
    misc.copy_params_and_buffers(src, dst, require_all=False)

def test_no_attention_is_upstream_layout():
    assert set(_G().state_dict()) == set(stylegan2.Generator(**G_ARGS).state_dict())
    assert set(_D().state_dict()) == set(stylegan2.Discriminator(**D_ARGS).state_dict())

def test_attached_attention_leaves_outputs_bit_identical():
    G0, G1 = _G(), _G(attn=[4, 8])
    D0, D1 = _D(), _D(attn=[4, 8])
    assert {n for n, _ in G1.synthesis.named_children() if n.startswith('attn')} == {'attn4', 'attn8'}
    assert {n for n, _ in D1.named_children() if n.startswith('attn')} == {'attn4', 'attn8'}
    _copy_all(G0, G1)
    _copy_all(D0, D1)
    z = torch.randn([4, G0.z_dim])
    for noise_mode in ['const', 'random']:
        torch.manual_seed(5)
        img0 = G0(z, None, noise_mode=noise_mode)
        torch.manual_seed(5)
        img1 = G1(z, None, noise_mode=noise_mode)
        assert torch.equal(img0, img1), noise_mode
    assert torch.equal(D0(img0, None), D1(img0, None))

    # The attention really sits on the path: with a non-zero gain the outputs change, and at zero gain the
    # gradient reaches it.
    G1.train()
    G1.requires_grad_(True)
    G1(z, None, noise_mode='const').square().sum().backward()
    assert G1.synthesis.attn4.gamma.grad is not None and float(G1.synthesis.attn4.gamma.grad) != 0
    with torch.no_grad():
        G1.synthesis.attn8.gamma.fill_(1)
        D1.attn8.gamma.fill_(1)
    G1.eval()
    assert not torch.equal(G1(z, None, noise_mode='const'), img0)
    assert not torch.equal(D1(img0, None), D0(img0, None))

def test_attention_in_float16_blocks():
    # fp16 at the two top resolutions: the 8x8 features reach attn8 in float16.
    G = _G(attn=[8], num_fp16_res=2, conv_clamp=256)
    D = _D(attn=[8], num_fp16_res=2, conv_clamp=256)
    with torch.no_grad():
        G.synthesis.attn8.gamma.fill_(1)
        D.attn8.gamma.fill_(1)
    seen = []
    G.synthesis.attn8.register_forward_hook(lambda _m, inputs, out: seen.append((inputs[0].dtype, out.dtype)))
    z = torch.randn([2, G.z_dim])
    img = G(z, None, noise_mode='const')
    ref = G(z, None, noise_mode='const', force_fp32=True)
    assert seen[0] == (torch.float16, torch.float16) and seen[1] == (torch.float32, torch.float32)
    assert img.dtype == torch.float32 and torch.isfinite(img).all()
    assert float((img - ref).abs().max()) < 0.05 * float(ref.abs().max())
    logits = D(img, None)
    assert torch.isfinite(logits).all()
    assert float((logits - D(img, None, force_fp32=True)).abs().max()) < 0.05 * max(1, float(logits.abs().max()))

@pytest.mark.parametrize('net,bad', [('G', 16), ('G', 3), ('G', '8'), ('D', 16), ('D', 2), ('D', True)])
def test_bad_resolutions(net, bad):
    with pytest.raises(ValueError, match=f'attention resolution {bad!r}'):
        _G(attn=[bad]) if net == 'G' else _D(attn=[bad])

def test_pickle_round_trip_is_self_contained():
    G = _G(attn=[8])
    with torch.no_grad():
        G.synthesis.attn8.gamma.fill_(0.5)
    data = pickle.dumps(G)
    modules = set()
    class Spy(pickle.Unpickler):
        def find_class(self, module, name):
            modules.add(module)
            return super().find_class(module, name)
    G2 = Spy(io.BytesIO(data)).load()
    assert not [m for m in modules if m.startswith('stylegan_som')], modules # the block's source travels along
    assert type(G2.synthesis.attn8).__name__ == 'SelfAttention'
    z = torch.randn([2, G.z_dim])
    assert torch.equal(G(z, None, noise_mode='const'), G2(z, None, noise_mode='const'))

#----------------------------------------------------------------------------
