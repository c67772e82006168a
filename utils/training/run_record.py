"""The run's record: one entry per epoch, the metrics, the weights worth keeping, and the files rank 0 writes.

- :func:`epoch_entry`: the history row of an epoch (train loss/accuracy, test and validation
  accuracies of the raw and EMA weights when evaluated, learning rate, times);
- :func:`better_weights`: the one rule that picks raw or EMA weights (the higher score);
- :func:`run_metrics`: ``metrics.json``: the history and the headline (the *last* evaluated epoch's
  accuracy; the best epoch is reported too, flagged as chosen on the test set unless
  ``--val-split`` chose it on held-out training images);
- :func:`write_run_files`: ``metrics.json``/``.csv`` and ``curves.png``; :func:`epoch_line`: the log line.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Optional

from utils.files import atomic_write, write_json
from utils.training.step_log import EpochTotals

EVAL_SHARE = 0.15  # the default --eval-every keeps evaluation near this share of a run


def default_eval_every(train_images: int, test_images: int, evaluations: int) -> int:
    """Epochs between evaluations that keep them near ``EVAL_SHARE`` of the run.

    Estimated from image counts, so it is the same on every machine and every run: a training image
    costs about three forward passes (forward and backward), an evaluated image one; ``evaluations``
    is the forward passes per test image: 2 with EMA (raw and EMA weights), times the TTA views.
    """
    eval_cost = evaluations * test_images / (3.0 * max(1, train_images))
    return max(1, math.ceil(eval_cost * (1 - EVAL_SHARE) / EVAL_SHARE - 1e-9))


def better_weights(scores: dict[str, float]) -> str:
    """``"EMA"`` when the EMA weights scored higher than the raw ones, else ``"raw"``."""
    return "EMA" if scores.get("EMA", -1.0) > scores["raw"] else "raw"


def epoch_entry(number: int, totals: EpochTotals, evaluated: dict, validated: dict, has_ema: bool,
                eval_time: float) -> dict[str, Any]:
    """The history row of epoch ``number`` (1-based); accuracies are None when the epoch was not evaluated."""
    raw, ema = evaluated.get("raw"), evaluated.get("EMA")
    entry = {
        "epoch": number,
        "train_loss": round(totals.mean_loss(), 6),
        "train_acc": round(totals.accuracy(), 4),
        "test_loss": round(raw["loss"], 6) if raw else None,
        "test_acc": round(raw["acc"], 4) if raw else None,
    }
    if has_ema:
        entry["ema_test_loss"] = round(ema["loss"], 6) if ema else None
        entry["ema_test_acc"] = round(ema["acc"], 4) if ema else None
    if validated:
        entry["val_acc"] = round(validated["raw"]["acc"], 4)
        if "EMA" in validated:
            entry["ema_val_acc"] = round(validated["EMA"]["acc"], 4)
    entry["lr"] = totals.lr
    entry["train_time_s"] = round(totals.time_s, 3)
    entry["eval_time_s"] = round(eval_time, 3)
    entry["epoch_time_s"] = round(totals.time_s + eval_time, 3)  # the file writes are added when written
    return entry


def _scores(entry: dict, prefix: str) -> dict[str, float]:
    scores = {"raw": entry[f"{prefix}_acc"]}
    if entry.get(f"ema_{prefix}_acc") is not None:
        scores["EMA"] = entry[f"ema_{prefix}_acc"]
    return scores


def run_metrics(history: list[dict], facts: dict[str, Any]) -> dict[str, Any]:
    """``metrics.json``: the run's ``facts`` (model, data, device...), its history and its summary."""
    evaluated = [h for h in history if h["test_acc"] is not None]
    best_of = [_scores(h, "test")[better_weights(_scores(h, "test"))] for h in evaluated]
    return {
        **{k: v for k, v in facts.items() if k != "val_images"},
        "history": history,
        "final_test_acc": best_of[-1] if best_of else None,  # the headline
        "best_test_acc": max(best_of) if best_of else None,  # chosen on the test set: optimistic
        "best_epoch": evaluated[best_of.index(max(best_of))]["epoch"] if best_of else None,
        "best_pt_chosen_on": "validation" if facts.get("val_images") else "test (optimistic)",
        **_validation_summary(evaluated, facts.get("val_images")),
        "train_time_s": round(sum(h.get("train_time_s", 0.0) for h in history), 2),  # (older runs lack it)
        "eval_time_s": round(sum(h.get("eval_time_s", 0.0) for h in history), 2),
        "total_time_s": round(sum(h["epoch_time_s"] for h in history), 2),
    }


def _validation_summary(evaluated: list[dict], val_images: Optional[int]) -> dict[str, Any]:
    """With --val-split: the epoch the validation images pick, and its test accuracy (honest)."""
    scored = [(h, better_weights(_scores(h, "val"))) for h in evaluated if "val_acc" in h]
    if not scored:
        return {}
    entry, weights = max(scored, key=lambda pair: _scores(pair[0], "val")[pair[1]])
    return {"val_images": val_images, "best_val_acc": _scores(entry, "val")[weights],
            "best_val_epoch": entry["epoch"],
            "test_acc_at_best_val": _scores(entry, "test")[weights]}


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


def epoch_line(entry: dict, epochs: int, eval_every: int, mixed: bool) -> str:
    """The line printed after each epoch."""
    test = (f" | test loss {entry['test_loss']:.4f} acc {entry['test_acc']:.2f}%" if entry["test_acc"] is not None
            else f" | (evaluated every {eval_every} epochs)")
    if entry.get("ema_test_acc") is not None:
        test += f" | ema test {entry['ema_test_acc']:.2f}%"
    if entry.get("probe_acc") is not None:
        test += f" | probe {entry['probe_acc']:.1f}%"
    return (f"epoch {entry['epoch']:>3}/{epochs} | train loss {entry['train_loss']:.4f} "
            f"acc{' (vs dominant label)' if mixed else ''} {entry['train_acc']:.2f}%{test} | lr {entry['lr']:.2e} | "
            f"{entry['epoch_time_s']:.1f}s (eval {entry['eval_time_s']:.1f}s)")


def curves_title(model: str, dataset: str, data_dir: str) -> str:
    return f"{model} on {Path(data_dir).name if dataset == 'folder' else dataset}"

