"""Histogram of a discriminator's parameters, one panel per network pickle, as a PNG (the GANs-Implementations
figure: WGAN's weight clipping piles the critic's weights onto the two bounds +-c, WGAN-GP's penalty leaves
them spread).

    python bench/weight_hist.py --network=wgan=RUN/network-snapshot-000200.pkl \
        --network=wgan-gp=OTHER/network-snapshot-000200.pkl --out=bench/figures/weight-hist.png

--network is LABEL=PKL or PKL (labelled by its run directory), and may be repeated. Every parameter of D counts
(weights and biases, which WGAN clips alike; the stored values, which are what a clamp acts on). Prints per
network the parameter count, the largest |w| and the share of parameters within 1% of it (at the clip bound
for a clipped critic)."""

import argparse
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import figures_lib # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def fail(message):
    print(f'weight_hist.py: error: {message}', file=sys.stderr)
    raise SystemExit(2)

def d_parameters(pkl):
    """All of D's parameters in the pickle, flattened into one float64 array."""
    from stylegan_som import legacy
    try:
        with open(pkl, 'rb') as f:
            data = legacy.load_network_pkl(f)
    except (OSError, legacy.NetworkPickleError) as err:
        fail(f'--network: {pkl}: {err}')
    if data.get('D') is None:
        fail(f'--network: {pkl} holds no discriminator')
    values = [p.detach().double().cpu().numpy().ravel() for p in data['D'].parameters()]
    return np.concatenate(values)

def stats(values):
    bound = float(np.abs(values).max())
    return dict(count=int(values.size), max_abs=bound, at_bound=float((np.abs(values) >= 0.99 * bound).mean()),
        std=float(values.std()))

def parse_network(text):
    label, sep, path = text.partition('=')
    if not sep:
        path = text
        label = os.path.basename(os.path.dirname(os.path.abspath(path))) or path
    return label, path

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--network', action='append', required=True, help='LABEL=PKL or PKL; repeat for panels')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--bins', type=int, default=101)
    parser.add_argument('--linear', action='store_true', help='linear counts instead of log10(count + 1)')
    args = parser.parse_args(argv)
    if args.bins < 2:
        fail(f'--bins must be at least 2, got {args.bins}')
    panels = []
    for text in args.network:
        label, path = parse_network(text)
        if not os.path.isfile(path):
            fail(f'--network: no such file: {path}')
        values = d_parameters(path)
        s = stats(values)
        print(f'{label}: {s["count"]} parameters, max |w| {s["max_abs"]:.4g}, {100 * s["at_bound"]:.1f}% within 1% '
            f'of it, std {s["std"]:.4g}')
        panels.append(figures_lib.histogram(values, f'{label}: D parameters, {100 * s["at_bound"]:.1f}% at |w| = '
            f'{s["max_abs"]:.3g}', bins=args.bins, log=not args.linear))
    out = figures_lib.PIL.Image.new('RGB', (sum(p.width for p in panels), max(p.height for p in panels)), 'white')
    x = 0
    for panel in panels:
        out.paste(panel, (x, 0))
        x += panel.width
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    out.save(args.out)

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
