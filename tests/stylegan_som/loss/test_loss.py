"""StyleGAN2Loss with objectives and SOM heads, on tiny linear stand-in networks whose gradients can be written
down: one head reproduces upstream's loss bit for bit and every objective's textbook form; several heads weigh
reals by their neighbourhood on the map; penalties, weight clipping and the reported statistics."""

import math

import pytest
import torch

from stylegan_som import plugins
from stylegan_som import som
from stylegan_som.loss import StyleGAN2Loss
from torch_utils import training_stats

CPU = torch.device('cpu')
sp = torch.nn.functional.softplus

class _Map(torch.nn.Module):
    def __init__(self, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.fc = torch.nn.Linear(3, 3)
    def forward(self, z, c, skip_w_avg_update=False):
        _ = c, skip_w_avg_update
        return self.fc(z).unsqueeze(1).repeat(1, self.num_ws, 1)

class _Synth(torch.nn.Module):
    def __init__(self, num_ws):
        super().__init__()
        self.fc = torch.nn.Linear(3 * num_ws, 3 * 4 * 4)
    def forward(self, ws):
        return self.fc(ws.flatten(1)).reshape(-1, 3, 4, 4)

class _G(torch.nn.Module):
    def __init__(self, num_ws=2):
        super().__init__()
        self.mapping = _Map(num_ws)
        self.synthesis = _Synth(num_ws)

class _D(torch.nn.Module):
    """Linear multi-head D, optionally with a projection term <embed(c), x> per head."""
    def __init__(self, num_heads=1, c_dim=0):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 4 * 4, num_heads)
        self.embed = torch.nn.Linear(c_dim, 3 * 4 * 4, bias=False) if c_dim else None
    def forward(self, img, c):
        x = img.flatten(1)
        out = self.fc(x)
        if self.embed is not None:
            out = out + (self.embed(c) * x).sum(1, keepdim=True)
        return out

def _setup(num_heads=1, seed=0, c_dim=0, num_ws=2, **loss_kwargs):
    torch.manual_seed(seed)
    G, D = _G(num_ws), _D(num_heads, c_dim)
    loss_kwargs = dict(dict(style_mixing_prob=0, r1_gamma=0, pl_weight=0), **loss_kwargs)
    loss = StyleGAN2Loss(device=CPU, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, **loss_kwargs)
    z = torch.randn(6, 3)
    c = torch.nn.functional.one_hot(torch.arange(6) % 2, 2).float() if c_dim else torch.zeros(6, 0)
    real = torch.randn(6, 3, 4, 4)
    return G, D, loss, z, c, real

def _grads(module, fn):
    module.zero_grad(set_to_none=True)
    module.requires_grad_(True)
    fn()
    module.requires_grad_(False)
    grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]
    module.zero_grad(set_to_none=True)
    return grads

def _assert_close(got, expected, atol=1e-6):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert torch.allclose(g, e, atol=atol), (g - e).abs().max()

#----------------------------------------------------------------------------
# One head.

def test_single_head_stylegan2_is_upstreams_computation_bit_for_bit():
    G, D, loss, z, c, real = _setup(r1_gamma=3.0)
    got_D = _grads(D, lambda: loss.accumulate_gradients('Dboth', real, c, z, c, sync=True, gain=2.0))
    got_G = _grads(G, lambda: loss.accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.0))

    def upstream_D():
        fake = G.synthesis(G.mapping(z, c))
        sp(D(fake, c)).mean().mul(2.0).backward()
        x = real.detach().requires_grad_(True)
        logits = D(x, c)
        r1_grads = torch.autograd.grad(outputs=[logits.sum()], inputs=[x], create_graph=True, only_inputs=True)[0]
        r1 = r1_grads.square().sum([1, 2, 3]) * (3.0 / 2)
        (logits * 0 + sp(-logits) + r1).mean().mul(2.0).backward()
    expected_D = _grads(D, upstream_D)
    expected_G = _grads(G, lambda: sp(-D(G.synthesis(G.mapping(z, c)), c)).mean().backward())
    for g, e in zip(got_D + got_G, expected_D + expected_G):
        assert torch.equal(g, e)

