"""Operations per training step: how much work the host hands the device each step, model and recipe apart.

On a GPU a small model's step is bound by the host: every ATen operation is a dispatch (and most are a
kernel launch), and at batch 128 a CIFAR ResNet-18 waits on them rather than on arithmetic. This
script counts them on any machine (a CPU suffices: the dispatcher is the same), for the loop
``main_modern.py`` runs (``utils/trainer.train``, built by the same functions as ``benchmarks/speed.py``):

- **step**: every operation of a training step of the loop, averaged over ``--steps`` steps after a
  warm-up (the batch, the forward and backward passes, clipping, the optimizer, the schedule, the EMA,
  the step log);
- **model**: the forward pass, the loss and the backward pass alone, on a batch of the same shape;
- **recipe and loop**: the difference, the part of the step this project's code adds around the model.

Counted with a ``TorchDispatchMode`` (every ATen call, in-place and foreach calls counted once), so the
figure does not depend on the batch size or the device's speed.

Under a dispatch mode torch.compile does not run its graph, so ``--compiled`` counts differently, with the
profiler, for the eager and the ``--compile`` step side by side (fp32: on a CPU the whole step compiles in
fp32 only): the **calls** the host makes per step, an ATen operation called from Python or from a compiled
graph's wrapper, or one of inductor's fused kernels (operations called by other operations not counted).

    python benchmarks/step_ops.py                                   # resnet18, efficientnet_b0, modern recipe
    python benchmarks/step_ops.py --models resnet_tiny --preset speed
    python benchmarks/step_ops.py --compiled                        # eager vs --compile, fp32
"""
from __future__ import annotations

import collections
import contextlib
import io
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from utils.config import TrainConfig  # noqa: E402
from utils.data_loader import build_data  # noqa: E402
from utils.errors import OneLineArgumentParser, exit_on_user_error, whole_number  # noqa: E402
from utils.experiment import build_model  # noqa: E402
from utils.presets import PRESETS, preset_settings  # noqa: E402
from utils.resolve import resolve, resolve_amp  # noqa: E402
from utils.trainer import Trainer, prepare_batch, train  # noqa: E402


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while it is active, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def step_config(model: str, preset: Optional[str], batch_size: int, image_size: int) -> TrainConfig:
    """The run whose step is counted: the modern recipe (or a preset) on synthetic data, fp32 or bf16 as resolved."""
    settings: dict[str, Any] = dict(recipe="modern") if preset is None else preset_settings(preset)
    settings.update(model=model, dataset="synthetic", image_size=image_size,
                    batch_size=batch_size, workers=0, cache_dir="", device="cpu", progress=False, probe_images=None,
                    low_res_epochs=0, data_mode="device")
    return resolve_amp(resolve(TrainConfig(**settings)), torch.device("cpu"))


def count_step_ops(config: TrainConfig, steps: int = 4, warmup: int = 2) -> dict[str, Any]:
    """Operations per step of the loop (averaged over ``steps``), of the model alone, and the difference."""
    device = torch.device(config.device)
    # one epoch holds the warm-up and the window: the per-epoch work (checkpoint, evaluation) stays out of it
    config = config.replace(synthetic_size=config.batch_size * (warmup + steps + 1))
    data = build_data(config, device)
    model = build_model(config, data.num_classes).to(device)
    if hasattr(model, "init_from_data"):  # speednet's whitening, fitted as a run fits it
        model.init_from_data(data.normalized_train_sample(64, device, config.seed))
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    epochs = 2 + (warmup + steps) // max(1, data.train_loader.steps_per_epoch)
    config = config.replace(epochs=epochs, eval_every=epochs)
    with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):
        trainer = Trainer(model, data, config, Path(run_dir), device)
        train(trainer, max_steps=warmup)  # optimizer state, EMA copy made
        with OpCounter() as step:
            train(trainer, max_steps=warmup + steps)
    images, targets, _ = prepare_batch(trainer, *next(iter(data.train_loader)))  # as the loop hands them over
    trainer.recipe.optimizer.zero_grad(set_to_none=True)  # as in the loop: the backward pass makes the gradients
    with OpCounter() as alone:
        with trainer.recipe.precision.autocast():
            loss = trainer.recipe.loss(model(images).float(), targets)
        loss.backward()
    per_step = step.total / steps
    return {"model": config.model, "amp": config.amp, "optimizer": config.optimizer, "ema": config.ema,
            "clip_grad": config.clip_grad, "batch_size": config.batch_size, "steps": steps,
            "ops_per_step": round(per_step, 1), "model_ops": alone.total,
            "recipe_and_loop_ops": round(per_step - alone.total, 1),
            "top_recipe_ops": top_difference(step.counts, alone.counts, steps)}


