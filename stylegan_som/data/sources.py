"""Readers for every image collection that `--data` and `dataset_tool` accept.

A reader lists its items in a fixed order and returns each as a uint8 HWC array (HW1 for greyscale), plus labels
when the source has any. No torch import here, so `python -m stylegan_som.dataset_tool` starts quickly.

  folder, .zip, .tar/.tar.gz/.tgz/.tar.bz2/.tar.xz
        Images at any depth, sorted by relative path. Labels from `dataset.json` (upstream dataset_tool layout:
        {"labels": [[relative name, label], ...]}), else from first-level class folders (two or more, sorted by
        name). Without dataset.json, a top-level `train/` folder is used on its own (train/test splits), and a
        single wrapping folder is looked through. Compressed tars are decompressed once into the dnnlib cache.
  cifar-10-python.tar.gz, or its extracted cifar-10-batches-py/ folder
        The 50,000 training images (data_batch_1..5) with their labels.
  MNIST-style idx files: a folder holding train-images-idx3-ubyte[.gz], or such a file itself
        Labels from the matching *-labels-idx1-ubyte[.gz]. The 28x28 digits are zero-padded (centred) to
        `idx_resolution` (default 32, as upstream's dataset_tool) because StyleGAN2 needs power-of-two sizes;
        idx_resolution=None keeps them as stored.
"""

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import pickle
import re
import tarfile
import zipfile
import zlib

import numpy as np
import PIL.Image

import dnnlib
from torch_utils import safe_pickle

#----------------------------------------------------------------------------

class DatasetError(OSError, ValueError):
    """Unusable dataset input. The message names the file, folder or flag at fault.

    Both an OSError (what upstream's dataset code raises, and what callers catch) and a ValueError."""

SUPPORTED = ('a folder of images, a .zip, a .tar/.tar.gz/.tgz of images, cifar-10-python.tar.gz, '
    'or MNIST idx files (train-images-idx3-ubyte[.gz])')

_COMMON = {'.png', '.jpg', '.jpeg', '.bmp', '.webp'}
_TAR_EXTS = ('.tar', '.tar.gz', '.tgz', '.tar.bz2', '.tbz2', '.tar.xz', '.txz')
_IDX_IMAGES = re.compile(r'^(.*)-images[-.]idx3-ubyte(\.gz)?$')

def image_exts():
    PIL.Image.init()
    return set(PIL.Image.EXTENSION)

def _ext(name):
    return os.path.splitext(name)[1].lower()

def is_tar_name(path):
    return os.path.basename(path).lower().endswith(_TAR_EXTS)

def strip_archive_ext(name):
    """'x.tar.gz' -> 'x', 'x.zip' -> 'x', 'dir/' -> 'dir'."""
    name = os.path.basename(os.path.normpath(name))
    for ext in sorted(_TAR_EXTS + ('.zip', '.gz'), key=len, reverse=True):
        if name.lower().endswith(ext):
            return name[:-len(ext)]
    return name

def _file_key(path):
    # Identifies one version of a file for the caches: same path, size and mtime = same content.
    st = os.stat(path)
    return hashlib.md5(f'{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}'.encode()).hexdigest()[:16]

#----------------------------------------------------------------------------
# Turning a PIL image into an array with a predictable number of channels.

_MODE_CHANNELS = {'1': 1, 'L': 1, 'LA': 2, 'RGB': 3, 'RGBA': 4, 'CMYK': 3, 'YCbCr': 3, 'LAB': 3, 'HSV': 3, 'PA': 4}

def mode_channels(img, what):
    """Channels that `pil_to_array` will return for this (lazily opened) image."""
    if img.mode == 'P':
        return 4 if 'transparency' in img.info else 3
    if img.mode not in _MODE_CHANNELS:
        raise DatasetError(f'{what}: image mode {img.mode} (16/32-bit or unusual) is not supported; '
            f'convert it to 8-bit greyscale or RGB')
    return _MODE_CHANNELS[img.mode]

def pil_to_array(img, what):
    channels = mode_channels(img, what)
    if img.mode not in ('L', 'LA', 'RGB', 'RGBA'): # palette, bilevel, CMYK, ...: expand to plain pixels
        img = img.convert({1: 'L', 3: 'RGB', 4: 'RGBA'}[channels])
    array = np.asarray(img, dtype=np.uint8)
    return array[:, :, np.newaxis] if array.ndim == 2 else array

