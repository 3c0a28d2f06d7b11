import gzip
import math
import os
import struct

import numpy as np
import pytest
import torch

from metrics import metric_main
from metrics import mode_coverage as mc

#----------------------------------------------------------------------------
# 2-D toys: hand-made sample sets.

@pytest.mark.parametrize('toy', ['ring8', 'grid25', 'grid25-unequal'])
def test_all_modes(toy):
    means, std = mc.TOYS[toy]['means'], mc.TOYS[toy]['std']
    rnd = np.random.RandomState(0)
    pts = np.repeat(means, 40, axis=0) + rnd.randn(40 * len(means), 2) * std * 0.5
    r = mc.score_points(pts, means, std)
    assert r['modes'] == len(means) and r['hq'] == 1 and r['rkl'] == pytest.approx(0, abs=1e-12)

@pytest.mark.parametrize('toy', ['ring8', 'grid25'])
def test_one_mode(toy):
    means, std = mc.TOYS[toy]['means'], mc.TOYS[toy]['std']
    pts = means[3] + np.random.RandomState(1).randn(100, 2) * std * 0.5
    r = mc.score_points(pts, means, std)
    assert r['modes'] == 1 and r['hq'] == 1 and r['rkl'] == pytest.approx(math.log(len(means)))

def test_off_mode_noise():
    means, std = mc.TOYS['ring8']['means'], mc.TOYS['ring8']['std']
    between = (means + np.roll(means, 1, axis=0)) / 2 # midpoints between neighbouring modes: far from all
    r = mc.score_points(np.concatenate([between, np.zeros([5, 2])]), means, std)
    assert r['modes'] == 0 and r['hq'] == 0 and math.isnan(r['rkl'])

def test_mixture_of_modes_and_noise():
    means, std = mc.TOYS['grid25']['means'], mc.TOYS['grid25']['std']
    pts = np.concatenate([np.repeat(means[:3], 10, axis=0), np.full([30, 2], 1.0)]) # (1, 1) is 20 std from every mode
    r = mc.score_points(pts, means, std)
    assert r['modes'] == 3 and r['hq'] == 0.5 and r['rkl'] == pytest.approx(math.log(25 / 3))
    assert list(r['counts'][:3]) == [10, 10, 10] and r['counts'][3:].sum() == 0

def test_high_quality_threshold_is_three_std():
    means, std = mc.TOYS['ring8']['means'], mc.TOYS['ring8']['std']
    d = np.array([[2.9 * std, 0], [0, 3.1 * std]])
    r = mc.score_points(means[0] + d, means, std)
    assert r['hq'] == 0.5 and r['modes'] == 1

def test_mode_layouts():
    ring = mc.TOYS['ring8']['means']
    np.testing.assert_allclose(np.linalg.norm(ring, axis=1), 1)
    np.testing.assert_allclose(ring[2], [0, 1], atol=1e-12)
    grid = mc.TOYS['grid25']['means']
    assert grid.shape == (25, 2) and set(grid.ravel()) == {-4, -2, 0, 2, 4}

def test_kl_to_weights_hand_worked():
    counts = [2, 1, 1, 0] # p = (1/2, 1/4, 1/4, 0)
    # Against w = (1/2, 1/4, 1/8, 1/8): 1/2 log 1 + 1/4 log 1 + 1/4 log 2; the empty mode adds nothing.
    assert mc.kl_to_weights(counts, [0.5, 0.25, 0.125, 0.125]) == pytest.approx(0.25 * math.log(2))
    assert mc.kl_to_weights(counts, [4, 2, 1, 1]) == pytest.approx(0.25 * math.log(2)) # normalised first
    # Equal weights (any scale) and None give exactly the uniform figure: 1/2 log 2 + 2 * 1/4 log 1.
    assert mc.kl_to_uniform(counts) == pytest.approx(0.5 * math.log(2))
    for weights in (None, [0.25] * 4, [3, 3, 3, 3]):
        assert mc.kl_to_weights(counts, weights) == mc.kl_to_uniform(counts)
    assert mc.kl_to_weights([3, 1, 0, 0], [1, 1, 1, 1]) == mc.kl_to_uniform([3, 1, 0, 0])
    assert math.isnan(mc.kl_to_weights([0, 0, 0, 0], [4, 2, 1, 1]))
    for bad in ([1, 1, 1], [1, 0, 1, 1], [1, -1, 1, 1]):
        with pytest.raises(ValueError, match='4 positive'):
            mc.kl_to_weights(counts, bad)

