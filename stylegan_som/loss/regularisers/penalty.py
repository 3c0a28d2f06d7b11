"""What the gradient penalties (R1, R2, WGAN-GP) share: the scalar whose input gradient they measure and the
squared gradient norm per score."""

import torch

from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix

def penalty_outputs(logits):
    """The scalar whose input gradient a penalty measures: with one head the sum of the logits, as upstream; with
    K heads, per sample the logit of one head drawn uniformly, so that the expected penalty is the mean of the
    per-head penalties while costing one backward pass (not K)."""
    if logits.shape[1] == 1:
        return logits.sum()
    head = torch.randint(logits.shape[1], [logits.shape[0], 1], device=logits.device)
    return logits.gather(1, head).sum()

def squared_grad_norms(logits, img):
    """|grad_img D(img)|^2 per row of D's logits. A D that scores packs of images (PacGAN) gives one row per pack,
    whose input is the whole pack: its squared norm is the sum over the pack's images. img may be MSG-GAN's
    pyramid (a list): the norm is then over all its scales' inputs together. A D that scores each image's channel
    groups as samples of their own (networks/coupled.py: rows 0..N-1 domain A, N..2N-1 domain B) gives one norm
    per group."""
    inputs = list(img) if isinstance(img, (list, tuple)) else [img]
    with conv2d_gradfix.no_weight_gradients():
        grads = torch.autograd.grad(outputs=[penalty_outputs(logits)], inputs=inputs, create_graph=True,
            only_inputs=True)
    n = inputs[0].shape[0]
    if logits.shape[0] > n: # a coupled D: each image's channel groups scored as samples, group-major
        groups = logits.shape[0] // n
        return sum(g.reshape(n, groups, -1).square().sum(2).t().reshape(-1) for g in grads)
    per_image = sum(grad.square().sum([1, 2, 3]) for grad in grads)
    if per_image.shape[0] == logits.shape[0]:
        return per_image
    return per_image.reshape(logits.shape[0], -1).sum(1)

class ZeroCentred:
    """gamma/2 |grad_img D(img)|^2 per score, shaped to add to per-head losses [N, K]; one head keeps upstream's
    [N, 1] + [N] broadcast. D's regularisation phases apply it to the images of one of D's passes (`where`)."""
    side = 'D'
    name = None

    def __init__(self, gamma, device=None):
        _ = device
        self.gamma = gamma

    @property
    def active(self):
        return self.gamma != 0

    def term(self, logits, img):
        penalty = squared_grad_norms(logits, img)
        loss = penalty * (self.gamma / 2)
        training_stats.report(f'Loss/{self.name}_penalty', penalty)
        training_stats.report('Loss/D/reg', loss)
        return loss[:, None] if logits.shape[1] > 1 else loss
