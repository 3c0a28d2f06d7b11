"""Drop-in replacement for torch.nn.functional.grid_sample() (2-D, mode='bilinear', padding_mode='zeros',
align_corners=False) whose input gradient can be differentiated again, as needed when a gradient penalty
(R1) is taken through the augmentation pipeline. PyTorch's own grid_sampler_2d_backward has no
derivative. Gradients through the grid are first-order only.
"""

import torch

# pylint: disable=redefined-builtin
# pylint: disable=arguments-differ

#----------------------------------------------------------------------------

enabled = False  # Use the custom op (the training loop turns this on).

#----------------------------------------------------------------------------

def grid_sample(input, grid):
    if _should_use_custom_op():
        return _GridSample.apply(input, grid)
    return torch.nn.functional.grid_sample(input=input, grid=grid, mode='bilinear', padding_mode='zeros',
        align_corners=False)

def _should_use_custom_op():
    return enabled

#----------------------------------------------------------------------------
# aten.grid_sampler_2d_backward codes: interpolation 0 = bilinear, padding 0 = zeros.

class _GridSample(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, grid):
        if input.ndim != 4 or grid.ndim != 4:
            raise ValueError(f'grid_sample_gradfix: expected 4-D input and grid, got shapes '
                f'{list(input.shape)} and {list(grid.shape)}')
        ctx.save_for_backward(input, grid)
        return torch.nn.functional.grid_sample(input=input, grid=grid, mode='bilinear', padding_mode='zeros',
            align_corners=False)

    @staticmethod
    def backward(ctx, grad_output):
        input, grid = ctx.saved_tensors
        mask = (bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1]))
        grad_input, grad_grid = _GridSampleGrad.apply(grad_output, input, grid, mask)
        return grad_input, grad_grid

class _GridSampleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad_output, input, grid, mask):
        ctx.set_materialize_grads(False) # None = that output was not used, so no need to raise below
        ctx.save_for_backward(grid)
        grad_input, grad_grid = torch.ops.aten.grid_sampler_2d_backward(grad_output, input, grid, 0, 0, False,
            list(mask))
        # The CPU kernel fills grad_grid even when it was not asked for; drop it so it is not kept.
        return grad_input, (grad_grid if mask[1] else None)

    @staticmethod
    def backward(ctx, gg_input, gg_grid):
        grid, = ctx.saved_tensors
        gg_output = None
        # grad_input is linear in grad_output (the map is the adjoint of sampling) and does not depend on
        # input, so its only non-zero derivative that we support is the sampling itself.
        if ctx.needs_input_grad[0] and gg_input is not None:
            gg_output = _GridSample.apply(gg_input, grid)
        if gg_grid is not None and (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            raise NotImplementedError('grid_sample_gradfix: second-order gradients through the grid gradient are not supported')
        if ctx.needs_input_grad[2] and gg_input is not None:
            raise NotImplementedError('grid_sample_gradfix: second-order gradients with respect to the grid are not supported')
        return gg_output, None, None, None

#----------------------------------------------------------------------------
