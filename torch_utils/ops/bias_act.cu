// Elementwise kernel for bias_act(): forward pass and the first and second
// derivative passes used by the autograd Functions in bias_act.py.

#include <c10/util/Half.h>
#include "bias_act.h"

namespace {

// Half is computed in float; float and double in their own precision.
template <typename T> struct Accum            { using type = T; };
template <>           struct Accum<c10::Half> { using type = float; };

// Explicit float/double overloads, so float math never silently promotes to double.
__device__ __forceinline__ float  dexp(float v)    { return expf(v); }
__device__ __forceinline__ double dexp(double v)   { return exp(v); }
__device__ __forceinline__ float  dexpm1(float v)  { return expm1f(v); }
__device__ __forceinline__ double dexpm1(double v) { return expm1(v); }
__device__ __forceinline__ float  dlog1p(float v)  { return log1pf(v); }
__device__ __forceinline__ double dlog1p(double v) { return log1p(v); }
__device__ __forceinline__ float  dtanh(float v)   { return tanhf(v); }
__device__ __forceinline__ double dtanh(double v)  { return tanh(v); }

constexpr double kSeluLambda = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha  = 1.6732632423543772848170429916717;

// Logistic function; below -80 exp(-v) would overflow float (and fast-math
// division misbehaves on huge denominators), and the true value is ~0 there.
template <typename S> __device__ __forceinline__ S sigmoid_guarded(S v)
{
    return (v < S(-80)) ? S(0) : S(1) / (S(1) + dexp(-v));
}

// Activation value f(v).
template <int A, typename S> __device__ __forceinline__ S act_value(S v, S alpha)
{
    if (A == kActRelu)     return (v > S(0)) ? v : S(0);
    if (A == kActLrelu)    return (v > S(0)) ? v : v * alpha;
    if (A == kActTanh)     return dtanh(v);
    if (A == kActSigmoid)  return sigmoid_guarded(v);
    if (A == kActElu)      return (v >= S(0)) ? v : dexpm1(v);
    if (A == kActSelu)     return (v >= S(0)) ? S(kSeluLambda) * v : S(kSeluLambda * kSeluAlpha) * dexpm1(v);
    if (A == kActSoftplus) return (v > S(20)) ? v : dlog1p(dexp(v)); // same cut-off as torch's softplus
    if (A == kActSwish)    return v * sigmoid_guarded(v);
    return v; // linear
}

// f'(v) and f''(v) written in terms of r = f(v): the forward pass kept only its
// output for these activations, so the input is not available.
template <int A, typename S> __device__ __forceinline__ S act_slope_from_output(S r, S alpha)
{
    if (A == kActRelu)     return (r > S(0)) ? S(1) : S(0);
    if (A == kActLrelu)    return (r > S(0)) ? S(1) : alpha;
    if (A == kActTanh)     return S(1) - r * r;
    if (A == kActSigmoid)  return r * (S(1) - r);
    if (A == kActElu)      return (r >= S(0)) ? S(1) : r + S(1);
    if (A == kActSelu)     return (r >= S(0)) ? S(kSeluLambda) : r + S(kSeluLambda * kSeluAlpha);
    if (A == kActSoftplus) return S(1) - dexp(-r);
    return S(1); // linear
}

template <int A, typename S> __device__ __forceinline__ S act_curvature_from_output(S r)
{
    if (A == kActTanh)     return S(-2) * r * (S(1) - r * r);
    if (A == kActSigmoid)  return r * (S(1) - r) * (S(1) - S(2) * r);
    if (A == kActElu)      return (r >= S(0)) ? S(0) : r + S(1);
    if (A == kActSelu)     return (r >= S(0)) ? S(0) : r + S(kSeluLambda * kSeluAlpha);
    if (A == kActSoftplus) { S e = dexp(-r); return e * (S(1) - e); }
    return S(0); // linear, relu, lrelu: piecewise linear
}

// One thread per element (grid-stride). Every tensor shares x's memory layout,
// so a single linear index addresses all of them.
template <typename T, int A> __global__ void bias_act_kernel(BiasActArgs args)
{
    using S = typename Accum<T>::type;
    const T* x    = static_cast<const T*>(args.x);
    const T* b    = static_cast<const T*>(args.b);
    const T* xref = static_cast<const T*>(args.xref);
    const T* yref = static_cast<const T*>(args.yref);
    const T* dy   = static_cast<const T*>(args.dy);
    T*       y    = static_cast<T*>(args.y);
    const S alpha = static_cast<S>(args.alpha);
    const S gain  = static_cast<S>(args.gain);
    const S clamp = static_cast<S>(args.clamp);
    const unsigned num_x  = static_cast<unsigned>(args.num_x);
    const unsigned num_b  = static_cast<unsigned>(args.num_b);
    const unsigned step_b = static_cast<unsigned>(args.step_b);

    // Unsigned: i < 2^31 and the stride is far below 2^31, so i + stride cannot wrap.
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < num_x; i += blockDim.x * gridDim.x)
    {
        const S bias = (b != nullptr) ? static_cast<S>(b[(i / step_b) % num_b]) : S(0);
        S out;
        if (args.grad == 0)
        {
            out = act_value<A>(static_cast<S>(x[i]) + bias, alpha) * gain;
            if (clamp >= S(0) && !(out > -clamp && out < clamp))
                out = (out >= S(0)) ? clamp : -clamp;
        }
        else
        {
            // x holds the incoming gradient; dy (second pass only) the gradient
            // that the first pass multiplied in.
            S g = static_cast<S>(x[i]) * gain;
            if (dy != nullptr)
                g *= static_cast<S>(dy[i]);

            // yr: forward output, needed for the clamp mask.
            S yr = (yref != nullptr) ? static_cast<S>(yref[i]) : S(0);
            S deriv;
            if (A == kActSwish)
            {
                // Swish is not invertible, so it keeps the input (xref) instead of the output.
                const S v = ((xref != nullptr) ? static_cast<S>(xref[i]) : S(0)) + bias;
                const S s = sigmoid_guarded(v);
                deriv = (args.grad == 1)
                    ? s * (S(1) + v * (S(1) - s))                       // s + v s (1 - s)
                    : s * (S(1) - s) * (S(2) + v * (S(1) - S(2) * s));  // derivative of the above
                yr = v * s * gain;
            }
            else
            {
                const S r = (gain != S(0)) ? yr / gain : S(0);
                deriv = (args.grad == 1) ? act_slope_from_output<A>(r, alpha) : act_curvature_from_output<A>(r);
            }
            out = g * deriv;

            // Clamped outputs are constant, so no gradient flows through them.
            if (clamp >= S(0) && !(yr > -clamp && yr < clamp))
                out = S(0);
        }
        y[i] = static_cast<T>(out);
    }
}

