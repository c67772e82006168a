"""One typed configuration for a training run, resolved once, in this module, and passed down.

Every entry script turns its flags into a :class:`TrainConfig` and calls :meth:`TrainConfig.resolved`:
the one place where defaults are decided (``--quick``, the recipe's parts, sizes that scale with the
image), then :func:`resolve_for_device` fills in what depends on the device (mixed precision,
memory format). Presets (``utils/presets.py``) are values placed under the flags given. The fields
are grouped as ``--help`` groups the flags, and each group checks its own values.

Fields left ``None`` mean "let the recipe decide": the *standard* recipe (learning level 1) is
Adam + step LR and nothing else; the *modern* recipe (``--modern-training``, learning level 3) is
AdamW + warm-up/cosine + AMP (where the device has it) + EMA + gradient clipping + label smoothing.
Each part can still be set on its own, and the resolved config shows what was used.

``config.json`` and every checkpoint store the resolved config, flat, with where its values came
from recorded apart: ``user_settings`` (the flags given), ``preset_settings`` (what ``--preset``
gave), ``resolved_for`` (the device AMP and channels_last were chosen for) and ``rerun_of`` (the
``config.json`` a ``--config`` rerun started from: ``utils/after/rerun.py``). Facts of a run that
are not settings (the number of classes, of processes) are in ``metrics.json`` and the checkpoint.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from utils.devices import bf16_supported, cpu_has_native_bf16
from utils.errors import UserError
from utils.files import write_json

DATASETS = ("cifar10", "cifar100", "folder", "synthetic")
AUGMENTATIONS = ("none", "standard", "randaugment", "autoaugment", "trivialaugment")
OPTIMIZERS = ("adam", "adamw", "sgd", "muon")  # muon: utils/training/muon.py
SCHEDULERS = ("step", "cosine", "linear", "decay", "none")  # utils/modern_trainer.build_scheduler
DEVICES = ("auto", "cpu", "cuda", "mps")
AMP_DTYPES = ("auto", "bf16", "fp16")
RECIPES = ("standard", "modern")
DATA_MODES = ("auto", "memory", "device", "stream")
TTA_MODES = ("none", "flip", "flip-translate", "weighted")  # utils/evaluation.py
EXPORT_FORMATS = ("onnx", "pt2")  # utils/after/export.py
CROP_PAD_MODES = ("zeros", "reflect")
# Augmentations the device-resident path does on whole batches; the others are per-image policies.
BATCHED_AUGMENTATIONS = ("none", "standard")

RESUME_NEEDS_OUTPUT_DIR = "--resume needs --output-dir: the folder of the run to continue"
QUICK_EPOCHS = 2
QUICK_SUBSET = 2000
QUICK_TEST_SUBSET = 1000


def no_result(default: Any = None, factory: Optional[Any] = None) -> Any:
    """A config field that changes no result of a run: where it is written, how it is shown, how many workers
    feed it, where its values came from. Studies leave these out of what makes two runs comparable
    (:func:`result_free_fields`)."""
    metadata = {"changes_result": False}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    # ---- data
    dataset: Optional[str] = None  # None: cifar10, or folder when data_dir is an image folder
    data_dir: str = "./data"
    download: bool = True
    image_size: int = 32
    subset: Optional[int] = None
    test_subset: Optional[int] = None
    val_split: Optional[int] = None  # training images held out (stratified) to choose best.pt on, not the test set
    cache_dir: Optional[str] = None  # None: ~/.cache/cifar10-framework; "" disables the cache
    synthetic_size: int = 512  # training images of the synthetic data set (test: a quarter)
    workers: Optional[int] = no_result(None)  # None: one per CPU core, at most 8 (DataLoader path only)
    data_mode: str = "auto"  # memory: DataLoader over the decoded tensor; device: the tensor on the device, batched aug
    # ---- model
    model: str = "cnn"
    preset: Optional[str] = None  # a named config of utils/presets.py (e.g. speed) under the flags given
    activation: Optional[str] = None  # None: the model's own default (relu for CNNs, gelu for transformers)
    # ---- training
    epochs: float = 10  # a fraction ends the last epoch part-way (--epochs 9.9: the record recipe's)
    batch_size: int = 128
    lr: Optional[float] = None
    seed: int = 42
    optimizer: Optional[str] = None
    scheduler: Optional[str] = None
    weight_decay: Optional[float] = None
    momentum: float = 0.9
    step_size: Optional[int] = None  # step scheduler: epochs between decays (None: at 1/2 and 3/4 of the run)
    gamma: float = 0.1
    # ---- the modern recipe (each part can be set alone)
    recipe: str = "standard"
    warmup_epochs: Optional[float] = None  # cosine: linear warm-up; linear: the epoch of the peak
    label_smoothing: Optional[float] = None
    ema: Optional[bool] = None
    ema_decay: float = 0.999
    lookahead: bool = False  # every 5 steps, slow weights move toward the fast ones and the fast restart from them
    norm_bias_lr_scale: float = 1.0  # normalization biases at this multiple of --lr (weight decay divided by it)
    muon_lr: float = 0.24  # --optimizer muon: the filters' learning rate (Muon's steps have a fixed size)
    muon_momentum: float = 0.6  # --optimizer muon: the filters' momentum (the rest uses --momentum)
    whitening_bias_epochs: Optional[int] = None  # a model's whitening layer: its bias trains this many epochs, then freezes
    clip_grad: Optional[float] = None
    amp: Optional[bool] = None  # None: resolved for the device (resolve_amp)
    amp_dtype: str = "auto"
    compile: bool = False
    compile_mode: Optional[str] = None  # --compile MODE: default (None), max-autotune, graphs (utils/training/compiled_step.py)
    sync_bn: bool = False  # torchrun on GPUs: BatchNorm statistics over the global batch (SyncBatchNorm)
    tf32: bool = True  # TF32 matmuls and convolutions on CUDA (Ampere and later)
    channels_last: Optional[bool] = None  # None: resolved for the device (resolve_amp)
    # ---- augmentation (per image) and mixing (per batch)
    augmentation: str = "standard"
    crop_padding: Optional[int] = None  # pixels the random crop may move the image (None: 4 px at 32 px, scaled)
    crop_pad_mode: str = "zeros"  # what the crop's border holds: zeros or the image reflected
    alternating_flip: bool = False  # device path: each image mirrored in every other epoch, not at random
    low_res_epochs: int = 0  # progressive resizing: the first N epochs train on images shrunk to low_res_size
    low_res_size: Optional[int] = None  # None: 3/4 of image_size (24 px at 32 px)
    randaugment_n: int = 2
    randaugment_m: int = 9
    cutout: Optional[int] = None  # square side in pixels; 0 means the default (16 px at 32 px)
    random_erasing: float = 0.0
    mixup: Optional[float] = None  # Beta(alpha, alpha) of MixUp; None is off
    cutmix: Optional[float] = None
    mix_prob: float = 1.0
    switch_prob: float = 0.5
    # ---- regularization inside the model
    drop_path: float = 0.0
    dropblock: float = 0.0
    dropblock_size: int = 3
    # ---- run
    device: str = "auto"
    output_dir: Optional[str] = no_result(None)
    resume: bool = no_result(False)
    progress: bool = no_result(True)
    eval_every: Optional[int] = None  # None: as rarely as keeps evaluation near 15% of the run (last epoch always)
    eval_batch_size: Optional[int] = None  # None: twice --batch-size (no gradients, so less memory per image)
    tta: str = "none"  # test-time augmentation of every evaluation: none, flip, flip-translate, weighted
    probe_images: Optional[int] = None  # every epoch: accuracy on this many test images (stratified), untimed
    quick: bool = False
    max_nonfinite_steps: int = 5
    tensorboard: bool = no_result(False)  # event files in RUN_DIR/tensorboard/ (utils/training/tensorboard_log.py; an optional package)
    # ---- where the values came from (see the module's docstring)
    user_settings: list[str] = no_result(factory=list)
    preset_settings: list[str] = no_result(factory=list)
    resolved_for: Optional[str] = no_result(None)
    rerun_of: Optional[str] = no_result(None)  # --config: the config.json this run was started from (utils/after/rerun.py)

    @classmethod
    def result_free_fields(cls) -> frozenset[str]:
        """The fields marked :func:`no_result`: two configs that differ only in these train the same model."""
        return frozenset(f.name for f in dataclasses.fields(cls) if not f.metadata.get("changes_result", True))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build from a dict, ignoring unknown keys (e.g. an older config.json)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        write_json(path, self.to_dict())

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def resolved(self) -> "TrainConfig":
        """A copy with every default decided (:func:`resolve`) and every value checked (raises UserError)."""
        return resolve(self)

    @property
    def batchable_augmentation(self) -> bool:
        """Can the device path do this augmentation on whole batches (crop, flip, Cutout, MixUp/CutMix)?"""
        return self.augmentation in BATCHED_AUGMENTATIONS and self.random_erasing == 0

    @property
    def mixing(self) -> bool:
        return self.mixup is not None or self.cutmix is not None

    @property
    def last_epoch(self) -> int:
        """The number of the run's last epoch: 10 for ``--epochs 10`` and for ``--epochs 9.9``."""
        return math.ceil(self.epochs)

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimizer steps of the whole run: the schedule and Lookahead count to this, the loop stops at it.

        A fractional last epoch takes its share of the steps (9.9 epochs of 97 steps: 960), and at least
        one, so that every epoch the loop begins trains.
        """
        return max((self.last_epoch - 1) * steps_per_epoch + 1, round(self.epochs * steps_per_epoch))


# ------------------------------------------------------------------------------------ resolving
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


# Settings that must match when a run is resumed: they change what the checkpoint's tensors mean.
RESUME_MUST_MATCH = ("model", "preset", "sync_bn", "activation", "image_size", "dataset", "optimizer",
                     "recipe", "ema", "lookahead", "drop_path", "dropblock")
