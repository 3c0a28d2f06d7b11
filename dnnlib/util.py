"""General helpers: attribute dicts, stdout logging, cache dirs, lookup of objects by dotted name,
file-system helpers and a caching URL opener.

Names and signatures follow StyleGAN2-ADA's `dnnlib.util`, because network pickles refer to
`dnnlib.util.EasyDict` and training code calls these functions by name."""

import ctypes
import fnmatch
import glob
import hashlib
import html
import importlib
import inspect
import io
import os
import pickle
import re
import shutil
import sys
import tempfile
import types
import urllib.parse
import uuid
from typing import Any, List, Optional, Tuple, Union

import numpy as np

#----------------------------------------------------------------------------
# Attribute dict and stdout/stderr tee.

class EasyDict(dict):
    """A dict whose keys can also be read and written as attributes (`d.key`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            # AttributeError keeps hasattr(), getattr(default) and copy/pickle protocols working.
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None


class Logger:
    """Send everything written to stdout and stderr to the original stdout and, optionally, to a file.

    Installing the logger replaces sys.stdout and sys.stderr; close() (or leaving the `with` block)
    restores them."""

    def __init__(self, file_name: Optional[str] = None, file_mode: str = "w", should_flush: bool = True):
        self.file = open(file_name, file_mode) if file_name is not None else None
        self.should_flush = should_flush
        self.stdout = sys.stdout
        self.stderr = sys.stderr
        sys.stdout = self
        sys.stderr = self

    def __enter__(self) -> "Logger":
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.close()

    def write(self, text: Union[str, bytes]) -> None:
        if isinstance(text, bytes):
            text = text.decode()
        if not text:
            return # some debuggers crash on an empty write followed by flush
        if self.file is not None:
            self.file.write(text)
        self.stdout.write(text)
        if self.should_flush:
            self.flush()

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()
        self.stdout.flush()

    def close(self) -> None:
        self.flush()
        # Only undo our own redirection: with nested loggers an outer one may already be active again.
        if sys.stdout is self:
            sys.stdout = self.stdout
        if sys.stderr is self:
            sys.stderr = self.stderr
        if self.file is not None:
            self.file.close()
            self.file = None

#----------------------------------------------------------------------------
# Cache directory (downloads, compiled kernels, dataset statistics).

_dnnlib_cache_dir = None

def set_cache_dir(path: str) -> None:
    global _dnnlib_cache_dir
    _dnnlib_cache_dir = path

def make_cache_dir_path(*paths: str) -> str:
    # Priority: set_cache_dir() > $DNNLIB_CACHE_DIR > ~/.cache/dnnlib > %USERPROFILE% > temp dir.
    if _dnnlib_cache_dir is not None:
        return os.path.join(_dnnlib_cache_dir, *paths)
    if 'DNNLIB_CACHE_DIR' in os.environ:
        return os.path.join(os.environ['DNNLIB_CACHE_DIR'], *paths)
    for var in ('HOME', 'USERPROFILE'):
        if var in os.environ:
            return os.path.join(os.environ[var], '.cache', 'dnnlib', *paths)
    return os.path.join(tempfile.gettempdir(), '.cache', 'dnnlib', *paths)

#----------------------------------------------------------------------------
# Small helpers.

def format_time(seconds: Union[int, float]) -> str:
    """Render a duration as e.g. '42s', '3m 07s', '5h 02m 09s' or '2d 03h 04m'."""
    s = int(np.rint(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02}s"
    if s < 86400:
        return f"{s // 3600}h {(s // 60) % 60:02}m {s % 60:02}s"
    return f"{s // 86400}d {(s // 3600) % 24:02}h {(s // 60) % 60:02}m"


_yes_words = {'y', 'yes', 't', 'true', 'on', '1'}
_no_words = {'n', 'no', 'f', 'false', 'off', '0'}

def ask_yes_no(question: str) -> bool:
    """Keep asking on stdin until the answer is recognisably yes or no."""
    while True:
        print(f"{question} [y/n]")
        answer = input().strip().lower()
        if answer in _yes_words:
            return True
        if answer in _no_words:
            return False


def tuple_product(t: Tuple) -> Any:
    """Product of all elements (1 for an empty tuple)."""
    result = 1
    for v in t:
        result *= v
    return result


_str_to_ctype = {
    "uint8": ctypes.c_ubyte,
    "uint16": ctypes.c_uint16,
    "uint32": ctypes.c_uint32,
    "uint64": ctypes.c_uint64,
    "int8": ctypes.c_byte,
    "int16": ctypes.c_int16,
    "int32": ctypes.c_int32,
    "int64": ctypes.c_int64,
    "float32": ctypes.c_float,
    "float64": ctypes.c_double,
}

def get_dtype_and_ctype(type_obj: Any) -> Tuple[np.dtype, Any]:
    """Map a type name (or an object with `__name__` / `name`) to the matching NumPy dtype and ctypes type."""
    if isinstance(type_obj, str):
        type_str = type_obj
    elif hasattr(type_obj, "__name__"):
        type_str = type_obj.__name__
    elif hasattr(type_obj, "name"):
        type_str = type_obj.name
    else:
        raise RuntimeError(f"Cannot infer a type name from {type_obj!r}")
    if type_str not in _str_to_ctype:
        raise AssertionError(f"Unsupported type {type_str!r}; expected one of {sorted(_str_to_ctype)}")
    my_dtype = np.dtype(type_str)
    my_ctype = _str_to_ctype[type_str]
    assert my_dtype.itemsize == ctypes.sizeof(my_ctype)
    return my_dtype, my_ctype


def is_pickleable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
        return True
    except Exception: # pickling may fail with almost any exception type
        return False

#----------------------------------------------------------------------------
# Look up modules, functions and classes by dotted name.

def get_module_from_obj_name(obj_name: str) -> Tuple[types.ModuleType, str]:
    """Split a dotted name into (imported module, remaining attribute path), preferring the longest
    importable module prefix. 'np.' and 'tf.' are accepted as shorthands."""
    obj_name = re.sub(r"^np\.", "numpy.", obj_name)
    obj_name = re.sub(r"^tf\.", "tensorflow.", obj_name)
    parts = obj_name.split(".")
    candidates = [(".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts), 0, -1)]

    for module_name, local_name in candidates:
        try:
            module = importlib.import_module(module_name)
            get_obj_from_module(module, local_name)
            return module, local_name
        except Exception:
            pass

    # Nothing resolved. Re-raise the most useful underlying error: first a module that exists but
    # fails to import (a bug inside it), then a module that imports but lacks the attribute.
    for module_name, _ in candidates:
        try:
            importlib.import_module(module_name)
        except ImportError as e:
            if not str(e).startswith(f"No module named '{module_name}'"):
                raise
    for module_name, local_name in candidates:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        get_obj_from_module(module, local_name) # raises AttributeError naming the missing part
    raise ImportError(obj_name)


def get_obj_from_module(module: types.ModuleType, obj_name: str) -> Any:
    """Follow a dotted attribute path starting at `module` ('' returns the module itself)."""
    obj = module
    if obj_name == '':
        return obj
    for part in obj_name.split("."):
        obj = getattr(obj, part)
    return obj


def get_obj_by_name(name: str) -> Any:
    module, obj_name = get_module_from_obj_name(name)
    return get_obj_from_module(module, obj_name)


def call_func_by_name(*args, func_name: str = None, **kwargs) -> Any:
    """Look up `func_name` (a dotted name) and call it with the remaining arguments."""
    assert func_name is not None, "call_func_by_name() needs func_name="
    func_obj = get_obj_by_name(func_name)
    if not callable(func_obj):
        raise AssertionError(f"{func_name} is not callable")
    return func_obj(*args, **kwargs)


def construct_class_by_name(*args, class_name: str = None, **kwargs) -> Any:
    """Look up `class_name` (a dotted name) and instantiate it with the remaining arguments."""
    return call_func_by_name(*args, func_name=class_name, **kwargs)


def get_module_dir_by_obj_name(obj_name: str) -> str:
    module, _ = get_module_from_obj_name(obj_name)
    return os.path.dirname(inspect.getfile(module))


def is_top_level_function(obj: Any) -> bool:
    """True if `obj` is callable and reachable under its own name in its module's namespace."""
    return callable(obj) and obj.__name__ in sys.modules[obj.__module__].__dict__


