"""The pairs metrics of coupled generators on constructed pairs: exact pairs score 1, disjoint ones 0."""

import numpy as np
import torch

from metrics import pairs
from stylegan_som.data import coupled

def _digits(num, seed=0):
    """uint8 [num, 16, 16] 'digits': a random bright bar each, on black."""
    rng = np.random.default_rng(seed)
    out = np.zeros([num, 16, 16], dtype=np.uint8)
    for img in out:
        x, y = rng.integers(0, 12, size=2)
        if rng.integers(2):
            img[y:y + 4, 2:14] = 255
        else:
            img[2:14, x:x + 4] = 255
    return out

def test_exact_and_unrelated_pairs():
    a = _digits(200)
    other = np.roll(a, (8, 8), axis=(1, 2)) # each bar moved off itself: no overlap
    for domain, transform in [('negative', coupled.negative), ('edges', coupled.edges)]:
        exact = np.stack([a, transform(a)], axis=1)
        assert pairs.score_pairs(exact, domain)['match'] == 1.0
        unrelated = np.stack([a, transform(other)], axis=1)
        assert pairs.score_pairs(unrelated, domain)['match'] == 0.0

def test_grey_pairs_do_not_match():
    grey = np.full([4, 2, 16, 16], 128, dtype=np.uint8) # what an untrained G draws: its own negative, nearly
    grey[:, 1] = 127
    assert pairs.score_pairs(grey, 'negative')['match'] == 0.0

def test_classifier_readings():
    class Brightness(torch.nn.Module): # digit 1 for images with any ink in the top half, else 0
        def forward(self, x):
            top = (x[:, :, :14].float().amax([1, 2, 3]) > 0).float()
            return torch.stack([1 - top, top], dim=1) * 20
    a = _digits(50)
    r = pairs.score_pairs(np.stack([a, coupled.negative(a)], axis=1), 'negative', Brightness())
    assert r['agree'] == 1.0 and r['modes_a'] == r['modes_b'] == 2 and r['match'] == 1.0

def test_to_uint8_pairs():
    img = torch.tensor([-1.0, 1.0]).reshape(1, 2, 1, 1)
    assert pairs.to_uint8_pairs(img).ravel().tolist() == [0, 255]
