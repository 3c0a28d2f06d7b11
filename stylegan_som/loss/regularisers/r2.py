"""R2: the same zero-centred penalty on fakes (R3GAN), in D's pass over fakes. G is not trained in D's phases, so
the fakes are a detached input whose gradient the penalty measures."""

from .penalty import ZeroCentred

class R2(ZeroCentred):
    where = 'fake'
    name = 'r2'
