"""The speed records' ingredients, each a named option: checked against the library or a hand reference."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.transforms.v2 import functional as TF

from models import create_model
from utils.cli import epoch_count
from utils.config import TrainConfig
from utils.data.batch_augment import crop_with_padding
from utils.data_loader import DataBundle, build_data
from utils.errors import UserError
from utils.evaluation import predict, tta_views, view_weights
from utils.experiment import build_model
from utils.modern_trainer import (Lookahead, build_optimizer, learning_rates, lookahead_decay_at,
                                  piecewise_linear_factor)
from utils.resolve import resolve, resolve_amp
from utils.trainer import Trainer, frozen_parameters, train
from utils.training.step import drop_gradients

from tests.conftest import SYNTHETIC, train_and_read_metrics


def test_the_whitening_sample_of_a_class_sorted_set_holds_every_class_in_proportion():
    labels = torch.arange(5).repeat_interleave(200)  # class-sorted, as an image folder is listed
    images = labels.view(-1, 1, 1, 1).expand(-1, 3, 4, 4).to(torch.uint8).clone()  # channel 0 = the label
    images[:, 1] = (torch.arange(len(labels)) % 256).view(-1, 1, 1).to(torch.uint8)  # channel 1: which image
    bundle = DataBundle(None, None, [str(c) for c in range(5)], (0.0,) * 3, (1.0,) * 3, "folder",
                        train_images=images, train_labels=labels)
    sample = bundle.normalized_train_sample(100, torch.device("cpu"), seed=3)
    drawn = (sample[:, 0, 0, 0] * 255).round().long()
    assert torch.bincount(drawn, minlength=5).tolist() == [20] * 5  # the first 100 would all be class 0
    assert not torch.equal(sample, bundle.normalized_train_sample(100, torch.device("cpu"), seed=4))


def test_the_piecewise_linear_schedule_is_numpys_interpolation():
    total, peak = 230, 53
    steps = np.arange(total + 1)
    want = np.interp(steps, [0, peak, total], [0.2, 1.0, 0.07])
    got = [piecewise_linear_factor(int(s), total, peak) for s in steps]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_norm_biases_get_their_own_group_that_shrinks_per_step_like_the_weights():
    model = create_model("speednet", num_classes=10)
    config = resolve(TrainConfig(model="speednet", optimizer="sgd", lr=1.5, weight_decay=1.33e-3,
                                 norm_bias_lr_scale=64.0))
    groups = build_optimizer(model, config).param_groups
    biases = {id(m.bias) for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    fast = [g for g in groups if {id(p) for p in g["params"]} == biases]
    assert len(fast) == 1 and fast[0]["lr"] == pytest.approx(96.0)
    assert fast[0]["lr"] * fast[0]["weight_decay"] == pytest.approx(groups[0]["lr"] * groups[0]["weight_decay"])
    plain = build_optimizer(model, config.replace(norm_bias_lr_scale=1.0)).param_groups
    assert len(plain) == 2 and all(g["lr"] == 1.5 for g in plain)


def test_lookahead_moves_the_slow_weights_and_restarts_the_fast_ones_from_them():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    lookahead = Lookahead(model)
    slow = [p.detach().clone() for p in model.state_dict().values() if p.is_floating_point()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model[1].running_mean.add_(1.0)
    fast = [p.detach().clone() for p in model.state_dict().values() if p.is_floating_point()]
    lookahead.step(10, 20)  # a sync step (10 % 5 == 0)
    decay = lookahead_decay_at(10, 20)
    now = [p for p in model.state_dict().values() if p.is_floating_point()]
    for s, f, n in zip(slow, fast, now):
        torch.testing.assert_close(n, decay * s + (1 - decay) * f)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    lookahead.step(11, 20)  # not a sync step: the fast weights keep their own way
    assert not torch.equal(model[0].weight, lookahead.slow[0])
    lookahead.step(20, 20)  # the last step: the run ends on the slow weights
    assert torch.equal(model[0].weight, lookahead.slow[0])


def test_a_frozen_whitening_bias_stays_put_while_the_rest_trains():
    model = create_model("speednet", num_classes=10)
    model.init_from_data(torch.randn(64, 3, 32, 32))
    optimizer = build_optimizer(model, resolve(TrainConfig(model="speednet", optimizer="sgd", lr=0.1)))
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))

    def step(frozen: list) -> tuple[torch.Tensor, torch.Tensor]:
        before = model.whiten.bias.detach().clone(), model.fc.weight.detach().clone()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(images), labels).backward()
        drop_gradients(frozen)
        optimizer.step()
        return before

    assert frozen_parameters(model, epoch=0, train_epochs=1) == []
    bias, head = step([])  # epoch 0 of 1: the bias trains
    assert not torch.equal(bias, model.whiten.bias)
    frozen = frozen_parameters(model, epoch=1, train_epochs=1)
    assert len(frozen) == 1 and frozen[0] is model.whiten.bias and frozen[0].requires_grad  # DDP reduces it still
    bias, head = step(frozen)  # momentum and weight decay would move it, were its gradient kept
    assert torch.equal(bias, model.whiten.bias) and not torch.equal(head, model.fc.weight)


def test_reflect_padded_crops_are_torchvisions():
    images = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    offsets = torch.randint(0, 5, (5, 2))
    got = crop_with_padding(images, 2, offsets, "reflect")
    for image, (top, left), crop in zip(images, offsets.tolist(), got):
        padded = TF.pad(image, [2, 2, 2, 2], padding_mode="reflect")
        assert torch.equal(crop, padded[:, top:top + 8, left:left + 8])


def test_weighted_views_are_the_records_and_their_weights_sum_to_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(5))
    images = torch.randn(2, 3, 8, 8)
    model(images)
    views = tta_views(images, "weighted")
    shifted = TF.pad(images, [1, 1, 1, 1], padding_mode="reflect")[..., :8, :8]  # 1 pixel down-right
    assert len(views) == 6 and torch.equal(views[2], shifted) and torch.equal(views[3], shifted.flip(-1))
    weights = view_weights("weighted", 6)
    assert sum(weights) == pytest.approx(1.0) and weights[0] == 2 * weights[2]
    want = sum(w * model(v) for w, v in zip(weights, views))
    torch.testing.assert_close(predict(model, images, "weighted"), want)


@pytest.mark.parametrize("native, amp, want", [(True, None, (True, "bf16", True)), (False, None, (False, "bf16", False)),
                                               (True, False, (False, "bf16", False))])
def test_the_modern_recipe_runs_bf16_on_cpus_that_have_it(monkeypatch, native, amp, want):
    monkeypatch.setattr("utils.resolve.cpu_has_native_bf16", lambda: native)
    config = resolve_amp(resolve(TrainConfig(recipe="modern", amp=amp)), torch.device("cpu"))
    assert (config.amp, config.amp_dtype, config.channels_last) == want
    standard = resolve_amp(resolve(TrainConfig()), torch.device("cpu"))
    assert not standard.amp  # the standard recipe (level 1) stays fp32


def test_a_fractional_epoch_count_ends_the_last_epoch_part_way(tmp_path, capfd):
    import main_modern

    # 128 images in batches of 32: 4 steps an epoch; 1.5 epochs = 6 steps, the second epoch stopped after 2
    argv = [*SYNTHETIC, "--model", "cnn", "--batch-size", "32", "--epochs", "1.5", "--scheduler", "linear"]
    _, metrics = train_and_read_metrics(main_modern.main, argv, tmp_path / "run", capfd)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert metrics["history"][-1]["test_acc"] is not None  # the partial last epoch is the evaluated one
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["global_step"] == 6
    config = resolve(TrainConfig(epochs=1.5, scheduler="linear", recipe="modern"))
    assert config.last_epoch == 2 and len(learning_rates(config, 4)) == 6
    # 1.1 epochs of 4 steps would round to 4: the second epoch, once begun, trains at least one step
    assert TrainConfig(epochs=1.1).total_steps(4) == 5 and TrainConfig(epochs=9.9).total_steps(97) == 960
    assert epoch_count("10") == 10 and isinstance(epoch_count("10"), int) and epoch_count("9.9") == 9.9
    with pytest.raises(argparse.ArgumentTypeError, match="finite"):
        epoch_count("inf")


def test_a_run_stopped_on_its_last_step_trains_no_further_when_continued(tmp_path):
    config = resolve(TrainConfig(dataset="synthetic", image_size=16, synthetic_size=128, batch_size=32, epochs=1.5,
                                 workers=0, progress=False, cache_dir="", output_dir=str(tmp_path)))
    data = build_data(config)
    trainer = Trainer(build_model(config, data.num_classes), data, config, tmp_path, torch.device("cpu"))
    train(trainer, max_steps=6)  # returns mid-epoch, as a run stopped on its final step is saved
    assert (trainer.state.epoch, trainer.state.step_in_epoch, trainer.state.global_step) == (1, 2, 6)
    train(trainer)  # what a resume does: the rest of the epoch holds no step of this run
    assert trainer.state.global_step == 6 and [h["epoch"] for h in trainer.state.history] == [1, 2]


def test_progressive_resizing_feeds_shrunk_images_for_the_first_epochs_only(tmp_path):
    config = resolve(TrainConfig(dataset="synthetic", image_size=16, synthetic_size=64, batch_size=32, epochs=3,
                                 low_res_epochs=2, low_res_size=12, workers=0, progress=False, cache_dir="",
                                 output_dir=str(tmp_path)))
    data = build_data(config)
    model = build_model(config, data.num_classes)
    trainer = Trainer(model, data, config, tmp_path, torch.device("cpu"))
    seen = []  # (epoch, side) of every training batch
    model.register_forward_pre_hook(lambda module, args: seen.append((trainer.state.epoch, args[0].shape[-1]))
                                    if module.training else None)
    train(trainer)
    assert sorted(set(seen)) == [(0, 12), (1, 12), (2, 16)]
    # the same shrink as torchvision's antialiased resize
    images = torch.rand(2, 3, 16, 16)
    shrunk = nn.functional.interpolate(images, size=12, mode="bilinear", antialias=True)
    assert torch.allclose(shrunk, TF.resize(images, [12, 12], antialias=True), atol=1e-5)


def test_progressive_resizing_is_refused_for_a_model_built_for_one_size():
    with pytest.raises(UserError, match="--low-res-size 24"):
        resolve(TrainConfig(model="vit_tiny", low_res_epochs=2, low_res_size=24))
    with pytest.raises(UserError, match="--low-res-size must be"):
        resolve(TrainConfig(model="speednet", low_res_epochs=2, low_res_size=40))
