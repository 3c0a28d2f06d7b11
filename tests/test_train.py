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
    (dict(resume='/no/such/snapshot.pkl'), '--resume'),
    (dict(data='/no/such/folder'), '--data'),
]

@pytest.mark.parametrize('kwargs,flag', BAD_FLAGS, ids=[f for _, f in BAD_FLAGS])
def test_bad_flag_values(folders, kwargs, flag):
    import train
    kwargs = dict(dict(data=folders['plain'], cfg='tiny', device_type='cpu'), **kwargs)
    with pytest.raises(train.UserError) as info:
        train.setup_training_loop_kwargs(**kwargs)
    assert flag in str(info.value), str(info.value)

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
