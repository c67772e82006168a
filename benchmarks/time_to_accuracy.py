"""Accuracy against time: the ``--probe-images`` accuracies of one or more runs, drawn against their minutes.

    python main_modern.py --preset speed --data-dir ../shared/data/cifar10-jpeg --output-dir runs/preset
    python benchmarks/time_to_accuracy.py runs/preset --out docs/images/time_to_accuracy.png

Each run folder's ``metrics.json`` gives a line (labelled with the folder's name, or ``--labels``):
its probe accuracy after each epoch against the run's time so far (training and evaluation; the
probes are not counted). It also prints the table the picture is drawn from.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.errors import OneLineArgumentParser, UserError, exit_on_user_error  # noqa: E402
from utils.visualization import picture_path, plot_time_to_accuracy  # noqa: E402


def read_history(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.json"
    try:
        history = json.loads(path.read_text())["history"]
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot read the history of {run_dir} ({error.__class__.__name__}): is it a run folder?")
    if not any(entry.get("probe_acc") is not None for entry in history):
        raise UserError(f"{run_dir} has no probe accuracies: train it with --probe-images N (--preset speed does)")
    return history


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="time_to_accuracy.py", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run folders (each with a metrics.json)")
    parser.add_argument("--labels", nargs="+", help="one label per run (default: the folders' names)")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--title", default="test accuracy against the run's minutes (probes of --probe-images)")
    args = parser.parse_args(argv)
    labels = args.labels or [Path(run).name for run in args.runs]
    if len(labels) != len(args.runs):
        raise UserError(f"--labels gives {len(labels)} labels for {len(args.runs)} runs")
    out = picture_path(args.out)
    runs = {label: read_history(Path(run)) for label, run in zip(labels, args.runs)}
    for label, history in runs.items():
        elapsed = 0.0
        for entry in history:
            elapsed += entry["epoch_time_s"]
            test = "" if entry.get("test_acc") is None else f" | test {entry['test_acc']}%"  # evaluated epochs only
            print(f"{label}: epoch {entry['epoch']:>2} | {elapsed / 60:6.2f} min | probe {entry.get('probe_acc')}%{test}")
    plot_time_to_accuracy(runs, out, args.title)
    print(f"written to {args.out}")


if __name__ == "__main__":
    with exit_on_user_error("time_to_accuracy.py", file_errors=True):
        main()
