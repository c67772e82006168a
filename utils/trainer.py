"""The training loop: one plain loop for every model and every recipe.

``fit(model, data, config, run_dir, device)`` trains and writes the run's files as it goes
(``metrics.json``/``.csv``, ``curves.png``, ``last.pt`` and ``best.pt`` after every epoch). What the
loop runs — optimizer, schedule, precision, EMA, loss — comes from ``utils/modern_trainer.py``,
so the standard and the modern recipe are the same code with different configuration.

Speed: :meth:`Trainer.train_step` returns device tensors and never waits for the device. Losses and
correct counts are written into per-epoch device tensors (:class:`StepLog`) and read back once every
``GUARD_EVERY`` steps and at the end of the epoch; a non-finite loss is skipped on the device by the
gradient scaler and fused optimizer (``utils/modern_trainer.Precision``) and reported at that read.
Evaluation runs every ``eval_every`` epochs (chosen so that it stays near 15% of the run unless set).

Reliability: the data order and the RNG of every epoch are functions of (seed, epoch), and the
checkpoint holds everything else, so a resumed run continues as an uninterrupted one would.
SIGINT/SIGTERM finish the current step, save ``last.pt`` (mid-epoch) and stop with 130/143;
a non-finite loss stops the run (after a few skipped steps under fp16) without touching the
last good checkpoint.
"""
from __future__ import annotations

import csv
import json
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn
from tqdm import tqdm

from models import count_parameters
from utils.checkpoint import (atomic_write, capture_rng_state, check_class_names, load_checkpoint, restore_rng_state,
                              save_checkpoint, seed_everything)
from utils.config import TrainConfig
from utils.data_loader import DataBundle
from utils.distributed import Placement, all_reduce_sum, any_process, gather_to_all
from utils.errors import RunStopped, UserError
from utils.evaluation import predict, tta_views
from utils.modern_trainer import Precision, Recipe, build_recipe
from utils.augmentation import build_batch_mixer
from utils.regularization import dropblock_prob_at, set_dropblock_prob
from utils.visualization import plot_curves


GUARD_EVERY = 50  # steps between reads of the step log: progress bar and non-finite check (one sync each)
EVAL_SHARE = 0.15  # the default --eval-every keeps evaluation near this share of a run


@dataclass
class EpochTotals:
    """Running sums of the epoch in progress (saved too, for a mid-epoch resume)."""

    loss_sum: float = 0.0
    correct: float = 0.0
    seen: int = 0
    time_s: float = 0.0  # training time of the epoch (evaluation and file writes are timed apart)
    lr: float = 0.0


class StepLog:
    """Per-step loss sums and correct counts of one epoch, kept on the device until they are read.

    Writing a 0-d tensor into a slot is a device copy; the host never waits. :meth:`read` fetches
    what was written since the last read in one transfer: that is the only sync of the training loop.
    """

    def __init__(self, steps: int, start: int, device: torch.device, world_size: int = 1) -> None:
        self.values = torch.zeros(2, max(1, steps), device=device)  # row 0: loss x batch, row 1: correct
        self.counts: dict[int, int] = {}
        self.read_up_to = start
        self.world_size = world_size  # processes whose equal batches are added at each read

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


def default_eval_every(train_images: int, test_images: int, evaluations: int) -> int:
    """Epochs between evaluations that keep them near ``EVAL_SHARE`` of the run.

    Estimated from image counts, so it is the same on every machine and every run: a training image
    costs about three forward passes (forward and backward), an evaluated image one; ``evaluations``
    is the forward passes per test image: 2 with EMA (raw and EMA weights), times the TTA views.
    """
    eval_cost = evaluations * test_images / (3.0 * max(1, train_images))
    return max(1, math.ceil(eval_cost * (1 - EVAL_SHARE) / EVAL_SHARE - 1e-9))


@dataclass
class TrainState:
    epoch: int = 0  # index of the epoch in progress = epochs completed
    step_in_epoch: int = 0  # optimizer steps done in that epoch
    global_step: int = 0
    best_acc: float = -1.0
    history: list[dict] = field(default_factory=list)
    totals: EpochTotals = field(default_factory=EpochTotals)


