"""The training step (utils/training/step.py): no gradient scaler outside fp16, non-finite steps skipped on the
device."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from models import create_model
from utils.config import TrainConfig
from utils.modern_trainer import build_recipe
from utils.resolve import resolve
from utils.training.step import train_step

OPTIMIZERS = {  # one of each kind the recipes build: fused SGD, fused AdamW, Muon (its own step)
    "sgd": dict(optimizer="sgd", lr=0.05),
    "adamw": dict(recipe="modern", optimizer="adamw", lr=1e-3),
    "muon": dict(recipe="modern", optimizer="muon", lr=0.05, muon_lr=0.05),
}


def tiny_setup(optimizer: str, amp: bool, seed: int = 0):
    torch.manual_seed(seed)
    model = create_model("resnet_tiny", num_classes=4)
    config = resolve(TrainConfig(model="resnet_tiny", amp=amp, amp_dtype="bf16", ema=False, **OPTIMIZERS[optimizer]))
    recipe = build_recipe(model, config, steps_per_epoch=4, device=torch.device("cpu"))
    images, labels = torch.randn(8, 3, 16, 16), torch.arange(8) % 4
    return model, config, recipe, images, labels


def state_tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The weights, buffers and every tensor of the optimizer's state, copied."""
    tensors = [t.detach().clone() for t in (*model.parameters(), *model.buffers())]
    for state in optimizer.state.values():
        tensors += [v.detach().clone() for v in state.values() if torch.is_tensor(v)]
    return tensors


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_non_finite_gradient_moves_nothing_and_the_next_finite_step_trains(optimizer, amp):
    model, config, recipe, images, labels = tiny_setup(optimizer, amp)
    assert recipe.precision.scaler is None and recipe.skips_nonfinite_steps
    train_step(model, recipe, images, labels, labels, [], config.clip_grad)  # optimizer state exists now
    before = state_tensors(model, recipe.optimizer)
    poisoned = images.clone()
    poisoned[0, 0, 0, 0] = float("nan")  # a NaN pixel: NaN loss, NaN gradients everywhere
    model.eval()  # BatchNorm's running statistics would take the NaN in the forward pass, before any step
    loss, _ = train_step(model, recipe, poisoned, labels, labels, [], config.clip_grad)
    assert not torch.isfinite(loss)
    after = state_tensors(model, recipe.optimizer)
    assert all(torch.equal(a, b) for a, b in zip(before, after))  # weights, buffers and momenta untouched
    model.train()
    train_step(model, recipe, images, labels, labels, [], config.clip_grad)
    moved = state_tensors(model, recipe.optimizer)
    assert all(torch.isfinite(t).all() for t in moved if t.is_floating_point())
    assert not all(torch.equal(a, b) for a, b in zip(after, moved))


def test_a_finite_loss_with_a_non_finite_gradient_is_reported_as_a_non_finite_loss():
    """The skip must not be silent: the step log stops a run on a non-finite loss, so a skipped step reports one
    (a NaN gradient under a finite loss: a layer's backward gone wrong, not the data)."""
    model, config, recipe, images, labels = tiny_setup("adamw", amp=False)
    train_step(model, recipe, images, labels, labels, [], config.clip_grad)
    before = state_tensors(model, recipe.optimizer)
    hook = next(model.parameters()).register_hook(lambda grad: torch.full_like(grad, float("nan")))
    model.eval()  # no BatchNorm statistics update: only the step could change anything
    loss, _ = train_step(model, recipe, images, labels, labels, [], config.clip_grad)
    hook.remove()
    assert torch.isnan(loss)
    assert all(torch.equal(a, b) for a, b in zip(before, state_tensors(model, recipe.optimizer)))


