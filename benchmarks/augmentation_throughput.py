"""Data-loading throughput of each per-image augmentation policy, against standard crop + flip.

Measures one pass over the training loader (no model), in the same process, with the workers
given, and prints images/s and the slowdown relative to ``standard``. Per-image policies like
RandAugment are the slow path; a device-resident batched path is a later issue.

    python benchmarks/augmentation_throughput.py --data-dir ../shared/data/cifar10-jpeg --subset 10000 --workers 2
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.config import TrainConfig  # noqa: E402
from utils.data_loader import build_data  # noqa: E402
from utils.errors import OneLineArgumentParser, exit_on_user_error, whole_number  # noqa: E402
from utils.resolve import resolve  # noqa: E402

POLICIES = [("standard", {}), ("randaugment", {}), ("randaugment+cutout", {"cutout": 0}),
            ("autoaugment", {}), ("trivialaugment", {}), ("standard+random_erasing", {"random_erasing": 0.25})]


def epoch_seconds(config: TrainConfig, repeats: int) -> float:
    data = build_data(config)
    best = float("inf")
    for epoch in range(repeats):
        data.set_epoch(epoch)
        started = time.perf_counter()
        for _ in data.train_loader:
            pass
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = OneLineArgumentParser(prog="augmentation_throughput.py", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data/cifar10-jpeg")
    parser.add_argument("--subset", type=whole_number(1), default=10000)
    parser.add_argument("--workers", type=whole_number(0, 64), default=2)
    parser.add_argument("--batch-size", type=whole_number(1), default=128)
    parser.add_argument("--repeats", type=whole_number(1), default=2, help="epochs per policy; the fastest is reported")
    args = parser.parse_args()
    results = {}
    for label, extra in POLICIES:
        policy = label.split("+")[0]
        config = resolve(TrainConfig(data_dir=args.data_dir, subset=args.subset, workers=args.workers, progress=False,
                                     batch_size=args.batch_size, augmentation=policy, data_mode="memory",
                                     **extra))  # the per-image path: what these policies run on
        results[label] = epoch_seconds(config, args.repeats)
    base = results["standard"]
    print(f"{'policy':<26} {'epoch (s)':>9} {'images/s':>9} {'vs standard':>12}   "
          f"({args.subset} images, {args.workers} workers)")
    for label, seconds in results.items():
        print(f"{label:<26} {seconds:>9.2f} {args.subset / seconds:>9.0f} {seconds / base:>11.2f}x")


if __name__ == "__main__":
    with exit_on_user_error("augmentation_throughput.py", file_errors=True):
        main()
