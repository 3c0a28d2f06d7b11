"""Generate images from a network pickle (StyleGAN2-ADA, SOMGAN or this project's snapshots).

Same interface and same images as StyleGAN2-ADA's generate.py: z = RandomState(seed).randn(1, z_dim),
G_ema(z, one-hot label, truncation_psi, noise_mode) mapped from [-1, 1] to uint8 and written as
`seed{seed:04d}.png`; or, with --projected-w, G_ema.synthesis(w) for each w as `proj{idx:02d}.png`.

Examples:

    python generate.py --outdir=out --seeds=0-35 --class=1 --network=cifar10.pkl
    python generate.py --outdir=out --trunc=0.7 --seeds=0,5,7-9 --network=https://example.org/network.pkl
    python generate.py --outdir=out --projected-w=projected_w.npz --network=network.pkl

A generator of 2-D points (--cfg=toy) writes the points of all seeds as points.npy and a scatter plot of them over
the dataset's mode centres as points.png instead of one image per seed.
"""

import math
import os
import re
from typing import List, Optional

import click
import numpy as np
import PIL.Image
import torch

import dnnlib
from stylegan_som import legacy
from stylegan_som.config.rundir import outdir_problem

#----------------------------------------------------------------------------

def num_range(s: str) -> List[int]:
    """Parse '1-100', '0,5,7-9' or '3' into a list of ints (ranges inclusive). Raises ValueError."""
    vals = []
    for part in str(s).split(','):
        part = part.strip()
        m = re.fullmatch(r'(\d+)\s*-\s*(\d+)', part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise ValueError(f'range {part!r} ends before it starts')
            vals.extend(range(lo, hi + 1))
        elif re.fullmatch(r'\d+', part):
            vals.append(int(part))
        else:
            raise ValueError(f'{part!r} is not a number or a range a-b' if part else 'empty entry')
    return vals


class SeedList(click.ParamType):
    """Click type for --seeds; seeds must fit numpy's RandomState (0 <= seed < 2**32)."""
    name = 'LIST'

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        try:
            seeds = num_range(value)
        except ValueError as e:
            msg = str(e) if repr(str(value).strip()) in str(e) else f'{value!r}: {e}'
            self.fail(f'{msg} (expected e.g. 0-9 or 0,5,7-9)', param, ctx)
        bad = [s for s in seeds if s >= 2**32]
        if bad:
            self.fail(f'{value!r}: seed {bad[0]} is out of range (seeds must be 0 .. {2**32 - 1})', param, ctx)
        return seeds

#----------------------------------------------------------------------------

class NonFiniteImage(ValueError):
    """The generator drew NaN or infinite values; they would turn into black (or arbitrary) pixels."""


def _check_finite(img: torch.Tensor, what: str) -> torch.Tensor:
    if not bool(torch.isfinite(img).all()):
        raise NonFiniteImage(f'the generator\'s output for {what} is not finite (NaN or inf): the network is broken '
            '(e.g. a diverged training run); no image written for it')
    return img


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """NCHW images in [-1, 1] -> NHWC uint8, with upstream's rounding (x * 127.5 + 128, clamped, truncated)."""
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()


def save_image(arr: np.ndarray, path: str) -> None:
    if arr.shape[-1] == 1:
        PIL.Image.fromarray(arr[:, :, 0], 'L').save(path)
    else:
        PIL.Image.fromarray(arr, 'RGB').save(path)


def resolve_device(device: str) -> torch.device:
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise click.BadParameter(f'{device!r} is not a device ({e})', param_hint="'--device'")
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise click.BadParameter(f'{device!r}: CUDA is not available on this machine (use --device=cpu or auto)', param_hint="'--device'")
    return dev


def load_generator(network_pkl: str, device: torch.device, trust: Optional[bool] = None) -> torch.nn.Module:
    """G_ema of a network pickle (path or URL); failures become one ClickException naming --network. `trust`: see
    legacy.load_network_pkl."""
    return load_network(network_pkl, device, trust)[0]


def load_network(network_pkl: str, device: torch.device, trust: Optional[bool] = None):
    """(G_ema, the training_set_kwargs recorded in the pickle or None), as load_generator."""
    try:
        with dnnlib.util.open_url(network_pkl) as f:
            data = legacy.load_network_pkl(f, trust=trust)
            G = data['G_ema']
    except (OSError, ValueError) as e: # NetworkPickleError is an OSError; open_url raises OSError/ValueError
        raise click.ClickException(f'--network={network_pkl}: {e}')
    bad = [name for name, t in list(G.named_parameters()) + list(G.named_buffers()) if t.is_floating_point() and not bool(t.isfinite().all())]
    if bad: # a diverged run's weights: every image would come out black
        raise click.ClickException(f'--network={network_pkl}: G_ema holds non-finite weights ({", ".join(bad[:3])}'
            f'{", ..." if len(bad) > 3 else ""}); it cannot draw images')
    return G.to(device).eval().requires_grad_(False), data.get('training_set_kwargs')

#----------------------------------------------------------------------------

def generate_from_seeds(G, seeds, truncation_psi=1, class_idx=None, noise_mode='const', device=None):
    """Yield (seed, uint8 HWC image) exactly as generate.py draws them; usable from other scripts and tests."""
    from stylegan_som import pictures # pylint: disable=import-outside-toplevel
    device = torch.device('cpu') if device is None else device
    c_dim = legacy.label_dim(G)
    label = torch.zeros([1, c_dim], device=device)
    if c_dim != 0:
        label[:, class_idx] = 1
    for seed in seeds:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).to(device)
        with torch.no_grad():
            img = legacy.run_generator(G, z, label, truncation_psi=truncation_psi, noise_mode=noise_mode)
        yield seed, to_uint8(pictures.for_display(G, _check_finite(img, f'seed {seed}')))[0] # pairs: A | B