def scaler_step(model, recipe, scaler, images, labels, clip_grad):
    """The step as it was written with a gradient scaler at scale 1 (its only job then: the inf/NaN check)."""
    logits = model(images)
    loss = recipe.loss(logits.float(), labels)
    recipe.optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(recipe.optimizer)
    if clip_grad:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad, foreach=True)
    scaler.step(recipe.optimizer)
    scaler.update()


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_the_step_without_a_scaler_trains_the_weights_a_scale_1_scaler_did_bit_for_bit(optimizer):
    """fp32: the scaler at scale 1 multiplied every gradient by exactly 1 and passed found_inf 0; dropping it
    changes no bit of the weights (the modern recipe clips too)."""
    model, config, recipe, images, labels = tiny_setup(optimizer, amp=False)
    reference_model, _, reference_recipe, _, _ = tiny_setup(optimizer, amp=False)
    scaler = torch.amp.GradScaler("cpu", init_scale=1.0, growth_interval=1_000_000_000)
    for _ in range(3):
        train_step(model, recipe, images, labels, labels, [], config.clip_grad)
        scaler_step(reference_model, reference_recipe, scaler, images, labels, config.clip_grad)
    for (name, a), b in zip(model.state_dict().items(), reference_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_fp16_keeps_its_gradient_scaler_and_bf16_and_fp32_have_none():
    for dtype, has_scaler in (("fp16", True), ("bf16", False)):
        config = resolve(TrainConfig(model="cnn", amp=True, amp_dtype=dtype))
        recipe = build_recipe(create_model("cnn", num_classes=4), config, 4, torch.device("cpu"))
        assert (recipe.precision.scaler is not None) is has_scaler
    config = resolve(TrainConfig(model="cnn", amp=False))
    assert build_recipe(create_model("cnn", num_classes=4), config, 4, torch.device("cpu")).precision.scaler is None


def test_muon_skips_on_the_device_without_reading_the_flag_back(monkeypatch):
    """The skip is a torch.where on the device: Tensor.item/bool on the flag would be a per-step sync."""
    model, config, recipe, images, labels = tiny_setup("muon", amp=True)
    train_step(model, recipe, images, labels, labels, [], config.clip_grad)
    reads = []
    for name in ("item", "__bool__"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, _o=original, _n=name: reads.append(_n) or _o(self))
    train_step(model, recipe, images, labels, labels, [], config.clip_grad)
    monkeypatch.undo()
    assert reads == []
    assert copy.deepcopy(recipe.optimizer.state_dict())  # still a plain optimizer state (checkpoints hold it)


# The modern recipe's own work per step (optimizer, clipping and the non-finite check, schedule, EMA, step log,
# the batch's augmentation) beyond the model's forward and backward, in ATen dispatches (benchmarks/step_ops.py;
# its figures in benchmarks/results/step-ops-cpu-2026-12-05.md). The budget leaves room for a few more, not for
# a loop over the parameters (a GradScaler's unscale_, per-buffer copies).
RECIPE_OPS_BUDGET = 80


def test_the_recipe_adds_a_bounded_number_of_operations_per_step_whatever_the_model_size():
    from tests.conftest import load_benchmark

    step_ops = load_benchmark("step_ops")
    rows = [step_ops.count_step_ops(step_ops.step_config(name, None, batch_size=4, image_size=16), steps=3)
            for name in ("cnn", "resnet_tiny")]
    for row in rows:
        assert 0 < row["recipe_and_loop_ops"] <= RECIPE_OPS_BUDGET, row
    # a model with more parameter tensors adds no per-step work: foreach and fused calls take them all at once
    assert abs(rows[0]["recipe_and_loop_ops"] - rows[1]["recipe_and_loop_ops"]) <= 4, rows


def test_the_gradient_norm_and_clipping_are_torchs_clip_grad_norm():
    """One device's norm and clipping, without torch's per-gradient grouping by device: the same values."""
    from utils.training.step import gradient_norm

    torch.manual_seed(0)
    ours = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    theirs = copy.deepcopy(ours)
    inputs = torch.randn(4, 6)
    for model in (ours, theirs):
        model(inputs).pow(2).sum().mul(50).backward()
    norm = gradient_norm(list(ours.parameters()), clip_grad=0.5, needed=True)
    expected = nn.utils.clip_grad_norm_(theirs.parameters(), 0.5, foreach=True)
    assert norm.item() > 0.5 and torch.equal(norm, expected)  # the norm before clipping, as torch returns it
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(ours.parameters(), theirs.parameters()))
    assert gradient_norm(list(ours.parameters()), clip_grad=0, needed=False) is None
    unclipped = gradient_norm(list(ours.parameters()), clip_grad=0, needed=True)
    torch.testing.assert_close(unclipped, nn.utils.get_total_norm([p.grad for p in theirs.parameters()]))
