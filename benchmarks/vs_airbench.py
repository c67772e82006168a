"""The speed preset against airbench94, on the same GPU and the same data, seed for seed.

airbench (Jordan, 2024, arXiv 2404.00498; ``pip install -r requirements-bench.txt``, version 0.1.8)
reads ``cifar10/train.pt`` and ``cifar10/test.pt`` from the working folder (dicts of uint8 HWC
``images``, int64 ``labels`` and ``classes``). This script writes those files from this project's
data (``--data-dir``), so neither side downloads anything and both see the same pixels, then runs
``main_modern.py --preset speed`` (through ``run_training``, the function the CLI calls) and
airbench's ``train94`` alternately, ``--seeds`` times each, after one untimed warm-up run of each
(cuDNN autotuning, and ``torch.compile``'s compilation with ``--compile``: that first run's time is
reported apart as "first run").

Timing, the same way for both: CUDA events around training plus the final evaluation with TTA,
after a synchronize. For this project's runs that is the trainer's own clock (``train_time_s +
eval_time_s`` in ``metrics.json``: each epoch ends with a read-back of its step log and each
evaluation with a read of its accuracy, so the host clock waits for the device); the run's full
wall time, which adds loading the data, writing checkpoints, plots and the confusion matrix, is
reported beside it. Accuracy: the final test accuracy of the weights each side keeps (the preset's
Lookahead slow weights, or its EMA's if asked; airbench's lookahead weights), each side with its own
test-time augmentation (both: the record's weighted flip-and-shift views).

It prints time and accuracy mean ± std for both and the time ratio, and writes JSON and markdown
under ``benchmarks/results/``. Without CUDA it says so in one line (airbench is CUDA-only).

    python benchmarks/vs_airbench.py --data-dir .gpu/data/cifar10-jpeg --seeds 10
    python benchmarks/vs_airbench.py --data-dir .gpu/data/cifar10-jpeg --seeds 10 --compile
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from utils.cli import epoch_count  # noqa: E402
from utils.config import TrainConfig  # noqa: E402
from utils.data.sources import load_splits  # noqa: E402
from utils.errors import OneLineArgumentParser, exit_on_user_error  # noqa: E402
from utils.experiment import run_training  # noqa: E402
from utils.files import unused_stem  # noqa: E402
from utils.presets import preset_settings  # noqa: E402
from utils.resolve import resolve  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


# ------------------------------------------------------------------------------------ data
def write_airbench_data(data_dir: str, folder: Path, cache_dir: str | None = None) -> Path:
    """Write ``folder/cifar10/{train,test}.pt`` in airbench's layout from this project's data; return ``folder``.

    airbench normalizes with CIFAR-10's published mean and std, so the images must be CIFAR-10's own
    (32×32, 10 classes): another folder would run, but would not be a fair race.
    """
    config = resolve(TrainConfig(data_dir=data_dir, progress=False, cache_dir=cache_dir))
    train, test, classes = load_splits(config)
    target = folder / "cifar10"
    target.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", train), ("test", test)):
        # Shuffled once (seed 0): airbench fits its whitening layer on the first 5,000 training images,
        # and an image folder lists them class by class (the first 5,000 would all be airplanes).
        order = torch.randperm(len(split.labels), generator=torch.Generator().manual_seed(0))
        torch.save({"images": split.images[order].permute(0, 2, 3, 1).contiguous(),  # (N, 3, H, W) -> (N, H, W, 3)
                    "labels": split.labels[order].long(), "classes": list(classes)}, target / f"{name}.pt")
    return folder


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


# ------------------------------------------------------------------------------------ the two sides
def cuda_timed(work: Callable[[], Any]) -> tuple[Any, float]:
    """(result, seconds) of ``work()`` between two CUDA events, after a synchronize on each side."""
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    result = work()
    end.record()
    torch.cuda.synchronize()
    return result, start.elapsed_time(end) / 1000


def run_preset(args: argparse.Namespace, seed: int, run_dir: Path) -> dict[str, Any]:
    settings = {**preset_settings("speed"), "data_dir": args.data_dir, "seed": seed, "progress": False,
                "output_dir": str(run_dir), "compile": args.compile}
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    config = resolve(TrainConfig(**settings))
    metrics, wall = cuda_timed(lambda: run_training(config))
    last = metrics["history"][-1]
    accuracy = last["ema_test_acc"] if last.get("ema_test_acc") is not None else last["test_acc"]
    return {"side": "preset", "seed": seed, "seconds": round(metrics["train_time_s"] + metrics["eval_time_s"], 3),
            "wall_s": round(wall, 3), "accuracy": round(accuracy, 2), "epochs": config.epochs}


def run_airbench(seed: int) -> dict[str, Any]:
    import airbench  # a benchmark-only dependency (requirements-bench.txt); never imported by the library

    torch.manual_seed(seed)
    test_loader = airbench.CifarLoader("cifar10", train=False, batch_size=2000)

    def train_and_evaluate() -> float:
        model = airbench.train94(verbose=False)
        return airbench.evaluate(model, test_loader, tta_level=2)

    accuracy, seconds = cuda_timed(train_and_evaluate)
    return {"side": "airbench94", "seed": seed, "seconds": round(seconds, 3), "wall_s": round(seconds, 3),
            "accuracy": round(100 * accuracy, 2), "epochs": 9.9}


# ------------------------------------------------------------------------------------ report
def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and std (sample) of time and accuracy per side, over the timed runs."""
    out = {}
    for side in sorted({r["side"] for r in rows}):
        mine = [r for r in rows if r["side"] == side]
        out[side] = {"runs": len(mine)}
        for key in ("seconds", "wall_s", "accuracy"):
            values = [r[key] for r in mine]
            out[side][f"{key}_mean"] = round(statistics.fmean(values), 3)
            out[side][f"{key}_std"] = round(statistics.stdev(values), 3) if len(values) > 1 else 0.0
    if {"preset", "airbench94"} <= set(out):
        out["ratio"] = {"time_preset_over_airbench": round(out["preset"]["seconds_mean"]
                                                           / out["airbench94"]["seconds_mean"], 3)}
    return out


