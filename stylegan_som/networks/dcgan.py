"""--arch=dcgan: DCGAN generator and discriminator (SNGAN's "standard CNN"), defined in small.py."""

from .small import DCGANGenerator as Generator, DCGANDiscriminator as Discriminator # pylint: disable=unused-import
