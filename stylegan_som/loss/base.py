"""The interface between the training loop and a loss."""

#----------------------------------------------------------------------------

class Loss:
    """Interface seen by the training loop.

    `phase` is one of 'Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth'; the loss adds the gradients of that
    phase, multiplied by `gain`, to the parameters that currently require grad. `sync` is False on all but the
    last gradient-accumulation round, so DDP all-reduces once per phase.

    Any running state that shapes the trajectory (moving averages, schedules) must come back from
    `state_dict()` as plain tensors/numbers so a resumed run continues exactly; the snapshot stores it outside
    the network objects, which keeps the pickle loadable by upstream's loader."""

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, sync, gain):
        raise NotImplementedError()

    def set_progress(self, cur_nimg, total_nimg):
        """Called before every training step with the images seen so far and the planned total, for losses
        with schedules (e.g. a neighbourhood width that shrinks over training). Deriving a schedule from these
        two numbers, not from a private counter, keeps it right after a resume."""

    def after_optimizer_step(self, phase):
        """Called after the optimizer step of each phase, for constraints on the weights (e.g. WGAN clipping)."""

    def tick_report(self, stats, pictures=False):
        """What the loss has to say about the tick that just ended: (text fragments for the progress line,
        {name: PIL image}, saved by the loop as <name><kimg>.png, only asked for when `pictures`). `stats` are
        the tick's training statistics, {name: EasyDict(num, mean, std)}. The loop prints and saves what comes
        back and knows no statistic by name."""
        _ = stats, pictures
        return [], {}

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f'{type(self).__name__} has no state to restore, got keys {sorted(state)}')

#----------------------------------------------------------------------------