TEXTBOOK_D = {
    'stylegan2': lambda r, f: sp(-r).mean() + sp(f).mean(),
    'ns':        lambda r, f: sp(-r).mean() + sp(f).mean(),
    'minimax':   lambda r, f: sp(-r).mean() + sp(f).mean(),
    'hinge':     lambda r, f: torch.relu(1 - r).mean() + torch.relu(1 + f).mean(),
    'wgan':      lambda r, f: -r.mean() + f.mean(),
    'wgan-gp':   lambda r, f: -r.mean() + f.mean(),
    'lsgan':     lambda r, f: 0.5 * (r - 1).square().mean() + 0.5 * f.square().mean(),
    'lsgan-sigmoid': lambda r, f: 0.5 * (r.sigmoid() - 1).square().mean() + 0.5 * f.sigmoid().square().mean(),
    'rahinge':   lambda r, f: torch.relu(1 - (r - f.mean())).mean() + torch.relu(1 + (f - r.mean())).mean(),
    'softmax':   lambda r, f: -r.mean() + torch.cat([r, f]).logsumexp(0).sum(),
    'rpgan':     lambda r, f: sp(f - r).mean(),
}
TEXTBOOK_D['relativistic-hinge'] = TEXTBOOK_D['rahinge']
TEXTBOOK_G = {
    'stylegan2': lambda r, f: sp(-f).mean(),
    'ns':        lambda r, f: sp(-f).mean(),
    'minimax':   lambda r, f: -sp(f).mean(),
    'hinge':     lambda r, f: -f.mean(),
    'wgan':      lambda r, f: -f.mean(),
    'wgan-gp':   lambda r, f: -f.mean(),
    'lsgan':     lambda r, f: 0.5 * (f - 1).square().mean(),
    'lsgan-sigmoid': lambda r, f: 0.5 * (f.sigmoid() - 1).square().mean(),
    'rahinge':   lambda r, f: torch.relu(1 - (f - r.mean())).mean() + torch.relu(1 + (r - f.mean())).mean(),
    'softmax':   lambda r, f: -torch.cat([r, f]).mean() + torch.cat([r, f]).logsumexp(0).sum(),
    'rpgan':     lambda r, f: sp(r - f).mean(),
}

TEXTBOOK_G['relativistic-hinge'] = TEXTBOOK_G['rahinge']

@pytest.mark.parametrize('name', sorted(TEXTBOOK_D))
def test_single_head_equals_textbook_loss(name):
    assert sorted(TEXTBOOK_D) == plugins.LOSSES.names()
    G, D, loss, z, c, real = _setup(objective=name)
    got_D = _grads(D, lambda: loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.5))
    got_G = _grads(G, lambda: loss.accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.5))
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c))
    expected_D = _grads(D, lambda: (TEXTBOOK_D[name](D(real, c), D(fake, c)) * 1.5).backward())
    expected_G = _grads(G, lambda: (TEXTBOOK_G[name](D(real, c).detach(), D(G.synthesis(G.mapping(z, c)), c)) * 1.5).backward())
    _assert_close(got_D, expected_D)
    _assert_close(got_G, expected_G)
    assert any(float(g.abs().max()) > 0 for g in got_D + got_G)

#----------------------------------------------------------------------------
# Several heads.

# sigma with exp(-1 / (2 sigma^2)) = 1/2: a head at distance 1 from the BMU learns from that real at weight 1/2.
SIGMA_HALF = 1 / math.sqrt(2 * math.log(2))

@pytest.mark.parametrize('name', ['stylegan2', 'hinge', 'rahinge', 'softmax'])
def test_two_heads_weigh_reals_by_neighbourhood(name):
    som_kwargs = dict(num_heads=2, topology='linear', sigma_start=SIGMA_HALF, sigma_end=SIGMA_HALF, normalize=False)
    G, D, loss, z, c, real = _setup(num_heads=2, seed=1, objective=name, som_kwargs=som_kwargs)
    got = _grads(D, lambda: loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0))
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c))
        bmu = D(real, c).argmax(1)
    assert 0 < int(bmu.sum()) < 6, 'the case should use both heads'
    h = torch.where(torch.nn.functional.one_hot(bmu, 2) == 1, 1.0, 0.5) # by hand: BMU 1, neighbour 1/2
    obj = plugins.LOSSES.build(name)
    def direct():
        r, f = D(real, c), D(fake, c)
        d_real = obj.d_real(r, f) if obj.couples else obj.d_real(r)
        d_fake = obj.d_fake(f, r) if obj.couples else obj.d_fake(f)
        per_head = (h * d_real).mean(0) + d_fake.mean(0)
        per_head.mean().backward() # (1/K) sum_k
    _assert_close(got, _grads(D, direct))

def test_four_heads_grid_hinge_by_hand():
    # Real logits set by the bias alone (zero weights): all reals have logits b, BMU = argmax b = head 3.
    som_kwargs = dict(num_heads=4, topology='grid', sigma_start=1.0, sigma_end=1.0, normalize=False)
    G, D, loss, z, c, real = _setup(num_heads=4, objective='hinge', som_kwargs=som_kwargs)
    with torch.no_grad():
        D.fc.weight.zero_()
        D.fc.bias.copy_(torch.tensor([0.5, -0.5, 0.0, 0.75]))
    got = _grads(D, lambda: loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0))
    # Head k: d/db_k = (1/K) [-h_k * 1(1 - b_k > 0) + 1(1 + b_k > 0)], h = exp(-d(k, 3)^2 / 2) on the 2x2 grid.
    h = [math.exp(-1.0), math.exp(-0.5), math.exp(-0.5), 1.0]
    expected = [(-h[k] + 1) / 4 for k in range(4)]
    assert got[1].tolist() == pytest.approx(expected, abs=1e-6)