def get_top_level_function_name(obj: Any) -> str:
    """Fully qualified 'module.function' name; functions of the __main__ script are named after the script file."""
    assert is_top_level_function(obj)
    module = obj.__module__
    if module == '__main__':
        module = os.path.splitext(os.path.basename(sys.modules[module].__file__))[0]
    return module + "." + obj.__name__

#----------------------------------------------------------------------------
# File system helpers.

def list_dir_recursively_with_ignore(dir_path: str, ignores: List[str] = None, add_base_to_relative: bool = False) -> List[Tuple[str, str]]:
    """All files under `dir_path` as (absolute path, relative path) pairs. File and directory names that match
    any fnmatch pattern in `ignores` are skipped (a matching directory is not descended into)."""
    assert os.path.isdir(dir_path), f"Not a directory: {dir_path}"
    ignores = list(ignores) if ignores is not None else []
    base_name = os.path.basename(os.path.normpath(dir_path))
    result = []
    for root, dirs, files in os.walk(dir_path, topdown=True):
        # os.walk honours in-place edits of `dirs`, which prunes ignored subtrees.
        dirs[:] = [d for d in dirs if not any(fnmatch.fnmatch(d, pat) for pat in ignores)]
        files = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in ignores)]
        for f in files:
            abs_path = os.path.join(root, f)
            rel_path = os.path.relpath(abs_path, dir_path)
            if add_base_to_relative:
                rel_path = os.path.join(base_name, rel_path)
            result.append((abs_path, rel_path))
    return result


