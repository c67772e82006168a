"""Training speed of each data path: img/s, the input pipeline's share of the step, peak memory.

For every model asked and every data path (``device``: the data set on the training device, batches
augmented there; ``memory``: a DataLoader with per-image transforms in worker processes), this runs
the training loop that ``main_modern.py`` runs (``utils/trainer.train``, built by the same functions)
and measures, after a warm-up, in one process:

(``stream``: the folder's files decoded and resized by the DataLoader workers every epoch.)

- throughput: images per second over the timed steps (on CUDA: between CUDA events, after a sync);
- the input pipeline's share: the time it takes alone to make as many batches, over the loop's time;
- peak memory (CUDA only: ``torch.cuda.max_memory_allocated``).

It prints a table, the device path's speed against the DataLoader path's as a ratio, and writes
JSON and markdown under ``benchmarks/results/``.

    python benchmarks/speed.py                                   # cnn, resnet_tiny, resnet18 on synthetic data
    python benchmarks/speed.py --models resnet_tiny --data-dir ../shared/data/cifar10-jpeg --subset 10000
    python benchmarks/speed.py --models resnet18 --amp --compile --channels-last --steps 200   # on a GPU
    python benchmarks/speed.py --models speednet resnet_tiny --precisions fp32 bf16 bf16-compile --modes device

``--precisions``: each model once per precision, side by side in one process (fp32 contiguous;
bf16 autocast with channels_last; either under ``torch.compile``, whose compilation falls in the
warm-up steps and is reported apart as ``first_steps_s``), with each one's speed over fp32's. On a CPU
without native bf16 (AVX2 only) bf16 autocast is emulated and about ten times slower than fp32
(``results/cpu-without-bf16-2026-12-01.md``): compare ``fp32 fp32-compile`` there.
"""
from __future__ import annotations

import contextlib
import io
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from utils.config import DEVICES, TrainConfig  # noqa: E402
from utils.data_loader import build_data  # noqa: E402
from utils.devices import select_device  # noqa: E402
from utils.errors import OneLineArgumentParser, UserError, exit_on_user_error, whole_number  # noqa: E402
from utils.experiment import build_model  # noqa: E402
from utils.files import atomic_write, unused_stem, write_json  # noqa: E402
from utils.resolve import resolve, resolve_amp  # noqa: E402
from utils.trainer import Trainer, train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PRECISIONS = {"fp32": dict(amp=False, channels_last=False, compile=False),
              "fp32-compile": dict(amp=False, channels_last=False, compile=True),  # CPUs without native bf16
              "bf16": dict(amp=True, amp_dtype="bf16", channels_last=True, compile=False),
              "bf16-compile": dict(amp=True, amp_dtype="bf16", channels_last=True, compile=True)}


def measure(config: TrainConfig, steps: int, warmup: int, device: torch.device, progress: bool) -> dict[str, Any]:
    """Time ``steps`` steps of the training loop main_modern.py runs (``utils/trainer.train``) after ``warmup``.

    The loop runs as it does in a run (step-log reads every 50 steps and per-epoch checkpoints
    included), but it is left after ``warmup + steps`` steps, before any evaluation. The input
    pipeline is then timed alone over as many batches: its share is that time over the loop's.
    """
    data = build_data(config, device)
    model = build_model(config, data.num_classes).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    cuda = device.type == "cuda"
    # Enough epochs for the window, and no evaluation inside it (the last epoch is never reached).
    epochs = 2 + (warmup + steps) // max(1, data.train_loader.steps_per_epoch)
    config = config.replace(epochs=epochs, eval_every=epochs, progress=progress)
    with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):
        trainer = Trainer(model, data, config, Path(run_dir), device)
        first = time.perf_counter()
        train(trainer, max_steps=warmup)  # compilation, cuDNN plans, optimizer state
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        first_steps = started - first
        train(trainer, max_steps=warmup + steps)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    input_seconds = time_input(data, steps, cuda)
    images_done = steps * config.batch_size
    return {
        "model": config.model, "data_mode": config.data_mode, "batch_size": config.batch_size, "steps": steps,
        "seconds": round(seconds, 4), "img_per_s": round(images_done / seconds, 1),
        "input_share": round(input_seconds / max(seconds, 1e-9), 4), "first_steps_s": round(first_steps, 2),
        "precision": ("bf16" if config.amp else "fp32") + ("-compile" if config.compile else ""),
        "peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None,
    }


def time_input(data, steps: int, cuda: bool) -> float:
    """Seconds the input pipeline alone takes to produce ``steps`` training batches."""
    done, epoch, started = 0, 0, time.perf_counter()
    while done < steps:
        data.set_epoch(epoch)
        for _ in zip(range(steps - done), data.train_loader):
            done += 1
        epoch += 1
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - started


