"""Presets: named configs, one flag away (``--preset NAME``).

A preset is nothing but values for :class:`utils.config.TrainConfig` fields. They sit between the
config's defaults and the command line: every flag the user gives still wins, and ``config.json``
records the values used (and ``preset``), so a preset run resumes, evaluates and plots like any other.

``speed``: the recipe of the CIFAR-10 speed records (Page, 2018, "How to train your ResNet";
Jordan, 2024, airbench, arXiv 2404.00498), on this project's trainer and data path:

- ``speednet`` (``models/speednet.py``): frozen patch-whitening layer fitted to the training images,
  three wide conv groups, dirac init, max-pooled head with a temperature;
- the whole data set on the device, crop (2-pixel translations) and flip done on whole batches
  (``--data-mode device``, ``utils/batch_augment.py``), the flip alternating between epochs
  (``--alternating-flip``, ``utils/device_loader.py``);
- large-batch Nesterov SGD (batch 1024, momentum 0.85, a high learning rate and weight decay, which
  for BatchNorm-scale-invariant weights acts as a learning-rate schedule), short warm-up + cosine;
- label smoothing 0.2; an EMA of the weights; mixed precision and channels_last on CUDA;
- test-time augmentation over flipped and translated views (``--tta flip-translate``).

Add ``--compile`` on a GPU for the last factor of speed (the compile time is reported apart by
``benchmarks/vs_airbench.py``).
"""
from __future__ import annotations

from typing import Any

from utils.errors import UserError, close_names

PRESETS: dict[str, dict[str, Any]] = {
    "speed": {
        "model": "speednet",
        "recipe": "modern",  # AMP on CUDA; the parts below replace the modern recipe's AdamW and clipping
        "epochs": 10,
        "batch_size": 1024,
        "optimizer": "sgd",
        "momentum": 0.85,
        "lr": 1.5,
        "weight_decay": 1.5e-3,
        "scheduler": "cosine",
        "warmup_epochs": 2.0,
        "label_smoothing": 0.2,
        "ema": True,
        "ema_decay": 0.99,
        "clip_grad": 0.0,  # off: the whitened inputs and BatchNorm keep the steps in range
        "augmentation": "standard",
        "crop_padding": 2,
        "alternating_flip": True,
        "data_mode": "device",
        "tta": "flip-translate",
    },
}


def preset_settings(name: str) -> dict[str, Any]:
    """The config values of preset ``name`` (a copy)."""
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}': {close_names(name, PRESETS)}")
    return dict(PRESETS[name], preset=name)
