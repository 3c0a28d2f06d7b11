"""R1 (Mescheder et al. 2018): gamma/2 |grad_x D(x)|^2 on reals, in D's pass over reals (lazily, as upstream)."""

from .penalty import ZeroCentred

class R1(ZeroCentred):
    where = 'real'
    name = 'r1'
