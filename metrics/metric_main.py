"""Registry of named metrics, and the JSONL report format shared by calc_metrics.py and training runs.

A metric is a function `fn(opts: MetricOptions) -> dict(result_name=value, ...)` registered under its own name.
calc_metric() runs it and adds timing metadata; report_metric() prints the result as one JSON line and appends it
to `metric-<name>.jsonl` in the run directory. Names, sample counts and settings follow upstream StyleGAN2-ADA.
"""

import json
import os
import time

import torch

import dnnlib
from . import metric_utils
from . import frechet_inception_distance
from . import kernel_inception_distance
from . import precision_recall
from . import perceptual_path_length
from . import inception_score
from . import mode_coverage
from . import pairs

#----------------------------------------------------------------------------

_metric_dict = dict() # name -> fn
_metric_needs = dict() # name -> dict(data=bool, detectors=[urls], mnist=bool), for up-front checks

def register_metric(fn, data=True, detectors=(), mnist=False):
    assert callable(fn)
    _metric_dict[fn.__name__] = fn
    _metric_needs[fn.__name__] = dict(data=data, detectors=list(detectors), mnist=mnist)
    return fn

def _register(**needs):
    return lambda fn: register_metric(fn, **needs)

def is_valid_metric(metric):
    return metric in _metric_dict

def list_valid_metrics():
    return list(_metric_dict.keys())

def get_metric_needs(metric):
    """What `metric` needs besides G: dict(data=<needs a dataset>, detectors=[urls], mnist=<needs MNIST files>)."""
    assert is_valid_metric(metric)
    return dnnlib.EasyDict(_metric_needs[metric])

#----------------------------------------------------------------------------

def calc_metric(metric, **kwargs): # kwargs: see metric_utils.MetricOptions
    assert is_valid_metric(metric)
    opts = metric_utils.MetricOptions(**kwargs)

    start_time = time.time()
    results = _metric_dict[metric](opts)
    total_time = time.time() - start_time

    # Only rank 0 holds the numbers; the other ranks take them from there so that every process agrees.
    for key, value in list(results.items()):
        if opts.num_gpus > 1:
            value = torch.as_tensor(value, dtype=torch.float64, device=opts.device)
            torch.distributed.broadcast(tensor=value, src=0)
            value = float(value.cpu())
        results[key] = value

    result_dict = dnnlib.EasyDict(
        results         = dnnlib.EasyDict(results),
        metric          = metric,
        total_time      = total_time,
        total_time_str  = dnnlib.util.format_time(total_time),
        num_gpus        = opts.num_gpus,
    )
    if opts.max_items is not None:
        result_dict.max_items = opts.max_items # a capped smoke-test number must never pass for the real one
    return result_dict

#----------------------------------------------------------------------------

def report_metric(result_dict, run_dir=None, snapshot_pkl=None):
    metric = result_dict['metric']
    assert is_valid_metric(metric)
    if run_dir is not None and snapshot_pkl is not None:
        snapshot_pkl = os.path.relpath(snapshot_pkl, run_dir)

    jsonl_line = json.dumps(dict(result_dict, snapshot_pkl=snapshot_pkl, timestamp=time.time()))
    print(jsonl_line)
    if run_dir is not None and os.path.isdir(run_dir):
        with open(os.path.join(run_dir, f'metric-{metric}.jsonl'), 'at') as f:
            f.write(jsonl_line + '\n')

#----------------------------------------------------------------------------
# Metrics during training: a snapshot callback of stylegan_som.training_loop, built by the caller (train.py), so
# that the training loop needs nothing from this package.