def test_equal_weights_give_the_old_scores():
    means, std = mc.TOYS['grid25']['means'], mc.TOYS['grid25']['std']
    pts = np.concatenate([np.repeat(means[:3], [10, 5, 1], axis=0), np.full([30, 2], 1.0)])
    old = mc.score_points(pts, means, std)
    assert old['rkl'] == mc.kl_to_uniform([10, 5, 1] + [0] * 22)
    assert mc.score_points(pts, means, std, weights=np.full(25, 0.04))['rkl'] == old['rkl']
    unequal = mc.score_points(pts, means, std, weights=mc.TOYS['grid25-unequal']['weights'])
    assert unequal['modes'] == old['modes'] and unequal['hq'] == old['hq'] and unequal['rkl'] != old['rkl']

#----------------------------------------------------------------------------
# 2-D toys through the registry.

class ToyG(torch.nn.Module):
    """Picks mode floor(Phi(z0) * K) (or always `only`; or, with `weights`, mode k with probability weights[k]),
    with spread `spread` std; outputs [N, 2] points."""
    def __init__(self, toy, spread=0.5, only=None, weights=None):
        super().__init__()
        self.z_dim, self.c_dim = 3, 0
        self.register_buffer('means', torch.tensor(mc.TOYS[toy]['means'], dtype=torch.float32))
        self.std, self.spread, self.only = mc.TOYS[toy]['std'], spread, only
        k = self.means.shape[0]
        cdf = np.cumsum(np.full(k, 1 / k) if weights is None else weights)
        self.register_buffer('cdf', torch.tensor(cdf[:-1], dtype=torch.float64))

    def forward(self, z, c):
        idx = torch.bucketize(torch.special.ndtr(z[:, 0].double()), self.cdf) if self.only is None else torch.full_like(z[:, 0], self.only).long()
        return self.means[idx] + z[:, 1:3] * self.std * self.spread

def test_ring8_through_registry():
    torch.manual_seed(0)
    res = metric_main.calc_metric('modes_ring8', G=ToyG('ring8'), device='cpu')
    assert res.metric == 'modes_ring8' and set(res.results) == {'modes_ring8', 'modes_ring8_hq', 'modes_ring8_rkl'}
    assert res.results.modes_ring8 == 8 and res.results.modes_ring8_hq == 1 and res.results.modes_ring8_rkl < 0.01

def test_grid25_collapsed_and_noisy_generators():
    torch.manual_seed(0)
    res = metric_main.calc_metric('modes_grid25', G=ToyG('grid25', only=7), device='cpu', max_items=300).results
    assert res.modes_grid25 == 1 and res.modes_grid25_rkl == pytest.approx(math.log(25))
    res = metric_main.calc_metric('modes_grid25', G=ToyG('grid25', spread=100), device='cpu', max_items=300).results
    assert res.modes_grid25_hq < 0.1

def test_grid25_unequal_through_registry():
    w = mc.TOYS['grid25-unequal']['weights']
    torch.manual_seed(0)
    res = metric_main.calc_metric('modes_grid25_unequal', G=ToyG('grid25-unequal', weights=w), device='cpu')
    assert set(res.results) == {'modes_grid25_unequal', 'modes_grid25_unequal_hq', 'modes_grid25_unequal_rkl'}
    res = res.results # 2,500 samples drawn with the data's weights: the KL is only the sampling noise (~24 / 5000)
    assert res.modes_grid25_unequal == 25 and res.modes_grid25_unequal_hq == 1 and res.modes_grid25_unequal_rkl < 0.01
    # Uniform over the modes covers them all, but is far from the weights: KL(uniform || w) = 0.229.
    torch.manual_seed(0)
    res = metric_main.calc_metric('modes_grid25_unequal', G=ToyG('grid25-unequal'), device='cpu').results
    assert res.modes_grid25_unequal == 25 and res.modes_grid25_unequal_rkl == pytest.approx(0.229, abs=0.02) # 0.240
    assert np.mean(np.log(1 / 25 / w)) == pytest.approx(0.22878, abs=1e-5)
    # Collapsed onto the rarest mode (7): -log w_7; onto the commonest (21): -log w_21.
    for mode in (7, 21):
        res = metric_main.calc_metric('modes_grid25_unequal', G=ToyG('grid25-unequal', only=mode), device='cpu', max_items=300).results
        assert res.modes_grid25_unequal == 1 and res.modes_grid25_unequal_rkl == pytest.approx(-math.log(w[mode]))
    # grid25 itself still scores against uniform.
    res = metric_main.calc_metric('modes_grid25', G=ToyG('grid25', only=7), device='cpu', max_items=300).results
    assert res.modes_grid25_rkl == pytest.approx(math.log(25))

