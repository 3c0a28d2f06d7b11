"""StyleGAN2's objective: the non-saturating logistic loss with lazy R1 on reals, path-length regularisation and
style mixing (the last two where the config has them), as in StyleGAN2-ADA. The default --loss."""

from .ns import NonSaturating

class StyleGAN2(NonSaturating):
    defaults = dict(r1=True, path_length=True, style_mixing=True, gp_weight=0, weight_clip=0)
