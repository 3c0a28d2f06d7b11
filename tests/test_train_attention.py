"""train.py with self-attention blocks and D's spectral normalisation (--g-attn, --d-attn, --d-sn): a tiny run
records them in training_options.json, trains the attention gains away from zero, and its snapshot (attention
blocks and spectrally normalised D included) loads and draws through generate.py. Bad values give one usage
error naming the flag."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from tests.test_train import REPO, cpu_env, make_image_folder, run_train

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def data16(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('attn') / 'shapes', num=16, res=16)

def test_train_with_attention_and_spectral_norm(data16, tmp_path):
    import torch
    from stylegan_som import legacy
    outdir = tmp_path / 'runs'
    result = run_train(f'--outdir={outdir}', f'--data={data16}', '--cfg=tiny', '--kimg=1', '--batch=32', '--tick=1',
        '--snap=1', '--workers=1', '--metrics=none', '--aug=noaug', '--g-attn=8', '--d-attn=8,4', '--d-sn=1')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = sorted(os.listdir(outdir))
    assert len(runs) == 1 and runs[0].endswith('-gattn8-dattn4.8-dsn1'), runs
    run_dir = outdir / runs[0]

    with open(run_dir / 'training_options.json') as f:
        options = json.load(f)
    assert options['G_kwargs']['synthesis_kwargs']['attn_resolutions'] == [8]
    assert options['D_kwargs']['attn_resolutions'] == [4, 8]
    assert options['D_kwargs']['spectral_norm'] is True

    pkl = run_dir / 'network-snapshot-000001.pkl'
    with open(pkl, 'rb') as f:
        data = legacy.load_network_pkl(f)
    G, D = data['G_ema'], data['D']
    assert type(G.synthesis.attn8).__name__ == 'SelfAttention'
    assert float(G.synthesis.attn8.gamma) != 0 and float(D.attn4.gamma) != 0 and float(D.attn8.gamma) != 0 # trained
    assert type(D.b8.conv0).__name__ == 'ParametrizedConv2dLayer' and D.b8.conv0.weight_gain == 1
    w = D.b8.conv0.weight.flatten(1).double()
    assert abs(float(torch.linalg.matrix_norm(w, ord=2)) - 1) < 0.1

    modules = set()
    class Spy(pickle.Unpickler):
        def find_class(self, module, name):
            modules.add(module)
            return super().find_class(module, name)
    with open(pkl, 'rb') as f:
        Spy(f).load()
    assert not [m for m in modules if m.startswith('stylegan_som')], modules # classes travel as persistent source

    out = tmp_path / 'gen'
    result = subprocess.run([sys.executable, os.path.join(REPO, 'generate.py'), f'--network={pkl}', '--seeds=0-1',
        f'--outdir={out}'], cwd=REPO, env=cpu_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    pngs = sorted(f for f in os.listdir(out) if f.endswith('.png'))
    assert len(pngs) == 2, pngs
    with PIL.Image.open(out / pngs[0]) as img:
        assert img.size == (16, 16)
        assert np.asarray(img).std() > 0

@pytest.mark.parametrize('kwargs,message', [
    (dict(g_attn=['16']), '--g-attn: no feature maps of 16x16'),   # G's last block has no features after it
    (dict(d_attn=['4', 'x']), "--d-attn: 'x' is not a resolution"),
    (dict(d_attn=['2']), '--d-attn: no feature maps of 2x2'),
])
def test_bad_values(data16, kwargs, message):
    import train
    kwargs = dict(dict(data=data16, cfg='tiny', device_type='cpu'), **kwargs)
    with pytest.raises(train.UserError) as info:
        train.setup_training_loop_kwargs(**kwargs)
    assert message in str(info.value), str(info.value)

def test_cli_usage_error(data16, tmp_path):
    result = run_train(f'--outdir={tmp_path}', f'--data={data16}', '--cfg=tiny', '--dry-run', '--d-attn=16', timeout=120)
    assert result.returncode == 2 and '--d-attn: no feature maps of 16x16' in result.stderr, result.stderr[-2000:]
    assert 'Traceback' not in result.stderr

def test_dry_run_records_options(data16, tmp_path):
    result = run_train(f'--outdir={tmp_path}', f'--data={data16}', '--cfg=tiny', '--dry-run', '--g-attn=4,8',
        '--d-attn=8', '--d-sn=0', timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"spectral_norm": false' in result.stdout and '-gattn4.8-dattn8-dsn0' in result.stdout

#----------------------------------------------------------------------------
