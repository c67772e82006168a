"""Presets: named configs, one flag away (``--preset NAME``).

A preset is nothing but values for :class:`utils.config.TrainConfig` fields. They sit between the
config's defaults and the command line: every flag the user gives still wins, and ``config.json``
records the values used (and ``preset``), so a preset run resumes, evaluates and plots like any other.

``speed``: the recipe of the CIFAR-10 speed records (Page, 2018, "How to train your ResNet";
Jordan, 2024, airbench94, arXiv 2404.00498), on this project's trainer and data path, ingredient by
ingredient (each is a flag of its own):

- ``speednet`` (``models/speednet.py``): patch-whitening first layer fitted to a stratified sample of
  the training images (its bias trains for 3 epochs, then freezes: ``--whitening-bias-epochs 3``),
  three wide conv groups, dirac init, max-pooled head with a temperature;
- the whole data set on the device, 2-pixel translations with reflect padding (``--crop-pad-mode
  reflect``) and a flip that alternates between epochs (``--alternating-flip``), on whole batches;
- large-batch Nesterov SGD (batch 1024, momentum 0.85; in mean-loss units lr 1.5 and decay 1.33e-3,
  the record's values), BatchNorm biases at 64x the learning rate (``--norm-bias-lr-scale 64``);
- a piecewise-linear schedule, 0.2 → 1 of the peak over the first 23% of steps, then down to 0.07
  (``--scheduler linear --warmup-epochs 2.3``);
- Lookahead in place of an EMA (``--lookahead``): the run ends on the slow weights;
- label smoothing 0.2; bf16 autocast and channels_last on CUDA and on CPUs with native bf16;
- one evaluation, at the end, with the record's weighted test-time views (``--tta weighted``); after
  every epoch a cheap probe of 1,000 test images (``--probe-images 1000``, not counted in the times)
  records accuracy against training time (of the fast weights: Lookahead's slow ones are the last step's).

The record's fractional last epoch is an option (``--epochs 9.9``); the preset keeps 10 whole epochs,
the length its full-data figures were measured at (the tenth of an epoch is 1% of the time).
"""
from __future__ import annotations

from typing import Any

from utils.errors import UserError, close_names

PRESETS: dict[str, dict[str, Any]] = {
    "speed": {
        "model": "speednet",
        "recipe": "modern",  # bf16 where the device has it; the parts below replace AdamW, cosine, EMA, clipping
        "epochs": 10,
        "batch_size": 1024,
        "optimizer": "sgd",
        "momentum": 0.85,
        "lr": 1.5,
        "weight_decay": 1.33e-3,
        "norm_bias_lr_scale": 64.0,
        "scheduler": "linear",
        "warmup_epochs": 2.3,  # the peak of the linear schedule: 23% of the steps
        "label_smoothing": 0.2,
        "ema": False,
        "lookahead": True,
        "whitening_bias_epochs": 3,
        "clip_grad": 0.0,  # off: the whitened inputs and BatchNorm keep the steps in range
        "augmentation": "standard",
        "crop_padding": 2,
        "crop_pad_mode": "reflect",
        "alternating_flip": True,
        "data_mode": "device",
        "tta": "weighted",
        "eval_every": 10,  # once, at the end (its --epochs): the one figure the run reports
        "probe_images": 1000,  # accuracy against training time, every epoch, on 1,000 test images (untimed)
    },
}


def preset_settings(name: str) -> dict[str, Any]:
    """The config values of preset ``name`` (a copy)."""
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}': {close_names(name, PRESETS)}")
    return dict(PRESETS[name], preset=name)
