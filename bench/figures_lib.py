"""Small PIL-only charts for the bench scripts (no plotting library is required): labelled image sheets, line
charts and histograms, each returned as a PIL image."""

import numpy as np
import PIL.Image
import PIL.ImageDraw

#----------------------------------------------------------------------------

PALETTE = [(31, 87, 180), (220, 90, 20), (40, 150, 60), (150, 40, 160), (120, 120, 120)]

def _text_size(draw, text):
    left, top, right, bottom = draw.textbbox((0, 0), text)
    return right - left, bottom - top

def sheet(cells, row_labels, col_labels, title=None, pad=6, label_width=60, header=18):
    """Grid of equally sized RGB arrays cells[row][col] with labels on the left and on top."""
    h, w = cells[0][0].shape[:2]
    top = header + (header if title else 0)
    img = PIL.Image.new('RGB', (label_width + len(col_labels) * (w + pad), top + len(row_labels) * (h + pad)), 'white')
    draw = PIL.ImageDraw.Draw(img)
    if title:
        draw.text((pad, 3), title, fill='black')
    for j, label in enumerate(col_labels):
        draw.text((label_width + j * (w + pad) + 2, top - header + 3), label, fill='black')
    for i, label in enumerate(row_labels):
        y = top + i * (h + pad)
        draw.text((4, y + h // 2 - 5), label, fill='black')
        for j, cell in enumerate(cells[i]):
            img.paste(PIL.Image.fromarray(np.asarray(cell, dtype=np.uint8), 'RGB'), (label_width + j * (w + pad), y))
    return img

def _frame(size, title, margin):
    img = PIL.Image.new('RGB', size, 'white')
    draw = PIL.ImageDraw.Draw(img)
    W, H = size
    left, top, right, bottom = margin, 24, W - 12, H - 34
    draw.rectangle([left, top, right, bottom], outline='black')
    draw.text((left, 5), title, fill='black')
    return img, draw, (left, top, right, bottom)

def line_chart(series, title, xlabel, ylabel, ylim=None, size=(520, 320), margin=52):
    """series: {label: ([x...], [y...])}, drawn as polylines with dots and a legend."""
    img, draw, (left, top, right, bottom) = _frame(size, title, margin)
    xs = np.concatenate([np.asarray(x, dtype=np.float64) for x, _ in series.values()])
    ys = np.concatenate([np.asarray(y, dtype=np.float64) for _, y in series.values()])
    x0, x1 = float(xs.min()), float(xs.max())
    finite = ys[np.isfinite(ys)]
    if ylim is None:
        ylim = (min(0.0, float(finite.min())), float(finite.max())) if len(finite) else (0.0, 1.0)
    y0, y1 = ylim
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    px = lambda x: left + (x - x0) / (x1 - x0) * (right - left)
    py = lambda y: bottom - (y - y0) / (y1 - y0) * (bottom - top)
    for frac in (0, 0.5, 1):
        yv, xv = y0 + frac * (y1 - y0), x0 + frac * (x1 - x0)
        draw.text((4, py(yv) - 5), f'{yv:.3g}', fill='black')
        draw.text((px(xv) - 10, bottom + 4), f'{xv:.4g}', fill='black')
    draw.text(((left + right) // 2 - 30, bottom + 18), xlabel, fill='black')
    draw.text((4, top - 14), ylabel, fill='black') if ylabel else None
    for k, (label, (x, y)) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        pts = [(px(a), py(b)) for a, b in zip(x, y) if np.isfinite(b)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        for a, b in pts:
            draw.ellipse([a - 3, b - 3, a + 3, b + 3], fill=colour)
        draw.text((right - 150, top + 6 + 14 * k), f'-- {label}', fill=colour)
    return img

def histogram(values, title, bins=101, size=(520, 320), margin=52, log=True):
    """Histogram of values (symmetric range around 0) as bars; counts on a log scale by default, so that the few
    weights away from a spike still show."""
    values = np.asarray(values, dtype=np.float64).ravel()
    bound = float(np.abs(values).max()) or 1.0
    counts, edges = np.histogram(values, bins=bins, range=(-bound, bound))
    img, draw, (left, top, right, bottom) = _frame(size, title, margin)
    heights = np.log10(counts + 1) if log else counts.astype(np.float64)
    hmax = float(heights.max()) or 1.0
    width = (right - left) / bins
    for k, h in enumerate(heights):
        if h > 0:
            x = left + k * width
            draw.rectangle([x, bottom - h / hmax * (bottom - top), x + max(width - 1, 1), bottom], fill=PALETTE[0])
    for frac in (0, 0.5, 1):
        xv = -bound + frac * 2 * bound
        draw.text((left + frac * (right - left) - 14, bottom + 4), f'{xv:.3g}', fill='black')
    draw.text((4, top), f'{int(counts.max())}', fill='black')
    draw.text((4, bottom - 10), '0', fill='black')
    draw.text(((left + right) // 2 - 60, bottom + 18), 'weight value' + (' (log counts)' if log else ''), fill='black')
    return img

#----------------------------------------------------------------------------
