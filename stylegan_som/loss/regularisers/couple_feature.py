"""Soft-CoGAN's feature coupling (--couple-feature): the mean squared distance between the outputs of the two
generators' layers of the same name (CoupledSynthesis.matching_layers: every layer but the output ones), averaged
over those layers, for the two images of each pair drawn from one latent."""

from .coupling import Coupling

class CoupleFeature(Coupling):
    name = 'feature'

    def distance(self, loss, synthesis, batch, sync):
        layers = synthesis.matching_layers()
        if not layers:
            raise ValueError('couple_feature: the two generators have no separate layers to compare (--couple=hard '
                'shares them)')
        outputs = {}
        def hook(key):
            return lambda _module, _inputs, out: outputs.__setitem__(key, out[0] if isinstance(out, tuple) else out)
        handles = [layer.register_forward_hook(hook((name, side)))
            for name, la, lb in layers for side, layer in (('a', la), ('b', lb))]
        try:
            gen_img, _ = loss.run_G(batch.gen_z, batch.gen_c, sync=sync)
        finally:
            for handle in handles:
                handle.remove() # no hook left behind in a network that gets pickled
        terms = [(outputs[(name, 'a')].float() - outputs[(name, 'b')].float()).square().mean() for name, _, _ in layers]
        return sum(terms) / len(terms), gen_img
