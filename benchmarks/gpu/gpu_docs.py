"""Write the GPU suite's figures into README and the guide: no GPU number is copied by hand.

The docs mark each place a GPU figure belongs with a pair of HTML comments,
``<!-- gpu:NAME -->`` ... ``<!-- /gpu:NAME -->``. This script reads one or more ``gpu-suite.json``
files (``benchmarks/gpu/gpu_suite.py``; a later file adds what an earlier one lacks) and rewrites what
lies between each pair:

- ``models-table``: in the markdown table there, the measured GPU columns of each model's row
  (img/s and epoch time of one epoch, peak memory); "not yet measured on a GPU" where the suite has
  no figure; every other cell (the claims, the uses) is left as written;
- ``gpu-results``, ``faq-memory``, ``faq-accuracy``, ``guide-gpu``, ``guide-airbench``: a paragraph
  written from the figures, with the GPU, torch version, date and command.

    python benchmarks/gpu/gpu_docs.py benchmarks/results/gpu-2026-11-30/gpu-suite.json \\
        benchmarks/results/gpu-2026-11-30/models-2/gpu-suite.json --readme README.md --guide MODERN_DL_GUIDE.md
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from utils.doc_regions import rewrite_files, rewrite_regions  # noqa: E402
from utils.errors import OneLineArgumentParser, UserError, exit_on_user_error  # noqa: E402

NOT_MEASURED = "not yet measured on a GPU"
IMG_COLUMN = "H200 img/s, 1 epoch (measured)"
MEMORY_COLUMN = "peak GPU memory (measured)"


# ------------------------------------------------------------------------------------ reading the suite
class Figures:
    """What one or more suite reports measured, merged: the first report that has a figure gives it."""

    def __init__(self, reports: list[dict[str, Any]], sources: list[str]) -> None:
        self.reports, self.sources = reports, sources
        self.items: dict[str, dict[str, Any]] = {}
        self.models: dict[str, dict[str, Any]] = {}
        for report in reports:
            for item in report["items"]:
                self.items.setdefault(item["name"], {**item, "machine": report["machine"]})
                if item["name"] == "models":
                    for row in item["rows"]:
                        self.models.setdefault(row["model"], {**row, "machine": report["machine"]})

    @property
    def machine(self) -> dict[str, Any]:
        return self.reports[0]["machine"]

    def where(self) -> str:
        m = self.machine
        return f"one {m['gpu']}, torch {m['torch']} (CUDA {m['cuda']}), {m['date']}"


def load(paths: list[str]) -> Figures:
    """The suite's reports; a file that is not one, or a CPU smoke run (no GPU figure in it), is refused."""
    reports = []
    for path in paths:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise UserError(f"cannot read {path}: {error}") from None
        if not isinstance(report, dict) or not isinstance(report.get("items"), list) or "machine" not in report:
            raise UserError(f"{path} is not a report of benchmarks/gpu/gpu_suite.py (no items and machine in it)")
        if report.get("smoke") or not report["machine"].get("gpu"):
            raise UserError(f"{path} is a CPU smoke run of the suite: it holds no GPU figure for the docs")
        reports.append(report)
    return Figures(reports, paths)


# ------------------------------------------------------------------------------------ the regions
def fill_table(table: str, figures: Figures) -> str:
    """Fill the measured GPU columns of a markdown table whose first column names the model."""
    lines = table.split("\n")
    header_at = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if header_at is None:
        return table
    header = [cell.strip() for cell in lines[header_at].strip("|").split("|")]
    columns = {name: header.index(name) for name in (IMG_COLUMN, MEMORY_COLUMN) if name in header}
    for i in range(header_at + 2, len(lines)):
        if not lines[i].startswith("|"):
            break
        cells = [cell.strip() for cell in lines[i].strip("|").split("|")]
        row = figures.models.get(cells[0].strip("`"))
        if IMG_COLUMN in columns:
            cells[columns[IMG_COLUMN]] = (f"{row['img_per_s']:,.0f} ({row['train_s']:.1f} s)" if row else NOT_MEASURED)
        if MEMORY_COLUMN in columns:
            cells[columns[MEMORY_COLUMN]] = (f"{row['peak_memory_mib'] / 1024:.2f} GiB" if row and row.get(
                "peak_memory_mib") else NOT_MEASURED)
        lines[i] = "| " + " | ".join(cells) + " |"
    return "\n".join(lines)


