// Fused bias + activation + gain + clamp: interface between the binding
// (bias_act.cpp, host compiler) and the kernels (bias_act.cu, nvcc).
// Kept free of torch headers so that the .cu file compiles quickly.

#pragma once
#include <cuda_runtime_api.h>

// Activation codes, equal to the `cuda_idx` values used by bias_act.py.
enum BiasActCode
{
    kActLinear   = 1,
    kActRelu     = 2,
    kActLrelu    = 3,
    kActTanh     = 4,
    kActSigmoid  = 5,
    kActElu      = 6,
    kActSelu     = 7,
    kActSoftplus = 8,
    kActSwish    = 9,
};

// All tensors share the shape and memory layout of `x`; absent ones are nullptr.
struct BiasActArgs
{
    const void* x;      // grad=0: input; grad>=1: incoming gradient
    const void* b;      // [num_b] bias along one dimension of x, or nullptr
    const void* xref;   // x saved by the forward pass (pre-bias), or nullptr
    const void* yref;   // y saved by the forward pass (post-gain, post-clamp), or nullptr
    const void* dy;     // grad=2: the gradient fed to the first-derivative pass, or nullptr
    void*       y;      // output
    int         grad;   // 0 = forward, 1 = first derivative, 2 = second derivative
    int         act;    // BiasActCode
    float       alpha;
    float       gain;
    float       clamp;  // < 0: no clamping
    int         num_x;  // number of elements in x (<= INT_MAX)
    int         num_b;  // elements in b (0 when absent)
    int         step_b; // memory stride of the bias dimension in x
};

// Launches on `stream`; returns the launch status. Instantiated for double, float and c10::Half.
template <typename T> cudaError_t launch_bias_act(const BiasActArgs& args, cudaStream_t stream);
