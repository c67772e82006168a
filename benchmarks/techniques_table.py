"""The original README's claimed improvements beside what the techniques studies measured, budget by budget.

    python benchmarks/techniques_table.py "cnn, 10k, 5 ep=benchmarks/results/techniques-cpu-short-2026-12-01" \\
        "speednet, 50k, 8 ep=benchmarks/results/preset-techniques-cpu-8ep-2026-12-05" --plot by_budget.png
    python benchmarks/techniques_table.py --docs      # README's and the guide's table and picture, from DOCS

Each ``NAME=FOLDER`` is a techniques study (``--techniques`` or ``--preset-techniques``, finished or stopped
part-way: a comparison uses the seeds both of its arms finished) and becomes a column: the paired difference
with its 95% interval. ``NAME=FOLDER+LATER`` reads both folders, a row of LATER replacing the same row of
FOLDER (a row measured again). The last column holds each budget's verdict, naming its budget
(``utils/studies/claims.py``: "reversed at 5 epochs on 10k images"). ``--plot`` draws every budget's
intervals beside the claims (``--rows-of NAME``: only the rows that budget measured). ``--docs`` does both
for the budgets in :data:`DOCS` and rewrites the ``<!-- claims:table -->`` regions of README and the guide, and
the guide's ``<!-- claims:augmentations -->`` (level 4: each augmentation of the full-data studies in
:data:`DOCS_ARMS`, budget by budget, with its training accuracy).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.doc_regions import rewrite_files  # noqa: E402
from utils.errors import OneLineArgumentParser, UserError, exit_on_user_error  # noqa: E402
from utils.studies.charts import plot_differences_by_budget  # noqa: E402
from utils.studies.claims import (CLAIMS, Budget, arms_table, budget_words, claims_table,  # noqa: E402
                                  display_label, interval_points, study_budget, table_rows, technique_differences)
from utils.visualization import picture_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"
# The budgets README and the guide print, in order: the level-1 cnn on 10,000 images (its step row measured
# again with decays scaled to the run), then the speed preset's network on all 50,000, whose rows the picture draws.
DOCS = [f"cnn, 10k, 5 ep={RESULTS}/techniques-cpu-short-2026-12-01+{RESULTS}/techniques-cpu-step-scaled-2026-12-05",
        f"cnn, 10k, 15 ep={RESULTS}/techniques-cpu-long-2026-12-01",
        f"speednet, 50k, 8 ep={RESULTS}/preset-techniques-cpu-8ep-2026-12-05",
        f"speednet, 50k, 24 ep={RESULTS}/preset-techniques-cpu-24ep-2026-12-06"]
DOCS_ROWS_OF = "speednet, 50k, 8 ep"
# Level 4's table of augmentations: the full-data studies, shortest budget first.
DOCS_ARMS = [f"{RESULTS}/preset-techniques-cpu-8ep-2026-12-05", f"{RESULTS}/preset-techniques-cpu-24ep-2026-12-06"]
DOCS_PICTURE = "docs/images/techniques_by_budget.png"
DOCS_FILES = ("README.md", "MODERN_DL_GUIDE.md")


def parse_budget(text: str, root: Path = Path(".")) -> tuple[str, list[Path]]:
    """``NAME=FOLDER[+FOLDER]``: the name (no ``|``: it heads a table column) and the folders."""
    name, sep, folders = text.partition("=")
    parts = folders.split("+")
    if not sep or not name or not all(parts):
        raise UserError(f"'{text}': give each study as NAME=FOLDER or NAME=FOLDER+FOLDER "
                        f"(short=benchmarks/results/...)")
    if "|" in name:
        raise UserError(f"'{name}': a budget's name heads a column of the table, so it cannot hold '|'")
    return name, [root / folder for folder in parts]


def read_budget(name: str, folders: list[Path]) -> tuple[Budget, str]:
    """One column: the folders' differences (a later folder's row replacing an earlier one's), and its budget in
    words for the legend."""
    differences = {}
    for folder in folders:
        differences.update(technique_differences(folder))  # refuses a folder without results.json
    runs = {(study_budget(folder).split(",")[0], budget_words(folder)) for folder in folders}  # network, budget
    if len(runs) > 1:
        raise UserError(f"{name}: its folders trained different networks or budgets "
                        f"({'; '.join(sorted(', '.join(run) for run in runs))})")
    return Budget(name, differences, runs.pop()[1]), study_budget(folders[0])


def read_budgets(specs: list[str], root: Path = Path(".")) -> tuple[list[Budget], list[str]]:
    """Every budget ``NAME=FOLDER[+FOLDER]``, and each one's legend."""
    parsed = [parse_budget(text, root) for text in specs]
    names = [name for name, _ in parsed]
    if len(set(names)) != len(names):
        raise UserError(f"each budget needs its own name (got {', '.join(names)})")
    budgets, legends = zip(*(read_budget(name, folders) for name, folders in parsed))
    return list(budgets), list(legends)