class StopSignals:
    """Turn SIGINT/SIGTERM into a flag the loop checks after each step; a second signal stops at once."""

    def __init__(self) -> None:
        self.received: Optional[int] = None
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


def epoch_rng_seed(seed: int, epoch: int) -> int:
    """The seed of the global RNGs (dropout, mixing) at the start of ``epoch``; within 63 bits for any seed."""
    return (seed * 7919 + epoch) % 2**63


# ------------------------------------------------------------------------------------ evaluation
class StopRequested(Exception):
    """Raised inside a long piece of work (an evaluation) when a stop signal arrived."""


@torch.inference_mode()
def evaluate(model: nn.Module, loader, device: torch.device, precision: Optional[Precision] = None,
             channels_last: bool = False, keep_predictions: bool = False,
             should_stop: Callable[[], bool] = lambda: False, tta: str = "none") -> dict[str, Any]:
    """Mean cross-entropy (no smoothing) and accuracy in percent over ``loader``.

    ``tta`` averages the logits over flipped/translated views (``utils/evaluation.py``).
    ``keep_predictions`` adds the predicted classes, labels and softmax probabilities (on the CPU).
    ``should_stop`` is asked after every batch; when it says yes, :class:`StopRequested` is raised,
    so a Ctrl-C during a long evaluation is honoured at once.
    """
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = torch.zeros((), device=device), torch.zeros((), device=device), 0
    predictions, labels_seen, probabilities = [], [], []
    autocast = precision.autocast() if precision else torch.autocast(device.type, enabled=False)
    for images, labels in loader:
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast:
            logits = predict(model, images, tta)  # averaged over the test-time views (``--tta``)
        loss_sum += nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        predicted = logits.argmax(1)
        correct += (predicted == labels).sum()
        seen += len(labels)
        if keep_predictions:
            predictions.append(predicted.cpu())
            labels_seen.append(labels.cpu())
            probabilities.append(logits.float().softmax(1).cpu())
        if should_stop():
            model.train(was_training)
            raise StopRequested
    model.train(was_training)
    # Under torchrun each process evaluated its share of the images: add the sums over processes.
    totals = all_reduce_sum(torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(seen), device=device)]))
    loss_total, correct_total, seen_total = totals.tolist()
    result = {"loss": loss_total / max(1, seen_total), "acc": 100.0 * correct_total / max(1, seen_total)}
    if keep_predictions:
        result["predictions"] = gather_to_all(torch.cat(predictions))
        result["labels"] = gather_to_all(torch.cat(labels_seen))
        result["probabilities"] = gather_to_all(torch.cat(probabilities))
    return result


# ------------------------------------------------------------------------------------ run files
def write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(value, indent=2) + "\n"))


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """``metrics.json`` (everything) and ``metrics.csv`` (the history, one row per epoch)."""
    write_json(run_dir / "metrics.json", metrics)
    history = metrics["history"]

    def write_csv(temporary: Path) -> None:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(history[0]))
            writer.writeheader()
            writer.writerows(history)

    if history:
        atomic_write(run_dir / "metrics.csv", write_csv)


# ------------------------------------------------------------------------------------ training
def freeze_whitening_bias(model: nn.Module, epoch: int, train_epochs: Optional[int]) -> None:
    """A whitening first layer (speednet's ``whiten``) trains its bias for ``train_epochs`` epochs, then freezes it.

    A frozen parameter gets no gradient, so the optimizer leaves it (and its momentum) alone.
    """
    whiten = getattr(model, "whiten", None)
    if train_epochs is not None and whiten is not None and whiten.bias is not None:
        whiten.bias.requires_grad_(epoch < train_epochs)


