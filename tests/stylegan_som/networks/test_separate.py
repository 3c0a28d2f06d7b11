"""SeparateDiscriminators: K complete single-head discriminators whose scores form the [N, K] output, pickled
with their source like any persistent network."""

import io
import pickle

import pytest
import torch

from stylegan_som.networks.separate import SeparateDiscriminators

MEMBER = dict(class_name='stylegan_som.networks.stylegan2.Discriminator', channel_base=64, channel_max=8,
    architecture='orig', epilogue_kwargs=dict(mbstd_group_size=2))

def _build(num_heads=3, c_dim=0):
    torch.manual_seed(0)
    return SeparateDiscriminators(c_dim=c_dim, img_resolution=8, img_channels=3, num_heads=num_heads,
        discriminator_kwargs=MEMBER)

def test_columns_are_the_members_scores():
    D = _build(num_heads=3, c_dim=2)
    img, c = torch.randn(4, 3, 8, 8), torch.eye(2)[[0, 1, 0, 1]]
    out = D(img, c)
    assert out.shape == (4, 3) and D.num_heads == 3
    for k, member in enumerate(D.discriminators):
        assert torch.equal(out[:, k:k + 1], member(img, c))
    assert not torch.equal(out[:, 0], out[:, 1]) # independent initialisations

def test_pickle_round_trip_without_our_package():
    D = _build(num_heads=2)
    blob = pickle.dumps(D)
    modules = set()
    class Spy(pickle.Unpickler):
        def find_class(self, module, name):
            modules.add(module)
            return super().find_class(module, name)
    D2 = Spy(io.BytesIO(blob)).load()
    assert not [m for m in modules if m.startswith('stylegan_som')], modules
    img = torch.randn(2, 3, 8, 8)
    assert torch.equal(D(img, torch.zeros(2, 0)), D2(img, torch.zeros(2, 0)))

def test_bad_arguments():
    with pytest.raises(ValueError, match='num_heads'):
        SeparateDiscriminators(c_dim=0, img_resolution=8, img_channels=3, num_heads=0, discriminator_kwargs=MEMBER)
    with pytest.raises(ValueError, match='class_name'):
        SeparateDiscriminators(c_dim=0, img_resolution=8, img_channels=3, num_heads=2, discriminator_kwargs={})
