"""Soft-CoGAN's perceptual coupling (--couple-perceptual): the mean squared distance between the hidden features
of a fixed network (the digit classifier's convolutional `features`, or its output if it has none) of the two
images of each pair."""

from .coupling import Coupling, build_classifier, digits, split_pair

class CouplePerceptual(Coupling):
    name = 'perceptual'

    def __init__(self, weight, classifier=None, device=None):
        super().__init__(weight, device)
        net = build_classifier(classifier, device, 'couple_perceptual') if weight else None
        self.features = getattr(net, 'features', net)

    def distance(self, loss, synthesis, batch, sync):
        gen_img, _ = loss.run_G(batch.gen_z, batch.gen_c, sync=sync)
        feat_a, feat_b = (self.features(digits(x)).float() for x in split_pair(gen_img))
        return (feat_a - feat_b).square().mean(), gen_img