OPTION_A = ("Option A of the original claims, `python main_modern.py --model resnet18 --modern-training --epochs 50` "
            "on all of CIFAR-10 (JPEG export),")


def flagship_sentence(figures: Figures) -> str:
    item = figures.items.get("flagship")
    if not item:
        return f"The 50-epoch resnet18 (Option A of the original claims): {NOT_MEASURED}."
    if item["rows"]:
        row = item["rows"][0]
        return (f"{OPTION_A} reached **{row['final_test_acc']:.2f}%** final test accuracy "
                f"in {row['train_s']:.0f} s of training ({row['img_per_s']:,.0f} img/s) on {figures.where()}.")
    stopped = item.get("stopped_in") or {}
    if not stopped.get("epochs_done"):
        return f"The 50-epoch resnet18 (Option A of the original claims) {item['status']} before its first epoch ended."
    return (f"{OPTION_A} ran {stopped['epochs_done']} of its 50 epochs in the suite's "
            f"{item['box_s']:.0f} s box on {figures.where()}: {stopped['epoch_s']:.2f} s per epoch "
            f"({stopped['img_per_s']:,.0f} img/s at batch 128, bf16, channels_last, no compile), test accuracy "
            f"{stopped['last_test_acc']:.2f}% (EMA weights) after epoch {stopped['epochs_done']}, the whole run "
            f"projected at {stopped['projected_total_s']:.0f} s. Its final 50-epoch accuracy is {NOT_MEASURED} "
            f"(the original claim: 93-94% in ~10 minutes).")


def airbench_sentence(figures: Figures) -> str:
    item = figures.items.get("airbench")
    summary = (item or {}).get("airbench", {}).get("summary", {})
    if "preset" not in summary or "airbench94" not in summary:
        return f"The speed preset against airbench94: {NOT_MEASURED}."
    p, a = summary["preset"], summary["airbench94"]
    return (f"`--preset speed` with the recipe it had on {figures.machine['date']} against airbench94 (0.1.8) on the same data, seed for seed "
            f"(`python benchmarks/vs_airbench.py --seeds {p['runs']} --data-dir DATA`, {figures.where()}): the preset "
            f"**{p['accuracy_mean']:.2f} ± {p['accuracy_std']:.2f}%** in {p['seconds_mean']:.2f} ± "
            f"{p['seconds_std']:.2f} s (training + TTA evaluation, CUDA-synchronized; {p['wall_s_mean']:.1f} s "
            f"full wall with data loading and the run's files), airbench94 **{a['accuracy_mean']:.2f} ± "
            f"{a['accuracy_std']:.2f}%** in {a['seconds_mean']:.2f} ± {a['seconds_std']:.2f} s, {p['runs']} "
            f"seeds each after an untimed warm-up run: the preset takes "
            f"{summary['ratio']['time_preset_over_airbench']:.2f}x airbench's time, and airbench is ahead by "
            f"{a['accuracy_mean'] - p['accuracy_mean']:+.2f} points of accuracy. airbench94's paper reports 94% on the "
            f"original CIFAR-10 pixels; this data set is a JPEG export.")


def cuda_sentence(figures: Figures) -> str:
    item = figures.items.get("cuda")
    if not item or not item["rows"]:
        return f"`python -m pytest -m cuda`: {NOT_MEASURED}."
    row = item["rows"][0]
    failed = "; failed: " + ", ".join(f.split("::")[-1].split(" ")[0] for f in row["failures"]) if row["failures"] else ""
    return f"`python -m pytest -m cuda` on {figures.where()}: {row['summary']}{failed}."


def gpu_results(figures: Figures) -> str:
    return "\n\n".join([f"Measured on {figures.where()} by the GPU suite "
                        f"(`bash benchmarks/gpu/gpu_run.sh`; figures in [`{Path(figures.sources[0]).parent}`]"
                        f"({Path(figures.sources[0]).parent}/)):",
                        "- " + flagship_sentence(figures), "- " + airbench_sentence(figures),
                        "- " + cuda_sentence(figures), "- " + models_sentence(figures)])


