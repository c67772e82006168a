"""One command that turns a lent GPU's minutes into every figure this project owes, in priority order.

Claim: on one H200 the whole visit is one command of about 9 minutes (``benchmarks/gpu/gpu_run.sh``), and
nothing it measured is lost when an item fails or runs out of time. Evidence: ``--plan`` (the boxes
add up to at most 9 minutes, a test checks it), ``--smoke`` (the same items on the CPU in under a
minute, in the test suite), and the results under ``benchmarks/results/gpu-<date>/``.

Items, each in its own process with a time box (unused time passes to the next item):

  cuda        ``python -m pytest -m cuda``: the checks that only run where CUDA is;
  steps       steady-state training img/s of resnet18 and efficientnet_b0 (modern recipe, synthetic data on
              the device): batch 128 eager, the step compiled whole (``--compile``) and replayed as CUDA
              graphs (``--compile graphs``), and batch 512 eager, side by side in one process; a timed window
              of CUDA-synchronized steps after a warm-up, whose time (compilation, autotuning) is reported apart;
  flagship    the original README's Option A, ``main_modern.py --model resnet18 --modern-training
              --epochs 50`` on the full data: final test accuracy, training time, img/s;
  airbench    ``--preset speed`` against airbench94 (``benchmarks/vs_airbench.py``), seed for seed,
              first-run (autotune) costs reported apart;
  models      every registry model with the modern recipe, steady state at batch 128: img/s, the epoch time
              it projects, peak memory (the model table's columns, the FAQ's memory), warm-up apart;
  techniques  ``benchmark_all.py --techniques`` at whatever budget fits the rest.

An item that reaches its box is sent SIGINT (the trainer saves and stops cleanly), then killed; the
suite records how far it got (epochs done and the projection to the end, read from the run's
``metrics.json``). An item that fails records its traceback and the next one runs. Results go into
``--out`` as they come, in at most 8 files: ``gpu-suite.json`` (everything), ``gpu-suite.md`` and a
few PNGs. ``benchmarks/gpu/gpu_docs.py`` turns the JSON into README's and the guide's GPU figures.

    python benchmarks/gpu/gpu_suite.py --plan
    python benchmarks/gpu/gpu_suite.py --data-dir .gpu/data/cifar10-jpeg --out OUT
    python benchmarks/gpu/gpu_suite.py --smoke --out /tmp/gpu-smoke          # the CPU, synthetic data, < 1 min
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

TOTAL_S = 540  # 9 minutes: the device call's 10-minute limit less unpacking, start-up and the report
GRACE_S = 12  # an item is sent SIGINT this long before its box ends, and killed at the end

from utils.errors import OneLineArgumentParser, UserError, exit_on_user_error, positive_number  # noqa: E402


@dataclass(frozen=True)
class Item:
    name: str
    box_s: int
    what: str


ITEMS = (
    Item("cuda", 60, "python -m pytest -m cuda (two of its tests compile)"),
    Item("steps", 150, "steady-state img/s: resnet18 and efficientnet_b0, eager / compiled / graphs at 128, eager at 512"),
    Item("flagship", 150, "resnet18 --modern-training --epochs 50, full data (decodes the data first)"),
    Item("airbench", 100, "--preset speed vs airbench94 (vs_airbench.py)"),
    Item("models", 60, "steady-state img/s of every registry model, modern recipe, batch 128"),
    Item("techniques", 20, "benchmark_all.py --techniques, the rest of the time"),
)
# The steps item's variants: (label, batch, --compile mode); each model runs them in this order.
STEP_VARIANTS = (("eager", 128, "off"), ("compiled", 128, "default"), ("graphs", 128, "graphs"), ("eager", 512, "off"))
STEP_MODELS = ("resnet18", "efficientnet_b0")
STEP_WINDOW, STEP_WARMUP = 50, 15  # timed steps; warm-up steps (compilation, cuDNN autotuning, CUDA graph capture)
CIFAR_TRAIN_IMAGES = 50_000  # an epoch, for the projected epoch time of a steady-state window
FLAGSHIP_EPOCHS = 50
AIRBENCH_SEEDS = 3


def item_named(name: str) -> Item:
    return next(item for item in ITEMS if item.name == name)


def machine() -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return {"gpu": torch.cuda.get_device_name() if cuda else None, "torch": torch.__version__,
            "commit": commit.stdout.strip() or None,
            "cuda": torch.version.cuda if cuda else None, "cpu_count": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d"), "time": time.strftime("%H:%M:%S")}


# ------------------------------------------------------------------------------------ the items (child side)
class Progress:
    """What an item has measured so far, in a JSON file the suite reads even after killing the item."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.record: dict[str, Any] = {"rows": [], "current": None}

    def running(self, label: str, run_dir: Path, epochs: int) -> None:
        self.record["current"] = {"label": label, "run_dir": str(run_dir), "epochs": epochs}
        self._write()

    def add(self, row: dict[str, Any]) -> None:
        self.record["rows"].append(row)
        self.record["current"] = None
        self._write()

    def _write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.record, indent=2) + "\n")
        temporary.replace(self.path)


