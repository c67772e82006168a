"""The learner's path, measured: every level's "Try" command run on this machine, into a results folder and the docs.

    python benchmarks/levels.py                                  # all seven levels (about 30 minutes on 2 CPU cores)
    python benchmarks/levels.py --levels 1 4 --data-dir DATA     # some levels, on a local copy of CIFAR-10
    python benchmarks/levels.py --smoke                          # every command in smoke mode (seconds; the tests)
    python benchmarks/levels.py --docs benchmarks/results/levels-cpu-DATE   # README's and the guide's figures from it

Each level of MODERN_DL_GUIDE.md has a Try: one command, or a pair to compare, that shows the level's idea in
at most 10 minutes on a 2-core CPU. This script runs them exactly as README prints them, in this process (the
Python start-up, about 10 s, is not in the times), adding only ``--data-dir`` (when given), ``--output-dir``
(under the results folder) and ``--no-progress``. The results folder gets ``levels.json`` (every command's
accuracy, time and the level's own figures, the machine, torch and the date), ``README.md`` (the table) and
each level's picture. ``--docs`` rewrites the regions of README and the guide marked
``<!-- levels:NAME -->`` ... ``<!-- /levels:NAME -->`` from a results folder: no figure is copied by hand.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from utils.doc_regions import rewrite_files  # noqa: E402
from utils.errors import OneLineArgumentParser, RunStopped, UserError, exit_on_user_error  # noqa: E402
from utils.files import write_json  # noqa: E402
from utils.smoke import SMOKE_ENV  # noqa: E402


@dataclass(frozen=True)
class Level:
    number: int
    title: str
    anchor: str  # the guide's section
    commands: tuple[str, ...]  # as README prints them
    shows: str  # what to look at in the output
    picture: str  # a file the Try writes, relative to the folder of command ``picture_of`` ("" for none)
    full: str  # the level at a real budget, for a GPU
    full_claim: str  # the original claims for it (quoted, not measured here)
    cost: str  # what the Try gives up against the full command
    picture_of: int = 0


LEVELS = (
    Level(1, "basics", "level-1-basics",
          ("python main.py --epochs 2 --subset 10000",
           "python main.py --activation gelu --epochs 2 --subset 10000"),
          "the basic CNN learns; ReLU against GELU at the same budget", "curves.png",
          "python main.py --epochs 50", "85-87% in about 5 minutes on a GPU",
          "10,000 of the 50,000 images for 2 epochs instead of all of them for 50"),
    Level(2, "modern architecture", "level-2-modern-architecture",
          ("python main_modern.py --model cnn --epochs 6 --subset 10000",
           "python main_modern.py --model resnet_tiny --epochs 3 --subset 10000"),
          "a residual network against the plain CNN at about the same training time", "curves.png",
          "python main_modern.py --model resnet18 --epochs 50", "91-92% in about 15 minutes on a GPU",
          "resnet_tiny (1.6M parameters) instead of resnet18 (11.2M), 10,000 images, minutes instead of 50 epochs"),
    Level(3, "modern training", "level-3-modern-training",
          ("python main_modern.py --model resnet_tiny --epochs 4 --subset 10000",
           "python main_modern.py --model resnet_tiny --modern-training --epochs 4 --subset 10000"),
          "the standard recipe (Adam, step decay) against the modern one (AdamW, warm-up + cosine, bf16, EMA, "
          "label smoothing, clipping)", "curves.png",
          "python main_modern.py --model resnet18 --modern-training --epochs 50", "93-94% in about 10 minutes on a GPU",
          "resnet_tiny on 10,000 images for 4 epochs; at this budget the regularizing parts have little to do", 1),
    Level(4, "advanced augmentation", "level-4-advanced-augmentation",
          ("python main_modern.py --model resnet_tiny --modern-training --augmentation none --epochs 15 --subset 2000",
           "python main_modern.py --model resnet_tiny --modern-training --epochs 15 --subset 2000"),
          "without augmentation the network memorizes its 2,000 images (training accuracy far above the test "
          "accuracy); crop + flip narrows that gap", "curves.png",
          "python main_modern.py --model resnet18 --augmentation randaugment --cutout --modern-training --epochs 100",
          "93% with RandAugment, +2 over standard augmentation",
          "2,000 images, so that memorizing shows in minutes; RandAugment and MixUp need long runs to pay"),
    Level(5, "mobile-optimized networks", "level-5-mobile-optimized-networks",
          ("python main_modern.py --compare-models resnet_tiny efficientnet_tiny --modern-training --epochs 3 "
           "--subset 5000",),
          "parameters, FLOPs and one image's latency beside the accuracy: fewer FLOPs is not less time",
          "comparison.png",
          "python main_modern.py --model efficientnet_b0 --modern-training --epochs 100",
          "94-95% with the fewest parameters for its accuracy",
          "efficientnet_tiny and resnet_tiny on 5,000 images for 3 epochs (efficientnet_tiny trains at about 60 "
          "images/s on 2 CPU cores); the ranking by accuracy may change at a real budget, the latency does not"),
    Level(6, "attention", "level-6-attention",
          ("python main_modern.py --model cnn_transformer_small --modern-training --epochs 3 --subset 5000 "
           "--output-dir runs/level6",
           "python main_modern.py --explain runs/level6/best.pt runs/level6/attention.png"),
          "a hybrid network with self-attention, and where its attention looks (attention rollout)", "attention.png",
          "python main_modern.py --model cnn_transformer_base --activation gelu --modern-training --epochs 100",
          "93-94% in about 25 minutes on a GPU",
          "cnn_transformer_small on 5,000 images for 3 epochs (it trains at about 60 images/s on 2 CPU cores): "
          "attention is data-hungry, so the Try shows the mechanism, not the accuracy"),
    Level(7, "comprehensive comparison", "level-7-comprehensive-comparison",
          ("python benchmark_all.py --architectures --models cnn resnet_tiny --quick --seeds 3",),
          "the same comparison over 3 seeds: a mean, a spread and a paired 95% interval, not one number",
          "accuracy.png",
          "python benchmark_all.py --full", "a table of architectures, techniques and activations, 20 epochs each",
          "2 epochs on 2,000 images per run (--quick) and 3 seeds; the full study is days on a CPU"),
)


# ------------------------------------------------------------------------------------ running one command
def entry_points() -> dict[str, Callable[[list[str]], Any]]:
    """The scripts' ``main`` functions, imported when needed (torch takes seconds to import)."""
    import benchmark_all
    import main as main_script
    import main_modern

    return {"main.py": main_script.main, "main_modern.py": main_modern.main, "benchmark_all.py": benchmark_all.main}


