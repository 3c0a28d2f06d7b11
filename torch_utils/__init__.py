"""PyTorch helpers: persistence of network classes, misc tensor utilities, training statistics, custom ops."""
