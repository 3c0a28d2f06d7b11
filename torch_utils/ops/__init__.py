"""Custom ops: fused bias/activation, FIR resampling, resampling convolutions and double-differentiable
convolution / grid sampling. Each op has a PyTorch path that runs anywhere; bias_act and upfirdn2d also have
CUDA kernels that are compiled on first use."""
