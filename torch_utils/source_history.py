"""The record of this project's own past persistent-module sources: torch_utils/project_sources.json.

A network pickle embeds the source of each persistent class's module, and persistence.load() runs a source only
when it knows it. The modules of the installed version are known as they are; this record adds every earlier
committed version, so a snapshot written before an upgrade (any edit to a persistent module, a comment included)
still loads, and resumes, without --trust-pickle. Maintainers regenerate it whenever a persistent module changes
(tests/torch_utils/test_source_history.py fails until they do):

    python -m torch_utils.source_history            # rewrite the record from git history and the working tree
    python -m torch_utils.source_history --check    # exit 1 if a persistent module of the tree is not recorded
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORD = os.path.join(ROOT, 'torch_utils', 'project_sources.json')
PACKAGES = ('dnnlib', 'torch_utils', 'stylegan_som', 'metrics') # this project's packages (persistence.PROJECT_PACKAGES)
FORMAT = 1

# A module is persistent when it decorates a class: only those sources are ever embedded in a pickle.
_PERSISTENT = re.compile(r'^[ \t]*@(?:\w+\.)*persistent_class\b', re.MULTILINE)

#----------------------------------------------------------------------------

def source_digest(data):
    """SHA-256 of a module file's bytes as inspect.getsource() embeds it: UTF-8 without a byte-order mark,
    newlines as \\n (what text mode reads)."""
    text = data.decode('utf-8-sig').replace('\r\n', '\n').replace('\r', '\n')
    return hashlib.sha256(text.encode('utf-8')).hexdigest()

def is_persistent_module(data):
    return _PERSISTENT.search(data.decode('utf-8-sig', errors='replace')) is not None

def load_record(path=None):
    """{digest: module path} of the record (default: RECORD); empty if the file is absent (an installation without
    it only knows its own modules)."""
    path = path or RECORD
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
    except FileNotFoundError:
        return {}
    if not isinstance(record, dict) or record.get('format') != FORMAT or not isinstance(record.get('sources'), dict):
        raise ValueError(f'{path}: not a source record of format {FORMAT}; regenerate it with '
            'python -m torch_utils.source_history')
    return dict(record['sources'])

#----------------------------------------------------------------------------

def tree_sources(root=ROOT, packages=PACKAGES, persistent_only=True):
    """{digest: path} of the persistent modules (or of all modules) in the working tree."""
    found = {}
    for package in packages:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, package)):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith('.py'):
                    full = os.path.join(dirpath, name)
                    with open(full, 'rb') as f:
                        data = f.read()
                    if not persistent_only or is_persistent_module(data):
                        found[source_digest(data)] = os.path.relpath(full, root).replace(os.sep, '/')
    return found

def _git(root, *args, **kwargs):
    return subprocess.run(['git', '-C', root, *args], check=True, capture_output=True, **kwargs).stdout

def history_sources(root=ROOT, packages=PACKAGES, rev='HEAD'):
    """{digest: path} of every persistent module of every commit reachable from rev."""
    blobs = {} # blob id -> path
    for commit in _git(root, 'rev-list', rev, '--', *packages, text=True).split():
        for line in _git(root, 'ls-tree', '-r', commit, '--', *packages, text=True).splitlines():
            meta, path = line.split('\t', 1)
            _mode, kind, blob = meta.split()
            if kind == 'blob' and path.endswith('.py'):
                blobs.setdefault(blob, path)
    if not blobs:
        return {}
    # One `git cat-file --batch` for every distinct blob: "<id> blob <size>\n<bytes>\n" each.
    out = _git(root, 'cat-file', '--batch', input=''.join(f'{b}\n' for b in blobs).encode())
    found, pos = {}, 0
    for blob, path in blobs.items():
        header_end = out.index(b'\n', pos)
        size = int(out[pos:header_end].split()[2])
        data = out[header_end + 1:header_end + 1 + size]
        pos = header_end + 1 + size + 1
        if is_persistent_module(data):
            found.setdefault(source_digest(data), path)
    return found

def write_record(sources, path=None):
    path = path or RECORD
    with open(path, 'w', encoding='utf-8', newline='\n') as f:
        json.dump(dict(format=FORMAT, sources=dict(sorted(sources.items()))), f, indent=1)
        f.write('\n')

def unrecorded(root=ROOT, record_path=None):
    """Paths of the tree's persistent modules whose source the record lacks."""
    record = load_record(record_path)
    return sorted(path for digest, path in tree_sources(root).items() if digest not in record)

#----------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m torch_utils.source_history',
        description='Record the SHA-256 of every version of this project\'s persistent modules (git history and '
        'working tree), so that snapshots of earlier versions load without --trust-pickle.')
    parser.add_argument('--check', action='store_true', help='only check that the working tree\'s persistent '
        'modules are recorded (exit 1 if not)')
    opts = parser.parse_args(argv)
    if opts.check:
        missing = unrecorded()
        for path in missing:
            print(f'{path}: this version is not in {os.path.relpath(RECORD, ROOT)}; run python -m '
                'torch_utils.source_history', file=sys.stderr)
        return 1 if missing else 0
    try:
        sources = history_sources()
    except (OSError, subprocess.CalledProcessError) as err:
        print(f'python -m torch_utils.source_history: needs a git checkout of the project at {ROOT} ({err})',
            file=sys.stderr)
        return 1
    old = load_record()
    sources = {**old, **sources, **tree_sources()} # never forget a version: history may have been rewritten
    write_record(sources)
    print(f'{os.path.relpath(RECORD, ROOT)}: {len(sources)} module versions ({len(sources) - len(old)} new)')
    return 0

if __name__ == '__main__':
    sys.exit(main())
