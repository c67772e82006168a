"""Learning level 1: train the basic CNN with a chosen activation and the standard trainer.

    python main.py --epochs 2 --subset 10000 --activation gelu   # add --data-dir PATH for a local copy
    python main.py --list-activations
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from utils.errors import exit_at_once_on_ctrl_c, exit_on_user_error

with exit_at_once_on_ctrl_c("main.py"):  # Ctrl-C while torch imports (seconds) is one line too
    from utils.cli import add_common_arguments, config_from_args, new_parser, print_activations
    from utils.experiment import run_training


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("main.py", "Train the basic CNN (learning level 1): Adam, step LR, a plain loop.")
    add_common_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with exit_on_user_error("main.py"):
        if args.list_activations:
            print_activations()
            return
        run_training(config_from_args(args, model="cnn", recipe="standard"))


if __name__ == "__main__":
    main(sys.argv[1:])
