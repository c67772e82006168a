"""Any registry model, with the standard or the modern recipe, any augmentation and regularization.

    python main_modern.py --list-models
    python main_modern.py --model resnet18 --modern-training --epochs 30 --augmentation randaugment --mixup
    python main_modern.py --compare-models cnn resnet_tiny --quick
    python main_modern.py --evaluate runs/resnet18-.../best.pt
    python main_modern.py --predict runs/resnet18-.../best.pt my_photo.jpg photos/
    python main_modern.py --export runs/resnet18-.../best.pt
    python main_modern.py --explain runs/resnet18-.../best.pt gradcam.png
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from utils.errors import exit_at_once_on_ctrl_c, exit_on_user_error

with exit_at_once_on_ctrl_c("main_modern.py"):  # Ctrl-C while torch imports (seconds) is one line too
    from models import count_parameters, create_model, list_models, model_family
    from utils.after.explain import explain_checkpoint
    from utils.after.export import export_checkpoint
    from utils.after.predict import predict_images
    from utils.cli import (add_common_arguments, add_modern_arguments, config_from_args, explicit_settings,
                           new_parser, print_activations)
    from utils.comparison import compare_models
    from utils.config import EXPORT_FORMATS
    from utils.errors import UserError
    from utils.experiment import evaluate_checkpoint, plot_schedules, preview_augmentation, run_training
    from utils.smoke import smoke_settings


def print_models() -> None:
    print(f"{'model':<24} {'family':<14} {'params (M)':>10}   (10 classes, 32×32)")
    for name in list_models():
        print(f"{name:<24} {model_family(name):<14} {count_parameters(create_model(name)) / 1e6:>10.2f}")


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("main_modern.py", "Train any registry model with the standard or the modern recipe.")
    add_common_arguments(parser)
    add_modern_arguments(parser)
    return parser


# Flags that only mean something with one mode, and that mode: given without it, they would be ignored.
COMPANIONS = {"misclassified": "evaluate", "top_k": "predict", "save_predictions": "predict",
              "export_format": "export", "export_dir": "export", "explain_count": "explain"}
MODE_USAGE = {"evaluate": "--evaluate CHECKPOINT", "predict": "--predict CHECKPOINT IMAGE...",
              "export": "--export CHECKPOINT", "explain": "--explain CHECKPOINT PNG"}


# The modes of one command: each does one thing; training is what a command without any of them does.
MODES = ("list_models", "list_activations", "evaluate", "predict", "export", "explain", "plot_schedule",
         "preview_augmentation", "compare_models")
# The settings a mode that reads a saved model takes from the command line; the rest come from the checkpoint,
# so any other setting given (--model, --epochs, --resume...) would be ignored.
MODE_SETTINGS = {"list_models": set(), "list_activations": set(), "predict": {"tta", "device"}, "export": set(),
                 "explain": {"device", "seed"}}  # (--evaluate names what it takes from the checkpoint instead)
ANYWHERE = {"progress"}  # progress bars: every mode may be told to show none


def check_companions(args: argparse.Namespace) -> None:
    """One mode per command, and no flag that the command would ignore."""
    given = [mode for mode in MODES if getattr(args, mode) not in (None, False)]
    if len(given) > 1:
        raise UserError(f"{' and '.join(flag(m) for m in given)} are two commands; give one of them at a time")
    for name, mode in COMPANIONS.items():
        if getattr(args, name) is not None and not getattr(args, mode):
            raise UserError(f"{flag(name)} goes with {MODE_USAGE[mode]}; give that too")
    if given and given[0] in MODE_SETTINGS:
        ignored = sorted(set(explicit_settings(args)) - MODE_SETTINGS[given[0]] - ANYWHERE)
        if ignored:
            what = "the checkpoint's settings" if given[0] in MODE_USAGE else "nothing else"
            raise UserError(f"{flag(given[0])} uses {what}; {', '.join(flag(n) for n in ignored)} would be ignored: "
                            f"leave {'it' if len(ignored) == 1 else 'them'} out")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with exit_on_user_error("main_modern.py"):
        check_companions(args)
        if args.list_models:
            print_models()
        elif args.list_activations:
            print_activations()
        elif args.evaluate:
            evaluate_checkpoint(args.evaluate, smoke_settings(explicit_settings(args)), args.misclassified)
        elif args.predict:
            if len(args.predict) < 2:
                raise UserError("--predict takes a checkpoint, then the images or folders to classify")
            predict_images(args.predict[0], args.predict[1:], 3 if args.top_k is None else args.top_k, args.tta,
                           args.device or "auto", args.save_predictions)
        elif args.export:
            export_checkpoint(args.export, args.export_format or EXPORT_FORMATS, args.export_dir)
        elif args.explain:
            explain_checkpoint(*args.explain, 16 if args.explain_count is None else args.explain_count,
                               args.device or "auto", args.seed or 0)
        elif args.plot_schedule:
            plot_schedules(config_from_args(args), args.plot_schedule)
        elif args.preview_augmentation:
            preview_augmentation(config_from_args(args), args.preview_augmentation)
        elif args.compare_models is not None:
            # Re-running the command continues it (finished models are skipped): --resume is that too.
            compare_models(config_from_args(args, resume=False), args.compare_models)
        else:
            run_training(config_from_args(args))


if __name__ == "__main__":
    main(sys.argv[1:])
