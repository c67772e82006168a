"""Every plot the project draws: training curves, confusion matrices, comparisons, image grids.

Matplotlib's non-interactive Agg backend is used throughout: runs happen on servers without a screen.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.backend_bases import FigureCanvasBase  # noqa: E402

from utils.checkpoint import atomic_write  # noqa: E402
from utils.errors import UserError  # noqa: E402


def image_format(path: Path) -> str:
    """The format a figure is written in: the path's extension (png when it has none); others are refused."""
    suffix = Path(path).suffix.lower().lstrip(".")
    supported = FigureCanvasBase.get_supported_filetypes()
    if not suffix:
        return "png"
    if suffix not in supported:
        raise UserError(f"cannot write an image as .{suffix} ({path}); use one of: "
                        f"{', '.join('.' + s for s in sorted(supported))}")
    return suffix


def save_figure(fig, path: Path, dpi: int) -> None:
    """Write ``fig`` to exactly ``path`` (atomically: a full disk keeps the previous file) and close it."""
    try:
        atomic_write(Path(path), lambda temporary: fig.savefig(temporary, dpi=dpi, format=image_format(path)))
    finally:
        plt.close(fig)


def plot_curves(history: Sequence[dict], path: Path, title: str = "") -> None:
    """Loss and accuracy per epoch, train and test (and EMA test when present).

    Test points are drawn for the epochs that were evaluated (``--eval-every``); the others have None.
    """
    epochs = [h["epoch"] for h in history]
    fig, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for axis, key, label in ((loss_axis, "loss", "loss"), (acc_axis, "acc", "accuracy (%)")):
        axis.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        for name, style, shown in ((f"test_{key}", "s-", "test"), (f"ema_test_{key}", "^--", "test (EMA)")):
            points = [(h["epoch"], h[name]) for h in history if h.get(name) is not None]
            if points:
                axis.plot(*zip(*points), style, label=shown)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
        axis.legend()
    loss_axis.set_title("loss")
    acc_axis.set_title("accuracy")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (true class, predicted class) as a (C, C) int64 tensor."""
    return torch.bincount(labels * num_classes + predictions, minlength=num_classes ** 2).view(num_classes, num_classes)


def plot_confusion_matrix(matrix: torch.Tensor, class_names: Sequence[str], path: Path, title: str = "") -> None:
    """Row-normalized confusion matrix (recall per class on the diagonal), counts written in the cells."""
    n = len(class_names)
    rates = matrix.double() / matrix.sum(1, keepdim=True).clamp(min=1)
    size = max(6.0, 0.55 * n)
    fig, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(n), class_names, rotation=45, ha="right")
    axis.set_yticks(range(n), class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    if n <= 20:  # numbers stay readable up to about 20 classes
        for i in range(n):
            for j in range(n):
                axis.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                          color="white" if rates[i, j] > 0.5 else "black")
    accuracy = 100.0 * matrix.diag().sum().item() / max(1, matrix.sum().item())
    axis.set_title(title or f"confusion matrix (accuracy {accuracy:.2f}%)")
    fig.colorbar(image, ax=axis, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_comparison(names: Sequence[str], values: Sequence[float], path: Path, ylabel: str = "best test accuracy (%)",
                    title: str = "", annotations: Optional[Sequence[str]] = None) -> None:
    """A bar per entry, its value written on it."""
    fig, axis = plt.subplots(figsize=(max(6.0, 1.1 * len(names)), 4.5))
    bars = axis.bar(range(len(names)), values, color="tab:blue")
    for index, (bar, value) in enumerate(zip(bars, values)):
        text = f"{value:.1f}" + (f"\n{annotations[index]}" if annotations else "")
        axis.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), text, ha="center", va="bottom", fontsize=8)
    axis.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axis.set_ylabel(ylabel)
    axis.set_ylim(0, max(list(values) + [1.0]) * 1.2)
    axis.grid(axis="y", alpha=0.3)
    if title:
        axis.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def save_image_grid(rows: Sequence[tuple[str, torch.Tensor]], path: Path, mean: Sequence[float],
                    std: Sequence[float], columns: int = 8) -> None:
    """One row per (title, normalized images (N, 3, H, W)); images are un-normalized for display."""
    mean_t, std_t = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.2 * columns, 1.45 * len(rows)), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.95, bottom=0.01, wspace=0.04, hspace=0.35)
    for r, (title, images) in enumerate(rows):
        for c in range(columns):
            axis = axes[r][c]
            axis.axis("off")
            if c < len(images):
                shown = (images[c].float().cpu() * std_t + mean_t).clamp(0, 1)
                axis.imshow(shown.permute(1, 2, 0).numpy())
        # a row title spans the row: written as figure text above its first image
        top = axes[r][0].get_position().y1
        fig.text(0.01, top + 0.005, title, fontsize=9, va="bottom")
    save_figure(fig, path, dpi=100)