def test_r1_with_heads_takes_one_random_head_per_sample():
    som_kwargs = dict(num_heads=3, topology='linear')
    G, D, loss, z, c, real = _setup(num_heads=3, r1_gamma=4.0, som_kwargs=som_kwargs)
    torch.manual_seed(123)
    got = _grads(D, lambda: loss.accumulate_gradients('Dreg', real, c, z, c, sync=True, gain=1.0))
    torch.manual_seed(123)
    head = torch.randint(3, [6, 1])[:, 0]
    # Linear D: grad_x D_k = W_k, so R1 = gamma/2 mean_n |W_k(n)|^2 and d/dW_k = gamma * W_k * #{n: k(n) = k} / N.
    counts = torch.bincount(head, minlength=3).float()
    expected = 4.0 * D.fc.weight.detach() * (counts / 6)[:, None]
    assert torch.allclose(got[0], expected, atol=1e-6)
    assert torch.equal(got[1], torch.zeros(3)) # no real-loss term (hence no SOM weights) in the reg pass

def test_wgan_gp_penalty_on_linear_D():
    G, D, loss, z, c, real = _setup(objective='wgan-gp', gp_weight=10)
    got = _grads(D, lambda: loss.accumulate_gradients('Dreg', real, c, z, c, sync=True, gain=1.0))
    # grad_x D = w everywhere: penalty 10 (|w| - 1)^2, gradient 20 (|w| - 1) w / |w|.
    w = D.fc.weight.detach()
    norm = w.norm()
    assert torch.allclose(got[0], 20 * (norm - 1) * w / norm, atol=1e-5)
    assert torch.equal(got[1], torch.zeros(1))

def test_weight_clip_after_D_steps_only():
    G, D, loss, z, c, real = _setup(objective='wgan', weight_clip=0.01)
    with torch.no_grad():
        D.fc.weight.mul_(100)
    loss.after_optimizer_step('Gmain')
    assert float(D.fc.weight.detach().abs().max()) > 0.01
    loss.after_optimizer_step('Dmain')
    assert float(D.fc.weight.detach().abs().max()) == pytest.approx(0.01) and float(D.fc.bias.detach().abs().max()) <= 0.01
    assert float(G.mapping.fc.weight.detach().abs().max()) > 0.01

def test_statistics_and_sigma_schedule():
    som_kwargs = dict(num_heads=4, topology='grid', sigma_start=2.0, sigma_end=0.5, normalize=False)
    G, D, loss, z, c, real = _setup(num_heads=4, som_kwargs=som_kwargs)
    loss.set_progress(cur_nimg=500, total_nimg=1000)
    assert loss.som_sigma() == pytest.approx(1.0)
    collector = training_stats.Collector(regex='(SOM|Loss/signs)/.*', keep_previous=False)
    _grads(D, lambda: loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0))
    collector.update()
    with torch.no_grad():
        logits = D(real, c)
    bmu = logits.argmax(1)
    assert collector.mean('SOM/sigma') == pytest.approx(1.0)
    for k in range(4):
        assert collector.mean(f'SOM/occupancy/{k}') == pytest.approx(float((bmu == k).float().mean()))
    # The sign ADA sees: per real, the heads' signs weighted by the neighbourhood (sigma 1 on the 2x2 grid).
    dist = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1], [1, 2, 0, 1], [2, 1, 1, 0]], dtype=torch.float32) # squared
    h = torch.exp(-dist[bmu] / 2)
    expected = float(((logits.sign() * h).sum(1) / h.sum(1)).mean())
    assert collector.mean('Loss/signs/real') == pytest.approx(expected, abs=1e-6)
    # One head reports no SOM statistics and the plain sign.
    G, D, loss, z, c, real = _setup(num_heads=1)
    _grads(D, lambda: loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0))
    collector.update()
    assert collector.num('SOM/sigma') == 0
    assert collector.mean('Loss/signs/real') == pytest.approx(float(D(real, c).sign().mean()))

def test_state_dict_stays_plain():
    G, D, loss, z, c, real = _setup(num_heads=4, som_kwargs=dict(num_heads=4))
    assert sorted(loss.state_dict()) == ['pl_mean']

def test_bad_som_settings():
    G, D, loss, z, c, real = _setup(num_heads=4, som_kwargs=dict(num_heads=9))
    with pytest.raises(ValueError, match='D returns 4 logits per image but som_kwargs.num_heads is 9'):
        loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0)
    with pytest.raises(ValueError, match='som_kwargs.topology'):
        _setup(num_heads=4, som_kwargs=dict(topology='torus'))
    with pytest.raises(ValueError, match='square'):
        _setup(num_heads=3, som_kwargs=dict(num_heads=3, topology='grid'))
    with pytest.raises(ValueError, match='sigma_end must be positive'):
        _setup(num_heads=4, som_kwargs=dict(sigma_end=0))

