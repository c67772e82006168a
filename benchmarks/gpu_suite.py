"""One command that turns a lent GPU's 30 minutes into the figures this project owes.

Stages, each meant to fit one 10-minute device call, each writing JSON + markdown the moment it ends
(so a stage cut off loses only itself), under ``--results-dir/gpu-suite-<date>/``:

  1. cuda     ``python -m pytest -m cuda``: the checks that only run where CUDA is;
  2. models   every registry model, one epoch of the data with --modern-training: epoch time, img/s,
              peak memory (the "Speed" column of the model table);
  3. long     resnet18 --modern-training for --long-epochs on the data: wall time, final and best
              test accuracy; then efficientnet_b0 and cnn_transformer_base for --option-epochs;
  5. techniques  ``benchmark_all.py --techniques`` at --bench-epochs x --bench-seeds.

(Stage 4, the speed preset against airbench, comes with its issue.) ``--plan`` prints the stages and
their estimated minutes; ``--smoke`` runs every stage on the CPU with synthetic data and a few steps
(the test suite does, so the suite cannot rot while nobody has a GPU).

On the device machine (the working tree travels, ../shared does not):
    tar -czf .gpu/cifar10-jpeg.tgz -C ../shared/data cifar10-jpeg            # here, once; carry .gpu
    mkdir -p .gpu/data && tar -xzf .gpu/cifar10-jpeg.tgz -C .gpu/data         # there
    python benchmarks/gpu_suite.py --data-dir .gpu/data/cifar10-jpeg --stages 1 2
    python benchmarks/gpu_suite.py --data-dir .gpu/data/cifar10-jpeg --stages 3
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from models import list_models  # noqa: E402
from utils.config import TrainConfig  # noqa: E402
from utils.experiment import run_training  # noqa: E402

STAGES = {1: ("cuda", 2), 2: ("models", 8), 3: ("long", 10), 5: ("techniques", 10)}  # name, estimated minutes


def machine() -> str:
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no CUDA)"
    return f"{name}, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}"


def data_settings(args: argparse.Namespace) -> dict[str, Any]:
    if args.smoke:  # a few steps on synthetic data, on whatever device there is
        return {"dataset": "synthetic", "synthetic_size": 64, "image_size": 32, "batch_size": 16, "workers": 0,
                "cache_dir": ""}
    return {"data_dir": args.data_dir}


def train(settings: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """One quiet training run through the function main_modern.py calls; its metrics and peak memory."""
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    config = TrainConfig(**settings, output_dir=str(run_dir), progress=False).resolved()
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = run_training(config)
    metrics["peak_memory_mib"] = (round(torch.cuda.max_memory_allocated() / 2**20, 1)
                                  if torch.cuda.is_available() else None)
    return metrics


# ------------------------------------------------------------------------------------ stages
Save = Callable[[list[dict[str, Any]]], None]  # writes a stage's rows so far (a stage cut off keeps them)


def stage_cuda(args: argparse.Namespace, work: Path, save: Save) -> list[dict[str, Any]]:
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    summary = (result.stdout.strip().splitlines() or [""])[-1]
    return [{"command": " ".join(command[1:]), "exit": result.returncode, "summary": summary,
             "seconds": round(time.perf_counter() - started, 1),
             "failures": [line for line in result.stdout.splitlines() if line.startswith("FAILED")]}]


def stage_models(args: argparse.Namespace, work: Path, save: Save) -> list[dict[str, Any]]:
    rows = []
    for name in (list_models() if not args.models else args.models):
        metrics = train({**data_settings(args), "model": name, "recipe": "modern", "epochs": 1},
                        work / f"models-{name}")
        rows.append({"model": name, "params_m": round(metrics["params"] / 1e6, 2),
                     "epoch_s": metrics["total_time_s"], "train_s": metrics["train_time_s"],
                     "img_per_s": round(metrics["train_images"] / max(metrics["train_time_s"], 1e-9), 1),
                     "peak_memory_mib": metrics["peak_memory_mib"], "test_acc": metrics["final_test_acc"]})
        save(rows)
    return rows


def stage_long(args: argparse.Namespace, work: Path, save: Save) -> list[dict[str, Any]]:
    runs = [("resnet18", args.long_epochs), ("efficientnet_b0", args.option_epochs),
            ("cnn_transformer_base", args.option_epochs)]
    rows = []
    for name, epochs in runs:
        started = time.perf_counter()
        metrics = train({**data_settings(args), "model": name, "recipe": "modern",
                         "epochs": 1 if args.smoke else epochs}, work / f"long-{name}")
        rows.append({"model": name, "epochs": len(metrics["history"]),
                     "wall_s": round(time.perf_counter() - started, 1), "train_s": metrics["train_time_s"],
                     "final_test_acc": metrics["final_test_acc"], "best_test_acc_optimistic": metrics["best_test_acc"],
                     "peak_memory_mib": metrics["peak_memory_mib"]})
        save(rows)
    return rows


def stage_techniques(args: argparse.Namespace, work: Path, save: Save) -> list[dict[str, Any]]:
    out = work / "techniques"
    if args.smoke:
        budget = ["--quick", "--dataset", "synthetic", "--synthetic-size", "64", "--batch-size", "16",
                  "--workers", "0", "--cache-dir", "", "--model", "cnn"]
    else:
        budget = ["--epochs", str(args.bench_epochs), "--seeds", str(args.bench_seeds), "--data-dir", args.data_dir,
                  "--model", "resnet18"]
    command = [sys.executable, "benchmark_all.py", "--techniques", *budget, "--output-dir", str(out), "--no-progress"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    report = out / "RESULTS.md"
    return [{"command": " ".join(command[1:]), "exit": result.returncode,
             "results_md": report.read_text() if report.exists() else result.stderr.strip()[-2000:]}]


RUNNERS: dict[int, Callable[[argparse.Namespace, Path, Save], list[dict[str, Any]]]] = {
    1: stage_cuda, 2: stage_models, 3: stage_long, 5: stage_techniques}


def to_markdown(name: str, command: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"# GPU suite, stage {name}", "", f"`{command}` on {machine()}", ""]
    tabular = [r for r in rows if "results_md" not in r]
    if tabular:
        keys = list(tabular[0])
        lines += ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in tabular]
    for row in rows:
        if "results_md" in row:
            lines += [f"`{row['command']}` exit {row['exit']}", "", row["results_md"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[int, list[dict[str, Any]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, nargs="+", default=sorted(STAGES), choices=sorted(STAGES))
    parser.add_argument("--data-dir", default=".gpu/data/cifar10-jpeg", help="CIFAR-10 as an image folder")
    parser.add_argument("--models", nargs="+", help="stage 2's models (default: all of the registry)")
    parser.add_argument("--long-epochs", type=int, default=50, help="stage 3: resnet18's epochs")
    parser.add_argument("--option-epochs", type=int, default=15, help="stage 3: efficientnet_b0's and "
                        "cnn_transformer_base's epochs")
    parser.add_argument("--bench-epochs", type=int, default=10)
    parser.add_argument("--bench-seeds", type=int, default=2)
    parser.add_argument("--results-dir", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--plan", action="store_true", help="print the stages and estimated minutes, and exit")
    parser.add_argument("--smoke", action="store_true", help="every stage on the CPU, synthetic data, a few steps")
    args = parser.parse_args(argv)
    command = "python benchmarks/gpu_suite.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.plan:
        for number in args.stages:
            name, minutes = STAGES[number]
            print(f"stage {number} {name:<11} ~{minutes} min (one device call each)")
        print(f"total ~{sum(STAGES[n][1] for n in args.stages)} min of the session's 30")
        return {}
    if not args.smoke and not (Path(args.data_dir) / "train").is_dir():
        print(f"gpu_suite.py: error: no CIFAR-10 image folder at {args.data_dir}; untar .gpu/cifar10-jpeg.tgz there "
              f"(see the docstring) or pass --data-dir", file=sys.stderr)
        sys.exit(2)
    out = Path(args.results_dir) / f"gpu-suite{'-smoke' if args.smoke else ''}-{time.strftime('%Y-%m-%d')}"
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    with tempfile.TemporaryDirectory() as work:
        for number in args.stages:
            name = STAGES[number][0]
            started = time.perf_counter()
            stem = out / f"stage{number}-{name}"

            def save(rows: list[dict[str, Any]]) -> None:
                stem.with_suffix(".json").write_text(json.dumps(
                    {"command": command, "machine": machine(), "seconds": round(time.perf_counter() - started, 1),
                     "rows": rows}, indent=2) + "\n")
                stem.with_suffix(".md").write_text(to_markdown(name, command, rows))

            rows = RUNNERS[number](args, Path(work), save)
            save(rows)
            print(f"stage {number} {name}: {time.perf_counter() - started:.0f}s -> {stem}.md", flush=True)
            done[number] = rows
    return done


if __name__ == "__main__":
    main()
