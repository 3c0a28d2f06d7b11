"""Datasets: what --data reads and the dataset objects the training loop and the metrics iterate.

    resolve.py   the one resolver of --data: data_kind() (a path, a built-in name or a 2-D toy) and
                 dataset_kwargs_from_data(), the training_set_kwargs a run records
    base.py      Dataset, upstream's interface (labels, max_size subset, xflip)
    images.py    ImageFolderDataset (every source of sources.py) and check_images()
    points.py    the 2-D toys (ring8, grid25, grid25-unequal) as PointDataset
    sources.py   readers of folders, zips, tars, CIFAR-10 and MNIST idx files (no torch)
    builtin.py   datasets fetched or built into the cache (cifar10, mnist, stacked-mnist, discs8)
    tool.py      python -m stylegan_som.dataset_tool: image collections -> upstream's zip layout

Only the errors are imported here, so the tool starts without torch."""

from .sources import DatasetError # pylint: disable=unused-import

def dataset_kwargs_from_data(data, cfg=None, **kwargs):
    """See resolve.dataset_kwargs_from_data."""
    from .resolve import dataset_kwargs_from_data as resolve # pylint: disable=import-outside-toplevel
    return resolve(data, cfg, **kwargs)