template <typename T, int A> cudaError_t launch_act(const BiasActArgs& args, cudaStream_t stream)
{
    // Enough blocks to fill any current GPU; larger tensors loop in the kernel.
    const int threads = 256;
    const int max_blocks = 65536;
    int blocks = (args.num_x - 1) / threads + 1;
    if (blocks > max_blocks)
        blocks = max_blocks;
    bias_act_kernel<T, A><<<blocks, threads, 0, stream>>>(args);
    return cudaGetLastError();
}

} // namespace

template <typename T> cudaError_t launch_bias_act(const BiasActArgs& args, cudaStream_t stream)
{
    if (args.num_x <= 0)
        return cudaSuccess;
    switch (args.act)
    {
        case kActLinear:   return launch_act<T, kActLinear>(args, stream);
        case kActRelu:     return launch_act<T, kActRelu>(args, stream);
        case kActLrelu:    return launch_act<T, kActLrelu>(args, stream);
        case kActTanh:     return launch_act<T, kActTanh>(args, stream);
        case kActSigmoid:  return launch_act<T, kActSigmoid>(args, stream);
        case kActElu:      return launch_act<T, kActElu>(args, stream);
        case kActSelu:     return launch_act<T, kActSelu>(args, stream);
        case kActSoftplus: return launch_act<T, kActSoftplus>(args, stream);
        case kActSwish:    return launch_act<T, kActSwish>(args, stream);
        default:           return cudaErrorInvalidValue; // the binding validates act first
    }
}

template cudaError_t launch_bias_act<double>   (const BiasActArgs& args, cudaStream_t stream);
template cudaError_t launch_bias_act<float>    (const BiasActArgs& args, cudaStream_t stream);
template cudaError_t launch_bias_act<c10::Half>(const BiasActArgs& args, cudaStream_t stream);
