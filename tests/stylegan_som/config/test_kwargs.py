"""The training_loop kwargs and run names of representative command lines are those recorded before train.py's
options were split into groups (train_kwargs.json, written by kwargs_cases.py from the old train.py), plus
the snapshot_format that --snap-format (default pkl) sets since issue 28, the SOM heads' pairs (--som-pairs,
default index) and G's SOM rule, transport by default for every config since issue 26."""

import json
import os

import pytest

from tests.stylegan_som.config import kwargs_cases

RECORDED = json.load(open(os.path.join(os.path.dirname(__file__), 'train_kwargs.json')))

@pytest.fixture(scope='module')
def paths(tmp_path_factory):
    return kwargs_cases.make_data(str(tmp_path_factory.mktemp('kwargs')))

@pytest.mark.parametrize('name', sorted(kwargs_cases.CASES))
def test_kwargs_as_recorded(name, paths, monkeypatch):
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '')
    got = kwargs_cases.kwargs_for(kwargs_cases.CASES[name], paths)
    assert got['desc'] == RECORDED[name]['desc']
    assert got['args'] == RECORDED[name]['args']

def test_every_case_recorded():
    assert sorted(RECORDED) == sorted(kwargs_cases.CASES)