def _decode_problem(e):
    # PIL names the in-memory buffer ("cannot identify image file <_io.BytesIO object at 0x...>"); say what it means.
    if isinstance(e, PIL.UnidentifiedImageError):
        return 'not in an image format PIL can read (wrong extension, or the header is damaged)'
    return e

def decode_image(data, what):
    """Encoded bytes -> uint8 HWC; any decoding problem becomes a DatasetError naming `what`."""
    try:
        with PIL.Image.open(io.BytesIO(data)) as img:
            img.load()
            return pil_to_array(img, what)
    except DatasetError:
        raise
    except Exception as e:
        raise DatasetError(f'Corrupt or unreadable image {what}: {_decode_problem(e)}') from e

def image_header(data, what):
    """(width, height, channels) from the header alone; no full decode."""
    try:
        with PIL.Image.open(io.BytesIO(data)) as img:
            return img.size[0], img.size[1], mode_channels(img, what)
    except DatasetError:
        raise
    except Exception as e:
        raise DatasetError(f'Corrupt or unreadable image {what}: {_decode_problem(e)}') from e

#----------------------------------------------------------------------------

class Source:
    """Common interface. Subclasses set path, name, num_items and implement the methods below."""
    kind = None
    note = None # a remark for the user about what was chosen (e.g. only train/ of a train/test tree)
    uniform = False # True: every item has the same shape by construction (no need to check each)
    class_names = None # list of str when labels are class indices with known names

    def __len__(self):
        return self.num_items

    def item_name(self, idx): # for error messages
        return f'{self.path} item {idx}'

    def load(self, idx): # -> uint8 HWC
        raise NotImplementedError

    def header(self, idx): # -> (width, height, channels); subclasses with uniform arrays answer cheaply
        h, w, c = self.load(idx).shape
        return w, h, c

    def labels(self): # -> None, int64 [N] or float32 [N, D]
        return None

    def fingerprint(self): # -> str naming this exact content (archives: path, size, mtime), or None
        return None

    def close(self):
        pass

    def __getstate__(self): # open handles and big arrays are not pickled; they come back lazily
        return {k: (None if k in self._transient else v) for k, v in self.__dict__.items()}

    _transient = ()

#----------------------------------------------------------------------------
# Containers of encoded image files: folder, zip, tar.

def _layout(names):
    """Pick the images and label source from the list of files in a container.

    Returns (root, image names, dataset.json name or None, note). `root` is a prefix ending in '/' or ''."""
    names = [n for n in names if not any(part.startswith('._') or part in ('__MACOSX', '.DS_Store') for part in n.split('/'))]
    exts = image_exts()
    images = sorted(n for n in names if _ext(n) in exts)

    def unwrap(root):
        while True:
            rest = [n[len(root):] for n in names if n.startswith(root)]
            if not rest or any('/' not in r for r in rest):
                return root
            tops = {r.split('/', 1)[0] for r in rest}
            if len(tops) != 1:
                return root
            root += tops.pop() + '/'

    root = unwrap('')
    meta = root + 'dataset.json'
    note = None
    if meta not in names:
        meta = None
        train = root + 'train/'
        if any(n.startswith(train) for n in images):
            left_out = len(images)
            images = [n for n in images if n.startswith(train)]
            left_out -= len(images)
            root = unwrap(train)
            if left_out:
                note = f'using the {len(images)} images under {train} ({left_out} elsewhere, e.g. test/, left out)'
    return root, images, meta, note


