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

from .sources import DatasetError

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
    labels = discs8_labels(per_mode, seed)
    _write_png_zip(dest, discs8_images(labels, seed), labels, class_names=DISCS8_CLASSES)

def _write_png_zip(dest, images, labels, **extra_json):
    """uint8 images [N, H, W(, C)] and int labels -> `dest` in dataset_tool's zip layout (dataset.json holds the
    labels and any `extra_json` keys), written atomically: a temporary file renamed when complete."""
    import PIL.Image
    from .tool import _ZipDest # its temp-file-then-rename writer
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
        out.write('dataset.json', json.dumps(dict(labels=meta, **extra_json)))
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
# MNIST, Fashion-MNIST and stacked MNIST (H4).
#
# `mnist` and `fashion-mnist` are the four original idx files, fetched once into `<cache>/datasets/<name>/` from
# the URL folder below (or the one in the environment variable, any http(s)://, file:// URL or plain folder)
# and checked file by file. A gzip wrapper differs between mirrors (timestamps), so a file passes when either
# its own md5 or the md5 of its decompressed content is the known one. The path functions return that folder,
# which sources.py reads as idx files (digits zero-padded to 32x32, as upstream's dataset_tool does) and
# which also serves the modes_stacked_mnist metric as its MNIST folder.
#
# `stacked-mnist` (PacGAN's protocol): each image stacks three MNIST training digits, drawn independently and
# uniformly with a fixed seed, as its R, G and B channels at 28x28; the label is the triple d_R*100 + d_G*10 + d_B
# (1,000 modes). Built once from the cached MNIST into a zip in upstream's dataset_tool layout
# (`<cache>/datasets/stacked-mnist-v<STACKED_MNIST_VERSION>/stacked-mnist.zip`).

IDX_FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz',
    't10k-labels-idx1-ubyte.gz')

IDX_DATASETS = {
    'mnist': dnnlib.EasyDict(
        url='https://ossci-datasets.s3.amazonaws.com/mnist/', url_env='STYLEGAN_SOM_MNIST_URL',
        md5={ # file: (md5 of the .gz as published, md5 of its decompressed content)
            'train-images-idx3-ubyte.gz': ('f68b3c2dcbeaaa9fbdd348bbdeb94873', '6bbc9ace898e44ae57da46a324031adb'),
            'train-labels-idx1-ubyte.gz': ('d53e105ee54ea40749a09fcbcd1e9432', 'a25bea736e30d166cdddb491f175f624'),
            't10k-images-idx3-ubyte.gz':  ('9fb629c4189551a2d022fa330f9573f3', '2646ac647ad5339dbf082846283269ea'),
            't10k-labels-idx1-ubyte.gz':  ('ec29112dd5afa0611ce80d1b7f02629c', '27ae3e4e09519cfbb04c329615203637'),
        }),
    'fashion-mnist': dnnlib.EasyDict(
        url='http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/', url_env='STYLEGAN_SOM_FASHION_MNIST_URL',
        md5={
            'train-images-idx3-ubyte.gz': ('8d4fb7e6c68d591d4c3dfef9ec88bf0d', None),
            'train-labels-idx1-ubyte.gz': ('25c81989df183df01b3e8a0aad5dffbe', None),
            't10k-images-idx3-ubyte.gz':  ('bef4ecab320f06d8554ea6380940ec79', None),
            't10k-labels-idx1-ubyte.gz':  ('bb300cfdad3c16e7a12a480ee83cd310', None),
        }),
}

def _gunzip_md5(path):
    import gzip
    h = hashlib.md5()
    try:
        with gzip.open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                h.update(chunk)
    except (OSError, EOFError):
        return None
    return h.hexdigest()

def idx_file_ok(path, md5s):
    """Whether `path` matches (md5 of the file, md5 of its decompressed content); None entries are unknown."""
    gz_md5, raw_md5 = md5s
    return (gz_md5 is not None and _md5_of(path) == gz_md5) or (raw_md5 is not None and _gunzip_md5(path) == raw_md5)

def idx_dataset_dir(name):
    return dnnlib.make_cache_dir_path('datasets', name)