def copy_files_and_create_dirs(files: List[Tuple[str, str]]) -> None:
    """Copy each (src, dst) pair, creating missing destination directories."""
    for src, dst in files:
        dst_dir = os.path.dirname(dst)
        if dst_dir:
            os.makedirs(dst_dir, exist_ok=True)
        shutil.copyfile(src, dst)

#----------------------------------------------------------------------------
# URLs: open local paths, file:// URLs and http(s) downloads through an on-disk cache.
#
# Cache layout (shared with StyleGAN2-ADA): <cache_dir>/<md5 of the URL>_<name>, where <name> is the
# server-supplied file name or else the URL itself, with every character outside [0-9a-zA-Z-._]
# replaced by '_'. Lookup only matches the '<md5>_' prefix, so a file placed there by hand under any
# name serves the URL without touching the network.

class ChecksumError(IOError):
    """A downloaded or cached file does not have the expected checksum."""

_download_timeout = (30, 300) # (connect, read) seconds for each HTTP attempt
_chunk_size = 1 << 20


def is_url(obj: Any, allow_file_urls: bool = False) -> bool:
    """True for strings like 'https://host.domain/...'; file:// URLs only if `allow_file_urls`."""
    if not isinstance(obj, str) or "://" not in obj:
        return False
    if allow_file_urls and obj.startswith('file://'):
        return True
    try:
        for candidate in (obj, urllib.parse.urljoin(obj, "/")):
            res = urllib.parse.urlparse(candidate)
            if not res.scheme or not res.netloc or "." not in res.netloc:
                return False
    except Exception:
        return False
    return True


def _url_md5(url: str) -> str:
    return hashlib.md5(url.encode("utf-8")).hexdigest()


def _safe_name(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z-._]", "_", name)


def _expected_digests(sha256: Optional[str], md5: Optional[str]) -> List[Tuple[str, str]]:
    digests = []
    for algo, value in (('sha256', sha256), ('md5', md5)):
        if value is not None:
            value = str(value).strip().lower()
            if not re.fullmatch(r"[0-9a-f]+", value):
                raise ValueError(f"open_url: {algo}= must be a hex digest, got {value!r}")
            digests.append((algo, value))
    return digests


