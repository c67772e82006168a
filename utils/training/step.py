"""One training step: forward, loss, backward, clipping and the optimizer step, in one function.

:func:`train_step` is what the loop in ``utils/trainer.py`` calls once per batch. It returns the loss
and the number of correct predictions as device tensors, so nothing in it waits for the device.

A non-finite loss or gradient must never reach the weights, and finding one must not cost a
host-device sync every step (:func:`apply_gradients`):

- in fp16, ``torch.amp.GradScaler`` does it: it scales the loss (fp16's 5-bit exponent underflows
  small gradients), unscales, finds inf/NaN, and skips the step;
- in bf16 and fp32 there is nothing to scale, so there is no scaler: the total gradient norm (which
  clipping computes anyway) is non-finite exactly when some gradient is, and it goes to the optimizer
  as ``found_inf``, the flag torch's fused optimizers (and :class:`utils.training.muon.MuonSGD`) read to skip
  the step on the device. That is one read of the gradients, where the scaler's ``unscale_`` read and
  wrote every one of them.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from utils.modern_trainer import Recipe


def train_step(model: nn.Module, recipe: Recipe, images: torch.Tensor, targets: torch.Tensor,
               labels: torch.Tensor, frozen: list[nn.Parameter], clip_grad: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Train on one batch; return (loss, correct count), both on the device.

    ``targets`` are the labels, or MixUp/CutMix's soft targets; ``labels`` what accuracy counts against.
    ``frozen``: parameters whose gradient is computed and dropped (``--whitening-bias-epochs``).
    """
    # 1. forward under autocast (a no-op context in fp32), and the loss in fp32
    with recipe.precision.autocast():
        logits = model(images)
        loss = recipe.loss(logits.float(), targets)
    # 2. backward (fp16: of the scaled loss); a frozen layer's gradient is dropped, so nothing moves it
    recipe.optimizer.zero_grad(set_to_none=True)
    recipe.precision.backward(loss)
    drop_gradients(frozen)
    # 3. clip, check and step; a step skipped for a non-finite gradient reports a non-finite loss, which the
    #    step log turns into a stopped run (in bf16 and fp32 nothing should overflow)
    found_inf = apply_gradients(recipe, model.parameters, clip_grad)
    loss = loss.detach() if found_inf is None else torch.where(found_inf.bool(), float("nan"), loss.detach())
    return loss, (logits.argmax(1) == labels).sum()


def drop_gradients(parameters: list[nn.Parameter]) -> None:
    for parameter in parameters:
        parameter.grad = None  # an optimizer skips a parameter without a gradient


def apply_gradients(recipe: Recipe, parameters: Callable[[], object], clip_grad: float) -> Optional[torch.Tensor]:
    """Clip the gradients to ``clip_grad`` (0: no clipping) and step, skipping the step on the device when a
    gradient is not finite. ``parameters``: a callable giving the model's parameters (read each time).

    Returns the device flag of a skipped step (bf16 and fp32 with a fused optimizer), else None."""
    optimizer, scaler = recipe.optimizer, recipe.precision.scaler
    if scaler is not None:  # fp16
        scaler.unscale_(optimizer)
        if clip_grad:
            nn.utils.clip_grad_norm_(parameters(), clip_grad, foreach=True)
        scaler.step(optimizer)
        scaler.update()
        return None
    norm = gradient_norm(list(parameters()), clip_grad, needed=recipe.skips_nonfinite_steps)
    if not recipe.skips_nonfinite_steps:
        optimizer.step()
        return None
    optimizer.found_inf = torch.logical_not(torch.isfinite(norm)).float()  # read by the optimizer's step
    optimizer.step()
    return optimizer.found_inf


def gradient_norm(parameters: list[nn.Parameter], clip_grad: float, needed: bool) -> Optional[torch.Tensor]:
    """The total gradient norm (a device tensor), clipping to ``clip_grad`` when it is > 0; None when neither
    clipping nor the check needs it."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not (clip_grad or needed) or not grads:
        return None
    if len({g.device for g in grads}) > 1:  # gradients on several devices: torch's grouping by device
        if clip_grad:
            return nn.utils.clip_grad_norm_(parameters, clip_grad, foreach=True)
        return nn.utils.get_total_norm(grads, foreach=True)
    norm = total_norm(grads)
    if clip_grad:
        clip_to(grads, norm, clip_grad)
    return norm


# ``nn.utils.clip_grad_norm_``'s arithmetic for gradients on one device. torch's own groups the gradients by
# device, which costs host calls per gradient every step (``.to`` and ``.detach``, no-ops on one device): host
# time a GPU waits for (benchmarks/results/step-ops-cpu-2026-12-05.md). The compiled step uses these too.
def total_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def clip_to(grads: list[torch.Tensor], norm: torch.Tensor, max_norm: float) -> None:
    torch._foreach_mul_(grads, torch.clamp(max_norm / (norm + 1e-6), max=1.0))
