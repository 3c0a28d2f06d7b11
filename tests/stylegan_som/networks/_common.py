"""Checks shared by the tests of the small backbones (dcgan, resnet, mlp)."""

import copy
import pickle

import torch

import dnnlib
from torch_utils import misc

def build(arch, res, channels, c_dim=0, z_dim=8, G_kwargs={}, D_kwargs={}):
    torch.manual_seed(0)
    G = dnnlib.util.construct_class_by_name(class_name=f'stylegan_som.networks.{arch}.Generator', z_dim=z_dim,
        c_dim=c_dim, w_dim=z_dim, img_resolution=res, img_channels=channels, **G_kwargs)
    D = dnnlib.util.construct_class_by_name(class_name=f'stylegan_som.networks.{arch}.Discriminator', c_dim=c_dim,
        img_resolution=res, img_channels=channels, **D_kwargs)
    return G, D

def check_generator_interface(G, n=3):
    z = torch.randn(n, G.z_dim)
    c = torch.eye(max(G.c_dim, 1))[torch.arange(n) % max(G.c_dim, 1)][:, :G.c_dim]
    assert G.num_ws == 1 and G.mapping.num_ws == 1
    ws = G.mapping(z, c)
    assert ws.shape == (n, 1, G.w_dim)
    img = G.synthesis(ws, noise_mode='const', force_fp32=True) # StyleGAN2 options are accepted
    assert img.shape == (n, G.img_channels, G.img_resolution, G.img_resolution)
    G.eval()
    torch.testing.assert_close(G(z, c, noise_mode='random'), G.synthesis(G.mapping(z, c)))
    return img, c

def check_roundtrip(G, D, img, c):
    G.eval()
    D.eval()
    G2 = pickle.loads(pickle.dumps(G))
    D2 = pickle.loads(pickle.dumps(D))
    z = torch.randn(img.shape[0], G.z_dim)
    with torch.no_grad():
        assert torch.equal(G(z, c), G2(z, c))
        assert torch.equal(D(img, c), D2(img, c))
    # Persistent classes record their init kwargs, so a pickle can be rebuilt and its parameters copied by name.
    G3 = type(G2)(*G2.init_args, **G2.init_kwargs)
    misc.copy_params_and_buffers(G2, G3, require_all=True)
    with torch.no_grad():
        assert torch.equal(G3.eval()(z, c), G(z, c))
    assert pickle.loads(pickle.dumps(G)).__class__.__name__ == type(G).__name__

def check_heads_share_trunk(D, img, c, num_heads):
    D.eval() # training-mode forwards advance the spectral-norm power iteration
    out = D(img, c)
    assert out.shape == (img.shape[0], num_heads)
    # One trunk: the K logits are the head applied to the same features.
    feats = D.features(img)
    torch.testing.assert_close(out, D.head(feats, c))
    assert D.head.num_heads == num_heads

def check_trains(G, D, c_dim=0, steps=2):
    """A few non-saturating steps change both networks and keep everything finite."""
    optG = torch.optim.SGD(G.parameters(), lr=1e-2)
    optD = torch.optim.SGD(D.parameters(), lr=1e-2)
    before = copy.deepcopy(G.state_dict()), copy.deepcopy(D.state_dict())
    G.train()
    D.train()
    for _ in range(steps):
        z = torch.randn(4, G.z_dim)
        c = torch.eye(max(c_dim, 1))[:4 % max(c_dim, 1) or 1].repeat(4, 1)[:4, :c_dim]
        loss_d = torch.nn.functional.softplus(D(G(z, c).detach(), c)).mean() + \
            torch.nn.functional.softplus(-D(torch.randn(4, G.img_channels, G.img_resolution, G.img_resolution), c)).mean()
        optD.zero_grad()
        loss_d.backward()
        optD.step()
        loss_g = torch.nn.functional.softplus(-D(G(z, c), c)).mean()
        optG.zero_grad()
        loss_g.backward()
        optG.step()
        assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    assert any(not torch.equal(v, G.state_dict()[k]) for k, v in before[0].items() if v.is_floating_point())
    assert any(not torch.equal(v, D.state_dict()[k]) for k, v in before[1].items() if v.is_floating_point())
