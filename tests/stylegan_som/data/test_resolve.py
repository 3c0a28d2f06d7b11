"""The one resolver of --data and the class names earlier runs recorded."""

import subprocess
import sys

import pytest

import dnnlib
from stylegan_som.data import DatasetError, dataset_kwargs_from_data
from stylegan_som.data import resolve
from tests.test_train import REPO

def test_data_kind_knows_every_kind(tmp_path):
    assert resolve.data_kind('ring8') == 'points' and resolve.data_kind('grid25-unequal') == 'points'
    assert resolve.data_kind('mnist') == 'builtin' and resolve.data_kind('cifar10') == 'builtin'
    assert resolve.data_kind(str(tmp_path)) == 'path' and resolve.data_kind('no/such.zip') == 'path'
    (tmp_path / 'ring8').mkdir() # a folder of that name wins over the toy
    assert resolve.data_kind(str(tmp_path / 'ring8')) == 'path'
    assert {'ring8', 'grid25', 'mnist', 'cifar10', 'discs8', 'stacked-mnist'} <= set(resolve.known_names())

def test_old_class_names_of_saved_runs_resolve(tmp_path):
    points = dnnlib.util.construct_class_by_name(class_name='stylegan_som.dataset_points.PointDataset', path='ring8')
    kwargs, _name = dataset_kwargs_from_data('ring8')
    assert kwargs.class_name == 'stylegan_som.data.points.PointDataset'
    new = dnnlib.util.construct_class_by_name(**kwargs)
    assert type(points) is type(new) and len(points) == len(new)
    with pytest.raises(DatasetError, match='nowhere'):
        dnnlib.util.construct_class_by_name(class_name='stylegan_som.dataset.ImageFolderDataset',
            path=str(tmp_path / 'nowhere'))

def test_dataset_tool_entry_starts_without_torch():
    code = ('import runpy, sys; sys.argv = ["dataset_tool", "--help"]\n'
        'try:\n    runpy.run_module("stylegan_som.dataset_tool", run_name="__main__")\n'
        'except SystemExit as e:\n    assert e.code == 0, e.code\n'
        'assert "torch" not in sys.modules, "torch imported"\n')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'python -m stylegan_som.dataset_tool --source=' in out.stdout
