"""The training recipe as configuration (learning levels 2, 3 and 7).

The loop in ``utils/trainer.py`` is the same for every recipe; this module builds the parts it
runs, from the config:

- the optimizer: Adam / SGD (standard recipe) or AdamW (Loshchilov & Hutter, 2019, "Decoupled
  Weight Decay Regularization") with *no* decay on norm weights, biases and embeddings, whose
  scale carries no over-fitting risk and which decay would only pull towards zero;
- the learning-rate schedule, a pure function of the optimizer step: step decay, or linear
  warm-up then cosine decay (Loshchilov & Hutter, 2017, "SGDR"; Goyal et al., 2017, for warm-up);
- mixed precision: bf16 where the device has it (same range as fp32, no scaler needed), else fp16
  with a ``GradScaler`` that skips steps whose gradients overflow; chosen once, so the training
  step has no dtype branches (:class:`Precision`);
- the EMA of the weights (Polyak averaging) through ``torch.optim.swa_utils.AveragedModel``, with
  a warm-up of the decay, ``min(decay, (1 + n) / (10 + n))``, so that a short run's average is not
  stuck near the random initial weights;
- the loss: cross-entropy with label smoothing (Szegedy et al., 2016), which also takes the soft
  targets of MixUp/CutMix.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from utils.config import TrainConfig


# ------------------------------------------------------------------------------------ optimizer
def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: decayed weights (matrices, conv kernels) and the rest (norms, biases, embeddings).

    A model may name further parameters to spare with a ``no_weight_decay()`` method (timm's convention).
    """
    spared_names = set(getattr(model, "no_weight_decay", lambda: ())())
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim <= 1 or name in spared_names else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, config.weight_decay)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    # Plain Adam adds weight decay to the gradient (L2), the coupling AdamW removes.
    return torch.optim.Adam(groups, lr=config.lr)


# ------------------------------------------------------------------------------------ schedule
def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """LR multiplier: linear from 1/warmup_steps to 1 over ``warmup_steps``, then cosine to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def step_decay_factor(step: int, steps_per_epoch: int, step_size: int, gamma: float) -> float:
    """LR multiplier of StepLR, per optimizer step: ``gamma ** (epoch // step_size)``."""
    return gamma ** ((step // steps_per_epoch) // step_size)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per optimizer step."""
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.scheduler == "cosine":
        def factor(step: int) -> float:
            return warmup_cosine_factor(step, total, warmup)
    elif config.scheduler == "step":
        def factor(step: int) -> float:
            return step_decay_factor(step, steps_per_epoch, config.step_size, config.gamma)
    else:
        def factor(step: int) -> float:
            return 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ------------------------------------------------------------------------------------ precision
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Precision:
    """Mixed precision chosen once: ``autocast()`` for the forward pass, ``scaler`` for the backward."""

    device_type: str
    dtype: Optional[torch.dtype]  # None: full fp32
    scaler: torch.amp.GradScaler

    @classmethod
    def from_config(cls, config: TrainConfig, device: torch.device) -> "Precision":
        dtype = AMP_DTYPES[config.amp_dtype] if config.amp else None
        # Only fp16 needs loss scaling: its 5-bit exponent underflows small gradients; bf16 has fp32's range.
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        return cls(device.type, dtype, scaler)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def resolve_amp(config: TrainConfig, device: torch.device) -> TrainConfig:
    """Fill in AMP and channels_last for the device: AMP on for the modern recipe on CUDA, off on CPU unless asked."""
    amp = config.amp if config.amp is not None else (config.recipe == "modern" and device.type == "cuda")
    dtype = config.amp_dtype
    if dtype == "auto":
        bf16_ok = device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported())
        dtype = "bf16" if bf16_ok else "fp16"
    channels_last = config.channels_last if config.channels_last is not None else device.type == "cuda"
    return config.replace(amp=bool(amp), amp_dtype=dtype, channels_last=channels_last)


# ------------------------------------------------------------------------------------ EMA
def ema_decay_at(num_updates: int, decay: float) -> float:
    """Warm-up of the EMA decay: small at first so the average follows the fast-moving early weights."""
    return min(decay, (1.0 + num_updates) / (10.0 + num_updates))


def build_ema(model: nn.Module, config: TrainConfig) -> Optional[AveragedModel]:
    """An EMA copy of ``model`` (buffers too, so BatchNorm statistics follow), or None."""
    if not config.ema:
        return None

    def multi_avg_fn(ema_parameters, parameters, num_averaged):
        # AveragedModel counts its updates; the decay grows with them. The first update copies the
        # model outright, so ``num_averaged`` starts at 1 here.
        decay = ema_decay_at(int(num_averaged), config.ema_decay)
        get_ema_multi_avg_fn(decay)(ema_parameters, parameters, num_averaged)

    return AveragedModel(model, multi_avg_fn=multi_avg_fn, use_buffers=True)


# ------------------------------------------------------------------------------------ loss
def build_loss(config: TrainConfig) -> nn.Module:
    """Training loss: cross-entropy with label smoothing; takes int labels or soft targets (N, C)."""
    return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)


@dataclass
class Recipe:
    """Everything the loop runs besides the model and the data."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    precision: Precision
    ema: Optional[AveragedModel]
    loss: nn.Module


def build_recipe(model: nn.Module, config: TrainConfig, steps_per_epoch: int, device: torch.device) -> Recipe:
    optimizer = build_optimizer(model, config)
    return Recipe(optimizer, build_scheduler(optimizer, config, steps_per_epoch),
                  Precision.from_config(config, device), build_ema(model, config), build_loss(config))