class Trainer:
    """Holds what one run needs; :meth:`fit` is the loop."""

    def __init__(self, model: nn.Module, data: DataBundle, config: TrainConfig, run_dir: Path,
                 device: torch.device, placement: Placement = Placement()) -> None:
        self.model, self.data, self.config, self.run_dir, self.device = model, data, config, Path(run_dir), device
        self.placement = placement
        self.is_main = placement.is_main  # only rank 0 writes the run's files
        self.steps_per_epoch = data.train_loader.steps_per_epoch
        self.total_steps = self.steps_per_epoch * config.epochs
        self.recipe: Recipe = build_recipe(model, config, self.steps_per_epoch, device)
        self.mixer = build_batch_mixer(config, data.num_classes)
        # compile after the optimizer is built, so parameter names (for the decay groups) are the model's own;
        # checkpoints always hold self.model's state dict (no "_orig_mod." prefixes)
        trained = model
        if placement.distributed:  # gradients averaged over processes in the backward pass
            trained = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                          else None)
        self.train_model = (torch.compile(trained, mode=None if config.compile_mode in (None, "default")
                                          else config.compile_mode) if config.compile else trained)
        self.test_images = len(data.test_images) if data.test_images is not None else data.test_loader.num_images
        views = len(tta_views(torch.zeros(1, 3, 8, 8), config.tta))  # each test-time view is a forward pass
        self.eval_every = config.eval_every or default_eval_every(
            data.train_loader.num_images, self.test_images, (2 if config.ema else 1) * views)
        # Without a scaler that skips non-finite steps on the device, check every step (and sync).
        self.guard_every = GUARD_EVERY if self.recipe.precision.skips_nonfinite_steps else 1
        self.params = count_parameters(model)
        self.state = TrainState()
        self._clock = time.perf_counter()

    # -------------------------------------------------------------------- checkpoints
    def _checkpoint(self, model_state: Optional[dict] = None, weights_source: str = "raw") -> dict[str, Any]:
        recipe = self.recipe
        return {
            "model": model_state if model_state is not None else self.model.state_dict(),
            "weights_source": weights_source,
            "optimizer": recipe.optimizer.state_dict(),
            "scheduler": recipe.scheduler.state_dict(),
            "scaler": recipe.precision.scaler.state_dict(),
            "ema": recipe.ema.state_dict() if recipe.ema is not None else None,
            "lookahead": recipe.lookahead.state_dict() if recipe.lookahead is not None else None,
            "epoch": self.state.epoch,
            "step_in_epoch": self.state.step_in_epoch,
            "global_step": self.state.global_step,
            "best_acc": self.state.best_acc,
            "history": self.state.history,
            "totals": asdict(self.state.totals),
            "class_names": list(self.data.class_names),
            "rng": capture_rng_state(),
            "data_order": {"seed": self.config.seed, "epoch": self.state.epoch,
                           "start_batch": self.state.step_in_epoch},
            "config": self.config.to_dict(),
        }

    def restore(self, path: Path) -> str:
        """Continue from ``path`` (``last.pt``): weights, optimizer, schedule, scaler, EMA, RNG, history.

        Everything is checked before anything changes (classes, batch size, tensors), so a refused
        resume is a one-line error that leaves the run as it was. Returns a line saying what resumed.
        """
        checkpoint = load_checkpoint(path)
        check_class_names(checkpoint, self.data.class_names, path)
        state = TrainState(checkpoint["epoch"], checkpoint["step_in_epoch"], checkpoint["global_step"],
                           checkpoint["best_acc"], list(checkpoint["history"]), EpochTotals(**checkpoint["totals"]))
        # The global batch (per-process batch x processes) lays out the epoch; a torchrun run resumed
        # with another number of processes is another global batch.
        saved_world = checkpoint["config"].get("world_size", 1)
        saved_batch = checkpoint["config"].get("batch_size", self.config.batch_size) * saved_world
        batch = self.config.batch_size * self.placement.world_size
        notes = []
        if saved_batch != batch:
            if state.step_in_epoch > 0:
                processes = f" x {saved_world} processes" if saved_world > 1 else ""
                raise UserError(f"cannot resume {path} with a global batch of {batch}: it stopped in the "
                                f"middle of epoch {state.epoch + 1} (step {state.step_in_epoch}) with --batch-size "
                                f"{saved_batch // saved_world}{processes}, and the rest of that epoch is laid out in "
                                f"batches of {saved_batch}; resume without --batch-size (and as many processes)")
            # At an epoch boundary the new batch size is fine; the schedule continues at the same
            # fraction of training, counted in steps of the new size.
            state.global_step = state.epoch * self.steps_per_epoch
            notes.append(f"batch size {saved_batch} -> {batch}, schedule at step {state.global_step}")
        try:
            self.model.load_state_dict(checkpoint["model"])
            self.recipe.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.recipe.ema is not None and checkpoint["ema"] is not None:
                self.recipe.ema.load_state_dict(checkpoint["ema"])
            if self.recipe.lookahead is not None and checkpoint.get("lookahead") is not None:
                self.recipe.lookahead.load_state_dict(checkpoint["lookahead"])
        except (RuntimeError, ValueError, KeyError) as error:
            raise UserError(f"{path} does not fit this model and recipe ({str(error).splitlines()[0][:150]})") from None
        self.recipe.scheduler.load_state_dict(checkpoint["scheduler"])
        self.recipe.scheduler.last_epoch = state.global_step
        for group, base_lr, factor in zip(self.recipe.optimizer.param_groups, self.recipe.scheduler.base_lrs,
                                          self.recipe.scheduler.lr_lambdas):
            group["lr"] = base_lr * factor(state.global_step)
        saved = checkpoint["config"]
        same_precision = (saved.get("amp"), saved.get("amp_dtype")) == (self.config.amp, self.config.amp_dtype)
        if checkpoint["scaler"] and same_precision and self.recipe.precision.scaler.is_enabled():
            self.recipe.precision.scaler.load_state_dict(checkpoint["scaler"])
        elif self.recipe.precision.dtype == torch.float16:
            notes.append("fp16 loss scaling starts afresh")
        self.state = state
        restore_rng_state(checkpoint["rng"])
        return (f"resumed from {path} at epoch {state.epoch + 1}, step {state.step_in_epoch}"
                + (f" ({'; '.join(notes)})" if notes else ""))

    # -------------------------------------------------------------------- metrics
    def metrics(self) -> dict[str, Any]:
        history = self.state.history
        evaluated = [h for h in history if h["test_acc"] is not None]
        best_of = [max(h["test_acc"], h.get("ema_test_acc") or -1.0) for h in evaluated]
        return {
            "model": self.config.model,
            "params": self.params,
            "dataset": self.data.dataset,
            "data_mode": self.data.data_mode,
            "train_images": self.data.train_loader.num_images,
            "test_images": self.test_images,
            "device": str(self.device),
            "eval_every": self.eval_every,
            "history": history,
            "final_test_acc": best_of[-1] if best_of else None,  # the headline
            "best_test_acc": max(best_of) if best_of else None,  # chosen on the test set: optimistic
            "best_epoch": evaluated[best_of.index(max(best_of))]["epoch"] if best_of else None,
            "best_pt_chosen_on": "validation" if self.data.val_loader is not None else "test (optimistic)",
            **self._validation_summary(evaluated),
            "train_time_s": round(sum(h.get("train_time_s", 0.0) for h in history), 2),  # (older runs lack it)
            "eval_time_s": round(sum(h.get("eval_time_s", 0.0) for h in history), 2),
            "total_time_s": round(sum(h["epoch_time_s"] for h in history), 2),
        }

    def _validation_summary(self, evaluated: list[dict]) -> dict[str, Any]:
        """With --val-split: the epoch the validation images pick, and its test accuracy (honest)."""
        scored = [(max(h["val_acc"], h.get("ema_val_acc") or -1.0), h) for h in evaluated if "val_acc" in h]
        if not scored:
            return {}
        best_val, entry = max(scored, key=lambda pair: pair[0])
        use_ema = (entry.get("ema_val_acc") or -1.0) > entry["val_acc"]
        return {"val_images": self.data.val_loader.num_images, "best_val_acc": best_val,
                "best_val_epoch": entry["epoch"],
                "test_acc_at_best_val": entry["ema_test_acc"] if use_ema else entry["test_acc"]}

    # -------------------------------------------------------------------- the loop
    def fit(self) -> dict[str, Any]:
        config = self.config
        with StopSignals() as signals:
            for epoch in range(self.state.epoch, config.epochs):
                self.state.epoch = epoch
                if self.state.step_in_epoch == 0:
                    seed_everything(epoch_rng_seed(config.seed, epoch))  # mid-epoch, the checkpoint's RNG is restored
                self.data.set_epoch(epoch, self.state.step_in_epoch)
                freeze_whitening_bias(self.model, epoch, config.whitening_bias_epochs)
                self._clock = time.perf_counter()
                self.train_one_epoch(signals)
                # Under torchrun an evaluation runs to its end on every process (its sums are collective).
                distributed = self.placement.distributed
                try:
                    self.end_epoch(should_stop=(lambda: False) if distributed else lambda: signals.received is not None)
                except StopRequested:  # during evaluation: last.pt keeps the trained epoch; resume evaluates it
                    self._stop_on_signal(signals.received)
                # arrived while files were written: stop at this boundary (every process alike)
                if any_process(signals.received is not None, self.device) if distributed else signals.received:
                    self._stop_on_signal(signals.received)
        return self.metrics()

    def _bank_time(self) -> None:
        """Add the time since the last call to the epoch's total (so an interrupted epoch counts it too)."""
        now = time.perf_counter()
        self.state.totals.time_s += now - self._clock
        self._clock = now

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns (loss, correct count) as device tensors. Nothing here waits for the device."""
        recipe, scaler = self.recipe, self.recipe.precision.scaler
        # 1. batch mixing: soft targets (N, C); accuracy is then counted against the dominant label
        targets = labels
        if self.mixer is not None:
            images, targets = self.mixer(images, labels)
            labels = targets.argmax(1)
        # 2. forward under autocast (a no-op context in fp32)
        with recipe.precision.autocast():
            logits = self.train_model(images)
            loss = recipe.loss(logits.float(), targets)
        # 3. backward; unscale_ finds inf/NaN gradients (a non-finite loss gives them), and the fused
        #    optimizer then skips the step on the device: it never reaches the weights
        recipe.optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(recipe.optimizer)
        if self.config.clip_grad:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad, foreach=True)
        scaler.step(recipe.optimizer)
        scaler.update()
        recipe.scheduler.step()
        if recipe.ema is not None:
            recipe.ema.update_parameters(self.model)
        return loss.detach(), (logits.argmax(1) == labels).sum()

    def train_one_epoch(self, signals: StopSignals) -> None:
        config, state = self.config, self.state
        self.train_model.train()
        log = StepLog(self.steps_per_epoch, state.step_in_epoch, self.device, self.placement.world_size)
        distributed = self.placement.distributed
        self._nonfinite_run = 0
        batches = tqdm(self.data.train_loader, desc=f"epoch {state.epoch + 1}/{config.epochs}",
                       disable=not config.progress, leave=False, initial=state.step_in_epoch,
                       total=self.steps_per_epoch)
        for images, labels in batches:
            if config.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            if config.dropblock > 0:
                set_dropblock_prob(self.model, dropblock_prob_at(state.global_step / self.total_steps, config.dropblock))
            state.totals.lr = self.recipe.optimizer.param_groups[0]["lr"]  # the LR this step uses (a host float)
            loss, correct = self.train_step(images, labels)
            log.record(state.step_in_epoch, loss, correct, len(labels))
            state.step_in_epoch += 1
            state.global_step += 1
            if self.recipe.lookahead is not None:
                self.recipe.lookahead.step(state.global_step, self.total_steps)
            at_guard = state.step_in_epoch % self.guard_every == 0
            if at_guard:
                self._read_log(log)
                if config.progress:
                    batches.set_postfix(loss=f"{state.totals.loss_sum / max(1, state.totals.seen):.3f}",
                                        acc=f"{100 * state.totals.correct / max(1, state.totals.seen):.1f}")
            # Under torchrun the processes agree to stop at the same step (at a log read: one collective).
            stop = (any_process(signals.received is not None, self.device) if at_guard else False) if distributed \
                else signals.received is not None
            if stop:
                batches.close()
                self._read_log(log)
                self._stop_on_signal(signals.received)
        batches.close()
        self._read_log(log)
        self._bank_time()

    def _read_log(self, log: StepLog) -> None:
        """Fold the steps logged since the last read into the totals; stop on a non-finite loss."""
        totals, fp16 = self.state.totals, self.recipe.precision.dtype == torch.float16
        for step, loss_sum, correct, count in log.read(self.state.step_in_epoch):
            if math.isfinite(loss_sum):
                self._nonfinite_run = 0
                totals.loss_sum += loss_sum
                totals.correct += correct
                totals.seen += count
                continue
            # fp16 overflows now and then (the scaler skips those steps); fp32/bf16 never should
            self._nonfinite_run += 1
            if not fp16 or self._nonfinite_run >= self.config.max_nonfinite_steps:
                self.state.step_in_epoch = step  # the message names the step that failed
                self._stop_nonfinite("loss", loss_sum / count, self._nonfinite_run)

    def end_epoch(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Evaluate (raw and EMA) when this epoch is due, record, and write the run's files."""
        config, recipe, state = self.config, self.recipe, self.state
        number = state.epoch + 1
        started = time.perf_counter()
        evaluated = {}
        if number % self.eval_every == 0 or number == config.epochs:
            evaluated["raw"] = evaluate(self.train_model, self.data.test_loader, self.device, recipe.precision,
                                        config.channels_last, should_stop=should_stop, tta=config.tta)
            if recipe.ema is not None:
                evaluated["EMA"] = evaluate(recipe.ema.module, self.data.test_loader, self.device, recipe.precision,
                                            config.channels_last, should_stop=should_stop, tta=config.tta)
        validated = {}
        if evaluated and self.data.val_loader is not None:  # --val-split: best.pt is chosen on these
            validated["raw"] = evaluate(self.train_model, self.data.val_loader, self.device, recipe.precision,
                                        config.channels_last, should_stop=should_stop, tta=config.tta)
            if recipe.ema is not None:
                validated["EMA"] = evaluate(recipe.ema.module, self.data.val_loader, self.device, recipe.precision,
                                            config.channels_last, should_stop=should_stop, tta=config.tta)
        for name, result in evaluated.items():
            if not math.isfinite(result["loss"]):  # the outputs overflowed: the run must not go on as "done"
                self._stop_nonfinite(f"test loss of the {name} weights", result["loss"], 1)
        eval_time = time.perf_counter() - started
        raw, ema = evaluated.get("raw"), evaluated.get("EMA")
        totals = state.totals
        entry = {
            "epoch": number,
            "train_loss": round(totals.loss_sum / max(1, totals.seen), 6),
            "train_acc": round(100.0 * totals.correct / max(1, totals.seen), 4),
            "test_loss": round(raw["loss"], 6) if raw else None,
            "test_acc": round(raw["acc"], 4) if raw else None,
        }
        if recipe.ema is not None:
            entry["ema_test_loss"] = round(ema["loss"], 6) if ema else None
            entry["ema_test_acc"] = round(ema["acc"], 4) if ema else None
        if validated:
            entry["val_acc"] = round(validated["raw"]["acc"], 4)
            if "EMA" in validated:
                entry["ema_val_acc"] = round(validated["EMA"]["acc"], 4)
        entry["lr"] = totals.lr
        entry["train_time_s"] = round(totals.time_s, 3)
        entry["eval_time_s"] = round(eval_time, 3)
        entry["epoch_time_s"] = round(totals.time_s + eval_time, 3)  # the file writes are added below
        state.history.append(entry)
        state.epoch += 1
        state.step_in_epoch = 0
        state.totals = EpochTotals()

        # best.pt keeps whichever of raw and EMA weights scored higher: on the held-out validation
        # images with --val-split, else on the test set (optimistic: the test set then picks the model)
        if raw is not None:
            judged = validated or evaluated
            use_ema = "EMA" in judged and judged["EMA"]["acc"] > judged["raw"]["acc"]
            score = judged["EMA"]["acc"] if use_ema else judged["raw"]["acc"]
            if score > state.best_acc:
                state.best_acc = score
                weights = ({k[len("module."):]: v for k, v in recipe.ema.state_dict().items()
                            if k.startswith("module.")} if use_ema else None)
                if self.is_main:
                    save_checkpoint(self._checkpoint(weights, "ema" if use_ema else "raw"), self.run_dir / "best.pt")
        if not self.is_main:  # under torchrun, rank 0 alone writes the run's files
            return
        save_checkpoint(self._checkpoint(), self.run_dir / "last.pt")  # every epoch: a kill loses at most one
        if raw is not None:  # the curves change only when there is a new test point
            source = Path(config.data_dir).name if self.data.dataset == "folder" else self.data.dataset
            plot_curves(state.history, self.run_dir / "curves.png", title=f"{config.model} on {source}")
        # The epoch's wall time includes its evaluation and file writes (metrics.json is rewritten with it).
        entry["epoch_time_s"] = round(entry["train_time_s"] + time.perf_counter() - started, 3)
        write_metrics(self.run_dir, self.metrics())
        self._log_epoch(entry)

    def _log_epoch(self, entry: dict) -> None:
        mixed = " (vs dominant label)" if self.mixer is not None else ""
        test = (f" | test loss {entry['test_loss']:.4f} acc {entry['test_acc']:.2f}%" if entry["test_acc"] is not None
                else f" | (evaluated every {self.eval_every} epochs)")
        if entry.get("ema_test_acc") is not None:
            test += f" | ema test {entry['ema_test_acc']:.2f}%"
        print(f"epoch {entry['epoch']:>3}/{self.config.epochs} | train loss {entry['train_loss']:.4f} "
              f"acc{mixed} {entry['train_acc']:.2f}%{test} | lr {entry['lr']:.2e} | {entry['epoch_time_s']:.1f}s "
              f"(eval {entry['eval_time_s']:.1f}s)", flush=True)

    # -------------------------------------------------------------------- stopping
    def _stop_on_signal(self, signum: Optional[int]) -> None:
        signum = signum or signal.SIGTERM  # a torchrun process stopping because another one was signalled
        self._bank_time()  # the interrupted epoch's time so far is part of its epoch_time_s
        path = self.run_dir / "last.pt"
        if self.is_main:
            save_checkpoint(self._checkpoint(), path)  # mid-epoch: resume skips the batches already seen
        state = self.state
        where = (f"after epoch {state.epoch}" if state.step_in_epoch == 0 else
                 f"at epoch {state.epoch + 1}, step {state.step_in_epoch}")
        raise RunStopped(f"{signal.Signals(signum).name} received: stopped {where}; saved {path}; "
                         f"continue with --resume --output-dir {self.run_dir}", 128 + signum)

    def _stop_nonfinite(self, what: str, value: float, count: int) -> None:
        last = self.run_dir / "last.pt"
        kept = f"last good checkpoint: {last}" if last.exists() else "no checkpoint was written yet"
        where = (f"at epoch {self.state.epoch + 1}, step {self.state.step_in_epoch + 1} ({count} non-finite in a row)"
                 if count > 1 or what == "loss" else f"after epoch {self.state.epoch + 1}")
        raise RunStopped(f"{what} is {value} {where}: training diverged; try a lower --lr (now {self.config.lr:g}) "
                         f"or --clip-grad 1.0; {kept}", 3)


def fit(model: nn.Module, data: DataBundle, config: TrainConfig, run_dir: Path, device: torch.device,
        resume: bool = False, placement: Placement = Placement()) -> dict[str, Any]:
    """Train ``model`` on ``data`` as ``config`` says; write the run's files into ``run_dir``; return the metrics."""
    trainer = Trainer(model, data, config, run_dir, device, placement)
    if resume:
        trainer.restore(Path(run_dir) / "last.pt")
    return trainer.fit()
