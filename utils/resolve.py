"""Resolving a config: every default decided once, every value checked, then what the device decides.

:func:`resolve` is the one place where the defaults of a :class:`~utils.config.TrainConfig` are decided
(``--quick``, the recipe's parts, sizes that scale with the image) and where each group of settings
(as ``--help`` groups the flags) checks its own values: a bad value is a one-line :class:`UserError`
naming the flag. :func:`resolve_for_device` then fills in what depends on the device: mixed precision
and the memory format, decided afresh when a run resumes on another kind of device.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import torch

from utils.config import (AMP_DTYPES, AUGMENTATIONS, CROP_PAD_MODES, DATA_MODES, DATASETS, DEVICES, OPTIMIZERS,
                          QUICK_EPOCHS, QUICK_SUBSET, QUICK_TEST_SUBSET, RECIPES, RESUME_NEEDS_OUTPUT_DIR, SCHEDULERS,
                          TTA_MODES, TrainConfig)
from utils.devices import bf16_supported, cpu_has_native_bf16
from utils.errors import UserError


def resolve(config: TrainConfig) -> TrainConfig:
    """Every default of ``config`` decided, in one place, then every group's values checked."""
    c = dataclasses.replace(config)
    check_names(c)
    if c.quick:
        # --quick: a first look in about a minute on a CPU; explicit flags still win.
        c.epochs = QUICK_EPOCHS if c.epochs == TrainConfig.epochs else c.epochs
        c.subset = c.subset or QUICK_SUBSET
        c.test_subset = c.test_subset or QUICK_TEST_SUBSET
    _recipe_defaults(c)
    if c.crop_padding is None:
        c.crop_padding = max(1, round(4 * c.image_size / 32))  # 4 px at 32 px, scaled with the image
    if c.low_res_size is None:
        c.low_res_size = max(2, round(0.75 * c.image_size))  # 24 px at 32 px, scaled with the image
    if c.cutout == 0:
        c.cutout = max(1, round(16 * c.image_size / 32))
    if c.workers is None:
        c.workers = min(8, os.cpu_count() or 2)
    if c.eval_batch_size is None:
        c.eval_batch_size = 2 * c.batch_size
    if c.data_mode == "auto":
        c.data_mode = "device" if c.batchable_augmentation else "memory"
    for check in (_check_finite, check_data, check_training, check_recipe, check_augmentation, check_regularization,
                  check_run, check_model, check_companions):
        check(c)
    return c


def _recipe_defaults(c: TrainConfig) -> None:
    """The standard recipe (Adam, step decay) or the modern one (AdamW, warm-up + cosine, EMA, ...)."""
    modern = c.recipe == "modern"
    if c.optimizer is None:
        c.optimizer = "adamw" if modern else "adam"
    if c.scheduler is None:
        c.scheduler = "cosine" if modern else "step"
    if c.lr is None:
        c.lr = {"adam": 1e-3, "adamw": 2e-3, "sgd": 0.1, "muon": 0.1}[c.optimizer]
    if c.weight_decay is None:
        c.weight_decay = {"adam": 0.0, "adamw": 0.05, "sgd": 5e-4, "muon": 5e-4}[c.optimizer]
    if c.warmup_epochs is None:
        # Warm-up protects the first steps of adaptive optimizers; a tenth of the run, at most 5 epochs.
        c.warmup_epochs = min(5.0, 0.1 * c.epochs) if c.scheduler == "cosine" else 0.0
    if c.label_smoothing is None:
        c.label_smoothing = 0.1 if modern else 0.0
    if c.ema is None:
        c.ema = modern
    if c.clip_grad is None and modern:
        c.clip_grad = 1.0


