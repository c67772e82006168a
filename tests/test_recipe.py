"""The modern recipe's parts: schedule, weight-decay groups, EMA, clipping, label smoothing, AMP."""
import math

import pytest
import torch
from torch import nn

from models import create_model
from utils.config import TrainConfig
from utils.modern_trainer import (Precision, build_ema, build_loss, build_optimizer, build_scheduler, ema_decay_at,
                                  learning_rates, parameter_groups, step_decay_factor, warmup_cosine_factor)
from utils.resolve import resolve


def test_warmup_reaches_the_peak_then_cosine_ends_near_zero():
    total, warmup = 1000, 100
    factors = [warmup_cosine_factor(s, total, warmup) for s in range(total)]
    assert factors[0] == pytest.approx(1 / warmup)
    assert factors[warmup - 1] == pytest.approx(1.0)  # end of warm-up: the peak
    assert all(a < b for a, b in zip(factors[:warmup - 1], factors[1:warmup]))  # rising
    assert all(a >= b for a, b in zip(factors[warmup:], factors[warmup + 1:]))  # then never rising
    assert factors[-1] < 1e-4
    assert factors[warmup + (total - warmup) // 2] == pytest.approx(0.5, abs=0.01)  # cosine's midpoint


def test_scheduler_is_stepped_per_iteration():
    model = nn.Linear(2, 2)
    config = resolve(TrainConfig(recipe="modern", epochs=4, lr=0.1, warmup_epochs=1))
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1) and lrs[-1] < 0.001


def test_step_decay():
    assert step_decay_factor(0, 10, 2, 0.1, 100) == 1.0
    assert step_decay_factor(19, 10, 2, 0.1, 100) == 1.0
    assert step_decay_factor(20, 10, 2, 0.1, 100) == pytest.approx(0.1)
    assert step_decay_factor(45, 10, 2, 0.1, 100) == pytest.approx(0.01)


@pytest.mark.parametrize("epochs", [5, 30, 200])
def test_the_default_step_schedule_spends_the_same_shares_of_any_run_at_each_rate(epochs):
    """No --step-size: a tenth of the rate at half the run, a hundredth at three quarters, whatever its length
    (a third of a 5-epoch run is 2 epochs, which left 3 of 5 epochs at a tenth or less)."""
    config = resolve(TrainConfig(epochs=epochs))
    assert config.scheduler == "step" and config.step_size is None
    rates = learning_rates(config, steps_per_epoch=40)
    shares = [sum(r == pytest.approx(config.lr * f) for r in rates) / len(rates) for f in (1.0, 0.1, 0.01)]
    assert shares == [0.5, 0.25, 0.25]


def test_no_weight_decay_on_norms_biases_and_embeddings():
    model = create_model("vit_tiny")
    decay, no_decay = parameter_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    decay_names = {names[id(p)] for p in decay["params"]}
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {"cls_token", "pos_embedding"} <= no_decay_names
    assert all(n.endswith(("bias", "weight")) for n in decay_names)
    assert not any("norm" in n or n.endswith("bias") for n in decay_names)
    assert len(decay_names) + len(no_decay_names) == len(list(model.parameters()))


def test_adamw_decouples_weight_decay():
    config = resolve(TrainConfig(recipe="modern"))
    optimizer = build_optimizer(create_model("cnn"), config)
    assert isinstance(optimizer, torch.optim.AdamW) and config.weight_decay == 0.05


def test_ema_decay_warms_up_then_caps():
    assert ema_decay_at(1, 0.999) == pytest.approx(2 / 11)
    assert ema_decay_at(100, 0.999) == pytest.approx(101 / 110)
    assert ema_decay_at(10**6, 0.999) == 0.999


def test_ema_update_follows_the_formula():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    ema = build_ema(model, resolve(TrainConfig(ema=True, ema_decay=0.9)))
    ema.update_parameters(model)  # first update copies
    torch.testing.assert_close(ema.module.weight, model.weight)
    previous = ema.module.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update_parameters(model)  # second update: decay = min(0.9, 2/11)
    decay = ema_decay_at(1, 0.9)
    torch.testing.assert_close(ema.module.weight, decay * previous + (1 - decay) * model.weight)


def test_ema_is_off_in_the_standard_recipe():
    assert build_ema(nn.Linear(2, 2), resolve(TrainConfig())) is None


def test_gradient_clipping_bounds_the_norm():
    model = nn.Linear(10, 10)
    (model(torch.randn(8, 10)) * 1000).sum().backward()
    before = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    after = torch.norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert before > 1.0 and after == pytest.approx(1.0, rel=1e-4)


def test_label_smoothing_in_the_loss_matches_the_formula():
    logits, labels = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    smoothed = build_loss(resolve(TrainConfig(recipe="modern")))(logits, labels)
    log_probs = logits.log_softmax(1)
    targets = torch.full((5, 4), 0.1 / 4).scatter_(1, labels[:, None], 0.9 + 0.1 / 4)
    torch.testing.assert_close(smoothed, -(targets * log_probs).sum(1).mean())


def test_standard_and_modern_configs_differ_where_the_recipe_says():
    standard, modern = resolve(TrainConfig()), resolve(TrainConfig(recipe="modern"))
    assert (standard.optimizer, standard.scheduler, standard.label_smoothing, standard.ema, standard.clip_grad) == \
        ("adam", "step", 0.0, False, None)
    assert (modern.optimizer, modern.scheduler, modern.label_smoothing, modern.ema, modern.clip_grad) == \
        ("adamw", "cosine", 0.1, True, 1.0)
    assert resolve(TrainConfig(recipe="modern", ema=False, label_smoothing=0.0)).ema is False


def test_bf16_autocast_on_cpu_keeps_the_loss_finite_and_decreasing():
    torch.manual_seed(0)
    model = create_model("resnet_tiny", num_classes=4)
    config = resolve(TrainConfig(recipe="modern", amp=True, amp_dtype="bf16", lr=1e-3))
    precision = Precision.from_config(config, torch.device("cpu"))
    # bf16 needs no loss scaling: no gradient scaler (the step's gradient norm finds non-finite gradients)
    assert precision.dtype == torch.bfloat16 and precision.scaler is None
    optimizer = build_optimizer(model, config)
    images, labels = torch.randn(16, 3, 32, 32), torch.arange(16) % 4
    losses = []
    for _ in range(8):
        with precision.autocast():
            logits = model(images)
        assert logits.dtype == torch.bfloat16
        loss = nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(l) for l in losses)
    assert losses[-1] < losses[0]
