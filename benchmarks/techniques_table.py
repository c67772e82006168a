"""The original README's claimed improvements beside what the techniques study measured, budget by budget.

    python benchmark_all.py --techniques --model cnn --no-amp --subset 10000 --epochs 5 --eval-every 5 --seeds 5 \\
        --data-dir ../shared/data/cifar10-jpeg --output-dir benchmarks/results/techniques-cpu-short-2026-12-01
    python benchmarks/techniques_table.py short=benchmarks/results/techniques-cpu-short-2026-12-01 \\
        long=FOLDER --plot docs/images/techniques_by_budget.png

Each ``NAME=FOLDER`` is a techniques study (finished or stopped part-way: a comparison uses the seeds
both of its arms finished) and becomes a column: the paired difference with its 95% interval, and a
verdict (``utils/studies/claims.py``: confirmed / reversed at this budget / not resolved). It prints the
Markdown table (README's "Expected improvements" is this table) and, with ``--plot``, draws every
budget's intervals beside the claims.
A GPU run of the same study (``benchmarks/gpu/gpu_suite.py``) is one more column: ``full=FOLDER``.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.errors import OneLineArgumentParser, UserError, exit_on_user_error  # noqa: E402
from utils.studies.charts import plot_differences_by_budget  # noqa: E402
from utils.studies.claims import (CLAIMS, claims_table, display_label, interval_points, study_budget,  # noqa: E402
                                  technique_differences)
from utils.visualization import picture_path  # noqa: E402


def parse_budget(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise UserError(f"'{text}': give each study as NAME=FOLDER (short=benchmarks/results/...)")
    return name, Path(folder)


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="techniques_table.py", description=__doc__.splitlines()[0])
    parser.add_argument("budgets", nargs="+", metavar="NAME=FOLDER", help="a techniques study folder per budget")
    parser.add_argument("--plot", metavar="PNG", help="also draw the intervals of every budget beside the claims")
    args = parser.parse_args(argv)
    budgets = [parse_budget(text) for text in args.budgets]
    names = [name for name, _ in budgets]
    if len(set(names)) != len(names):
        raise UserError(f"each budget needs its own name (got {', '.join(names)})")
    out = picture_path(args.plot) if args.plot else None  # a bad path fails before any work
    measured = [(name, technique_differences(folder)) for name, folder in budgets]
    print("\n".join(claims_table(measured)))
    for name, folder in budgets:
        print(f"- {name}: {study_budget(folder)} ({folder})")
    if out is not None:
        # the claims' rows some study measured, then any row a study measured that no claim has (Cutout)
        found = {label for _, differences in measured for label in differences}
        rows = [label for label in CLAIMS if label in found] + sorted(found - set(CLAIMS))
        plot_differences_by_budget([display_label(label) for label in rows],
                                   [CLAIMS[label].points if label in CLAIMS else None for label in rows],
                                   [(f"{name}: {study_budget(folder)}", interval_points(differences, rows))
                                    for (name, folder), (_, differences) in zip(budgets, measured)], out)
        print(f"written to {args.plot}")


if __name__ == "__main__":
    with exit_on_user_error("techniques_table.py", file_errors=True):
        main()
