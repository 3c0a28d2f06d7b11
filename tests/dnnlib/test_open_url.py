"""Tests for dnnlib.util.open_url: local files, the download cache, checksums and offline errors.
Downloads are served by a throw-away HTTP server on 127.0.0.1; nothing leaves the machine."""

import hashlib
import http.server
import os
import pathlib
import re
import threading
import time

import pytest

from dnnlib import util

PAYLOAD = b'network pickle bytes \x00\x01\x02' * 100
UNREACHABLE = 'http://127.0.0.1:9/x.pkl' # discard port: connection refused at once

#----------------------------------------------------------------------------

def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _cache_name(url, name=None):
    # StyleGAN2-ADA's layout, written out independently: md5(url) + '_' + name with unsafe chars -> '_'.
    name = url if name is None else name
    return hashlib.md5(url.encode('utf-8')).hexdigest() + '_' + re.sub(r'[^0-9a-zA-Z-._]', '_', name)


@pytest.fixture
def server():
    """Serves PAYLOAD at /data.bin, with Content-Disposition at /named, 404 elsewhere; counts requests."""
    hits = []
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if self.path in ('/data.bin', '/named'):
                self.send_response(200)
                self.send_header('Content-Length', str(len(PAYLOAD)))
                if self.path == '/named':
                    self.send_header('Content-Disposition', 'attachment; filename="weights v2.pkl"')
                self.end_headers()
                self.wfile.write(PAYLOAD)
            else:
                self.send_error(404)
        def log_message(self, *args):
            pass
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f'http://127.0.0.1:{httpd.server_address[1]}', hits
    finally:
        httpd.shutdown()
        httpd.server_close()

#----------------------------------------------------------------------------
# Local files.

def test_local_path_and_file_url(tmp_path):
    path = tmp_path / 'a b.bin'
    path.write_bytes(PAYLOAD)
    with util.open_url(str(path)) as f:
        assert f.read() == PAYLOAD
    assert util.open_url(str(path), return_filename=True) == str(path)
    url = pathlib.Path(path).as_uri() # file:///.../a%20b.bin
    with util.open_url(url) as f:
        assert f.read() == PAYLOAD
    assert util.open_url('file://' + str(path), return_filename=True) == str(path)


def test_local_missing_names_path(tmp_path):
    missing = str(tmp_path / 'nope.pkl')
    with pytest.raises(FileNotFoundError, match='nope.pkl'):
        util.open_url(missing)
    with pytest.raises(FileNotFoundError, match='nope.pkl'):
        util.open_url('file://' + missing)


def test_local_checksum(tmp_path):
    path = tmp_path / 'x.bin'
    path.write_bytes(PAYLOAD)
    with util.open_url(str(path), sha256=_sha256(PAYLOAD)) as f:
        assert f.read() == PAYLOAD
    with pytest.raises(util.ChecksumError, match='x.bin'):
        util.open_url(str(path), md5='0' * 32)
    with pytest.raises(ValueError):
        util.open_url(str(path), sha256='not-hex')

#----------------------------------------------------------------------------
# Cache hits never touch the network.

def test_cache_hit_offline(tmp_path):
    # A copy placed by hand under the StyleGAN2-ADA cache name serves an unreachable URL.
    (tmp_path / _cache_name(UNREACHABLE)).write_bytes(PAYLOAD)
    with util.open_url(UNREACHABLE, cache_dir=str(tmp_path), num_attempts=1, verbose=False) as f:
        assert f.read() == PAYLOAD
    path = util.open_url(UNREACHABLE, cache_dir=str(tmp_path), return_filename=True, verbose=False)
    assert path == str(tmp_path / _cache_name(UNREACHABLE))
    assert util.open_url(UNREACHABLE, cache_dir=str(tmp_path), sha256=_sha256(PAYLOAD), return_filename=True) == path


def test_cache_hit_any_name_and_default_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(util, '_dnnlib_cache_dir', str(tmp_path))
    downloads = tmp_path / 'downloads'
    downloads.mkdir()
    md5 = hashlib.md5(UNREACHABLE.encode()).hexdigest()
    (downloads / f'{md5}_whatever-name.pkl').write_bytes(PAYLOAD)
    with util.open_url(UNREACHABLE, num_attempts=1, verbose=False) as f:
        assert f.read() == PAYLOAD


