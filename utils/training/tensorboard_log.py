"""``--tensorboard``: follow a run live in TensorBoard (``tensorboard --logdir runs``).

The run writes event files into ``RUN_DIR/tensorboard/`` with ``torch.utils.tensorboard.SummaryWriter``:

- ``step/train_loss`` and ``step/lr`` for every optimizer step (x axis: the step; 1 is after the first);
- every number of the epoch's row in ``metrics.json``'s history, under its own name and grouped by kind
  (x axis: the epoch): ``accuracy/train_acc``, ``accuracy/test_acc``, ``accuracy/ema_test_acc``,
  ``accuracy/val_acc``, ``accuracy/probe_acc``, ``loss/train_loss``, ``loss/test_loss``,
  ``time/epoch_time_s``, ``epoch/lr``...; an epoch that was not evaluated has no test point;
- the run's resolved config, as text and as hyperparameters (the HPARAMS tab lays a study's runs side by side).

It adds no work to the training step and no read of the device: the per-step losses are the rows the step
log (``utils/training/step_log.py``) already brings back in its one transfer every 50 steps and at the end of an epoch,
and a step's learning rate is the schedule's, a pure function of the step. Under torchrun, rank 0 alone writes.

A resumed run appends a new event file that opens with a purge at the first step it will write: steps a
killed run logged after its last checkpoint are dropped (TensorBoard's own rule), so the curves never double.
Epochs are written after ``last.pt`` is saved, so no epoch is ever logged ahead of its checkpoint.

This is a leaf module (torch and the optional ``tensorboard`` package only), so the config check can use it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

from utils.errors import UserError

LOG_FOLDER = "tensorboard"  # inside the run folder: `tensorboard --logdir` on a study shows every run
MISSING = ("--tensorboard needs the tensorboard package, which is not installed: pip install -r "
           "requirements-extras.txt (or pip install tensorboard)")
FLUSH_SECONDS = 30  # events reach the file at least this often (and at the end of every epoch)
# Settings that say where a run's files are, not how it trains: left out of the hyperparameters.
NOT_HYPERPARAMETERS = ("output_dir", "resume", "progress", "user_settings", "preset_settings", "rerun_of",
                       "tensorboard", "workers", "cache_dir")
METRICS = ("accuracy/test_acc", "accuracy/ema_test_acc", "accuracy/val_acc", "accuracy/train_acc",
           "loss/train_loss", "loss/test_loss", "time/epoch_time_s")  # the HPARAMS tab's columns


def require_tensorboard() -> None:
    """Raise the one-line :class:`UserError` when the optional package is missing (checked before a run starts)."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard writes through it)
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise UserError(MISSING) from None


def epoch_tag(key: str) -> str:
    """The tag of a history key, grouped by kind so that TensorBoard shows like with like: ``accuracy/test_acc``."""
    for suffix, group in (("_acc", "accuracy"), ("_loss", "loss"), ("_time_s", "time")):
        if key.endswith(suffix):
            return f"{group}/{key}"
    return f"epoch/{key}"


def hyperparameters(settings: dict[str, Any]) -> dict[str, Any]:
    """The config's plain values (numbers, strings, booleans) that change what is trained."""
    return {k: v for k, v in settings.items()
            if k not in NOT_HYPERPARAMETERS and isinstance(v, (bool, int, float, str))}


class TensorBoardLog:
    """The run's TensorBoard writer: ``open(step)`` (a context manager), ``steps``, ``epoch``, ``close``.

    ``log_dir`` None means off (this run has no ``--tensorboard``, or this process is not rank 0): every
    method then returns at once. ``settings``: the resolved config (``TrainConfig.to_dict()``);
    ``lr_at(step)``: the learning rate of optimizer step ``step`` (0-based), from the schedule.
    """

    def __init__(self, log_dir: Optional[Path], settings: dict[str, Any], lr_at: Callable[[int], float]) -> None:
        self.log_dir, self.settings, self.lr_at = log_dir, settings, lr_at
        self.writer = None
        if log_dir is not None:
            require_tensorboard()

    @property
    def active(self) -> bool:
        return self.log_dir is not None

    def open(self, step: int) -> "TensorBoardLog":
        """Start writing, ``step`` optimizer steps into the run (0, or where a resumed run continues)."""
        if self.log_dir is None or self.writer is not None:
            return self
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        # purge_step: events of an earlier session from step + 1 on came after its last checkpoint; drop them.
        self.writer = SummaryWriter(str(self.log_dir), purge_step=step + 1, flush_secs=FLUSH_SECONDS)
        text = json.dumps(self.settings, indent=1)
        self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()), step)  # markdown code
        # Written into this run's own event file (SummaryWriter.add_hparams would make a run of its own), so
        # the HPARAMS tab reads the metrics from this run's scalars.
        for summary in hparams(hyperparameters(self.settings), dict.fromkeys(METRICS, 0.0)):
            self.writer.file_writer.add_summary(summary, step)
        return self

    def __enter__(self) -> "TensorBoardLog":
        return self

    def __exit__(self, *exception: Any) -> None:
        self.close()  # on a stop (signal, diverged loss) too: what was logged reaches the file

    def steps(self, epoch_start: int, rows: list[tuple[int, float, float, int]]) -> None:
        """Loss and learning rate of the steps the step log just read: rows of (step in the epoch, loss x batch,
        correct, batch); ``epoch_start`` is the optimizer steps done before this epoch."""
        if self.writer is None:
            return
        for step, loss_sum, _, count in rows:
            number = epoch_start + step + 1  # after this many optimizer steps
            self.writer.add_scalar("step/train_loss", loss_sum / count, number)
            self.writer.add_scalar("step/lr", self.lr_at(number - 1), number)

    def epoch(self, entry: dict[str, Any]) -> None:
        """The numbers of an epoch's history row (None: not evaluated this epoch), then a flush: live in TensorBoard."""
        if self.writer is None:
            return
        for key, value in entry.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(epoch_tag(key), value, entry["epoch"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