def test_single_w_skips_style_mixing():
    G, D, loss, z, c, real = _setup(num_ws=1, style_mixing_prob=0.9)
    got = _grads(G, lambda: loss.accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.0))
    assert all(torch.isfinite(g).all() for g in got)

@pytest.mark.parametrize('name', sorted(TEXTBOOK_D))
def test_every_objective_trains_four_conditional_heads(name):
    # All phases with R1, GP and path length on: finite gradients that reach every weight (not every bias:
    # relativistic and softmax losses do not change when a head's logits all shift by the same amount).
    G, D, loss, z, c, real = _setup(num_heads=4, c_dim=2, objective=name, r1_gamma=1.0, gp_weight=1.0,
        pl_weight=1.0, som_kwargs=dict(num_heads=4, topology='grid'))
    for phase, module in [('Gboth', G), ('Dboth', D)]:
        grads = _grads(module, lambda: loss.accumulate_gradients(phase, real, c, z, c, sync=True, gain=1.0))
        assert all(torch.isfinite(g).all() for g in grads), (phase, name)
        assert all(g.abs().max() > 0 for g in grads if g.ndim > 1), (phase, name)

def test_normalized_weights_in_D_gradient():
    som_kwargs = dict(num_heads=2, topology='linear', sigma_start=SIGMA_HALF, sigma_end=SIGMA_HALF, normalize=True)
    G, D, loss, z, c, real = _setup(num_heads=2, seed=1, som_kwargs=som_kwargs)
    got = _grads(D, lambda: loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0))
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c))
        bmu = D(real, c).argmax(1)
    h = torch.where(torch.nn.functional.one_hot(bmu, 2) == 1, 1.0, 0.5)
    h = h / h.mean(0, keepdim=True) # by hand: each head's column rescaled to mean 1
    def direct():
        r, f = D(real, c), D(fake, c)
        ((h * sp(-r)).mean(0) + sp(f).mean(0)).mean().backward()
    _assert_close(got, _grads(D, direct))

@pytest.mark.parametrize('name', ['stylegan2', 'rahinge'])
def test_generator_loss_weighted_by_each_fakes_neighbourhood(name):
    som_kwargs = dict(num_heads=2, topology='linear', sigma_start=SIGMA_HALF, sigma_end=SIGMA_HALF, g_weights='neighbourhood')
    G, D, loss, z, c, real = _setup(num_heads=2, seed=0, objective=name, som_kwargs=som_kwargs)
    got = _grads(G, lambda: loss.accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.0))
    with torch.no_grad():
        bmu = D(G.synthesis(G.mapping(z, c)), c).argmax(1)
    assert 0 < int(bmu.sum()) < 6, 'the case should use both heads'
    w = torch.where(torch.nn.functional.one_hot(bmu, 2) == 1, 1.0, 0.5) * (2 / 1.5) # by hand: 1 and 1/2, rows sum to K
    obj = plugins.LOSSES.build(name)
    def direct():
        r, f = D(real, c).detach(), D(G.synthesis(G.mapping(z, c)), c)
        if obj.couples:
            ((w * obj.g_fake(f, r)).mean(0) + obj.g_real(r, f).mean(0)).mean().backward()
        else:
            (w * obj.g_fake(f)).mean().backward()
    _assert_close(got, _grads(G, direct))
    # The weighting changes G's gradient (else this test could not fail), and one head is left exactly plain.
    plain = _setup(num_heads=2, seed=0, objective=name, som_kwargs=dict(som_kwargs, g_weights='mean'))
    assert any(not torch.allclose(a, b) for a, b in zip(got, _grads(plain[0], lambda: plain[2].accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.0))))
    one = [_setup(seed=2, objective=name, som_kwargs=dict(g_weights=g)) for g in ('neighbourhood', 'mean')]
    grads = [_grads(G1, lambda: l1.accumulate_gradients('Gmain', r1, c1, z1, c1, sync=True, gain=1.0)) for G1, _, l1, z1, c1, r1 in one]
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    with pytest.raises(ValueError, match='som_kwargs.g_weights'):
        _setup(num_heads=2, som_kwargs=dict(g_weights='bmu'))

