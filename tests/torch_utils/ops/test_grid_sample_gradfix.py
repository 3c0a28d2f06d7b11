"""grid_sample_gradfix against torch's grid_sample and a hand-written bilinear sampler (second order)."""

import pytest
import torch
import torch.nn.functional as F

from torch_utils.ops import grid_sample_gradfix


@pytest.fixture
def gradfix_on(monkeypatch):
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', True)


def _rand(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def plain_grid_sample(image, grid):
    """Bilinear, zero padding, align_corners=False, from the definition; differentiable to any order."""
    n, c, h, w = image.shape
    ix = ((grid[..., 0] + 1) * w - 1) / 2 # pixel centres at -1 + (2i + 1) / w
    iy = ((grid[..., 1] + 1) * h - 1) / 2
    x0, y0 = torch.floor(ix), torch.floor(iy)
    flat = image.reshape(n, c, h * w)
    out = 0
    for xc, wx in [(x0, 1 - (ix - x0)), (x0 + 1, ix - x0)]:
        for yc, wy in [(y0, 1 - (iy - y0)), (y0 + 1, iy - y0)]:
            inside = ((xc >= 0) & (xc <= w - 1) & (yc >= 0) & (yc <= h - 1)).to(image.dtype)
            idx = (yc.clamp(0, h - 1) * w + xc.clamp(0, w - 1)).long().reshape(n, 1, -1).expand(n, c, -1)
            vals = flat.gather(2, idx).reshape(n, c, *grid.shape[1:3])
            out = out + vals * (wx * wy * inside)[:, None]
    return out


def _inputs(seed):
    image = _rand(2, 3, 5, 6, seed=seed).requires_grad_()
    grid = (_rand(2, 4, 7, 2, seed=seed + 1) * 0.7).requires_grad_() # some samples fall outside
    return image, grid


def test_matches_torch_first_order(gradfix_on):
    for seed in range(3):
        image, grid = _inputs(seed)
        y = grid_sample_gradfix.grid_sample(image, grid)
        y_ref = F.grid_sample(image, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
        torch.testing.assert_close(y, y_ref)
        torch.testing.assert_close(plain_grid_sample(image, grid), y_ref)
        dy = _rand(*y.shape, seed=seed + 2)
        for a, r in zip(torch.autograd.grad(y, [image, grid], dy, retain_graph=True),
                        torch.autograd.grad(y_ref, [image, grid], dy, retain_graph=True)):
            torch.testing.assert_close(a, r)
        g, = torch.autograd.grad(y, image, dy) # only the image gradient asked for
        torch.testing.assert_close(g, torch.autograd.grad(y_ref, image, dy)[0])


def test_second_order_through_image_gradient(gradfix_on):
    # R1 through the augmentation: grad w.r.t. the image, then differentiate a penalty of it w.r.t. what
    # produced the image (here a scale parameter) and w.r.t. the incoming gradient.
    for seed in range(3):
        image, grid = _inputs(seed)
        grid = grid.detach()
        scale = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
        results = []
        for sampler in (grid_sample_gradfix.grid_sample, plain_grid_sample):
            x = image.detach().requires_grad_()
            y = sampler(x * scale, grid)
            dy = _rand(*y.shape, seed=seed + 3).requires_grad_()
            g, = torch.autograd.grad((y * dy).square().sum(), x, create_graph=True)
            results.append(torch.autograd.grad(g.square().sum(), [scale, dy]))
        for a, r in zip(*results):
            torch.testing.assert_close(a, r)


def test_gradgradcheck_image(gradfix_on):
    _, grid = _inputs(0)
    image = _rand(1, 1, 3, 4, seed=5).requires_grad_()
    grid = grid[:1, :2, :3].detach()
    assert torch.autograd.gradgradcheck(lambda t: grid_sample_gradfix.grid_sample(t, grid) ** 2, (image,))


def test_second_order_through_grid_is_refused(gradfix_on):
    image, grid = _inputs(0)
    y = grid_sample_gradfix.grid_sample(image, grid)
    g, = torch.autograd.grad(y.square().sum(), image, create_graph=True)
    with pytest.raises(NotImplementedError, match='grid'):
        torch.autograd.grad(g.square().sum(), grid)


def test_disabled_uses_torch(monkeypatch):
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', False)
    image, grid = _inputs(1)
    y = grid_sample_gradfix.grid_sample(image, grid)
    assert 'GridSampler2D' in type(y.grad_fn).__name__
    torch.testing.assert_close(y, F.grid_sample(image, grid, align_corners=False))
