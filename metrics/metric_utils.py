"""Shared machinery of the metrics: options, feature detectors, feature statistics and progress reports.

Feature detectors are TorchScript files, fetched from upstream StyleGAN2-ADA's URLs through
`dnnlib.util.open_url` (cached under `<dnnlib cache>/downloads`). On a machine without internet, either put the file
in that cache (the error message names the exact path) or point at a local copy:

    Inception-v3 (FID, KID, IS):  calc_metrics.py --inception=PATH   or   SGSOM_INCEPTION=PATH
    VGG16 (precision/recall, PPL): calc_metrics.py --vgg16=PATH       or   SGSOM_VGG16=PATH

The call convention is upstream's: `detector(uint8 NCHW, return_features=True)` -> [N, F] features
(Inception: F = 2048, VGG16: 4096); Inception with `no_output_bias=True` -> [N, 1008] softmax probabilities;
VGG16 with `return_lpips=True` -> LPIPS feature vectors.

Sample counts can be capped for smoke tests with `MetricOptions(max_items=N)`, `calc_metrics.py --max-items=N` or
`SGSOM_METRICS_MAX_ITEMS=N`; results are then not comparable with published figures.
"""

import copy
import hashlib
import os
import pickle
import time
import uuid

import numpy as np
import torch

import dnnlib
from stylegan_som import legacy
from torch_utils import safe_pickle

#----------------------------------------------------------------------------
# Detector locations.

INCEPTION_URL = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt'
VGG16_URL = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt'

INCEPTION_ENV = 'SGSOM_INCEPTION'
VGG16_ENV = 'SGSOM_VGG16'

# url -> (what, command-line flag, environment variable)
_detector_info = {
    INCEPTION_URL: ('Inception-v3 feature detector', '--inception', INCEPTION_ENV),
    VGG16_URL:     ('VGG16 feature network', '--vgg16', VGG16_ENV),
}
_detector_files = dict() # url -> local path or URL set by set_detector_file() (takes precedence over the env var)

MAX_ITEMS_ENV = 'SGSOM_METRICS_MAX_ITEMS'

class DetectorUnavailableError(IOError):
    """A feature detector could be neither found locally nor downloaded."""

def set_detector_file(url, path):
    """Use a local file (or another URL) instead of downloading `url`. None restores the default."""
    if path is None:
        _detector_files.pop(url, None)
    else:
        _detector_files[url] = path

def get_detector_source(url):
    """Where `url`'s detector comes from: (path or URL to open, description of the override or None)."""
    if url in _detector_files:
        flag = _detector_info.get(url, (None, 'set_detector_file()', None))[1]
        return _detector_files[url], flag
    env = _detector_info.get(url, (None, None, None))[2]
    if env is not None and os.environ.get(env):
        return os.environ[env], f'${env}'
    return url, None

def _detector_help(url):
    what, flag, env = _detector_info.get(url, ('feature detector', None, None))
    md5 = hashlib.md5(url.encode('utf-8')).hexdigest()
    cache = os.path.join(dnnlib.make_cache_dir_path('downloads'), md5 + '_' + url.split('/')[-1])
    hint = f'place a copy at {cache}'
    if flag is not None:
        hint += f', or pass {flag}=PATH to calc_metrics.py, or set {env}=PATH'
    return what, hint

def resolve_detector(url, verbose=False):
    """Make sure the detector file is at hand (downloading it into the cache if needed); returns a local path.
    Raises DetectorUnavailableError with one message that says every way to provide it."""
    src, override = get_detector_source(url)
    what, hint = _detector_help(url)
    if override is not None:
        path = src
        if dnnlib.util.is_url(src, allow_file_urls=True):
            try:
                path = dnnlib.util.open_url(src, verbose=verbose, return_filename=True)
            except Exception as e:
                raise DetectorUnavailableError(f'Cannot open the {what} given by {override}: {src} ({e})') from e
        if not os.path.isfile(path):
            raise DetectorUnavailableError(f'The {what} given by {override} does not exist: {src}')
        return path
    try:
        return dnnlib.util.open_url(url, verbose=verbose, return_filename=True)
    except Exception as e:
        # open_url's own hint names only the cache; ours adds the flag and the variable.
        cause = e.__cause__ if e.__cause__ is not None else e
        reason = f'{type(cause).__name__}: {cause}'
        reason = reason if len(reason) <= 200 else reason[:200] + '...'
        raise DetectorUnavailableError(f'Cannot get the {what} from {url} ({reason}). '
            f'Without internet, {hint}.') from e

_file_md5_cache = dict() # (path, size, mtime) -> md5

