"""--compile: the whole training step as one graph (utils/training/compiled_step.py), checked on the CPU.

One compilation serves every check (a compile of even a small model takes seconds on a CPU).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models import create_model
from utils.config import TrainConfig
from utils.modern_trainer import build_recipe
from utils.resolve import resolve
from utils.training.compiled_step import CompiledStep, whole_step_supported
from utils.training.step import train_step

pytestmark = pytest.mark.skipif(whole_step_supported.__module__ and not hasattr(torch._dynamo.config,
                                                                                "trace_autograd_ops"),
                                reason="this torch cannot trace a backward pass into a graph")


def setup(optimizer: str):
    torch.manual_seed(0)
    model = create_model("cnn", num_classes=4)
    for module in model.modules():  # compiled code draws dropout masks from its own generator: no dropout here
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
    config = resolve(TrainConfig(model="cnn", recipe="modern", optimizer=optimizer, amp=False, ema=False, lr=0.01,
                                 clip_grad=1.0))
    recipe = build_recipe(model, config, steps_per_epoch=8, device=torch.device("cpu"))
    for group in recipe.optimizer.param_groups:
        # Adam's step is about lr·sign(gradient) where a gradient is near 0: there a last-bit difference of a
        # reordered sum flips it. A larger eps makes the comparison of two implementations meaningful.
        group["eps"] = 1e-3
    return model, config, recipe


@pytest.fixture(scope="module")
def compiled_and_eager():
    """The same model and recipe twice: one trained by the compiled step, one by the eager step, in step."""
    torch._dynamo.reset()
    compiled, eager = setup("adamw"), setup("adamw")
    step = CompiledStep(compiled[0], compiled[2])
    return compiled, eager, step


def batch(seed: int):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(8, 3, 32, 32, generator=generator), torch.randint(0, 4, (8,), generator=generator)


def test_the_compiled_step_trains_the_eager_steps_weights_and_never_recompiles(compiled_and_eager, monkeypatch):
    """fp32, AdamW with clipping, the learning rate changed by the schedule every step: the weights agree with
    the eager step's to 1e-5 (inductor fuses and reorders fp32 arithmetic), and after the first call no step
    compiles again (a Python-float learning rate would)."""
    (model, config, recipe), (eager_model, _, eager_recipe), step = compiled_and_eager
    assert whole_step_supported(recipe, distributed=False) is None
    for i in range(4):
        images, labels = batch(i)
        loss, correct = step(model, recipe, images, labels, labels, [], config.clip_grad)
        eager_loss, eager_correct = train_step(eager_model, eager_recipe, images, labels, labels, [], config.clip_grad)
        assert loss.item() == pytest.approx(eager_loss.item(), rel=1e-5) and correct.item() == eager_correct.item()
        recipe.scheduler.step()
        eager_recipe.scheduler.step()
        if i == 0:
            monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)  # from here on a recompile fails
    assert recipe.optimizer.param_groups[0]["lr"] != config.lr  # the schedule did move it
    for (name, a), b in zip(model.state_dict().items(), eager_model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    # the optimizer's own state holds the moments: a checkpoint of a compiled run is an ordinary one
    state = recipe.optimizer.state_dict()["state"]
    assert state and all(s["step"].item() == 4 for s in state.values())


def test_a_non_finite_gradient_in_the_compiled_step_leaves_the_weights_as_they_were(compiled_and_eager):
    (model, config, recipe), _, step = compiled_and_eager
    images, labels = batch(10)
    step(model, recipe, images, labels, labels, [], config.clip_grad)
    before = [p.detach().clone() for p in model.parameters()]
    images[0, 0, 0, 0] = float("inf")  # (BatchNorm's running statistics, buffers, take it in the forward pass)
    loss, _ = step(model, recipe, images, labels, labels, [], config.clip_grad)
    assert not torch.isfinite(loss)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_muon_fp16_and_torchrun_compile_the_model_alone_and_say_why():
    model, config, recipe = setup("muon")
    assert "MuonSGD" in whole_step_supported(recipe, distributed=False)
    model, config, recipe = setup("adamw")
    assert "torchrun" in whole_step_supported(recipe, distributed=True)
    fp16 = resolve(TrainConfig(model="cnn", amp=True, amp_dtype="fp16"))
    assert "fp16" in whole_step_supported(build_recipe(model, fp16, 8, torch.device("cpu")), distributed=False)
    # inductor's CPU code gave speednet's bf16 step NaN gradients (aot_eager, the same graph, gave the eager ones)
    bf16 = resolve(TrainConfig(model="cnn", amp=True, amp_dtype="bf16"))
    assert "bf16" in whole_step_supported(build_recipe(model, bf16, 8, torch.device("cpu")), distributed=False)