def markdown(summary: dict[str, Any], warmups: list[dict[str, Any]], header: str) -> str:
    lines = [header, "", "| side | runs | time (s), train + TTA eval | full wall (s) | test accuracy (%) |",
             "| --- | --- | --- | --- | --- |"]
    for side in ("preset", "airbench94"):
        if side in summary:
            s = summary[side]
            lines.append(f"| {side} | {s['runs']} | {s['seconds_mean']:.2f} ± {s['seconds_std']:.2f} | "
                         f"{s['wall_s_mean']:.2f} ± {s['wall_s_std']:.2f} | {s['accuracy_mean']:.2f} ± "
                         f"{s['accuracy_std']:.2f} |")
    if "ratio" in summary:
        lines += ["", f"Time ratio, preset / airbench94: {summary['ratio']['time_preset_over_airbench']:.2f}"]
    lines += ["", "First (untimed warm-up) runs, which include cuDNN autotuning"
              + (" and torch.compile's compilation" if "compile" in header else "") + ":"]
    lines += [f"- {w['side']}: {w['seconds']:.2f} s ({w['accuracy']:.2f}%)" for w in warmups]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="vs_airbench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="CIFAR-10 as an image folder (train/ and test/)")
    parser.add_argument("--seeds", type=int, default=10, help="timed runs of each side (default 10)")
    parser.add_argument("--epochs", type=epoch_count, help="the preset's epochs (default: the preset's; 9.9 is "
                        "airbench94's)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the preset's model")
    parser.add_argument("--output", help="basename of the JSON/markdown files (default vs-airbench-<date>)")
    parser.add_argument("--results-dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("vs_airbench.py: needs a CUDA GPU (airbench is CUDA-only), and none is visible", file=sys.stderr)
        return 2
    try:
        import airbench  # noqa: F401
    except ImportError:
        print("vs_airbench.py: airbench is not installed; pip install -r requirements-bench.txt", file=sys.stderr)
        return 2
    args.data_dir = str(Path(args.data_dir).resolve())  # the airbench side runs in its own folder
    command = "python benchmarks/vs_airbench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = (f"# Speed preset vs airbench94\n\n`{command}` on {torch.cuda.get_device_name()}, torch "
              f"{torch.__version__}, airbench {getattr(airbench, '__version__', '0.1.8')}, {time.strftime('%Y-%m-%d')}"
              f"{', compile' if args.compile else ''}. Time: CUDA-synchronized, training + final TTA evaluation; "
              f"full wall adds data loading and the run's files (preset only).")
    rows, warmups = [], []
    results = Path(args.results_dir)
    results.mkdir(parents=True, exist_ok=True)
    base = unused_stem(results, args.output or f"vs-airbench-{time.strftime('%Y-%m-%d')}", (".json", ".md"))
    with tempfile.TemporaryDirectory() as scratch:
        work = write_airbench_data(args.data_dir, Path(scratch))
        with working_directory(work):
            warmups.append(run_preset(args, 0, work / "runs" / "warmup"))
            warmups.append(run_airbench(0))
            for seed in range(args.seeds):  # alternating, so drifts of clock or temperature hit both sides
                rows.append(run_preset(args, seed, work / "runs" / f"seed-{seed}"))
                rows.append(run_airbench(seed))
                print(f"seed {seed}: preset {rows[-2]['seconds']:.2f}s {rows[-2]['accuracy']:.2f}% | "
                      f"airbench94 {rows[-1]['seconds']:.2f}s {rows[-1]['accuracy']:.2f}%", flush=True)
                summary = summarize(rows)  # written after every pair: a cut-off run keeps what it measured
                (results / f"{base}.json").write_text(json.dumps(
                    {"header": header, "summary": summary, "warmups": warmups, "rows": rows}, indent=2) + "\n")
                (results / f"{base}.md").write_text(markdown(summary, warmups, header))
    print(markdown(summarize(rows), warmups, header))
    print(f"written: {results / (base + '.json')} and .md")
    return 0


if __name__ == "__main__":
    with exit_on_user_error("vs_airbench.py", file_errors=True):
        sys.exit(main())
