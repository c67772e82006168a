"""The pictures of a run: training curves, confusion matrices, comparisons, image grids, time to accuracy.

A study's charts (``benchmark_all.py``) are in ``utils/studies/charts.py``, which saves its figures here.

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

from utils.errors import UserError  # noqa: E402
from utils.training.checkpoint import atomic_write  # noqa: E402


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


def picture_path(path: Path | str) -> Path:
    """A picture path the user gave, checked before any work: a writable image format, not a folder, and its
    folder created (every flag that writes a picture opens its path here)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file name in it, such as {path / 'picture.png'}")
    image_format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocker = next((p for p in path.parents if p.is_file()), None)
        reason = f"{blocker} is a file" if blocker else error.strerror or error
        raise UserError(f"cannot create the folder of {path} ({reason}); choose another path") from None
    return path


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


def plot_misclassified(images: torch.Tensor, predicted: Sequence[int], labels: Sequence[int],
                       class_names: Sequence[str], path: Path, title: str = "", columns: int = 8) -> None:
    """A grid of uint8 images (N, 3, H, W), each titled "predicted / true" (the wrong answer first)."""
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.5 * columns, 1.7 * rows + 0.4), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index].permute(1, 2, 0).cpu().numpy())
            axis.set_title(f"{class_names[predicted[index]]}\n/ {class_names[labels[index]]}", fontsize=7,
                           color="tab:red")
    fig.suptitle(title or "misclassified test images: predicted / true", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_explanations(images: torch.Tensor, maps: torch.Tensor, predicted: Sequence[int], labels: Sequence[int],
                      class_names: Sequence[str], path: Path, title: str, columns: int = 8) -> None:
    """uint8 images (N, 3, H, W) above the same images under their heatmaps (N, H, W) in [0, 1].

    Each image is titled "predicted / true", green when right and red when wrong.
    """
    groups = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(2 * groups, columns, figsize=(1.5 * columns, 3.1 * groups + 0.5), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for index in range(len(images)):
        row, column = 2 * (index // columns), index % columns
        picture = images[index].permute(1, 2, 0).cpu().numpy()
        axes[row][column].imshow(picture)
        right = predicted[index] == labels[index]
        axes[row][column].set_title(f"{class_names[predicted[index]]}\n/ {class_names[labels[index]]}", fontsize=7,
                                    color="tab:green" if right else "tab:red")
        axes[row + 1][column].imshow(picture)
        axes[row + 1][column].imshow(maps[index].numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_lr_schedules(schedules: dict[str, Sequence[float]], steps_per_epoch: int, path: Path, title: str = "") -> None:
    """Learning rate against epoch (fractional, per optimizer step), one line per named schedule."""
    fig, axis = plt.subplots(figsize=(7, 4))
    for name, values in schedules.items():
        axis.plot([step / steps_per_epoch for step in range(len(values))], values, label=name)
    axis.set_xlabel("epoch")
    axis.set_ylabel("learning rate")
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_time_to_accuracy(runs: dict[str, list[dict]], path: Path, title: str) -> None:
    """Probe accuracy (``--probe-images``) after each epoch against the run's time so far, one line per run.

    ``runs``: label → a run's history; time is the sum of its epochs' ``epoch_time_s`` (training and
    evaluation; the probes themselves are not counted).
    """
    fig, axis = plt.subplots(figsize=(7, 4.5))
    for i, (label, history) in enumerate(runs.items()):
        elapsed, points, finals = 0.0, [], []
        for entry in history:
            elapsed += entry["epoch_time_s"]
            if entry.get("probe_acc") is not None:
                points.append((elapsed / 60, entry["probe_acc"]))
            if entry.get("test_acc") is not None:  # the run's own evaluation: every test image, its TTA
                finals.append((elapsed / 60, entry["test_acc"]))
        if points:
            axis.plot(*zip(*points), "o-", markersize=3, color=f"C{i % 10}", label=f"{label}: probe")
        if finals:
            axis.plot(*zip(*finals), "*", markersize=10, color=f"C{i % 10}", label=f"{label}: test set (its TTA)")
    axis.set_xlabel("minutes of the run (training + evaluation)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