def drawn_rows(budgets: list[Budget], rows_of: str | None) -> list[str]:
    """The rows the picture draws: every row some budget measured, or only those of the budget ``rows_of``."""
    if rows_of is not None and rows_of not in [b.name for b in budgets]:
        raise UserError(f"--rows-of {rows_of}: no budget has that name (the names: "
                        f"{', '.join(b.name for b in budgets)})")
    drawn = [b for b in budgets if b.name == rows_of] if rows_of else budgets
    return [label for label, _ in table_rows(drawn) if any(label in b.differences for b in drawn)]


def draw(budgets: list[Budget], legends: list[str], rows: list[str], out: Path) -> None:
    plot_differences_by_budget([display_label(label) for label in rows],
                               [CLAIMS[label].points if label in CLAIMS else None for label in rows],
                               [(legend, interval_points(b.differences, rows)) for b, legend in zip(budgets, legends)],
                               out)


def table_text(budgets: list[Budget], legends: list[str]) -> list[str]:
    """The claims table and, under it, each column's budget in full."""
    return claims_table(budgets) + [""] + [f"- {b.name}: {legend}" for b, legend in zip(budgets, legends)]


def docs_regions(table: list[str]) -> dict[str, list[str]]:
    """What the claims regions of README and the guide hold: ``table`` (the claims table of the budgets in DOCS)
    and level 4's augmentations, from the folders in DOCS_ARMS."""
    return {"table": table, "augmentations": arms_table([REPO / folder for folder in DOCS_ARMS])}


def docs_table() -> list[str]:
    """The claims table of the budgets in DOCS."""
    return table_text(*read_budgets(DOCS, root=REPO))


def write_docs(regions: dict[str, list[str]], files: list[Path]) -> list[str]:
    """Rewrite each file's ``<!-- claims:NAME -->`` regions with ``regions[NAME]``; the files that had one."""
    found = rewrite_files(files, "claims", {name: (lambda body, lines=lines: "\n".join(lines))
                                            for name, lines in regions.items()})
    return [str(path) for path, names in found.items() if names]


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="techniques_table.py", description=__doc__.splitlines()[0])
    parser.add_argument("budgets", nargs="*", metavar="NAME=FOLDER", help="a techniques study folder per budget")
    parser.add_argument("--plot", metavar="PNG", help="also draw the intervals of every budget beside the claims")
    parser.add_argument("--rows-of", metavar="NAME", help="with --plot: draw only the rows this budget measured")
    parser.add_argument("--docs", action="store_true", help=f"the docs' budgets (the script's DOCS): rewrite the "
                                                             f"claims table of README and the guide, draw {DOCS_PICTURE}")
    args = parser.parse_args(argv)
    if args.docs == bool(args.budgets) or (args.docs and (args.plot or args.rows_of)):
        raise UserError("give either budgets NAME=FOLDER (with --plot, --rows-of) or --docs alone "
                        "(its budgets and picture are the script's)")
    if args.rows_of and not args.plot:
        raise UserError("--rows-of chooses the rows of the picture: give --plot PNG with it")
    specs, root = (DOCS, REPO) if args.docs else (args.budgets, Path("."))
    plot = REPO / DOCS_PICTURE if args.docs else args.plot
    rows_of = DOCS_ROWS_OF if args.docs else args.rows_of
    out = picture_path(str(plot)) if plot else None  # a bad path fails before any work
    budgets, legends = read_budgets(specs, root)
    rows = drawn_rows(budgets, rows_of)
    table = table_text(budgets, legends)
    print("\n".join(table))
    if out is not None:
        draw(budgets, legends, rows, out)
    if args.docs:
        for path in write_docs(docs_regions(table), [REPO / name for name in DOCS_FILES]):
            print(f"rewrote the claims regions of {path}")
    if plot:
        print(f"written to {plot}")


if __name__ == "__main__":
    with exit_on_user_error("techniques_table.py", file_errors=True):
        main()
