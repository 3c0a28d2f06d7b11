"""The runner trains with the composition the objectives' tests check (Objective.d_loss / g_loss), composes the
regularisers from their table, and reports the SOM through its tick hook."""

import pytest
import torch

import dnnlib
from stylegan_som import plugins
from stylegan_som.loss import StyleGAN2Loss
from stylegan_som.loss import regularisers
from tests.stylegan_som.loss.test_loss import _G, _D, _grads, _assert_close

CPU = torch.device('cpu')

def _setup(objective, num_heads, **kwargs):
    torch.manual_seed(1)
    G, D = _G(), _D(num_heads)
    loss = StyleGAN2Loss(device=CPU, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, objective=objective,
        style_mixing_prob=0, r1_gamma=0, pl_weight=0, **kwargs)
    z, c, real = torch.randn(6, 3), torch.zeros(6, 0), torch.randn(6, 3, 4, 4)
    return G, D, loss, z, c, real

@pytest.mark.parametrize('name', plugins.LOSSES.names())
def test_D_step_is_objective_d_loss(name):
    G, D, loss, z, c, real = _setup(name, 4, som_kwargs=dict(sigma_start=0.7))
    got = _grads(D, lambda: loss.accumulate_gradients('Dmain', real, c, z, c, sync=True, gain=1.0))
    def by_hand():
        with torch.no_grad():
            fake = G.synthesis(G.mapping(z, c))
        real_logits, fake_logits = D(real, c), D(fake, c)
        weights = loss.som.real_weights(real_logits.detach(), learn=False)
        loss.objective.d_loss(real_logits, fake_logits, weights).mean().backward()
    _assert_close(got, _grads(D, by_hand), atol=1e-5)

@pytest.mark.parametrize('name', plugins.LOSSES.names())
@pytest.mark.parametrize('g_weights', ['mean', 'neighbourhood'])
def test_G_step_is_objective_g_loss(name, g_weights):
    G, D, loss, z, c, real = _setup(name, 4, som_kwargs=dict(sigma_start=0.7, g_weights=g_weights))
    got = _grads(G, lambda: loss.accumulate_gradients('Gmain', real, c, z, c, sync=True, gain=1.0))
    def by_hand():
        fake_logits = D(G.synthesis(G.mapping(z, c)), c)
        with torch.no_grad():
            real_logits = D(real, c)
        weights = loss.som.fake_weights(fake_logits.detach())
        loss.objective.g_loss(fake_logits, real_logits, weights).mean().backward()
    _assert_close(got, _grads(G, by_hand), atol=1e-5)

class _Shrink:
    """A regulariser added for the test: weight * |D's parameters|^2 in D's own pass."""
    side, where = 'D', 'pass'
    def __init__(self, weight, device=None):
        self.weight = weight
    @property
    def active(self):
        return self.weight != 0
    def run(self, loss, batch, sync, gain):
        _ = batch, sync
        sum(p.square().sum() for p in loss.D.parameters()).mul(self.weight * gain).backward()

def test_a_new_regulariser_is_one_class_and_one_row(monkeypatch):
    row = ('shrink', f'{__name__}._Shrink', dict(weight=('shrink_weight', 0)))
    monkeypatch.setattr(regularisers, 'REGULARISERS', regularisers.REGULARISERS + [row])
    monkeypatch.setattr('stylegan_som.loss.runner.REGULARISERS', regularisers.REGULARISERS)
    G, D, loss, z, c, real = _setup('wgan', 1, shrink_weight=0.5)
    got = _grads(D, lambda: loss.accumulate_gradients('Dreg', real, c, z, c, sync=True, gain=1.0))
    _assert_close(got, [p.detach() for p in D.parameters()]) # d/dp 0.5 p^2 = p; Dreg has nothing else here
    assert regularisers.loss_keywords()['shrink_weight'] == 0

def test_regularisers_from_keywords():
    _G_, _D_, loss, *_ = _setup('stylegan2', 1, r2_gamma=0.5, fm_weight=0, weight_clip=0.01)
    active = {name for name, reg in loss.regularisers.items() if reg.active}
    assert active == {'r2', 'weight_clip'} # r1_gamma=0, pl_weight=0 in _setup
    assert loss.regularisers['r2'].gamma == 0.5
    assert set(regularisers.loss_keywords()) == {'r1_gamma', 'r2_gamma', 'pl_weight', 'pl_batch_shrink', 'pl_decay',
        'gp_weight', 'weight_clip', 'fm_weight', 'couple_feature', 'couple_semantic', 'couple_cycle', 'couple_perceptual',
        'couple_classifier'}
    with pytest.raises(TypeError, match="unknown keyword 'r3_gamma'"):
        _setup('stylegan2', 1, r3_gamma=1.0)

def test_tick_report_som_text_and_picture():
    *_, loss = _setup('hinge', 4)[:3]
    E = lambda num, mean: dnnlib.EasyDict(num=num, mean=mean, std=0.0)
    assert loss.tick_report({'Loss/G/loss': E(4, 0.5)}, pictures=True) == ([], {})
    stats = {'SOM/sigma': E(10, 1.234), **{f'SOM/occupancy/{k}': E(10, share) for k, share in enumerate([0.1, 0.2, 0.3, 0.4])}}
    text, images = loss.tick_report(stats, pictures=False)
    assert text == ['som-sigma 1.234 bmu 0.10/0.20/0.30/0.40'] and images == {}
    _, images = loss.tick_report(stats, pictures=True)
    assert list(images) == ['occupancy'] and images['occupancy'].size == (96, 96) # a 2x2 grid of 48-pixel cells
    many = {'SOM/sigma': E(10, 0.5), **{f'SOM/occupancy/{k}': E(10, k / 55) for k in range(11)}}
    assert loss.tick_report(many)[0] == ['som-sigma 0.500 bmu min 0.00 max 0.18 of 11']
