"""``--compare-models`` (learning level 5): the same run for several models, a table, ``comparison.json`` and
a chart, with what each model costs to run (forward GFLOPs, batch-1 latency) beside its accuracy.

Re-running an interrupted comparison continues it: each model's run is skipped when finished, resumed
from its ``last.pt`` otherwise (:func:`continue_model_run`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from utils.config import TrainConfig
from utils.devices import select_device
from utils.errors import UserError
from utils.experiment import build_model, run_training
from utils.files import write_json
from utils.model_cost import forward_gflops, inference_latency_ms
from utils.resolve import resolve
from utils.training.checkpoint import load_checkpoint
from utils.training.run_dir import holds_checkpoint, unique_run_dir
from utils.visualization import plot_comparison


def compare_models(config: TrainConfig, names: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    """Train each model with the same settings; write ``comparison.json`` and ``comparison.png``."""
    from models import list_models

    names = list(names) or list_models()  # none named: every registry model, as the product promised
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UserError(f"--compare-models names {', '.join(twice)} more than once; name each model once")
    for name in names:
        resolve(config.replace(model=name))  # every name is checked before hours are spent on the first
    base = Path(config.output_dir) if config.output_dir else unique_run_dir(Path("runs"), "compare")
    results = []
    for name in names:
        model_config = resolve(config.replace(model=name, output_dir=str(base / name), resume=False))
        metrics = continue_model_run(model_config)
        shown = ("model", "params", "best_test_acc", "final_test_acc", "total_time_s")
        results.append({**{key: metrics[key] for key in shown}, **trained_model_cost(model_config, base / name)})
    write_json(base / "comparison.json", {"config": config.to_dict(), "results": results})
    plot_comparison([r["model"] for r in results], [r["final_test_acc"] for r in results], base / "comparison.png",
                    ylabel="final test accuracy (%)",
                    title=f"{config.epochs} epochs on {config.subset or 'all'} training images, "
                          f"{config.recipe} recipe, seed {config.seed}",
                    annotations=[f"{r['params'] / 1e6:.1f}M, {r['latency_ms']:.1f} ms" for r in results])
    print(format_table(results))
    print(f"comparison written to {base / 'comparison.json'} and {base / 'comparison.png'}")
    return results


# Settings that do not change what a finished run is: those that change no result, and the precision this
# machine chose (a run finished in bf16 here is not trained again in fp32 elsewhere).
BOOKKEEPING = TrainConfig.result_free_fields() | {"amp", "amp_dtype", "channels_last"}


def continue_model_run(config: TrainConfig) -> dict[str, Any]:
    """One model of a comparison: skipped when its folder holds it finished, resumed from its ``last.pt``, else run.

    Re-running an interrupted ``--compare-models`` command therefore continues it (as ``benchmark_all.py``
    does); a folder holding the model trained with other settings is refused.
    """
    run_dir = Path(config.output_dir)
    if holds_checkpoint(run_dir):
        saved = load_checkpoint(run_dir / "last.pt")
        differ = sorted(k for k, v in config.to_dict().items()
                        if k not in BOOKKEEPING and saved["config"].get(k, v) != v)
        if differ:
            raise UserError(f"{run_dir} holds {config.model} trained with other settings ({', '.join(differ)}); "
                            f"re-run the command that made it, or choose another --output-dir")
        if saved["epoch"] >= config.epochs:
            print(f"{config.model}: finished in {run_dir}, not trained again", flush=True)
            return json.loads((run_dir / "metrics.json").read_text())
        return run_training(config.replace(resume=True))
    return run_training(config)


def trained_model_cost(config: TrainConfig, run_dir: Path) -> dict[str, float]:
    """A trained model's forward GFLOPs per image and its latency (batch 1, fp32) on the run's device."""
    checkpoint = load_checkpoint(run_dir / "last.pt")
    device = select_device(config.device)
    model = build_model(config, len(checkpoint["class_names"])).to(device)
    return {"gflops": round(forward_gflops(model, config.image_size), 4),
            "latency_ms": round(inference_latency_ms(model, config.image_size), 3), "latency_device": str(device)}


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """The comparison: the final accuracy first (the headline), then what each model costs."""
    lines = [f"{'model':<24} {'final acc %':>11} {'best acc %':>10} {'params (M)':>10} {'GFLOPs':>7} "
             f"{'latency (ms)':>12} {'train time (s)':>14}"]
    for r in results:
        lines.append(f"{r['model']:<24} {r['final_test_acc']:>11.2f} {r['best_test_acc']:>10.2f} "
                     f"{r['params'] / 1e6:>10.2f} {r['gflops']:>7.3f} {r['latency_ms']:>12.2f} {r['total_time_s']:>14.1f}")
    lines.append("latency: one image (batch 1, fp32) through the model on this device, median of 30; "
                 "best acc is chosen on the test set (optimistic)")
    return "\n".join(lines)
