"""--arch=mlp: multilayer perceptrons for 2-D point data ([N, 2, 1, 1]), defined in small.py."""

from .small import MLPGenerator as Generator, MLPDiscriminator as Discriminator # pylint: disable=unused-import