def test_unit_pairs_compare_samples_of_one_unit():
    """rpgan with pairs='unit': D pairs each real with a fake whose highest logit is at the real's unit, G each fake
    with a real of its unit; with pairs='index' the same positions pair (the case has both heads occupied, so the
    two differ)."""
    som_kwargs = dict(num_heads=2, topology='linear', sigma_start=SIGMA_HALF, sigma_end=SIGMA_HALF, normalize=False,
        g_weights='neighbourhood', pairs='unit')
    G, D, loss, z, c, real = _setup(num_heads=2, seed=0, objective='rpgan', som_kwargs=som_kwargs)
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c))
        real_units, fake_units = D(real, c).argmax(1), D(fake, c).argmax(1)
    to_fake = som.match_partners(real_units, fake_units, 2)
    to_real = som.match_partners(fake_units, real_units, 2)
    assert 0 < int(real_units.sum()) < 6 and 0 < int(fake_units.sum()) < 6, 'the case should use both heads'
    assert to_fake.tolist() != list(range(6)) and to_real.tolist() != list(range(6))
    assert (fake_units[to_fake] == real_units).all() # every real found a fake of its unit here
    obj = plugins.LOSSES.build('rpgan')
    h = torch.where(torch.nn.functional.one_hot(real_units, 2) == 1, 1.0, 0.5) # by hand: BMU 1, neighbour 1/2
    def direct_D():
        r, f = D(real, c), D(fake, c)
        (h * obj.d_real(r, f[to_fake])).mean(0).mean().backward()
    got = _grads(D, lambda: loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0))
    _assert_close(got, _grads(D, direct_D))
    w = torch.where(torch.nn.functional.one_hot(fake_units, 2) == 1, 1.0, 0.5) * (2 / 1.5)
    def direct_G():
        r, f = D(real, c).detach(), D(G.synthesis(G.mapping(z, c)), c)
        (w * obj.g_fake(f, r[to_real])).mean(0).mean().backward()
    got = _grads(G, lambda: loss.accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.0))
    _assert_close(got, _grads(G, direct_G))
    by_index = _setup(num_heads=2, seed=0, objective='rpgan', som_kwargs=dict(som_kwargs, pairs='index'))
    other = _grads(by_index[1], lambda: by_index[2].accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0))
    assert any(not torch.allclose(a, b) for a, b in zip(_grads(D, lambda: loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0)), other))
    with pytest.raises(ValueError, match='som_kwargs.pairs'):
        _setup(num_heads=2, som_kwargs=dict(pairs='nearest'))

def _check_phases_train(loss, G, D, real, c, z, name):
    """G's and D's phases give finite gradients, not all zero."""
    G.requires_grad_(False)
    D.requires_grad_(False)
    for phase, module in [('Gmain', G), ('Dboth', D)]:
        grads = _grads(module, lambda: loss.accumulate_gradients(phase, real, c, z, c, sync=True, gain=1.0))
        assert all(torch.isfinite(g).all() for g in grads), (phase, name)
        assert sum(float(g.abs().sum()) for g in grads) > 0, (phase, name)

@pytest.mark.parametrize('name', ['softmax', 'wgan-gp'])
def test_objectives_with_stylegan2_projection_heads(name):
    # The real networks: a tiny StyleGAN2 G and D, D with 4 conditional projection heads on its trunk, for a
    # coupled objective and the gradient penalty (every objective runs with the stand-in D above, and the
    # default one with the real networks in tests/test_train_som.py).
    from stylegan_som.networks import stylegan2
    torch.manual_seed(0)
    small = dict(channel_base=64, channel_max=8)
    G = stylegan2.Generator(z_dim=8, c_dim=2, w_dim=8, img_resolution=8, img_channels=3, synthesis_kwargs=small)
    D = stylegan2.Discriminator(c_dim=2, img_resolution=8, img_channels=3, num_heads=4, architecture='orig',
        head_kwargs=dict(class_name='stylegan_som.heads.projection.ProjectionHead'),
        epilogue_kwargs=dict(mbstd_group_size=2), **small)
    loss = StyleGAN2Loss(device=CPU, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, objective=name,
        r1_gamma=0.1, gp_weight=(10 if name == 'wgan-gp' else 0), pl_weight=0, som_kwargs=dict(num_heads=4, topology='grid', normalize=True))
    z, c = torch.randn(4, 8), torch.eye(2)[[0, 1, 1, 0]]
    real = torch.randn(4, 3, 8, 8)
    _check_phases_train(loss, G, D, real, c, z, name)

@pytest.mark.parametrize('name', ['stylegan2', 'softmax', 'wgan-gp'])
def test_objectives_with_packed_discriminator(name):
    # PacGAN (--d-pack): D gives one row of K logits per pack of 2 images; the SOM weights, R1 and the gradient
    # penalty work on those rows, and every phase trains.
    from stylegan_som.networks import small
    torch.manual_seed(0)
    G = small.DCGANGenerator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
        synthesis_kwargs=dict(channel_base=64, channel_max=8))
    D = small.DCGANDiscriminator(c_dim=0, img_resolution=8, img_channels=3, channel_base=64, channel_max=8,
        num_heads=4, pack_size=2)
    loss = StyleGAN2Loss(device=CPU, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, objective=name,
        r1_gamma=(0 if name == 'wgan-gp' else 0.1), gp_weight=(10 if name == 'wgan-gp' else 0), pl_weight=0,
        style_mixing_prob=0, som_kwargs=dict(num_heads=4, topology='grid', normalize=True))
    z, c, real = torch.randn(6, 8), torch.zeros(6, 0), torch.randn(6, 3, 8, 8)
    _check_phases_train(loss, G, D, real, c, z, name)
    with pytest.raises(ValueError, match='not a multiple'):
        loss.accumulate_gradients('Dmain', real[:5], c[:5], z[:5], c[:5], sync=True, gain=1.0)