def _file_md5(path):
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in _file_md5_cache:
        h = hashlib.md5()
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
        _file_md5_cache[key] = h.hexdigest()
    return _file_md5_cache[key]

#----------------------------------------------------------------------------

class MetricOptions:
    def __init__(self, G=None, G_kwargs={}, dataset_kwargs={}, num_gpus=1, rank=0, device=None, progress=None, cache=True,
            max_items=None):
        assert 0 <= rank < num_gpus
        if device is None:
            device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')
        if max_items is None and os.environ.get(MAX_ITEMS_ENV):
            try:
                max_items = int(os.environ[MAX_ITEMS_ENV])
            except ValueError:
                raise ValueError(f'{MAX_ITEMS_ENV} must be an integer, got {os.environ[MAX_ITEMS_ENV]!r}') from None
        if max_items is not None and max_items < 1:
            raise ValueError(f'max_items must be at least 1, got {max_items}')
        self.G              = G
        self.G_kwargs       = dnnlib.EasyDict(G_kwargs)
        self.dataset_kwargs = dnnlib.EasyDict(dataset_kwargs)
        self.num_gpus       = num_gpus
        self.rank           = rank
        self.device         = torch.device(device)
        self.progress       = progress.sub() if progress is not None and rank == 0 else ProgressMonitor()
        self.cache          = cache
        self.max_items      = max_items # cap on every sample count (smoke tests only)

def capped(opts, num):
    """`num` limited by opts.max_items; None (= everything) becomes the cap itself."""
    if opts.max_items is None:
        return num
    return opts.max_items if num is None else min(num, opts.max_items)

#----------------------------------------------------------------------------
# Generators with and without a label input (upstream's G takes (z, c), SOMGAN's does not) are called through
# stylegan_som.legacy.run_generator / run_mapping.

def sample_labels(opts, dataset, num):
    """Labels for `num` generated samples: drawn from the dataset like upstream, or empty when there is none.
    With a dataset, the global NumPy RNG is advanced as upstream does even for unconditional G."""
    if dataset is None:
        c_dim = legacy.label_dim(opts.G)
        if c_dim != 0:
            raise ValueError(f'The generator is conditional (c_dim={c_dim}) but no dataset was given to draw labels from')
        return torch.zeros([num, 0], device=opts.device)
    c = [dataset.get_label(np.random.randint(len(dataset))) for _i in range(num)]
    return torch.from_numpy(np.stack(c)).to(opts.device)

#----------------------------------------------------------------------------

_feature_detector_cache = dict()

def get_feature_detector_name(url):
    return os.path.splitext(url.split('/')[-1])[0]

def get_feature_detector(url, device=torch.device('cpu'), num_gpus=1, rank=0, verbose=False):
    assert 0 <= rank < num_gpus
    src, _override = get_detector_source(url)
    key = (url, src, device)
    if key not in _feature_detector_cache:
        is_leader = (rank == 0)
        if not is_leader and num_gpus > 1:
            torch.distributed.barrier() # the leader downloads into the cache first
        path = resolve_detector(url, verbose=(verbose and is_leader))
        try:
            detector = torch.jit.load(path, map_location='cpu')
        except Exception as e:
            raise DetectorUnavailableError(f'Not a TorchScript feature detector: {path} ({e})') from e
        _feature_detector_cache[key] = detector.eval().to(device)
        if is_leader and num_gpus > 1:
            torch.distributed.barrier()
    return _feature_detector_cache[key]

def _detector_cache_key(url):
    # A replacement detector file must not share cached statistics with the real one.
    src, override = get_detector_source(url)
    if override is None:
        return dict()
    return dict(detector_md5=_file_md5(resolve_detector(url)))

#----------------------------------------------------------------------------

