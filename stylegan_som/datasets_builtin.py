"""Built-in datasets: made or fetched once into the dnnlib cache, then read from there (`--data=<name>`).

`cifar10`: CIFAR-10 comes from its official python tarball (the one upstream's dataset_tool reads). `cifar10_path()`
returns the cached tarball, downloading it first if needed, with a progress bar and an md5 check. For tests and
mirrors the source can be replaced with the environment variables below (any http(s):// or file:// URL or plain path).

`discs8`: a small multi-modal image set drawn here, with no download, for CPU demos of mode coverage (scored by
the `modes_discs8` metric). 8,000 RGB images of 32x32 (1,000 per mode), each one disc on a black background. The
8 modes are 8 fully saturated colours with hues 0, 45, ..., 315 degrees (`DISCS8_PALETTE`, names in
`DISCS8_CLASSES`); within a mode the disc's centre is jittered uniformly by up to 3 pixels in x and y from the image
centre and its radius is uniform in [6, 9] pixels; the edge is a 2-pixel linear ramp. The set is fixed (seed 0).
`discs8_path()` writes it on first use (about 2 s, 4 MB) as a zip in upstream's dataset_tool layout (labels = mode index
in dataset.json, so --cond=1 works too) under `<cache>/datasets/discs8-v<DISCS8_VERSION>/discs8.zip`, through a
temporary file and a rename; a change to the drawing bumps DISCS8_VERSION so that old copies are not reused.
"""

import hashlib
import io
import json
import os

import numpy as np

import dnnlib

from .dataset_sources import DatasetError

#----------------------------------------------------------------------------

CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz'
CIFAR10_MD5 = 'c58f30108f718f92721af3b95e74349a'
CIFAR10_FILE = 'cifar-10-python.tar.gz'
URL_ENV = 'STYLEGAN_SOM_CIFAR10_URL'
MD5_ENV = 'STYLEGAN_SOM_CIFAR10_MD5'

def cifar10_cache_path():
    return dnnlib.make_cache_dir_path('datasets', CIFAR10_FILE)

def cifar10_path(verbose=True, url=None, md5=None):
    """Local path of the CIFAR-10 python tarball; downloads it into the cache on first use."""
    dest = cifar10_cache_path()
    url = url or os.environ.get(URL_ENV) or CIFAR10_URL
    md5 = (md5 or os.environ.get(MD5_ENV) or CIFAR10_MD5).lower()
    if os.path.isfile(dest):
        actual = _md5_of(dest)
        if actual != md5:
            raise DatasetError(f'The cached CIFAR-10 tarball {dest} has md5 {actual}, expected {md5} (an incomplete '
                f'or different file). Delete it to download again, or give a good copy with '
                f'--data=/path/to/{CIFAR10_FILE}')
        return dest
    download(url, dest, md5, what='CIFAR-10', verbose=verbose)
    return dest

#----------------------------------------------------------------------------
# discs8.

DISCS8_VERSION = 1 # bump on any change to what discs8_images() draws
DISCS8_RES = 32
DISCS8_PER_MODE = 1000
DISCS8_SEED = 0
DISCS8_CENTER_JITTER = 3.0 # pixels, uniform in [-j, j] on each axis
DISCS8_RADIUS = (6.0, 9.0) # pixels, uniform
DISCS8_EDGE = 2.0 # width of the linear alpha ramp across the rim, pixels
DISCS8_CLASSES = ['red', 'orange', 'chartreuse', 'spring-green', 'cyan', 'azure', 'violet', 'rose']

def _hue_to_rgb(hue_deg):
    # Full saturation and value: each channel is a clipped triangle wave over the hue circle.
    h = (hue_deg / 60.0 + np.array([0.0, 4.0, 2.0])) % 6.0 # phase of R, G, B
    return np.clip(np.abs(h - 3.0) - 1.0, 0.0, 1.0)

DISCS8_PALETTE = np.round(np.stack([_hue_to_rgb(45.0 * k) for k in range(8)]) * 255).astype(np.uint8) # [8, 3]

def discs8_images(labels, seed=DISCS8_SEED, res=DISCS8_RES):
    """Draw one disc per label (mode index 0..7): uint8 array [N, res, res, 3] (HWC, as dataset sources hold
    images). Deterministic for a given seed and label list."""
    labels = np.asarray(labels, dtype=np.int64)
    rnd = np.random.RandomState(seed)
    n = len(labels)
    cx, cy = (res - 1) / 2 + rnd.uniform(-DISCS8_CENTER_JITTER, DISCS8_CENTER_JITTER, [2, n, 1, 1])
    radius = rnd.uniform(*DISCS8_RADIUS, [n, 1, 1])
    y, x = np.mgrid[:res, :res].astype(np.float64)
    out = np.empty([n, res, res, 3], dtype=np.uint8)
    for i in range(0, n, 1000): # in chunks: float64 temporaries of all 8,000 would take 200 MB
        s = slice(i, i + 1000)
        dist = np.sqrt(np.square(x - cx[s]) + np.square(y - cy[s])) # [n, res, res], at pixel centres
        alpha = np.clip((radius[s] - dist) / DISCS8_EDGE + 0.5, 0.0, 1.0)
        out[s] = np.round(alpha[..., None] * DISCS8_PALETTE[labels[s]].astype(np.float64)[:, None, None, :])
    return out