def data_settings(args: argparse.Namespace) -> dict[str, Any]:
    if args.smoke:  # a few steps on synthetic data, on whatever device there is
        return {"dataset": "synthetic", "synthetic_size": 64, "image_size": 32, "batch_size": 16, "workers": 0,
                "cache_dir": ""}
    return {"data_dir": args.data_dir}


def train(settings: dict[str, Any], run_dir: Path, label: str, progress: Progress) -> dict[str, Any]:
    """One quiet training run through the function main_modern.py calls; a row of what it measured."""
    import torch

    from utils.config import TrainConfig
    from utils.experiment import run_training
    from utils.resolve import resolve

    config = resolve(TrainConfig(**settings, output_dir=str(run_dir), progress=False))
    progress.running(label, run_dir, config.epochs)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    metrics = run_training(config)  # its log goes to the suite's gpu-suite.log
    history = metrics["history"]
    train_s = max(metrics["train_time_s"], 1e-9)
    used = json.loads((run_dir / "config.json").read_text())  # AMP and channels_last as resolved for the device
    return {"label": label, "model": config.model, "epochs": len(history), "batch_size": config.batch_size,
            "amp": used["amp_dtype"] if used["amp"] else "fp32", "channels_last": used["channels_last"],
            "params_m": round(metrics["params"] / 1e6, 2), "train_s": metrics["train_time_s"],
            "eval_s": metrics["eval_time_s"], "wall_s": round(time.perf_counter() - started, 1),
            "img_per_s": round(metrics["train_images"] * len(history) / train_s, 1),
            "final_test_acc": metrics["final_test_acc"], "best_test_acc_optimistic": metrics["best_test_acc"],
            "peak_memory_mib": (round(torch.cuda.max_memory_allocated() / 2**20, 1)
                                if torch.cuda.is_available() else None),
            "run_dir": str(run_dir)}


def item_cuda(args: argparse.Namespace, work: Path, progress: Progress) -> None:
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    lines = result.stdout.strip().splitlines()
    progress.add({"command": "python -m pytest -m cuda tests/test_cuda.py", "exit": result.returncode,
                  "summary": lines[-1] if lines else result.stderr.strip()[-300:],
                  "seconds": round(time.perf_counter() - started, 1),
                  "failures": [line for line in lines if line.startswith(("FAILED", "ERROR"))],
                  "output_tail": "\n".join(lines[-40:]) if result.returncode else ""})


def item_steps(args: argparse.Namespace, work: Path, progress: Progress) -> None:
    """Steady-state training speed of the step's variants, model by model, in one process."""
    models, variants, window, warmup = STEP_MODELS, STEP_VARIANTS, STEP_WINDOW, STEP_WARMUP
    if args.smoke:  # the CPU: a small model, a few steps, the compiled variant once
        models, variants, window, warmup = ("cnn",), (("eager", 16, "off"), ("compiled", 16, "default")), 2, 1
    for model in models:
        for label, batch, mode in variants:
            progress.add({**steady_state(model, batch, mode, window, warmup), "variant": label})