def test_cache_hit_checksum_mismatch(tmp_path):
    (tmp_path / _cache_name(UNREACHABLE)).write_bytes(b'truncated')
    with pytest.raises(util.ChecksumError) as info:
        util.open_url(UNREACHABLE, cache_dir=str(tmp_path), sha256=_sha256(PAYLOAD), num_attempts=1, verbose=False)
    msg = str(info.value)
    assert UNREACHABLE in msg and _cache_name(UNREACHABLE) in msg

#----------------------------------------------------------------------------
# Offline / unreachable.

def test_unreachable_error_names_url_and_cache_path(tmp_path, capsys):
    t0 = time.monotonic()
    with pytest.raises(OSError) as info:
        util.open_url(UNREACHABLE, cache_dir=str(tmp_path), num_attempts=1, verbose=True)
    assert time.monotonic() - t0 < 30 # must fail fast, not hang
    msg = str(info.value)
    assert UNREACHABLE in msg
    assert os.path.join(str(tmp_path), _cache_name(UNREACHABLE)) in msg
    assert 'offline' in msg
    assert 'failed' in capsys.readouterr().out
    assert os.listdir(tmp_path) == [] # nothing half-written left behind


def test_unreachable_without_cache(tmp_path):
    with pytest.raises(OSError, match='127.0.0.1:9'):
        util.open_url(UNREACHABLE, cache_dir=str(tmp_path), cache=False, num_attempts=2, verbose=False)


def test_argument_errors(tmp_path):
    with pytest.raises(ValueError):
        util.open_url(UNREACHABLE, cache_dir=str(tmp_path), return_filename=True, cache=False)
    with pytest.raises(ValueError):
        util.open_url(UNREACHABLE, num_attempts=0)
    with pytest.raises(ValueError, match='ftp://'):
        util.open_url('ftp://example.com/x', cache_dir=str(tmp_path))

#----------------------------------------------------------------------------
# Downloads from the local server.

def test_download_caches_under_upstream_name(server, tmp_path):
    base, hits = server
    url = base + '/data.bin'
    path = util.open_url(url, cache_dir=str(tmp_path), return_filename=True, verbose=False, sha256=_sha256(PAYLOAD))
    assert path == os.path.join(str(tmp_path), _cache_name(url))
    assert open(path, 'rb').read() == PAYLOAD
    assert os.listdir(tmp_path) == [_cache_name(url)] # the temp file was renamed, not left behind
    assert hits == ['/data.bin']
    with util.open_url(url, cache_dir=str(tmp_path), verbose=False) as f: # second time: from the cache
        assert f.read() == PAYLOAD
    assert hits == ['/data.bin']


def test_download_uses_server_file_name(server, tmp_path):
    base, _ = server
    url = base + '/named'
    path = util.open_url(url, cache_dir=str(tmp_path), return_filename=True, verbose=False)
    assert os.path.basename(path) == _cache_name(url, 'weights v2.pkl')
    assert os.path.basename(path).endswith('_weights_v2.pkl')


def test_download_without_cache(server, tmp_path):
    base, hits = server
    for _ in range(2):
        with util.open_url(base + '/data.bin', cache_dir=str(tmp_path), cache=False, verbose=False) as f:
            assert f.read() == PAYLOAD
    assert len(hits) == 2
    assert not os.path.exists(tmp_path / 'x') and os.listdir(tmp_path) == []


def test_download_checksum_mismatch_not_cached(server, tmp_path):
    base, _ = server
    url = base + '/data.bin'
    with pytest.raises(util.ChecksumError, match=re.escape(url)):
        util.open_url(url, cache_dir=str(tmp_path), sha256='ab' * 32, verbose=False)
    assert os.listdir(tmp_path) == []


def test_download_http_error_is_not_retried(server, tmp_path):
    base, hits = server
    with pytest.raises(OSError, match='404'):
        util.open_url(base + '/missing', cache_dir=str(tmp_path), num_attempts=5, verbose=False)
    assert hits == ['/missing']

#----------------------------------------------------------------------------