def discs8_labels(per_mode=DISCS8_PER_MODE, seed=DISCS8_SEED):
    # Modes in shuffled order, so that any prefix (e.g. --subset) is balanced on average.
    return np.random.RandomState(seed + 1).permutation(np.arange(8 * per_mode) % 8)

def write_discs8(dest, per_mode=DISCS8_PER_MODE, seed=DISCS8_SEED):
    """Write discs8 to the zip `dest` in upstream's dataset_tool layout, atomically (temporary file + rename)."""
    import PIL.Image
    from .dataset_tool import _ZipDest # its temp-file-then-rename writer
    labels = discs8_labels(per_mode, seed)
    images = discs8_images(labels, seed)
    out = _ZipDest(dest)
    ok = False
    try:
        meta = []
        for idx, (img, label) in enumerate(zip(images, labels)):
            name = f'{idx // 1000:05d}/img{idx:08d}.png'
            buf = io.BytesIO()
            PIL.Image.fromarray(img).save(buf, format='png', compress_level=1) # mostly black: 1/6 the size, as fast
            out.write(name, buf.getvalue())
            meta.append([name, int(label)])
        out.write('dataset.json', json.dumps(dict(labels=meta, class_names=DISCS8_CLASSES)))
        ok = True
    finally:
        out.finish(ok)

def discs8_cache_path():
    return dnnlib.make_cache_dir_path('datasets', f'discs8-v{DISCS8_VERSION}', 'discs8.zip')

def discs8_path(verbose=True):
    """Local path of the discs8 zip; drawn into the cache on first use (about a second)."""
    dest = discs8_cache_path()
    if not os.path.isfile(dest):
        if verbose:
            print(f'Drawing the built-in dataset discs8 into {dest}...')
        write_discs8(dest)
    return dest

#----------------------------------------------------------------------------

BUILTIN = {'cifar10': cifar10_path, 'discs8': discs8_path} # names accepted by --data (and the default of --cfg=cifar)

#----------------------------------------------------------------------------

def _md5_of(path):
    h = hashlib.md5()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()

def _local_path(url):
    if url.startswith('file://'):
        import urllib.parse
        return urllib.parse.unquote(urllib.parse.urlparse(url).path)
    return None if '://' in url else url

def _chunks(url, num_attempts=3):
    """-> (total bytes or None, iterator of byte chunks)."""
    path = _local_path(url)
    if path is not None:
        f = open(path, 'rb') # missing file: FileNotFoundError, reported like a failed download
        def gen():
            with f:
                yield from iter(lambda: f.read(1 << 20), b'')
        return os.path.getsize(path), gen()
    import requests # only downloads need it
    for attempt in range(num_attempts):
        try:
            res = requests.get(url, stream=True, timeout=(30, 300))
            res.raise_for_status()
            break
        except requests.HTTPError:
            raise # the server answered; asking again will not help
        except requests.RequestException:
            if attempt == num_attempts - 1:
                raise
    total = res.headers.get('Content-Length')
    def gen():
        with res:
            yield from res.iter_content(chunk_size=1 << 20)
    return (int(total) if total and total.isdigit() else None), gen()

def download(url, dest, md5, what, verbose=True):
    """Stream `url` into `dest` through a temporary file: an interrupted or corrupt download never looks cached."""
    from tqdm import tqdm
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = f'{dest}.part{os.getpid()}'
    h = hashlib.md5()
    try:
        try:
            total, chunks = _chunks(url)
            with open(tmp, 'wb') as f, tqdm(total=total, unit='B', unit_scale=True, unit_divisor=1024,
                    desc=f'Downloading {what}', disable=not verbose, leave=False) as bar:
                for chunk in chunks:
                    f.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
        except Exception as e:
            raise DatasetError(f'Could not download {what} from {url} ({type(e).__name__}: {e}). This machine may be '
                f'offline. Point --data at a local copy (e.g. --data=/path/to/{os.path.basename(dest)}), '
                f'or place the file at {dest}') from e
        if h.hexdigest() != md5.lower():
            raise DatasetError(f'Downloaded {what} from {url} has md5 {h.hexdigest()}, expected {md5}; not kept. '
                f'Try again, or point --data at a good local copy')
        os.replace(tmp, dest)
        if verbose:
            print(f'{what} saved to {dest}')
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

#----------------------------------------------------------------------------
