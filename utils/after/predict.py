"""Classify your own images with a trained model: ``main_modern.py --predict CHECKPOINT IMAGE_OR_FOLDER...``.

Each image goes the way the run's test images went (``utils/after/inference.py``): decoded to RGB by the
data path's own decoder (any size, mode and bit depth it reads), resized to the run's image size,
normalized with the run's statistics, and classified in the run's precision, with the run's
test-time views unless ``--tta`` says otherwise. So a test image of the run gets here the class the
run's evaluation gave it.

Printed: a table of the top-k classes per image. Written, for a folder (or with ``--save-predictions``):
a CSV (one row per image: the prediction, its probability, and every class's probability) or, for a
``.json`` path, the same as JSON.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from utils.after.inference import load_trained_model
from utils.data.decode import decode_resized
from utils.data.image_folder import IMAGE_EXTENSIONS
from utils.errors import UserError
from utils.files import atomic_write, unused_stem
from utils.training.run_dir import refuse_run_files

SHOWN_ROWS = 20  # rows of the printed table; a folder's full list goes to the file


def image_files(inputs: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """The image files named by ``inputs`` (files, or folders searched recursively), and the folders given.

    A file given by name must be an image (its decoding says so otherwise); in a folder, files without
    an image extension and hidden ones are passed over, as stray files in a photo folder are.
    """
    files, folders = [], []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            folders.append(path)
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise UserError(f"{path} holds no images (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"no such image or folder: {path}")
    return files, folders


def decode_all(files: Sequence[Path], folders: Sequence[Path], image_size: int) -> tuple[list[Path], torch.Tensor]:
    """Decode and resize every file; a file found in a folder that cannot be decoded is skipped with a note
    (one broken photo should not cost the rest), a file named on the command line is an error."""
    kept, images, skipped = [], [], []
    for path in files:
        try:
            images.append(decode_resized(path, image_size))
            kept.append(path)
        except UserError:
            if not any(folder in path.parents for folder in folders):
                raise
            skipped.append(path)
    if skipped:
        print(f"note: skipped {len(skipped)} file(s) that could not be decoded, e.g. {skipped[0]}")
    if not kept:
        raise UserError(f"none of the {len(files)} image file(s) could be decoded, e.g. {skipped[0]}")
    return kept, torch.stack(images)


def predict_images(checkpoint: str, inputs: Sequence[str], top_k: int = 3, tta: Optional[str] = None,
                   device: str = "auto", save: Optional[str] = None) -> list[dict[str, Any]]:
    """Classify the images ``inputs`` name with the model in ``checkpoint``; print a table, write a file.

    Returns one dict per image: ``file``, ``predicted``, ``probability`` and ``top`` ([(class, p)...]).
    """
    if top_k < 1:
        raise UserError(f"--top-k must be at least 1 (got {top_k})")
    files, folders = image_files(inputs)  # what the user typed is checked before any work
    target = predictions_path(save, Path(checkpoint).parent) if save or folders else None
    trained = load_trained_model(checkpoint, device)
    tta = tta or trained.config.tta
    files, images = decode_all(files, folders, trained.image_size)
    probabilities = trained.probabilities(images, tta)
    rows = prediction_rows(files, probabilities, trained.class_names, min(top_k, len(trained.class_names)))
    print(f"{trained.description} from {checkpoint}: {len(files)} image(s) at {trained.image_size}×{trained.image_size}"
          + (f", test-time views {tta}" if tta != "none" else ""))
    print(format_predictions(rows))
    if target is not None:
        write_predictions(rows, probabilities, trained.class_names, target)
        print(f"predictions of {len(rows)} image(s) written to {target}")
    return rows


def prediction_rows(files: Sequence[Path], probabilities: torch.Tensor, class_names: Sequence[str],
                    top_k: int) -> list[dict[str, Any]]:
    # Ties (bf16 logits tie now and then) go to the lowest class index, as evaluation's argmax breaks them.
    values, indices = probabilities.sort(dim=1, descending=True, stable=True)
    values, indices = values[:, :top_k], indices[:, :top_k]
    return [{"file": str(path), "predicted": class_names[int(i[0])], "probability": float(v[0]),
             "top": [(class_names[int(c)], float(p)) for p, c in zip(v, i)]}
            for path, v, i in zip(files, values, indices)]


def format_predictions(rows: Sequence[dict[str, Any]]) -> str:
    """The table: image, predicted class and probability, the top-k (the first ``SHOWN_ROWS`` images)."""
    width = min(48, max([len("image")] + [len(r["file"]) for r in rows[:SHOWN_ROWS]]))
    lines = [f"{'image':<{width}}  {'prediction':<22}  top {len(rows[0]['top']) if rows else 0}"]
    for row in rows[:SHOWN_ROWS]:
        name = row["file"] if len(row["file"]) <= width else "..." + row["file"][-(width - 3):]
        top = " · ".join(f"{c} {100 * p:.1f}%" for c, p in row["top"])
        best = f"{row['predicted']} {100 * row['probability']:.1f}%"
        lines.append(f"{name:<{width}}  {best:<22}  {top}")
    if len(rows) > SHOWN_ROWS:
        lines.append(f"... and {len(rows) - SHOWN_ROWS} more")
    return "\n".join(lines)


def predictions_path(save: Optional[str], run_dir: Path) -> Path:
    """``--save-predictions`` (.csv or .json), else a new ``predictions.csv`` beside the checkpoint."""
    if save is None:
        return run_dir / f"{unused_stem(run_dir, 'predictions', ['.csv'])}.csv"
    path = Path(save)
    if path.is_dir():
        raise UserError(f"--save-predictions {save} is a folder; give a file name in it, such as {path / 'predictions.csv'}")
    if path.suffix.lower() not in (".csv", ".json"):
        raise UserError(f"--save-predictions {save}: give a .csv or .json file name")
    refuse_run_files(path, "--save-predictions")
    return path


def write_predictions(rows: Sequence[dict[str, Any]], probabilities: torch.Tensor, class_names: Sequence[str],
                      path: Path) -> None:
    """CSV: file, predicted, probability, then one column per class; JSON: the rows with every probability."""
    if path.suffix.lower() == ".json":
        records = [{**row, "top": [{"class": c, "probability": p} for c, p in row["top"]],
                    "probabilities": dict(zip(class_names, map(float, probs)))}
                   for row, probs in zip(rows, probabilities)]
        text = json.dumps(records, indent=1)
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["file", "predicted", "probability", *class_names])
        for row, probs in zip(rows, probabilities):
            writer.writerow([row["file"], row["predicted"], f"{row['probability']:.6f}", *(f"{p:.6f}" for p in probs)])
        text = buffer.getvalue()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the folder of {path} ({error.strerror or error.__class__.__name__}); "
                        f"choose another --save-predictions") from None
    # UTF-8 whatever the platform's default (file names in any script); newline="" keeps the CSV's own line ends
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8", newline=""))
