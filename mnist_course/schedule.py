"""When a learning-rate scheduler steps, the one rule ``fit`` follows and the LR plots simulate: OneCycleLR,
CyclicLR and :class:`PiecewiseLinear` after every batch (a finished cycle keeps its lowest rate);
ReduceLROnPlateau after every epoch, on a loss; every other scheduler after every epoch."""

import copy
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch.optim import lr_scheduler


class PiecewiseLinear(lr_scheduler.LambdaLR):
    """A learning rate written out as (epoch, rate) points, straight lines between them, stepped per batch:
    ``PiecewiseLinear(opt, [0, 2, 8, 15], [0.05, 0.1, 0.01, 0], steps_per_epoch=469)``."""

    def __init__(self, optimizer: torch.optim.Optimizer, epochs: Sequence[float], lrs: Sequence[float],
                 steps_per_epoch: int) -> None:
        if len(epochs) != len(lrs) or list(epochs) != sorted(epochs):
            raise ValueError(f"need rising epochs, one rate each; got {list(epochs)} and {list(lrs)}")
        base = optimizer.param_groups[0]["lr"]
        super().__init__(optimizer, lambda step: float(np.interp(step / steps_per_epoch, epochs, lrs)) / base)


PER_BATCH = (lr_scheduler.OneCycleLR, lr_scheduler.CyclicLR, PiecewiseLinear)


def scheduler_step(scheduler: object, when: str, loss: float | None = None) -> None:
    """Step ``scheduler`` if it steps ``when`` ("batch" or "epoch"); ``loss`` feeds ReduceLROnPlateau."""
    if scheduler is None or (when == "batch") != isinstance(scheduler, PER_BATCH):
        return
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        scheduler.step(loss)
    elif scheduler.last_epoch < getattr(scheduler, "total_steps", float("inf")) - 1:
        scheduler.step()


def lr_schedule(optimizer: torch.optim.Optimizer, scheduler: object, steps_per_epoch: int, epochs: int,
                losses: Sequence[float] | float = 1.0) -> list[float]:
    """The learning rate of every optimizer step under :func:`scheduler_step`, simulated on copies (the
    originals are left as they are). ReduceLROnPlateau gets ``losses``: one per epoch, or a constant."""
    optimizer, scheduler = copy.deepcopy((optimizer, scheduler))
    lrs: list[float] = []
    with warnings.catch_warnings():  # the copies never call optimizer.step(): silence torch's reminders
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler|Seems like `optimizer\.step")
        for epoch in range(epochs):
            for _ in range(steps_per_epoch):
                lrs.append(optimizer.param_groups[0]["lr"])
                scheduler_step(scheduler, "batch")
            scheduler_step(scheduler, "epoch", losses if isinstance(losses, (int, float)) else losses[epoch])
    return lrs
