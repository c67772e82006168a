"""The training loop: one plain loop for every model and every recipe (learning levels 1 and 3).

:func:`train` is the loop, in one screen: for every epoch, for every batch, the training step
(``utils/training/step.py``: forward under autocast, loss, backward, clipping, optimizer step; one
compiled graph with ``--compile``), the schedule, the EMA and the loss recorded on the device; then the
epoch's evaluation and checkpoint as named calls. What it runs (optimizer, schedule, precision, EMA,
loss) comes from ``utils/modern_trainer.py``: the standard and the modern recipe are the same code with
different configuration. ``fit(model, data, config, run_dir, device)`` builds a :class:`Trainer` (what
one run holds), resumes it if asked, and runs the loop.

The engineering around the loop is in ``utils/training/``, one job a module: ``step_log.py`` (losses read
back every 50 steps, where a NaN/inf loss is caught), ``stopping.py`` (Ctrl-C/SIGTERM save ``last.pt``
and stop; under torchrun the processes agree on the step), ``run_record.py`` (history, metrics, the
raw-or-EMA rule, files, the log line), ``tensorboard_log.py`` and ``state.py`` (what ``last.pt`` holds and
how a run is restored: data order and RNG are functions of (seed, epoch), so a resumed run continues as an
uninterrupted one would).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn
from tqdm import tqdm

from models import count_parameters
from utils.augmentation import build_batch_mixer
from utils.config import TrainConfig
from utils.data_loader import DataBundle
from utils.distributed import Placement, broadcast_buffers
from utils.evaluation import evaluate, tta_views
from utils.modern_trainer import Recipe, build_recipe
from utils.regularization import dropblock_layers, dropblock_prob_at, set_dropblock_prob
from utils.seeds import epoch_rng_seed, seed_everything
from utils.training.checkpoint import save_checkpoint
from utils.training.compiled_step import compile_training
from utils.training.run_record import (better_weights, curves_title, default_eval_every, epoch_entry, epoch_line,
                                       run_metrics, write_metrics)
from utils.training.state import TrainState, restore_training, training_checkpoint
from utils.training.step import train_step
from utils.training.step_log import GUARD_EVERY, EpochTotals, StepLog
from utils.training.stopping import StopRequested, StopSignals, diverged, stopped_by_signal
from utils.training.tensorboard_log import LOG_FOLDER, TensorBoardLog
from utils.visualization import plot_curves


# ------------------------------------------------------------------------------------ the loop
def train(trainer: "Trainer", max_steps: Optional[int] = None) -> dict[str, Any]:
    """Train from ``trainer.state`` to the last epoch; return the metrics (also in ``metrics.json``).

    ``max_steps``: return after that many optimizer steps in all, without evaluating or saving (a
    benchmark's timed window; calling again continues where it returned).
    """
    config, state, recipe, model = trainer.config, trainer.state, trainer.recipe, trainer.model
    # --tensorboard: the writer opens where the run stands (a resume purges what was logged after its checkpoint)
    tensorboard = trainer.tensorboard.open(state.global_step)
    with StopSignals(trainer.placement.distributed, trainer.device) as signals, tensorboard:
        for epoch in range(state.epoch, config.last_epoch):
            log, batches = start_epoch(trainer, epoch)  # data order, RNG, frozen layers, the step log
            for images, labels in batches:
                if state.global_step >= trainer.total_steps:
                    break  # a fractional --epochs: the last epoch ends part-way (a resumed run too)
                images, targets, labels = prepare_batch(trainer, images, labels)  # MixUp/CutMix, DropBlock
                state.totals.lr = recipe.optimizer.param_groups[0]["lr"]  # the LR this step uses
                # forward, loss, backward, clipping, the optimizer step (utils/training/step.py)
                loss, correct = trainer.train_step(trainer.wrapped, recipe, images, targets, labels, trainer.frozen,
                                                   config.clip_grad)
                # the learning rate of the next step, and the average of the weights
                recipe.scheduler.step()
                if recipe.ema is not None:
                    recipe.ema.update_parameters(model)
                state.step_in_epoch += 1
                state.global_step += 1
                if recipe.lookahead is not None:
                    recipe.lookahead.step(state.global_step, trainer.total_steps)
                # loss and correct count stay on the device; read back (one sync) every 50 steps
                log.record(state.step_in_epoch - 1, loss, correct, len(labels))
                if signals.stop_now(log.fold_if_due(state.step_in_epoch)):
                    batches.close()
                    log.fold(state.step_in_epoch)
                    stop_on_signal(trainer, signals.received)
                if state.global_step == max_steps:
                    return trainer.metrics()
            batches.close()
            log.fold(state.step_in_epoch)
            trainer.bank_time()
            end_epoch(trainer, signals)  # evaluate when due, record, save last.pt/best.pt, write the run's files
            if signals.stop_now():  # arrived while files were written: stop at this boundary
                stop_on_signal(trainer, signals.received)
    return trainer.metrics()


def start_epoch(trainer: "Trainer", epoch: int) -> tuple[StepLog, tqdm]:
    """Seed the epoch, set its data order and frozen layers; return its step log and its batches."""
    config, state = trainer.config, trainer.state
    state.epoch = epoch
    if state.step_in_epoch == 0:
        seed_everything(epoch_rng_seed(config.seed, epoch))  # mid-epoch, the checkpoint's RNG is restored
    trainer.data.set_epoch(epoch, state.step_in_epoch)
    trainer.frozen = frozen_parameters(trainer.model, epoch, config.whitening_bias_epochs)
    trainer.clock = time.perf_counter()
    trainer.wrapped.train()
    batches = tqdm(trainer.data.train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not config.progress,
                   leave=False, initial=state.step_in_epoch, total=trainer.steps_per_epoch)
    fp16 = trainer.recipe.precision.dtype == torch.float16  # fp16 overflows now and then; fp32/bf16 never should
    epoch_start = state.global_step - state.step_in_epoch  # --tensorboard numbers each logged step from here
    log = StepLog(trainer.steps_per_epoch, state.step_in_epoch, trainer.device, trainer.placement.world_size,
                  state.totals, trainer.guard_every, config.max_nonfinite_steps if fp16 else 1,
                  on_diverged=lambda step, value, count: stop_diverged(trainer, "loss", value, count, step),
                  on_read=(lambda totals: batches.set_postfix(loss=f"{totals.mean_loss():.3f}",
                                                              acc=f"{totals.accuracy():.1f}")) if config.progress else None,
                  on_steps=((lambda rows: trainer.tensorboard.steps(epoch_start, rows)) if trainer.tensorboard.active
                            else None))
    return log, batches


def prepare_batch(trainer: "Trainer", images: torch.Tensor, labels: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images, targets, labels): this epoch's image size, memory layout, DropBlock's rate now, MixUp/CutMix.

    With mixing, accuracy is counted against each mixed image's dominant label.
    """
    config = trainer.config
    if trainer.state.epoch < config.low_res_epochs:
        # Progressive resizing: the first epochs learn coarse shapes from shrunk images, at a fraction of the
        # FLOPs (24² / 32² of the pixels); the last ones at full size adapt the filters and BatchNorm to it.
        images = nn.functional.interpolate(images, size=config.low_res_size, mode="bilinear", antialias=True)
    if config.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    if config.dropblock > 0:
        set_dropblock_prob(trainer.dropblocks, dropblock_prob_at(trainer.state.global_step / trainer.total_steps,
                                                                 config.dropblock))
    if trainer.mixer is None:
        return images, labels, labels
    images, targets = trainer.mixer(images, labels)
    return images, targets, targets.argmax(1)


def frozen_parameters(model: nn.Module, epoch: int, train_epochs: Optional[int]) -> list[nn.Parameter]:
    """The parameters frozen in ``epoch``: a whitening first layer (speednet's ``whiten``) trains its bias for
    ``train_epochs`` epochs, then freezes it.

    Freezing keeps ``requires_grad``: under torchrun, DDP reduces a fixed set of gradients, and a parameter
    that stops getting one mid-run stalls it. The loop drops a frozen parameter's gradient after the backward
    pass instead (:func:`drop_gradients`), so the optimizer leaves it, and its momentum, alone.
    """
    whiten = getattr(model, "whiten", None)
    if train_epochs is not None and epoch >= train_epochs and whiten is not None and whiten.bias is not None:
        return [whiten.bias]
    return []


# ------------------------------------------------------------------------------------ end of an epoch
def end_epoch(trainer: "Trainer", signals: StopSignals) -> None:
    """Evaluate when due, add the epoch to the history, keep the better weights, write the run's files."""
    state = trainer.state
    probe = probe_epoch(trainer)  # before the epoch's evaluation clock starts: not counted in the run's times
    started = time.perf_counter()
    try:
        evaluated, validated = evaluate_epoch(trainer, signals.during_long_work)
    except StopRequested:  # during evaluation: last.pt keeps the trained epoch; resume evaluates it
        stop_on_signal(trainer, signals.received)
    entry = epoch_entry(state.epoch + 1, state.totals, evaluated, validated, trainer.recipe.ema is not None,
                        time.perf_counter() - started) | probe
    state.history.append(entry)
    state.epoch, state.step_in_epoch, state.totals = state.epoch + 1, 0, EpochTotals()
    if evaluated:
        kept = keep_if_best(trainer, validated or evaluated)
        if kept:  # the run's confusion matrix reuses this evaluation instead of running another
            trainer.best_test_result = evaluated[kept]
    if not trainer.placement.is_main:  # under torchrun, rank 0 alone writes the run's files
        return
    save_checkpoint(trainer.checkpoint(), trainer.run_dir / "last.pt")  # every epoch: a kill loses at most one
    if evaluated:  # the curves change only when there is a new test point
        config = trainer.config
        plot_curves(state.history, trainer.run_dir / "curves.png",
                    title=curves_title(config.model, trainer.data.dataset, config.data_dir))
    # The epoch's wall time includes its evaluation and file writes (metrics.json is rewritten with it).
    entry["epoch_time_s"] = round(entry["train_time_s"] + time.perf_counter() - started, 3)
    write_metrics(trainer.run_dir, trainer.metrics())
    trainer.tensorboard.epoch(entry)  # after last.pt: TensorBoard never shows an epoch a resume would train again
    print(epoch_line(entry, trainer.config.epochs, trainer.eval_every, trainer.mixer is not None), flush=True)


def evaluate_epoch(trainer: "Trainer", should_stop: Callable[[], bool]) -> tuple[dict, dict]:
    """Raw and EMA weights on the test (and validation) images, when this epoch is due; else nothing."""
    config, recipe = trainer.config, trainer.recipe
    number = trainer.state.epoch + 1
    if number % trainer.eval_every != 0 and number != config.last_epoch:
        return {}, {}
    weights = {"raw": trainer.evaluated(), **({"EMA": recipe.ema.module} if recipe.ema is not None else {})}
    loaders = [trainer.data.test_loader] + ([trainer.data.val_loader] if trainer.data.val_loader is not None else [])
    # The test set's predictions are kept: the run's confusion matrix is drawn from the evaluation of best.pt's weights
    results = [{name: evaluate(model, loader, trainer.device, recipe.precision, config.channels_last,
                               keep_predictions=loader is trainer.data.test_loader, should_stop=should_stop,
                               tta=config.tta)
                for name, model in weights.items()}
               for loader in loaders]
    for name, result in results[0].items():
        if not math.isfinite(result["loss"]):  # the outputs overflowed: the run must not go on as "done"
            stop_diverged(trainer, f"test loss of the {name} weights", result["loss"], 1)
    return results[0], results[1] if len(results) > 1 else {}


def probe_epoch(trainer: "Trainer") -> dict[str, float]:
    """``--probe-images``: the weights' accuracy on a fixed test sample (one plain view), and its time apart."""
    if trainer.data.probe_loader is None:
        return {}
    started = time.perf_counter()
    result = evaluate(trainer.evaluated(), trainer.data.probe_loader, trainer.device, trainer.recipe.precision,
                      trainer.config.channels_last)
    return {"probe_acc": round(result["acc"], 4), "probe_time_s": round(time.perf_counter() - started, 3)}


def keep_if_best(trainer: "Trainer", judged: dict[str, dict]) -> Optional[str]:
    """Save ``best.pt`` when the better of raw and EMA weights beat the best so far; return which ("raw", "EMA").

    Judged on the held-out validation images with ``--val-split``, else on the test set (optimistic:
    the test set then picks the model). None: no better weights, nothing saved.
    """
    use = better_weights({name: result["acc"] for name, result in judged.items()})
    if judged[use]["acc"] <= trainer.state.best_acc:
        return None
    trainer.state.best_acc = judged[use]["acc"]
    if trainer.placement.is_main:
        ema = trainer.recipe.ema
        weights = ({k[len("module."):]: v for k, v in ema.state_dict().items() if k.startswith("module.")}
                   if use == "EMA" else None)
        save_checkpoint(trainer.checkpoint(weights, use.lower()), trainer.run_dir / "best.pt")
    return use


# ------------------------------------------------------------------------------------ stopping
def stop_on_signal(trainer: "Trainer", signum: Optional[int]) -> None:
    """Save ``last.pt`` where the loop is (mid-epoch too) and stop with 128 + the signal's number."""
    trainer.bank_time()  # the interrupted epoch's time so far is part of its epoch_time_s
    path = trainer.run_dir / "last.pt"
    if trainer.placement.is_main:
        save_checkpoint(trainer.checkpoint(), path)  # mid-epoch: resume skips the batches already seen
    raise stopped_by_signal(signum, trainer.state.epoch, trainer.state.step_in_epoch, path, trainer.run_dir,
                            trainer.placement.world_size, trainer.placement.is_main)


def stop_diverged(trainer: "Trainer", what: str, value: float, count: int, step: Optional[int] = None) -> None:
    """Stop on a non-finite loss (at ``step``) or test loss, keeping the last good checkpoint."""
    state = trainer.state
    if step is not None:
        state.step_in_epoch = step  # the message names the step that failed
    where = (f"at epoch {state.epoch + 1}, step {state.step_in_epoch + 1} ({count} non-finite in a row)"
             if count > 1 or what == "loss" else f"after epoch {state.epoch + 1}")
    raise diverged(what, value, where, trainer.config.lr, trainer.run_dir / "last.pt")


# ------------------------------------------------------------------------------------ what a run holds
class Trainer:
    """What one run holds, built once: the model as trained, the recipe, the data and the loop's state."""

    def __init__(self, model: nn.Module, data: DataBundle, config: TrainConfig, run_dir: Path,
                 device: torch.device, placement: Placement = Placement()) -> None:
        self.model, self.data, self.config, self.run_dir, self.device = model, data, config, Path(run_dir), device
        self.placement = placement
        self.steps_per_epoch = data.train_loader.steps_per_epoch
        self.total_steps = config.total_steps(self.steps_per_epoch)
        self.recipe: Recipe = build_recipe(model, config, self.steps_per_epoch, device)
        self.mixer = build_batch_mixer(config, data.num_classes)
        self.dropblocks = dropblock_layers(model)  # --dropblock: their rate rises over the run
        # The model the loop runs: wrapped for torchrun (gradients averaged over processes in the
        # backward pass). --compile compiles the whole step (utils/training/compiled_step.py) where it can, else the
        # model, after the optimizer is built, so parameter names (for the decay groups) are the model's
        # own; checkpoints always hold ``model``'s state dict.
        self.wrapped = model
        if placement.distributed:
            self.wrapped = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        self.train_step: Callable[..., tuple[torch.Tensor, torch.Tensor]] = train_step
        self.compiled = None  # what --compile compiled: "step", or "model" with the reason
        if config.compile:
            self.train_step, self.wrapped, self.compiled = compile_training(self.wrapped, self.recipe, config,
                                                                            placement.distributed)
        self.test_image_count = (len(data.test_images) if data.test_images is not None
                                 else data.test_loader.num_images)
        views = len(tta_views(torch.zeros(1, 3, 8, 8), config.tta))  # each test-time view is a forward pass
        self.eval_every = config.eval_every or default_eval_every(
            data.train_loader.num_images, self.test_image_count, (2 if config.ema else 1) * views)
        # Where a non-finite step is not skipped on the device, check every step (and sync).
        self.guard_every = GUARD_EVERY if self.recipe.skips_nonfinite_steps else 1
        # --tensorboard (rank 0 writes); a step's learning rate is the schedule's, a pure function of the step
        scheduler = self.recipe.scheduler
        self.tensorboard = TensorBoardLog(
            self.run_dir / LOG_FOLDER if config.tensorboard and placement.is_main else None, config.to_dict(),
            lambda step: scheduler.base_lrs[0] * scheduler.lr_lambdas[0](step))
        self.state = TrainState()
        self.clock = time.perf_counter()
        # The test evaluation (predictions kept) of the weights best.pt holds, when this run made it
        # (None after a resume that made no better one): the run's confusion matrix is drawn from it.
        self.best_test_result: Optional[dict[str, Any]] = None
        self.frozen: list[nn.Parameter] = []  # parameters whose gradients this epoch drops (frozen_parameters)

    def evaluated(self) -> nn.Module:
        """The model to evaluate: the one the loop runs, except under torchrun, where the DDP wrapper would
        broadcast buffers at every forward, a collective that a process with no test images never joins; there
        the module itself, with rank 0's BatchNorm statistics (what the wrapper's next forward would use)."""
        if not self.placement.distributed:
            return self.wrapped
        broadcast_buffers(self.model)
        return self.model

    def facts(self) -> dict[str, Any]:
        """What ``metrics.json`` says about the run besides its history."""
        data = self.data
        return {"model": self.config.model, "params": count_parameters(self.model), "dataset": data.dataset,
                "num_classes": data.num_classes, "data_mode": data.data_mode, "train_images": data.train_loader.num_images,
                "test_images": self.test_image_count, "device": str(self.device),
                "world_size": self.placement.world_size, "eval_every": self.eval_every,
                "val_images": data.val_loader.num_images if data.val_loader is not None else None}

    def metrics(self) -> dict[str, Any]:
        return run_metrics(self.state.history, self.facts())

    def checkpoint(self, weights: Optional[dict] = None, weights_source: str = "raw") -> dict[str, Any]:
        return training_checkpoint(self.model, self.recipe, self.state, self.config, self.data.class_names,
                                   self.placement.world_size, weights, weights_source, self.data.train_fingerprint,
                                   {"mean": list(self.data.mean), "std": list(self.data.std)})

    def restore(self, path: Path) -> str:
        """Continue from ``path`` (``last.pt``); returns a line saying what resumed."""
        self.state, note = restore_training(path, self.model, self.recipe, self.config, self.data.class_names,
                                            self.placement.world_size, self.steps_per_epoch,
                                            self.data.train_fingerprint)
        return note

    def bank_time(self) -> None:
        """Add the time since the last call to the epoch's total (so an interrupted epoch counts it too)."""
        now = time.perf_counter()
        self.state.totals.time_s += now - self.clock
        self.clock = now


def fit(model: nn.Module, data: DataBundle, config: TrainConfig, run_dir: Path, device: torch.device,
        resume: bool = False, placement: Placement = Placement()) -> dict[str, Any]:
    """Train ``model`` on ``data`` as ``config`` says; write the run's files into ``run_dir``; return the metrics."""
    trainer = Trainer(model, data, config, run_dir, device, placement)
    if resume:
        trainer.restore(Path(run_dir) / "last.pt")
    return train(trainer)
