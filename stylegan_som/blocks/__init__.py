"""Network blocks: feature map [N, C, H, W] -> same shape, inserted into a backbone by resolution.

Each block is a persistent class in a module of its own that imports only torch, numpy, dnnlib and
torch_utils, so it travels inside network pickles that upstream StyleGAN2-ADA's loader can open. Blocks are
residual with a gain that starts at zero: attaching one to a trained network leaves its output unchanged
until training moves the gain. Register new blocks in stylegan_som/plugins.py (BLOCKS)."""
