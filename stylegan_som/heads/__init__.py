"""Discriminator heads: features [N, F] (+ labels [N, c_dim]) -> logits [N, K], one column per head.

Each head is a persistent class in a module of its own that imports only torch, numpy, dnnlib and torch_utils,
so it travels inside network pickles that upstream StyleGAN2-ADA's loader can open. Register new heads in
stylegan_som/plugins.py (HEADS)."""
