"""What a checkpoint holds to resume a run exactly, and how a run is restored from it.

``last.pt`` (every epoch, and mid-epoch when a run is stopped) holds the weights, the optimizer,
schedule, gradient scaler, EMA and Lookahead states, the loop's position (:class:`TrainState`),
the history, the RNG states and the config: with the data order a pure function of (seed, epoch),
that is everything a resumed run needs to continue as an uninterrupted one would. ``best.pt`` is
the same with the weights worth keeping (raw or EMA). Writing and reading the files safely is
``utils/training/checkpoint.py``'s job; this module decides what goes in and what comes back out.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from utils.config import TrainConfig
from utils.errors import UserError
from utils.training.checkpoint import capture_rng_state, check_class_names, load_checkpoint, restore_rng_state
from utils.training.step_log import EpochTotals


@dataclass
class TrainState:
    """Where the loop is: the epoch in progress, the step within it, and what the run has recorded so far."""

    epoch: int = 0  # index of the epoch in progress = epochs completed
    step_in_epoch: int = 0  # optimizer steps done in that epoch
    global_step: int = 0
    best_acc: float = -1.0
    history: list[dict] = field(default_factory=list)
    totals: EpochTotals = field(default_factory=EpochTotals)


def training_checkpoint(model: nn.Module, recipe, state: TrainState, config: TrainConfig, class_names: list[str],
                        world_size: int, weights: Optional[dict] = None, weights_source: str = "raw",
                        data_fingerprint: str = "", normalization: Optional[dict] = None) -> dict[str, Any]:
    """The checkpoint of a run at ``state``; ``weights`` replaces the model's own (best.pt's EMA weights).

    ``normalization`` ({"mean": [...], "std": [...]}) is what a new image needs besides the config:
    predict, export and explain read it (``utils/after/inference.py``).
    """
    return {
        "model": weights if weights is not None else model.state_dict(),
        "weights_source": weights_source,
        "optimizer": recipe.optimizer.state_dict(),
        "scheduler": recipe.scheduler.state_dict(),
        "scaler": recipe.precision.scaler.state_dict() if recipe.precision.scaler is not None else {},
        "ema": recipe.ema.state_dict() if recipe.ema is not None else None,
        "lookahead": recipe.lookahead.state_dict() if recipe.lookahead is not None else None,
        "epoch": state.epoch,
        "step_in_epoch": state.step_in_epoch,
        "global_step": state.global_step,
        "best_acc": state.best_acc,
        "history": state.history,
        "totals": asdict(state.totals),
        "class_names": list(class_names),
        "normalization": normalization,
        "data_fingerprint": data_fingerprint,
        "rng": capture_rng_state(),
        "data_order": {"seed": config.seed, "epoch": state.epoch, "start_batch": state.step_in_epoch},
        "world_size": world_size,
        "config": config.to_dict(),
    }


def restore_training(path: Path, model: nn.Module, recipe, config: TrainConfig, class_names: list[str],
                     world_size: int, steps_per_epoch: int, data_fingerprint: str = "") -> tuple[TrainState, str]:
    """Load ``path`` into the model and recipe; return the loop's state and a line saying what resumed.

    Everything is checked before anything changes (classes, batch size, tensors), so a refused
    resume is a one-line error that leaves the run as it was.
    """
    checkpoint = load_checkpoint(path)
    check_class_names(checkpoint, class_names, path)
    saved_data = checkpoint.get("data_fingerprint")  # (older checkpoints do not have it)
    if saved_data and data_fingerprint and saved_data != data_fingerprint:
        raise UserError(f"cannot resume {path}: it was trained on other training images ({saved_data}; now "
                        f"{data_fingerprint}): images were added, removed or moved; resume on the data it was "
                        f"trained on, or start a new run")
    state = TrainState(checkpoint["epoch"], checkpoint["step_in_epoch"], checkpoint["global_step"],
                       checkpoint["best_acc"], list(checkpoint["history"]), EpochTotals(**checkpoint["totals"]))
    notes = [_check_global_batch(checkpoint, state, config, world_size, steps_per_epoch, path)]
    try:
        model.load_state_dict(checkpoint["model"])
        recipe.optimizer.load_state_dict(checkpoint["optimizer"])
        if recipe.ema is not None and checkpoint["ema"] is not None:
            recipe.ema.load_state_dict(checkpoint["ema"])
        if recipe.lookahead is not None and checkpoint.get("lookahead") is not None:
            recipe.lookahead.load_state_dict(checkpoint["lookahead"])
    except (RuntimeError, ValueError, KeyError) as error:
        raise UserError(f"{path} does not fit this model and recipe ({str(error).splitlines()[0][:150]})") from None
    _rewind_schedule(recipe, state.global_step, checkpoint["scheduler"])
    notes.append(_restore_scaler(recipe, checkpoint, config))
    restore_rng_state(checkpoint["rng"])
    notes = [note for note in notes if note]
    return state, (f"resumed from {path} at epoch {state.epoch + 1}, step {state.step_in_epoch}"
                   + (f" ({'; '.join(notes)})" if notes else ""))


def _check_global_batch(checkpoint: dict, state: TrainState, config: TrainConfig, world_size: int,
                        steps_per_epoch: int, path: Path) -> str:
    """The global batch (per-process batch x processes) lays out the epoch: refuse another one mid-epoch.

    At an epoch boundary a new batch size is fine; the schedule continues at the same fraction of
    training, counted in steps of the new size (``state`` is moved there).
    """
    saved_world = checkpoint.get("world_size", checkpoint["config"].get("world_size", 1))  # older: in the config
    saved_batch = checkpoint["config"].get("batch_size", config.batch_size) * saved_world
    batch = config.batch_size * world_size
    if saved_batch == batch:
        return ""
    if state.step_in_epoch > 0:
        processes = f" x {saved_world} processes" if saved_world > 1 else ""
        raise UserError(f"cannot resume {path} with a global batch of {batch}: it stopped in the "
                        f"middle of epoch {state.epoch + 1} (step {state.step_in_epoch}) with --batch-size "
                        f"{saved_batch // saved_world}{processes}, and the rest of that epoch is laid out in "
                        f"batches of {saved_batch}; resume without --batch-size (and as many processes)")
    state.global_step = state.epoch * steps_per_epoch
    return f"batch size {saved_batch} -> {batch}, schedule at step {state.global_step}"


def _rewind_schedule(recipe, global_step: int, scheduler_state: dict) -> None:
    """Put the learning-rate schedule (a pure function of the step) at ``global_step``."""
    recipe.scheduler.load_state_dict(scheduler_state)
    recipe.scheduler.last_epoch = global_step
    for group, base_lr, factor in zip(recipe.optimizer.param_groups, recipe.scheduler.base_lrs,
                                      recipe.scheduler.lr_lambdas):
        group["lr"] = base_lr * factor(global_step)


def _restore_scaler(recipe, checkpoint: dict, config: TrainConfig) -> str:
    """The gradient scaler's state, when the run resumes in the precision it was saved in."""
    saved = checkpoint["config"]
    same_precision = (saved.get("amp"), saved.get("amp_dtype")) == (config.amp, config.amp_dtype)
    if checkpoint["scaler"] and same_precision and recipe.precision.scaler is not None:
        recipe.precision.scaler.load_state_dict(checkpoint["scaler"])
    elif recipe.precision.dtype == torch.float16:
        return "fp16 loss scaling starts afresh"
    return ""