def run_argv(command: str, work: Path, data_dir: Optional[str], index: int) -> tuple[str, list[str], Path]:
    """(script, argv, output folder) of a documented command, with the flags this script adds."""
    words = shlex.split(command)
    script, argv = words[1], words[2:]
    if "--explain" in argv:  # its checkpoint and picture are the earlier run's, moved under ``work``
        return script, [str(work / a) if a.startswith("runs/") else a for a in argv] + ["--no-progress"], work
    if "--output-dir" in argv:
        at = argv.index("--output-dir")
        out = work / argv[at + 1]
        argv = argv[:at] + argv[at + 2:]
    else:
        out = work / f"run-{index}"
    extra = ["--output-dir", str(out), "--no-progress"] + (["--data-dir", data_dir] if data_dir else [])
    return script, argv + extra, out


def run_command(command: str, work: Path, data_dir: Optional[str], index: int, log: Path) -> dict[str, Any]:
    """Run one documented command in this process; its output goes to ``log``; its figures come back."""
    script, argv, out = run_argv(command, work, data_dir, index)
    captured = io.StringIO()
    started = time.perf_counter()
    code = 0
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        try:
            code = entry_points()[script](argv) or 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    wall = time.perf_counter() - started
    text = captured.getvalue()
    log.write_text(f"$ {command}\n{text}")
    lines = [line for line in text.splitlines() if line.strip()]
    record = {"command": command, "exit_code": code, "wall_s": round(wall, 1), "last_line": lines[-1] if lines else "",
              "output_dir": str(out)}
    if code == 0:
        record.update(read_figures(script, argv, out))
    return record


