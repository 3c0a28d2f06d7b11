"""Mode-coverage benchmarks that need no downloaded weights (protocols of PacGAN, Lin et al. 2018).

What the generator must produce, for G called as G(z=z, c=c, **G_kwargs) with z ~ N(0, I) of shape [N, G.z_dim]
(c is left out for generators whose forward has no c; unconditional generators get c of shape [N, 0]):

* `modes_ring8`, `modes_grid25`: any tensor with 2 values per sample (e.g. [N, 2], or [N, 2, 1, 1]), read as points
  in data coordinates, not in an image range. ring8 has 8 Gaussians at (cos 2 pi i/8, sin 2 pi i/8), std 0.01; grid25
  has 25 at {-4, -2, 0, 2, 4}^2, std 0.05. Of 2,500 samples, a sample is high quality if it is within 3 std of its
  nearest mode; a mode is covered if it is the nearest mode of at least one high-quality sample. Reported:
  `modes_<toy>` (covered modes), `modes_<toy>_hq` (share of high-quality samples) and `modes_<toy>_rkl`
  (KL(histogram of high-quality samples over the modes || uniform); NaN if no sample is high quality).
* `modes_grid25_unequal`: the same for grid25-unequal (grid25's means and std, unequal mode weights from 0.1006 down
  to 0.0101: see stylegan_som/data/points.py), except that the reverse KL is taken against those weights:
  KL(high-quality histogram || mode weights), 0 for a generator that draws the modes as often as the data does.
* `modes_stacked_mnist`: images [N, 3, H, W] in [-1, 1] like any image generator; each channel is one MNIST digit.
  Images are quantised to 8 bits as for the other metrics and, if H, W != 28, resized to 28x28 (bilinear with
  antialiasing). Each channel is classified by a CNN this module trains on MNIST (>= 99% test accuracy), giving a
  triple out of 1,000. Of 26,000 samples, reported: `modes_stacked_mnist` (distinct triples),
  `modes_stacked_mnist_kl` (KL(triple histogram || uniform over 1,000)) and `modes_stacked_mnist_hq` (share of
  samples whose three digits the classifier reads with probability >= 0.9). 26,000 real stacked-MNIST images score
  1,000 modes, KL 0.023 and 0.92. The KL counts every sample, read or guessed: a low share says how much of it is
  the classifier's guesses.
* `modes_mnist`: images [N, 1, H, W] in [-1, 1], one MNIST digit each (--data=mnist), quantised like stacked
  MNIST's channels and read by the same classifier; 32x32 images (--data=mnist pads the digits to 32x32) are cropped
  to their central 28x28, other sizes resized. Of 10,000 samples, reported: `modes_mnist` (distinct digits),
  `modes_mnist_kl` (KL(digit histogram || uniform over 10); log 10 = 2.303 for a G that draws one digit) and
  `modes_mnist_hq` (share of samples read with probability >= 0.9, as above). The 10,000 MNIST test digits, padded
  or not, score 10 modes, KL 0.0018 and 0.97 (99.24% of them read right).
* `modes_discs8`: images [N, 3, 32, 32] in [-1, 1], scored against the built-in dataset `discs8` (one disc of one
  of 8 colours on black; see stylegan_som/data/builtin.py). Images are quantised to 8 bits, and each is read by
  fixed rules, without a network. Disc pixels are those whose brightest channel is >= 128 (the disc's rim lies
  halfway up the edge ramp there); the mode is the palette colour nearest (Euclidean RGB distance) to the disc
  pixels' mean colour rescaled so that its brightest channel is 255 (hue and saturation decide, a dim but
  right-coloured disc still counts). A sample is high quality if all of these hold:
    - colour: that distance is < 48 (8-bit units; neighbouring palette colours are >= 142 apart);
    - size: the disc's equivalent radius sqrt(area / pi) is within 1 pixel of the data's range [6, 9];
    - shape: roundness area / (2 pi * mean squared distance of disc pixels from their centroid) is >= 0.85
      (1 for a disc, 0.8 for a 2:1 ellipse, 0.67 for two touching discs);
    - background: the brightest channel averages <= 32 over the non-disc pixels (the data's is about 3).
  The real images score 8 modes, 100% high quality and reverse KL ~0. Of 2,500 samples, reported like the 2-D toys:
  `modes_discs8`, `modes_discs8_hq`, `modes_discs8_rkl`.

The classifier is trained once from the MNIST idx files (train-images-idx3-ubyte[.gz] etc.) found in the directory
given by `calc_metrics.py --mnist=DIR`, `set_mnist_dir()` or `SGSOM_MNIST_DIR`, and cached under
`<dnnlib cache>/gan-metrics/mnist-classifier-<hash>.pt`, the hash covering the training settings and the data files.
These metrics run on rank 0 only; the sample counts are small.
"""

