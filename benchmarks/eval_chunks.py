"""How many images one forward pass of an evaluation should take on this machine (``utils/evaluation.CPU_CHUNK``).

Claim: on a CPU, evaluation is fastest in pieces of a few hundred images, whose activations stay in
the caches, not in one batch of all the test-time views (speednet, bf16, weighted views: 6 x 1,024
images a batch). Evidence: this script times ``utils.evaluation.predict``, the function ``evaluate``
calls for every test batch, over the same synthetic test set for each chunk size, side by side in one
process, twice (the second round shows how much the machine drifts), and writes a markdown table.

    python benchmarks/eval_chunks.py --output cpu-eval-chunks-2026-12-02
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import create_model  # noqa: E402
from utils.config import TTA_MODES  # noqa: E402
from utils.devices import cpu_has_native_bf16  # noqa: E402
from utils.errors import OneLineArgumentParser, exit_on_user_error, whole_number  # noqa: E402
from utils.evaluation import predict  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def time_predict(model: torch.nn.Module, batches: list[torch.Tensor], tta: str, chunk: int | None, bf16: bool) -> float:
    """Images per second of ``predict`` over ``batches`` (each counted once, whatever its views)."""
    started = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for images in batches:
            predict(model, images, tta, chunk)
    return sum(len(images) for images in batches) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(prog="eval_chunks.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="speednet")
    parser.add_argument("--images", type=whole_number(1), default=4096, help="synthetic test images per measurement")
    parser.add_argument("--batch-size", type=whole_number(1), default=1024, help="the test loader's batch (the preset's)")
    parser.add_argument("--tta", default="weighted", choices=TTA_MODES, help="test-time views (the preset's: weighted, 6 views)")
    parser.add_argument("--chunks", type=whole_number(0), nargs="+", default=[0, 1024, 512, 256, 128],
                        help="images per forward pass; 0: all views of a batch in one pass")
    parser.add_argument("--output", default=None, help="basename of the markdown file under benchmarks/results/")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    bf16 = cpu_has_native_bf16()
    model = create_model(args.model).to(memory_format=torch.channels_last).eval()
    images = torch.randn(args.images, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    batches = list(images.split(args.batch_size))
    time_predict(model, batches[:1], args.tta, None, bf16)  # warm-up: oneDNN builds its kernels once
    rows = []
    for round_ in (1, 2):
        for chunk in args.chunks:
            speed = time_predict(model, batches, args.tta, chunk or None, bf16)
            rows.append((round_, chunk, speed))
            print(f"round {round_}: {'all views' if not chunk else chunk} per pass: {speed:.0f} img/s", flush=True)
    if args.output:
        write_table(args, rows, bf16)
    return 0


def write_table(args: argparse.Namespace, rows: list[tuple[int, int, float]], bf16: bool) -> None:
    command = "python benchmarks/eval_chunks.py " + " ".join(sys.argv[1:])
    lines = [f"# Evaluation speed on the CPU by images per forward pass ({args.model}, {args.tta} views)", "",
             f"`{command}`", "",
             f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, "
             f"{'bf16 autocast' if bf16 else 'fp32'}, channels_last, {date.today().isoformat()}. "
             f"{args.images} synthetic test images in batches of {args.batch_size}; test images per second "
             "(each image counted once, whatever its number of views).", "",
             "| round | images per forward pass | test images/s |", "| --- | --- | --- |"]
    lines += [f"| {round_} | {chunk or 'all views of a batch'} | {speed:.0f} |" for round_, chunk, speed in rows]
    path = RESULTS / f"{args.output}.md"
    path.write_text("\n".join(lines) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    with exit_on_user_error("eval_chunks.py", file_errors=True):
        sys.exit(main())