class TrainingMetrics:
    """Evaluates `metrics` (names) on each snapshot's G_ema against the training set, reports them to
    metric-<name>.jsonl in the run directory and returns {result name: value}."""

    def __init__(self, metrics):
        self.metrics = list(metrics)

    def setup(self, device, rank, num_gpus):
        """Fetch the detectors the metrics need (rank 0, once, before training) and agree across ranks on
        whether they are at hand. Without them (e.g. offline), warn once and train without metrics (False)
        rather than fail at the first snapshot."""
        message = None
        if rank == 0:
            try:
                for metric in self.metrics:
                    for url in get_metric_needs(metric).detectors:
                        metric_utils.resolve_detector(url)
            except IOError as err:
                message = str(err)
        if num_gpus > 1:
            flag = torch.tensor([0.0 if message is None else 1.0], device=device)
            torch.distributed.broadcast(flag, src=0)
            if flag.item() > 0 and message is None:
                message = 'the detector is missing on rank 0'
        if message is not None:
            if rank == 0:
                print(f'WARNING: training continues without metrics ({",".join(self.metrics)}): {message} '
                    'They can be computed later from the snapshots with calc_metrics.py.')
            return False
        return True

    def __call__(self, snapshot_data, snapshot_pkl, run_dir, rank, num_gpus, device):
        if rank == 0:
            print('Evaluating metrics...')
        results = dict()
        for metric in self.metrics:
            result_dict = calc_metric(metric=metric, G=snapshot_data['G_ema'],
                dataset_kwargs=snapshot_data['training_set_kwargs'], num_gpus=num_gpus, rank=rank, device=device)
            if rank == 0:
                report_metric(result_dict, run_dir=run_dir, snapshot_pkl=snapshot_pkl)
            results.update(result_dict.results)
        return results

def training_callbacks(metrics):
    """The snapshot callbacks of a training run that evaluates `metrics` (names; none: no callback)."""
    return [TrainingMetrics(metrics)] if metrics else []

#----------------------------------------------------------------------------
# Sample counts go through metric_utils.capped() so that smoke tests can shrink them (opts.max_items).

INCEPTION = [metric_utils.INCEPTION_URL]
VGG16 = [metric_utils.VGG16_URL]
_cap = metric_utils.capped

# Primary metrics (StyleGAN2-ADA paper).