import copy
import gzip
import hashlib
import os
import struct
import time
import uuid

import numpy as np
import torch
import torch.nn.functional as F

import dnnlib
from stylegan_som import legacy
from stylegan_som.data.points import TOYS
from . import metric_utils

#----------------------------------------------------------------------------
# 2-D toys: scored against the means, std and mode weights (TOYS) the training data (--data=ring8 etc.) is drawn from.

def kl_to_uniform(counts):
    """KL(counts / sum || uniform over len(counts)); NaN for an empty histogram."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() <= 0:
        return float('nan')
    p = counts / counts.sum()
    p = p[p > 0] # 0 log 0 = 0
    return float(np.sum(p * np.log(p * counts.size)))

def kl_to_weights(counts, weights=None):
    """KL(counts / sum || weights) for mode weights [K] (normalised here); with weights None or all equal, exactly
    kl_to_uniform(counts). NaN for an empty histogram."""
    if weights is None:
        return kl_to_uniform(counts)
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != counts.shape or not np.all(weights > 0):
        raise ValueError(f'Mode weights must be {counts.size} positive numbers, got {weights.tolist()}')
    if np.all(weights == weights[0]):
        return kl_to_uniform(counts)
    if counts.sum() <= 0:
        return float('nan')
    p = counts / counts.sum()
    keep = p > 0 # 0 log 0 = 0
    return float(np.sum(p[keep] * np.log(p[keep] * weights.sum() / weights[keep])))

def score_points(points, means, std, threshold=3, weights=None):
    """Mode coverage of 2-D samples: dict(modes, hq, rkl, counts) as described in the module docstring; the
    reverse KL is against the mode weights (None: uniform)."""
    points = np.asarray(points, dtype=np.float64).reshape(len(points), -1)
    if points.shape[1] != means.shape[1]:
        raise ValueError(f'Toy samples must have {means.shape[1]} values each, got {points.shape[1]}')
    dist = np.sqrt(np.square(points[:, None, :] - means[None, :, :]).sum(-1)) / std # [N, K] in units of std
    nearest = dist.argmin(axis=1)
    good = dist[np.arange(len(points)), nearest] < threshold
    counts = np.bincount(nearest[good], minlength=len(means))
    return dict(modes=int(np.count_nonzero(counts)), hq=float(good.mean()) if len(points) else float('nan'),
        rkl=kl_to_weights(counts, weights), counts=counts)

def _generate(opts, num, batch_size, to_numpy):
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    dataset = metric_utils.make_dataset_or_none(opts)
    progress = opts.progress.sub(tag='generator samples', num_items=num)
    out = []
    done = 0
    while done < num:
        b = min(batch_size, num - done)
        z = torch.randn([b, G.z_dim], device=opts.device)
        c = metric_utils.sample_labels(opts, dataset, b)
        out.append(to_numpy(legacy.run_generator(G, z, c, **opts.G_kwargs)))
        done += b
        progress.update(done)
    return np.concatenate(out)

def compute_toy_modes(opts, toy, num_gen=2500, batch_size=500):
    """dict(modes, hq, rkl) for samples of opts.G scored against the named toy (a key of TOYS)."""
    if opts.rank != 0:
        return dict(modes=float('nan'), hq=float('nan'), rkl=float('nan'))
    def to_points(x):
        x = x.reshape(x.shape[0], -1)
        if x.shape[1] != 2:
            raise ValueError(f'modes_{toy} needs a generator of 2-D points, but it outputs {x.shape[1]} values per sample')
        return x.to(torch.float64).cpu().numpy()
    points = _generate(opts, num_gen, batch_size, to_points)
    res = score_points(points, TOYS[toy]['means'], TOYS[toy]['std'], weights=TOYS[toy]['weights'])
    return dict(modes=res['modes'], hq=res['hq'], rkl=res['rkl'])

#----------------------------------------------------------------------------
# discs8: coloured discs (stylegan_som.data.builtin), read by fixed rules.

DISCS8_RULES = dict(
    disc_level      = 128,      # a pixel belongs to the disc if its brightest channel is at least this
    colour_tol      = 48.0,     # max distance of the rescaled mean disc colour to its palette colour (8-bit units)
    radius_margin   = 1.0,      # equivalent radius may leave the data's radius range by this many pixels
    min_roundness   = 0.85,     # area / (2 pi * second moment about the centroid); 1 = disc
    max_background  = 32.0,     # mean brightest channel outside the disc
)

def to_uint8_images(images):
    """Generator output in [-1, 1] -> uint8, quantised as saved images are; uint8 input passes through."""
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        images = (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return images

@torch.no_grad()
def read_discs8(images):
    """Per-image readings of images [N, 3, 32, 32] (uint8, or float in [-1, 1]): dict of float64/int64 arrays
    mode (nearest palette colour), colour_dist, radius (equivalent), roundness, background, hq (bool)."""
    from stylegan_som.data.builtin import DISCS8_PALETTE, DISCS8_RADIUS, DISCS8_RES
    r = DISCS8_RULES
    images = to_uint8_images(images)
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2:] != (DISCS8_RES, DISCS8_RES):
        raise ValueError(f'modes_discs8 needs images of shape [N, 3, {DISCS8_RES}, {DISCS8_RES}] like the discs8 '
            f'dataset, got {list(images.shape)}')
    x = images.to(torch.float64).cpu()
    peak = x.amax(dim=1) # [N, H, W]
    disc = (peak >= r['disc_level']).to(torch.float64)
    area = disc.sum((1, 2))
    safe_area = area.clamp(min=1)
    colour = (x * disc[:, None]).sum((2, 3)) / safe_area[:, None] # [N, 3]
    colour = colour / colour.amax(dim=1, keepdim=True).clamp(min=1) * 255
    dist = torch.cdist(colour, torch.as_tensor(DISCS8_PALETTE, dtype=torch.float64)) # [N, 8]
    colour_dist, mode = dist.min(dim=1)

    h, w = disc.shape[1:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing='ij')
    cy = (disc * yy).sum((1, 2)) / safe_area
    cx = (disc * xx).sum((1, 2)) / safe_area
    moment = (disc * ((yy - cy[:, None, None]) ** 2 + (xx - cx[:, None, None]) ** 2)).sum((1, 2)) / safe_area
    roundness = torch.where(area > 0, area / (2 * np.pi * moment.clamp(min=1e-12)), torch.zeros_like(area))
    background = (peak * (1 - disc)).sum((1, 2)) / (h * w - area).clamp(min=1)

    radius = torch.sqrt(area / np.pi)
    hq = (area > 0) & (colour_dist < r['colour_tol']) & (roundness >= r['min_roundness']) \
        & (radius >= DISCS8_RADIUS[0] - r['radius_margin']) & (radius <= DISCS8_RADIUS[1] + r['radius_margin']) \
        & (background <= r['max_background'])
    out = dict(mode=mode, colour_dist=colour_dist, radius=radius, roundness=roundness, background=background, hq=hq)
    return {k: v.numpy() for k, v in out.items()}

def score_discs8(images):
    """Mode coverage of images [N, 3, 32, 32] against discs8: dict(modes, hq, rkl, counts)."""
    read = read_discs8(images)
    counts = np.bincount(read['mode'][read['hq']], minlength=8)
    return dict(modes=int(np.count_nonzero(counts)), hq=float(read['hq'].mean()) if len(read['hq']) else float('nan'),
        rkl=kl_to_uniform(counts), counts=counts)

def compute_discs8_modes(opts, num_gen=2500, batch_size=250):
    """dict(modes, hq, rkl) for images of opts.G scored against discs8."""
    if opts.rank != 0:
        return dict(modes=float('nan'), hq=float('nan'), rkl=float('nan'))
    images = _generate(opts, num_gen, batch_size, lambda x: to_uint8_images(x).cpu().numpy())
    res = score_discs8(images)
    return dict(modes=res['modes'], hq=res['hq'], rkl=res['rkl'])

#----------------------------------------------------------------------------
# MNIST files.

MNIST_DIR_ENV = 'SGSOM_MNIST_DIR'
MNIST_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test':  ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
_mnist_dir = None

def set_mnist_dir(path):
    global _mnist_dir
    _mnist_dir = path

def get_mnist_dir():
    path = _mnist_dir or os.environ.get(MNIST_DIR_ENV)
    if not path:
        raise IOError('the MNIST metrics (modes_mnist, modes_stacked_mnist, pairs_*) train their digit classifier on '
            'the MNIST idx files (train-images-idx3-ubyte.gz etc.) and do not know where they are: '
            f'pass --mnist=DIR to calc_metrics.py or set {MNIST_DIR_ENV}=DIR')
    if not os.path.isdir(path):
        raise IOError(f'MNIST directory not found: {path}')
    return path

def _find_idx_file(mnist_dir, base):
    for name in (base + '.gz', base):
        if os.path.isfile(os.path.join(mnist_dir, name)):
            return os.path.join(mnist_dir, name)
    raise IOError(f'MNIST file {base}.gz (or {base}) not found in {mnist_dir}')

def read_idx(path):
    """Array from an idx file (the MNIST format: magic 0 0 <type> <ndim>, big-endian dims, raw data), gzip or not."""
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rb') as f:
            data = f.read()
        zero, dtype_code, ndim = struct.unpack('>HBB', data[:4])
        dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: '>i2', 0x0C: '>i4', 0x0D: '>f4', 0x0E: '>f8'}
        if zero != 0 or dtype_code not in dtypes:
            raise ValueError('bad magic number')
        shape = struct.unpack(f'>{ndim}I', data[4 : 4 + 4 * ndim])
        array = np.frombuffer(data, dtype=dtypes[dtype_code], offset=4 + 4 * ndim).reshape(shape)
        return array.astype(array.dtype.newbyteorder('=')) # a native, writable copy
    except Exception as e:
        raise IOError(f'Not a valid idx file: {path} ({e})') from e

def load_mnist(mnist_dir, split):
    """(images uint8 [N, 28, 28], labels int64 [N]) of split 'train' or 'test'."""
    images = read_idx(_find_idx_file(mnist_dir, MNIST_FILES[split][0]))
    labels = read_idx(_find_idx_file(mnist_dir, MNIST_FILES[split][1])).astype(np.int64)
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise IOError(f'MNIST {split} files in {mnist_dir} disagree: images {images.shape}, labels {labels.shape}')
    return images, labels

#----------------------------------------------------------------------------
# Digit classifier.

class MNISTClassifier(torch.nn.Module):
    """Small CNN: uint8 or [-1, 1] float images [N, 1, 28, 28] -> logits [N, 10]."""
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.BatchNorm2d(64), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
        self.head = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Dropout(0.25), torch.nn.Linear(64 * 7 * 7, 128), torch.nn.ReLU(),
            torch.nn.Dropout(0.25), torch.nn.Linear(128, 10))

    def forward(self, x):
        if x.dtype == torch.uint8:
            x = x.to(torch.float32) / 127.5 - 1
        return self.head(self.features(x))

# Bump when the architecture or the training recipe changes, so that old cached weights are not reused.
CLASSIFIER_VERSION = 1
DEFAULT_TRAIN_KWARGS = dict(epochs=3, batch_size=128, lr=2e-3, seed=0)

def _augment(x, gen):
    # Shifts of up to 2 pixels: generated digits are rarely centred as exactly as MNIST's.
    dx, dy = torch.randint(-2, 3, [2], generator=gen).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))

@torch.no_grad()
def evaluate_classifier(model, images, labels, batch_size=2000):
    model.eval()
    images = torch.as_tensor(images).unsqueeze(1)
    correct = 0
    for i in range(0, len(images), batch_size):
        correct += (model(images[i : i + batch_size]).argmax(1) == torch.as_tensor(labels[i : i + batch_size])).sum().item()
    return correct / len(images)

def train_mnist_classifier(train_images, train_labels, epochs=3, batch_size=128, lr=2e-3, seed=0, max_steps=None, verbose=False):
    """Train an MNISTClassifier on uint8 images [N, 28, 28]; deterministic for a given seed. The global RNGs are
    left untouched (the metrics draw their latents from them)."""
    images = torch.as_tensor(train_images).unsqueeze(1)
    labels = torch.as_tensor(train_labels)
    steps_per_epoch = (len(images) + batch_size - 1) // batch_size
    total_steps = epochs * steps_per_epoch if max_steps is None else min(max_steps, epochs * steps_per_epoch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = MNISTClassifier()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(total_steps, 1))
        model.train()
        step = 0
        start = time.time()
        while step < total_steps:
            perm = torch.randperm(len(images), generator=gen)
            for i in range(0, len(images), batch_size):
                if step >= total_steps:
                    break
                idx = perm[i : i + batch_size]
                loss = F.cross_entropy(model(_augment(images[idx], gen)), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                if verbose and (step % 200 == 0 or step == total_steps):
                    print(f'mnist classifier     step {step}/{total_steps} loss {loss.item():.4f} '
                        f'time {dnnlib.util.format_time(time.time() - start)}', flush=True)
    return model.eval()

def _mnist_classifier_key(mnist_dir, train_kwargs):
    files = [_find_idx_file(mnist_dir, base) for split in ('train', 'test') for base in MNIST_FILES[split]]
    data_md5 = [metric_utils._file_md5(f) for f in files]
    args = dict(version=CLASSIFIER_VERSION, train_kwargs=sorted(train_kwargs.items()), data_md5=data_md5)
    return hashlib.md5(repr(sorted(args.items())).encode('utf-8')).hexdigest()

_classifier_cache = dict()
_classifier_override = None

def set_classifier(model):
    """Use `model` (digits [N, 1, 28, 28] uint8 -> logits [N, 10]) instead of the trained CNN; None restores it."""
    global _classifier_override
    _classifier_override = model

def get_mnist_classifier(mnist_dir=None, device=torch.device('cpu'), verbose=False, min_accuracy=0.99, **train_kwargs):
    """The cached digit classifier, trained first if needed; refuses to cache one below `min_accuracy`."""
    if _classifier_override is not None:
        return _classifier_override.to(device)
    mnist_dir = mnist_dir or get_mnist_dir()
    train_kwargs = dict(DEFAULT_TRAIN_KWARGS, **train_kwargs)
    cache_file = dnnlib.make_cache_dir_path('gan-metrics', f'mnist-classifier-{_mnist_classifier_key(mnist_dir, train_kwargs)}.pt')
    if cache_file not in _classifier_cache:
        model = MNISTClassifier()
        if os.path.isfile(cache_file):
            state = torch.load(cache_file, map_location='cpu', weights_only=True) # tensors only: a cache file runs no code
            model.load_state_dict(state['model'])
        else:
            if verbose:
                print(f'Training the stacked-MNIST digit classifier on {mnist_dir} (once; cached as {cache_file})...')
            start = time.time()
            train_images, train_labels = load_mnist(mnist_dir, 'train')
            test_images, test_labels = load_mnist(mnist_dir, 'test')
            model = train_mnist_classifier(train_images, train_labels, verbose=verbose, **train_kwargs)
            accuracy = evaluate_classifier(model, test_images, test_labels)
            if verbose:
                print(f'MNIST test accuracy {accuracy:.4f} after {dnnlib.util.format_time(time.time() - start)}')
            if accuracy < min_accuracy:
                raise RuntimeError(f'The stacked-MNIST classifier reached only {accuracy:.2%} test accuracy on {mnist_dir} '
                    f'(at least {min_accuracy:.0%} needed); not cached')
            os.makedirs(os.path.dirname(cache_file), exist_ok=True)
            temp_file = f'{cache_file}.{uuid.uuid4().hex}'
            torch.save(dict(model=model.state_dict(), test_accuracy=accuracy, train_kwargs=train_kwargs), temp_file)
            os.replace(temp_file, cache_file)
        _classifier_cache[cache_file] = model.eval().requires_grad_(False)
    return _classifier_cache[cache_file].to(device)

#----------------------------------------------------------------------------
# Stacked MNIST.

STACKED_MNIST_MODES = 1000

def to_uint8_digits(images, channels=3, metric='modes_stacked_mnist', padded_res=None):
    """Generator images [N, C, H, W] in [-1, 1] -> uint8 digits [N * C, 1, 28, 28], one per channel (C = channels).
    Images of padded_res x padded_res are cropped to their centre (the digits zero-padded as the data was), other
    sizes resized."""
    if images.ndim != 4 or images.shape[1] != channels:
        raise ValueError(f'{metric} needs images of shape [N, {channels}, H, W], got {list(images.shape)}')
    if images.dtype != torch.uint8:
        images = (images * 127.5 + 128).clamp(0, 255).to(torch.uint8) # quantise like saved samples
    if padded_res is not None and images.shape[2:] == (padded_res, padded_res):
        top = (padded_res - 28) // 2 # where stylegan_som.data.sources' IdxSource put the 28x28 digit
        images = images[:, :, top : top + 28, top : top + 28]
    if images.shape[2:] != (28, 28):
        images = F.interpolate(images.to(torch.float32), size=(28, 28), mode='bilinear', align_corners=False, antialias=True)
        images = images.round().clamp(0, 255).to(torch.uint8)
    return images.reshape(-1, 1, 28, 28)

STACKED_MNIST_CONFIDENCE = 0.9 # a digit is read with confidence if the classifier gives it this probability

@torch.no_grad()
def read_digits(digits, classifier, batch_size=1024):
    """(digit int64 [M], read with confidence bool [M]) for uint8 digits [M, 1, 28, 28]."""
    device = next(iter(classifier.parameters()), torch.empty(0)).device
    probs = torch.cat([torch.softmax(classifier(digits[i : i + batch_size].to(device)).float(), 1).cpu()
        for i in range(0, len(digits), batch_size)])
    confidence, labels = probs.max(1)
    return labels.numpy().astype(np.int64), (confidence >= STACKED_MNIST_CONFIDENCE).numpy()

def read_stacked(images, classifier, batch_size=1024):
    """int64 array [N, 2] for images [N, 3, H, W]: the triple 100 * d0 + 10 * d1 + d2 (channel 0 gives the
    hundreds) and 1 if the classifier reads all three digits with confidence (STACKED_MNIST_CONFIDENCE), else 0."""
    labels, confident = read_digits(to_uint8_digits(torch.as_tensor(images)), classifier, batch_size)
    labels = labels.reshape(-1, 3)
    confident = confident.reshape(-1, 3).all(1).astype(np.int64)
    return np.stack([labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2], confident], axis=1)

def classify_stacked(images, classifier, batch_size=1024):
    """Triples 100 * d0 + 10 * d1 + d2 (channel 0 gives the hundreds) for images [N, 3, H, W]; int64 array [N]."""
    return read_stacked(images, classifier, batch_size)[:, 0]

def score_triples(triples, num_modes=STACKED_MNIST_MODES):
    """(number of distinct triples, KL(triple histogram || uniform over num_modes)); also serves single digits."""
    counts = np.bincount(np.asarray(triples, dtype=np.int64), minlength=num_modes)
    return int(np.count_nonzero(counts)), kl_to_uniform(counts)

def compute_stacked_mnist_modes(opts, num_gen=26000, batch_size=256):
    """(distinct triples, KL to uniform, share of samples whose three digits are all read with confidence)."""
    if opts.rank != 0:
        return float('nan'), float('nan'), float('nan')
    classifier = get_mnist_classifier(device=opts.device, verbose=opts.progress.verbose)
    read = _generate(opts, num_gen, batch_size, lambda x: read_stacked(x, classifier))
    return score_triples(read[:, 0]) + (float(read[:, 1].mean()),)

#----------------------------------------------------------------------------
# MNIST: single digits (a vanilla GAN on MNIST may collapse onto a few of them, e.g. all 1s).

MNIST_MODES = 10
MNIST_PADDED_RES = 32 # --data=mnist zero-pads the digits to 32x32 (stylegan_som.data.sources' default idx_resolution)

def read_mnist(images, classifier, batch_size=1024):
    """int64 array [N, 2] for images [N, 1, H, W]: the digit, and 1 if the classifier reads it with confidence
    (STACKED_MNIST_CONFIDENCE), else 0. 32x32 images are cropped to their central 28x28 (undoing the padding
    --data=mnist trains on; resizing them shrinks the digits, and the classifier reads only 92.8% of the padded
    test digits with confidence instead of 97.2%), other sizes resized."""
    digits = to_uint8_digits(torch.as_tensor(images), channels=1, metric='modes_mnist', padded_res=MNIST_PADDED_RES)
    labels, confident = read_digits(digits, classifier, batch_size)
    return np.stack([labels, confident.astype(np.int64)], axis=1)

def compute_mnist_modes(opts, num_gen=10000, batch_size=256):
    """(distinct digits, KL(digit histogram || uniform over 10), share of samples read with confidence)."""
    if opts.rank != 0:
        return float('nan'), float('nan'), float('nan')
    classifier = get_mnist_classifier(device=opts.device, verbose=opts.progress.verbose)
    read = _generate(opts, num_gen, batch_size, lambda x: read_mnist(x, classifier))
    return score_triples(read[:, 0], MNIST_MODES) + (float(read[:, 1].mean()),)

#----------------------------------------------------------------------------

def coupling_classifier(device=torch.device('cpu')):
    """The digit classifier for the semantic and perceptual couplings of coupled generators (train.py's
    --couple-semantic, --couple-perceptual name this factory): the MNIST files of SGSOM_MNIST_DIR, which train.py
    points at the built-in MNIST."""
    return get_mnist_classifier(device=device)
