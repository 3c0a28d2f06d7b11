"""torch_utils/source_history.py: the record of earlier versions of the project's persistent modules, which lets
snapshots of those versions load without --trust-pickle."""

import hashlib
import io
import json
import pickle
import subprocess

import pytest
import torch

from stylegan_som import legacy
from stylegan_som.networks import stylegan2
from torch_utils import persistence, source_history

#----------------------------------------------------------------------------

def test_every_persistent_module_of_this_tree_is_recorded():
    # Fails after any edit to a persistent module until the record is regenerated; otherwise snapshots written by
    # this version would need --trust-pickle once the next version is installed.
    assert source_history.unrecorded() == [], 'run: python -m torch_utils.source_history'


def test_record_format():
    record = source_history.load_record()
    assert record and all(len(d) == 64 and int(d, 16) >= 0 for d in record)
    assert all(p.endswith('.py') and p.split('/')[0] in persistence.PROJECT_PACKAGES for p in record.values())
    with open(stylegan2.__file__, 'rb') as f:
        assert source_history.source_digest(f.read()) in record


def test_digest_is_what_a_pickle_embeds():
    src = persistence._module_to_src(stylegan2) # pylint: disable=protected-access
    with open(stylegan2.__file__, 'rb') as f:
        data = f.read()
    assert source_history.source_digest(data) == hashlib.sha256(src.encode('utf-8')).hexdigest()
    # A byte-order mark and Windows newlines do not change it, as they do not change inspect.getsource().
    assert source_history.source_digest(b'\xef\xbb\xbfa = 1\r\nb = 2\r\n') == source_history.source_digest(b'a = 1\nb = 2\n')


def test_persistent_module_detection():
    assert source_history.is_persistent_module(b'from torch_utils import persistence\n\n@persistence.persistent_class\nclass A: pass\n')
    assert source_history.is_persistent_module(b'    @persistent_class\n')
    assert not source_history.is_persistent_module(b'# see persistence.persistent_class\nx = 1\n')

#----------------------------------------------------------------------------

@pytest.fixture
def earlier_release(monkeypatch, tmp_path):
    """Pickles of stylegan2.py's classes now embed an edited copy of its source, standing in for the file as an
    earlier version had it. Returns (source, path of an empty record)."""
    now = persistence._module_to_src(stylegan2) # pylint: disable=protected-access
    src = now + '\n# as an earlier version had it\n'
    for cls in vars(stylegan2).values():
        if isinstance(cls, type) and persistence.is_persistent(cls) and cls._orig_module_src == now: # pylint: disable=protected-access
            monkeypatch.setattr(cls, '_orig_module_src', src)
    record = tmp_path / 'project_sources.json'
    source_history.write_record({}, record)
    monkeypatch.setattr(source_history, 'RECORD', str(record))
    monkeypatch.setattr(persistence, '_known_cache', dict())
    monkeypatch.delenv(persistence.TRUST_ENV, raising=False)
    persistence._recorded_digests.cache_clear() # pylint: disable=protected-access
    yield src, record
    persistence._recorded_digests.cache_clear() # pylint: disable=protected-access


def test_snapshot_of_a_recorded_version_loads_without_trust(earlier_release):
    src, record = earlier_release
    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=4, c_dim=0, w_dim=4, img_resolution=4, img_channels=1,
        mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=16, channel_max=8))
    D = stylegan2.Discriminator(c_dim=0, img_resolution=4, img_channels=1, channel_base=16, channel_max=8)
    blob = pickle.dumps(dict(G=G, D=D, G_ema=G))
    assert src.encode('utf-8') in blob
    with pytest.raises(legacy.NetworkPickleError, match='earlier versions.*--trust-pickle'):
        legacy.load_network_pkl(io.BytesIO(blob))
    # Recorded (as `python -m torch_utils.source_history` records every committed version): it loads and runs.
    source_history.write_record({source_history.source_digest(src.encode('utf-8')): 'stylegan_som/networks/stylegan2.py'}, record)
    persistence._recorded_digests.cache_clear() # pylint: disable=protected-access
    persistence._known_cache.clear() # pylint: disable=protected-access
    loaded = legacy.load_network_pkl(io.BytesIO(blob))['G_ema']
    assert type(loaded) is not type(G) # built from the embedded source, not the installed module
    z = torch.randn(3, 4)
    assert torch.equal(loaded(z, None, noise_mode='const'), G(z, None, noise_mode='const'))


def test_bad_record_is_one_clear_error(tmp_path):
    path = tmp_path / 'project_sources.json'
    path.write_text(json.dumps(dict(format=99, sources={})))
    with pytest.raises(ValueError, match=r'project_sources\.json: not a source record of format 1; regenerate'):
        source_history.load_record(str(path))
    assert source_history.load_record(str(tmp_path / 'absent.json')) == {}

#----------------------------------------------------------------------------

def _commit(repo, files, message):
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    subprocess.run(['git', '-C', str(repo), 'add', '-A'], check=True)
    subprocess.run(['git', '-C', str(repo), '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', message], check=True)


def test_history_records_every_committed_version(tmp_path):
    repo = tmp_path / 'repo'
    repo.mkdir()
    subprocess.run(['git', 'init', '-q', str(repo)], check=True)
    v1 = '@persistence.persistent_class\nclass Net: pass\n'
    v2 = v1 + '# a comment\n'
    plain = 'x = 1\n'
    _commit(repo, {'pkg/net.py': v1, 'pkg/util.py': plain, 'other/net.py': v1 + '#'}, 'one')
    _commit(repo, {'pkg/net.py': v2}, 'two')
    _commit(repo, {'pkg/moved.py': v2 + '\n'}, 'three')
    (repo / 'pkg' / 'net.py').unlink()
    _commit(repo, {}, 'four: net.py removed') # its versions stay recorded: its snapshots still exist
    found = source_history.history_sources(str(repo), packages=('pkg',))
    digest = lambda text: source_history.source_digest(text.encode())
    assert found == {digest(v1): 'pkg/net.py', digest(v2): 'pkg/net.py', digest(v2 + '\n'): 'pkg/moved.py'}
    assert source_history.tree_sources(str(repo), packages=('pkg',)) == {digest(v2 + '\n'): 'pkg/moved.py'}