class ContainerSource(Source):
    _transient = ('_handle', '_pid')

    def __init__(self, path, names):
        self.path = path
        self.name = strip_archive_ext(path)
        self._handle = None
        self._pid = None
        self.root, self.image_names, self.meta_name, self.note = _layout(names)
        self.num_items = len(self.image_names)
        if self.num_items == 0:
            hint = ''
            if os.path.isdir(path): # a folder that holds a dataset file rather than being one
                inner = sorted(f for f in os.listdir(path) if f.lower().endswith(_TAR_EXTS + ('.zip',))
                    or _IDX_IMAGES.match(f))
                hint = f'; it holds {", ".join(inner[:3])}: pass that file as the dataset' if inner else ''
            raise DatasetError(f'No images found in {path} (searched at any depth for {", ".join(sorted(image_exts() & _COMMON))} '
                f'and other image types){hint}. Accepted: {SUPPORTED}')

    def item_name(self, idx):
        return f'{self.image_names[idx]} in {self.path}'

    def read_bytes(self, name):
        raise NotImplementedError

    def load(self, idx):
        return decode_image(self._read_item(idx), self.item_name(idx))

    def header(self, idx):
        return image_header(self._read_item(idx), self.item_name(idx))

    def _read_item(self, idx):
        try:
            return self.read_bytes(self.image_names[idx])
        except DatasetError:
            raise
        except Exception as e:
            raise DatasetError(f'Cannot read {self.item_name(idx)}: {e}') from e

    def labels(self):
        if self.meta_name is not None:
            return self._json_labels()
        # Class folders: every image sits in a first-level folder and there are at least two of them.
        rel = [n[len(self.root):] for n in self.image_names]
        if not all('/' in r for r in rel):
            return None
        folders = [r.split('/', 1)[0] for r in rel]
        classes = sorted(set(folders))
        if len(classes) < 2:
            return None
        self.class_names = classes
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[f] for f in folders], dtype=np.int64)

    def _json_labels(self):
        what = f'{self.meta_name} in {self.path}'
        try:
            meta = json.loads(self.read_bytes(self.meta_name))
            labels = meta['labels']
        except Exception as e:
            raise DatasetError(f'Cannot read labels from {what}: expected {{"labels": [[name, label], ...]}} ({e})') from e
        if labels is None:
            return None
        try:
            labels = dict(labels)
        except Exception as e:
            raise DatasetError(f'{what}: "labels" must be a list of [name, label] pairs ({e})') from e
        names = [n[len(self.root):] for n in self.image_names]
        missing = [n for n in names if n not in labels]
        if missing:
            raise DatasetError(f'{what} has no label for {missing[0]} ({len(missing)} of {len(names)} images unlabelled)')
        values = [labels[n] for n in names]
        try:
            array = np.array(values)
            if array.ndim == 1 and np.issubdtype(array.dtype, np.number) and np.all(array >= 0) \
                    and np.all(array == np.round(array)): # upstream casts 1-D labels to int64
                self.class_names = meta.get('class_names') if isinstance(meta.get('class_names'), list) else None
                return array.astype(np.int64)
            if array.ndim == 2 and np.issubdtype(array.dtype, np.number):
                return array.astype(np.float32)
        except Exception:
            pass
        raise DatasetError(f'{what}: labels must be non-negative class indices or equal-length number lists, '
            f'got e.g. {values[0]!r}')

    def close(self):
        if self._handle is not None:
            try:
                self._handle.close()
            finally:
                self._handle = None

    def _get_handle(self, opener):
        # A handle opened before a fork would share its file position with the child; reopen per process.
        if self._handle is None or self._pid != os.getpid():
            self._handle = opener()
            self._pid = os.getpid()
        return self._handle


class FolderSource(ContainerSource):
    kind = 'dir'

    def __init__(self, path):
        names = []
        for root, dirs, files in os.walk(path): # symlinked folders are not followed, as upstream
            dirs.sort()
            rel = os.path.relpath(root, path)
            names += [f if rel == '.' else f'{rel}/{f}'.replace(os.sep, '/') for f in files]
        super().__init__(path, names)

    def read_bytes(self, name):
        with open(os.path.join(self.path, name), 'rb') as f:
            return f.read()


class ZipSource(ContainerSource):
    kind = 'zip'

    def __init__(self, path):
        try:
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if not n.endswith('/')]
        except (zipfile.BadZipFile, OSError) as e:
            raise DatasetError(f'Cannot open zip {path}: {e}') from e
        super().__init__(path, names)

    def read_bytes(self, name):
        return self._get_handle(lambda: zipfile.ZipFile(self.path)).read(name)

    def fingerprint(self):
        return _file_key(self.path)


