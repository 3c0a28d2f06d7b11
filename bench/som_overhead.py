"""Cost of SOM discriminator heads: training-step time with K heads on one shared D trunk (K = 1, 4, 9, 25 by
default) and with K complete discriminators (--som-share=none, K = 4), at the CIFAR-10 config.

One step = Gmain, Dmain and Dreg (R1, gamma 0.01) through stylegan_som.loss.StyleGAN2Loss, each followed by an
Adam step, as bench/step_time.py times it: regularisation every step, no style mixing or path length (the cifar
config has neither), no augmentation. Every setup starts from the same G and trunk weights and sees the same
inputs; the setups take their timed steps in turn (round robin), so that other load on the machine hits them
alike. Warm-up steps are not timed. The target: 4 shared heads cost at most 5% more than 1 head.

    python bench/som_overhead.py                                      # the cifar config, batch 32 (slow on CPU)
    python bench/som_overhead.py --batch=8 --cbase=2048 --cmax=64 --steps=5   # a quick reduced run
"""

import argparse
import copy
import os
import statistics
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from stylegan_som.loss import StyleGAN2Loss  # pylint: disable=wrong-import-position
from stylegan_som.networks import stylegan2  # pylint: disable=wrong-import-position
from stylegan_som.networks.separate import SeparateDiscriminators  # pylint: disable=wrong-import-position
from torch_utils.ops import conv2d_gradfix  # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def _network_kwargs(args):
    common = dict(channel_base=args.cbase, channel_max=args.cmax, num_fp16_res=args.fp16_res, conv_clamp=256)
    G_kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=args.res, img_channels=3,
        mapping_kwargs=dict(num_layers=args.map), synthesis_kwargs=dict(common))
    D_kwargs = dict(c_dim=0, img_resolution=args.res, img_channels=3, architecture='orig', block_kwargs={},
        mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=min(args.mbstd, args.batch)), **common)
    return G_kwargs, D_kwargs

def _som_kwargs(num_heads):
    if num_heads == 1:
        return {}
    side = int(round(num_heads ** 0.5))
    return dict(num_heads=num_heads, topology='grid' if side * side == num_heads else 'linear')

class Setup:
    """G, D, optimizers and loss of one configuration."""

    def __init__(self, label, G, D, device, gamma, lr=0.0025):
        self.label = label
        self.G = G.to(device).train().requires_grad_(False)
        self.D = D.to(device).train().requires_grad_(False)
        num_heads = getattr(self.D, 'num_heads', 1)
        self.loss = StyleGAN2Loss(device=device, G_mapping=self.G.mapping, G_synthesis=self.G.synthesis, D=self.D,
            r1_gamma=gamma, style_mixing_prob=0, pl_weight=0, som_kwargs=_som_kwargs(num_heads))
        self.loss.set_progress(cur_nimg=0, total_nimg=1000)
        self.opt = dict(G=torch.optim.Adam(self.G.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8),
            D=torch.optim.Adam(self.D.parameters(), lr=lr, betas=(0.0, 0.99), eps=1e-8))
        self.times = []     # wall seconds per step
        self.cpu_times = [] # CPU seconds of this process per step: steadier on a shared machine

    def step(self, real, z, c):
        for phase, module, opt in [('Gmain', self.G, self.opt['G']), ('Dmain', self.D, self.opt['D']),
                ('Dreg', self.D, self.opt['D'])]:
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(phase=phase, real_img=real, real_c=c, gen_z=z, gen_c=c, sync=True, gain=1)
            module.requires_grad_(False)
            opt.step()

def build_setups(args, device):
    G_kwargs, D_kwargs = _network_kwargs(args)
    torch.manual_seed(args.seed)
    G = stylegan2.Generator(**G_kwargs)
    torch.manual_seed(args.seed + 1)
    D_single = stylegan2.Discriminator(**D_kwargs)
    setups = []
    for num_heads in args.heads:
        if num_heads == 1:
            D = copy.deepcopy(D_single)
        else:
            torch.manual_seed(args.seed + 1)
            D = stylegan2.Discriminator(**D_kwargs, num_heads=num_heads)
            # Same trunk as the single head: copy every tensor whose name and shape agree.
            state = D_single.state_dict()
            with torch.no_grad():
                for name, tensor in D.state_dict().items():
                    if name in state and state[name].shape == tensor.shape:
                        tensor.copy_(state[name])
        setups.append(Setup(f'{num_heads} shared head{"s" if num_heads > 1 else ""}', copy.deepcopy(G), D, device, args.gamma))
    for num_heads in args.separate:
        torch.manual_seed(args.seed + 2)
        D = SeparateDiscriminators(num_heads=num_heads, discriminator_kwargs=dict(
            class_name='stylegan_som.networks.stylegan2.Discriminator',
            **{k: v for k, v in D_kwargs.items() if k not in ('c_dim', 'img_resolution', 'img_channels')}),
            c_dim=0, img_resolution=args.res, img_channels=3)
        setups.append(Setup(f'{num_heads} separate Ds', copy.deepcopy(G), D, device, args.gamma))
    return setups