def is_point_generator(G) -> bool:
    """Whether G draws 2-D points ([N, 2, 1, 1], the toys' MLPs) rather than images."""
    return getattr(G, 'img_resolution', None) == 1 and getattr(G, 'img_channels', None) == 2


def generate_points(G, seeds, truncation_psi=1, class_idx=None, noise_mode='const', device=None) -> np.ndarray:
    """float32 [len(seeds), 2]: the point of each seed, drawn from the same z as generate_from_seeds."""
    device = torch.device('cpu') if device is None else device
    c_dim = legacy.label_dim(G)
    label = torch.zeros([1, c_dim], device=device)
    if c_dim != 0:
        label[:, class_idx] = 1
    points = []
    for seed in seeds:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).to(device)
        with torch.no_grad():
            p = legacy.run_generator(G, z, label, truncation_psi=truncation_psi, noise_mode=noise_mode)
        points.append(_check_finite(p, f'seed {seed}').reshape(2).float().cpu().numpy())
    return np.stack(points)


def save_points(points: np.ndarray, outdir: str, training_set_kwargs=None) -> str:
    """Write points.npy and points.png (a scatter plot over the mode centres of the toy the network was trained on,
    where the pickle names one); returns what the plot shows."""
    from stylegan_som import pictures # pylint: disable=import-outside-toplevel
    from stylegan_som.data.points import TOYS # pylint: disable=import-outside-toplevel
    name = str((training_set_kwargs or {}).get('path', ''))
    toy = TOYS.get(name)
    np.save(os.path.join(outdir, 'points.npy'), points)
    kwargs = dict(centres=toy.means, std=toy.std) if toy is not None else dict()
    pictures.save_scatter(points, os.path.join(outdir, 'points.png'), **kwargs)
    return f'over the {name} mode centres' if toy is not None else '(no known mode centres)'


def generate_from_ws(G, ws, noise_mode='const'):
    """Yield uint8 HWC images of G.synthesis(w) for each w in ws [N, num_ws, w_dim]."""
    for idx, w in enumerate(ws):
        with torch.no_grad():
            img = G.synthesis(w.unsqueeze(0), noise_mode=noise_mode)
        yield to_uint8(_check_finite(img, f'projected w {idx}'))[0]


def load_projected_w(path: str, G, device) -> torch.Tensor:
    try:
        with np.load(path) as npz:
            if 'w' not in npz.files:
                raise click.BadParameter(f'{path} has no array "w" (found: {", ".join(npz.files) or "none"})', param_hint="'--projected-w'")
            ws = npz['w']
    except click.BadParameter:
        raise
    except (OSError, ValueError) as e: # np.load: missing file, or not an .npz
        raise click.BadParameter(f'cannot read {path}: {e}', param_hint="'--projected-w'")
    want = (G.num_ws, G.w_dim)
    if ws.ndim != 3 or tuple(ws.shape[1:]) != want:
        raise click.BadParameter(f'{path}: "w" has shape {list(ws.shape)}, the network needs [N, {want[0]}, {want[1]}]', param_hint="'--projected-w'")
    if not np.isfinite(ws).all():
        raise click.BadParameter(f'{path}: "w" holds NaN or infinite values', param_hint="'--projected-w'")
    return torch.tensor(ws, dtype=torch.float32, device=device)

#----------------------------------------------------------------------------

