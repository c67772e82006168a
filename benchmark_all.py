"""Comparisons of architectures, techniques, activations and regularizers, with seeds, error bars and intervals (level 7).

    python benchmark_all.py --quick --architectures --models cnn resnet_tiny --seeds 2 --data-dir DATA
    python benchmark_all.py --techniques --model resnet18 --epochs 20 --data-dir DATA
    python benchmark_all.py --activations --model cnn --quick --data-dir DATA
    python benchmark_all.py --regularization --model resnet_tiny --subset 10000 --epochs 5 --data-dir DATA
    python benchmark_all.py --record --subset 10000 --test-subset 5000 --data-dir DATA   # the speed preset's parts
    python benchmark_all.py --full --list        # the experiments it would run, and exit

Every (experiment, seed) is an ordinary training run (``utils/experiment.run_training``) in
``--output-dir/<study>/<experiment>/seed-<n>``; ``utils/studies/`` plans, runs and reports them.
Re-running the same command continues an interrupted benchmark: finished runs are skipped.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Sequence

from utils.errors import exit_at_once_on_ctrl_c, exit_on_user_error
from utils.resolve import resolve

with exit_at_once_on_ctrl_c("benchmark_all.py"):  # Ctrl-C while torch imports (seconds) is one line too
    from utils.cli import epoch_count, new_parser
    from utils.config import AMP_DTYPES, DATA_MODES, DATASETS, DEVICES, QUICK_SUBSET, QUICK_TEST_SUBSET, TrainConfig
    from utils.data.order import take_subset
    from utils.data.sources import load_splits
    from utils.errors import UserError
    from utils.presets import PRESETS
    from utils.smoke import SMOKE_MAX_SEEDS, smoke_enabled, smoke_settings
    from utils.studies import (FULL_STUDIES, STUDIES, BenchmarkPlan, build_experiments, check_same_study,
                               differing_settings, experiment_config, keep_only, run_benchmark, write_report)
    from utils.training.run_dir import unique_run_dir
    from utils.training.tensorboard_log import require_tensorboard

FULL_EPOCHS = 20  # the description's budget for each study


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("benchmark_all.py", "Compare architectures, techniques, activations and regularizers over several seeds.")
    studies = parser.add_argument_group("studies")
    studies.add_argument("--architectures", action="store_true", help="every model of --models, same recipe and budget")
    studies.add_argument("--techniques", action="store_true",
                         help="the ablation table: each technique against its baseline on --model")
    studies.add_argument("--activations", action="store_true", help="every activation on --model")
    studies.add_argument("--regularization", action="store_true",
                         help="Cutout, random erasing, CutMix, DropBlock and stochastic depth, each against "
                              "--model without it (a resnet or efficientnet model)")
    studies.add_argument("--record", action="store_true",
                         help="the speed preset's ingredients: the preset against it without each one "
                         "(its own model and epochs; --subset, --test-subset and --seeds apply)")
    studies.add_argument("--preset-techniques", action="store_true",
                         help="label smoothing, EMA, Cutout, MixUp and RandAugment, each added to the speed preset's "
                         "network and recipe (without its label smoothing) on all the data it is given: levels 3 "
                         "and 4 at a budget a CPU trains in minutes (--epochs, default the preset's 8)")
    studies.add_argument("--full", action="store_true", help=f"the description's three studies (architectures, techniques, activations), "
                              f"{FULL_EPOCHS} epochs each")
    studies.add_argument("--list", action="store_true", help="print the experiments it would run and exit")
    studies.add_argument("--report", action="store_true", help="write RESULTS.md and the plots from the runs "
                         "finished so far in --output-dir, and train nothing (a study stopped midway)")

    budget = parser.add_argument_group("budget")
    budget.add_argument("--quick", action="store_true",
                        help=f"2 epochs on {QUICK_SUBSET} training and {QUICK_TEST_SUBSET} test images, 1 seed")
    budget.add_argument("--epochs", type=epoch_count, help=f"epochs per run (default {FULL_EPOCHS}, 2 with --quick)")
    budget.add_argument("--seeds", type=int, help="seeds per experiment (default 3, 1 with --quick)")
    budget.add_argument("--models", nargs="+", metavar="NAME", help="models of --architectures (default: every registry model)")
    budget.add_argument("--model", default="resnet18", help="model of --techniques, --activations and --regularization")
    budget.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these experiments of the study (names as --list shows them); the "
                             "baseline each is compared against comes along")
    budget.add_argument("--subset", type=int, help="training images (stratified)")
    budget.add_argument("--test-subset", type=int, help="test images (stratified)")

    data = parser.add_argument_group("data and run (passed to every experiment)")
    data.add_argument("--data-dir", help="as main_modern.py's --data-dir")
    data.add_argument("--dataset", choices=DATASETS)
    data.add_argument("--synthetic-size", type=int)
    data.add_argument("--image-size", type=int)
    data.add_argument("--cache-dir")
    data.add_argument("--data-mode", choices=DATA_MODES)
    data.add_argument("--device", choices=DEVICES)
    data.add_argument("--batch-size", type=int)
    data.add_argument("--workers", type=int)
    data.add_argument("--eval-every", type=int, help="default 1: a test point every epoch for the curves")
    data.add_argument("--compile", action="store_const", const=True)
    data.add_argument("--amp-dtype", choices=AMP_DTYPES)
    data.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                      help="mixed precision for every run (default: the recipe's: bf16 for the modern recipe on a "
                      "CUDA GPU or a CPU with native bf16, fp32 for the standard one); --amp puts the standard recipe's "
                      "studies on the CPU's bf16 fast path")
    data.add_argument("--output-dir", help="default runs/benchmark-<timestamp>")
    data.add_argument("--tensorboard", action="store_const", const=True,
                      help="every run writes TensorBoard event files into its folder: tensorboard --logdir "
                      "OUTPUT_DIR shows the study's runs side by side (needs pip install -r requirements-extras.txt)")
    data.add_argument("--no-progress", dest="progress", action="store_false")
    data.add_argument("--verbose", action="store_true", help="show every run's per-epoch lines")
    return parser


PASSED_THROUGH = ("data_dir", "dataset", "synthetic_size", "image_size", "cache_dir", "data_mode", "device",
                  "batch_size", "workers", "compile", "amp_dtype", "amp", "tensorboard")


def plan_from_args(args: argparse.Namespace, argv: Sequence[str]) -> BenchmarkPlan:
    studies = [s for s in STUDIES if getattr(args, s) or (args.full and s in FULL_STUDIES)]
    if not studies:
        raise UserError("choose a study: --architectures, --techniques, --activations, --regularization, --record, "
                        "or --full for the first three")
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    if smoke_enabled():  # CIFAR_SMOKE=1: synthetic data, one epoch, one seed (utils/smoke.py)
        seeds = min(seeds, SMOKE_MAX_SEEDS)
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1 (got {seeds})")
    if args.tensorboard:
        require_tensorboard()  # one line now, not one failed run per experiment
    settings = {k: getattr(args, k) for k in PASSED_THROUGH if getattr(args, k) is not None}
    def given(value, default):
        return value if value is not None else default

    preset_only = studies == ["preset_techniques"]  # the preset's budget: its epochs, one evaluation at the end
    budget = dict(epochs=given(args.epochs, 2 if args.quick else PRESETS["speed"]["epochs"] if preset_only else FULL_EPOCHS),
                  subset=given(args.subset, QUICK_SUBSET if args.quick else None),
                  test_subset=given(args.test_subset, QUICK_TEST_SUBSET if args.quick else None))
    base = TrainConfig(**smoke_settings({**settings, **budget}), eval_every=given(args.eval_every, None if preset_only else 1), progress=False,
                       quick=args.quick)
    experiments = build_experiments(studies, args.models, args.model, precision_pinned=args.amp is not None)
    if args.only:
        experiments = keep_only(experiments, args.only)
    out_dir = Path(args.output_dir) if args.output_dir else None
    plan = BenchmarkPlan(base, experiments, list(range(seeds)), out_dir or Path("runs") / "benchmark-(new)",
                         command="python benchmark_all.py " + " ".join(map(shlex.quote, argv)),
                         verbose=args.verbose, progress=args.progress, only=args.only,
                         given={k: v for k, v in smoke_settings(settings).items() if k in PASSED_THROUGH})
    for experiment in experiments:  # every setting checked before hours are spent on the first run
        experiment_config(plan, experiment, 0)
    if not (args.list or args.report):  # missing data or a subset larger than it: one error now, not one per run later
        first = experiment_config(plan, experiments[0], 0)
        train, _, _ = load_splits(first)
        take_subset(train, first.subset, first.seed, QUICK_SUBSET if first.quick else None, "--subset")
        if out_dir is None:
            plan.out_dir = unique_run_dir(Path("runs"), "benchmark")
    return plan


def print_plan(plan: BenchmarkPlan) -> None:
    base = plan.base.replace(model=plan.experiments[0].settings.get("model", "cnn"))
    configs = [experiment_config(plan, experiment, 0) for experiment in plan.experiments]
    epochs = "/".join(str(e) for e in sorted({config.epochs for config in configs}))
    print(f"{len(plan.experiments)} experiments x {len(plan.seeds)} seeds = {len(plan.experiments) * len(plan.seeds)} "
          f"runs of {epochs} epochs; output {plan.out_dir}")
    for experiment, config in zip(plan.experiments, configs):
        reference = resolve(base.replace(model=config.model))
        print(f"  {experiment.key:<36} {config.model:<22} {differing_settings(reference, config)}")


def report_only(plan: BenchmarkPlan) -> list[dict]:
    """The finished runs of this study in its folder, as the report's rows (nothing is trained)."""
    from utils.studies import load_results

    if not (plan.out_dir / "results.json").exists():
        raise UserError(f"no results.json in {plan.out_dir}: nothing to report (run the study first)")
    check_same_study(plan)  # a report of other studies would replace that study's RESULTS.md with an empty one
    wanted = {(e.study, e.name) for e in plan.experiments}
    plan.results = [r for r in load_results(plan.out_dir) if (r["study"], r["experiment"]) in wanted]
    return plan.results


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    with exit_on_user_error("benchmark_all.py", file_errors=True):
        plan = plan_from_args(args, argv)
        if args.list:
            print_plan(plan)
            return
        results = report_only(plan) if args.report else run_benchmark(plan)
        if not plan.is_main:  # under torchrun, rank 0 writes the report and speaks
            return
        report = write_report(plan)
        failed = [r for r in results if r["status"] == "failed"]
        print(f"benchmark written to {report} ({len(results) - len(failed)} runs done, {len(failed)} failed)")
    if failed:
        print(f"benchmark_all.py: {len(failed)} of {len(results)} runs failed; see {report}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