class FeatureStats:
    # Attribute names follow upstream so that cached statistics files can be exchanged.
    def __init__(self, capture_all=False, capture_mean_cov=False, max_items=None):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.num_features = None
        self.all_features = None
        self.raw_mean = None
        self.raw_cov = None

    def set_num_features(self, num_features):
        if self.num_features is not None:
            assert num_features == self.num_features
        else:
            self.num_features = num_features
            self.all_features = []
            self.raw_mean = np.zeros([num_features], dtype=np.float64)
            self.raw_cov = np.zeros([num_features, num_features], dtype=np.float64)

    def is_full(self):
        return (self.max_items is not None) and (self.num_items >= self.max_items)

    def append(self, x):
        x = np.asarray(x, dtype=np.float32)
        assert x.ndim == 2
        if self.max_items is not None:
            if self.num_items >= self.max_items:
                return
            x = x[:self.max_items - self.num_items] # drop the overshoot of the last batch
        self.set_num_features(x.shape[1])
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64 # second moments; the mean is subtracted in get_mean_cov()

    def append_torch(self, x, num_gpus=1, rank=0):
        assert isinstance(x, torch.Tensor) and x.ndim == 2
        assert 0 <= rank < num_gpus
        if num_gpus > 1:
            ys = []
            for src in range(num_gpus):
                y = x.clone()
                torch.distributed.broadcast(y, src=src)
                ys.append(y)
            x = torch.stack(ys, dim=1).flatten(0, 1) # interleave ranks: restores the item order of the split
        self.append(x.cpu().numpy())

    def get_all(self):
        assert self.capture_all
        return np.concatenate(self.all_features, axis=0)

    def get_all_torch(self):
        return torch.from_numpy(self.get_all())

    def get_mean_cov(self):
        assert self.capture_mean_cov
        mean = self.raw_mean / self.num_items
        cov = self.raw_cov / self.num_items - np.outer(mean, mean)
        return mean, cov

    def save(self, pkl_file):
        with open(pkl_file, 'wb') as f:
            pickle.dump(self.__dict__, f)

    @staticmethod
    def load(pkl_file):
        with open(pkl_file, 'rb') as f:
            try:
                state = dnnlib.EasyDict(safe_pickle.load(f)) # arrays and numbers only: a cache file runs no code
            except safe_pickle.RefusedGlobal as e:
                raise IOError(f'Refusing to read the feature statistics {pkl_file}: {e}; delete it to recompute them') from e
        obj = FeatureStats(capture_all=state.capture_all, max_items=state.max_items)
        obj.__dict__.update(state)
        return obj

#----------------------------------------------------------------------------

class ProgressMonitor:
    def __init__(self, tag=None, num_items=None, flush_interval=1000, verbose=False, progress_fn=None, pfn_lo=0, pfn_hi=1000, pfn_total=1000):
        self.tag = tag
        self.num_items = num_items
        self.verbose = verbose
        self.flush_interval = flush_interval
        self.progress_fn = progress_fn
        self.pfn_lo = pfn_lo
        self.pfn_hi = pfn_hi
        self.pfn_total = pfn_total
        self.start_time = time.time()
        self.batch_time = self.start_time
        self.batch_items = 0
        if self.progress_fn is not None:
            self.progress_fn(self.pfn_lo, self.pfn_total)

    def update(self, cur_items):
        assert (self.num_items is None) or (cur_items <= self.num_items)
        done = self.num_items is not None and cur_items >= self.num_items
        if cur_items < self.batch_items + self.flush_interval and not done:
            return
        now = time.time()
        ms_per_item = (now - self.batch_time) / max(cur_items - self.batch_items, 1) * 1e3
        if self.verbose and self.tag is not None:
            total = f'/{self.num_items}' if self.num_items is not None else ''
            print(f'{self.tag:<19s} items {f"{cur_items}{total}":<15s} time {dnnlib.util.format_time(now - self.start_time):<12s} '
                f'ms/item {ms_per_item:.2f}', flush=True)
        self.batch_time = now
        self.batch_items = cur_items
        if self.progress_fn is not None and self.num_items is not None:
            self.progress_fn(self.pfn_lo + (self.pfn_hi - self.pfn_lo) * (cur_items / self.num_items), self.pfn_total)

    def sub(self, tag=None, num_items=None, flush_interval=1000, rel_lo=0, rel_hi=1):
        span = self.pfn_hi - self.pfn_lo
        return ProgressMonitor(tag=tag, num_items=num_items, flush_interval=flush_interval, verbose=self.verbose,
            progress_fn=self.progress_fn, pfn_lo=self.pfn_lo + span * rel_lo, pfn_hi=self.pfn_lo + span * rel_hi,
            pfn_total=self.pfn_total)

#----------------------------------------------------------------------------

def _default_loader_kwargs(device):
    # Worker processes and pinned memory pay off only when a GPU is waiting for the images.
    if device.type == 'cuda':
        return dict(pin_memory=True, num_workers=3, prefetch_factor=2)
    return dict(num_workers=0)

def _broadcast_flag(opts, flag):
    if opts.num_gpus > 1:
        flag = torch.as_tensor(flag, dtype=torch.float32, device=opts.device)
        torch.distributed.broadcast(tensor=flag, src=0)
        flag = (float(flag.cpu()) != 0)
    return flag