def models_sentence(figures: Figures) -> str:
    if not figures.models:
        return f"One epoch of each registry model: {NOT_MEASURED}."
    speeds = ", ".join(f"{name} {row['img_per_s']:,.0f}" for name, row in figures.models.items())
    if all(row.get("steady") for row in figures.models.values()):
        return (f"Each model's training speed with the modern recipe at batch 128, in steady state (a timed window "
                f"after a warm-up, whose autotuning is left out; img/s): {speeds}.")
    return (f"One epoch of each model with the modern recipe at batch 128 (img/s): {speeds}. The small models "
            f"run at nearly the same rate whatever their size: at batch 128 the GPU waits on the training loop's "
            f"per-step work (about 10 ms a step), not on arithmetic.")


def faq_memory(figures: Figures) -> str:
    if not figures.models:
        return (f"**How much GPU memory is needed?** {NOT_MEASURED} (the original claims: 4 GB for ResNet-18, "
                f"6 GB for EfficientNet-B0 and 8 GB for the CNN-Transformer).")
    peaks = ", ".join(f"{name} {row['peak_memory_mib'] / 1024:.2f} GiB" for name, row in figures.models.items()
                      if row.get("peak_memory_mib"))
    span = "a timed window" if all(row.get("steady") for row in figures.models.values()) else "one epoch"
    return (f"**How much GPU memory is needed?** Peak memory PyTorch allocated in {span} at batch 128 with the "
            f"modern recipe (bf16; the EMA copy and the data set itself, 184 MB of uint8 pixels kept on the GPU, "
            f"included), on {figures.where()}: {peaks}. The original claims were "
            f"4 GB for ResNet-18, 6 GB for EfficientNet-B0 and 8 GB for the CNN-Transformer. `--batch-size` and "
            f"`--eval-batch-size` bound it; models not listed are {NOT_MEASURED}.")


def faq_accuracy(figures: Figures) -> str:
    return ("**What accuracy should I expect?** On a GPU: " + flagship_sentence(figures) + " "
            + airbench_sentence(figures) + " On a CPU, the table above.")


REGIONS: dict[str, Callable[[Figures], str]] = {
    "gpu-results": gpu_results, "faq-memory": faq_memory, "faq-accuracy": faq_accuracy,
    "guide-gpu": gpu_results,
    "guide-airbench": airbench_sentence,
}


def renderers(figures: Figures) -> dict[str, Callable[[str], str]]:
    """What each ``<!-- gpu:NAME -->`` region becomes, from what it holds now."""
    # fill=fill binds each region's writer now; a plain closure would see only the loop's last one
    render = {name: (lambda body, fill=fill: fill(figures)) for name, fill in REGIONS.items()}
    render["models-table"] = lambda body: fill_table(body.strip("\n"), figures)  # keeps the rows it has
    return render


def rewrite(text: str, figures: Figures) -> tuple[str, list[str]]:
    """``text`` with every marked region rewritten; the names of the regions it found."""
    return rewrite_regions(text, "gpu", renderers(figures))


def main(argv: Optional[list[str]] = None) -> int:
    parser = OneLineArgumentParser(prog="gpu_docs.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("reports", nargs="+", help="gpu-suite.json files; an earlier one wins where both measured")
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--guide", default="MODERN_DL_GUIDE.md")
    args = parser.parse_args(argv)
    figures = load(args.reports)
    paths = []
    for path in (Path(args.readme), Path(args.guide)):
        if not path.exists():
            print(f"gpu_docs.py: {path} does not exist; skipped", file=sys.stderr)
        elif not path.is_file():
            raise UserError(f"{path} is not a file: give --readme and --guide the markdown files")
        else:
            paths.append(path)
    for path, found in rewrite_files(paths, "gpu", renderers(figures)).items():
        print(f"{path}: rewrote {', '.join(found) if found else 'nothing (no <!-- gpu:NAME --> regions)'}")
    return 0


if __name__ == "__main__":
    with exit_on_user_error("gpu_docs.py", file_errors=True):
        sys.exit(main())
