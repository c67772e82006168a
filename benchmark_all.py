"""Comparisons of architectures, techniques and activations, with seeds and error bars: not built yet.

Its issue will build a list of configs and call ``utils.experiment.run_training`` for each (the same
function ``main_modern.py`` calls). Until then, ``main_modern.py --compare-models`` compares models.
"""
from __future__ import annotations

import sys
from typing import Sequence

from utils.cli import new_parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = new_parser("benchmark_all.py", "Compare architectures, techniques and activations (not built yet).")
    parser.add_argument("--architectures", action="store_true")
    parser.add_argument("--techniques", action="store_true")
    parser.add_argument("--activations", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true")
    parser.parse_args(argv)
    print("benchmark_all.py is not built yet; for now use: python main_modern.py --compare-models NAME ... "
          "(see README.md)", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
