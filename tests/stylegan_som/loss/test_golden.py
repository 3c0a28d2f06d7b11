"""StyleGAN2Loss's gradients, reported statistics and state on tiny StyleGAN2 networks, held against values
recorded from the single-module loss it replaced (golden.json): the package must train bit for bit as before.
Bits are compared where the file was recorded with the same torch build and CPU kernels (platform()); elsewhere
float kernels may round differently, and the statistics and gradient norms are compared to 1e-5 instead.
Re-record only for an intended change of the numbers: python -m tests.stylegan_som.loss.test_golden --record"""

import hashlib
import json
import os
import sys

import pytest
import torch

from stylegan_som.loss import StyleGAN2Loss
from stylegan_som.networks import stylegan2 as net
from torch_utils import training_stats

GOLDEN = os.path.join(os.path.dirname(__file__), 'golden.json')

# name: (loss kwargs, D kwargs, phases of one step); two steps each, with an SGD update in between.
CONFIGS = {
    'stylegan2-r1-pl':     (dict(r1_gamma=1.0, pl_weight=2.0), dict(), ['Gmain', 'Greg', 'Dmain', 'Dreg']),
    'stylegan2-both':      (dict(r1_gamma=1.0, pl_weight=2.0), dict(), ['Gboth', 'Dboth']),
    'som4-transport':      (dict(r1_gamma=1.0, pl_weight=0, som_kwargs=dict(g_weights='transport')),
                            dict(num_heads=4), ['Gmain', 'Dmain', 'Dreg']),
    'som4-neighbourhood-hinge': (dict(objective='hinge', r1_gamma=0.5, pl_weight=0,
                            som_kwargs=dict(g_weights='neighbourhood', topology='circular')), dict(num_heads=4),
                            ['Gmain', 'Dboth']),
    'som4-prototype-fm':   (dict(r1_gamma=0, pl_weight=0, fm_weight=1.0, som_kwargs=dict(bmu='prototype',
                            g_weights='balance')), dict(num_heads=4), ['Gmain', 'Dmain']),
    'rpgan-r1-r2':         (dict(objective='rpgan', r1_gamma=1.0, r2_gamma=1.0, pl_weight=0, style_mixing_prob=0),
                            dict(), ['Gmain', 'Dboth']),
    'softmax-som4':        (dict(objective='softmax', r1_gamma=0.5, pl_weight=0), dict(num_heads=4), ['Gboth', 'Dboth']),
    'wgan-gp':             (dict(objective='wgan-gp', r1_gamma=0, gp_weight=10, pl_weight=2.0), dict(),
                            ['Gmain', 'Greg', 'Dmain', 'Dreg']),
    'wgan-clip':           (dict(objective='wgan', r1_gamma=0, weight_clip=0.01, pl_weight=0,
                            som_kwargs=dict(topology='linear')), dict(num_heads=2),
                            ['Gmain', 'Dmain']),
}

def platform():
    return f'torch {torch.__version__} {torch.backends.cpu.get_cpu_capability()}'

def _digest(t):
    return hashlib.sha256(t.detach().contiguous().cpu().numpy().tobytes()).hexdigest()[:24]

def _run(name):
    loss_kwargs, d_kwargs, phases = CONFIGS[name]
    torch.manual_seed(0)
    G = net.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
        mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=64, channel_max=16))
    D = net.Discriminator(c_dim=0, img_resolution=8, img_channels=3, channel_base=64, channel_max=16, **d_kwargs)
    loss = StyleGAN2Loss(device=torch.device('cpu'), G_mapping=G.mapping, G_synthesis=G.synthesis, D=D, **loss_kwargs)
    collector = training_stats.Collector(regex='.*')
    collector.update() # drop what earlier tests reported
    record = []
    for step in range(2):
        loss.set_progress(step * 8, 16)
        real = torch.randn(8, 3, 8, 8)
        z = torch.randn(8, 8)
        c = torch.zeros(8, 0)
        for phase in phases:
            module = G if phase.startswith('G') else D
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=phase, real_img=real, real_c=c, gen_z=z, gen_c=c, sync=True, gain=2.0)
            module.requires_grad_(False)
            grads = {n: _digest(p.grad) for n, p in module.named_parameters() if p.grad is not None}
            norms = {n: float(p.grad.double().norm()) for n, p in module.named_parameters() if p.grad is not None}
            with torch.no_grad():
                for p in module.parameters():
                    if p.grad is not None:
                        p.sub_(p.grad * 0.01)
                        p.grad = None
            loss.after_optimizer_step(phase)
            collector.update()
            stats = {k: [collector.num(k), collector.mean(k), collector.std(k)] for k in collector.names() if collector.num(k)}
            record.append(dict(phase=phase, grads=grads, norms=norms, stats=stats))
    state = {k: _digest(torch.as_tensor(v)) for k, v in loss.state_dict().items()}
    params = {n: _digest(p) for n, p in list(G.named_parameters()) + list(D.named_parameters())}
    return dict(steps=record, state=state, params=params, platform=platform())

def _recorded(name):
    threads = torch.get_num_threads()
    torch.set_num_threads(1) # one thread: reductions in a fixed order
    try:
        return json.loads(json.dumps(_run(name))) # floats as the file stores them
    finally:
        torch.set_num_threads(threads)

@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_gradients_stats_and_state_as_recorded(name):
    with open(GOLDEN) as f:
        expected = json.load(f)[name]
    got = _recorded(name)
    assert [g['phase'] for g in got['steps']] == [e['phase'] for e in expected['steps']]
    bits = expected['platform'] == platform()
    for i, (g, e) in enumerate(zip(got['steps'], expected['steps'])):
        where = f'step {i // len(CONFIGS[name][2])} {g["phase"]}'
        assert sorted(g['stats']) == sorted(e['stats']), where
        for key, values in e['stats'].items():
            assert g['stats'][key] == (values if bits else pytest.approx(values, rel=1e-5, abs=1e-7)), f'{where}: {key}'
        assert g['norms'] == (e['norms'] if bits else pytest.approx(e['norms'], rel=1e-5, abs=1e-7)), f'{where}: gradients'
        if bits:
            assert g['grads'] == e['grads'], f'{where}: gradients differ in the last bits'
    if bits:
        assert got['state'] == expected['state'] and got['params'] == expected['params']
    else:
        assert sorted(got['state']) == sorted(expected['state'])

if __name__ == '__main__':
    if sys.argv[1:] != ['--record']:
        sys.exit('usage: python -m tests.stylegan_som.loss.test_golden --record')
    with open(GOLDEN, 'w') as f:
        json.dump({name: _recorded(name) for name in sorted(CONFIGS)}, f, indent=1, sort_keys=True)
        f.write('\n')