# ------------------------------------------------------------------------------------ checking, group by group
def require(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def check_names(c: TrainConfig) -> None:
    """Every named choice (model, activation, data set, optimizer...) is one that exists."""
    from models import check_model_name  # imported here: the registry builds models (torch)
    from models.activations import check_activation
    from utils.presets import PRESETS

    check_model_name(c.model)
    if c.activation is not None:
        check_activation(c.activation)
    for name, value, choices in [
        ("--dataset", c.dataset, DATASETS), ("--augmentation", c.augmentation, AUGMENTATIONS),
        ("--optimizer", c.optimizer, OPTIMIZERS), ("--scheduler", c.scheduler, SCHEDULERS),
        ("--device", c.device, DEVICES), ("--amp-dtype", c.amp_dtype, AMP_DTYPES), ("recipe", c.recipe, RECIPES),
        ("--data-mode", c.data_mode, DATA_MODES), ("--tta", c.tta, TTA_MODES),
        ("--crop-pad-mode", c.crop_pad_mode, CROP_PAD_MODES), ("--preset", c.preset, tuple(PRESETS)),
    ]:
        if value is not None and value not in choices:
            raise UserError(f"{name} '{value}' is not one of: {', '.join(choices)}")


def _check_finite(c: TrainConfig) -> None:
    for name, value in c.to_dict().items():  # inf and nan pass range checks like ``x >= 0``
        require(not isinstance(value, float) or math.isfinite(value),
                f"--{name.replace('_', '-')} must be a finite number (got {value})")


def check_data(c: TrainConfig) -> None:
    require(8 <= c.image_size <= 1024, f"--image-size must be between 8 and 1024 pixels (got {c.image_size})")
    require(c.subset is None or c.subset >= 1, f"--subset must be at least 1 (got {c.subset})")
    require(c.val_split is None or c.val_split >= 1, f"--val-split must be at least 1 (got {c.val_split})")
    require(c.test_subset is None or c.test_subset >= 1, f"--test-subset must be at least 1 (got {c.test_subset})")
    require(c.synthetic_size >= 1, "--synthetic-size must be at least 1")
    require(c.workers >= 0, f"--workers must be >= 0 (got {c.workers})")
    most = max(8, 4 * (os.cpu_count() or 1))  # beyond a few per core, workers only fight for the cores and memory
    require(c.workers <= most, f"--workers must be at most {most} on this machine of {os.cpu_count()} cores "
                               f"(got {c.workers})")
    per_image = f"--augmentation {c.augmentation}" + (" or --random-erasing" if c.random_erasing else "")
    if c.data_mode == "device" and not c.batchable_augmentation and "data_mode" in c.preset_settings:
        raise UserError(f"{per_image} is a per-image policy, which the device data path cannot run, and --preset "
                        f"{c.preset} sets --data-mode device" + (" and --alternating-flip" if c.alternating_flip else "")
                        + ": add --data-mode memory" + (" --no-alternating-flip" if c.alternating_flip else ""))
    require(c.data_mode != "device" or c.batchable_augmentation,
            f"--data-mode device augments whole batches and cannot run {per_image} (per-image policies); use "
            "--data-mode memory or auto")


def check_training(c: TrainConfig) -> None:
    require(0 <= c.seed < 2**64, f"--seed must be between 0 and 2**64 - 1 (got {c.seed})")
    require(c.epochs >= 1, f"--epochs must be at least 1 (got {c.epochs})")
    require(c.batch_size >= 1, f"--batch-size must be at least 1 (got {c.batch_size})")
    require(c.lr > 0, f"--lr must be a positive number (got {c.lr})")
    require(c.weight_decay >= 0, f"--weight-decay must be >= 0 (got {c.weight_decay})")
    require(0 <= c.momentum < 1, f"--momentum must be in [0, 1) (got {c.momentum})")
    require(c.muon_lr > 0, f"--muon-lr must be a positive number (got {c.muon_lr})")
    require(0 <= c.muon_momentum < 1, f"--muon-momentum must be in [0, 1) (got {c.muon_momentum})")
    require(c.step_size is None or c.step_size >= 1, f"--step-size must be at least 1 (got {c.step_size})")
    require(0 < c.gamma <= 1, f"--gamma must be in (0, 1] (got {c.gamma})")


def check_recipe(c: TrainConfig) -> None:
    require(c.warmup_epochs >= 0, f"--warmup-epochs must be >= 0 (got {c.warmup_epochs})")
    require(c.norm_bias_lr_scale > 0, f"--norm-bias-lr-scale must be > 0 (got {c.norm_bias_lr_scale})")
    require(c.whitening_bias_epochs is None or c.whitening_bias_epochs >= 0,
            f"--whitening-bias-epochs must be >= 0 (got {c.whitening_bias_epochs})")
    require(not (c.lookahead and c.ema), "--lookahead and --ema both average the weights; choose one (add --no-ema)")
    require(0 <= c.label_smoothing < 1, f"--label-smoothing must be in [0, 1) (got {c.label_smoothing})")
    require(0 < c.ema_decay < 1, f"--ema-decay must be in (0, 1) (got {c.ema_decay})")
    require(c.clip_grad is None or c.clip_grad >= 0, f"--clip-grad must be >= 0 (0: off; got {c.clip_grad})")


def check_augmentation(c: TrainConfig) -> None:
    require(not c.alternating_flip or c.data_mode == "device",
            "--alternating-flip is done by the device data path; use --data-mode device (or auto)"
            + (f", or add --no-alternating-flip (--preset {c.preset} sets it)" if "alternating_flip" in c.preset_settings
               else ""))
    require(0 <= c.crop_padding <= c.image_size,
            f"--crop-padding must be between 0 and --image-size (got {c.crop_padding})")
    require(c.crop_pad_mode != "reflect" or c.crop_padding < c.image_size,
            f"--crop-pad-mode reflect mirrors the image into the border, so --crop-padding must be smaller than "
            f"--image-size (got {c.crop_padding} at {c.image_size} px)")
    require(c.cutout is None or 1 <= c.cutout <= c.image_size,
            f"--cutout size must be between 1 and --image-size (got {c.cutout})")
    require(c.low_res_epochs >= 0, f"--low-res-epochs must be >= 0 (got {c.low_res_epochs})")
    require(not c.low_res_epochs or 2 <= c.low_res_size <= c.image_size,
            f"--low-res-size must be between 2 and --image-size (got {c.low_res_size})")
    require(0 <= c.random_erasing <= 1, f"--random-erasing probability must be in [0, 1] (got {c.random_erasing})")
    require(c.mixup is None or c.mixup > 0, f"--mixup alpha must be > 0 (got {c.mixup})")
    require(c.cutmix is None or c.cutmix > 0, f"--cutmix alpha must be > 0 (got {c.cutmix})")
    require(0 <= c.mix_prob <= 1 and 0 <= c.switch_prob <= 1, "--mix-prob and --switch-prob must be in [0, 1]")
    require(1 <= c.randaugment_n <= 10, f"--randaugment-n must be between 1 and 10 (got {c.randaugment_n})")
    require(0 <= c.randaugment_m <= 30, f"--randaugment-m must be between 0 and 30 (got {c.randaugment_m})")


def check_regularization(c: TrainConfig) -> None:
    require(0 <= c.drop_path < 1, f"--drop-path must be in [0, 1) (got {c.drop_path})")
    require(0 <= c.dropblock < 1, f"--dropblock must be in [0, 1) (got {c.dropblock})")
    require(c.dropblock_size >= 1, f"--dropblock-size must be at least 1 (got {c.dropblock_size})")


# Flags that act only together with another setting: given without it, they would be recorded and do nothing.
COMPANIONS: dict[str, tuple[Any, str]] = {
    "compile_mode": (lambda c: c.compile, "--compile"),
    "low_res_size": (lambda c: c.low_res_epochs > 0, "--low-res-epochs N"),
    "muon_lr": (lambda c: c.optimizer == "muon", "--optimizer muon"),
    "muon_momentum": (lambda c: c.optimizer == "muon", "--optimizer muon"),
    "dropblock_size": (lambda c: c.dropblock > 0, "--dropblock P"),
    "step_size": (lambda c: c.scheduler == "step", "the step scheduler (--scheduler step)"),
    "gamma": (lambda c: c.scheduler == "step", "the step scheduler (--scheduler step)"),
    "whitening_bias_epochs": (lambda c: _has_whitening(c.model), "a model with a whitening layer (speednet)"),
}


def _has_whitening(model: str) -> bool:
    from models import model_family

    return model_family(model) == "speed"


def check_companions(c: TrainConfig) -> None:
    """A flag the user gave that needs another setting, which is missing, is refused rather than ignored."""
    for name, (needed, what) in COMPANIONS.items():
        require(name not in c.user_settings or needed(c),
                f"--{name.replace('_', '-')} acts only with {what}; add that, or leave it out")


def check_model(c: TrainConfig) -> None:
    """The model can take the image size (checked by building it on the meta device: no memory, milliseconds)."""
    from models import check_image_size

    check_image_size(c.model, c.image_size)
    if c.low_res_epochs:
        check_image_size(c.model, c.image_size, c.low_res_size)


def check_run(c: TrainConfig) -> None:
    require(c.eval_every is None or c.eval_every >= 1, f"--eval-every must be at least 1 (got {c.eval_every})")
    require(c.eval_batch_size >= 1, f"--eval-batch-size must be at least 1 (got {c.eval_batch_size})")
    require(c.probe_images is None or c.probe_images >= 1, f"--probe-images must be at least 1 (got {c.probe_images})")
    require(c.max_nonfinite_steps >= 1, "max_nonfinite_steps must be at least 1")
    require(c.resume is False or c.output_dir is not None, RESUME_NEEDS_OUTPUT_DIR)



# ------------------------------------------------------------------------------------ the device
def resolve_amp(config: TrainConfig, device: torch.device) -> TrainConfig:
    """Fill in AMP and channels_last for the device.

    The modern recipe runs bf16 autocast on CUDA and on CPUs that do bf16 in hardware (faster than fp32
    there: benchmarks/results/speed-cpu-precisions-2026-12-01.md); channels_last goes with it, since
    oneDNN's bf16 convolutions work in NHWC. Elsewhere fp32, unless asked.
    """
    cpu_bf16 = device.type == "cpu" and cpu_has_native_bf16() and config.amp_dtype in ("auto", "bf16")
    amp = config.amp if config.amp is not None else (config.recipe == "modern" and (device.type == "cuda" or cpu_bf16))
    dtype = config.amp_dtype
    if dtype == "auto":
        dtype = "bf16" if bf16_supported(device) else "fp16"
    channels_last = (config.channels_last if config.channels_last is not None
                     else device.type == "cuda" or (device.type == "cpu" and bool(amp) and dtype == "bf16"))
    return config.replace(amp=bool(amp), amp_dtype=dtype, channels_last=channels_last)


DEVICE_DEPENDENT = {"amp": None, "amp_dtype": "auto", "channels_last": None}


def resolve_for_device(config: TrainConfig, device: torch.device) -> tuple[TrainConfig, str]:
    """AMP and channels_last for ``device``; a run resumed on another kind of device re-resolves them.

    A run started on a CPU (fp32) and resumed on a GPU gets the GPU's defaults (and the other way
    round), unless the user set them; the returned note says what changed ('' when nothing did).
    """
    note = ""
    if config.resume and config.resolved_for not in (None, device.type):
        reset = {k: v for k, v in DEVICE_DEPENDENT.items() if k not in config.user_settings}
        before = (config.amp, config.amp_dtype, config.channels_last)
        config = resolve_amp(config.replace(**reset), device)
        if (config.amp, config.amp_dtype, config.channels_last) != before:
            note = (f"the run started on {config.resolved_for}, continues on {device.type}: AMP "
                    f"{config.amp_dtype if config.amp else 'off'}, channels_last {'on' if config.channels_last else 'off'}")
    return resolve_amp(config, device).replace(resolved_for=device.type), note
