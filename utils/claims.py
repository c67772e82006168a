"""The description's claimed improvements, and a verdict on each from what a study measured.

The product description promised a table of improvements (standard → modern recipe +2 points,
AdamW +1, ...), made for full runs on a GPU. A claim is *confirmed at a budget* when the measured
paired 95% interval of the difference lies entirely on the claim's side of zero, *reversed* when it
lies entirely on the other side, and *not resolved* when it contains zero. The verdict is about the
direction, at the budget the study ran: a regularizer that costs accuracy in 5 epochs can pay in 50,
and the point of measuring two budgets is to see where it crosses.

- :data:`CLAIMS`: each row of ``studies.TECHNIQUE_PAIRS`` with what the description claimed;
- :func:`verdict`: the verdict on one interval;
- :func:`technique_differences`: the paired differences of a finished (or partial) techniques study
  folder, read from its ``results.json``;
- :func:`claims_table`: the Markdown table, one measured column per budget.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from utils.errors import UserError
from utils.statistics import paired_interval
from utils.studies import TECHNIQUE_PAIRS


@dataclass(frozen=True)
class Claim:
    text: str  # as the description put it
    points: float  # the claimed difference in accuracy points (0: "same accuracy")


# Keys are the row labels of studies.TECHNIQUE_PAIRS; the figures are the description's, quoted.
CLAIMS = {
    "standard -> modern recipe": Claim("91% → 93%, +2", 2.0),
    "Adam -> AdamW": Claim("91% → 92%, +1", 1.0),
    "step LR -> warm-up + cosine": Claim("91% → 92%, +1", 1.0),
    "AMP off -> on": Claim("same accuracy, 2-3x faster", 0.0),
    "EMA off -> on (EMA weights)": Claim("92% → 92.5%, +0.5", 0.5),
    "label smoothing 0 -> 0.1": Claim("92% → 93%, +1", 1.0),
    "standard augmentation -> RandAugment": Claim("91% → 93%, +2", 2.0),
    "no MixUp -> MixUp": Claim("92% → 93.5%, +1.5", 1.5),
    "everything combined vs standard": Claim("91% → 94-95%, +3-4", 3.5),
}


@dataclass(frozen=True)
class Difference:
    mean: float
    low: Optional[float]  # None with one seed: no interval
    high: Optional[float]
    seeds: int


def verdict(claim: Claim, difference: Optional[Difference]) -> str:
    """Confirmed / reversed / not resolved at this budget (see the module docstring)."""
    if difference is None:
        return "not measured"
    if difference.low is None:
        return "not resolved (one seed)"
    if claim.points == 0:  # a claim of no change holds when the interval holds zero
        return "confirmed at this budget" if difference.low <= 0 <= difference.high else "reversed at this budget"
    sign = 1 if claim.points > 0 else -1
    if sign * difference.low > 0 and sign * difference.high > 0:
        return "confirmed at this budget"
    if sign * difference.low < 0 and sign * difference.high < 0:
        return "reversed at this budget"
    return "not resolved"


def technique_differences(folder: Path) -> dict[str, Difference]:
    """Each TECHNIQUE_PAIRS row's paired difference over the seeds both arms finished, from ``results.json``."""
    path = Path(folder) / "results.json"
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        raise UserError(f"{path}: not a study's results.json (give the folder benchmark_all.py wrote)") from None
    by_arm: dict[tuple[str, str], dict[int, float]] = {}
    for r in results:
        if r.get("study") == "techniques" and r.get("status") == "done":
            for figure in ("final_test_acc", "final_ema_test_acc"):
                if r.get(figure) is not None:
                    by_arm.setdefault((r["experiment"], figure), {})[r["seed"]] = r[figure]
    differences = {}
    for label, base, treat, base_figure, treat_figure in TECHNIQUE_PAIRS:
        mean, low, high, seeds = paired_interval(by_arm.get((treat, treat_figure), {}),
                                                 by_arm.get((base, base_figure), {}))
        if mean is not None:
            differences[label] = Difference(mean, low, high, seeds)
    return differences


def _cell(difference: Optional[Difference]) -> str:
    if difference is None:
        return "not measured"
    if difference.low is None:
        return f"{difference.mean:+.2f} (1 seed)"
    return f"{difference.mean:+.2f} [{difference.low:+.2f}, {difference.high:+.2f}] ({difference.seeds} seeds)"


def claims_table(budgets: Sequence[tuple[str, dict[str, Difference]]]) -> list[str]:
    """Markdown: claim | each budget's paired difference [95% CI] | each budget's verdict."""
    names = [name for name, _ in budgets]
    lines = ["| technique | claimed (description) | " + " | ".join(f"measured, {n}" for n in names) + " | "
             + " | ".join(f"verdict, {n}" for n in names) + " |",
             "| --- | --- | " + " | ".join("---" for _ in names * 2) + " |"]
    for label, claim in CLAIMS.items():
        cells = [_cell(measured.get(label)) for _, measured in budgets]
        verdicts = [verdict(claim, measured.get(label)) for _, measured in budgets]
        lines.append(f"| {label.replace(' -> ', ' → ')} | {claim.text} | " + " | ".join(cells) + " | "
                     + " | ".join(verdicts) + " |")
    return lines
