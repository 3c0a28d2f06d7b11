"""GAN objectives on discriminator logits [N, K] (K heads), one class per module, registered by name in
stylegan_som.plugins.LOSSES. `stylegan_som.loss.StyleGAN2Loss` runs the networks and applies them; see
base.Objective for the interface."""