@click.command()
@click.pass_context
@click.option('--network', 'network_pkl', help='Network pickle or .safetensors weights file (stylegan_som.export), filename or URL', required=True)
@click.option('--seeds', type=SeedList(), help='List of random seeds, e.g. 0-9 or 0,5,7-9')
@click.option('--trunc', 'truncation_psi', type=float, help='Truncation psi', default=1, show_default=True)
@click.option('--class', 'class_idx', type=int, help='Class label (unconditional if not specified)')
@click.option('--noise-mode', help='Noise mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--projected-w', help='Projection result file (.npz with w)', type=str, metavar='FILE')
@click.option('--outdir', help='Where to save the output images', type=str, required=True, metavar='DIR')
@click.option('--device', help='Device: auto (cuda if available, else cpu), cpu, cuda, cuda:N', type=str, default='auto', show_default=True)
@click.option('--trust-pickle', help='Load network pickles even where they would run code this installation does not know (only for files you trust) [env: SGSOM_TRUST_PICKLES=1]', is_flag=True)
def generate_images(
    ctx: click.Context,
    network_pkl: str,
    seeds: Optional[List[int]],
    truncation_psi: float,
    noise_mode: str,
    outdir: str,
    class_idx: Optional[int],
    projected_w: Optional[str],
    device: str,
    trust_pickle: bool,
):
    """Generate images using a pretrained network pickle.

    \b
    Examples:
    python generate.py --outdir=out --trunc=1 --seeds=85,265,297,849 --network=network.pkl
    python generate.py --outdir=out --seeds=0-35 --class=1 --network=cifar10.pkl
    python generate.py --outdir=out --projected-w=projected_w.npz --network=network.pkl
    """
    # Check the cheap arguments before loading anything.
    dev = resolve_device(device)
    if not math.isfinite(truncation_psi):
        raise click.BadParameter(f'{truncation_psi} is not a finite number', param_hint="'--trunc'")
    if projected_w is None and seeds is None:
        ctx.fail('--seeds option is required when not using --projected-w')
    problem = outdir_problem(outdir)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="'--outdir'")

    print(f'Loading networks from "{network_pkl}"...')
    G, training_set_kwargs = load_network(network_pkl, dev, trust=(trust_pickle or None))

    if projected_w is not None:
        if seeds is not None:
            click.echo('warn: --seeds is ignored when using --projected-w', err=True)
        print(f'Generating images from projected W "{projected_w}"')
        ws = load_projected_w(projected_w, G, dev)
        try:
            for idx, img in enumerate(generate_from_ws(G, ws, noise_mode=noise_mode)):
                os.makedirs(outdir, exist_ok=True) # only once every input has been checked and an image drawn
                save_image(img, os.path.join(outdir, f'proj{idx:02d}.png'))
        except NonFiniteImage as e:
            raise click.ClickException(f'--network={network_pkl}: {e}')
        return

    c_dim = legacy.label_dim(G)
    if c_dim != 0:
        if class_idx is None:
            ctx.fail(f'the network is conditional ({c_dim} classes): specify a class label with --class (0..{c_dim - 1})')
        if not 0 <= class_idx < c_dim:
            raise click.BadParameter(f'{class_idx} is out of range: the network has {c_dim} classes (0..{c_dim - 1})', param_hint="'--class'")
    elif class_idx is not None:
        click.echo('warn: --class is ignored when running an unconditional network', err=True)
        class_idx = None
    if is_point_generator(G):
        _generate_points(G, seeds, truncation_psi, class_idx, noise_mode, dev, outdir, network_pkl, training_set_kwargs)
        return
    try:
        for i, (seed, img) in enumerate(generate_from_seeds(G, seeds, truncation_psi, class_idx, noise_mode, dev)):
            print(f'Generating image for seed {seed} ({i}/{len(seeds)}) ...')
            os.makedirs(outdir, exist_ok=True) # only once every input has been checked and an image drawn
            save_image(img, os.path.join(outdir, f'seed{seed:04d}.png'))
    except NonFiniteImage as e:
        raise click.ClickException(f'--network={network_pkl}: {e}')

def _generate_points(G, seeds, truncation_psi, class_idx, noise_mode, dev, outdir, network_pkl, training_set_kwargs):
    print(f'Generating {len(seeds)} points (a 2-D generator: one .npy and a scatter plot, no images) ...')
    try:
        points = generate_points(G, seeds, truncation_psi, class_idx, noise_mode, dev)
    except NonFiniteImage as e:
        raise click.ClickException(f'--network={network_pkl}: {e}')
    os.makedirs(outdir, exist_ok=True)
    shows = save_points(points, outdir, training_set_kwargs)
    print(f'Wrote {os.path.join(outdir, "points.npy")} and a scatter plot {shows}, {os.path.join(outdir, "points.png")}')

#----------------------------------------------------------------------------

if __name__ == "__main__":
    generate_images() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