def test_bf16_autocast_on_cpu():
    # Every phase, with R1 and path length: G and D run in bfloat16 (the linear layers' outputs round to it), the
    # loss sees float32 logits, and the gradients stay float32, within bf16's precision of the float32 ones.
    kwargs = dict(num_heads=4, r1_gamma=1.0, pl_weight=1.0, som_kwargs=dict(num_heads=4))
    def phase_grads(bf16):
        G, D, loss, z, c, real = _setup(bf16=bf16, **kwargs)
        out = []
        for phase, module in [('Gboth', G), ('Dboth', D)]:
            torch.manual_seed(1) # the same path-length noise and R1 heads in both runs
            out += _grads(module, lambda: loss.accumulate_gradients(phase, real, c, z, c, sync=True, gain=1.0))
        return out
    for got, expected in zip(phase_grads(True), phase_grads(False)):
        assert got.dtype == torch.float32
        assert torch.allclose(got, expected, rtol=0.05, atol=0.02 * expected.abs().max()), (got - expected).abs().max()
    G, D, loss, z, c, real = _setup(bf16=True, **kwargs)
    img, ws = loss.run_G(z, c, sync=False)
    logits = loss.run_D(img, c, sync=False)
    assert img.dtype == ws.dtype == logits.dtype == torch.float32
    assert not torch.equal(img, G.synthesis.fc(ws.flatten(1)).reshape(img.shape)) # really ran in bf16
    with pytest.raises(ValueError, match='bf16 autocast is for training on a CPU'):
        StyleGAN2Loss(device=torch.device('cuda'), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, bf16=True)

#----------------------------------------------------------------------------
# Feature matching.

class _DHead(torch.nn.Module):
    """A trunk and a `head`, the layout feature matching reads (the head's input is the features)."""
    def __init__(self):
        super().__init__()
        self.trunk = torch.nn.Linear(3 * 4 * 4, 5)
        self.head = torch.nn.Linear(5, 1)
    def features(self, img):
        return torch.tanh(self.trunk(img.flatten(1)))
    def forward(self, img, c):
        return self.head(self.features(img))

def test_feature_distance_by_hand_and_unbiased():
    from stylegan_som.loss import feature_distance
    # Means 1 and 2: 1; minus the reals' variance 2 over 2 reals and the fakes' variance 3 over 3 fakes.
    real, fake = torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [1.0], [4.0]])
    assert float(feature_distance(real, fake)) == pytest.approx(1 - 1 - 1)
    assert float(feature_distance(real[:1], fake[:1])) == pytest.approx(1) # one sample: no variance to take off
    # Both sides from one distribution: the estimate averages to 0, the plain squared difference does not.
    gen = torch.Generator().manual_seed(0)
    draws = [(torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen)) for _ in range(2000)]
    assert abs(sum(float(feature_distance(r, f)) for r, f in draws) / 2000) < 0.01
    assert sum(float((r.mean(0) - f.mean(0)).square().mean()) for r, f in draws) / 2000 == pytest.approx(0.25, abs=0.02)

def test_feature_matching_adds_to_generators_loss_only():
    torch.manual_seed(0)
    G, D = _G(2), _DHead()
    z, c, real = torch.randn(6, 3), torch.zeros(6, 0), torch.randn(6, 3, 4, 4)
    from stylegan_som.loss import feature_distance
    losses = {w: StyleGAN2Loss(device=CPU, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, style_mixing_prob=0,
        r1_gamma=0, pl_weight=0, fm_weight=w) for w in (0, 2.5)}
    got = _grads(G, lambda: losses[2.5].accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.5))
    def expected():
        fake = G.synthesis(G.mapping(z, c))
        ns = sp(-D(fake, c)).mean()
        fm = feature_distance(D.features(real).detach(), D.features(fake))
        ((ns + 2.5 * fm) * 1.5).backward()
    _assert_close(got, _grads(G, expected))
    assert not _close_all(got, _grads(G, lambda: losses[0].accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.5)))
    # D's step is unchanged, and no hook stays on D (it gets pickled with every snapshot).
    d_grads = [_grads(D, lambda w=w: losses[w].accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1)) for w in (0, 2.5)]
    _assert_close(*d_grads)
    assert not D.head._forward_pre_hooks