def idx_dataset_path(name, verbose=True, url=None):
    """Folder of the named idx dataset ('mnist', 'fashion-mnist') in the cache; fetches missing files first."""
    spec = IDX_DATASETS[name]
    base = url or os.environ.get(spec.url_env) or spec.url
    dest_dir = idx_dataset_dir(name)
    for fname in IDX_FILES:
        dest = os.path.join(dest_dir, fname)
        if os.path.isfile(dest):
            if not idx_file_ok(dest, spec.md5[fname]):
                raise DatasetError(f'The cached {name} file {dest} does not match its checksum (an incomplete or '
                    f'different file). Delete it to download again, or point --data at a local copy of the idx files')
            continue
        src = base.rstrip('/') + '/' + fname if '://' in base else os.path.join(base, fname)
        download(src, dest, md5=None, what=f'{name} {fname}', verbose=verbose,
            check=lambda tmp, fname=fname: idx_file_ok(tmp, spec.md5[fname]))
    return dest_dir

def mnist_path(verbose=True):
    return idx_dataset_path('mnist', verbose=verbose)

def fashion_mnist_path(verbose=True):
    return idx_dataset_path('fashion-mnist', verbose=verbose)

STACKED_MNIST_VERSION = 1 # bump on any change to what stacked_mnist_images() builds
STACKED_MNIST_SIZE = 60000
STACKED_MNIST_SEED = 0

def stacked_mnist_digits(num_labels, num_images=None, seed=STACKED_MNIST_SEED):
    """Indices [N, 3] into the MNIST training set: the digits of the R, G and B channels of each image."""
    num_images = STACKED_MNIST_SIZE if num_images is None else num_images
    return np.random.RandomState(seed).randint(num_labels, size=[num_images, 3])

def stacked_mnist_images(digits, labels, picks):
    """(images uint8 [N, 28, 28, 3], triple labels int64 [N]) from MNIST digits [M, 28, 28] and labels [M]."""
    images = np.ascontiguousarray(digits[picks].transpose(0, 2, 3, 1)) # [N, 3, 28, 28] -> HWC
    triples = (labels[picks] * np.array([100, 10, 1])).sum(axis=1).astype(np.int64)
    return images, triples

def write_stacked_mnist(dest, mnist_dir, num_images=None, seed=STACKED_MNIST_SEED):
    """Write stacked MNIST to the zip `dest` (upstream's dataset_tool layout, triple labels), atomically."""
    from .sources import IdxSource, find_idx
    found = find_idx(mnist_dir)
    if found is None or found[1] is None:
        raise DatasetError(f'No MNIST training images and labels (train-images-idx3-ubyte[.gz] etc.) in {mnist_dir}')
    digits = IdxSource.read_idx(found[0], 3)
    labels = IdxSource.read_idx(found[1], 1).astype(np.int64)
    images, triples = stacked_mnist_images(digits, labels, stacked_mnist_digits(len(labels), num_images, seed))
    _write_png_zip(dest, images, triples)

def stacked_mnist_cache_path():
    return dnnlib.make_cache_dir_path('datasets', f'stacked-mnist-v{STACKED_MNIST_VERSION}', 'stacked-mnist.zip')

def stacked_mnist_path(verbose=True):
    """Local path of the stacked-MNIST zip; built from the (cached, or fetched) MNIST files on first use."""
    dest = stacked_mnist_cache_path()
    if not os.path.isfile(dest):
        mnist_dir = mnist_path(verbose=verbose)
        if verbose:
            print(f'Building the built-in dataset stacked-mnist into {dest}...')
        write_stacked_mnist(dest, mnist_dir)
    return dest

#----------------------------------------------------------------------------

BUILTIN = {'cifar10': cifar10_path, 'discs8': discs8_path} # names accepted by --data (and the default of --cfg=cifar)
BUILTIN.update({'mnist': mnist_path, 'fashion-mnist': fashion_mnist_path, 'stacked-mnist': stacked_mnist_path}) # H4

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

def download(url, dest, md5, what, verbose=True, check=None):
    """Stream `url` into `dest` through a temporary file: an interrupted or corrupt download never looks cached.
    md5=None skips the md5 of the bytes; check(temp_path) -> bool, if given, must also pass."""
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
        if md5 is not None and h.hexdigest() != md5.lower():
            raise DatasetError(f'Downloaded {what} from {url} has md5 {h.hexdigest()}, expected {md5}; not kept. '
                f'Try again, or point --data at a good local copy')
        if check is not None and not check(tmp):
            raise DatasetError(f'Downloaded {what} from {url} does not match its checksum; not kept. '
                f'Try again, or point --data at a good local copy')
        os.replace(tmp, dest)
        if verbose:
            print(f'{what} saved to {dest}')
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

#----------------------------------------------------------------------------
