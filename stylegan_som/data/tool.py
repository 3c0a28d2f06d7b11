"""Convert image collections into StyleGAN2-ADA dataset archives: `python -m stylegan_som.dataset_tool`.

The output is upstream's layout, so upstream's loader reads it too: uncompressed PNGs named
`00000/img00000000.png` (1000 per folder) and a `dataset.json` of {"labels": [[name, label], ...]} (null when the
source has no labels). Class names, when known, are added as "class_names"; upstream ignores the extra key.
"""

import io
import json
import os
import zipfile

import click
import numpy as np
import PIL.Image

from .sources import DatasetError, SUPPORTED, open_source

#----------------------------------------------------------------------------

_Resampling = getattr(PIL.Image, 'Resampling', PIL.Image) # Pillow >= 9.1 moved the filter constants

def _resize(img, width, height, resample):
    if img.shape[1] == width and img.shape[0] == height:
        return img
    pil = PIL.Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img)
    out = np.asarray(pil.resize((width, height), resample))
    return out[:, :, np.newaxis] if out.ndim == 2 else out

def make_transform(transform, width, height, resize_filter):
    """-> function HWC uint8 -> HWC uint8, or None to drop the image (center-crop-wide on too small inputs)."""
    resample = {'box': _Resampling.BOX, 'lanczos': _Resampling.LANCZOS}[resize_filter]

    def scale(img):
        return _resize(img, width or img.shape[1], height or img.shape[0], resample)

    def center_crop(img):
        h, w = img.shape[:2]
        s = min(h, w)
        return _resize(img[(h - s) // 2:(h + s) // 2, (w - s) // 2:(w + s) // 2], width, height, resample)

    def center_crop_wide(img):
        # Keep the full width at the target aspect ratio, then letterbox into a width x width square.
        h, w = img.shape[:2]
        ch = int(np.round(width * h / w))
        if w < width or ch < height:
            return None
        img = _resize(img[(h - ch) // 2:(h + ch) // 2], width, height, resample)
        canvas = np.zeros([width, width, img.shape[2]], dtype=np.uint8)
        canvas[(width - height) // 2:(width + height) // 2] = img
        return canvas

    if transform is None:
        return scale
    return {'center-crop': center_crop, 'center-crop-wide': center_crop_wide}[transform]

#----------------------------------------------------------------------------

class _ZipDest:
    def __init__(self, path):
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self.tmp = f'{path}.tmp{os.getpid()}' # renamed at the end: a failed run leaves no half-written zip
        self.zip = zipfile.ZipFile(self.tmp, 'w', compression=zipfile.ZIP_STORED)

    def write(self, name, data):
        self.zip.writestr(name, data)

    def finish(self, ok):
        self.zip.close()
        if ok:
            os.replace(self.tmp, self.path)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)

class _DirDest:
    def __init__(self, path):
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            raise click.ClickException(f'--dest folder must be empty: {path}')
        os.makedirs(path, exist_ok=True)
        self.path = path

    def write(self, name, data):
        fname = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(fname) or '.', exist_ok=True)
        with open(fname, 'wb') as f:
            f.write(data.encode('utf8') if isinstance(data, str) else data)

    def finish(self, ok):
        pass

#----------------------------------------------------------------------------

def _python_label(label):
    return int(label) if np.ndim(label) == 0 else [float(x) for x in np.ravel(label)]

def convert(source, dest, max_images=None, transform=None, resize_filter='lanczos', width=None, height=None,
        verbose=True):
    """Write `source` (anything open_source reads) to `dest` (.zip or empty folder). Raises click.ClickException."""
    from tqdm import tqdm
    if transform is not None and (width is None or height is None):
        raise click.UsageError(f'--transform={transform} needs both --width and --height')
    try:
        src = open_source(source)
        labels = src.labels()
    except DatasetError as e:
        raise click.ClickException(f'--source: {e}')
    if verbose and src.note:
        print(f'{source}: {src.note}')
    transform_image = make_transform(transform, width, height, resize_filter)
    num = len(src) if max_images is None else min(len(src), max_images)

    out = _ZipDest(dest) if dest.lower().endswith('.zip') else _DirDest(dest)
    ok = False
    try:
        attrs = None
        out_labels = []
        for idx in tqdm(range(num), disable=not verbose, unit='img'):
            name = f'{idx // 1000:05d}/img{idx:08d}.png' # folder = first five of eight digits, as upstream
            try:
                img = transform_image(src.load(idx))
            except DatasetError as e:
                raise click.ClickException(str(e))
            if img is None:
                continue # center-crop-wide drops images narrower than --width; names keep the input index
            h, w, c = img.shape
            if attrs is None:
                what = f'{src.item_name(idx)} (after crop/resize)' if transform or width or height else src.item_name(idx)
                if w != h:
                    raise click.ClickException(f'Images must be square: {what} is {w}x{h}. Use --transform=center-crop '
                        f'(or center-crop-wide) with --width and --height')
                if c not in (1, 3):
                    raise click.ClickException(f'Images must be RGB or greyscale: {what} has {c} channels')
                if w & (w - 1):
                    raise click.ClickException(f'Image size must be a power of two: {what} is {w}x{h}. '
                        f'Use --width and --height')
                attrs = (w, h, c)
            elif (w, h, c) != attrs:
                raise click.ClickException(f'All images must have the same size and channels: {src.item_name(idx)} '
                    f'is {w}x{h}x{c}, earlier ones are {attrs[0]}x{attrs[1]}x{attrs[2]}. Use --width and --height')
            buf = io.BytesIO()
            PIL.Image.fromarray(img[:, :, 0] if c == 1 else img).save(buf, format='png', compress_level=0, optimize=False)
            out.write(name, buf.getvalue())
            out_labels.append(None if labels is None else [name, _python_label(labels[idx])])
        if attrs is None:
            raise click.ClickException(f'No image was written: every image of {source} was narrower than --width')
        meta = {'labels': out_labels if labels is not None else None}
        if labels is not None and src.class_names:
            meta['class_names'] = list(src.class_names)
        out.write('dataset.json', json.dumps(meta))
        ok = True
    finally:
        out.finish(ok)
        src.close()

#----------------------------------------------------------------------------

@click.command()
@click.option('--source', help='Input: folder, .zip, .tar[.gz], cifar-10-python.tar.gz or MNIST idx files', required=True, metavar='PATH')
@click.option('--dest', help='Output .zip or (empty) folder', required=True, metavar='PATH')
@click.option('--max-images', help='Convert at most this many images', type=click.IntRange(min=1), default=None)
@click.option('--resize-filter', help='Filter for resizing', type=click.Choice(['box', 'lanczos']), default='lanczos', show_default=True)
@click.option('--transform', help='Crop before resizing', type=click.Choice(['center-crop', 'center-crop-wide']))
@click.option('--width', help='Output width', type=click.IntRange(min=1))
@click.option('--height', help='Output height', type=click.IntRange(min=1))
def convert_dataset(source, dest, max_images, transform, resize_filter, width, height):
    """Convert an image collection into a dataset archive for train.py (upstream StyleGAN2-ADA layout).

    \b
    --source accepts: folder, .zip or .tar/.tar.gz of images (labels from dataset.json or class folders),
                      cifar-10-python.tar.gz, MNIST train-images-idx3-ubyte.gz (padded to 32x32).
    --dest  out.zip   an uncompressed zip (best for training and moving around)
    --dest  out/      a folder (must be empty)

    Output images must be square with the same power-of-two size; use --width/--height to resize and
    --transform=center-crop or center-crop-wide to crop first, e.g.

    \b
    python -m stylegan_som.dataset_tool --source=photos/ --dest=photos256.zip \\
        --transform=center-crop --width=256 --height=256
    """
    if dest == '':
        raise click.UsageError('--dest must not be empty')
    convert(source, dest, max_images=max_images, transform=transform, resize_filter=resize_filter, width=width,
        height=height)

__doc__ += f'\nAccepted sources: {SUPPORTED}.\n'

if __name__ == '__main__':
    convert_dataset() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
