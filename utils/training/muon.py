"""Muon: momentum SGD whose update is orthogonalized, for the conv filters (learning level 7, the speed preset).

Muon (Jordan et al., 2024, "Muon: An optimizer for hidden layers in neural networks"; the CIFAR-10
record airbench94_muon) replaces each filter bank's update by the nearest semi-orthogonal matrix:
the update of a conv weight (out, in, kh, kw), seen as a matrix of ``out`` rows, keeps its singular
vectors and has all its singular values set to about 1. SGD's update is dominated by a few large
directions; Muon moves every direction of the filter bank by the same amount, which is what lets
the record recipe reach the same accuracy in fewer epochs (8 against 9.9).

The orthogonalization is not an SVD but five-term Newton-Schulz iterations
``X ← a·X + (b·A + c·A²)·X`` with ``A = X·Xᵀ`` (coefficients chosen to push small singular values
up fast, so 3 iterations in bf16 suffice; they end near, not at, 1: that does not hurt).

As in the record, the filters are not decayed: before each step every filter bank is rescaled to a
fixed norm (√out). A convolution followed by BatchNorm does not care about its weights' scale, so
the rescaling only fixes the effective step size that weight decay would otherwise drift.
Everything that is not a filter bank (biases, the linear head) gets plain Nesterov SGD, torch's own
``torch.optim.sgd.sgd``: one optimizer object, so the loop, the schedule and the checkpoint treat it
like any other.

``torch.optim.Muon`` (torch >= 2.9) takes 2-D parameters only, rescales the step by the matrix's
shape and decays instead of renormalizing; the tests check that :func:`orthogonalize` gives its
update direction.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn
from torch.optim.sgd import sgd

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # torch.optim.Muon's and the record's
NS_STEPS = 3  # the record's: 3 iterations in bf16


def orthogonalize(update: torch.Tensor, steps: int = NS_STEPS, eps: float = 1e-7) -> torch.Tensor:
    """About ``U·Vᵀ`` of the SVD of ``update`` seen as (rows = dim 0, columns = the rest); same shape and dtype."""
    a, b, c = NS_COEFFICIENTS
    x = update.reshape(len(update), -1).bfloat16()
    x = x / (x.norm() + eps)  # every singular value <= 1: the iteration's domain
    tall = x.size(0) > x.size(1)
    if tall:  # iterate on the smaller Gram matrix
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    if tall:
        x = x.T
    return x.to(update.dtype).reshape(update.shape)


def muon_parameter_groups(model: nn.Module, lr: float, weight_decay: float, bias_lr_scale: float,
                          muon_lr: float, muon_momentum: float) -> list[dict]:
    """Three groups: the rest (the head) at ``lr``; 1-D parameters (biases) at ``bias_lr_scale`` × ``lr`` with
    the decay divided by it; the filter banks (4-D) for Muon.

    Every group's ``lr · weight_decay`` is the same, so biases and head shrink alike per step (the record's rule).
    """
    filters, biases, rest = [], [], []
    for parameter in model.parameters():
        if parameter.requires_grad:  # (a bias frozen later, --whitening-bias-epochs, is trainable here)
            (filters if parameter.ndim == 4 else biases if parameter.ndim == 1 else rest).append(parameter)
    # The group at --lr first: the loop logs the first group's learning rate
    groups = [{"params": rest, "muon": False, "lr": lr, "weight_decay": weight_decay},
              {"params": biases, "muon": False, "lr": lr * bias_lr_scale, "weight_decay": weight_decay / bias_lr_scale},
              {"params": filters, "muon": True, "lr": muon_lr, "momentum": muon_momentum, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


class MuonSGD(torch.optim.Optimizer):
    """Muon on the groups marked ``muon``, Nesterov SGD on the others (see the module's docstring).

    ``fused``: the SGD groups use torch's fused SGD kernel, and the step takes a ``found_inf`` flag (a device
    tensor set as ``optimizer.found_inf``, as torch's fused optimizers read it): when it is 1, nothing moves,
    without reading it back on the host.
    """

    def __init__(self, groups: list[dict], lr: float, momentum: float, ns_steps: int = NS_STEPS,
                 fused: bool = False) -> None:
        super().__init__(groups, {"lr": lr, "momentum": momentum, "weight_decay": 0.0, "muon": False,
                                  "fused": fused})
        self.ns_steps = ns_steps

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        found_inf = getattr(self, "found_inf", None) if self.defaults["fused"] else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]  # a frozen bias has none
            if group["muon"]:
                self._muon_step(group, params, found_inf)
            else:
                self._sgd_step(group, params, found_inf)
        return loss

    def _muon_step(self, group: dict, params: list[torch.Tensor], found_inf: Optional[torch.Tensor]) -> None:
        momentum = group["momentum"]
        skip = None if found_inf is None else found_inf.bool()
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p.grad)
            buffer = state["momentum_buffer"]
            new_buffer = buffer.mul(momentum).add_(p.grad)
            nesterov = p.grad.add(new_buffer, alpha=momentum)
            # the filter bank back to norm √out (scale-free under BatchNorm), then the orthogonalized step
            new_p = p.mul(math.sqrt(len(p)) / p.norm()).add_(orthogonalize(nesterov, self.ns_steps), alpha=-group["lr"])
            if skip is not None:  # a non-finite gradient: keep both as they were (chosen on the device)
                new_buffer, new_p = torch.where(skip, buffer, new_buffer), torch.where(skip, p, new_p)
            buffer.copy_(new_buffer)
            p.copy_(new_p)

    def _sgd_step(self, group: dict, params: list[torch.Tensor], found_inf: Optional[torch.Tensor]) -> None:
        buffers = [self.state[p].get("momentum_buffer") for p in params]
        sgd(params, [p.grad for p in params], buffers, weight_decay=group["weight_decay"], momentum=group["momentum"],
            lr=group["lr"], dampening=0.0, nesterov=True, maximize=False, fused=self.defaults["fused"] or None,
            found_inf=found_inf)
        for p, buffer in zip(params, buffers):  # sgd creates the buffers on the first step
            self.state[p]["momentum_buffer"] = buffer
