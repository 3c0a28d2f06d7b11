// Python binding for the fused upfirdn2d kernel: argument checks, output
// allocation and dtype dispatch. The kernel lives in upfirdn2d.cu.

#include <torch/extension.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <climits>
#include <cstdlib>
#include "upfirdn2d.h"

namespace {

// Sizes and strides as 32-bit ints. A length-1 dim is only ever indexed at 0,
// so its stride (which may be anything) is stored as 0.
Upfirdn2dShape shape_of(const torch::Tensor& t)
{
    auto stride = [&](int d) { return (t.size(d) > 1) ? static_cast<int>(t.stride(d)) : 0; };
    return {static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), static_cast<int>(t.size(2)), static_cast<int>(t.size(3)),
            stride(0), stride(1), stride(2), stride(3)};
}

// Largest element offset reachable through t's sizes and strides.
int64_t max_offset(const torch::Tensor& t)
{
    int64_t offset = 0;
    for (int64_t d = 0; d < t.dim(); d++)
        if (t.size(d) > 1)
            offset += (t.size(d) - 1) * t.stride(d);
    return offset;
}

torch::Tensor upfirdn2d(torch::Tensor x, torch::Tensor f, int upx, int upy, int downx, int downy,
    int padx0, int padx1, int pady0, int pady1, bool flip, float gain)
{
    TORCH_CHECK(x.is_cuda(), "upfirdn2d: x must be a CUDA tensor, got device ", x.device());
    TORCH_CHECK(x.dim() == 4, "upfirdn2d: x must be 4-D [N, C, H, W], got shape ", x.sizes());
    TORCH_CHECK(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kHalf || x.scalar_type() == torch::kDouble,
        "upfirdn2d: x must be float16, float32 or float64, got ", x.scalar_type());
    TORCH_CHECK(f.device() == x.device(), "upfirdn2d: f must be on the device of x (", x.device(), "), got ", f.device());
    TORCH_CHECK(f.scalar_type() == torch::kFloat, "upfirdn2d: f must be float32, got ", f.scalar_type());
    TORCH_CHECK(f.dim() == 2, "upfirdn2d: f must be 2-D [filter_h, filter_w], got shape ", f.sizes());
    TORCH_CHECK(f.size(0) >= 1 && f.size(1) >= 1, "upfirdn2d: f must be at least 1x1, got shape ", f.sizes());
    TORCH_CHECK(upx >= 1 && upy >= 1, "upfirdn2d: upsampling factors must be >= 1, got up=[", upx, ", ", upy, "]");
    TORCH_CHECK(downx >= 1 && downy >= 1, "upfirdn2d: downsampling factors must be >= 1, got down=[", downx, ", ", downy, "]");

    const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t fh = f.size(0), fw = f.size(1);

    // Intermediate coordinates (upsampled, padded, filter footprint) are 32-bit in the kernel;
    // half of INT_MAX leaves room for the sums it forms.
    const int64_t extent_y = h * upy + std::llabs(pady0) + std::llabs(pady1) + fh + upy + downy;
    const int64_t extent_x = w * upx + std::llabs(padx0) + std::llabs(padx1) + fw + upx + downx;
    TORCH_CHECK(extent_y <= INT_MAX / 2 && extent_x <= INT_MAX / 2,
        "upfirdn2d: upsampled and padded image is too large for 32-bit indexing (input ", h, "x", w,
        ", up=[", upx, ", ", upy, "], padding=[", padx0, ", ", padx1, ", ", pady0, ", ", pady1, "])");

    const int64_t padded_h = h * upy + pady0 + pady1;
    const int64_t padded_w = w * upx + padx0 + padx1;
    TORCH_CHECK(padded_h >= fh && padded_w >= fw, "upfirdn2d: the upsampled and padded input (", padded_h, "x", padded_w,
        ") is smaller than the filter (", fh, "x", fw, "); check the padding");
    const int64_t out_h = (padded_h - fh) / downy + 1;
    const int64_t out_w = (padded_w - fw) / downx + 1;

    TORCH_CHECK(max_offset(x) <= INT_MAX, "upfirdn2d: x spans more than ", INT_MAX, " elements (32-bit indexing)");
    TORCH_CHECK(n * c * out_h * out_w <= INT_MAX, "upfirdn2d: output [", n, ", ", c, ", ", out_h, ", ", out_w, "] has more than ",
        INT_MAX, " elements (32-bit indexing)");

    const at::cuda::CUDAGuard device_guard(x.device());

    // The output keeps x's memory format (e.g. channels_last), which also orders the threads.
    const at::MemoryFormat format = x.suggest_memory_format();
    torch::Tensor y = torch::empty({n, c, out_h, out_w}, x.options().memory_format(format));
    if (y.numel() == 0)
        return y;
    f = f.contiguous(); // the kernel reads f as a dense row-major block

    Upfirdn2dArgs args;
    args.x             = x.data_ptr();
    args.f             = f.data_ptr<float>();
    args.y             = y.data_ptr();
    args.in            = shape_of(x);
    args.out           = shape_of(y);
    args.filter_w      = static_cast<int>(fw);
    args.filter_h      = static_cast<int>(fh);
    args.up_x          = upx;
    args.up_y          = upy;
    args.down_x        = downx;
    args.down_y        = downy;
    args.pad_x0        = padx0;
    args.pad_y0        = pady0;
    args.flip          = flip;
    args.gain          = gain;
    args.channels_last = (format == at::MemoryFormat::ChannelsLast);

    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    cudaError_t err = cudaSuccess;
    AT_DISPATCH_FLOATING_TYPES_AND_HALF(x.scalar_type(), "upfirdn2d", [&] {
        err = launch_upfirdn2d<scalar_t>(args, stream);
    });
    C10_CUDA_CHECK(err);
    return y;
}

} // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)
{
    m.def("upfirdn2d", &upfirdn2d, "Upsample, pad, FIR-filter and downsample a batch of 2-D images.");
}
