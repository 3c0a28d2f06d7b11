"""Built-in datasets: fetched once into the dnnlib cache, then read from there.

CIFAR-10 comes from its official python tarball (the one upstream's dataset_tool reads). `cifar10_path()` returns
the cached tarball, downloading it first if needed, with a progress bar and an md5 check. For tests and mirrors the
source can be replaced with the environment variables below (any http(s):// or file:// URL or plain path).
"""

import hashlib
import os

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

BUILTIN = {'cifar10': cifar10_path} # names accepted by --data (and the default of --cfg=cifar)

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