class TarSource(ContainerSource):
    """Reads members straight from an uncompressed tar by offset. A compressed tar is first decompressed once into
    the cache (one .tar file, not extracted); the member index is cached beside it, keyed by path, size and mtime."""
    kind = 'tar'

    def __init__(self, path, cache_dir=None):
        self._tar_path, index = tar_index(path, cache_dir)
        self._members = {n: (o, s) for n, o, s in zip(index['names'], index['offsets'], index['sizes'])}
        super().__init__(path, list(self._members)) # a name appended twice counts once (the last copy), as tar does

    def fingerprint(self):
        return _file_key(self.path)

    def read_bytes(self, name):
        offset, size = self._members[name]
        fd = self._get_handle(lambda: open(self._tar_path, 'rb'))
        if hasattr(os, 'pread'):
            data = os.pread(fd.fileno(), size, offset)
        else:
            fd.seek(offset)
            data = fd.read(size)
        if len(data) != size:
            raise DatasetError(f'{self._tar_path} is truncated (member {name}); delete it to rebuild the cache')
        return data


def tar_cache_dir(cache_dir=None):
    return cache_dir if cache_dir is not None else dnnlib.make_cache_dir_path('datasets', 'tar')

_READ_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError)

def _compression(path):
    with open(path, 'rb') as f:
        magic = f.read(6)
    if magic[:2] == b'\x1f\x8b':
        return gzip.open
    if magic[:3] == b'BZh':
        return bz2.open
    if magic == b'\xfd7zXZ\x00':
        return lzma.open
    return None

def tar_index(path, cache_dir=None):
    """-> (path of an uncompressed tar, {'names', 'offsets', 'sizes'} of its regular files)."""
    key = _file_key(path)
    stem = re.sub(r'[^0-9a-zA-Z._-]', '_', strip_archive_ext(path))
    cache_dir = tar_cache_dir(cache_dir)
    index_path = os.path.join(cache_dir, f'{stem}-{key}.index.json')
    opener = _compression(path)
    tar_path = os.path.join(cache_dir, f'{stem}-{key}.tar') if opener is not None else path
    if os.path.isfile(index_path) and os.path.isfile(tar_path):
        try:
            with open(index_path) as f:
                return tar_path, json.load(f)
        except (OSError, ValueError):
            pass # damaged index: rebuild it
    cache_hint = (f'the cache folder {cache_dir}; set DNNLIB_CACHE_DIR to a writable folder'
        + (' with room for the uncompressed archive' if opener is not None else ''))
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:
        raise DatasetError(f'Cannot create {cache_hint} ({e})') from e
    if opener is not None:
        _decompress(path, opener, tar_path, cache_hint)
    index = dict(names=[], offsets=[], sizes=[])
    try:
        with tarfile.open(tar_path, 'r:') as tar:
            for m in tar:
                if m.isfile():
                    name = m.name[2:] if m.name.startswith('./') else m.name
                    index['names'].append(name.lstrip('/'))
                    index['offsets'].append(m.offset_data)
                    index['sizes'].append(m.size)
    except _READ_ERRORS as e:
        raise DatasetError(f'Cannot read tar archive {path}: {e}') from e
    try:
        _atomic_write(index_path, json.dumps(index).encode())
    except OSError as e:
        raise DatasetError(f'Cannot write the index of {path} to {cache_hint} ({e})') from e
    return tar_path, index

def _decompress(path, opener, dest, cache_hint):
    # Separate read and write errors: a corrupt archive and a full disk need different fixes.
    tmp = f'{dest}.tmp{os.getpid()}'
    try:
        with opener(path, 'rb') as src:
            try:
                dst = open(tmp, 'wb')
            except OSError as e:
                raise DatasetError(f'Cannot write to {cache_hint} ({e})') from e
            with dst:
                while True:
                    try:
                        chunk = src.read(1 << 20)
                    except _READ_ERRORS as e:
                        raise DatasetError(f'Cannot decompress {path}: {e}') from e
                    if not chunk:
                        break
                    try:
                        dst.write(chunk)
                    except OSError as e:
                        raise DatasetError(f'Cannot decompress {path} into {cache_hint} ({e})') from e
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

def _atomic_write(path, data):
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)

#----------------------------------------------------------------------------
# Sources held as one uint8 array in memory: CIFAR-10 batches, idx files.

