"""The training step compiled whole (``--compile``): one graph, no per-step host work.

:func:`utils.training.step.train_step` is the step a student reads. On a GPU its cost at a small batch is
the host: hundreds of operations dispatched one by one, and the optimizer's Python around its fused
kernel. :class:`CompiledStep` runs the same step (forward, loss, backward, clipping, the non-finite
check, the optimizer update) as one ``torch.compile(fullgraph=True)`` graph:

- the backward pass is traced into the graph (dynamo's ``trace_autograd_ops``);
- torch's optimizers break a graph on purpose at ``step()``, and their fused kernels cannot be traced, so
  the update is torch's own functional form (``torch.optim.adam.adam``, ``torch.optim.sgd.sgd``) on the
  optimizer's own state tensors, with ``foreach`` kernels and capturable steps (checkpoints are unchanged);
- the learning rate of each parameter group is a device tensor, filled from the schedule before each
  step: a changing rate changes no graph (a Python float would be baked in and recompile every step);
- a non-finite gradient (total norm not finite) sets the rate to 0 and the gradients to 0 on the device:
  the weights do not move (Adam's moments decay one step, SGD's momentum likewise), and the step reports a
  non-finite loss, which the step log turns into a stopped run, as the eager step does;
- ``mode="graphs"`` is torch.compile's ``reduce-overhead``: the graph is replayed as a CUDA graph.

The EMA (one foreach call, and one for BatchNorm's counters) and Lookahead stay outside, as do the data and its
augmentation.
Muon's Newton-Schulz step, torchrun's gradient hooks and fp16's scaler are not in the graph, and on a CPU
the bf16 step is not compiled whole (inductor's CPU code gave NaN gradients for speednet's): there the model
alone is compiled (:func:`whole_step_supported` says which, and the run's first line).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import nn
from torch.optim.adam import adam
from torch.optim.sgd import sgd

from utils.modern_trainer import Recipe
from utils.training.step import clip_to, total_norm, train_step

# --compile's modes, as torch.compile's: "graphs" replays the step as a CUDA graph ("reduce-overhead")
COMPILE_MODES = {"default": None, "max-autotune": "max-autotune", "graphs": "reduce-overhead",
                 "reduce-overhead": "reduce-overhead"}


def compile_training(model: nn.Module, recipe: Recipe, config, distributed: bool
                     ) -> tuple[Callable[..., Any], nn.Module, str]:
    """(the step, the model the loop runs, what was compiled) for ``--compile``: the whole step where
    :func:`whole_step_supported`, else the model alone under the plain step."""
    mode = config.compile_mode or "default"
    why_not = whole_step_supported(recipe, distributed)
    if why_not is None:
        return CompiledStep(model, recipe, mode), model, "step"
    return train_step, torch.compile(model, mode=COMPILE_MODES[mode]), f"model ({why_not})"


def whole_step_supported(recipe: Recipe, distributed: bool) -> Optional[str]:
    """None when the whole step compiles; else why only the model does."""
    if distributed:
        return "under torchrun the gradient averaging runs in DDP's hooks"
    if recipe.precision.scaler is not None:
        return "fp16's gradient scaler steps outside a graph"
    if recipe.precision.device_type == "cpu" and recipe.precision.dtype is not None:
        # Measured: speednet's compiled bf16 step gave NaN gradients on a CPU where the same graph run by
        # aot_eager gave the eager step's (tests/test_compiled_step.py checks the refusal).
        return "inductor's CPU code for a bf16 backward pass is not trusted here (NaN gradients)"
    if not isinstance(recipe.optimizer, (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)):
        return f"{type(recipe.optimizer).__name__} is not one of Adam, AdamW, SGD"
    if not hasattr(torch._dynamo.config, "trace_autograd_ops"):
        return f"torch {torch.__version__} cannot trace a backward pass into a graph"
    return None


class CompiledStep:
    """Callable like :func:`utils.training.step.train_step`; the first call compiles."""

    def __init__(self, model: nn.Module, recipe: Recipe, mode: str = "default") -> None:
        self.model, self.recipe = model, recipe
        device = next(model.parameters()).device
        self.lrs = [torch.tensor(float(group["lr"]), device=device) for group in recipe.optimizer.param_groups]
        self.state: Optional[list[dict[str, Any]]] = None  # bound at the first step (after a resume's load)
        self.compiled = torch.compile(self._step, fullgraph=True, mode=COMPILE_MODES[mode])

    def __call__(self, model: nn.Module, recipe: Recipe, images: torch.Tensor, targets: torch.Tensor,
                 labels: torch.Tensor, frozen: list[nn.Parameter], clip_grad: float
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.state is None:
            self.state = bind_state(recipe.optimizer)
        for lr, group in zip(self.lrs, recipe.optimizer.param_groups):
            lr.fill_(group["lr"])  # a write to the device, no read: the graph reads the tensor
        recipe.optimizer._opt_called = True  # torch's schedulers warn when optimizer.step() never ran; it did, here
        # Tracing the backward pass is a dynamo setting: set for this graph's (re)compilations only, not the process's
        with torch._dynamo.config.patch(trace_autograd_ops=True):
            return self.compiled(images, targets, labels, tuple(id(p) for p in frozen), float(clip_grad))

    def _step(self, images: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor, frozen: tuple[int, ...],
              clip_grad: float) -> tuple[torch.Tensor, torch.Tensor]:
        recipe = self.recipe
        with recipe.precision.autocast():
            logits = self.model(images)
            loss = recipe.loss(logits.float(), targets)
        for state in self.state:  # (not the optimizer's groups: their "lr" would be a guard, and recompile)
            for p in state["params"]:
                p.grad = None
        loss.backward()
        groups = [[i for i, p in enumerate(state["params"]) if id(p) not in frozen] for state in self.state]
        grads = [state["params"][i].grad for state, kept in zip(self.state, groups) for i in kept]
        norm = total_norm(grads)  # (nn.utils.clip_grad_norm_'s grouping by device does not trace)
        if clip_grad:
            clip_to(grads, norm, clip_grad)
        found = torch.logical_not(torch.isfinite(norm))
        with torch.no_grad():
            for state, kept, lr in zip(self.state, groups, self.lrs):
                update(state, kept, torch.where(found, 0.0, lr), found)
        # a skipped step reports a non-finite loss, so the step log stops the run as it does for one
        return torch.where(found, float("nan"), loss.detach()), (logits.argmax(1) == labels).sum()


def bind_state(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Per parameter group: its hyperparameters and lists of its parameters and state tensors, the state
    created as the optimizer's first step would (zeros), so that checkpoints hold it as they always did."""
    bound = []
    for group in optimizer.param_groups:
        params = list(group["params"])
        for p in params:
            state = optimizer.state[p]
            if isinstance(optimizer, torch.optim.SGD):
                if state.get("momentum_buffer") is None:
                    state["momentum_buffer"] = torch.zeros_like(p)  # SGD's first step: buffer = gradient
            elif "exp_avg" not in state:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif state["step"].device != p.device:
                state["step"] = state["step"].to(p.device)  # capturable: the step count lives with the weights
        bound.append({**{k: v for k, v in group.items() if k != "params"}, "params": params,
                      "kind": "sgd" if isinstance(optimizer, torch.optim.SGD) else "adam",
                      "tensors": {k: [optimizer.state[p][k] for p in params] for k in
                                  (("momentum_buffer",) if isinstance(optimizer, torch.optim.SGD)
                                   else ("step", "exp_avg", "exp_avg_sq"))}})
    return bound


def update(state: dict[str, Any], kept: list[int], lr: torch.Tensor, found: torch.Tensor) -> None:
    """One optimizer step of the parameters ``kept`` of a group, by torch's functional update (foreach)."""
    params = [state["params"][i] for i in kept]
    grads = [torch.where(found, 0.0, p.grad) for p in params]  # a non-finite gradient moves nothing
    tensors = {k: [v[i] for i in kept] for k, v in state["tensors"].items()}
    if state["kind"] == "sgd":
        sgd(params, grads, tensors["momentum_buffer"], foreach=True, weight_decay=state["weight_decay"],
            momentum=state["momentum"], lr=lr, dampening=state["dampening"], nesterov=state["nesterov"],
            maximize=False)
        return
    beta1, beta2 = state["betas"]
    adam(params, grads, tensors["exp_avg"], tensors["exp_avg_sq"], [], tensors["step"], foreach=True,
         capturable=True, decoupled_weight_decay=state.get("decoupled_weight_decay", False), amsgrad=False,
         beta1=beta1, beta2=beta2, lr=lr, weight_decay=state["weight_decay"], eps=state["eps"], maximize=False)
