"""Throughput of one full StyleGAN2 training step on CPU (CIFAR-10 config).

One step = the phases upstream StyleGAN2-ADA runs for `--cfg=cifar` with the regularisation done every
step: Gmain (non-saturating logistic loss), Dmain (fake + real logistic loss) and Dreg (R1, gamma 0.01),
each followed by an Adam step. Style mixing and path-length regularisation are off, as in that config;
only the phase's own network requires grad, as in upstream's training loop.

    python bench/step_time.py                                   # ours only
    python bench/step_time.py --upstream=/path/to/stylegan2-ada-pytorch

With --upstream, each implementation runs in its own subprocess (both have packages named dnnlib and
torch_utils), they load the same weights (copied by state_dict name) and inputs, and they take timed
steps in turn, so that other load on the machine hits both alike. Warm-up steps are not timed.

Before timing, one step without optimiser updates checks losses and all parameter gradients. Gradients
of this step are sensitive: a rounding-level change of an activation near a leaky-ReLU kink changes
which slope its gradient takes. So the check also evaluates the step in float64 (upstream's code when
given, else ours) and reports how far each float32 implementation is from that.
"""

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------
# Network config of upstream `train.py --cfg=cifar`: fmaps=1 (channel_base 32768, i.e. 512 channels at
# every resolution up to 64), map=2, mbstd=32, conv_clamp=256, D architecture 'orig'. Upstream turns on
# fp16 for the 4 highest resolutions, which is pointless on CPU, so --fp16-res defaults to 0.

def cifar_kwargs(res, fp16_res):
    common = dict(channel_base=32768, channel_max=512, num_fp16_res=fp16_res, conv_clamp=256)
    G_kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
        mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(common))
    D_kwargs = dict(c_dim=0, img_resolution=res, img_channels=3, architecture='orig',
        block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=32), **common)
    return G_kwargs, D_kwargs

#----------------------------------------------------------------------------
# The training step: identical code for both implementations. It only uses G.mapping, G.synthesis, D
# and the implementation's own conv2d_gradfix.

def train_step(G, D, opt_G, opt_D, z, c, real, r1_gamma, no_weight_gradients, update=True, seed=None):
    """Run Gmain, Dmain, Dreg. Returns {phase: loss}; with update=False, no optimiser steps are taken
    and the gradients are returned under '_grads' as {'phase/param': tensor}."""
    softplus = torch.nn.functional.softplus

    def Gmain():
        img = G.synthesis(G.mapping(z, c))
        loss = softplus(-D(img, c)).mean()
        loss.backward()
        return loss

    def Dmain():
        img = G.synthesis(G.mapping(z, c)) # G does not require grad here
        loss_gen = softplus(D(img, c)).mean()
        loss_gen.backward()
        loss_real = softplus(-D(real, c)).mean()
        loss_real.backward()
        return loss_gen + loss_real

    def Dreg():
        x = real.detach().requires_grad_(True)
        logits = D(x, c)
        with no_weight_gradients():
            grad, = torch.autograd.grad(outputs=[logits.sum()], inputs=[x], create_graph=True, only_inputs=True)
        loss = (logits * 0 + grad.square().sum([1, 2, 3]) * (r1_gamma / 2)).mean()
        loss.backward()
        return loss

    out = {}
    for name, module, opt, fn in [('Gmain', G, opt_G, Gmain), ('Dmain', D, opt_D, Dmain), ('Dreg', D, opt_D, Dreg)]:
        if seed is not None:
            torch.manual_seed(seed) # same noise inputs in both implementations
        module.requires_grad_(True)
        out[name] = fn().item()
        module.requires_grad_(False)
        params = [(pname, p) for pname, p in module.named_parameters() if p.grad is not None]
        if update:
            for _, p in params:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
            opt.step()
            opt.zero_grad(set_to_none=True)
        else:
            for pname, p in params:
                out.setdefault('_grads', {})[f'{name}/{pname}'] = p.grad.detach().clone()
                p.grad = None
    return out

#----------------------------------------------------------------------------
# Worker: one implementation in its own process, driven by commands on stdin.

class _Float64Torch:
    """Stands in for `torch` inside the networks' modules, which cast to torch.float32 in places:
    there, float32 reads as float64, so the same code runs in double precision."""
    def __getattr__(self, name):
        return torch.float64 if name == 'float32' else getattr(torch, name)

def _reply(obj):
    sys.stdout.write('@@' + json.dumps(obj) + '\n')
    sys.stdout.flush()

