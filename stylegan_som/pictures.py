"""Snapshot pictures beyond image grids, drawn with PIL only: scatter plots of 2-D samples over the mode centres
(runs on ring8 / grid25, see data/points.py) and heat maps of the SOM heads' BMU occupancy (the share of real
samples each head wins, reported by the loss as 'SOM/occupancy/<k>')."""

import numpy as np
import PIL.Image
import PIL.ImageDraw
import torch

#----------------------------------------------------------------------------
# Scatter plots.

SCATTER_SIZE = 512          # pixels, square
SCATTER_SAMPLES = 2500      # samples per plot, as many as the mode-coverage metrics draw
_SAMPLE_RGB = (31, 87, 180)
_REAL_RGB = (190, 190, 190)
_CENTRE_RGB = (220, 40, 40)

def scatter_extent(centres, points=None, margin=0.15):
    """Square window (lo, hi) holding the mode centres with a margin (of their span), so that plots of one run
    share axes; without centres, the points' range."""
    ref = np.asarray(centres if centres is not None else points, dtype=np.float64).reshape(-1, 2)
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    span = float(max((hi - lo).max(), 1e-6))
    mid = (lo + hi) / 2
    half = span * (0.5 + margin)
    return mid - half, mid + half

def draw_scatter(points, centres=None, reference=None, extent=None, size=SCATTER_SIZE, std=None):
    """RGB uint8 array [size, size, 3]: points [N, 2] as 2x2 dots (those outside the window are pinned to its
    edge, so a collapse far away still shows), optional reference points in grey below them, and the mode
    centres as red rings of radius 3 std (the metric's high-quality zone; 4 pixels if std is not given)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    lo, hi = extent if extent is not None else scatter_extent(centres, points)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    scale = (size - 1) / (hi - lo)
    to_px = lambda p: np.stack([(p[:, 0] - lo[0]) * scale[0], (hi[1] - p[:, 1]) * scale[1]], axis=1) # y up
    canvas = np.full([size, size, 3], 255, dtype=np.uint8)

    def dots(p, rgb):
        if len(p) == 0:
            return
        px = np.clip(np.nan_to_num(to_px(p), nan=0.0, posinf=size - 1, neginf=0), 0, size - 2).astype(np.int64)
        for dy in (0, 1):
            for dx in (0, 1):
                canvas[px[:, 1] + dy, px[:, 0] + dx] = rgb
    if reference is not None:
        dots(np.asarray(reference, dtype=np.float64).reshape(-1, 2), _REAL_RGB)
    dots(points, _SAMPLE_RGB)

    img = PIL.Image.fromarray(canvas, 'RGB')
    if centres is not None:
        draw = PIL.ImageDraw.Draw(img)
        radius = max(3 * std * scale.min(), 3.0) if std is not None else 4.0
        for cx, cy in to_px(np.asarray(centres, dtype=np.float64).reshape(-1, 2)):
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], outline=_CENTRE_RGB)
    return np.asarray(img)

def save_scatter(points, fname, **kwargs):
    PIL.Image.fromarray(draw_scatter(points, **kwargs), 'RGB').save(fname)

#----------------------------------------------------------------------------
# Point-data snapshots of the training loop.

def point_snapshot_latents(training_set, z_dim, random_seed, batch_gpu, device, num=SCATTER_SAMPLES):
    """(grid_z, grid_c): fixed latents (own generator, so a resumed run draws the same) and labels of random
    dataset items, split into batch_gpu chunks like the image grid's."""
    gen = torch.Generator().manual_seed(random_seed)
    grid_z = torch.randn([num, z_dim], generator=gen)
    idx = np.random.RandomState(random_seed).randint(len(training_set), size=num)
    grid_c = torch.from_numpy(np.stack([training_set.get_label(int(i)) for i in idx]))
    return grid_z.to(device).split(batch_gpu), grid_c.to(device).split(batch_gpu)

def _plot_kwargs(training_set):
    centres = getattr(training_set, 'means', None)
    return dict(centres=centres, std=getattr(training_set, 'std', None), extent=scatter_extent(centres))

