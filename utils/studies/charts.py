"""The charts of a study (``benchmark_all.py``): accuracy per arm over seeds, accuracy against time, curves,
calibration, and each technique's difference at several budgets.

They draw what :mod:`utils.studies.report` summarized; the pictures of a single run are in
``utils/visualization.py``, whose figure saving they share.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib.ticker

from utils.studies.statistics import calibration_bins, expected_calibration_error
from utils.visualization import plt, save_figure  # pyplot on the Agg backend: no screen needed


def _finished(summary: dict) -> list[tuple[str, dict]]:
    return [(key, row) for key, row in summary.items() if row["final_test_acc"] is not None]


def plot_benchmark_accuracy(summary: dict, path: Path) -> None:
    """Final test accuracy per experiment, mean with the standard deviation over seeds as error bars."""
    rows = _finished(summary)
    fig, axis = plt.subplots(figsize=(max(6, 0.7 * len(rows) + 2), 4.5))
    if rows:
        names = [key for key, _ in rows]
        means = [row["final_test_acc"][0] for _, row in rows]
        stds = [row["final_test_acc"][1] or 0.0 for _, row in rows]  # one seed: no error bar
        colors = [f"C{sorted({k.split('/')[0] for k in names}).index(k.split('/')[0])}" for k in names]
        axis.bar(range(len(rows)), means, yerr=stds, capsize=4, color=colors)
        axis.set_xticks(range(len(rows)), names, rotation=45, ha="right", fontsize=8)
        for i, (mean, row) in enumerate(zip(means, (r for _, r in rows))):
            axis.text(i, mean, f"{mean:.1f}\n(n={row['seeds']})", ha="center", va="bottom", fontsize=7)
        trained = [(i, row["final_train_acc"][0]) for i, (_, row) in enumerate(rows) if row.get("final_train_acc")]
        if trained:  # far above its bar, the network memorized its training set
            axis.scatter(*zip(*trained), marker="_", s=400, linewidths=2, color="black", zorder=3,
                         label="training accuracy, last epoch (augmented batches)")
            axis.legend(fontsize=7, loc="upper right")
        top = max([m + s for m, s in zip(means, stds)] + [acc for _, acc in trained])
        axis.set_ylim(0, top * (1.3 if trained else 1.18))  # room for the labels and the legend
    axis.set_ylabel("final test accuracy (%)")
    axis.set_title("final test accuracy, mean ± std over seeds")
    axis.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_accuracy_vs_time(summary: dict, path: Path) -> None:
    """Each experiment a point: training time against final test accuracy, error bars both ways."""
    fig, axis = plt.subplots(figsize=(7, 5))
    for i, (key, row) in enumerate(_finished(summary)):
        (time_mean, time_std), (acc_mean, acc_std) = row["train_time_s"], row["final_test_acc"]
        axis.errorbar(time_mean, acc_mean, xerr=time_std or 0.0, yerr=acc_std or 0.0, fmt="o", capsize=3,
                      color=f"C{i % 10}",
                      label=key)
        axis.annotate(key.split("/")[-1], (time_mean, acc_mean), textcoords="offset points", xytext=(4, 4),
                      fontsize=7)
    axis.set_xlabel("training time (s)")
    axis.set_ylabel("final test accuracy (%)")
    axis.set_title("accuracy against training time (mean ± std over seeds)")
    axis.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_benchmark_curves(summary: dict, path: Path) -> None:
    """Test accuracy per epoch of every experiment: mean over seeds, shaded ± std."""
    fig, axis = plt.subplots(figsize=(8, 5))
    for i, (key, row) in enumerate(_finished(summary)):
        points = [(epoch + 1, mean, std) for epoch, (mean, std) in enumerate(row["curve"]) if mean == mean]
        if not points:
            continue
        epochs, means, stds = zip(*points)
        color = f"C{i % 10}"
        axis.plot(epochs, means, "o-", color=color, label=key, markersize=3)
        axis.fill_between(epochs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                          color=color, alpha=0.15)
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("test accuracy per epoch (mean over seeds, ± std shaded)")
    axis.grid(alpha=0.3)
    if axis.lines:
        axis.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_reliability(pooled: dict, path: Path, bins: int = 15) -> None:
    """Reliability diagram (accuracy against confidence per bin) of each named set of test predictions."""

    fig, axis = plt.subplots(figsize=(5.5, 5))
    axis.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    for i, (name, (probabilities, labels)) in enumerate(pooled.items()):
        filled = [b for b in calibration_bins(probabilities, labels, bins) if b["count"]]
        ece = expected_calibration_error(probabilities, labels, bins)
        axis.plot([b["confidence"] for b in filled], [b["accuracy"] for b in filled], "o-", color=f"C{i}",
                  label=f"{name} (ECE {ece:.3f})")
    axis.set_xlabel("confidence (mean of the bin)")
    axis.set_ylabel("accuracy in the bin")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_title(f"reliability, {bins} equal-width bins")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_differences_by_budget(rows: Sequence[str], claimed: Sequence[Optional[float]],
                               budgets: Sequence[tuple[str, Sequence[Optional[tuple[float, float, float]]]]],
                               path: Path, title: str = "") -> None:
    """One row per technique: each budget's difference (dot) and 95% interval (bar), the claim (x), zero (line).

    ``budgets``: (name, per row (mean, low, high) or None); a row whose interval crosses from one budget to the
    next side of zero is the picture of "it costs in short runs and pays in long ones".
    """
    fig, axis = plt.subplots(figsize=(8, 0.55 * len(rows) + 1.6 + 0.22 * (len(budgets) + 1)))
    spread = 0.5 / max(1, len(budgets))
    for b, (name, points) in enumerate(budgets):
        offset = (b - (len(budgets) - 1) / 2) * spread
        labelled = False  # the budget's name in the legend once, on its first drawn row
        for i, point in enumerate(points):
            if point is None:
                continue
            mean, low, high = point
            axis.errorbar(mean, i + offset, xerr=[[mean - low], [high - mean]], fmt="o", capsize=3, color=f"C{b}",
                          label=None if labelled else name)
            labelled = True
    claims = [(value, i) for i, value in enumerate(claimed) if value is not None]  # None: a row with no claim
    axis.scatter([v for v, _ in claims], [i for _, i in claims], marker="x", color="black", zorder=3,
                 label="claimed (original README)")
    axis.axvline(0, color="grey", linewidth=1)
    axis.set_yticks(range(len(rows)), rows, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("difference in final test accuracy (points), paired 95% interval")
    axis.set_title(title or "each technique against its baseline, by budget", fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1)  # off the data; a budget a line
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
