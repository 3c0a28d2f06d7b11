import numpy as np
import pytest
import scipy.stats
import torch

from metrics import metric_main
from metrics import perceptual_path_length as ppl_mod

class ProjectionG(torch.nn.Module):
    """Mapping w = z; synthesis paints the whole image with gain * (w . u), |u| = 1. With the stand-in VGG16's
    pixel 'LPIPS', the W-space endpoint PPL of a path is (127.5 * gain)^2 * pixels * (u . (w1 - w0))^2."""
    def __init__(self, gain=0.5, z_dim=4, res=8, channels=1):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, 0, z_dim
        self.img_resolution, self.img_channels = res, channels
        u = torch.arange(1, z_dim + 1, dtype=torch.float32)
        self.register_buffer('u', u / u.norm())
        self.gain = gain
        self.mapping = self.Mapping()
        self.synthesis = self.Synthesis(self)

    class Mapping(torch.nn.Module):
        def forward(self, z, c, **kwargs):
            return z.unsqueeze(1) # [N, num_ws=1, w_dim]

    class Synthesis(torch.nn.Module):
        def __init__(self, G):
            super().__init__()
            self.G = [G] # not a submodule: avoid a cycle
        def forward(self, ws, noise_mode='random', force_fp32=False, **kwargs):
            G = self.G[0]
            v = G.gain * (ws[:, 0] @ G.u)
            return v.reshape(-1, 1, 1, 1).expand(-1, G.img_channels, G.img_resolution, G.img_resolution)

def test_trimmed_mean():
    x = np.arange(1000, dtype=np.float64)
    kept = x[(x >= np.percentile(x, 1, method='lower')) & (x <= np.percentile(x, 99, method='higher'))]
    assert ppl_mod.trimmed_mean(x) == pytest.approx(kept.mean()) and len(kept) < 1000

def test_slerp_endpoints_and_norm():
    a, b = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    t = torch.rand(5, 1, dtype=torch.float64)
    out = ppl_mod.slerp(a, b, t)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(ppl_mod.slerp(a, b, torch.zeros(5, 1, dtype=torch.float64)), a / a.norm(dim=1, keepdim=True))
    torch.testing.assert_close(ppl_mod.slerp(a, b, torch.ones(5, 1, dtype=torch.float64)), b / b.norm(dim=1, keepdim=True))
    # Equal angular steps: the angle to a grows linearly in t.
    ang = torch.acos((out * a / a.norm(dim=1, keepdim=True)).sum(1))
    full = torch.acos((a * b).sum(1) / a.norm(dim=1) / b.norm(dim=1))
    torch.testing.assert_close(ang, t[:, 0] * full)

def test_ppl_w_end_matches_closed_form(vgg16_file):
    torch.manual_seed(0)
    np.random.seed(0)
    gain, n = 0.5, 2000
    res = metric_main.calc_metric('ppl_wend', G=ProjectionG(gain), device='cpu', max_items=n,
        dataset_kwargs=dict()).results.ppl_wend
    # u . (w1 - w0) ~ N(0, 2); the cropped 4x4 region in 3 channels has 48 pixels. The trimmed mean of a chi^2_1
    # variable between its 1% and 99% quantiles is (F_3(b) - F_3(a)) / 0.98 (since x f_1(x) = f_3(x)).
    lo, hi = scipy.stats.chi2.ppf([0.01, 0.99], 1)
    trimmed = (scipy.stats.chi2.cdf(hi, 3) - scipy.stats.chi2.cdf(lo, 3)) / 0.98
    expected = (127.5 * gain) ** 2 * 48 * 2 * trimmed
    assert res == pytest.approx(expected, rel=0.1)

@pytest.mark.parametrize('metric', ['ppl_zfull', 'ppl_wfull', 'ppl_zend', 'ppl2_wend'])
def test_ppl_variants_run(metric, vgg16_file):
    res = metric_main.calc_metric(metric, G=ProjectionG(), device='cpu', max_items=8, dataset_kwargs=dict()).results
    assert np.isfinite(res[metric]) and res[metric] > 0

def test_constant_generator_has_zero_ppl(vgg16_file):
    res = metric_main.calc_metric('ppl_wfull', G=ProjectionG(gain=0.0), device='cpu', max_items=8, dataset_kwargs=dict()).results
    assert res.ppl_wfull == 0
