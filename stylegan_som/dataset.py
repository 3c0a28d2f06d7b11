"""Old home of the image datasets, now stylegan_som.data: kept so that the class name
stylegan_som.dataset.ImageFolderDataset in the training_options.json of earlier runs keeps resolving."""

from .data.images import ImageFolderDataset # pylint: disable=unused-import
