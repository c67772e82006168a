"""The step log: what the training loop records each step without waiting for the device.

A GPU runs ahead of the Python that feeds it; any read of a device value (``.item()``, ``float()``)
makes the host wait for the queue to drain. So the loop writes each step's loss and correct count
into a per-epoch device tensor (:meth:`StepLog.record`, a device copy) and reads them back in one
transfer every ``GUARD_EVERY`` steps and at the end of the epoch (:meth:`StepLog.fold`): that is the
loop's only sync. The read adds them into the epoch's running sums (:class:`EpochTotals`) and is the
non-finite guard: a NaN/inf loss stops the run (fp16 may overflow now and then: the gradient scaler
skips such steps on the device, so a few in a row are tolerated there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from utils.distributed import all_reduce_sum

GUARD_EVERY = 50  # steps between reads of the step log: progress bar and non-finite check (one sync each)


@dataclass
class EpochTotals:
    """Running sums of the epoch in progress (saved too, for a mid-epoch resume)."""

    loss_sum: float = 0.0
    correct: float = 0.0
    seen: int = 0
    time_s: float = 0.0  # training time of the epoch (evaluation and file writes are timed apart)
    lr: float = 0.0

    def mean_loss(self) -> float:
        return self.loss_sum / max(1, self.seen)

    def accuracy(self) -> float:
        return 100.0 * self.correct / max(1, self.seen)


class StepLog:
    """Per-step loss sums and correct counts of one epoch, kept on the device until they are read.

    ``on_diverged(step, mean loss, non-finite steps in a row)`` is called (and must raise) when the
    guard stops the run; ``tolerated`` non-finite steps in a row are allowed first (fp16: 5, else 1).
    ``on_read(totals)`` is called after each read (the progress bar shows the running loss);
    ``on_steps(rows)`` gets the rows of each read before the guard looks at them (``--tensorboard``
    writes them): what is logged per step is what this one transfer brought back, never a read of its own.
    """

    def __init__(self, steps: int, start: int, device: torch.device, world_size: int = 1,
                 totals: Optional[EpochTotals] = None, guard_every: int = GUARD_EVERY, tolerated: int = 1,
                 on_diverged: Optional[Callable[[int, float, int], None]] = None,
                 on_read: Optional[Callable[[EpochTotals], None]] = None,
                 on_steps: Optional[Callable[[list[tuple[int, float, float, int]]], None]] = None) -> None:
        self.values = torch.zeros(2, max(1, steps), device=device)  # row 0: loss x batch, row 1: correct
        self.counts: dict[int, int] = {}
        self.read_up_to = start
        self.world_size = world_size  # processes whose equal batches are added at each read
        self.totals = totals if totals is not None else EpochTotals()
        self.guard_every, self.tolerated, self.on_diverged, self.on_read = guard_every, tolerated, on_diverged, on_read
        self.on_steps = on_steps
        self.nonfinite_run = 0

    def record(self, step: int, loss: torch.Tensor, correct: torch.Tensor, count: int) -> None:
        self.values[0, step] = loss * count
        self.values[1, step] = correct
        self.counts[step] = count

    def read(self, up_to: int) -> list[tuple[int, float, float, int]]:
        """(step, loss x batch, correct, batch) of every step recorded since the last read."""
        start, self.read_up_to = self.read_up_to, up_to
        if up_to <= start:
            return []
        # Under torchrun, summed over processes: every process sees the global loss and decides alike.
        values = all_reduce_sum(self.values[:, start:up_to].clone())
        losses, correct = values.tolist()  # the sync
        world = self.world_size
        return [(start + i, losses[i], correct[i], world * self.counts[start + i]) for i in range(up_to - start)]

    def fold(self, up_to: int) -> None:
        """Add the steps recorded since the last read into the totals; a non-finite loss calls ``on_diverged``."""
        totals = self.totals
        rows = self.read(up_to)
        if self.on_steps is not None:  # before the guard: a diverging step is logged too, then the run stops
            self.on_steps(rows)
        for step, loss_sum, correct, count in rows:
            if math.isfinite(loss_sum):
                self.nonfinite_run = 0
                totals.loss_sum += loss_sum
                totals.correct += correct
                totals.seen += count
                continue
            self.nonfinite_run += 1
            if self.nonfinite_run >= self.tolerated and self.on_diverged is not None:
                self.on_diverged(step, loss_sum / count, self.nonfinite_run)
        if self.on_read is not None:
            self.on_read(totals)

    def fold_if_due(self, steps_done: int) -> bool:
        """Fold every ``guard_every`` steps; says whether it did (a point where processes can agree to stop)."""
        due = steps_done % self.guard_every == 0
        if due:
            self.fold(steps_done)
        return due