def read_figures(script: str, argv: list[str], out: Path) -> dict[str, Any]:
    """The figures a finished command wrote: a run's metrics, a comparison's rows, a benchmark's pair."""
    if "--explain" in argv:
        picture = Path(argv[argv.index("--explain") + 2])
        return {"picture": str(picture)} if picture.exists() else {}
    if script == "benchmark_all.py":
        return benchmark_figures(out)
    if (out / "comparison.json").exists():
        rows = json.loads((out / "comparison.json").read_text())["results"]
        return {"models": [{k: r[k] for k in ("model", "final_test_acc", "params", "gflops", "latency_ms",
                                              "total_time_s")} for r in rows]}
    metrics = json.loads((out / "metrics.json").read_text())
    last = metrics["history"][-1]
    return {"final_test_acc": metrics["final_test_acc"], "final_train_acc": last.get("train_acc"),
            "epochs": len(metrics["history"]), "train_images": metrics.get("train_images")}


def benchmark_figures(out: Path) -> dict[str, Any]:
    """The second arm against the first, paired by seed: the level-7 lesson in three numbers."""
    from utils.studies.statistics import mean_std, paired_interval

    results = [r for r in json.loads((out / "results.json").read_text())["results"] if r["status"] == "done"]
    arms: dict[str, dict[int, float]] = {}
    for r in results:
        arms.setdefault(r["experiment"], {})[r["seed"]] = r["final_test_acc"]
    names = list(arms)
    figures: dict[str, Any] = {"arms": {n: round(mean_std(list(arms[n].values()))[0], 2) for n in names},
                               "spread": {n: round(mean_std(list(arms[n].values()))[1], 2) for n in names}}
    if len(names) >= 2:
        mean, low, high, pairs = paired_interval(arms[names[1]], arms[names[0]])
        figures["paired"] = {"treatment": names[1], "baseline": names[0], "mean": mean, "low": low, "high": high,
                             "seeds": pairs}
    return figures


# ------------------------------------------------------------------------------------ a level
def run_level(level: Level, out_dir: Path, data_dir: Optional[str]) -> dict[str, Any]:
    work = out_dir / "runs" / f"level{level.number}"
    work.mkdir(parents=True, exist_ok=True)
    records = []
    for index, command in enumerate(level.commands):
        record = run_command(command, work, data_dir, index, out_dir / f"level{level.number}-{index}.log")
        records.append(record)
        print(f"level {level.number}, command {index + 1}/{len(level.commands)}: exit {record['exit_code']} in "
              f"{record['wall_s']:.0f} s | {record['last_line'][:150]}", flush=True)
        if record["exit_code"] in (130, 143):  # Ctrl-C or a kill: the user stops everything, not one level
            raise RunStopped(f"level {level.number} stopped by a signal", record["exit_code"],
                             advice="run the same command with --update --levels for the levels not measured")
        if record["exit_code"] != 0:
            break
    picture = ""
    shown = records[level.picture_of] if level.picture_of < len(records) else None
    source = Path(shown["output_dir"]) / level.picture if level.picture and shown else None
    if source is not None and source.exists():
        picture = f"level{level.number}.png"
        shutil.copyfile(source, out_dir / picture)
    return {"level": level.number, "title": level.title, "commands": records, "picture": picture,
            "wall_s": round(sum(r["wall_s"] for r in records), 1),
            "ok": all(r["exit_code"] == 0 for r in records) and len(records) == len(level.commands)}


def machine() -> dict[str, Any]:
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f"{cpu_name()}, {os.cpu_count()} cores{' with native bf16' if native_bf16() else ''}"
    return {"device": device, "torch": torch.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}


