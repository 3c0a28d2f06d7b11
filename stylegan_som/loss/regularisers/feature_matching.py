"""Feature matching (Salimans et al. 2016) in G's main loss: weight times the squared distance between the batch
means of D's final features on reals and on fakes, the features being what D's head scores (small backbones: the
input of `head`; StyleGAN2: of the epilogue's `out`). A per-sample adversarial loss tells a fake how to look more
real; this batch statistic also says which kinds of images G draws too often, e.g. one digit over another."""

from torch_utils import training_stats

def feature_distance(real, fake):
    """|E real - E fake|^2 / F for features [N, F], [M, F], estimated without bias (the linear-kernel MMD^2):
    the squared difference of the batch means alone adds each batch's summed variance over its size, which G
    could lower by drawing less varied fakes. Can be slightly negative."""
    d = (real.mean(0) - fake.mean(0)).square()
    for x in (real, fake):
        if x.shape[0] > 1:
            d = d - x.var(0) / x.shape[0]
    return d.mean()

class FeatureMatching:
    side = 'G'
    where = 'main'
    wants_features = True

    def __init__(self, weight, device=None):
        _ = device
        self.weight = weight

    @property
    def active(self):
        return bool(self.weight)

    def term(self, real_logits, gen_logits, real_features, gen_features):
        _ = real_logits, gen_logits
        loss_Gfm = feature_distance(real_features, gen_features)
        training_stats.report('Loss/G/fm', loss_Gfm)
        return loss_Gfm * self.weight
