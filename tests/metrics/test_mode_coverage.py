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

@pytest.mark.parametrize('toy', ['ring8', 'grid25'])
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

#----------------------------------------------------------------------------
# 2-D toys through the registry.

class ToyG(torch.nn.Module):
    """Picks mode floor(Phi(z0) * K) (or always `only`), with spread `spread` std; outputs [N, 2] points."""
    def __init__(self, toy, spread=0.5, only=None):
        super().__init__()
        self.z_dim, self.c_dim = 3, 0
        self.register_buffer('means', torch.tensor(mc.TOYS[toy]['means'], dtype=torch.float32))
        self.std, self.spread, self.only = mc.TOYS[toy]['std'], spread, only

    def forward(self, z, c):
        k = self.means.shape[0]
        idx = (torch.special.ndtr(z[:, 0]) * k).long().clamp(0, k - 1) if self.only is None else torch.full_like(z[:, 0], self.only).long()
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
# discs8: real images, hand-drawn images (PIL, hard edges: an independent drawing) and generators.

from stylegan_som import datasets_builtin as db

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
