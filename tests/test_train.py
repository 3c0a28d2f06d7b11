"""End-to-end test of train.py: a tiny conditional config trains for two ticks on CPU from the CIFAR-10 JPEG
tarball in ../shared/data (a folder of PNGs made here where that is missing), writes upstream's run-directory
layout, survives an unreachable metric detector, and its snapshot loads through legacy.load_network_pkl and draws
images through generate.py. --resume continues or transfers as it should. Bad flag values give one usage error
that names the flag."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from stylegan_som import config as train_config, launch
from stylegan_som.config import rundir
from tests import malicious

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), 'shared', 'data')

def shared_data(*parts):
    """Path of a file or folder under ../shared/data, or None where this checkout has none."""
    path = os.path.join(SHARED_DATA, *parts)
    return path if os.path.exists(path) else None

#----------------------------------------------------------------------------

def make_image_folder(path, num=32, res=16, labels=None, seed=0):
    """A folder of `num` RGB PNGs (a bright square on a dark background) and, with `labels` classes, a
    dataset.json in upstream's format."""
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    label_list = []
    for i in range(num):
        img = np.full([res, res, 3], rng.integers(0, 80), dtype=np.uint8)
        x, y = rng.integers(0, res - res // 4, size=2)
        img[y:y + res // 4, x:x + res // 4] = rng.integers(120, 256, size=3)
        name = f'img{i:04d}.png'
        PIL.Image.fromarray(img).save(os.path.join(path, name))
        if labels:
            label_list.append([name, int(i % labels)])
    if labels:
        with open(os.path.join(path, 'dataset.json'), 'w') as f:
            json.dump(dict(labels=label_list), f)
    return str(path)

def cpu_env(**extra):
    """Child environment: repo importable, CPU only (determinism, and --gpus means CPU processes), one thread
    per process."""
    # MKL_CBWR: bitwise-reproducible MKL kernels whatever the memory alignment (the kill test compares runs).
    env = dict(os.environ, PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1', MKL_CBWR='AUTO,STRICT',
        PYTHONWARNINGS='ignore')
    env.update(extra)
    return env

def run_train(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, os.path.join(REPO, 'train.py'), *args], cwd=REPO, env=env or cpu_env(),
        capture_output=True, text=True, timeout=timeout)

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """(run_dir, stdout, resolution, class count) of a 1-kimg conditional run with a snapshot every tick."""
    root = tmp_path_factory.mktemp('train')
    data, res, classes = shared_data('cifar10-jpeg', 'cifar10-jpeg-q75.tar.gz'), 32, 10
    if data is None:
        data, res, classes = make_image_folder(root / 'shapes', labels=2), 16, 2
    outdir = root / 'runs'
    # The metric detector is pointed at a missing file: the same situation as an offline machine.
    env = cpu_env(SGSOM_INCEPTION=str(root / 'no-such-detector.pt'))
    result = run_train(f'--outdir={outdir}', f'--data={data}', '--cfg=tiny', '--cond=1', '--kimg=1', '--tick=1',
        '--snap=1', '--workers=1', '--metrics=fid50k_full', env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = sorted(os.listdir(outdir))
    assert len(runs) == 1 and runs[0].startswith('00000-') and runs[0].endswith('-cond-tiny-kimg1'), runs
    return outdir / runs[0], result.stdout, res, classes

def test_run_directory_layout(trained):
    run_dir, _stdout, res, _classes = trained
    files = set(os.listdir(run_dir))
    expected = {'training_options.json', 'log.txt', 'stats.jsonl', 'reals.png', 'fakes_init.png', 'fakes000000.png',
        'fakes000001.png', 'network-snapshot-000000.pkl', 'network-snapshot-000001.pkl'}
    assert expected <= files, sorted(files)
    assert not [f for f in files if f.endswith('.tmp')], sorted(files) # no temporary snapshot left behind

    with open(run_dir / 'training_options.json') as f:
        opts = json.load(f)
    assert opts['training_set_kwargs']['use_labels'] is True
    assert opts['training_set_kwargs']['resolution'] == res
    assert opts['total_kimg'] == 1 and opts['batch_size'] == 8 and opts['kimg_per_tick'] == 1
    assert opts['loss_kwargs']['class_name'] == 'stylegan_som.loss.StyleGAN2Loss'
    assert opts['run_dir'] == str(run_dir)

    with open(run_dir / 'stats.jsonl') as f:
        stats = [json.loads(line) for line in f]
    assert [s['Progress/tick']['mean'] for s in stats] == [0, 1]
    assert stats[-1]['Progress/kimg']['mean'] == pytest.approx(1.0, abs=0.01)
    assert 'Loss/signs/real' in stats[-1] and 'Timing/sec_per_kimg' in stats[-1]

    with PIL.Image.open(run_dir / 'reals.png') as img:
        assert img.size[0] % res == 0 and img.size[1] % res == 0

def test_tick_lines_and_offline_metric(trained):
    run_dir, stdout, _res, _classes = trained
    ticks = [line for line in stdout.splitlines() if line.startswith('tick ')]
    assert len(ticks) == 2, stdout[-2000:]
    for word in ('kimg', 'time', 'sec/tick', 'sec/kimg', 'maintenance', 'cpumem', 'augment', 'eta'):
        assert f' {word} ' in ticks[-1] + ' ', ticks[-1]
    assert 'gpumem' not in ticks[-1] # CPU run
    # One warning about the missing detector, then training went on.
    warnings = [line for line in stdout.splitlines() if 'without metrics' in line]
    assert len(warnings) == 1, warnings
    assert 'SGSOM_INCEPTION' in warnings[0] or 'Inception' in warnings[0]
    assert not [f for f in os.listdir(run_dir) if f.startswith('metric-')]
    with open(run_dir / 'log.txt') as f:
        assert f.read().count('tick ') >= 2

def test_snapshot_loads_and_generates(trained, tmp_path):
    import torch
    from stylegan_som import legacy, snapshot
    run_dir, _stdout, res, classes = trained
    pkl = run_dir / 'network-snapshot-000001.pkl'
    with open(pkl, 'rb') as f:
        data = legacy.load_network_pkl(f)
    for key in ('G', 'D', 'G_ema', 'augment_pipe'):
        assert isinstance(data[key], torch.nn.Module), key
    assert data['training_set_kwargs']['resolution'] == res
    assert data['G_ema'].c_dim == classes and data['G_ema'].img_resolution == res

    # The training state holds nothing but plain values and tensors (upstream's loader must not need our classes).
    state = snapshot.get_training_state(data)
    assert state['cur_nimg'] == 1000 and state['cur_tick'] == 2
    snapshot.check_plain(state)
    module_names = set()
    class Spy(pickle.Unpickler):
        def find_class(self, module, name):
            module_names.add(module)
            return super().find_class(module, name)
    Spy(open(pkl, 'rb')).load()
    assert not [m for m in module_names if m.startswith('stylegan_som')], module_names # classes travel as persistent source

    out = tmp_path / 'gen'
    result = subprocess.run([sys.executable, os.path.join(REPO, 'generate.py'), f'--network={pkl}', '--seeds=0-1',
        '--class=1', f'--outdir={out}'], cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    pngs = sorted(f for f in os.listdir(out) if f.endswith('.png'))
    assert len(pngs) == 2, pngs
    with PIL.Image.open(out / pngs[0]) as img:
        assert img.size == (res, res)
        assert np.asarray(img).std() > 0

def test_resume_continues_or_transfers(trained, tmp_path, capsys):
    """--resume continues the run when the pickle has a training state for the same networks and data, and
    otherwise starts a new run from the weights with upstream's transfer-learning settings."""
    import train
    from stylegan_som import snapshot
    run_dir, _stdout, _res, _classes = trained
    pkl = str(run_dir / 'network-snapshot-000001.pkl')
    with open(run_dir / 'training_options.json') as f:
        data = json.load(f)['training_set_kwargs']['path']
    common = dict(data=data, cfg='tiny', cond=True, device_type='cpu', outdir=str(run_dir.parent))

    desc, args = train.setup_training_loop_kwargs(resume=pkl, **common)
    assert args.resume_pkl == pkl and args.resume_training_state is True
    assert desc.endswith('-resumecustom') and 'ada_kimg' not in args and args.ema_rampup == 0.05
    _desc, args = train.setup_training_loop_kwargs(resume='latest', **common)
    assert args.resume_pkl == pkl and args.resume_training_state is True

    # Other networks: weights only.
    _desc, args = train.setup_training_loop_kwargs(resume=pkl, cmax=16, **common)
    assert 'resume_training_state' not in args and args.ada_kimg == 100 and args.ema_rampup is None
    assert 'different generator, discriminator' in capsys.readouterr().out

    # A pickle without a training state (like upstream's): weights only.
    with open(pkl, 'rb') as f:
        blob = pickle.load(f)
    del blob[snapshot.STATE_KEY]
    stripped = tmp_path / 'upstream-like.pkl'
    with open(stripped, 'wb') as f:
        pickle.dump(blob, f)
    _desc, args = train.setup_training_loop_kwargs(resume=str(stripped), **common)
    assert 'resume_training_state' not in args and args.ada_kimg == 100
    assert 'has no training state' in capsys.readouterr().out

    # Nothing to resume under an empty --outdir: a fresh run.
    _desc, args = train.setup_training_loop_kwargs(resume='latest', **dict(common, outdir=str(tmp_path / 'empty')))
    assert 'resume_pkl' not in args

#----------------------------------------------------------------------------
# Option parsing: in-process for speed, plus one real command line for the exit code and message.

@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('opts')
    return dict(plain=make_image_folder(root / 'plain', num=4), labelled=make_image_folder(root / 'lab', num=4, labels=2))

BAD_FLAGS = [
    (dict(gpus=3), '--gpus'),
    (dict(snap=0), '--snap'),
    (dict(kimg=0), '--kimg'),
    (dict(batch=3, gpus=2), '--batch'),
    (dict(batch=8, batch_gpu=3), '--batch-gpu'),
    (dict(gamma=-1.0), '--gamma'),
    (dict(p=0.5), '--p'),
    (dict(aug='fixed'), '--p'),
    (dict(aug='noaug', target=0.5), '--target'),
    (dict(target=1.5), '--target'),
    (dict(aug='noaug', augpipe='bgc'), '--augpipe'),
    (dict(cond=True), '--cond'),
    (dict(subset=100), '--subset'),
    (dict(metrics=['fid_does_not_exist']), '--metrics'),
    (dict(freezed=-1), '--freezed'),
    (dict(workers=0), '--workers'),
    (dict(cbase=0), '--cbase'),
    (dict(mbstd_group=3), '--mbstd-group'),
    (dict(glr=0.0), '--glr'),
    (dict(fm=-1.0), '--fm'),
    (dict(fm=1.0, som_d=4, som_share='none'), '--fm'),
    (dict(resume='/no/such/snapshot.pkl'), '--resume'),
    (dict(data='/no/such/folder'), '--data'),
    (dict(bf16=True, device_type='cuda', gpus=1, arch='dcgan'), '--bf16'),
    (dict(bf16=True), '--bf16'), # the stylegan2 backbone
]

@pytest.mark.parametrize('kwargs,flag', BAD_FLAGS, ids=[f for _, f in BAD_FLAGS])
def test_bad_flag_values(folders, kwargs, flag):
    import train
    kwargs = dict(dict(data=folders['plain'], cfg='tiny', device_type='cpu'), **kwargs)
    with pytest.raises(train.UserError) as info:
        train.setup_training_loop_kwargs(**kwargs)
    assert flag in str(info.value), str(info.value)

def test_feature_matching_flag(folders):
    import train
    desc, args = train.setup_training_loop_kwargs(data=folders['plain'], cfg='tiny', device_type='cpu', fm=2.0)
    assert args.loss_kwargs.fm_weight == 2.0 and '-fm2' in desc
    _desc, args = train.setup_training_loop_kwargs(data=folders['plain'], cfg='tiny', device_type='cpu', fm=0.0)
    assert 'fm_weight' not in args.loss_kwargs

def test_configs_match_upstream(folders):
    import train
    _desc, args = train.setup_training_loop_kwargs(data=folders['labelled'], cfg='cifar', cond=True, device_type='cuda', gpus=1)
    assert args.batch_size == 64 and args.batch_gpu == 32 and args.total_kimg == 100000
    assert args.ema_kimg == 500 and args.ema_rampup == 0.05 and args.loss_kwargs.r1_gamma == 0.01
    assert args.loss_kwargs.pl_weight == 0 and args.loss_kwargs.style_mixing_prob == 0
    assert args.D_kwargs.architecture == 'orig' and args.D_kwargs.epilogue_kwargs.mbstd_group_size == 32
    assert args.G_kwargs.mapping_kwargs.num_layers == 2 and args.G_kwargs.synthesis_kwargs.channel_base == 32768
    assert args.G_opt_kwargs.lr == 0.0025 and args.metrics == ['fid50k_full'] and args.ada_target == 0.6
    assert args.G_kwargs.synthesis_kwargs.num_fp16_res == 4
    # 'auto' at 16x16 on one GPU, by upstream's formulas.
    desc, args = train.setup_training_loop_kwargs(data=folders['plain'], device_type='cuda', gpus=1)
    assert desc == 'plain-auto1'
    assert args.batch_size == 32 and args.D_kwargs.epilogue_kwargs.mbstd_group_size == 4
    assert args.G_kwargs.synthesis_kwargs.channel_base == 16384 and args.ema_kimg == 10
    assert args.loss_kwargs.r1_gamma == pytest.approx(0.0002 * 16 ** 2 / 32)
    # StyleGAN3-style overrides, and CPU turns mixed precision off.
    desc, args = train.setup_training_loop_kwargs(data=folders['plain'], cfg='stylegan2', cbase=1024, cmax=64,
        map_depth=3, glr=0.001, dlr=0.002, mbstd_group=2, tick=2, batch=8, device_type='cpu')
    assert args.G_kwargs.synthesis_kwargs.channel_base == args.D_kwargs.channel_base == 1024
    assert args.D_kwargs.channel_max == 64 and args.G_kwargs.mapping_kwargs.num_layers == 3
    assert args.G_opt_kwargs.lr == 0.001 and args.D_opt_kwargs.lr == 0.002 and args.kimg_per_tick == 2
    assert args.D_kwargs.epilogue_kwargs.mbstd_group_size == 2 and args.D_kwargs.num_fp16_res == 0

def test_cli_error_and_dry_run(folders, tmp_path):
    res = run_train(f'--outdir={tmp_path}', '--data=/no/such/folder', '--cfg=tiny')
    assert res.returncode == 2, res.stderr
    assert 'Error: --data:' in res.stderr and '/no/such/folder' in res.stderr
    res = run_train(f'--outdir={tmp_path}', f'--data={folders["plain"]}', '--cfg=tiny', '--gpus=3')
    assert res.returncode == 2 and 'Error: --gpus must be a power of two' in res.stderr, res.stderr
    res = run_train(f'--outdir={tmp_path}', f'--data={folders["plain"]}', '--cfg=tiny', '-n')
    assert res.returncode == 0, res.stderr
    assert 'Dry run; exiting.' in res.stdout and '"total_kimg": 20' in res.stdout
    assert os.listdir(tmp_path) == []

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# MNIST end to end: the tiny config's own tick and worker count, a --subset, greyscale snapshots through
# generate.py.

def _write_idx(path, array):
    # MNIST's idx layout: zero bytes, dtype code 0x08 (uint8), ndim, big-endian int32 sizes, then the data.
    import gzip
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype='>i4').tobytes()
    with gzip.open(path, 'wb') as f:
        f.write(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())

def mnist_data(root):
    """../shared/data/mnist, or (where this checkout has none) 300 random 28x28 'digits' in the same files."""
    found = shared_data('mnist')
    if found is not None:
        return found
    rng = np.random.default_rng(0)
    os.makedirs(root, exist_ok=True)
    _write_idx(os.path.join(root, 'train-images-idx3-ubyte.gz'), rng.integers(0, 256, [300, 28, 28]))
    _write_idx(os.path.join(root, 'train-labels-idx1-ubyte.gz'), rng.integers(0, 10, [300]))
    return str(root)

@pytest.fixture(scope='module')
def trained_mnist(tmp_path_factory):
    """(run_dir, stdout + stderr) of an unconditional tiny run on 256 MNIST digits, with Python warnings shown."""
    root = tmp_path_factory.mktemp('mnist')
    outdir = root / 'runs'
    result = run_train(f'--outdir={outdir}', f'--data={mnist_data(root / "idx")}', '--cfg=tiny', '--subset=256',
        '--kimg=1', '--snap=1', env=cpu_env(PYTHONWARNINGS='default'))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = os.listdir(outdir)
    assert len(runs) == 1 and runs[0].endswith('-subset256-tiny-kimg1'), runs
    return outdir / runs[0], result.stdout + result.stderr

def test_mnist_run_snapshots_and_generates(trained_mnist, tmp_path):
    import train
    run_dir, output = trained_mnist
    with open(run_dir / 'training_options.json') as f:
        opts = json.load(f)
    assert opts['kimg_per_tick'] == 1 # the tiny config's default: a progress line per kimg
    assert opts['data_loader_kwargs']['num_workers'] == train_config.data.default_workers(1)
    kwargs = opts['training_set_kwargs']
    assert kwargs['max_size'] == 256 and kwargs['use_labels'] is False and kwargs['resolution'] == 32
    assert len([line for line in output.splitlines() if line.startswith('tick ')]) == 2
    assert 'worker processes' not in output # no DataLoader warning about more workers than cores
    assert {'network-snapshot-000000.pkl', 'network-snapshot-000001.pkl'} <= set(os.listdir(run_dir))
    with PIL.Image.open(run_dir / 'reals.png') as img:
        assert img.mode == 'L' # one channel throughout

    out = tmp_path / 'gen'
    result = subprocess.run([sys.executable, os.path.join(REPO, 'generate.py'), f'--network={run_dir / "network-snapshot-000001.pkl"}',
        '--seeds=0-1', f'--outdir={out}'], cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert sorted(os.listdir(out)) == ['seed0000.png', 'seed0001.png']
    images = []
    for name in sorted(os.listdir(out)):
        with PIL.Image.open(out / name) as img:
            assert img.mode == 'L' and img.size == (32, 32)
            images.append(np.asarray(img))
    assert not np.array_equal(images[0], images[1])

#----------------------------------------------------------------------------
# Bad input from the command line: every case fails with exit code 2 and one 'Error:' line naming the flag and
# the file or value, before anything is written (an existing run directory stays as it was), with and without
# --dry-run. In-process through click for speed; real processes below for the exit codes.

@pytest.fixture(scope='module')
def bad_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp('bad')
    paths = dict(root=str(root), plain=make_image_folder(root / 'plain', num=4), empty=str(root / 'empty'))
    os.makedirs(paths['empty'])
    paths['corrupt'] = make_image_folder(root / 'corrupt', num=4)
    (root / 'corrupt' / 'img0002.png').write_bytes(b'this is no png')
    paths['mixed'] = make_image_folder(root / 'mixed', num=4)
    PIL.Image.new('RGB', (32, 32)).save(root / 'mixed' / 'zz_big.png')
    paths['nonsquare'] = str(root / 'nonsquare')
    os.makedirs(paths['nonsquare'])
    for i in range(3):
        PIL.Image.new('RGB', (32, 16)).save(root / 'nonsquare' / f'wide{i}.png')
    paths['truncated'] = make_image_folder(root / 'truncated', num=4)
    png = (root / 'truncated' / 'img0001.png').read_bytes()
    (root / 'truncated' / 'img0001.png').write_bytes(png[:len(png) // 2]) # header intact, pixels cut off
    paths['notes'] = str(root / 'notes.txt')
    (root / 'notes.txt').write_text('not a dataset, not a pickle, not a folder')
    # CIFAR-10 python batches whose pickle would create a file (inside root, so the tree check sees it) if it ran.
    from tests.stylegan_som.data.test_images import _make_cifar_tarball
    from tests.malicious import MarkerWriter
    paths['evil_cifar'] = str(root / 'cifar-10-python.tar.gz')
    _make_cifar_tarball(paths['evil_cifar'], per_batch=1, replace={'data_batch_1': MarkerWriter(root / 'ran', 'system')})
    # Network pickles that would run code (see tests/malicious.py), again writing root/ran.
    paths.update(malicious.write_network_pickles(str(root), root / 'ran'))
    return paths

BAD_CLI = [ # (case, arguments, what the error line must mention)
    ('missing-path',      ['--data={root}/no-such-folder'],           ['--data', 'no-such-folder']),
    ('empty-folder',      ['--data={empty}'],                         ['--data', 'No images found', '{empty}']),
    ('corrupt-image',     ['--data={corrupt}'],                       ['--data', 'img0002.png', 'Corrupt']),
    ('mixed-resolutions', ['--data={mixed}'],                         ['--data', 'Mixed image sizes', 'zz_big.png', '32x32']),
    ('non-square',        ['--data={nonsquare}'],                     ['--data', 'square', 'wide0.png', '32x16']),
    ('not-a-dataset',     ['--data={notes}'],                         ['--data', 'notes.txt']),
    ('cifar-runs-code',   ['--data={evil_cifar}'],                    ['--data', 'Refusing to read {evil_cifar}', 'data_batch_1', 'system']),
    ('cond-no-labels',    ['--data={plain}', '--cond=1'],             ['--cond=1', 'labels', '{plain}']),
    ('cond-not-bool',     ['--data={plain}', '--cond=maybe'],         ["'--cond'", 'maybe']),
    ('kimg-zero',         ['--data={plain}', '--kimg=0'],             ['--kimg', '0']),
    ('kimg-text',         ['--data={plain}', '--kimg=ten'],           ["'--kimg'", 'ten']),
    ('cfg-unknown',       ['--data={plain}', '--cfg=huge'],           ["'--cfg'", 'huge']),
    ('gpus-three',        ['--data={plain}', '--gpus=3'],             ['--gpus', '3']),
    ('subset-too-big',    ['--data={plain}', '--subset=5'],           ['--subset', '5']),
    ('metrics-unknown',   ['--data={plain}', '--metrics=fid_nope'],   ['--metrics', 'fid_nope']),
    ('resume-missing',    ['--data={plain}', '--resume={root}/gone.pkl'], ['--resume', 'gone.pkl']),
    ('resume-not-pickle', ['--data={plain}', '--resume={notes}'],     ['--resume', 'notes.txt']),
    ('resume-reduce',     ['--data={plain}', '--resume={reduce}'],    ['--resume', 'Refusing to load', 'reduce.pkl', '.system', '--trust-pickle']),
    ('resume-source',     ['--data={plain}', '--resume={source}'],    ['--resume', 'Refusing to load', 'source.pkl', "'Generator'", '--trust-pickle']),
    ('outdir-is-file',    ['--data={plain}', '--outdir={notes}'],     ['--outdir', 'notes.txt']),
    ('outdir-under-file', ['--data={plain}', '--outdir={notes}/runs'], ['--outdir', 'notes.txt']),
]

def _tree(path):
    return sorted((os.path.relpath(os.path.join(d, f), path), os.path.getsize(os.path.join(d, f)))
        for d, _, files in os.walk(path) for f in files)

@pytest.mark.parametrize('dry_run', [True, False], ids=['dry-run', 'real'])
@pytest.mark.parametrize('case,args,mentions', BAD_CLI, ids=[c[0] for c in BAD_CLI])
def test_bad_command_lines(bad_inputs, tmp_path, case, args, mentions, dry_run):
    from click.testing import CliRunner
    import train
    from tests.cli_errors import one_error_line
    outdir = tmp_path / 'runs'
    os.makedirs(outdir / '00000-earlier-run')
    (outdir / '00000-earlier-run' / 'network-snapshot-000000.pkl').write_bytes(b'precious')
    before = _tree(tmp_path), _tree(bad_inputs['root'])
    argv = [f'--outdir={outdir}', '--cfg=tiny', '--kimg=1'] + [a.format(**bad_inputs) for a in args] + (['-n'] if dry_run else [])
    saved = sys.stdout, sys.stderr # train.main installs a logger on sys.stdout once the options pass
    try:
        result = CliRunner().invoke(train.main, argv)
    finally:
        sys.stdout, sys.stderr = saved
    assert result.exit_code == 2, f'{case}: exit {result.exit_code}\n{result.output[-3000:]}'
    one_error_line(result.output, mentions, **bad_inputs)
    assert (_tree(tmp_path), _tree(bad_inputs['root'])) == before # nothing written, nothing lost

def test_bad_input_exit_codes(bad_inputs, tmp_path):
    # A file that passes the start-up check (its header is fine) but cannot be decoded stops training with one
    # line naming it, also in the run's log, and a non-zero exit code; earlier runs stay as they were.
    from tests.cli_errors import one_error_line
    outdir = tmp_path / 'runs'
    os.makedirs(outdir / '00000-earlier-run')
    (outdir / '00000-earlier-run' / 'keep.txt').write_text('x')
    res = run_train(f'--outdir={outdir}', f'--data={bad_inputs["truncated"]}', '--cfg=tiny', '--kimg=1', '--workers=1',
        '--check-images=none') # past the start-up decode (tests/stylegan_som/test_image_check.py checks that one)
    assert res.returncode == 3, res.stdout[-3000:] + res.stderr[-3000:]
    error = one_error_line(res.stdout + res.stderr, ['Error: --data: ', 'img0001.png', 'truncated'])
    assert (outdir / '00000-earlier-run' / 'keep.txt').read_text() == 'x'
    new_run = outdir / sorted(os.listdir(outdir))[-1]
    assert error in (new_run / 'log.txt').read_text()

    # Option errors from a real process: click's usage error, exit code 2.
    res = run_train(f'--outdir={bad_inputs["notes"]}', f'--data={bad_inputs["plain"]}', '--cfg=tiny')
    assert res.returncode == 2, res.stderr
    assert one_error_line(res.stderr) == f'Error: --outdir: {bad_inputs["notes"]} is a file, not a folder'

def test_dataset_pickle_never_runs(bad_inputs, tmp_path):
    # A real process, with --dry-run (which reads the data to report its size): one line, exit 2, no marker.
    from tests.cli_errors import one_error_line
    res = run_train(f'--outdir={tmp_path}/runs', f'--data={bad_inputs["evil_cifar"]}', '--cfg=tiny', '--dry-run')
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-3000:]
    one_error_line(res.stderr, ['--data', 'Refusing to read', bad_inputs['evil_cifar'], 'data_batch_1 refers to'])
    assert not os.path.exists(os.path.join(bad_inputs['root'], 'ran')) and not os.path.exists(tmp_path / 'runs')

def test_diverged_run_stops_without_a_snapshot(tmp_path):
    # --glr=1e30: G's first step throws its weights far out, and D's gradients on those fakes are NaN in the first
    # step. The run stops there (exit 4), says where and which loss, and writes no snapshot.
    from tests.cli_errors import one_error_line
    from stylegan_som import snapshot
    toy = ['--cfg=toy', '--data=ring8', '--kimg=1', '--tick=1', '--snap=1', '--metrics=none']
    res = run_train(f'--outdir={tmp_path}/a', '--glr=1e30', *toy)
    assert res.returncode == 4, res.stdout[-3000:] + res.stderr[-3000:]
    line = one_error_line(res.stdout + res.stderr, ['Error: training diverged at tick 0, kimg 0.0 (step 0)',
        'the D loss (phase Dboth) has non-finite gradients', 'no snapshot was written before it'])
    run = tmp_path / 'a' / os.listdir(tmp_path / 'a')[0]
    assert snapshot.list_snapshots(run) == [] and line in (run / 'log.txt').read_text()

    # Continuing a good run with that rate: the error names the snapshot it continued from, and nothing is added.
    res = run_train(f'--outdir={tmp_path}/b', *toy)
    assert res.returncode == 0, res.stdout[-3000:]
    good = snapshot.list_snapshots(tmp_path / 'b' / os.listdir(tmp_path / 'b')[0])[0]
    assert good.endswith('network-snapshot-000000.pkl')
    res = run_train(f'--outdir={tmp_path}/c', '--glr=1e30', f'--resume={good}', *toy)
    assert res.returncode == 4, res.stdout[-3000:] + res.stderr[-3000:]
    one_error_line(res.stdout + res.stderr, ['tick 1, kimg 0.3 (step 1)', f'the last good snapshot is {good}'])
    assert snapshot.find_latest_snapshot(tmp_path / 'c') is None

def test_resume_latest_refuses_code(bad_inputs, tmp_path):
    # --resume=latest takes the newest snapshot under --outdir unasked: a planted one is refused (real process),
    # and runs only with --trust-pickle.
    from tests.cli_errors import one_error_line
    run = tmp_path / 'runs' / '00001-planted'
    run.mkdir(parents=True)
    marker = tmp_path / 'marker'
    paths = malicious.write_network_pickles(str(run), marker)
    os.rename(paths['source'], run / 'network-snapshot-000004.pkl')
    args = [f'--outdir={tmp_path}/runs', f'--data={bad_inputs["plain"]}', '--cfg=tiny', '--resume=latest', '--dry-run']
    res = run_train(*args)
    assert res.returncode == 2, res.stdout[-3000:] + res.stderr[-3000:]
    one_error_line(res.stderr, ['--resume', 'Refusing to load', 'network-snapshot-000004.pkl', "'Generator'", '--trust-pickle'])
    assert not marker.exists() and os.listdir(tmp_path / 'runs') == ['00001-planted']
    res = run_train(*args, '--trust-pickle')
    assert res.returncode == 0 and marker.exists(), res.stdout[-3000:] + res.stderr[-3000:]

def test_snapshot_write_error_stops_with_one_line(tmp_path):
    # A file-size limit below the snapshot's size stands in for a full disk (EFBIG instead of ENOSPC, same path).
    import resource
    import signal
    from tests.cli_errors import one_error_line
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN) # the write then fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000)) # the toy snapshot is ~1.3 MB, the rest < 10 kB
    cmd = [sys.executable, os.path.join(REPO, 'train.py'), f'--outdir={tmp_path}', '--cfg=toy', '--data=ring8', '--kimg=1',
        '--metrics=none']
    res = subprocess.run(cmd, cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=600, preexec_fn=limit)
    assert res.returncode == 5, res.stdout[-3000:] + res.stderr[-3000:]
    run = tmp_path / os.listdir(tmp_path)[0]
    one_error_line(res.stdout + res.stderr, [f'Error: Cannot write {run}/network-snapshot-000000.pkl: File too large',
        'earlier snapshots are intact'])
    assert not [f for f in os.listdir(run) if f.endswith('.pkl') or f.endswith('.tmp')], os.listdir(run)

def test_run_directory_names(folders, tmp_path):
    import train
    desc, _args = train.setup_training_loop_kwargs(data=folders['plain'], cfg='tiny', seed=3, device_type='cpu', outdir=str(tmp_path))
    assert desc.endswith('-tiny-seed3')
    desc, _args = train.setup_training_loop_kwargs(data=folders['plain'], cfg='tiny', seed=0, device_type='cpu', outdir=str(tmp_path))
    assert 'seed' not in desc
    # The id is taken with mkdir: a run that got there first (a folder, or even a file) pushes this one on.
    args = dict(run_dir=rundir.pick_run_dir(str(tmp_path), 'x'))
    assert args['run_dir'] == str(tmp_path / '00000-x')
    os.makedirs(tmp_path / '00000-x')
    (tmp_path / '00001-x').write_text('not a folder')
    args = train.dnnlib.EasyDict(run_dir=str(tmp_path / '00000-x'))
    rundir.create_run_dir(args)
    assert args.run_dir == str(tmp_path / '00002-x') and os.path.isfile(tmp_path / '00002-x' / 'training_options.json')
    assert json.load(open(tmp_path / '00002-x' / 'training_options.json'))['run_dir'] == args.run_dir

def test_data_error_line_from_a_worker():
    """A DatasetError raised in a DataLoader worker comes back as the same type with the worker's traceback
    as its text; train.py reports only the dataset's own message."""
    import torch
    import train
    from stylegan_som.data import DatasetError
    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 2
        def __getitem__(self, idx):
            raise DatasetError(f'Corrupt or unreadable image x{idx}.png in /data: image file is truncated')
    with pytest.raises(DatasetError) as info:
        next(iter(torch.utils.data.DataLoader(Broken(), batch_size=1, num_workers=1)))
    assert 'Traceback' in str(info.value) # what would otherwise be printed
    assert launch.data_error_line(info.value) == 'Corrupt or unreadable image x0.png in /data: image file is truncated'
    assert launch.data_error_line(DatasetError('one line')) == 'one line'

def test_defaults_for_small_machines(bad_inputs, monkeypatch):
    import train
    # Data-loading workers: upstream's 3 per process, capped by the cores each process gets.
    for cores, processes, expected in [(64, 1, 3), (64, 8, 3), (2, 1, 2), (2, 2, 1), (1, 4, 1)]:
        monkeypatch.setattr(os, 'sched_getaffinity', lambda pid, n=cores: set(range(n)), raising=False)
        assert train_config.data.default_workers(processes) == expected, (cores, processes)
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 1}, raising=False)
    common = dict(data=bad_inputs['plain'], device_type='cpu')
    _desc, args = train.setup_training_loop_kwargs(cfg='tiny', **common)
    assert args.data_loader_kwargs.num_workers == 2
    assert args.kimg_per_tick == 1 and args.metrics == [] # tiny: a line per kimg, no FID
    _desc, args = train.setup_training_loop_kwargs(cfg='tiny', tick=3, workers=4, **common)
    assert args.kimg_per_tick == 3 and args.data_loader_kwargs.num_workers == 4 # explicit values win
    _desc, args = train.setup_training_loop_kwargs(cfg='cpu', **common)
    assert 'kimg_per_tick' not in args and args.metrics == [] # the loop's default of 4
    _desc, args = train.setup_training_loop_kwargs(cfg='auto', gpus=2, **common)
    assert args.metrics == ['fid50k_full'] and args.data_loader_kwargs.num_workers == 1 # upstream's default metric

def test_resume_url_fetched_before_the_run_directory(tmp_path):
    import train
    args = dict(resume_pkl=f'file://{tmp_path}/nowhere.pkl')
    with pytest.raises(train.UserError, match='--resume: .*nowhere.pkl'):
        rundir.fetch_resume_pkl(args)
    rundir.fetch_resume_pkl(dict(resume_pkl=None)) # nothing to fetch
    rundir.fetch_resume_pkl(dict(resume_pkl=str(tmp_path / 'local.pkl'))) # local paths were checked earlier

#----------------------------------------------------------------------------