def item_flagship(args: argparse.Namespace, work: Path, progress: Progress) -> None:
    epochs = 1 if args.smoke else FLAGSHIP_EPOCHS
    progress.add(train({**data_settings(args), "model": "resnet18", "recipe": "modern", "epochs": epochs},
                       work / "run", "resnet18 --modern-training", progress))


def item_airbench(args: argparse.Namespace, work: Path, progress: Progress) -> None:
    import torch

    if args.smoke or not torch.cuda.is_available():
        # airbench is CUDA-only: without a GPU the item checks that the preset itself trains.
        from utils.presets import preset_settings

        progress.add(train({**preset_settings("speed"), **data_settings(args), "epochs": 1, "tta": "flip"},
                           work / "preset", "--preset speed (no CUDA: airbench skipped)", progress))
        return
    sys.path.insert(0, str(REPO / "benchmarks"))  # a script beside this one
    import vs_airbench
    code = vs_airbench.main(["--data-dir", args.data_dir, "--seeds", str(AIRBENCH_SEEDS), "--results-dir",
                             str(work), "--output", "vs-airbench"])
    progress.add({"exit": code, "report": "see the airbench record"})


def item_models(args: argparse.Namespace, work: Path, progress: Progress) -> None:
    """Every registry model's steady-state training speed (modern recipe, batch 128, data on the device): a timed
    window after a warm-up whose time (cuDNN autotuning, first allocations) is reported apart, the epoch time
    projected from the window, and the peak memory."""
    from models import list_models

    for name in args.models or list_models():
        progress.add(steady_state(name, 16 if args.smoke else 128, "off", *((2, 1) if args.smoke else (30, 10))))


def steady_state(model: str, batch: int, mode: str, window: int, warmup: int) -> dict[str, Any]:
    """One model's training speed in a window of ``window`` steps after ``warmup`` (``benchmarks/speed.py``'s
    ``measure``: the loop main_modern.py runs, CUDA-synchronized), on synthetic data kept on the device."""
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))  # a script beside this one
    import speed
    from utils.config import TrainConfig
    from utils.devices import select_device
    from utils.resolve import resolve, resolve_amp

    device = select_device("auto")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch._dynamo.reset()  # a compiled variant compiles its own step
    config = resolve(TrainConfig(model=model, recipe="modern", batch_size=batch, dataset="synthetic",
                                 synthetic_size=batch * (window + warmup + 1), workers=0, cache_dir="",
                                 compile=mode != "off", compile_mode=None if mode == "off" else mode, progress=False))
    row = speed.measure(resolve_amp(config, device), window, warmup, device, progress=False)
    return {"label": f"{model} b{batch}" + ("" if mode == "off" else f" --compile {mode}"), "model": model,
            "variant": "eager" if mode == "off" else mode, "batch_size": batch, "steady": True,
            "img_per_s": row["img_per_s"], "train_s": round(CIFAR_TRAIN_IMAGES / row["img_per_s"], 2),
            "window_steps": window, "window_s": row["seconds"], "warmup_steps": warmup, "warmup_s": row["first_steps_s"],
            "peak_memory_mib": row["peak_memory_mib"], "amp": row["precision"]}


def item_techniques(args: argparse.Namespace, work: Path, progress: Progress) -> None:
    if args.smoke:
        budget = ["--quick", "--dataset", "synthetic", "--synthetic-size", "64", "--batch-size", "16",
                  "--workers", "0", "--cache-dir", "", "--model", "cnn"]
    else:
        budget = ["--epochs", "4", "--seeds", "2", "--data-dir", args.data_dir, "--model", "resnet_tiny"]
    command = [sys.executable, "benchmark_all.py", "--techniques", *budget, "--output-dir", str(work / "techniques"),
               "--no-progress"]
    progress.record["command"] = "python " + " ".join(command[1:])
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    progress.add({"exit": result.returncode, "stderr_tail": result.stderr.strip()[-1500:]})