def cpu_name() -> str:
    """The processor's model name (Linux), else its architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].replace("(R)", "").replace("(TM)", "").split())
    except OSError:
        pass
    return f"CPU ({platform.machine()})"


def native_bf16() -> bool:
    from utils.devices import cpu_has_native_bf16

    return cpu_has_native_bf16()


def run_levels(numbers: Sequence[int], out_dir: Path, data_dir: Optional[str], smoke: bool,
               report: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Run the levels asked; with ``report`` (``--update``), replace those levels' entries in it."""
    report = report or {"machine": machine(), "smoke": smoke, "data_dir": data_dir, "levels": []}
    with smoke_mode(smoke):
        run_each(numbers, out_dir, data_dir, report)
    (out_dir / "README.md").write_text(results_readme(report, out_dir))
    return report


@contextlib.contextmanager
def smoke_mode(on: bool):
    """CIFAR_SMOKE=1 (synthetic data, one epoch: the commands' code paths only) while the block runs, and
    the environment as it was afterwards (levels.py may run inside another program: the tests)."""
    before = os.environ.get(SMOKE_ENV)
    if on:
        os.environ[SMOKE_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SMOKE_ENV, None)
        else:
            os.environ[SMOKE_ENV] = before


def run_each(numbers: Sequence[int], out_dir: Path, data_dir: Optional[str], report: dict[str, Any]) -> None:
    for level in LEVELS:
        if level.number in numbers:
            shutil.rmtree(out_dir / "runs" / f"level{level.number}", ignore_errors=True)  # --update: anew
            entry = run_level(level, out_dir, data_dir)
            report["levels"] = sorted([e for e in report["levels"] if e["level"] != level.number] + [entry],
                                      key=lambda e: e["level"])
            write_json(out_dir / "levels.json", report)  # a level at a time: a stopped run keeps what it measured


# ------------------------------------------------------------------------------------ what the docs say
def accuracy_text(level: dict[str, Any]) -> str:
    """The level's figures in a few words: each run's final test accuracy (and what the level is about)."""
    parts = []
    for record in level["commands"]:
        if "models" in record:
            parts += [f"{m['model']} {m['final_test_acc']:.1f}% ({m['params'] / 1e6:.1f}M params, {m['gflops']:.3f} "
                      f"GFLOPs, {m['latency_ms']:.1f} ms an image)" for m in record["models"]]
        elif "paired" in record:
            p = record["paired"]
            interval = (f" [{p['low']:+.1f}, {p['high']:+.1f}]" if p["low"] is not None else "")
            arms = ", ".join(f"{n} {a:.1f} ± {record['spread'][n]:.1f}%" for n, a in record["arms"].items())
            parts.append(f"{arms}; {p['treatment']} - {p['baseline']} {p['mean']:+.1f}{interval} ({p['seeds']} seed{'s' if p['seeds'] != 1 else ''})")
        elif "final_test_acc" in record:
            gap = (f" (train {record['final_train_acc']:.1f}%)" if record.get("final_train_acc") is not None
                   and LEVELS[level["level"] - 1].number == 4 else "")
            parts.append(f"{record['final_test_acc']:.1f}%{gap}")
    return "; ".join(parts) if parts else "no accuracy (failed)"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def where(report: dict[str, Any]) -> str:
    m = report["machine"]
    return f"{m['device']}, torch {m['torch']}, {m['date']}"