def test_toy_metric_rejects_images():
    class ImageG(torch.nn.Module):
        z_dim, c_dim = 2, 0
        def forward(self, z, c):
            return torch.zeros([z.shape[0], 3, 4, 4])
    with pytest.raises(ValueError, match='2-D points'):
        metric_main.calc_metric('modes_ring8', G=ImageG(), device='cpu', max_items=4)

#----------------------------------------------------------------------------
# Stacked MNIST with a stand-in classifier: a digit image of constant grey level 20 d + 10 reads as d.

class GreyLevelClassifier(torch.nn.Module):
    """Reads a grey level of 20 d + 10 as d, with confidence (a margin of 20 logits); 20 d + 2 only just (1 logit)."""
    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1:] == (1, 28, 28)
        level = x.float().mean((1, 2, 3))
        d = (level / 20).floor().long().clamp(0, 9)
        margin = torch.where(level - 20 * d >= 5, 20.0, 1.0)
        return torch.nn.functional.one_hot(d, 10).float() * margin[:, None]

def _stacked(triples, res=32, offset=10):
    digits = torch.tensor([[t // 100, t // 10 % 10, t % 10] for t in triples], dtype=torch.float32)
    grey = (20 * digits + offset) / 127.5 - 1 + 0.25 / 127.5 # in [-1, 1]; exact after 8-bit quantisation
    return grey.reshape(-1, 3, 1, 1).expand(-1, 3, res, res)

def test_stacked_triples_and_scores():
    clf = GreyLevelClassifier()
    assert list(mc.classify_stacked(_stacked([123, 7, 990], res=28), clf)) == [123, 7, 990]
    assert list(mc.classify_stacked(_stacked([456, 809]), clf)) == [456, 809] # 32x32 is resized
    assert mc.score_triples(mc.classify_stacked(_stacked(range(1000)), clf)) == (1000, pytest.approx(0, abs=1e-12))
    assert mc.score_triples([5] * 50) == (1, pytest.approx(math.log(1000)))
    modes, kl = mc.score_triples([1, 1, 2, 3]) # p = (1/2, 1/4, 1/4)
    assert modes == 3 and kl == pytest.approx(0.5 * math.log(500) + 0.5 * math.log(250))
    with pytest.raises(ValueError, match=r'\[N, 3, H, W\]'):
        mc.classify_stacked(torch.zeros([2, 1, 28, 28]), clf)
    # Confidence: all three digits must be read clearly; one doubtful channel makes the sample doubtful.
    images = torch.cat([_stacked([123, 456]), _stacked([789], offset=2)])
    images[1, 2] = _stacked([6], offset=2)[0, 2] # 456 with a doubtful 6
    np.testing.assert_array_equal(mc.read_stacked(images, clf), [[123, 1], [456, 0], [789, 0]])

class StackedG(torch.nn.Module):
    def __init__(self, only=None):
        super().__init__()
        self.z_dim, self.c_dim, self.only = 3, 0, only
    def forward(self, z, c):
        t = (torch.special.ndtr(z[:, 0]) * 1000).long().clamp(0, 999).tolist() if self.only is None else [self.only] * len(z)
        return _stacked(t)

def test_stacked_mnist_through_registry():
    mc.set_classifier(GreyLevelClassifier())
    torch.manual_seed(0)
    res = metric_main.calc_metric('modes_stacked_mnist', G=StackedG(only=707), device='cpu', max_items=50).results
    assert res.modes_stacked_mnist == 1 and res.modes_stacked_mnist_kl == pytest.approx(math.log(1000))
    assert res.modes_stacked_mnist_hq == 1
    res = metric_main.calc_metric('modes_stacked_mnist', G=StackedG(), device='cpu', max_items=3000).results
    assert 900 < res.modes_stacked_mnist <= 1000 and res.modes_stacked_mnist_kl < 0.3

#----------------------------------------------------------------------------
# Single MNIST digits (modes_mnist) with the same stand-in classifier.

def _digits(digits, res=32, offset=10):
    grey = (20 * torch.tensor(digits, dtype=torch.float32) + offset) / 127.5 - 1 + 0.25 / 127.5
    return grey.reshape(-1, 1, 1, 1).expand(-1, 1, res, res)

def test_mnist_digits_and_scores():
    clf = GreyLevelClassifier()
    for res in (28, 32, 64): # as stored, padded as --data=mnist is (cropped), other sizes (resized)
        np.testing.assert_array_equal(mc.read_mnist(_digits(range(10), res=res), clf), [[d, 1] for d in range(10)])
    np.testing.assert_array_equal(mc.read_mnist(_digits([4, 5], offset=2), clf), [[4, 0], [5, 0]]) # doubtful
    # 32x32: exactly the central 28x28 (where the padding put the digit); a bright frame outside it is ignored.
    images = torch.randint(0, 256, [3, 1, 32, 32], dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    digits = mc.to_uint8_digits(images, channels=1, metric='modes_mnist', padded_res=mc.MNIST_PADDED_RES)
    torch.testing.assert_close(digits, images[:, :, 2:30, 2:30])
    framed = _digits([3]).clone()
    framed[:, :, :2] = 1
    assert mc.read_mnist(framed, clf)[0, 0] == 3
    assert mc.to_uint8_digits(_digits([3]), channels=1).shape == (1, 1, 28, 28) # stacked MNIST's rule: resized
    for bad in ([2, 3, 28, 28], [2, 28, 28]):
        with pytest.raises(ValueError, match=r'modes_mnist needs images of shape \[N, 1, H, W\]'):
            mc.read_mnist(torch.zeros(bad), clf)

class DigitG(torch.nn.Module):
    """Digit floor(Phi(z0) * 10), or always `only`, as a 32x32 grey level."""
    def __init__(self, only=None):
        super().__init__()
        self.z_dim, self.c_dim, self.only = 3, 0, only
    def forward(self, z, c):
        d = (torch.special.ndtr(z[:, 0]) * 10).long().clamp(0, 9).tolist() if self.only is None else [self.only] * len(z)
        return _digits(d)

def test_mnist_through_registry(monkeypatch):
    mc.set_classifier(GreyLevelClassifier())
    torch.manual_seed(0)
    res = metric_main.calc_metric('modes_mnist', G=DigitG(only=1), device='cpu', max_items=50)
    assert set(res.results) == {'modes_mnist', 'modes_mnist_kl', 'modes_mnist_hq'}
    assert res.results.modes_mnist == 1 and res.results.modes_mnist_kl == pytest.approx(math.log(10))
    assert res.results.modes_mnist_hq == 1
    assert metric_main.get_metric_needs('modes_mnist') == dict(data=False, detectors=[], mnist=True)
    # 10,000 samples by default; uniform over the digits: every digit, KL only the sampling noise (~9 / 20000).
    asked = []
    generate = mc._generate
    monkeypatch.setattr(mc, '_generate', lambda opts, num, *args: asked.append(num) or generate(opts, num, *args))
    torch.manual_seed(0)
    res = metric_main.calc_metric('modes_mnist', G=DigitG(), device='cpu').results
    assert asked == [10000] and res.modes_mnist == 10 and res.modes_mnist_kl < 0.002 and res.modes_mnist_hq == 1

#----------------------------------------------------------------------------
# MNIST files and classifier training on a tiny synthetic stand-in for MNIST.

def _write_idx(path, array):
    codes = {np.dtype(np.uint8): 0x08}
    with gzip.open(path, 'wb') as f:
        f.write(struct.pack('>HBB', 0, codes[array.dtype], array.ndim) + struct.pack(f'>{array.ndim}I', *array.shape))
        f.write(array.tobytes())

def _fake_digits(n, seed):
    """'Digit' d is a bright 6x6 block at one of 10 places, plus noise."""
    rnd = np.random.RandomState(seed)
    labels = rnd.randint(0, 10, n).astype(np.uint8)
    images = rnd.randint(0, 60, [n, 28, 28]).astype(np.uint8)
    for img, d in zip(images, labels):
        y, x = 2 + 12 * (d // 5), 2 + 5 * (d % 5)
        img[y : y + 6, x : x + 4] = 255
    return images, labels

@pytest.fixture
def fake_mnist(tmp_path):
    root = tmp_path / 'mnist'
    root.mkdir()
    for split, n, seed in (('train', 120, 0), ('test', 60, 1)):
        images, labels = _fake_digits(n, seed)
        _write_idx(root / f'{mc.MNIST_FILES[split][0]}.gz', images)
        _write_idx(root / f'{mc.MNIST_FILES[split][1]}.gz', labels)
    return str(root)

def test_read_idx(fake_mnist, tmp_path):
    images, labels = mc.load_mnist(fake_mnist, 'test')
    ref_images, ref_labels = _fake_digits(60, 1)
    np.testing.assert_array_equal(images, ref_images)
    np.testing.assert_array_equal(labels, ref_labels)
    assert images.flags.writeable
    bad = tmp_path / 'bad.gz'
    with gzip.open(bad, 'wb') as f:
        f.write(b'\x12\x34\x08\x01' + b'\0' * 8)
    with pytest.raises(IOError, match='bad.gz'):
        mc.read_idx(str(bad))
    with pytest.raises(IOError, match='train-images-idx3-ubyte.gz.*not found'):
        mc.load_mnist(str(tmp_path), 'train')

def test_missing_mnist_dir_names_flag_and_variable():
    with pytest.raises(IOError, match=f'--mnist=DIR.*{mc.MNIST_DIR_ENV}'):
        mc.get_mnist_classifier()

def test_classifier_trains_and_is_cached(fake_mnist, monkeypatch):
    monkeypatch.setenv(mc.MNIST_DIR_ENV, fake_mnist)
    kw = dict(epochs=4, batch_size=40, lr=5e-3, min_accuracy=0.8) # 12 steps: the blocks are easy to tell apart
    clf = mc.get_mnist_classifier(**kw)
    images, labels = mc.load_mnist(fake_mnist, 'test')
    assert mc.evaluate_classifier(clf, images, labels) >= 0.8

    # Second use, in a 'new process': loaded from the cache, not trained again.
    monkeypatch.setattr(mc, '_classifier_cache', dict())
    monkeypatch.setattr(mc, 'train_mnist_classifier', lambda *a, **k: pytest.fail('retrained despite the cache'))
    again = mc.get_mnist_classifier(**kw)
    x = torch.as_tensor(images[:8]).unsqueeze(1)
    torch.testing.assert_close(again(x), clf(x))

def test_classifier_below_accuracy_is_refused(fake_mnist):
    mc.set_mnist_dir(fake_mnist)
    with pytest.raises(RuntimeError, match='test accuracy.*not cached'):
        mc.get_mnist_classifier(epochs=1, batch_size=60, min_accuracy=1.01)
    cache_dir = mc.dnnlib.make_cache_dir_path('gan-metrics')
    assert not os.path.isdir(cache_dir) or not [f for f in os.listdir(cache_dir) if 'mnist' in f]

def test_training_leaves_global_rng_alone(fake_mnist):
    images, labels = mc.load_mnist(fake_mnist, 'train')
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    mc.train_mnist_classifier(images, labels, max_steps=1, batch_size=8)
    torch.testing.assert_close(torch.rand(3), expected)

#----------------------------------------------------------------------------
# modes_mnist on real MNIST test digits (../shared/data/mnist beside the checkout), read by the metric's CNN trained
# on a tiny budget: 40 steps of 64 digits (~85% right; the cached one trains for 1,407 steps of 128, 99.2%).

SHARED_MNIST = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data', 'mnist')
needs_mnist = pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason='no local MNIST files (shared/data/mnist)')

@pytest.fixture(scope='module')
def tiny_classifier():
    return mc.train_mnist_classifier(*mc.load_mnist(SHARED_MNIST, 'train'), max_steps=40, batch_size=64)

class RealDigitG(torch.nn.Module):
    """Draws from uint8 digits [M, 28, 28], zero-padded to 32x32 as --data=mnist trains G on them."""
    def __init__(self, digits):
        super().__init__()
        self.z_dim, self.c_dim = 3, 0
        padded = torch.as_tensor(np.pad(digits, [(0, 0), (2, 2), (2, 2)]), dtype=torch.float32)
        self.register_buffer('pool', padded[:, None] / 127.5 - 1 + 0.25 / 127.5) # exact after 8-bit quantisation
    def forward(self, z, c):
        return self.pool[(torch.special.ndtr(z[:, 0]) * len(self.pool)).long().clamp(0, len(self.pool) - 1)]

@needs_mnist
def test_mnist_real_digits(tiny_classifier):
    images, labels = mc.load_mnist(SHARED_MNIST, 'test')
    mc.set_classifier(tiny_classifier)
    for digit in range(10):
        # A G of one digit class, drawing the test digits of it that the classifier reads right as stored (28x28):
        # padded to 32x32 and back, they still read so: one mode, KL log 10.
        pool = images[labels == digit][:200]
        pool = pool[mc.read_digits(torch.as_tensor(pool[:, None]), tiny_classifier)[0] == digit]
        assert len(pool) > 50 # of 200: 106 to 197 (the 8s to the 1s)
        torch.manual_seed(digit)
        res = metric_main.calc_metric('modes_mnist', G=RealDigitG(pool), device='cpu', max_items=200).results
        assert res.modes_mnist == 1 and res.modes_mnist_kl == pytest.approx(math.log(10)), digit
    # All classes (the first 2,000 test digits, as they come): every digit, and a KL far below log 10 (their own
    # histogram has KL 0.0044; the rest is sampling noise and the tiny classifier's mistakes).
    torch.manual_seed(0)
    res = metric_main.calc_metric('modes_mnist', G=RealDigitG(images[:2000]), device='cpu', max_items=1000).results
    assert res.modes_mnist == 10 and res.modes_mnist_kl < 0.1 and 0 < res.modes_mnist_hq < 1

#----------------------------------------------------------------------------
# discs8: real images, hand-drawn images (PIL, hard edges: an independent drawing) and generators.

from stylegan_som.data import builtin as db

def _real_discs8(labels):
    return torch.from_numpy(db.discs8_images(labels)).permute(0, 3, 1, 2) # uint8 NCHW

def _drawn(shapes, background=(0, 0, 0)):
    """uint8 [N, 3, 32, 32]; shapes: one list per image of (colour, (x0, y0, x1, y1)) ellipses, drawn with PIL."""
    import PIL.Image
    import PIL.ImageDraw
    out = []
    for ellipses in shapes:
        img = PIL.Image.new('RGB', (32, 32), tuple(background))
        draw = PIL.ImageDraw.Draw(img)
        for colour, box in ellipses:
            draw.ellipse(box, fill=tuple(int(v) for v in colour))
        out.append(np.asarray(img).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out))

def test_discs8_real_images():
    labels = np.arange(800) % 8
    r = mc.score_discs8(_real_discs8(labels))
    assert r['modes'] == 8 and r['hq'] == 1 and r['rkl'] == pytest.approx(0, abs=1e-12)
    np.testing.assert_array_equal(mc.read_discs8(_real_discs8(labels))['mode'], labels)
    r = mc.score_discs8(_real_discs8(np.full(50, 5)))
    assert r['modes'] == 1 and r['hq'] == 1 and r['rkl'] == pytest.approx(math.log(8))
    assert list(r['counts']) == [0, 0, 0, 0, 0, 50, 0, 0]
    # Float images in [-1, 1] are quantised first: same readings.
    real = _real_discs8(labels[:16])
    as_float = real.to(torch.float32) / 127.5 - 1
    np.testing.assert_array_equal(mc.read_discs8(as_float)['hq'], mc.read_discs8(real)['hq'])

def test_discs8_noise_and_blank_are_not_high_quality():
    torch.manual_seed(0)
    for images in (torch.rand([200, 3, 32, 32]) * 2 - 1, torch.randn([200, 3, 32, 32]) * 0.3 - 0.7,
            torch.full([4, 3, 32, 32], -1.0), torch.zeros([4, 3, 32, 32]), torch.ones([4, 3, 32, 32])):
        r = mc.score_discs8(images)
        assert r['hq'] == 0 and r['modes'] == 0 and math.isnan(r['rkl'])

def test_discs8_rules_one_by_one():
    pal = db.DISCS8_PALETTE.astype(np.int64)
    box = (8, 8, 23, 23) # a centred disc of radius 7.5
    good = [[(pal[k], box)] for k in range(8)]
    near = [[(np.where(pal[k] == 255, 255, pal[k] + 30), box)] for k in range(8)] # off by 30 or 42, < 48
    read = mc.read_discs8(_drawn(good + near))
    assert read['hq'].all() and list(read['mode']) == list(range(8)) * 2

    mixed = (pal[0] + pal[1]) // 2 # halfway between red and orange: ambiguous colour
    bad = [
        [(mixed, box)],                                         # colour
        [((255, 200, 200), box)],                               # colour: washed out
        [(pal[2], (13, 13, 18, 18))],                           # size: radius 3
        [(pal[2], (2, 2, 29, 29))],                             # size: radius 14
        [(pal[3], (3, 11, 28, 20))],                            # shape: ellipse 25 x 9
        [(pal[4], (2, 10, 12, 20)), (pal[4], (19, 10, 29, 20))], # shape: two discs
        [(pal[4], (4, 10, 14, 20)), (pal[5], (17, 10, 27, 20))], # shape and colour: two colours
    ]
    read = mc.read_discs8(_drawn(bad))
    assert not read['hq'].any()
    assert read['colour_dist'][0] > 48 and read['roundness'][4] < 0.85 and read['roundness'][5] < 0.85
    assert read['radius'][2] < 5 and read['radius'][3] > 10

    on_grey = mc.read_discs8(_drawn([[(pal[6], box)]], background=(60, 60, 60)))
    assert not on_grey['hq'][0] and on_grey['background'][0] > 32

    # Half of the disc darker but still above the disc level: hue decides, so it stays high quality.
    dim = [[(pal[7], box), (pal[7] * 0.6, (8, 16, 23, 23))]]
    assert mc.read_discs8(_drawn(dim))['hq'][0]

def test_discs8_rejects_other_shapes():
    with pytest.raises(ValueError, match=r'\[N, 3, 32, 32\]'):
        mc.read_discs8(torch.zeros([2, 3, 28, 28]))
    with pytest.raises(ValueError, match=r'\[N, 3, 32, 32\]'):
        mc.read_discs8(torch.zeros([2, 2]))

class DiscsG(torch.nn.Module):
    """Draws discs8 images of mode floor(Phi(z0) * 8) (or always `only`); outputs [N, 3, 32, 32] in [-1, 1]."""
    def __init__(self, only=None):
        super().__init__()
        self.z_dim, self.c_dim, self.only = 4, 0, only

    def forward(self, z, c):
        k = (torch.special.ndtr(z[:, 0]) * 8).long().clamp(0, 7) if self.only is None else torch.full([len(z)], self.only)
        images = db.discs8_images(k.numpy(), seed=int(torch.randint(1 << 30, []))) # fresh jitter per batch
        return torch.from_numpy(images).permute(0, 3, 1, 2).to(torch.float32) / 127.5 - 1

def test_discs8_through_registry():
    torch.manual_seed(0)
    res = metric_main.calc_metric('modes_discs8', G=DiscsG(), device='cpu', max_items=400)
    assert set(res.results) == {'modes_discs8', 'modes_discs8_hq', 'modes_discs8_rkl'}
    assert res.results.modes_discs8 == 8 and res.results.modes_discs8_hq == 1 and res.results.modes_discs8_rkl < 0.05
    res = metric_main.calc_metric('modes_discs8', G=DiscsG(only=2), device='cpu', max_items=100).results
    assert res.modes_discs8 == 1 and res.modes_discs8_rkl == pytest.approx(math.log(8))
    assert not metric_main.get_metric_needs('modes_discs8').data

#----------------------------------------------------------------------------
