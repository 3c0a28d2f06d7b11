"""Generic helpers without torch: attribute dicts, stdout logging, cache dirs, URLs with a download cache, lookup by name."""

from .util import EasyDict, make_cache_dir_path # noqa: F401 (re-exported)