def save_point_reals(training_set, fname, num=SCATTER_SAMPLES, random_seed=0):
    idx = np.random.RandomState(random_seed).randint(len(training_set), size=num)
    points = np.stack([training_set[int(i)][0].reshape(2) for i in idx])
    save_scatter(points, fname, **_plot_kwargs(training_set))

@torch.no_grad()
def save_point_fakes(G, grid_z, grid_c, training_set, fname):
    points = torch.cat([G(z=z, c=c, noise_mode='const').reshape(z.shape[0], -1).cpu() for z, c in zip(grid_z, grid_c)])
    save_scatter(points.numpy(), fname, **_plot_kwargs(training_set))

#----------------------------------------------------------------------------
# BMU occupancy.

OCCUPANCY_PREFIX = 'SOM/occupancy/'

def occupancy_from_stats(stats):
    """Occupancy shares [K] from a training_stats dict (name -> value with .mean, or plain numbers), or None."""
    found = {}
    for name, value in stats.items():
        if name.startswith(OCCUPANCY_PREFIX) and name[len(OCCUPANCY_PREFIX):].isdigit():
            found[int(name[len(OCCUPANCY_PREFIX):])] = float(getattr(value, 'mean', value))
    if not found:
        return None
    occ = np.full([max(found) + 1], np.nan)
    for k, v in found.items():
        occ[k] = v
    return occ

def occupancy_layout(num_heads, topology='grid'):
    """(rows, cols) of the heads as drawn: the lattice for a square grid topology, else one row."""
    side = int(round(np.sqrt(num_heads)))
    if topology == 'grid' and side * side == num_heads:
        return side, side
    return 1, num_heads

def draw_occupancy(occupancy, topology='grid', cell=48):
    """RGB uint8 heat map: one cell per head (row-major head order), white = wins nothing, dark red = the
    largest share (at least twice the uniform share 1/K, so a balanced map stays light); the share in percent
    is written in each cell. NaN (not reported) cells are grey."""
    occ = np.asarray(occupancy, dtype=np.float64).reshape(-1)
    rows, cols = occupancy_layout(len(occ), topology)
    top = max(np.nanmax(occ) if np.isfinite(occ).any() else 0.0, 2.0 / len(occ))
    img = PIL.Image.new('RGB', (cols * cell, rows * cell), (255, 255, 255))
    draw = PIL.ImageDraw.Draw(img)
    for k, v in enumerate(occ):
        r, c = divmod(k, cols)
        box = [c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1]
        if not np.isfinite(v):
            draw.rectangle(box, fill=(160, 160, 160))
            continue
        t = float(np.clip(v / top, 0, 1))
        fill = tuple(int(round(255 + (end - 255) * t)) for end in (150, 0, 0))
        draw.rectangle(box, fill=fill, outline=(200, 200, 200))
        draw.text((box[0] + 4, box[1] + cell // 2 - 6), f'{100 * v:.0f}%', fill=(0, 0, 0) if t < 0.6 else (255, 255, 255))
    return np.asarray(img)

def occupancy_image(occupancy, topology='grid'):
    return PIL.Image.fromarray(draw_occupancy(occupancy, topology), 'RGB')

def save_occupancy(occupancy, fname, topology='grid'):
    occupancy_image(occupancy, topology).save(fname)

def save_occupancy_from_stats(stats, fname, topology='grid'):
    """Heat map of the occupancy in a stats dict; nothing (False) for a run without SOM heads."""
    occ = occupancy_from_stats(stats)
    if occ is None or len(occ) < 2:
        return False
    save_occupancy(occ, fname, topology)
    return True

#----------------------------------------------------------------------------

#----------------------------------------------------------------------------
# Images as shown: a generator may say how its images are drawn (coupled pairs side by side).

def for_display(G, images):
    """`images` ([N, C, H, W], torch or numpy) as G's `to_display(img)` hook draws them, where G has one (e.g. the
    coupled generators' pairs A | B); else unchanged."""
    hook = getattr(G, 'to_display', None)
    if not callable(hook):
        return images
    if isinstance(images, np.ndarray):
        return hook(torch.from_numpy(images)).numpy()
    return hook(images)
