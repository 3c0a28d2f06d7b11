"""--arch=resnet: SNGAN's ResNet generator and discriminator, defined in small.py."""

from .small import ResNetGenerator as Generator, ResNetDiscriminator as Discriminator # pylint: disable=unused-import