def _file_digests(path: str, algos: List[str]) -> dict:
    hashers = {algo: hashlib.new(algo) for algo in algos}
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_chunk_size), b''):
            for h in hashers.values():
                h.update(chunk)
    return {algo: h.hexdigest() for algo, h in hashers.items()}


def _mismatches(actual: dict, expected: List[Tuple[str, str]]) -> List[str]:
    return [f"{algo} is {actual[algo]}, expected {value}" for algo, value in expected if actual[algo] != value]


def _verify_file(path: str, expected: List[Tuple[str, str]], what: str) -> None:
    if not expected:
        return
    bad = _mismatches(_file_digests(path, [algo for algo, _ in expected]), expected)
    if bad:
        raise ChecksumError(f"Checksum mismatch for {what}: file {path}: {'; '.join(bad)}. "
            f"The file is corrupt or a different version; delete or replace it.")


def _local_path_from_url(url: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlparse(url).path)
    if re.match(r'^/[a-zA-Z]:', path): # file:///c:/x -> c:/x on Windows
        path = path[1:]
    return path


def _open_local(path: str, url: str, expected, return_filename: bool) -> Any:
    if not os.path.isfile(path):
        what = f"{path}" if path == url else f"{path} (from {url})"
        raise FileNotFoundError(2, f"open_url: no such file: {what}", path)
    _verify_file(path, expected, url)
    return path if return_filename else open(path, "rb")


def _find_cached(cache_dir: str, url_md5: str, expected) -> Optional[str]:
    matches = sorted(glob.glob(os.path.join(glob.escape(cache_dir), url_md5 + "_*")))
    matches = [m for m in matches if os.path.isfile(m)]
    if not matches:
        return None
    if len(matches) > 1:
        # Several candidates (e.g. one placed by hand): take one with the right checksum, else the newest.
        if expected:
            for m in matches:
                if not _mismatches(_file_digests(m, [a for a, _ in expected]), expected):
                    return m
        matches.sort(key=os.path.getmtime)
        return matches[-1]
    return matches[0]


def _gdrive_confirm_url(url: str, res) -> Optional[str]:
    # Google Drive answers large files with an HTML "can't scan for viruses" page holding the real link.
    if "download_warning" not in res.headers.get("Set-Cookie", "") or len(res.content) >= 8192:
        return None
    text = res.content.decode("utf-8", errors="replace")
    links = [html.unescape(part) for part in text.split('"') if "export=download" in part]
    return urllib.parse.urljoin(url, links[0]) if len(links) == 1 else None


def _download(url: str, num_attempts: int, verbose: bool, dest_dir: Optional[str], expected) -> Tuple[str, Any]:
    """Fetch `url`. Returns (file name to cache under, temp file path) if dest_dir is given, else (name, bytes).
    The checksum is verified before returning, so a bad download is never cached."""
    import requests # deferred: only downloads need it

    algos = [algo for algo, _ in expected]
    last_error = None
    if verbose:
        print(f"Downloading {url} ...", end="", flush=True)
    with requests.Session() as session:
        attempt = 0
        while attempt < num_attempts:
            attempt += 1
            tmp_path = None
            try:
                with session.get(url, stream=True, timeout=_download_timeout) as res:
                    res.raise_for_status()
                    ctype = res.headers.get("Content-Type", "")
                    if "drive.google.com" in res.url and ctype.startswith("text/html"):
                        confirm = _gdrive_confirm_url(url, res)
                        if confirm is not None:
                            url = confirm
                            attempt -= 1 # following the confirmation link is not a failed attempt
                            continue
                        if "Quota exceeded" in res.text:
                            raise IOError("Google Drive download quota exceeded; try again later")
                    match = re.search(r'filename="([^"]*)"', res.headers.get("Content-Disposition", ""))
                    url_name = match[1] if match else url
                    hashers = {algo: hashlib.new(algo) for algo in algos}
                    buf = io.BytesIO() if dest_dir is None else None
                    if dest_dir is not None:
                        os.makedirs(dest_dir, exist_ok=True)
                        tmp_path = os.path.join(dest_dir, f"tmp_{uuid.uuid4().hex}_{_safe_name(url_name)}")
                    num_bytes = 0
                    with (open(tmp_path, "wb") if tmp_path else buf) as out:
                        for chunk in res.iter_content(chunk_size=_chunk_size):
                            out.write(chunk)
                            num_bytes += len(chunk)
                            for h in hashers.values():
                                h.update(chunk)
                        data = buf.getvalue() if buf is not None else None
                    if num_bytes == 0:
                        raise IOError("No data received")
                bad = _mismatches({a: h.hexdigest() for a, h in hashers.items()}, expected)
                if bad:
                    raise ChecksumError(f"Checksum mismatch for download of {url}: {'; '.join(bad)}. Not cached.")
                if verbose:
                    print(" done")
                return url_name, (tmp_path if dest_dir is not None else data)
            except KeyboardInterrupt:
                _remove_quietly(tmp_path)
                raise
            except ChecksumError:
                _remove_quietly(tmp_path)
                if verbose:
                    print(" failed")
                raise
            except Exception as e: # network errors come in many types (requests, socket, ssl)
                _remove_quietly(tmp_path)
                last_error = e
                status = getattr(getattr(e, "response", None), "status_code", None)
                if status is not None and 400 <= status < 500 and status not in (408, 429):
                    break # the server said no; retrying won't change that
                if verbose and attempt < num_attempts:
                    print(".", end="", flush=True)
    if verbose:
        print(" failed")
    raise last_error


