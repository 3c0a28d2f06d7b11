"""bench/collapse_study.py --quick (the CI check of the pipeline) and bench/weight_hist.py on a made-up critic."""

import json
import os
import pickle
import sys

import numpy as np
import PIL.Image
import pytest
import torch

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'bench')
sys.path.insert(0, BENCH)

import collapse_study # pylint: disable=wrong-import-position
import weight_hist # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def test_quick_ring8(tmp_path):
    collapse_study.main([f'--outdir={tmp_path}', '--quick', '--data=ring8', '--loss=minimax'])
    summary = json.loads((tmp_path / 'collapse-minimax.json').read_text())
    assert sorted(summary) == ['ring8 K=1', 'ring8 K=4']
    for entry in summary.values():
        # --quick: 4 kimg with a snapshot every 2 (and the first after step 1): 0, 2, 4 kimg = 0, 7, 15 steps.
        assert [s['kimg'] for s in entry['snapshots']] == [0, 2, 4]
        assert [s['steps'] for s in entry['snapshots']] == [0, 7, 15]
        assert all(0 <= s['modes_ring8'] <= 8 for s in entry['snapshots'])
        options = json.loads((tmp_path / entry['run_dir'] / 'training_options.json').read_text())
        assert options['loss_kwargs']['objective'] == 'minimax' and options['loss_kwargs']['r1_gamma'] == 0
        assert 'lr_rampdown' not in options
    sheet = PIL.Image.open(tmp_path / 'collapse-ring8-minimax-samples.png')
    curve = PIL.Image.open(tmp_path / 'collapse-ring8-minimax-coverage.png')
    assert sheet.width > 2 * 192 and sheet.height > 2 * 192 # two rows (K=1, K=4) of two snapshots
    assert curve.size == (1040, 320)
    assert np.asarray(sheet).std() > 10 # not blank

def test_bad_arguments(capsys, tmp_path):
    for argv, message in [(['--data=cifar'], "--data: unknown dataset 'cifar'"), (['--loss=wgan'], '--loss'),
            (['--kimg=0'], '--kimg')]:
        with pytest.raises(SystemExit) as err:
            collapse_study.main([f'--outdir={tmp_path}', *argv])
        assert err.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0]

def _critic_pickle(path, clip):
    from stylegan_som.networks.small import MLPDiscriminator, MLPGenerator
    torch.manual_seed(0)
    D = MLPDiscriminator(c_dim=0, img_resolution=1, img_channels=2, layer_features=32, num_layers=2)
    if clip:
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-clip, clip)
    G = MLPGenerator(z_dim=4, c_dim=0, w_dim=4, img_resolution=1, img_channels=2)
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=D, G_ema=G), f)
    return D

def test_weight_hist(tmp_path, capsys):
    clipped = _critic_pickle(tmp_path / 'wgan.pkl', clip=0.01)
    _critic_pickle(tmp_path / 'gp.pkl', clip=0)
    out = tmp_path / 'hist.png'
    weight_hist.main([f'--network=wgan={tmp_path / "wgan.pkl"}', f'--network=gp={tmp_path / "gp.pkl"}', f'--out={out}'])
    lines = capsys.readouterr().out.splitlines()
    values = np.concatenate([p.detach().numpy().ravel() for p in clipped.parameters()])
    share = 100 * (np.abs(values) >= 0.99 * 0.01).mean()
    assert share > 90 # torch's init is far wider than 0.01: nearly everything sits on the bounds
    assert lines[0].startswith(f'wgan: {values.size} parameters, max |w| 0.01, {share:.1f}% within 1%')
    assert lines[1].startswith('gp: ') and float(lines[1].split(', ')[2].split('%')[0]) < 1 # spread, no spikes
    img = PIL.Image.open(out)
    assert img.size == (1040, 320)
    with pytest.raises(SystemExit):
        weight_hist.main([f'--network={tmp_path / "missing.pkl"}', f'--out={out}'])
    assert 'no such file' in capsys.readouterr().err
