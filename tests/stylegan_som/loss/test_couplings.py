"""Soft-CoGAN's couplings (loss/regularisers/couple_*.py) on tiny coupled generators, each value checked against a
case whose answer is known, and the penalties' per-domain gradient norms of a coupled D."""

import pytest
import torch

import dnnlib
from stylegan_som.loss import StyleGAN2Loss
from stylegan_som.loss.regularisers.couple_semantic import symmetric_kl
from stylegan_som.loss.regularisers.coupling import digits
from stylegan_som.loss.regularisers.penalty import squared_grad_norms
from stylegan_som.networks.coupled import CoupledDiscriminator, CoupledGenerator

G_KWARGS = dict(class_name='stylegan_som.networks.dcgan.Generator', z_dim=8, w_dim=8,
    synthesis_kwargs=dict(channel_base=128, channel_max=16, batch_norm=False))
D_KWARGS = dict(class_name='stylegan_som.networks.dcgan.Discriminator', channel_base=128, channel_max=16)
CLASSIFIER = 'tests.stylegan_som.loss.test_couplings.toy_classifier'

class ToyClassifier(torch.nn.Module):
    """Two classes from the mean brightness; `features`: the image itself."""
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Identity()

    def forward(self, x):
        m = x.mean([1, 2, 3])
        return torch.stack([m, -m], dim=1)

def toy_classifier(device):
    return ToyClassifier().to(device)

def _loss(couple='soft', encoder=False, **reg_kwargs):
    torch.manual_seed(0)
    G = CoupledGenerator(0, 16, 2, couple=couple, generator_kwargs=G_KWARGS, encoder=encoder)
    D = CoupledDiscriminator(0, 16, 2, couple=couple, discriminator_kwargs=D_KWARGS)
    G.synthesis.b.load_state_dict(G.synthesis.a.state_dict()) # B a copy of A: every coupling reads 0
    loss = StyleGAN2Loss('cpu', G.mapping, G.synthesis, D, objective='ns', r1_gamma=0, pl_weight=0,
        style_mixing_prob=0, **reg_kwargs)
    batch = dnnlib.EasyDict(gen_z=torch.randn([4, 8]), gen_c=torch.zeros([4, 0]), real_img=torch.zeros([4, 2, 16, 16]),
        real_c=torch.zeros([4, 0]))
    return G, loss, batch

def _distance(loss, name, batch):
    value, img = loss.regularisers[name].distance(loss, loss.G_synthesis, batch, sync=False)
    assert img.shape == (4, 2, 16, 16)
    return float(value.detach())

def test_feature_distance_at_matching_layers():
    G, loss, batch = _loss(couple_feature=1)
    assert _distance(loss, 'couple_feature', batch) == 0
    with torch.no_grad():
        G.synthesis.b.torgb.bias.add_(1.0) # the output layer is not compared
    assert _distance(loss, 'couple_feature', batch) == 0
    with torch.no_grad():
        G.synthesis.b.up16.bias.add_(0.5) # shifts up16's output and norm16's (identity) by 0.5: 2 of 6 layers
    assert _distance(loss, 'couple_feature', batch) == pytest.approx(2 * 0.25 / 6, rel=1e-5)

def test_feature_coupling_compares_only_separate_layers():
    G, _loss_, _batch = _loss(couple='hard', couple_feature=1)
    assert [name for name, _, _ in G.synthesis.matching_layers()] == ['up16', 'norm16'] # shared ones read alike

def test_cycle_distance():
    G, loss, batch = _loss(encoder=True, couple_cycle=1)
    class Zero(torch.nn.Module):
        def forward(self, img):
            return torch.zeros([img.shape[0], 8])
    G.synthesis.encoder = Zero()
    assert _distance(loss, 'couple_cycle', batch) == pytest.approx(2 * float(batch.gen_z.square().mean()), rel=1e-6)

def test_cycle_trains_the_encoder():
    G, loss, batch = _loss(encoder=True, couple_cycle=2)
    G.requires_grad_(True)
    loss.accumulate_gradients('Greg', **batch, sync=True, gain=1)
    assert G.synthesis.encoder.fc.weight.grad.abs().sum() > 0
    assert G.synthesis.b.torgb.weight.grad.abs().sum() > 0

def test_symmetric_kl():
    a = torch.tensor([[0.0, 0.0]])
    b = torch.tensor([[float(torch.log(torch.tensor(3.0))), 0.0]]) # p_B = (3/4, 1/4)
    # (1/2 - 3/4) log(2/3) + (1/2 - 1/4) log 2 = log(3) / 4
    assert float(symmetric_kl(a, b)) == pytest.approx(float(torch.log(torch.tensor(3.0))) / 4, rel=1e-6)
    assert float(symmetric_kl(a, a)) == 0

@pytest.mark.parametrize('name', ['couple_semantic', 'couple_perceptual'])
def test_classifier_couplings(name):
    G, loss, batch = _loss(**{name: 1, 'couple_classifier': CLASSIFIER})
    assert _distance(loss, name, batch) == 0
    with torch.no_grad():
        G.synthesis.b.torgb.bias.add_(0.5) # B brighter than A by about 0.5 (before tanh)
    assert _distance(loss, name, batch) > 0.01
    if name == 'couple_perceptual': # the toy's features are the images as the classifier reads them (28x28)
        with torch.no_grad():
            img = G(batch.gen_z, batch.gen_c)
        want = (digits(img[:, :1]) - digits(img[:, 1:])).square().mean()
        assert _distance(loss, name, batch) == pytest.approx(float(want), rel=1e-5)

def test_classifier_couplings_need_a_factory():
    with pytest.raises(ValueError, match='couple_classifier'):
        _loss(couple_semantic=1)

def test_couplings_need_a_coupled_generator():
    G = dnnlib.util.construct_class_by_name(**G_KWARGS, c_dim=0, img_resolution=16, img_channels=1)
    D = dnnlib.util.construct_class_by_name(**D_KWARGS, c_dim=0, img_resolution=16, img_channels=1)
    loss = StyleGAN2Loss('cpu', G.mapping, G.synthesis, D, objective='ns', r1_gamma=0, pl_weight=0, couple_feature=1)
    batch = dnnlib.EasyDict(gen_z=torch.randn([2, 8]), gen_c=torch.zeros([2, 0]))
    with pytest.raises(ValueError, match='needs a coupled generator'):
        loss.regularisers['couple_feature'].run(loss, batch, sync=False, gain=1)

def test_penalty_norms_per_domain():
    img = torch.randn([2, 2, 1, 1]).requires_grad_(True)
    logits = torch.cat([3 * img[:, 0], 5 * img[:, 1]]).reshape(4, 1) # rows: A's two samples, then B's
    assert squared_grad_norms(logits, img).tolist() == pytest.approx([9, 9, 25, 25])

def test_r1_on_a_coupled_discriminator():
    G, loss, batch = _loss(couple='hard')
    loss.regularisers['r1'].gamma = 1
    loss.D.requires_grad_(True)
    batch.real_img = torch.randn([4, 2, 16, 16])
    loss.accumulate_gradients('Dboth', **batch, sync=True, gain=1)
    assert loss.D.a.conv16.weight.grad.abs().sum() > 0 and loss.D.b.conv16.weight.grad.abs().sum() > 0
    _ = G
