"""One typed configuration for a training run: its fields, grouped as ``--help`` groups the flags.

Every entry script turns its flags into a :class:`TrainConfig` and resolves it once
(``utils/resolve.py``: the one place where defaults are decided and values checked, then what the
device decides: mixed precision, memory format); the resolved config is what is passed down.
Presets (``utils/presets.py``) are values placed under the flags given.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

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
    compile_mode: Optional[str] = None  # --compile MODE: default (None), max-autotune, graphs (training/compiled_step.py)
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
    tensorboard: bool = no_result(False)  # event files in RUN_DIR/tensorboard/ (an optional package)
    # ---- where the values came from (see the module's docstring)
    user_settings: list[str] = no_result(factory=list)
    preset_settings: list[str] = no_result(factory=list)
    resolved_for: Optional[str] = no_result(None)
    rerun_of: Optional[str] = no_result(None)  # --config: the config.json this run was started from (after/rerun.py)

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


# Settings that must match when a run is resumed: they change what the checkpoint's tensors mean.
RESUME_MUST_MATCH = ("model", "preset", "sync_bn", "activation", "image_size", "dataset", "optimizer",
                     "recipe", "ema", "lookahead", "drop_path", "dropblock")
