"""Regularisers of StyleGAN2Loss, one module each, composed by the runner from this table.

A regulariser is a small class built from keyword arguments (plus `device`) with
    side     'G' or 'D': the network whose phases run it
    where    when the runner calls it:
             'main'  term(real_logits, gen_logits, real_features, gen_features) -> scalar added to G's main loss
                     (wants_features: the runner captures the features D's head scores)
             'pass'  run(loss, batch, sync, gain): its own forward/backward pass in the side's reg phase
             'real'  term(logits, img) -> [N] (or [N, 1] with K heads), added to D's pass over reals in Dreg
             'fake'  the same on D's pass over fakes
             'step'  apply(loss) after each optimizer step of the side
    active   False when its weight is 0: nothing runs (its state, if any, is still saved)
and optionally state_dict() / load_state_dict(state) for running state that a resume must restore.

Each row: name, class name, and {constructor argument: (StyleGAN2Loss keyword, default)}; the first argument is
the weight that switches it on. A new regulariser is one module here plus one row; its keywords are then
StyleGAN2Loss keywords (loss_kwargs in training_options.json). Which ones a run gets by default is the
objective's choice (stylegan_som/losses, Objective.defaults), applied by train.py."""

REGULARISERS = [
    # name              class                                                         keywords: (loss keyword, default)
    ('r1',              'stylegan_som.loss.regularisers.r1.R1',                       dict(gamma=('r1_gamma', 10))),
    ('r2',              'stylegan_som.loss.regularisers.r2.R2',                       dict(gamma=('r2_gamma', 0))),
    ('path_length',     'stylegan_som.loss.regularisers.path_length.PathLength',      dict(weight=('pl_weight', 2),
                            batch_shrink=('pl_batch_shrink', 2), decay=('pl_decay', 0.01))),
    ('gradient_penalty', 'stylegan_som.loss.regularisers.gradient_penalty.GradientPenalty', dict(weight=('gp_weight', 0))),
    ('weight_clip',     'stylegan_som.loss.regularisers.weight_clip.WeightClip',      dict(clip=('weight_clip', 0))),
    ('feature_matching', 'stylegan_som.loss.regularisers.feature_matching.FeatureMatching', dict(weight=('fm_weight', 0))),
    # Soft-CoGAN's couplings of two generators (networks/coupled.py); the classifier: a dotted factory name.
    ('couple_feature',  'stylegan_som.loss.regularisers.couple_feature.CoupleFeature', dict(weight=('couple_feature', 0))),
    ('couple_semantic', 'stylegan_som.loss.regularisers.couple_semantic.CoupleSemantic', dict(weight=('couple_semantic', 0),
                            classifier=('couple_classifier', None))),
    ('couple_cycle',    'stylegan_som.loss.regularisers.couple_cycle.CoupleCycle',     dict(weight=('couple_cycle', 0))),
    ('couple_perceptual', 'stylegan_som.loss.regularisers.couple_perceptual.CouplePerceptual', dict(weight=('couple_perceptual', 0),
                            classifier=('couple_classifier', None))),
]

def loss_keywords():
    """{StyleGAN2Loss keyword: default} of every regulariser."""
    return {key: default for _, _, args in REGULARISERS for key, default in args.values()}