class ArraySource(Source):
    _transient = ('_images', '_labels')
    uniform = True

    def _ensure(self):
        if self._images is None:
            self._images, self._labels = self._read()
        return self._images

    def load(self, idx):
        return self._ensure()[idx]

    def header(self, idx):
        h, w, c = self._ensure().shape[1:]
        return w, h, c

    def labels(self):
        self._ensure()
        return self._labels


CIFAR_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']

class CifarSource(ArraySource):
    """The CIFAR-10 python release: pickled batches of 10000 rows of 3072 bytes (R, G, B planes of 32x32)."""
    kind = 'cifar10'
    class_names = CIFAR_CLASSES

    def __init__(self, path):
        self.path = path
        self.name = 'cifar10'
        self._images = self._labels = None
        self._ensure()
        self.num_items = len(self._images)

    def _read(self):
        batches = {}
        wanted = {f'data_batch_{i}' for i in range(1, 6)}
        try:
            if os.path.isdir(self.path):
                base = self.path
                if os.path.isdir(os.path.join(base, 'cifar-10-batches-py')):
                    base = os.path.join(base, 'cifar-10-batches-py')
                for b in sorted(wanted):
                    if os.path.isfile(os.path.join(base, b)):
                        with open(os.path.join(base, b), 'rb') as f:
                            batches[b] = _load_batch(f, b)
            else:
                with tarfile.open(self.path, 'r|*') as tar: # one streaming pass over the archive
                    for m in tar:
                        b = os.path.basename(m.name)
                        if m.isfile() and b in wanted:
                            batches[b] = _load_batch(tar.extractfile(m), b)
        except safe_pickle.RefusedGlobal as e:
            raise DatasetError(f'Refusing to read {self.path}: {e.member} refers to {e.name}; a CIFAR-10 batch '
                'holds only arrays, lists, dicts, strings and numbers') from e
        except (OSError, EOFError, tarfile.TarError, pickle.UnpicklingError, zlib.error) as e:
            raise DatasetError(f'Cannot read CIFAR-10 batches from {self.path}: {e}') from e
        missing = sorted(wanted - set(batches))
        if missing:
            raise DatasetError(f'{self.path} is not a complete CIFAR-10 python release: {", ".join(missing)} missing')
        images, labels = [], []
        for b in sorted(batches):
            try:
                data = np.asarray(batches[b]['data'], dtype=np.uint8)
                images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)) # rows of planes -> NHWC
                labels.append(np.asarray(batches[b]['labels'], dtype=np.int64))
            except Exception as e:
                raise DatasetError(f'{b} in {self.path} is not a CIFAR-10 batch: {e}') from e
        return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)

def _load_batch(f, member):
    # The batches are pickles: read them as data only, so a crafted "batch" cannot run code (not even at --dry-run).
    try:
        return safe_pickle.load(f, encoding='latin1')
    except safe_pickle.RefusedGlobal as e:
        e.member = member
        raise

def looks_like_cifar(path):
    """A cifar-10-python tarball (checked by name or by its first members) or an extracted batch folder."""
    if os.path.isdir(path):
        return any(os.path.isfile(os.path.join(path, sub, 'data_batch_1')) for sub in ('', 'cifar-10-batches-py'))
    if os.path.basename(path).lower().startswith('cifar-10-python'):
        return True
    try:
        with tarfile.open(path, 'r|*') as tar:
            for _, m in zip(range(3), tar):
                if m.name.lstrip('./').startswith('cifar-10-batches-py'):
                    return True
    except Exception:
        pass
    return False


