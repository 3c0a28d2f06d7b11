"""Training losses. A loss is built from keyword arguments by class name (`loss_kwargs.class_name`, e.g.
stylegan_som.loss.StyleGAN2Loss as saved in training_options.json) and receives the (possibly DDP-wrapped)
networks; the training loop only calls `accumulate_gradients()` once per phase and round.

    base.py             the interface the training loop sees (Loss)
    runner.py           StyleGAN2Loss: runs G and D and the phases, applies the objective (stylegan_som/losses)
    som_weighting.py    SOM heads: neighbourhood weights of reals and fakes, occupancies, prototypes
    regularisers/       one module per regulariser, listed in regularisers.REGULARISERS"""

from .base import Loss # pylint: disable=unused-import
from .regularisers.feature_matching import feature_distance # pylint: disable=unused-import
from .runner import StyleGAN2Loss # pylint: disable=unused-import