#----------------------------------------------------------------------------

def _int_list(text):
    return [int(x) for x in text.split(',') if x.strip()] if text else []

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--batch', type=int, default=32, help='images per step (default: 32)')
    parser.add_argument('--steps', type=int, default=5, help='timed steps per setup (default: 5)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps per setup (default: 1)')
    parser.add_argument('--cbase', type=int, default=16384, help='channel_base (default: 16384)')
    parser.add_argument('--cmax', type=int, default=512, help='channel_max (default: 512)')
    parser.add_argument('--map', type=int, default=2, help='mapping layers (default: 2)')
    parser.add_argument('--mbstd', type=int, default=32, help='minibatch-stddev group, capped at --batch (default: 32)')
    parser.add_argument('--res', type=int, default=32, help='image resolution (default: 32)')
    parser.add_argument('--gamma', type=float, default=0.01, help='R1 gamma (default: 0.01)')
    parser.add_argument('--fp16-res', type=int, default=0, help='num_fp16_res (default: 0)')
    parser.add_argument('--heads', type=_int_list, default=[1, 4, 9, 25], help='shared-trunk head counts (default: 1,4,9,25)')
    parser.add_argument('--separate', type=_int_list, default=[4], help='counts of separate Ds (default: 4; "" for none)')
    parser.add_argument('--threads', type=int, default=os.cpu_count(), help='torch CPU threads (default: all cores)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if 1 not in args.heads:
        parser.error('--heads must include 1, the baseline')
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        parser.error('--batch and --steps must be at least 1, --warmup at least 0')

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    conv2d_gradfix.enabled = (device.type == 'cuda')
    print(f'config: {args.res}x{args.res}, cbase {args.cbase}, cmax {args.cmax}, map {args.map}, batch {args.batch}, '
        f'device {device}{"" if device.type == "cuda" else f" ({args.threads} threads)"}; '
        f'{args.warmup} warm-up + {args.steps} timed steps per setup, round robin')
    setups = build_setups(args, device)

    gen = torch.Generator().manual_seed(args.seed)
    for step in range(args.warmup + args.steps):
        real = (torch.rand([args.batch, 3, args.res, args.res], generator=gen) * 2 - 1).to(device)
        z = torch.randn([args.batch, 512], generator=gen).to(device)
        c = torch.zeros([args.batch, 0], device=device)
        for setup in setups:
            torch.manual_seed(args.seed + step) # same noise inputs for every setup
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            t0, c0 = time.perf_counter(), time.process_time()
            setup.step(real, z, c)
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            if step >= args.warmup:
                setup.times.append(time.perf_counter() - t0)
                setup.cpu_times.append(time.process_time() - c0)
        if step >= args.warmup:
            print(f'  step {step - args.warmup + 1}/{args.steps}: ' + ', '.join(f'{s.label} {s.times[-1] * 1e3:.0f} ms' for s in setups), flush=True)

    base = statistics.median(setups[0].times)
    base_cpu = statistics.median(setups[0].cpu_times)
    print()
    print(f'{"setup":<18s} {"D params":>10s} {"wall ms/step":>13s} {"img/s":>7s} {"vs 1 head":>10s} '
        f'{"CPU ms/step":>12s} {"vs 1 head":>10s}')
    for setup in setups:
        med, med_cpu = statistics.median(setup.times), statistics.median(setup.cpu_times)
        params = sum(p.numel() for p in setup.D.parameters())
        print(f'{setup.label:<18s} {params:>10d} {med * 1e3:>13.1f} {args.batch / med:>7.2f} {(med / base - 1) * 100:>+9.1f}% '
            f'{med_cpu * 1e3:>12.1f} {(med_cpu / base_cpu - 1) * 100:>+9.1f}%')
    shared4 = [s for s in setups if s.label == '4 shared heads']
    if shared4:
        overhead = statistics.median(shared4[0].times) / base - 1
        overhead_cpu = statistics.median(shared4[0].cpu_times) / base_cpu - 1
        print(f'\n4 shared heads vs 1 head: {overhead * 100:+.1f}% wall, {overhead_cpu * 100:+.1f}% CPU time '
            '(target: at most +5%)')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()