def count_step_calls(config: TrainConfig, steps: int = 4, warmup: int = 2) -> dict[str, Any]:
    """Host calls per step of the loop (profiled; averaged over ``steps``): eager, or the ``--compile`` step."""
    from torch._inductor import config as inductor_config
    from torch.profiler import ProfilerActivity, profile

    device = torch.device(config.device)
    config = config.replace(synthetic_size=config.batch_size * (warmup + steps + 1))
    data = build_data(config, device)
    model = build_model(config, data.num_classes).to(device)
    epochs = 2 + (warmup + steps) // max(1, data.train_loader.steps_per_epoch)
    config = config.replace(epochs=epochs, eval_every=epochs)
    torch._dynamo.reset()
    with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()), \
            inductor_config.patch({"cpp.enable_kernel_profile": True}):
        trainer = Trainer(model, data, config, Path(run_dir), device)
        train(trainer, max_steps=warmup)  # compiled here, if it is
        with profile(activities=[ProfilerActivity.CPU]) as profiled:
            train(trainer, max_steps=warmup + steps)
    calls = collections.Counter()
    for event in profiled.events():
        parent = event.cpu_parent
        called_by_an_op = parent is not None and (parent.name.startswith("aten::") or "cpp_fused" in parent.name)
        if (event.name.startswith("aten::") or "cpp_fused" in event.name) and not called_by_an_op:
            calls["fused kernels" if "cpp_fused" in event.name else event.name] += 1
    return {"model": config.model, "compiled": trainer.compiled or "off", "calls_per_step": sum(calls.values()) / steps,
            "top_calls": {name: n / steps for name, n in calls.most_common(6)}}


def top_difference(step: collections.Counter, alone: collections.Counter, steps: int, count: int = 8) -> dict:
    """The operations the loop adds per step beyond the model's, most frequent first."""
    extra = {name: step[name] / steps - alone.get(name, 0) for name in step}
    return {name: round(n, 1) for name, n in sorted(extra.items(), key=lambda kv: -kv[1])[:count] if n > 0}


def main(argv: Optional[list[str]] = None) -> list[dict[str, Any]]:
    parser = OneLineArgumentParser(prog="step_ops.py", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["resnet18", "efficientnet_b0"])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="count a preset's step (default: the modern recipe)")
    parser.add_argument("--batch-size", type=whole_number(1), default=8,
                        help="images per step (the counts do not depend on it; default 8, fast on a CPU)")
    parser.add_argument("--image-size", type=whole_number(8), default=32)
    parser.add_argument("--steps", type=whole_number(1), default=4, help="steps averaged (default 4)")
    parser.add_argument("--compiled", action="store_true",
                        help="profile the host calls per step of the eager and the --compile step (fp32)")
    args = parser.parse_args(argv)
    if args.compiled:
        return compared_with_compile(args)
    rows = [count_step_ops(step_config(name, args.preset, args.batch_size, args.image_size), args.steps)
            for name in args.models]
    print(f"torch {torch.__version__}, {platform.machine()}; operations per training step (ATen dispatches)")
    print("| model | precision | optimizer | EMA | step | model (fwd+loss+bwd) | recipe and loop | most added |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        top = ", ".join(f"{name} {n:g}" for name, n in list(row["top_recipe_ops"].items())[:5])
        print(f"| {row['model']} | {'bf16' if row['amp'] else 'fp32'} | {row['optimizer']} | {row['ema']} | "
              f"{row['ops_per_step']:g} | {row['model_ops']} | {row['recipe_and_loop_ops']:g} | {top} |")
    return rows


def compared_with_compile(args) -> list[dict[str, Any]]:
    rows = []
    for name in args.models:
        eager = step_config(name, args.preset, args.batch_size, args.image_size).replace(amp=False, channels_last=False)
        for config in (eager, eager.replace(compile=True)):
            rows.append(count_step_calls(config, args.steps))
    print(f"torch {torch.__version__}, {platform.machine()}; host calls per training step (profiled), fp32")
    print("| model | compiled | calls per step | most frequent |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        top = ", ".join(f"{name} {n:g}" for name, n in row["top_calls"].items())
        print(f"| {row['model']} | {row['compiled']} | {row['calls_per_step']:g} | {top} |")
    return rows


if __name__ == "__main__":
    with exit_on_user_error("step_ops.py", file_errors=True):
        main()
