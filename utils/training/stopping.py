"""Stopping a run cleanly: on Ctrl-C/SIGTERM, and when training diverges.

SIGINT/SIGTERM become a flag the loop checks after each step (:class:`StopSignals`); the run then
saves ``last.pt`` (mid-epoch) and stops with exit code 130/143 and a line saying how to continue.
A second signal stops at once. Under torchrun the processes must stop at the same step (they meet
in collectives), so they agree on it at the step log's reads, where they exchange one flag.
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Optional

import torch

from utils.distributed import any_process
from utils.errors import RunStopped


class StopRequested(Exception):
    """Raised inside a long piece of work (an evaluation) when a stop signal arrived."""


class StopSignals:
    """Turn SIGINT/SIGTERM into a flag the loop checks after each step; a second signal stops at once."""

    def __init__(self, distributed: bool = False, device: torch.device = torch.device("cpu")) -> None:
        self.received: Optional[int] = None
        self.distributed, self.device = distributed, device
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:  # asked twice: the user wants out now
            raise KeyboardInterrupt
        self.received = signum

    def __enter__(self) -> "StopSignals":
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def stop_now(self, can_agree: bool = True) -> bool:
        """Stop here? Alone: whenever a signal arrived. Under torchrun: only where all processes can agree
        (``can_agree``: a step-log read or an epoch's end), and then every process alike (one collective)."""
        if not self.distributed:
            return self.received is not None
        return can_agree and any_process(self.received is not None, self.device)

    def during_long_work(self) -> bool:
        """Asked inside an evaluation; under torchrun never (an evaluation's sums are collective: it runs to its end)."""
        return not self.distributed and self.received is not None


def stopped_by_signal(signum: Optional[int], epoch: int, step_in_epoch: int, saved: Path, run_dir: Path,
                      world_size: int = 1, is_main: bool = True) -> RunStopped:
    """The error that ends a run stopped by a signal, saying where it stopped and how to continue.

    Under torchrun every process stops at the same step with the same message: only rank 0 says it
    (the others stop quietly), and the way to continue is the same torchrun command with --resume.
    """
    signum = signum or signal.SIGTERM  # a torchrun process stopping because another one was signalled
    where = f"after epoch {epoch}" if step_in_epoch == 0 else f"at epoch {epoch + 1}, step {step_in_epoch}"
    again = (f"run the same torchrun command (--nproc_per_node {world_size}) with --resume --output-dir {run_dir}"
             if world_size > 1 else f"continue with --resume --output-dir {run_dir}")
    return RunStopped(f"{signal.Signals(signum).name} received: stopped {where}; saved {saved}", 128 + signum,
                      quiet=not is_main, advice=again)


def diverged(what: str, value: float, where: str, lr: float, last: Path) -> RunStopped:
    """The error that ends a run whose loss became NaN or infinite; the last good checkpoint is kept."""
    kept = f"last good checkpoint: {last}" if last.exists() else "no checkpoint was written yet"
    return RunStopped(f"{what} is {value} {where}: training diverged; try a lower --lr (now {lr:g}) "
                      f"or --clip-grad 1.0; {kept}", 3)
