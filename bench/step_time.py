"""Throughput of one full StyleGAN2 training step on CPU (CIFAR-10 config).

One step = the phases upstream StyleGAN2-ADA runs for `--cfg=cifar` with the
regularisation done every step: Gmain (non-saturating logistic loss), Dmain
(fake + real logistic loss) and Dreg (R1, gamma 0.01), each followed by an Adam
step; style mixing and path-length regularisation are off, as in that config.
Only the phase's own network requires grad, as in upstream's training loop.

    python bench/step_time.py                       # ours only
    python bench/step_time.py --upstream=/path/to/stylegan2-ada-pytorch

With --upstream, both implementations run in their own subprocess (their
packages share the names dnnlib/torch_utils), load the same weights (copied by
state_dict name) and the same inputs, and are timed step by step in turn so
that machine noise hits both alike. Before timing, one step without optimiser
updates checks that losses and all parameter gradients agree.
"""

import argparse
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
# Network config: upstream train.py --cfg=cifar (fmaps=1, map=2, mbstd=32,
# conv_clamp=256, D architecture 'orig'); fp16 is left off since this is CPU.

def cifar_kwargs(res, fp16_res):
    common = dict(channel_base=32768, channel_max=512, num_fp16_res=fp16_res, conv_clamp=256)
    G_kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
        mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(common))
    D_kwargs = dict(c_dim=0, img_resolution=res, img_channels=3, architecture='orig',
        block_kwargs={}, mapping_kwargs={}, epilogue_kwargs=dict(mbstd_group_size=32), **common)
    return G_kwargs, D_kwargs

#----------------------------------------------------------------------------
# The training step. Identical code for both implementations: it only touches
# G.mapping, G.synthesis, D and torch_utils.ops.conv2d_gradfix.

def _phase(module, opt, fn, update):
    module.requires_grad_(True)
    loss = fn()
    module.requires_grad_(False)
    loss = loss.detach()
    if update:
        for p in module.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return loss

def train_step(G, D, opt_G, opt_D, z, c, real, r1_gamma, no_weight_gradients, update=True, seed=None):
    """Run Gmain, Dmain, Dreg. Returns the losses as floats."""
    softplus = torch.nn.functional.softplus
    losses = {}

    def Gmain():
        img = G.synthesis(G.mapping(z, c))
        loss = softplus(-D(img, c)).mean()
        loss.backward()
        return loss

    def Dmain():
        img = G.synthesis(G.mapping(z, c))          # G does not require grad here
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
        penalty = grad.square().sum([1, 2, 3])
        loss = (logits * 0 + penalty * (r1_gamma / 2)).mean()
        loss.backward()
        return loss

    for name, module, opt, fn in [('Gmain', G, opt_G, Gmain), ('Dmain', D, opt_D, Dmain), ('Dreg', D, opt_D, Dreg)]:
        if seed is not None:
            torch.manual_seed(seed) # same noise inputs in both implementations
        losses[name] = _phase(module, opt, fn, update).item()
        if not update:
            for pname, p in module.named_parameters():
                if p.grad is not None:
                    losses.setdefault('_grads', {})[f'{name}/{pname}'] = p.grad.detach().clone()
                    p.grad = None
    return losses

#----------------------------------------------------------------------------
# Worker: one implementation in its own process, driven by JSON lines.

def _reply(obj):
    sys.stdout.write('@@' + json.dumps(obj) + '\n')
    sys.stdout.flush()