RUNNERS: dict[str, Callable[[argparse.Namespace, Path, Progress], None]] = {
    "cuda": item_cuda, "steps": item_steps, "flagship": item_flagship, "airbench": item_airbench, "models": item_models,
    "techniques": item_techniques}


# ------------------------------------------------------------------------------------ the suite (parent side)
def child_command(args: argparse.Namespace, item: Item, work: Path, progress_file: Path) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--run-item", item.name, "--work", str(work),
               "--progress-file", str(progress_file), "--data-dir", args.data_dir]
    if args.smoke:
        command.append("--smoke")
    if args.models:
        command += ["--models", *args.models]
    return command


def run_boxed(command: list[str], limit_s: float, log) -> tuple[str, int, float, str]:
    """Run ``command`` in its own process group; SIGINT at ``limit - GRACE``, SIGKILL at ``limit``.

    Returns (status, exit code, seconds, stderr tail): status is done, failed or time box.
    """
    grace = min(GRACE_S, limit_s / 4)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    boxed = False
    try:
        _, stderr = process.communicate(timeout=limit_s - grace)
    except subprocess.TimeoutExpired:
        boxed = True
        os.killpg(process.pid, signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
    with_children_gone(process.pid)
    seconds = round(time.perf_counter() - started, 1)
    status = "time box" if boxed else ("done" if process.returncode == 0 else "failed")
    return status, process.returncode, seconds, (stderr or "").strip()[-3000:]


def with_children_gone(group: int) -> None:
    """Kill whatever the item left running (DataLoader workers, a pytest child)."""
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def how_far(current: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """The run an item was in when it stopped: epochs done, seconds per epoch, the projection to its end."""
    if not current:
        return None
    metrics_file = Path(current["run_dir"]) / "metrics.json"
    if not metrics_file.exists():
        return {**current, "epochs_done": 0}
    metrics = json.loads(metrics_file.read_text())
    history = metrics["history"]
    done = len(history)
    per_epoch = sum(h["epoch_time_s"] for h in history) / max(1, done)
    accuracies = [h.get("ema_test_acc") or h["test_acc"] for h in history if h["test_acc"] is not None]
    return {**current, "epochs_done": done, "epoch_s": round(per_epoch, 2),
            "train_s_so_far": metrics["train_time_s"],
            "img_per_s": round(metrics["train_images"] * done / max(metrics["train_time_s"], 1e-9), 1),
            "projected_total_s": round(per_epoch * current["epochs"], 1),
            "last_test_acc": accuracies[-1] if accuracies else None}


def collect_extras(item: Item, work: Path, record: dict[str, Any], out: Path) -> None:
    """Reports an item wrote in its work folder: airbench's JSON, the techniques study, the flagship's curves."""
    if item.name == "airbench" and (work / "vs-airbench.json").exists():
        record["airbench"] = json.loads((work / "vs-airbench.json").read_text())
        record["airbench_md"] = (work / "vs-airbench.md").read_text()
    if item.name == "techniques":
        study = work / "techniques"
        if (study / "RESULTS.md").exists():
            record["results_md"] = (study / "RESULTS.md").read_text()
        if (study / "results.json").exists():
            record["runs"] = [{k: r.get(k) for k in ("experiment", "seed", "final_test_acc", "train_time_s")}
                              for r in json.loads((study / "results.json").read_text())["results"]]
        for png in sorted(study.glob("*.png"))[:2]:
            shutil.copy(png, out / f"techniques-{png.name}")
    if item.name == "flagship" and (work / "run" / "curves.png").exists():
        shutil.copy(work / "run" / "curves.png", out / "flagship-curves.png")


def limits(items: list[Item], total_s: float) -> list[float]:
    """Each item's box; at run time an item also gets what the earlier ones left unused."""
    return [float(item.box_s) for item in items] if sum(i.box_s for i in items) <= total_s else \
        [item.box_s * total_s / sum(i.box_s for i in items) for item in items]


def run_suite(args: argparse.Namespace, command_line: str) -> dict[str, Any]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = [item_named(name) for name in args.items]
    boxes = limits(items, args.total_s)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu-suite-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"command": command_line, "machine": machine(), "total_s": args.total_s,
                              "smoke": args.smoke, "items": []}
    started = time.perf_counter()
    with open(out / "gpu-suite.log", "a") as log:
        for index, item in enumerate(items):
            # Later items keep their boxes; this one gets its own plus whatever the earlier ones left unused.
            limit = max(5.0, args.total_s - (time.perf_counter() - started) - sum(boxes[index + 1:]))
            print(f"[{time.perf_counter() - started:5.0f}s] {item.name}: {item.what} (box {limit:.0f}s)", flush=True)
            log.write(f"\n===== {item.name} (box {limit:.0f}s)\n")
            log.flush()
            progress_file = work / f"{item.name}.progress.json"
            progress_file.unlink(missing_ok=True)
            item_work = work / item.name
            status, code, seconds, stderr = run_boxed(child_command(args, item, item_work, progress_file), limit, log)
            progress = json.loads(progress_file.read_text()) if progress_file.exists() else {"rows": []}
            record = {"name": item.name, "what": item.what, "box_s": round(limit, 1), "status": status,
                      "exit": code, "seconds": seconds, "rows": progress["rows"],
                      "stopped_in": how_far(progress.get("current")) if status != "done" else None}
            if "command" in progress:
                record["command"] = progress["command"]
            if status == "failed":
                record["error"] = stderr
            collect_extras(item, item_work, record, out)
            report["items"].append(record)
            report["elapsed_s"] = round(time.perf_counter() - started, 1)
            write_report(report, out)
            print(f"[{time.perf_counter() - started:5.0f}s] {item.name}: {status} in {seconds:.0f}s "
                  f"({len(record['rows'])} rows)", flush=True)
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return report


# ------------------------------------------------------------------------------------ report
def write_report(report: dict[str, Any], out: Path) -> None:
    for name, text in (("gpu-suite.json", json.dumps(report, indent=2) + "\n"), ("gpu-suite.md", markdown(report))):
        temporary = out / f".{name}.tmp"
        temporary.write_text(text)
        temporary.replace(out / name)


def _table(rows: list[dict[str, Any]], keys: list[str]) -> list[str]:
    lines = ["| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
    return lines + ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = ["# GPU suite", "", f"`{report['command']}`", "",
             f"{m['gpu'] or 'CPU (no CUDA)'}, torch {m['torch']}, CUDA {m['cuda']}, {m['date']}. "
             f"Elapsed {report.get('elapsed_s', 0):.0f} s of a {report['total_s']:.0f} s budget.", ""]
    for item in report["items"]:
        lines += [f"## {item['name']}: {item['status']} ({item['seconds']:.0f} s of a {item['box_s']:.0f} s box)", "",
                  item["what"], ""]
        steady = [r for r in item["rows"] if r.get("steady")]
        if steady:
            lines += _table(steady, ["label", "amp", "img_per_s", "train_s", "window_steps", "window_s",
                                     "warmup_steps", "warmup_s", "peak_memory_mib"]) + [""]
        training = [r for r in item["rows"] if "img_per_s" in r and not r.get("steady")]
        if training:
            lines += _table(training, ["label", "epochs", "batch_size", "amp", "params_m", "train_s", "eval_s", "wall_s",
                                       "img_per_s", "final_test_acc", "peak_memory_mib"]) + [""]
        for row in item["rows"]:
            if "summary" in row:
                lines += [f"`{row['command']}`: exit {row['exit']}, {row['summary']}", ""]
                lines += [f"- {failure}" for failure in row["failures"]]
        if item.get("stopped_in"):
            s = item["stopped_in"]
            lines += [f"Stopped in {s['label']} after {s['epochs_done']} of {s['epochs']} epochs"
                      + (f" ({s['epoch_s']} s per epoch, {s['img_per_s']} img/s; the whole run projected at "
                         f"{s['projected_total_s']} s; last test accuracy {s['last_test_acc']})"
                         if s["epochs_done"] else ""), ""]
        if "airbench_md" in item:
            lines += [item["airbench_md"].replace("# Speed preset", "### Speed preset"), ""]
        if "results_md" in item:
            lines += [f"`{item.get('command', '')}`", "", item["results_md"]]
        elif item.get("runs"):
            lines += _table(item["runs"], ["experiment", "seed", "final_test_acc", "train_time_s"]) + [""]
        if item.get("error"):
            lines += ["```", item["error"][-2000:], "```", ""]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ command line
def print_plan(items: list[Item], total_s: float) -> None:
    boxes = limits(items, total_s)
    for item, box in zip(items, boxes):
        print(f"{item.name:<11} box {box:4.0f}s  {item.what}")
    print(f"total {sum(boxes):.0f}s = {sum(boxes) / 60:.1f} min (budget {total_s:.0f}s; an item's unused time "
          f"passes to the next)")


def main(argv: Optional[list[str]] = None) -> Optional[dict[str, Any]]:
    parser = OneLineArgumentParser(prog="gpu_suite.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--data-dir", default=".gpu/data/cifar10-jpeg", help="CIFAR-10 as an image folder")
    parser.add_argument("--out", default="gpu-suite-out", help="folder for the results (at most 8 files)")
    parser.add_argument("--items", nargs="+", default=[i.name for i in ITEMS], choices=[i.name for i in ITEMS])
    parser.add_argument("--total-s", type=positive_number, default=TOTAL_S, help=f"the whole suite's seconds (default {TOTAL_S})")
    parser.add_argument("--models", nargs="+", help="the models item's models (default: every registry model)")
    parser.add_argument("--plan", action="store_true", help="print the items, their boxes and the total, and exit")
    parser.add_argument("--smoke", action="store_true", help="every item on the CPU, synthetic data, a few steps")
    parser.add_argument("--work", help="scratch folder (default: a new temporary one; deleted at the end)")
    parser.add_argument("--keep-work", action="store_true", help="keep the scratch folder (run folders, checkpoints)")
    parser.add_argument("--run-item", help=argparse.SUPPRESS)  # the child process of one item
    parser.add_argument("--progress-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from models import check_model_name

    for name in args.models or []:  # refused before any item runs, not inside the models item
        check_model_name(name)
    if args.plan:
        print_plan([item_named(n) for n in args.items], args.total_s)
        return None
    if args.run_item:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        RUNNERS[args.run_item](args, work, Progress(Path(args.progress_file)))
        return None
    if (Path(args.out) / "gpu-suite.json").exists():  # minutes of a lent GPU: never written over
        raise UserError(f"{args.out} holds the report of an earlier suite run; give --out a new folder")
    if not args.smoke and not (Path(args.data_dir) / "train").is_dir():
        print(f"gpu_suite.py: error: no CIFAR-10 image folder at {args.data_dir}; benchmarks/gpu/gpu_run.sh unpacks "
              f".gpu/cifar10-jpeg.tgz there (or pass --data-dir)", file=sys.stderr)
        sys.exit(2)
    command_line = "python benchmarks/gpu/gpu_suite.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = run_suite(args, command_line)
    print(f"written: {Path(args.out) / 'gpu-suite.json'} and gpu-suite.md")
    return report


if __name__ == "__main__":
    try:
        with exit_on_user_error("gpu_suite.py", file_errors=True):
            main()
    except KeyboardInterrupt:  # an item's SIGINT reached a child between runs: it has already saved what it had
        traceback.print_exc(limit=1)
        sys.exit(130)
