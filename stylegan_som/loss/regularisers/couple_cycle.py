"""Soft-CoGAN's latent cycle (--couple-cycle): an encoder E (the coupled synthesis's `encoder`, trained with G)
maps both images of a pair back to their latent: |E(G_A(z)) - z|^2 + |E(G_B(z)) - z|^2, each a mean over the
latent's entries and the batch."""

from .coupling import Coupling, split_pair

class CoupleCycle(Coupling):
    name = 'cycle'

    def distance(self, loss, synthesis, batch, sync):
        if synthesis.encoder is None:
            raise ValueError('couple_cycle: the coupled generator has no encoder (build it with encoder=True)')
        gen_img, _ = loss.run_G(batch.gen_z, batch.gen_c, sync=sync)
        z = batch.gen_z.float()
        img_a, img_b = split_pair(gen_img)
        return (synthesis.encoder(img_a) - z).square().mean() + (synthesis.encoder(img_b) - z).square().mean(), gen_img
