"""Old home of the 2-D toys, now stylegan_som.data.points: kept so that the class name
stylegan_som.dataset_points.PointDataset in the training_options.json of earlier runs keeps resolving."""

from .data.points import PointDataset # pylint: disable=unused-import
