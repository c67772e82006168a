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
for the budgets in :data:`DOCS` and rewrites the ``<!-- claims:table -->`` regions of README and the guide.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.doc_regions import rewrite_regions  # noqa: E402
from utils.errors import OneLineArgumentParser, UserError, exit_on_user_error  # noqa: E402
from utils.studies.charts import plot_differences_by_budget  # noqa: E402
from utils.studies.claims import (CLAIMS, Budget, budget_words, claims_table, display_label,  # noqa: E402
                                  interval_points, study_budget, table_rows, technique_differences)
from utils.visualization import picture_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = "benchmarks/results"
# The budgets README and the guide print, in order: the level-1 cnn on 10,000 images (its step row measured
# again with decays scaled to the run), then the speed preset's network on all 50,000.
DOCS = [f"cnn, 10k, 5 ep={RESULTS}/techniques-cpu-short-2026-12-01+{RESULTS}/techniques-cpu-step-scaled-2026-12-05",
        f"cnn, 10k, 15 ep={RESULTS}/techniques-cpu-long-2026-12-01",
        f"speednet, 50k, 8 ep={RESULTS}/preset-techniques-cpu-8ep-2026-12-05"]
DOCS_PICTURE = "docs/images/techniques_by_budget.png"
DOCS_FILES = ("README.md", "MODERN_DL_GUIDE.md")


def parse_budget(text: str, root: Path = Path(".")) -> tuple[str, list[Path]]:
    name, sep, folders = text.partition("=")
    if not sep or not name or not folders:
        raise UserError(f"'{text}': give each study as NAME=FOLDER (short=benchmarks/results/...)")
    return name, [root / folder for folder in folders.split("+")]


def read_budget(name: str, folders: list[Path]) -> tuple[Budget, str]:
    """One column: the folders' differences (a later folder's row replacing an earlier one's), and its budget in
    words for the legend."""
    words = {budget_words(folder) for folder in folders}
    if len(words) > 1:
        raise UserError(f"{name}: its folders ran different budgets ({', '.join(sorted(words))})")
    differences = {}
    for folder in folders:
        differences.update(technique_differences(folder))
    return Budget(name, differences, words.pop()), study_budget(folders[0])


def table_and_picture(specs: list[str], plot: Path | None, rows_of: str | None = None, root: Path = Path(".")
                      ) -> list[str]:
    """The Markdown table of the budgets ``NAME=FOLDER[+FOLDER]``, and their picture at ``plot``."""
    parsed = [parse_budget(text, root) for text in specs]
    names = [name for name, _ in parsed]
    if len(set(names)) != len(names):
        raise UserError(f"each budget needs its own name (got {', '.join(names)})")
    if rows_of is not None and rows_of not in names:
        raise UserError(f"--rows-of {rows_of}: no budget has that name (the names: {', '.join(names)})")
    out = picture_path(str(plot)) if plot else None  # a bad path fails before any work
    budgets, legends = zip(*(read_budget(name, folders) for name, folders in parsed))
    if out is not None:
        drawn = [b for b in budgets if b.name == rows_of] if rows_of else budgets
        rows = [label for label, _ in table_rows(drawn) if any(label in b.differences for b in drawn)]
        plot_differences_by_budget([display_label(label) for label in rows],
                                   [CLAIMS[label].points if label in CLAIMS else None for label in rows],
                                   [(legend, interval_points(b.differences, rows))
                                    for b, legend in zip(budgets, legends)], out)
    return claims_table(budgets) + [""] + [f"- {b.name}: {legend}" for b, legend in zip(budgets, legends)]


def write_docs(table: list[str], files: list[Path]) -> list[str]:
    """Rewrite each file's ``<!-- claims:table -->`` region with ``table``; the files rewritten."""
    rewritten = []
    for path in files:
        text, found = rewrite_regions(path.read_text(), "claims", {"table": lambda body: "\n".join(table)})
        if found:
            path.write_text(text)
            rewritten.append(str(path))
    return rewritten


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="techniques_table.py", description=__doc__.splitlines()[0])
    parser.add_argument("budgets", nargs="*", metavar="NAME=FOLDER", help="a techniques study folder per budget")
    parser.add_argument("--plot", metavar="PNG", help="also draw the intervals of every budget beside the claims")
    parser.add_argument("--rows-of", metavar="NAME", help="draw only the rows this budget measured")
    parser.add_argument("--docs", action="store_true",
                        help=f"the docs' budgets: rewrite the claims table of README and the guide, draw {DOCS_PICTURE}")
    args = parser.parse_args(argv)
    if args.docs == bool(args.budgets):
        raise UserError("give either budgets NAME=FOLDER or --docs (its budgets are the script's DOCS)")
    if args.docs:
        table = table_and_picture(DOCS, REPO / DOCS_PICTURE, rows_of=DOCS[-1].partition("=")[0], root=REPO)
        print("\n".join(table))
        for path in write_docs(table, [REPO / name for name in DOCS_FILES]):
            print(f"rewrote the claims table of {path}")
        print(f"written to {DOCS_PICTURE}")
        return
    print("\n".join(table_and_picture(args.budgets, Path(args.plot) if args.plot else None, args.rows_of)))
    if args.plot:
        print(f"written to {args.plot}")


if __name__ == "__main__":
    with exit_on_user_error("techniques_table.py", file_errors=True):
        main()
