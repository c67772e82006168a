"""Muon (utils/training/muon.py): its update direction is torch.optim.Muon's, its SGD half is torch's SGD, it
resumes."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models import create_model
from utils.config import TrainConfig
from utils.data_loader import build_data
from utils.experiment import build_model
from utils.modern_trainer import learning_rates
from utils.resolve import resolve
from utils.seeds import seed_everything
from utils.trainer import Trainer, train
from utils.training.checkpoint import save_checkpoint
from utils.training.muon import MuonSGD, muon_parameter_groups, orthogonalize


@pytest.mark.parametrize("shape", [(48, 48), (32, 96), (96, 32)])
def test_the_update_direction_is_torch_muons(shape):
    weight = nn.Parameter(torch.randn(shape))
    weight.grad = torch.randn(shape)
    before = weight.detach().clone()
    # lr 1, no decay, no momentum: torch's step is its orthogonalized gradient, times its shape factor
    reference = torch.optim.Muon([weight], lr=1.0, weight_decay=0.0, momentum=0.0, nesterov=False, ns_steps=3)
    reference.step()
    shape_factor = math.sqrt(max(1.0, shape[0] / shape[1]))
    torch_update = (before - weight.detach()) / shape_factor
    ours = orthogonalize(weight.grad, steps=3)
    assert ours.shape == weight.shape and ours.dtype == weight.dtype
    torch.testing.assert_close(ours, torch_update, atol=2e-2, rtol=2e-2)


def test_orthogonalized_updates_have_all_their_singular_values_near_one():
    torch.manual_seed(0)
    update = torch.randn(64, 24, 3, 3) * torch.logspace(-1, 1, 64).view(-1, 1, 1, 1)  # filters of unequal scale
    singular = torch.linalg.svdvals(orthogonalize(update, steps=5).reshape(64, -1).float())
    plain = torch.linalg.svdvals(update.reshape(64, -1))
    assert plain.max() / plain.min() > 100
    assert singular.min() > 0.5 and singular.max() < 1.3  # near 1, not at it: the quintic trades that for speed


def test_filters_go_to_muon_biases_and_head_to_sgd_with_the_same_shrink_per_step():
    model = create_model("speednet", num_classes=10)
    groups = muon_parameter_groups(model, lr=1.5, weight_decay=2e-3, bias_lr_scale=64.0, muon_lr=0.24,
                                   muon_momentum=0.6)
    head, biases, filters = (set(map(id, g["params"])) for g in groups)
    assert filters == {id(p) for p in model.parameters() if p.ndim == 4 and p.requires_grad}
    assert id(model.whiten.weight) not in filters  # frozen: the whitening is fitted, not trained
    assert id(model.whiten.bias) in biases and head == {id(model.fc.weight)}
    assert groups[2]["muon"] and groups[2]["lr"] == 0.24 and groups[2]["momentum"] == 0.6
    assert groups[0]["lr"] == 1.5 and not groups[0]["muon"]  # first: the learning rate the loop logs is --lr's
    assert groups[1]["lr"] * groups[1]["weight_decay"] == pytest.approx(groups[0]["lr"] * groups[0]["weight_decay"])


def test_the_sgd_groups_step_as_torchs_sgd_and_the_filters_keep_their_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(128, 4))
    twin = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(128, 4))
    twin.load_state_dict(model.state_dict())
    ours = MuonSGD(muon_parameter_groups(model, 0.1, 1e-2, 4.0, 0.05, 0.6), lr=0.1, momentum=0.85)
    head = torch.optim.SGD([{"params": [twin[0].bias, twin[2].bias], "lr": 0.4, "weight_decay": 1e-2 / 4},
                            {"params": [twin[2].weight], "lr": 0.1, "weight_decay": 1e-2}],
                           momentum=0.85, nesterov=True)
    for _ in range(3):
        images = torch.randn(4, 3, 6, 6)
        for net, optimizer in ((model, ours), (twin, head)):
            optimizer.zero_grad()
            net(images).square().mean().backward()
            optimizer.step()
        with torch.no_grad():  # the twin's filters follow Muon's, so both nets see the same activations
            twin[0].weight.copy_(model[0].weight)
        filters = model[0].weight.detach()
        # renormalized to √out before the step, then moved by lr × a (near) orthogonal matrix
        assert filters.norm().item() == pytest.approx(math.sqrt(8), rel=0.1)
    for index, name in ((0, "bias"), (2, "weight"), (2, "bias")):
        torch.testing.assert_close(getattr(model[index], name), getattr(twin[index], name))


def test_the_decay_schedule_falls_linearly_to_zero():
    config = resolve(TrainConfig(optimizer="muon", scheduler="decay", lr=2.0, epochs=2, recipe="modern"))
    rates = learning_rates(config, 5)
    assert rates == pytest.approx([2.0 * (1 - step / 10) for step in range(10)])


def test_a_muon_run_stopped_mid_epoch_resumes_as_if_never_stopped(tmp_path):
    def trainer_for(run_dir) -> Trainer:
        run_dir.mkdir(exist_ok=True)
        config = resolve(TrainConfig(dataset="synthetic", image_size=16, synthetic_size=128, batch_size=32, epochs=2,
                                     model="speednet", recipe="modern", optimizer="muon", scheduler="decay", lr=0.5,
                                     norm_bias_lr_scale=8.0, ema=False, amp=False, workers=0, progress=False,
                                     cache_dir="", output_dir=str(run_dir), eval_every=2))
        seed_everything(config.seed)  # as a run starts: the same initial weights for every trainer
        data = build_data(config)
        return Trainer(build_model(config, data.num_classes), data, config, run_dir, torch.device("cpu"))

    whole = trainer_for(tmp_path / "whole")
    train(whole)
    stopped = trainer_for(tmp_path / "stopped")
    train(stopped, max_steps=5)  # one step into epoch 2, momentum buffers full
    save_checkpoint(stopped.checkpoint(), tmp_path / "stopped" / "last.pt")
    resumed = trainer_for(tmp_path / "stopped")
    resumed.restore(tmp_path / "stopped" / "last.pt")
    assert isinstance(resumed.recipe.optimizer, MuonSGD) and resumed.recipe.optimizer.state
    train(resumed)
    for mine, theirs in zip(resumed.model.state_dict().values(), whole.model.state_dict().values()):
        torch.testing.assert_close(mine, theirs)