def _close_all(a, b):
    return all(torch.allclose(x, y) for x, y in zip(a, b))

def test_feature_matching_needs_a_head():
    G, D = _G(2), _D()
    with pytest.raises(ValueError, match='fm_weight.*_D has neither'):
        StyleGAN2Loss(device=CPU, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, fm_weight=1)

#----------------------------------------------------------------------------
# R2 (zero-centred gradient penalty on fakes) and the balance rule for G.

def test_r2_penalty_on_fakes_by_hand():
    # Linear D: grad_x D(x) = w for every sample, so R2 = gamma/2 |w|^2 whatever the fakes; R1 the same on reals.
    for r1_gamma, r2_gamma in [(0, 4.0), (2.0, 4.0)]:
        G, D, loss, z, c, real = _setup(r1_gamma=r1_gamma, r2_gamma=r2_gamma, objective='rpgan')
        got = _grads(D, lambda: loss.accumulate_gradients('Dreg', real, c, z, c, sync=True, gain=1.0))
        w = D.fc.weight
        expected = _grads(D, lambda: ((r1_gamma + r2_gamma) / 2 * w.square().sum()).backward())
        _assert_close(got, expected, atol=1e-5)

def test_r2_joins_the_main_pass_with_the_same_gradients():
    # Dboth = Dmain + Dreg: R2 computed in the fake pass of the main loss, not a pass of its own.
    G, D, loss, z, c, real = _setup(r1_gamma=1.0, r2_gamma=3.0, objective='rpgan')
    both = _grads(D, lambda: loss.accumulate_gradients('Dboth', real, c, z, c, sync=True, gain=1.0))
    def apart():
        loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0)
        loss.accumulate_gradients('Dreg', real, c, z, c, sync=True, gain=1.0)
    _assert_close(both, _grads(D, apart), atol=1e-5)

def test_balance_rule_moves_fakes_of_crowded_units():
    som_kwargs = dict(num_heads=2, topology='linear', sigma_start=0.1, sigma_end=0.1, g_weights='balance',
        occupancy_decay=0)
    G, D, loss, z, c, real = _setup(num_heads=2, seed=1, som_kwargs=som_kwargs)
    assert loss.state_dict().keys() == {'pl_mean'} # nothing tracked before the first step
    loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0)
    got = _grads(G, lambda: loss.accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.0))
    with torch.no_grad():
        fake = G.synthesis(G.mapping(z, c))
        p_r = torch.nn.functional.one_hot(D(real, c).argmax(1), 2).float().mean(0)
        bmu = D(fake, c).argmax(1)
        p_f = torch.nn.functional.one_hot(bmu, 2).float().mean(0)
    assert torch.equal(loss.state_dict()['som_occupancy_real'], p_r)
    assert torch.equal(loss.state_dict()['som_occupancy_fake'], p_f)
    assert not torch.equal(p_r, p_f), 'the case should be unbalanced'
    # By hand: sigma 0.1 makes the own neighbourhood the BMU alone; a fake of an over-full unit keeps it with
    # q = p_r / p_f and sends the rest to the unit in deficit.
    keep = torch.where(p_f > p_r, p_r / p_f, torch.ones(2))[bmu]
    deficit = (p_r - p_f).clamp(min=0)
    w = keep[:, None] * torch.nn.functional.one_hot(bmu, 2) + (1 - keep[:, None]) * (deficit / deficit.sum())
    expected = _grads(G, lambda: (sp(-D(G.synthesis(G.mapping(z, c)), c)) * w * 2).mean().backward())
    _assert_close(got, expected, atol=1e-6)
    # The occupancies survive a resume.
    state = loss.state_dict()
    _G2, _D2, loss2, *_ = _setup(num_heads=2, seed=1, som_kwargs=som_kwargs)
    loss2.load_state_dict(state)
    assert torch.equal(loss2.state_dict()['som_occupancy_fake'], p_f)

def test_prototype_units_learn_from_D_features():
    # _D has no `head` module, so feature matching and prototypes need a D with one.
    with pytest.raises(ValueError, match='head'):
        _setup(num_heads=2, som_kwargs=dict(num_heads=2, topology='linear', bmu='prototype'))
    class _HeadD(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = torch.nn.Linear(48, 5)
            self.head = torch.nn.Linear(5, 2)
        def forward(self, img, c):
            return self.head(self.trunk(img.flatten(1)))
    torch.manual_seed(0)
    G, D = _G(), _HeadD()
    som_kwargs = dict(num_heads=2, topology='linear', sigma_start=0.1, sigma_end=0.1, bmu='prototype', prototype_rate=1.0)
    loss = StyleGAN2Loss(device=CPU, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, style_mixing_prob=0, r1_gamma=1.0,
        pl_weight=0, som_kwargs=som_kwargs)
    z, c, real = torch.randn(6, 3), torch.zeros(6, 0), torch.randn(6, 3, 4, 4)
    loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0)
    with torch.no_grad():
        features = D.trunk(real.flatten(1))
    first = features[[0, 5]]
    bmu = torch.cdist(features, first).argmin(1)
    # Rate 1 and sigma 0.1: each prototype is the mean of the features it won.
    expected = torch.stack([features[bmu == k].mean(0) for k in range(2)])
    assert torch.allclose(loss.state_dict()['som_prototypes'], expected, atol=1e-5)
    # Dreg passes (R1) read the map but do not move it.
    loss.accumulate_gradients('Dreg', real, c, z, c, sync=True, gain=1.0)
    assert torch.allclose(loss.state_dict()['som_prototypes'], expected, atol=1e-5)