def level_table(report: dict[str, Any], guide: str = "MODERN_DL_GUIDE.md") -> str:
    """README's learning path: level, the Try with its measured figures, the full command and its claim; each
    level links to its chapter of ``guide`` (a path relative to the file the table goes in)."""
    rows = ["| level | Try on a CPU (≤ 10 min) | measured here: final test acc | time | at a real budget (GPU) |",
            "| --- | --- | --- | --- | --- |"]
    measured = {entry["level"]: entry for entry in report["levels"]}
    for level in LEVELS:
        entry = measured.get(level.number)
        commands = "<br>".join(f"`{c}`" for c in level.commands)
        figures = accuracy_text(entry) if entry else "not measured"
        time_text = minutes(entry["wall_s"]) if entry else ""
        rows.append(f"| [{level.number}. {level.title}]({guide}#{level.anchor}) | {commands} | {figures} | "
                    f"{time_text} | `{level.full}` (original claim: {level.full_claim}) |")
    return "\n".join(rows) + (f"\n\nMeasured by `python benchmarks/levels.py` on {where(report)}; one run per "
                               f"command (seed 42; level 7: seeds 0-2). Times on a shared machine vary by a third. "
                               f"{data_note(report)}")


def guide_try(report: dict[str, Any], number: int) -> str:
    """The guide's Try for one level: the commands, what they printed here, and what the Try gives up."""
    level = LEVELS[number - 1]
    entry = next((e for e in report["levels"] if e["level"] == number), None)
    lines = ["```bash", *level.commands, "```", "", f"What it shows: {level.shows}."]
    if entry:
        lines.append(f"Measured on {where(report)}: {accuracy_text(entry)}, {minutes(entry['wall_s'])} in all.")
        if entry.get("picture"):
            lines += ["", f"![level {number}](docs/images/try-level{number}.png)", ""]
    lines.append(f"What the Try gives up against `{level.full}`: {level.cost}.")
    return "\n".join(lines)


def first_result(report: dict[str, Any]) -> str:
    """README's first result: level 1's first command, the last line it printed here, and how long it took."""
    entry = next((e for e in report["levels"] if e["level"] == 1 and e["commands"]), None)
    if entry is None:
        return "Not measured yet: `python benchmarks/levels.py --levels 1` measures it."
    record = entry["commands"][0]
    shown = record["last_line"].replace(record["output_dir"], "runs/cnn-YYYYMMDD-HHMMSS")
    return "\n".join([f"`{record['command']}` trains the basic CNN for 2 epochs on 10,000 of the 50,000 training "
                      f"images and tests it on all 10,000 test images. On {where(report)} it took "
                      f"{minutes(record['wall_s'])} (plus the download and about 10 s of start-up) and ended with:",
                      "", "```", shown, "```", "", data_note(report)])


def data_note(report: dict[str, Any]) -> str:
    """Which CIFAR-10 the figures were measured on: a local copy (``--data-dir``) may not be torchvision's pixels."""
    if not report.get("data_dir"):
        return "The figures are of torchvision's CIFAR-10."
    return ("The figures were measured on a local copy of CIFAR-10 stored as JPEG files (`--data-dir`); torchvision's "
            "download holds the original pixels, so your accuracies may differ from these a little.")


def results_readme(report: dict[str, Any], out_dir: Path) -> str:
    kind = "smoke mode (synthetic data, one epoch: code paths only, no figure means anything)" if report["smoke"] \
        else f"data {report['data_dir'] or 'CIFAR-10 (torchvision download)'}"
    return "\n".join([f"# The learning levels' Try commands, {report['machine']['date']}", "",
                      f"Command: `python benchmarks/levels.py`; {where(report)}; {kind}.", "",
                      level_table(report, Path(os.path.relpath(REPO / "MODERN_DL_GUIDE.md", out_dir)).as_posix()),
                      ""])


REGIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "table": level_table, "first": first_result, **{f"try-{n}": (lambda report, n=n: guide_try(report, n)) for n in range(1, 8)}}


