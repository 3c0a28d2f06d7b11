// Python binding for the fused bias_act kernel: argument checks, layout
// handling, output allocation and dtype dispatch. Kernels live in bias_act.cu.

#include <torch/extension.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <climits>
#include "bias_act.h"

namespace {

// Same sizes and the same strides wherever they matter (dims longer than one).
bool same_layout(const torch::Tensor& a, const torch::Tensor& b)
{
    if (a.sizes() != b.sizes())
        return false;
    for (int64_t i = 0; i < a.dim(); i++)
        if (a.size(i) > 1 && a.stride(i) != b.stride(i))
            return false;
    return true;
}

// An optional per-element tensor (empty = absent), checked against x and, if its
// memory layout differs, copied into x's layout so one linear index serves all.
torch::Tensor elementwise_like_x(const torch::Tensor& t, const torch::Tensor& x, const char* name)
{
    if (t.numel() == 0)
        return t;
    TORCH_CHECK(t.sizes() == x.sizes(), "bias_act: ", name, " must have the shape of x ", x.sizes(), ", got ", t.sizes());
    TORCH_CHECK(t.scalar_type() == x.scalar_type(), "bias_act: ", name, " must have the dtype of x (", x.scalar_type(), "), got ", t.scalar_type());
    TORCH_CHECK(t.device() == x.device(), "bias_act: ", name, " must be on the device of x (", x.device(), "), got ", t.device());
    if (same_layout(t, x))
        return t;
    return torch::empty_like(x).copy_(t);
}

torch::Tensor bias_act(torch::Tensor x, torch::Tensor b, torch::Tensor xref, torch::Tensor yref, torch::Tensor dy,
    int grad, int dim, int act, float alpha, float gain, float clamp)
{
    TORCH_CHECK(x.is_cuda(), "bias_act: x must be a CUDA tensor, got device ", x.device());
    TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kHalf || x.scalar_type() == torch::kDouble,
        "bias_act: x must be float16, float32 or float64, got ", x.scalar_type());
    TORCH_CHECK(x.numel() <= INT_MAX, "bias_act: x has ", x.numel(), " elements; at most ", INT_MAX, " are supported (32-bit indexing)");
    TORCH_CHECK(grad >= 0 && grad <= 2, "bias_act: grad must be 0, 1 or 2, got ", grad);
    TORCH_CHECK(act >= kActLinear && act <= kActSwish, "bias_act: unknown activation code ", act, " (expected 1..9)");

    const bool has_b = (b.numel() != 0);
    if (has_b)
    {
        TORCH_CHECK(b.dim() == 1, "bias_act: b must be 1-D, got shape ", b.sizes());
        TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim ", dim, " is out of range for x with ", x.dim(), " dimensions");
        TORCH_CHECK(b.size(0) == x.size(dim), "bias_act: b has ", b.size(0), " elements but x.shape[", dim, "] is ", x.size(dim));
        TORCH_CHECK(b.scalar_type() == x.scalar_type(), "bias_act: b must have the dtype of x (", x.scalar_type(), "), got ", b.scalar_type());
        TORCH_CHECK(b.device() == x.device(), "bias_act: b must be on the device of x (", x.device(), "), got ", b.device());
        b = b.contiguous();
    }

    const at::cuda::CUDAGuard device_guard(x.device());

    // The kernel walks memory linearly, so x must be dense; channels_last etc. are kept as they are.
    if (!x.is_non_overlapping_and_dense())
        x = x.contiguous();
    xref = elementwise_like_x(xref, x, "xref");
    yref = elementwise_like_x(yref, x, "yref");
    dy   = elementwise_like_x(dy,   x, "dy");

    torch::Tensor y = torch::empty_like(x); // dense input -> same strides as x
    TORCH_CHECK(same_layout(y, x), "bias_act: internal error: output layout differs from x");
    if (x.numel() == 0)
        return y;

    BiasActArgs args;
    args.x      = x.data_ptr();
    args.b      = has_b ? b.data_ptr() : nullptr;
    args.xref   = (xref.numel() != 0) ? xref.data_ptr() : nullptr;
    args.yref   = (yref.numel() != 0) ? yref.data_ptr() : nullptr;
    args.dy     = (dy.numel() != 0) ? dy.data_ptr() : nullptr;
    args.y      = y.data_ptr();
    args.grad   = grad;
    args.act    = act;
    args.alpha  = alpha;
    args.gain   = gain;
    args.clamp  = clamp;
    args.num_x  = static_cast<int>(x.numel());
    args.num_b  = has_b ? static_cast<int>(b.numel()) : 0;
    // In a dense layout, element i of memory has index (i / stride) % size along dim;
    // a length-1 dim may carry any stride, and then the bias index is always 0.
    args.step_b = (has_b && x.size(dim) > 1) ? static_cast<int>(x.stride(dim)) : 1;

    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    cudaError_t err = cudaSuccess;
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "bias_act", [&] {
        err = launch_bias_act<scalar_t>(args, stream);
    });
    C10_CUDA_CHECK(err);
    return y;
}

} // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("bias_act", &bias_act, "Fused bias + activation + gain + clamp, and its first/second derivative passes.");
}
