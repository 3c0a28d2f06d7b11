"""StyleGAN2 discriminator with K heads and head plugins: shapes, names, and each head equal to a one-head
discriminator holding that head's slice of the final layer."""

import pickle

import pytest
import torch

from stylegan_som.networks import stylegan2 as net

#----------------------------------------------------------------------------

def make_D(c_dim=0, **kwargs):
    return net.Discriminator(c_dim=c_dim, img_resolution=16, img_channels=3, channel_base=128, channel_max=16,
        epilogue_kwargs=dict(mbstd_group_size=2), **kwargs)

def randomize_(module, seed=0, scale=0.3):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return module

def inputs(c_dim=0, n=4):
    gen = torch.Generator().manual_seed(1)
    img = torch.randn([n, 3, 16, 16], generator=gen)
    c = torch.eye(max(c_dim, 1))[torch.arange(n) % max(c_dim, 1)][:, :c_dim]
    return img, c

def copy_trunk(src, dst):
    # Everything but the final layer.
    state = {k: v for k, v in src.state_dict().items() if not k.startswith('b4.out.')}
    missing = dst.load_state_dict(state, strict=False).missing_keys
    assert all(k.startswith('b4.out.') for k in missing), missing

#----------------------------------------------------------------------------

def test_default_is_one_head():
    D = make_D()
    assert D.num_heads == 1 and D.b4.out.weight.shape == (1, 16)
    assert 'head_plugin' not in dict(D.named_modules()) # plain attribute, no extra module

def test_unconditional_heads_are_independent_rows():
    torch.manual_seed(0)
    K = 3
    D = randomize_(make_D(num_heads=K))
    assert D.num_heads == K and D.b4.out.weight.shape == (K, 16) and D.b4.out.bias.shape == (K,)
    img, c = inputs()
    out = D(img, c)
    assert out.shape == (4, K)
    for k in range(K):
        one = make_D()
        copy_trunk(D, one)
        with torch.no_grad():
            one.b4.out.weight.copy_(D.b4.out.weight[k:k + 1])
            one.b4.out.bias.copy_(D.b4.out.bias[k:k + 1])
        assert torch.allclose(one(img, c)[:, 0], out[:, k], atol=1e-6), k

def test_cmap_heads_each_project():
    torch.manual_seed(0)
    K, C = 2, 3
    D = randomize_(make_D(c_dim=C, num_heads=K))
    cmap_dim = D.b4.cmap_dim
    assert cmap_dim == 16 and D.b4.out.weight.shape == (K * cmap_dim, 16)
    img, c = inputs(C)
    out = D(img, c)
    assert out.shape == (4, K)
    for k in range(K):
        one = make_D(c_dim=C)
        copy_trunk(D, one)
        rows = slice(k * cmap_dim, (k + 1) * cmap_dim)
        with torch.no_grad():
            one.b4.out.weight.copy_(D.b4.out.weight[rows])
            one.b4.out.bias.copy_(D.b4.out.bias[rows])
        assert torch.allclose(one(img, c)[:, 0], out[:, k], atol=1e-5), k

def test_linear_plugin_is_upstream_layout():
    torch.manual_seed(0)
    ref = randomize_(make_D())
    D = make_D(head_kwargs=dict(class_name='stylegan_som.heads.linear.LinearHead'))
    assert type(D.b4.out).__name__ == 'LinearHead'
    assert list(D.state_dict()) == list(ref.state_dict())
    D.load_state_dict(ref.state_dict())
    img, c = inputs()
    assert torch.equal(D(img, c), ref(img, c))

def test_projection_plugin():
    torch.manual_seed(0)
    K, C = 2, 3
    D = randomize_(make_D(c_dim=C, num_heads=K, head_kwargs=dict(class_name='stylegan_som.heads.projection.ProjectionHead')))
    assert not hasattr(D, 'mapping') and D.b4.cmap_dim == 0 # the head takes the labels, no cmap path
    assert D.b4.out.c_dim == C and D.b4.out.num_heads == K
    assert D.b4.out.embed.shape == (K * 16, C)
    features = []
    hook = D.b4.fc.register_forward_hook(lambda _mod, _inp, out: features.append(out))
    img, c = inputs(C)
    out = D(img, c)
    hook.remove()
    h = features[0]
    V = D.b4.out.embed.reshape(K, 16, C)
    expected = torch.stack([h @ D.b4.out.weight[k] / 4 + D.b4.out.bias[k] + ((c @ V[k].t()) * h).sum(1) / 4
        for k in range(K)], dim=1)
    assert torch.allclose(out, expected, atol=1e-5)
    # The label changes the score.
    assert not torch.allclose(D(img, c.roll(1, dims=1)), out)
    # The whole network, head included, pickles and reloads.
    D2 = pickle.loads(pickle.dumps(D))
    assert torch.equal(D2(img, c), out)
    assert D2.init_kwargs.head_kwargs == dict(class_name='stylegan_som.heads.projection.ProjectionHead')

def test_bad_num_heads():
    with pytest.raises(ValueError, match='num_heads'):
        make_D(num_heads=0)

#----------------------------------------------------------------------------