def worker(args):
    torch.set_num_threads(args.threads)
    if args.worker == 'upstream':
        sys.path.insert(0, args.upstream)
        from training import networks as net           # pylint: disable=import-error
    else:
        sys.path.insert(0, REPO)
        from stylegan_som.networks import stylegan2 as net
    from torch_utils.ops import conv2d_gradfix      # the implementation's own copy

    G_kwargs, D_kwargs = cifar_kwargs(args.res, args.fp16_res)
    torch.manual_seed(args.seed)
    G = net.Generator(**G_kwargs).train().requires_grad_(False)
    D = net.Discriminator(**D_kwargs).train().requires_grad_(False)
    if os.path.isfile(args.state):
        state = torch.load(args.state)
        for module, key in [(G, 'G'), (D, 'D')]:
            src = state[key]
            dst = dict(module.named_parameters(), **dict(module.named_buffers()))
            if set(src) != set(dst):
                raise SystemExit(f'{args.worker}: state_dict names differ: {sorted(set(src) ^ set(dst))[:10]}')
            for name, tensor in dst.items():
                tensor.copy_(src[name])
        z, real = state['z'], state['real']
    else:
        gen = torch.Generator().manual_seed(args.seed)
        z = torch.randn([args.batch, G.z_dim], generator=gen)
        real = torch.rand([args.batch, 3, args.res, args.res], generator=gen) * 2 - 1
        torch.save(dict(G=G.state_dict(), D=D.state_dict(), z=z, real=real), args.state)
    c = torch.zeros([args.batch, 0])
    opt_G = torch.optim.Adam(G.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
    opt_D = torch.optim.Adam(D.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
    step = lambda **kw: train_step(G, D, opt_G, opt_D, z, c, real, args.gamma, conv2d_gradfix.no_weight_gradients, **kw)
    _reply(dict(ready=True))

    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == 'check': # one step without updates; save losses + grads
            out = step(update=False, seed=args.seed)
            torch.save(out, cmd[1])
            _reply(dict(losses={k: v for k, v in out.items() if k != '_grads'}))
        elif cmd[0] == 'step':
            t0, c0 = time.perf_counter(), time.process_time()
            step(seed=None)
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

def _rel_err(a, b):
    """max|a - b| / max|b|: error relative to the tensor's scale (elementwise
    relative error is meaningless for entries near zero)."""
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / scale if scale > 0 else (a - b).abs().max().item()

def compare(ours, ref):
    loss_err = max(abs(ours[k] - ref[k]) / max(abs(ref[k]), 1e-30) for k in ref if k != '_grads')
    ga, gb = ours['_grads'], ref['_grads']
    if set(ga) != set(gb):
        raise SystemExit(f'gradient sets differ: {sorted(set(ga) ^ set(gb))[:10]}')
    errs = {k: _rel_err(ga[k], gb[k]) for k in gb}
    worst = max(errs, key=errs.get)
    return loss_err, errs[worst], worst

def summary(times, batch):
    med = statistics.median(times)
    return f'{batch / med:7.3f} img/s  (median {med:.2f} s/step, min {min(times):.2f}, max {max(times):.2f}, n={len(times)})'

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--upstream', metavar='DIR', help='stylegan2-ada-pytorch checkout to compare against')
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--steps', type=int, default=5, help='timed steps per implementation')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps per implementation')
    parser.add_argument('--threads', type=int, default=os.cpu_count())
    parser.add_argument('--res', type=int, default=32)
    parser.add_argument('--gamma', type=float, default=0.01, help='R1 gamma')
    parser.add_argument('--fp16-res', type=int, default=0, help='num_fp16_res (upstream cifar uses 4 on GPU)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-check', action='store_true', help='skip the loss/gradient comparison')
    parser.add_argument('--worker', choices=['ours', 'upstream'], help=argparse.SUPPRESS)
    parser.add_argument('--state', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.upstream and not os.path.isfile(os.path.join(args.upstream, 'training', 'networks.py')):
        raise SystemExit(f'--upstream={args.upstream}: no training/networks.py there')

    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, 'state.pt')
        workers = [Worker('ours', args, state)] # creates the weights + inputs
        if args.upstream:
            workers.insert(0, Worker('upstream', args, state))
        print(f'batch {args.batch}, {args.res}x{args.res}, threads {args.threads}, {args.warmup} warm-up + {args.steps} timed steps each')

        if args.upstream and not args.no_check:
            results = {}
            for w in workers:
                path = os.path.join(tmp, f'check_{w.kind}.pt')
                print(f'{w.kind:>8} losses: {w.ask("check " + path)["losses"]}')
                results[w.kind] = torch.load(path)
            loss_err, grad_err, worst = compare(results['ours'], results['upstream'])
            print(f'max rel error: losses {loss_err:.2e}, gradients {grad_err:.2e} ({worst})')

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

    # CPU time (all threads) is less sensitive than wall time to other load on the machine.
    for kind in times:
        print(f'{kind:>8}: {summary(times[kind], args.batch)}; CPU {statistics.median(cpu[kind]):.2f} s/step')
    if args.upstream:
        ratio = lambda d: statistics.median(d['upstream']) / statistics.median(d['ours'])
        print(f'speed-up: {ratio(times):.2f}x wall time, {ratio(cpu):.2f}x CPU time')

if __name__ == '__main__':
    main()
