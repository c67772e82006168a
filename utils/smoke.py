"""Smoke mode: ``CIFAR_SMOKE=1 python main_modern.py ...`` runs any command end to end in seconds.

The test suite runs every command that README.md and MODERN_DL_GUIDE.md show this way
(``tests/test_documented_commands.py``), so a documented flag cannot silently break. Smoke mode
changes only the data and the budget: synthetic data (no files, no download) at 16×16 unless the
command sets ``--image-size``, a few dozen images, one epoch, one seed. Everything else (the
model, the recipe, augmentation, evaluation, the run's files) takes the same code path as a real run.
It is read in the entry scripts' flag handling (``utils/cli.py``, ``benchmark_all.py``), never deeper.
"""
from __future__ import annotations

import os
from typing import Any

SMOKE_ENV = "CIFAR_SMOKE"
SMOKE_TRAIN_IMAGES = 48  # synthetic training images (the test set is a quarter): one or two steps an epoch
SMOKE_IMAGE_SIZE = 16  # every registry model takes it
SMOKE_MAX_SEEDS = 1  # benchmark_all: one seed per experiment (the benchmark tests cover spreads and intervals)


def smoke_enabled() -> bool:
    return os.environ.get(SMOKE_ENV, "") not in ("", "0")


def smoke_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` (config fields the command gave) with smoke mode's data and budget; unchanged when off."""
    if not smoke_enabled():
        return settings
    smoke = dict(settings, dataset="synthetic", synthetic_size=SMOKE_TRAIN_IMAGES, epochs=1, workers=0, cache_dir="",
                 subset=None, test_subset=None, image_size=settings.get("image_size", SMOKE_IMAGE_SIZE))
    if settings.get("val_split"):
        smoke["val_split"] = 8
    if settings.get("data_mode") == "stream":  # streams read image folders; synthetic data is a tensor
        smoke["data_mode"] = "memory"
    return smoke