class IdxSource(ArraySource):
    """MNIST-style idx: a big-endian header (magic 0x0000 type ndim, then ndim int32 sizes) and raw uint8 data."""
    kind = 'idx'
    class_names = None

    def __init__(self, images_path, labels_path=None, idx_resolution=32, name=None):
        self.path = images_path
        self.labels_path = labels_path
        self.idx_resolution = idx_resolution
        self.name = name or strip_archive_ext(os.path.dirname(os.path.abspath(images_path)))
        self._images = self._labels = None
        self._ensure()
        self.num_items = len(self._images)

    @staticmethod
    def read_idx(path, ndim):
        try:
            with (gzip.open(path, 'rb') if path.lower().endswith('.gz') else open(path, 'rb')) as f:
                data = f.read()
        except (OSError, EOFError, zlib.error) as e:
            raise DatasetError(f'Cannot read idx file {path}: {e}') from e
        if len(data) < 4 + 4 * ndim or data[:3] != b'\0\0\x08' or data[3] != ndim:
            raise DatasetError(f'{path} is not an idx file of {ndim}-D unsigned bytes (bad header)')
        shape = tuple(int(x) for x in np.frombuffer(data, '>i4', count=ndim, offset=4))
        body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
        if body.size != int(np.prod(shape)):
            raise DatasetError(f'{path} is truncated: header says {shape}, found {body.size} bytes of data')
        return body.reshape(shape)

    def _read(self):
        images = self.read_idx(self.path, 3)
        res = self.idx_resolution
        if res is not None:
            h, w = images.shape[1:]
            if res < max(h, w):
                raise DatasetError(f'idx_resolution={res} is smaller than the {w}x{h} images in {self.path}')
            top, left = (res - h) // 2, (res - w) // 2
            images = np.pad(images, [(0, 0), (top, res - h - top), (left, res - w - left)])
        labels = None
        if self.labels_path is not None:
            labels = self.read_idx(self.labels_path, 1).astype(np.int64)
            if len(labels) != len(images):
                raise DatasetError(f'{self.labels_path} has {len(labels)} labels for {len(images)} images in {self.path}')
        return np.ascontiguousarray(images[:, :, :, np.newaxis]), labels

def find_idx(path):
    """-> (images file, labels file or None) for an idx file or a folder holding them; None if not idx."""
    if os.path.isdir(path):
        files = sorted(os.listdir(path))
        cands = [f for f in files if _IDX_IMAGES.match(f)]
        if not cands:
            return None
        train = [f for f in cands if f.startswith('train')]
        images = os.path.join(path, (train or cands)[0])
    elif _IDX_IMAGES.match(os.path.basename(path)):
        images = path
    else:
        return None
    m = _IDX_IMAGES.match(os.path.basename(images))
    folder = os.path.dirname(images)
    for gz in (m.group(2) or '', '.gz' if not m.group(2) else ''):
        for sep in ('-', '.'):
            cand = os.path.join(folder, f'{m.group(1)}-labels{sep}idx1-ubyte{gz}')
            if os.path.isfile(cand):
                return images, cand
    return images, None

#----------------------------------------------------------------------------

def open_source(path, idx_resolution=32, cache_dir=None):
    """Pick the reader for `path`; every failure is one DatasetError naming the path."""
    if path is None or str(path) == '':
        raise DatasetError(f'No dataset given. Accepted: {SUPPORTED}')
    path = os.path.expanduser(str(path))
    if not os.path.exists(path):
        raise DatasetError(f'Dataset not found: {path} (no such file or folder)')
    try:
        return _open_source(path, idx_resolution, cache_dir)
    except DatasetError:
        raise
    except OSError as e: # permissions, I/O errors: still one message naming the path
        raise DatasetError(f'Cannot read dataset {path}: {e}') from e

def _open_source(path, idx_resolution, cache_dir):
    idx = find_idx(path)
    if os.path.isdir(path):
        if idx is not None and not _has_images_at_top(path):
            return IdxSource(*idx, idx_resolution=idx_resolution, name=strip_archive_ext(path))
        if looks_like_cifar(path):
            return CifarSource(path)
        return FolderSource(path)
    if idx is not None:
        return IdxSource(*idx, idx_resolution=idx_resolution)
    low = path.lower()
    if low.endswith('.zip'):
        return ZipSource(path)
    if is_tar_name(path) or (tarfile.is_tarfile(path) if os.path.getsize(path) > 0 else False):
        if looks_like_cifar(path):
            return CifarSource(path)
        return TarSource(path, cache_dir=cache_dir)
    if _ext(path) in image_exts():
        raise DatasetError(f'{path} is a single image; give the folder that holds the dataset\'s images')
    raise DatasetError(f'Unknown dataset format: {path}. Accepted: {SUPPORTED}')

def _has_images_at_top(path):
    exts = image_exts()
    return any(_ext(f) in exts for f in os.listdir(path))

#----------------------------------------------------------------------------