def rewrite_docs(results: Path, docs: Sequence[Path]) -> list[str]:
    """Rewrite every ``<!-- levels:NAME -->`` region of ``docs`` from ``results/levels.json``; copy the pictures."""
    try:
        report = json.loads((results / "levels.json").read_text())
        report["levels"], report["machine"]  # noqa: B018 - a report has both
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{results} holds no levels.json written by benchmarks/levels.py") from None
    if report.get("smoke") and results.resolve().parent == (REPO / "benchmarks" / "results").resolve():
        raise UserError(f"{results} is a smoke run (synthetic data): its figures mean nothing in the docs")
    # write=write binds each region's writer now; a plain closure would see only the loop's last one
    render = {name: (lambda body, write=write: write(report)) for name, write in REGIONS.items()}
    found = rewrite_files(docs, "levels", render)
    rewritten = [f"{path.name}:{name}" for path, names in found.items() for name in names]
    images = docs[0].parent / "docs" / "images"
    for entry in report["levels"]:
        if entry.get("picture") and (results / entry["picture"]).exists():
            images.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(results / entry["picture"], images / f"try-level{entry['level']}.png")
    return rewritten


# ------------------------------------------------------------------------------------ the command line
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="levels.py", description=__doc__.splitlines()[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--levels", type=int, nargs="+", choices=range(1, 8), metavar="N", default=list(range(1, 8)),
                        help="the levels to run (default all seven)")
    parser.add_argument("--data-dir", help="a local CIFAR-10 (image folder or cifar-10-batches-py); default: "
                        "torchvision downloads it into ./data")
    parser.add_argument("--output-dir", help="the results folder (default benchmarks/results/levels-<device>-<date>, "
                        "a new one each time)")
    parser.add_argument("--smoke", action="store_true", help="every command in smoke mode: synthetic data, one "
                        "epoch (checks that the commands run; no figure means anything)")
    parser.add_argument("--update", action="store_true", help="run --levels again into the results folder "
                        "--output-dir (same machine and data), replacing their figures")
    parser.add_argument("--docs", metavar="RESULTS", help="rewrite the marked regions of --readme and --guide from "
                        "this results folder, and run nothing")
    parser.add_argument("--readme", default=str(REPO / "README.md"))
    parser.add_argument("--guide", default=str(REPO / "MODERN_DL_GUIDE.md"))
    return parser


def earlier_report(given: Optional[str], smoke: bool, data_dir: Optional[str]) -> dict[str, Any]:
    """``--update``: the results folder's report, which must come from this machine and the same data."""
    if given is None:
        raise UserError("--update needs --output-dir: the results folder whose levels to run again")
    try:
        report = json.loads((Path(given) / "levels.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"--update: {given} holds no readable levels.json") from None
    here = machine()
    if (report.get("machine", {}).get("torch"), report.get("smoke"), report.get("data_dir")) != (
            here["torch"], smoke, data_dir):
        raise UserError(f"--update: {given} was measured with another torch, data or mode; start a new folder")
    return {**report, "machine": here}


def results_folder(given: Optional[str]) -> Path:
    """The results folder, claimed whole: never one that holds another run's levels.json."""
    from utils.training.run_dir import unique_run_dir

    if given is None:
        import torch

        kind = "gpu" if torch.cuda.is_available() else "cpu"
        return unique_run_dir(REPO / "benchmarks" / "results", f"levels-{kind}")
    out = Path(given)
    if (out / "levels.json").exists():
        raise UserError(f"{out} holds the results of another levels.py run; choose another --output-dir")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create --output-dir {out} ({error.strerror or error})") from None
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    with exit_on_user_error("levels.py"):
        if args.docs:
            docs = [Path(args.readme), Path(args.guide)]
            for path in docs:
                if not path.is_file():
                    raise UserError(f"{path} is not a file")
            print("rewrote " + (", ".join(rewrite_docs(Path(args.docs), docs)) or "nothing (no levels regions)"))
            return 0
        earlier = earlier_report(args.output_dir, args.smoke, args.data_dir) if args.update else None
        out = Path(args.output_dir) if args.update else results_folder(args.output_dir)
        report = run_levels(sorted(set(args.levels)), out, args.data_dir, args.smoke, earlier)
        failed = [entry["level"] for entry in report["levels"] if not entry["ok"]]
        print(f"levels written to {out / 'levels.json'} and {out / 'README.md'}"
              + (f"; failed: level {', '.join(map(str, failed))}" if failed else ""))
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