def markdown(rows: list[dict[str, Any]], header: str) -> str:
    lines = [header, "", "| model | data path | precision | img/s | input share | peak memory (MiB) | vs memory path "
             "| vs fp32 | warm-up steps (s) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        memory = row["peak_memory_mib"] if row["peak_memory_mib"] is not None else "n/a (CPU)"
        ratio = f"{row['speedup_vs_memory']:.2f}x" if row.get("speedup_vs_memory") else ""
        vs_fp32 = f"{row['speedup_vs_fp32']:.2f}x" if row.get("speedup_vs_fp32") else ""
        lines.append(f"| {row['model']} | {row['data_mode']} | {row['precision']} | {row['img_per_s']:,.0f} | "
                     f"{100 * row['input_share']:.1f}% | {memory} | {ratio} | {vs_fp32} | {row['first_steps_s']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = OneLineArgumentParser(prog="speed.py", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn", "resnet_tiny", "resnet18"])
    parser.add_argument("--modes", nargs="+", default=["device", "memory"], choices=["device", "memory", "stream"],
                        help="data paths to time (stream: an image folder's files decoded by the workers; needs --data-dir)")
    parser.add_argument("--data-dir", help="an image folder (default: synthetic data, no files needed)")
    parser.add_argument("--subset", type=whole_number(1), help="training images to use from --data-dir")
    parser.add_argument("--batch-size", type=whole_number(1), default=128)
    parser.add_argument("--steps", type=whole_number(1), default=20, help="timed steps per model and path")
    parser.add_argument("--warmup", type=whole_number(0), default=3)
    parser.add_argument("--workers", type=whole_number(0, 64), default=2, help="DataLoader workers of the memory path")
    parser.add_argument("--modern-training", action="store_true", help="the modern recipe (AdamW, EMA, clipping...)")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--output", help="basename of the JSON/markdown files (default: speed-<device>-<date>)")
    parser.add_argument("--results-dir", default=str(RESULTS), help="where they are written")
    parser.add_argument("--precisions", nargs="+", choices=list(PRECISIONS),
                        help="compare these precisions per model (on the first of --modes) instead of data paths")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        raise UserError(f"--steps must be at least 1 and --warmup at least 0 (got {args.steps} and {args.warmup})")
    if args.batch_size < 1:  # checked here: the synthetic data set's size is made from it
        raise UserError(f"--batch-size must be at least 1 (got {args.batch_size})")

    device = select_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    source = dict(data_dir=args.data_dir, subset=args.subset) if args.data_dir else dict(
        dataset="synthetic", synthetic_size=(args.steps + args.warmup) * args.batch_size)
    rows = []

    def run_config(model: str, mode: str, **precision: Any) -> TrainConfig:
        """The config main_modern.py would run for ``model`` on data path ``mode``, resolved for the device."""
        config = resolve(TrainConfig(model=model, recipe="modern" if args.modern_training else "standard",
                                     batch_size=args.batch_size, workers=args.workers, data_mode=mode, progress=False,
                                     device=args.device, **precision, **source))
        return resolve_amp(config, device)

    for model in args.models if args.precisions else []:
        per_precision = {}
        for precision in args.precisions:
            per_precision[precision] = measure(run_config(model, args.modes[0], **PRECISIONS[precision]),
                                               args.steps, args.warmup, device, not args.no_progress)
        if "fp32" in per_precision:
            for row in per_precision.values():
                row["speedup_vs_fp32"] = round(row["img_per_s"] / per_precision["fp32"]["img_per_s"], 3)
        rows += per_precision.values()
    for model in args.models if not args.precisions else []:
        per_mode = {}
        for mode in args.modes:
            per_mode[mode] = measure(run_config(model, mode, amp=args.amp or None, compile=args.compile,
                                                channels_last=args.channels_last or None),
                                     args.steps, args.warmup, device, not args.no_progress)
        for mode in ("device", "stream"):  # each against the DataLoader over the decoded tensor
            if mode in per_mode and "memory" in per_mode:
                per_mode[mode]["speedup_vs_memory"] = round(
                    per_mode[mode]["img_per_s"] / per_mode["memory"]["img_per_s"], 3)
        rows += per_mode.values()

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or 'cpu'}, " \
        f"{torch.get_num_threads()} threads)"
    header = (f"# Training speed by data path\n\n`python benchmarks/speed.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
              f" on {name}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; batch {args.batch_size}, "
              f"{args.steps} timed steps after {args.warmup} warm-up, "
              f"{'data ' + args.data_dir if args.data_dir else 'synthetic data'}, "
              f"{'modern' if args.modern_training else 'standard'} recipe"
              f"{', AMP' if args.amp else ''}{', compile' if args.compile else ''}"
              f"{', channels_last' if args.channels_last else ''}. Input share: the time the input pipeline takes "
              f"alone to make the batches, over the training loop's.")
    table = markdown(rows, header)
    print(table)
    for row in rows:
        if row.get("speedup_vs_memory"):
            print(f"{row['model']}: {row['data_mode']} path {row['speedup_vs_memory']:.2f}x the memory path's img/s "
                  f"(epoch time ratio {1 / row['speedup_vs_memory']:.2f})")
    results = Path(args.results_dir)
    try:
        results.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create --results-dir {results} ({error.strerror or error})") from None
    # a second run the same day writes beside the first one's files, never over them
    base = unused_stem(results, args.output or f"speed-{device.type}-{time.strftime('%Y-%m-%d')}", (".json", ".md"))
    write_json(results / f"{base}.json", {"header": header, "rows": rows})
    atomic_write(results / f"{base}.md", lambda temporary: temporary.write_text(table))
    print(f"written: {results / (base + '.json')} and .md")
    return rows


if __name__ == "__main__":
    with exit_on_user_error("speed.py", file_errors=True):
        main()