def compute_feature_stats_for_dataset(opts, detector_url, detector_kwargs, rel_lo=0, rel_hi=1, batch_size=64, data_loader_kwargs=None, max_items=None, **stats_kwargs):
    dataset = dnnlib.util.construct_class_by_name(**opts.dataset_kwargs)
    if data_loader_kwargs is None:
        data_loader_kwargs = _default_loader_kwargs(opts.device)

    # Statistics are cached under a hash of everything that determines them. Unlike upstream the key includes
    # max_items, so that e.g. fid50k and fid50k_full (or a capped smoke test) never share a file.
    cache_file = None
    if opts.cache:
        args = dict(dataset_kwargs=opts.dataset_kwargs, detector_url=detector_url, detector_kwargs=detector_kwargs,
            stats_kwargs=dict(stats_kwargs, max_items=max_items), **_detector_cache_key(detector_url))
        md5 = hashlib.md5(repr(sorted(args.items())).encode('utf-8'))
        cache_tag = f'{dataset.name}-{get_feature_detector_name(detector_url)}-{md5.hexdigest()}'
        cache_file = dnnlib.make_cache_dir_path('gan-metrics', cache_tag + '.pkl')
        if _broadcast_flag(opts, os.path.isfile(cache_file) if opts.rank == 0 else False):
            return FeatureStats.load(cache_file)

    num_items = len(dataset) if max_items is None else min(len(dataset), max_items)
    stats = FeatureStats(max_items=num_items, **stats_kwargs)
    progress = opts.progress.sub(tag='dataset features', num_items=num_items, rel_lo=rel_lo, rel_hi=rel_hi)
    detector = get_feature_detector(url=detector_url, device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank, verbose=progress.verbose)

    # Rank r takes items r, r + num_gpus, ...; append_torch() interleaves them back. The tail wraps around to
    # keep the ranks in step; FeatureStats drops the surplus.
    item_subset = [(i * opts.num_gpus + opts.rank) % num_items for i in range((num_items - 1) // opts.num_gpus + 1)]
    loader = torch.utils.data.DataLoader(dataset=dataset, sampler=item_subset, batch_size=batch_size, **data_loader_kwargs)
    for images, _labels in loader:
        if images.shape[1] == 1:
            images = images.repeat([1, 3, 1, 1]) # detectors expect RGB
        features = detector(images.to(opts.device), **detector_kwargs)
        stats.append_torch(features, num_gpus=opts.num_gpus, rank=opts.rank)
        progress.update(stats.num_items)

    if cache_file is not None and opts.rank == 0:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        temp_file = cache_file + '.' + uuid.uuid4().hex
        stats.save(temp_file)
        os.replace(temp_file, cache_file) # atomic: concurrent readers never see a partial file
    return stats

#----------------------------------------------------------------------------

def make_dataset_or_none(opts):
    """The dataset of opts, or None when no dataset was given (metrics that need none)."""
    if opts.dataset_kwargs.get('class_name') is None:
        return None
    return dnnlib.util.construct_class_by_name(**opts.dataset_kwargs)

def compute_feature_stats_for_generator(opts, detector_url, detector_kwargs, rel_lo=0, rel_hi=1, batch_size=64, batch_gen=None, jit=False, **stats_kwargs):
    if batch_gen is None:
        batch_gen = min(batch_size, 4)
    assert batch_size % batch_gen == 0

    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    dataset = make_dataset_or_none(opts)

    def run_generator(z, c):
        img = legacy.run_generator(G, z, c, **opts.G_kwargs)
        return (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)

    if jit:
        z = torch.zeros([batch_gen, G.z_dim], device=opts.device)
        c = torch.zeros([batch_gen, legacy.label_dim(G)], device=opts.device)
        run_generator = torch.jit.trace(run_generator, [z, c], check_trace=False)

    stats = FeatureStats(**stats_kwargs)
    assert stats.max_items is not None
    progress = opts.progress.sub(tag='generator features', num_items=stats.max_items, rel_lo=rel_lo, rel_hi=rel_hi)
    detector = get_feature_detector(url=detector_url, device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank, verbose=progress.verbose)

    while not stats.is_full():
        images = []
        for _i in range(batch_size // batch_gen):
            z = torch.randn([batch_gen, G.z_dim], device=opts.device)
            c = sample_labels(opts, dataset, batch_gen)
            images.append(run_generator(z, c))
        images = torch.cat(images)
        if images.shape[1] == 1:
            images = images.repeat([1, 3, 1, 1])
        features = detector(images, **detector_kwargs)
        stats.append_torch(features, num_gpus=opts.num_gpus, rank=opts.rank)
        progress.update(stats.num_items)
    return stats

#----------------------------------------------------------------------------