#----------------------------------------------------------------------------
# A head with an auxiliary loss (ACGAN): its class logits add cross-entropy to D on reals and fakes, to G on fakes.

class _DAux(torch.nn.Module):
    def __init__(self, num_heads=1, c_dim=2):
        super().__init__()
        from stylegan_som.heads.acgan import ACGANHead
        self.trunk = torch.nn.Linear(3 * 4 * 4, 5)
        self.head = ACGANHead(5, num_heads=num_heads, c_dim=c_dim)
    def forward(self, img, c):
        return self.head(torch.tanh(self.trunk(img.flatten(1))), c)

@pytest.mark.parametrize('objective,num_heads', [('stylegan2', 1), ('hinge', 4), ('rahinge', 1)])
def test_aux_head_adds_cross_entropy_to_both_players(objective, num_heads):
    torch.manual_seed(0)
    G, D = _G(2), _DAux(num_heads)
    z, real = torch.randn(6, 3), torch.randn(6, 3, 4, 4)
    real_c = torch.nn.functional.one_hot(torch.arange(6) % 2, 2).float()
    gen_c = torch.nn.functional.one_hot((torch.arange(6) + 1) % 2, 2).float()
    loss = StyleGAN2Loss(device=CPU, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, style_mixing_prob=0,
        r1_gamma=0, pl_weight=0, objective=objective)
    assert loss.aux_head is D.head
    obj = loss.objective
    ce = lambda out, c: -(c * out[:, num_heads:].log_softmax(1)).sum(1).mean()
    def expected_D():
        fake = G.synthesis(G.mapping(z, gen_c)).detach()
        r, f = D(real, real_c), D(fake, gen_c)
        adv = obj.d_loss(r[:, :num_heads], f[:, :num_heads]).mean() if num_heads == 1 else None
        if num_heads > 1: # SOM weights on the reals' logits only, as the loss forms them
            w = loss.som.real_weights(r[:, :num_heads].detach(), learn=False)
            adv = obj.d_loss(r[:, :num_heads], f[:, :num_heads], w).mean()
        (adv + ce(r, real_c) + ce(f, gen_c)).mul(0.5).backward()
    def expected_G():
        f = D(G.synthesis(G.mapping(z, gen_c)), gen_c)
        r = D(real, real_c).detach()
        adv = obj.g_loss(f[:, :num_heads], r[:, :num_heads] if obj.couples else None).mean()
        (adv + ce(f, gen_c)).mul(0.5).backward()
    got = _grads(D, lambda: loss.accumulate_gradients('Dmain', real, real_c, z, gen_c, sync=True, gain=0.5))
    _assert_close(got, _grads(D, expected_D))
    names = [n for n, _ in D.named_parameters()]
    assert got[names.index('head.class_weight')].abs().sum() > 0 # the classifier does learn
    got = _grads(G, lambda: loss.accumulate_gradients('Gmain', real, real_c, z, gen_c, sync=True, gain=0.5))
    _assert_close(got, _grads(G, expected_G))

def test_aux_loss_is_reported():
    torch.manual_seed(0)
    G, D = _G(2), _DAux(1)
    z, real, c = torch.randn(4, 3), torch.randn(4, 3, 4, 4), torch.eye(2)[[0, 1, 0, 1]]
    loss = StyleGAN2Loss(device=CPU, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, style_mixing_prob=0,
        r1_gamma=0, pl_weight=0)
    collector = training_stats.Collector(regex='Loss/./aux')
    for phase in ('Dmain', 'Gmain'):
        _grads(G if phase == 'Gmain' else D, lambda phase=phase: loss.accumulate_gradients(phase, real, c, z, c, sync=True, gain=1))
    collector.update()
    assert collector.num('Loss/D/aux') == 8 and collector.num('Loss/G/aux') == 4
    assert 0 < collector.mean('Loss/D/aux') < 10
    # Without such a head nothing changes: no aux statistic, the logits come back whole.
    _, D2, loss2, z, c0, real = _setup()
    assert loss2.aux_head is None and loss2.run_D(real, c0, sync=False).shape == (6, 1)
