"""Presets: named configs, one flag away (``--preset NAME``).

A preset is nothing but values for :class:`utils.config.TrainConfig` fields. They sit between the
config's defaults and the command line: every flag the user gives still wins, and ``config.json``
records the values used (and ``preset``), so a preset run resumes, evaluates and plots like any other.

``speed``: the recipe of the CIFAR-10 speed records (Page, 2018, "How to train your ResNet";
Jordan, 2024, airbench94, arXiv 2404.00498, and its successor airbench94_muon), on this project's
trainer and data path, ingredient by ingredient (each is a flag of its own):

- ``speednet`` (``models/speednet.py``): patch-whitening first layer fitted to a stratified sample of
  the training images (its bias trains for 3 epochs, then freezes: ``--whitening-bias-epochs 3``),
  three wide conv groups, dirac init, max-pooled head with a temperature;
- the whole data set on the device, 2-pixel translations with reflect padding (``--crop-pad-mode
  reflect``) and a flip that alternates between epochs (``--alternating-flip``), on whole batches;
- Muon on the conv filters (``--optimizer muon``, ``utils/training/muon.py``: lr 0.24, momentum 0.6, the
  filters renormalized every step) and Nesterov SGD (momentum 0.85) on the biases (64x the head's
  learning rate, ``--norm-bias-lr-scale 64``) and the head; batch 2,000, 8 epochs;
- a learning rate that falls linearly from its peak to 0 (``--scheduler decay``), no warm-up;
- progressive resizing, this project's addition for CPUs (``--low-res-epochs 3``): the first 3 epochs
  train on images shrunk to 24 pixels (``--low-res-size``), about half the FLOPs of an epoch at 32;
- label smoothing 0.2; bf16 autocast and channels_last on CUDA and on CPUs with native bf16;
- one evaluation, at the end, with the record's weighted test-time views (``--tta weighted``); after
  every epoch a cheap probe of 1,000 test images (``--probe-images 1000``, not counted in the times)
  records accuracy against training time.

``speed-sgd``: the record before Muon, airbench94:
Nesterov SGD on everything (batch 1,024, lr 1.5, decay 1.33e-3 in mean-loss units), a piecewise-
linear schedule (0.2 → 1 of the peak over the first 23% of steps, then down to 0.07: ``--scheduler
linear --warmup-epochs 2.3``) and Lookahead in place of an EMA (``--lookahead``), 10 epochs. It is
the base of the record study (``benchmark_all.py --record``), which takes its ingredients out in turn.
"""
from __future__ import annotations

from typing import Any

from utils.errors import UserError, close_names

# The record airbench94 (Jordan, 2024): Nesterov SGD, a piecewise-linear schedule, Lookahead, 10 epochs.
# It is the record study's base (benchmark_all.py --record takes its ingredients out one at a time).
SPEED_SGD: dict[str, Any] = {
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
}

# The record airbench94_muon: the same network and data path, Muon on the filters, 8 epochs of 2,000.
# Its learning rates, converted to this project's units (mean loss over the batch, head logits x 1/9 with
# PyTorch's default init, where the record sums the loss and scales unit-std head weights by 1/256):
# head 0.67 x 2000 x (9/256)^2 = 1.656, biases 0.053 x 2000 = 106 = 64 x 1.656; decay such that
# lr x decay = 2e-6 x 2000 = 4e-3 per step for both (2.4e-3 at lr 1.656).
SPEED: dict[str, Any] = {
    **SPEED_SGD,
    "epochs": 8,
    "batch_size": 2000,
    "optimizer": "muon",
    "muon_lr": 0.24,
    "muon_momentum": 0.6,
    "lr": 1.656,  # the head; biases at 64x (norm_bias_lr_scale)
    "weight_decay": 2.4e-3,
    "scheduler": "decay",  # from the peak straight down to 0, no warm-up
    "warmup_epochs": 0.0,
    "lookahead": False,
    "low_res_epochs": 3,  # progressive resizing: epochs 1-3 on 24-pixel images (3/4 of 32), at half the cost
    "eval_every": 8,
}

PRESETS: dict[str, dict[str, Any]] = {"speed": SPEED, "speed-sgd": SPEED_SGD}


def preset_settings(name: str) -> dict[str, Any]:
    """The config values of preset ``name`` (a copy)."""
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}': {close_names(name, PRESETS)}")
    return dict(PRESETS[name], preset=name)