def _remove_quietly(path: Optional[str]) -> None:
    if path is not None:
        try:
            os.remove(path)
        except OSError:
            pass


def open_url(url: str, cache_dir: str = None, num_attempts: int = 10, verbose: bool = True, return_filename: bool = False,
        cache: bool = True, *, sha256: Optional[str] = None, md5: Optional[str] = None) -> Any:
    """Open a local path, file:// URL or http(s) URL for binary reading.

    Downloads go through the cache in `cache_dir` (default: make_cache_dir_path('downloads')); a cached copy
    is used without any network access. Returns a binary file object, or the local file name if
    `return_filename` (which requires `cache`).

    Extensions (keyword-only): `sha256=` / `md5=` expected hex digests, checked on local files, cache hits
    and downloads; a mismatch raises ChecksumError naming the URL and file, and a bad download is not cached.
    """
    if num_attempts < 1:
        raise ValueError(f"open_url: num_attempts must be >= 1, got {num_attempts}")
    if return_filename and not cache:
        raise ValueError("open_url: return_filename=True requires cache=True")
    expected = _expected_digests(sha256, md5)

    # No scheme: a plain local path.
    if not re.match('^[a-z]+://', url):
        return _open_local(url, url, expected, return_filename)
    if url.startswith('file://'):
        return _open_local(_local_path_from_url(url), url, expected, return_filename)
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ('http', 'https') or not parsed.netloc:
        raise ValueError(f"open_url: unsupported URL {url!r} (expected a path, file://, http:// or https://)")

    if cache_dir is None:
        cache_dir = make_cache_dir_path('downloads')
    url_md5 = _url_md5(url)
    if cache:
        cached = _find_cached(cache_dir, url_md5, expected)
        if cached is not None:
            _verify_file(cached, expected, f"cached copy of {url}")
            return cached if return_filename else open(cached, "rb")

    try:
        url_name, result = _download(url, num_attempts, verbose, cache_dir if cache else None, expected)
    except ChecksumError:
        raise
    except Exception as e:
        hint_path = os.path.join(cache_dir, f"{url_md5}_{_safe_name(url)}")
        raise IOError(f"Could not download {url} ({type(e).__name__}: {e}). This machine may be offline. "
            f"To use a copy obtained elsewhere, place it at {hint_path} "
            f"(any file name starting with '{url_md5}_' in {cache_dir} works)") from e

    if not cache:
        return io.BytesIO(result)
    cache_file = os.path.join(cache_dir, f"{url_md5}_{_safe_name(url_name)}")
    os.replace(result, cache_file) # atomic: readers never see a partial file
    return cache_file if return_filename else open(cache_file, "rb")