@_register(detectors=INCEPTION)
def fid50k_full(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    fid = frechet_inception_distance.compute_fid(opts, max_real=_cap(opts, None), num_gen=_cap(opts, 50000))
    return dict(fid50k_full=fid)

@_register(detectors=INCEPTION)
def kid50k_full(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    kid = kernel_inception_distance.compute_kid(opts, max_real=_cap(opts, 1000000), num_gen=_cap(opts, 50000), num_subsets=100, max_subset_size=1000)
    return dict(kid50k_full=kid)

@_register(detectors=VGG16)
def pr50k3_full(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    precision, recall = precision_recall.compute_pr(opts, max_real=_cap(opts, 200000), num_gen=_cap(opts, 50000), nhood_size=3, row_batch_size=10000, col_batch_size=10000)
    return dict(pr50k3_full_precision=precision, pr50k3_full_recall=recall)

@_register(detectors=VGG16)
def ppl2_wend(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=_cap(opts, 50000), epsilon=1e-4, space='w', sampling='end', crop=False, batch_size=2)
    return dict(ppl2_wend=ppl)

@_register(detectors=INCEPTION)
def is50k(opts):
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    mean, std = inception_score.compute_is(opts, num_gen=_cap(opts, 50000), num_splits=10)
    return dict(is50k_mean=mean, is50k_std=std)

# Legacy metrics (StyleGAN and StyleGAN2 papers).

@_register(detectors=INCEPTION)
def fid50k(opts):
    opts.dataset_kwargs.update(max_size=None)
    fid = frechet_inception_distance.compute_fid(opts, max_real=_cap(opts, 50000), num_gen=_cap(opts, 50000))
    return dict(fid50k=fid)

@_register(detectors=INCEPTION)
def kid50k(opts):
    opts.dataset_kwargs.update(max_size=None)
    kid = kernel_inception_distance.compute_kid(opts, max_real=_cap(opts, 50000), num_gen=_cap(opts, 50000), num_subsets=100, max_subset_size=1000)
    return dict(kid50k=kid)

@_register(detectors=VGG16)
def pr50k3(opts):
    opts.dataset_kwargs.update(max_size=None)
    precision, recall = precision_recall.compute_pr(opts, max_real=_cap(opts, 50000), num_gen=_cap(opts, 50000), nhood_size=3, row_batch_size=10000, col_batch_size=10000)
    return dict(pr50k3_precision=precision, pr50k3_recall=recall)

@_register(detectors=VGG16)
def ppl_zfull(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=_cap(opts, 50000), epsilon=1e-4, space='z', sampling='full', crop=True, batch_size=2)
    return dict(ppl_zfull=ppl)

@_register(detectors=VGG16)
def ppl_wfull(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=_cap(opts, 50000), epsilon=1e-4, space='w', sampling='full', crop=True, batch_size=2)
    return dict(ppl_wfull=ppl)

@_register(detectors=VGG16)
def ppl_zend(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=_cap(opts, 50000), epsilon=1e-4, space='z', sampling='end', crop=True, batch_size=2)
    return dict(ppl_zend=ppl)

@_register(detectors=VGG16)
def ppl_wend(opts):
    ppl = perceptual_path_length.compute_ppl(opts, num_samples=_cap(opts, 50000), epsilon=1e-4, space='w', sampling='end', crop=True, batch_size=2)
    return dict(ppl_wend=ppl)

# Mode-coverage benchmarks (see mode_coverage.py for what G must output).

@_register(data=False)
def modes_ring8(opts):
    r = mode_coverage.compute_toy_modes(opts, 'ring8', num_gen=_cap(opts, 2500))
    return dict(modes_ring8=r['modes'], modes_ring8_hq=r['hq'], modes_ring8_rkl=r['rkl'])

@_register(data=False)
def modes_grid25(opts):
    r = mode_coverage.compute_toy_modes(opts, 'grid25', num_gen=_cap(opts, 2500))
    return dict(modes_grid25=r['modes'], modes_grid25_hq=r['hq'], modes_grid25_rkl=r['rkl'])

@_register(data=False)
def modes_grid25_unequal(opts): # grid25 with unequal mode weights; the reverse KL is against those weights
    r = mode_coverage.compute_toy_modes(opts, 'grid25-unequal', num_gen=_cap(opts, 2500))
    return dict(modes_grid25_unequal=r['modes'], modes_grid25_unequal_hq=r['hq'], modes_grid25_unequal_rkl=r['rkl'])

@_register(data=False)
def modes_discs8(opts):
    r = mode_coverage.compute_discs8_modes(opts, num_gen=_cap(opts, 2500))
    return dict(modes_discs8=r['modes'], modes_discs8_hq=r['hq'], modes_discs8_rkl=r['rkl'])

@_register(data=False, mnist=True)
def modes_stacked_mnist(opts):
    modes, kl, hq = mode_coverage.compute_stacked_mnist_modes(opts, num_gen=_cap(opts, 26000))
    return dict(modes_stacked_mnist=modes, modes_stacked_mnist_kl=kl, modes_stacked_mnist_hq=hq)

@_register(data=False, mnist=True)
def modes_mnist(opts):
    modes, kl, hq = mode_coverage.compute_mnist_modes(opts, num_gen=_cap(opts, 10000))
    return dict(modes_mnist=modes, modes_mnist_kl=kl, modes_mnist_hq=hq)

#----------------------------------------------------------------------------

# Coupled generators (--data2): whether the two images of a pair correspond (see pairs.py).

def _pairs_result(name, r):
    return {name: r['match'], f'{name}_modes_a': r['modes_a'], f'{name}_modes_b': r['modes_b'],
        f'{name}_agree': r['agree']}

@_register(data=False, mnist=True)
def pairs_mnist_negative(opts):
    return _pairs_result('pairs_mnist_negative', pairs.compute_pairs(opts, 'negative', num_gen=_cap(opts, 2000)))

@_register(data=False, mnist=True)
def pairs_mnist_edges(opts):
    return _pairs_result('pairs_mnist_edges', pairs.compute_pairs(opts, 'edges', num_gen=_cap(opts, 2000)))
