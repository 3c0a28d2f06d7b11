"""The interface every GAN objective implements.

An objective turns logits into per-sample losses, one column per discriminator head:

    d_real(real_logits [N, K], fake_logits [M, K] or None) -> [N, K]  D's loss on each real sample
    d_fake(fake_logits [M, K], real_logits [N, K] or None) -> [M, K]  D's loss on each fake sample
    g_fake(fake_logits [M, K], real_logits [N, K] or None) -> [M, K]  G's loss on each fake sample
    g_real(real_logits [N, K], fake_logits [M, K])         -> [N, K] or None   G's loss on reals (relativistic)

The caller forms, per head k, D: mean_n h[n, k] d_real[n, k] + mean_m d_fake[m, k] (h = SOM neighbourhood
weights, all 1 for a single head) and G: mean_m g_fake[m, k] + mean_n g_real[n, k], and averages the heads.
With `couples = True` the terms of one side depend on the other side's logits (batch averages, a partition
function over the batch), so the caller computes real and fake logits in one graph for D and also evaluates
D on reals in G's step; otherwise the second argument is None and the passes stay separate, as upstream's.

`defaults` are the regularisers a run with this objective gets unless the command line says otherwise; train.py
copies them into the loss kwargs so training_options.json shows what actually ran:
    r1              R1 penalty on reals with the config's gamma (--gamma)
    r2              R2 penalty on fakes, the same zero-centred gradient penalty, with R1's gamma (--r2-gamma)
    lazy_reg        D's penalties every D_reg_interval steps (upstream's lazy regularisation); False: every step
    path_length     G's path-length regulariser where the config has one
    style_mixing    style-mixing regularisation where the config has it
    gp_weight       WGAN-GP gradient penalty weight (0 = off)
    weight_clip     clamp every D parameter to [-c, c] after each D step (0 = off)
"""

#----------------------------------------------------------------------------

class Objective:
    couples = False
    defaults = dict(r1=True, r2=False, lazy_reg=True, path_length=True, style_mixing=True, gp_weight=0, weight_clip=0)

    def d_real(self, real_logits, fake_logits=None):
        raise NotImplementedError()

    def d_fake(self, fake_logits, real_logits=None):
        raise NotImplementedError()

    def g_fake(self, fake_logits, real_logits=None):
        raise NotImplementedError()

    def g_real(self, real_logits, fake_logits):
        _ = real_logits, fake_logits
        return None

    # How the terms combine; the training runner (stylegan_som.loss.runner) calls these very methods, and
    # d_loss / g_loss reduce their output to the per-head totals [K] (whose mean over heads is minimised).

    def d_fake_term(self, fake_logits, real_logits=None):
        """D's loss on each fake [M, K]; real_logits are read only by a coupled objective."""
        return self.d_fake(fake_logits, real_logits if self.couples else None)

    def d_real_term(self, real_logits, fake_logits=None, real_weights=None):
        """D's loss on each real [N, K], weighted per head by the SOM neighbourhood (None: weight 1)."""
        real = self.d_real(real_logits, fake_logits if self.couples else None)
        if real_weights is not None:
            real = real * real_weights
        return real

    def g_term(self, fake_logits, real_logits=None, fake_weights=None):
        """G's loss: per fake [M, K] for a separable objective (fake_weights, [M, K] or None, weigh the heads per
        fake); per head [K] for a coupled one, which also adds its term on reals."""
        if self.couples and real_logits is None:
            raise ValueError(f'{type(self).__name__}: G\'s loss needs the logits of reals too')
        loss = self.g_fake(fake_logits, real_logits if self.couples else None)
        if fake_weights is not None:
            loss = loss * fake_weights
        if self.couples:
            loss = loss.mean(0)
            extra = self.g_real(real_logits, fake_logits)
            if extra is not None:
                loss = loss + extra.mean(0)
        return loss

    def d_loss(self, real_logits, fake_logits, real_weights=None):
        return (self.d_real_term(real_logits, fake_logits, real_weights).mean(dim=0)
            + self.d_fake_term(fake_logits, real_logits).mean(dim=0))

    def g_loss(self, fake_logits, real_logits=None, fake_weights=None):
        loss = self.g_term(fake_logits, real_logits, fake_weights)
        return loss if self.couples else loss.mean(dim=0)

    def __repr__(self):
        return f'{type(self).__name__}()'

#----------------------------------------------------------------------------

def defaults_of(objective_class):
    """The complete defaults dict of an objective class (missing keys from the base)."""
    return dict(Objective.defaults, **getattr(objective_class, 'defaults', {}))
