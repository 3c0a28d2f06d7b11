// Upsample + pad + FIR filter + downsample of a batch of 2-D images: interface
// between the binding (upfirdn2d.cpp, host compiler) and the kernel
// (upfirdn2d.cu, nvcc). Kept free of torch headers so the .cu compiles quickly.

#pragma once
#include <cuda_runtime_api.h>

// Sizes and element strides of a 4-D [N, C, H, W] tensor. All element offsets of
// the tensors involved fit in 32 bits (checked by the binding).
struct Upfirdn2dShape
{
    int n, c, h, w;
    int stride_n, stride_c, stride_h, stride_w;
};

struct Upfirdn2dArgs
{
    const void*    x;       // input, any strides
    const float*   f;       // [filter_h, filter_w] float32, contiguous
    void*          y;       // output, dense
    Upfirdn2dShape in;
    Upfirdn2dShape out;
    int            filter_w, filter_h;
    int            up_x, up_y;
    int            down_x, down_y;
    int            pad_x0, pad_y0;  // the far-side paddings only determine the output size
    bool           flip;            // true: correlate with f; false: convolve (correlate with f flipped)
    float          gain;
    bool           channels_last;   // output memory order, chooses which index varies fastest across threads
};

// Launches on `stream`; returns the launch status. Instantiated for double, float and c10::Half.
template <typename T> cudaError_t launch_upfirdn2d(const Upfirdn2dArgs& args, cudaStream_t stream);
