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
- the EMA of the weights (Polyak averaging), with a warm-up of the decay,
  ``min(decay, (1 + n) / (10 + n))``, so that a short run's average is not stuck near the random
  initial weights. :class:`ModelEMA` computes what ``torch.optim.swa_utils.AveragedModel`` with
  ``get_ema_multi_avg_fn`` computes (the tests check it against it), without its host-device syncs:
  AveragedModel keeps its update count on the device and reads it back every step;
- the loss: cross-entropy with label smoothing (Szegedy et al., 2016), which also takes the soft
  targets of MixUp/CutMix.
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from utils.config import TrainConfig
from utils.training.muon import MuonSGD, muon_parameter_groups


# ------------------------------------------------------------------------------------ optimizer
NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def norm_biases(model: nn.Module) -> list[nn.Parameter]:
    """The trainable biases (shifts) of the model's normalization layers."""
    return [m.bias for m in model.modules() if isinstance(m, NORM_LAYERS) and getattr(m, "bias", None) is not None
            and m.bias.requires_grad]


def parameter_groups(model: nn.Module, weight_decay: float, lr: Optional[float] = None,
                     norm_bias_lr_scale: float = 1.0) -> list[dict]:
    """Decayed weights (matrices, conv kernels) and the rest (norms, biases, embeddings), each with its LR.

    A model may name further parameters to spare with a ``no_weight_decay()`` method (timm's convention).
    ``norm_bias_lr_scale`` S != 1 gives the normalization biases a group of their own at S times the
    learning rate, decayed by ``weight_decay / S``, so that per step they shrink as much as the weights
    (lr · decay is the same): the speed records train BatchNorm biases 64 times faster (Jordan, 2024).
    """
    spared_names = set(getattr(model, "no_weight_decay", lambda: ())())
    fast = {id(p) for p in norm_biases(model)} if norm_bias_lr_scale != 1.0 else set()
    decay, no_decay, biases = [], [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:  # (a bias frozen later, --whitening-bias-epochs, is trainable here)
            continue
        if id(parameter) in fast:
            biases.append(parameter)
        else:
            (no_decay if parameter.ndim <= 1 or name in spared_names else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if lr is not None:  # else the optimizer's own lr
        for group in groups:
            group["lr"] = lr
    if biases:
        if lr is None:
            raise ValueError("a norm-bias learning-rate scale needs the base lr")
        groups.append({"params": biases, "weight_decay": weight_decay / norm_bias_lr_scale,
                       "lr": lr * norm_bias_lr_scale})
    return groups


def fused_available(model: nn.Module) -> bool:
    """Fused optimizer kernels (one kernel for all parameters) exist for float parameters on CPU and CUDA.

    They also skip a step on the device when given a ``found_inf`` flag (inf/NaN gradients), with no
    host-device sync.
    """
    parameters = list(model.parameters())
    return bool(parameters) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "muon":
        return MuonSGD(muon_parameter_groups(model, config.lr, config.weight_decay, config.norm_bias_lr_scale,
                                             config.muon_lr, config.muon_momentum), config.lr, config.momentum,
                       fused=fused_available(model))
    groups = parameter_groups(model, config.weight_decay, config.lr, config.norm_bias_lr_scale)
    fused = fused_available(model) or None
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True, fused=fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, fused=fused)
    # Plain Adam adds weight decay to the gradient (L2), the coupling AdamW removes.
    return torch.optim.Adam(groups, lr=config.lr, fused=fused)


# ------------------------------------------------------------------------------------ schedule
def warmup_cosine_factor(step: int, total_steps: int, warmup_steps: int) -> float:
    """LR multiplier: linear from 1/warmup_steps to 1 over ``warmup_steps``, then cosine to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


LINEAR_START, LINEAR_END = 0.2, 0.07  # the speed records' piecewise-linear schedule (airbench94)


def piecewise_linear_factor(step: int, total_steps: int, peak_step: int) -> float:
    """LR multiplier: linear from 0.2 at step 0 to 1 at ``peak_step``, then linear to 0.07 at ``total_steps``."""
    if step < peak_step:
        return LINEAR_START + (1.0 - LINEAR_START) * step / peak_step
    progress = (step - peak_step) / max(1, total_steps - peak_step)
    return 1.0 + (LINEAR_END - 1.0) * min(1.0, progress)


STEP_MILESTONES = (0.5, 0.75)  # the step schedule's decays, as shares of the run (He et al., 2016)


def step_decay_factor(step: int, steps_per_epoch: int, step_size: Optional[int], gamma: float, total_steps: int
                      ) -> float:
    """LR multiplier of the step schedule, per optimizer step.

    ``step_size`` None: ``gamma`` at half the run and again at three quarters, whatever its length, so a
    5-epoch run and a 200-epoch run spend the same share of their steps at each rate. An integer: StepLR,
    ``gamma ** (epoch // step_size)``.
    """
    if step_size is None:
        return gamma ** sum(step >= share * total_steps for share in STEP_MILESTONES)
    return gamma ** ((step // steps_per_epoch) // step_size)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per optimizer step."""
    total = config.total_steps(steps_per_epoch)
    warmup = round(config.warmup_epochs * steps_per_epoch)
    if config.scheduler == "cosine":
        def factor(step: int) -> float:
            return warmup_cosine_factor(step, total, warmup)
    elif config.scheduler == "linear":
        def factor(step: int) -> float:
            return piecewise_linear_factor(step, total, warmup)
    elif config.scheduler == "decay":
        def factor(step: int) -> float:
            return max(0.0, 1.0 - step / total)
    elif config.scheduler == "step":
        def factor(step: int) -> float:
            return step_decay_factor(step, steps_per_epoch, config.step_size, config.gamma, total)
    else:
        def factor(step: int) -> float:
            return 1.0
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def learning_rates(config: TrainConfig, steps_per_epoch: int) -> list[float]:
    """The learning rate of every optimizer step of a run of ``config`` (resolved), from :func:`build_scheduler`."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    factor = build_scheduler(optimizer, config, steps_per_epoch).lr_lambdas[0]
    return [config.lr * factor(step) for step in range(config.total_steps(steps_per_epoch))]


# ------------------------------------------------------------------------------------ precision
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Precision:
    """Mixed precision chosen once: ``autocast()`` for the forward pass, ``backward()`` for the loss.

    Only fp16 has a gradient scaler: its 5-bit exponent underflows small gradients unless the loss is
    scaled up, and the scaler then also finds the inf/NaN gradients of an overflow and skips that step.
    bf16 has fp32's range and needs no scaling; there (and in fp32) the step's gradient norm finds
    non-finite gradients instead (``utils/training/step.py``).
    """

    device_type: str
    dtype: Optional[torch.dtype]  # None: full fp32
    scaler: Optional[torch.amp.GradScaler]  # fp16 only

    @classmethod
    def from_config(cls, config: TrainConfig, device: torch.device) -> "Precision":
        dtype = AMP_DTYPES[config.amp_dtype] if config.amp else None
        return cls(device.type, dtype, torch.amp.GradScaler(device.type) if dtype == torch.float16 else None)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()


# ------------------------------------------------------------------------------------ EMA
def ema_decay_at(num_updates: int, decay: float) -> float:
    """Warm-up of the EMA decay: small at first so the average follows the fast-moving early weights."""
    return min(decay, (1.0 + num_updates) / (10.0 + num_updates))


class ModelEMA(nn.Module):
    """Exponential moving average of a model's parameters and buffers (BatchNorm statistics follow).

    The first update copies the model; update ``n`` (n >= 1 earlier updates) moves every float tensor
    towards the model's by ``1 - ema_decay_at(n, decay)``, all in one ``torch._foreach_lerp_``;
    integer buffers (BatchNorm's batch counter) are copied, in one ``torch._foreach_copy_``. The update count is a Python int, so the
    decay needs no read-back from the device. The state dict has AveragedModel's layout
    (``module.*``, ``n_averaged``), so checkpoints of either load into the other.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.module = copy.deepcopy(model)
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self.decay = decay
        self.register_buffer("n_averaged", torch.tensor(0, dtype=torch.long, device=_device_of(model)))
        self.updates = 0

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _pairs(self, model: nn.Module) -> tuple[list, list, tuple[list, list]]:
        """(EMA floats, model floats, (EMA ints, model ints)): split once, since the tensors stay the same objects."""
        if getattr(self, "_split_for", None) is not model:
            mine = [*self.module.parameters(), *self.module.buffers()]
            theirs = [t.detach() for t in (*model.parameters(), *model.buffers())]
            floats = [(m, t) for m, t in zip(mine, theirs) if m.is_floating_point()]
            integers = [(m, t) for m, t in zip(mine, theirs) if not m.is_floating_point()]
            self._split = ([m for m, _ in floats], [t for _, t in floats],
                           ([m for m, _ in integers], [t for _, t in integers]))
            object.__setattr__(self, "_split_for", model)  # a plain reference, not a registered submodule
        return self._split

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        mine, theirs, integers = self._pairs(model)
        if self.updates == 0:
            torch._foreach_copy_(mine, theirs)
        else:
            torch._foreach_lerp_(mine, theirs, 1.0 - ema_decay_at(self.updates, self.decay))
        if integers[0]:  # BatchNorm's batch counters: copied, not averaged (one foreach call, not one per layer)
            torch._foreach_copy_(*integers)
        self.updates += 1
        self.n_averaged.fill_(self.updates)  # a device write, not a read: no sync

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.updates = int(self.n_averaged)  # once, when a run resumes
        return result


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


LOOKAHEAD_EVERY = 5  # steps between synchronizations (airbench94)


def lookahead_decay_at(step: int, total_steps: int) -> float:
    """How much of the slow weights a synchronization keeps: 0.95⁵·(step/total)³, near 0 early, ~0.77 at the end."""
    return 0.95 ** 5 * (step / max(1, total_steps)) ** 3


class Lookahead:
    """Lookahead (Zhang et al., 2019, arXiv:1907.08610) as the speed records use it.

    The optimizer moves the model's ("fast") weights; every ``LOOKAHEAD_EVERY`` steps the slow copy
    moves towards them by ``1 - decay`` and the fast weights restart from it. Unlike an EMA, the
    average feeds back into training. The last step syncs with decay 1: the run ends on the slow
    weights, the ones evaluated and saved. BatchNorm statistics are averaged too (they are float buffers).
    """

    def __init__(self, model: nn.Module) -> None:
        self.fast = [t.detach() for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
        self.slow = [t.clone() for t in self.fast]

    @torch.no_grad()
    def sync(self, decay: float) -> None:
        torch._foreach_lerp_(self.slow, self.fast, 1.0 - decay)
        torch._foreach_copy_(self.fast, self.slow)

    def step(self, global_step: int, total_steps: int) -> None:
        """Call after optimizer step ``global_step`` (counted from 1)."""
        if global_step >= total_steps:
            self.sync(1.0)
        elif global_step % LOOKAHEAD_EVERY == 0:
            self.sync(lookahead_decay_at(global_step, total_steps))

    def state_dict(self) -> list[torch.Tensor]:
        return self.slow

    def load_state_dict(self, slow: list[torch.Tensor]) -> None:
        for mine, saved in zip(self.slow, slow, strict=True):
            mine.copy_(saved)


def build_ema(model: nn.Module, config: TrainConfig) -> Optional[ModelEMA]:
    """An EMA copy of ``model`` (buffers too), or None."""
    return ModelEMA(model, config.ema_decay) if config.ema else None


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
    ema: Optional[ModelEMA]
    loss: nn.Module
    lookahead: Optional[Lookahead] = None

    @property
    def skips_nonfinite_steps(self) -> bool:
        """Does a non-finite gradient skip the step on the device (no sync)? fp16's scaler does it; else the
        optimizer must take a ``found_inf`` flag: torch's fused optimizers and MuonSGD do."""
        return self.precision.scaler is not None or bool(self.optimizer.defaults.get("fused"))


def build_recipe(model: nn.Module, config: TrainConfig, steps_per_epoch: int, device: torch.device) -> Recipe:
    optimizer = build_optimizer(model, config)
    return Recipe(optimizer, build_scheduler(optimizer, config, steps_per_epoch),
                  Precision.from_config(config, device), build_ema(model, config), build_loss(config),
                  Lookahead(model) if config.lookahead else None)