def worker(args):
    torch.set_num_threads(args.threads)
    if args.worker == 'upstream':
        sys.path.insert(0, args.upstream)
        from training import networks as net # pylint: disable=import-error
    else:
        sys.path.insert(0, REPO)
        from stylegan_som.networks import stylegan2 as net
    from torch_utils.ops import conv2d_gradfix, conv2d_resample, upfirdn2d, bias_act, fma # the implementation's own

    G_kwargs, D_kwargs = cifar_kwargs(args.res, args.fp16_res)
    torch.manual_seed(args.seed)
    G = net.Generator(**G_kwargs).train().requires_grad_(False)
    D = net.Discriminator(**D_kwargs).train().requires_grad_(False)
    if os.path.isfile(args.state):
        state = torch.load(args.state)
        for module, key in [(G, 'G'), (D, 'D')]:
            dst = dict(module.named_parameters(), **dict(module.named_buffers()))
            if set(state[key]) != set(dst):
                raise SystemExit(f'{args.worker}: state_dict names differ: {sorted(set(state[key]) ^ set(dst))[:10]}')
            with torch.no_grad():
                for name, tensor in dst.items():
                    tensor.copy_(state[key][name])
        z, real = state['z'], state['real']
    else:
        gen = torch.Generator().manual_seed(args.seed)
        z = torch.randn([args.batch, G.z_dim], generator=gen)
        real = torch.rand([args.batch, 3, args.res, args.res], generator=gen) * 2 - 1
        torch.save(dict(G=G.state_dict(), D=D.state_dict(), z=z, real=real), args.state)
    c = torch.zeros([args.batch, 0])
    opt_G = torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
    opt_D = torch.optim.Adam(D.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
    _reply(dict(ready=True))

    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == 'check': # one step without updates; losses + grads to a file
            out = train_step(G, D, None, None, z, c, real, args.gamma, conv2d_gradfix.no_weight_gradients, update=False, seed=args.seed)
            torch.save(out, cmd[1])
            _reply(dict(losses={k: v for k, v in out.items() if k != '_grads'}))
        elif cmd[0] == 'check64': # the same in float64, on copies of the networks
            patched = [net, conv2d_resample, upfirdn2d, bias_act, fma]
            saved = [(m, m.torch) for m in patched] + [(net, getattr(net, 'winograd_cpu', None))]
            try:
                for m in patched:
                    m.torch = _Float64Torch()
                if hasattr(net, 'winograd_cpu'):
                    net.winograd_cpu = False # float32-only fast path
                G64, D64 = copy.deepcopy(G).to(torch.float64), copy.deepcopy(D).to(torch.float64)
                out = train_step(G64, D64, None, None, z.double(), c.double(), real.double(), args.gamma,
                    conv2d_gradfix.no_weight_gradients, update=False, seed=args.seed)
            finally:
                for m, value in saved[:-1]:
                    m.torch = value
                if saved[-1][1] is not None:
                    net.winograd_cpu = saved[-1][1]
            torch.save(out, cmd[1])
            _reply(dict(losses={k: v for k, v in out.items() if k != '_grads'}))
        elif cmd[0] == 'step':
            t0, c0 = time.perf_counter(), time.process_time()
            train_step(G, D, opt_G, opt_D, z, c, real, args.gamma, conv2d_gradfix.no_weight_gradients)
            _reply(dict(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0))
        elif cmd[0] == 'quit':
            break

class Worker:
    def __init__(self, kind, args, state):
        cmd = [sys.executable, os.path.abspath(__file__), f'--worker={kind}', f'--state={state}',
            f'--batch={args.batch}', f'--threads={args.threads}', f'--seed={args.seed}', f'--res={args.res}',
            f'--gamma={args.gamma}', f'--fp16-res={args.fp16_res}']
        if args.upstream:
            cmd.append(f'--upstream={args.upstream}')
        self.kind = kind
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
        self.read()

    def read(self):
        for line in self.proc.stdout:
            if line.startswith('@@'):
                return json.loads(line[2:])
        raise SystemExit(f'{self.kind} worker died (exit code {self.proc.wait()})')

    def ask(self, cmd):
        self.proc.stdin.write(cmd + '\n')
        self.proc.stdin.flush()
        return self.read()

    def close(self):
        self.proc.stdin.write('quit\n')
        self.proc.stdin.close()
        self.proc.wait()

#----------------------------------------------------------------------------

def compare(a, b):
    """Errors of step results a against b: (max relative loss error, {phase: (L2 error of the phase's
    whole gradient relative to its norm, worst per-tensor max|a-b| / max|b|, that tensor's name)})."""
    loss_err = max(abs(a[k] - b[k]) / abs(b[k]) for k in b if k != '_grads')
    ga, gb = a['_grads'], b['_grads']
    if set(ga) != set(gb):
        raise SystemExit(f'gradient sets differ: {sorted(set(ga) ^ set(gb))[:10]}')
    phases = {}
    for phase in ['Gmain', 'Dmain', 'Dreg']:
        names = [k for k in gb if k.startswith(phase + '/')]
        va = torch.cat([ga[k].double().flatten() for k in names])
        vb = torch.cat([gb[k].double().flatten() for k in names])
        per = {k: ((ga[k].double() - gb[k].double()).abs().max() / gb[k].double().abs().max().clamp(min=1e-30)).item() for k in names}
        worst = max(per, key=per.get)
        phases[phase] = (((va - vb).norm() / vb.norm()).item(), per[worst], worst)
    return loss_err, phases

def print_comparison(label, a, b):
    loss_err, phases = compare(a, b)
    print(f'  {label:28s} losses {loss_err:.1e}; gradients (whole phase L2 / worst tensor):', end='')
    print(';'.join(f' {p} {l2:.1e} / {w:.1e}' for p, (l2, w, _) in phases.items()))

def summary(times, cpu, batch):
    med = statistics.median(times)
    return (f'{batch / med:7.3f} img/s  (median {med:.2f} s/step, min {min(times):.2f}, max {max(times):.2f},'
        f' n={len(times)}; CPU time {statistics.median(cpu):.2f} s/step; all: {" ".join(f"{t:.1f}" for t in times)})')

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--upstream', metavar='DIR', help='stylegan2-ada-pytorch checkout to compare against')
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--steps', type=int, default=5, help='timed steps per implementation (default: 5)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps per implementation (default: 1)')
    parser.add_argument('--threads', type=int, default=os.cpu_count(), help='torch threads per worker (default: all cores)')
    parser.add_argument('--res', type=int, default=32, help='image resolution (default: 32)')
    parser.add_argument('--gamma', type=float, default=0.01, help='R1 gamma (default: 0.01)')
    parser.add_argument('--fp16-res', type=int, default=0, help='num_fp16_res (default: 0; upstream cifar uses 4 on GPU)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-check', action='store_true', help='skip the loss/gradient comparison')
    parser.add_argument('--worker', choices=['ours', 'upstream'], help=argparse.SUPPRESS)
    parser.add_argument('--state', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.upstream and not os.path.isfile(os.path.join(args.upstream, 'training', 'networks.py')):
        raise SystemExit(f'--upstream={args.upstream}: no training/networks.py there')
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        raise SystemExit('--batch and --steps must be >= 1, --warmup >= 0')

    print(f'batch {args.batch}, {args.res}x{args.res}, {args.threads} threads, {args.warmup} warm-up + {args.steps} timed steps each')
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, 'state.pt')
        workers = [Worker('ours', args, state)] # creates the weights and inputs
        if args.upstream:
            workers.insert(0, Worker('upstream', args, state))

        if not args.no_check:
            res = {}
            for w in workers:
                path = os.path.join(tmp, f'{w.kind}.pt')
                w.ask(f'check {path}')
                res[w.kind] = torch.load(path)
            path = os.path.join(tmp, 'float64.pt')
            workers[0].ask(f'check64 {path}')
            res['float64'] = torch.load(path)
            print(f'check (one step, no updates; float64 = {workers[0].kind} code in double precision):')
            if args.upstream:
                print_comparison('ours vs upstream', res['ours'], res['upstream'])
                print_comparison('upstream vs float64', res['upstream'], res['float64'])
            print_comparison('ours vs float64', res['ours'], res['float64'])

        times = {w.kind: [] for w in workers}
        cpu = {w.kind: [] for w in workers}
        for i in range(args.warmup + args.steps):
            for w in (workers if i % 2 == 0 else workers[::-1]): # alternate who goes first
                r = w.ask('step')
                if i >= args.warmup:
                    times[w.kind].append(r['seconds'])
                    cpu[w.kind].append(r['cpu'])
        for w in workers:
            w.close()

    for kind in times:
        print(f'{kind:>8}: {summary(times[kind], cpu[kind], args.batch)}')
    if args.upstream:
        ratio = lambda d: statistics.median(d['upstream']) / statistics.median(d['ours'])
        print(f'speed-up: {ratio(times):.2f}x (wall time; CPU time {ratio(cpu):.2f}x, less sensitive to other load)')

if __name__ == '__main__':
    main()
