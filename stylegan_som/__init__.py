"""stylegan-som: StyleGAN2-ADA with self-organising multi-head discriminators."""
