"""The original README's claimed improvements, and a verdict on each from what a study measured.

The product description promised a table of improvements (standard → modern recipe +2 points,
AdamW +1, ...), made for full runs on a GPU. A claim is *confirmed at a budget* when the measured
paired 95% interval of the difference lies entirely on the claim's side of zero, *reversed* when it
lies entirely on the other side, and *not resolved* when it contains zero; a confirmed claim also
says whether the claimed size lies inside the interval, and an unresolved one whether the interval
rules the claimed size out (no difference told apart from zero, and none as large as claimed). A claim of no change ("same accuracy") is
confirmed only when the whole interval lies within ±:data:`SAME_MARGIN` points: an interval that
merely contains zero could hide a large effect. The verdict holds at the budget the study ran: a
regularizer that costs accuracy in 5 epochs can pay in 50, and the point of measuring two budgets is
to see where it crosses.

- :data:`CLAIMS`: each row of ``studies.TECHNIQUE_PAIRS`` with what the original README claimed;
- :func:`verdict`: the verdict on one interval;
- :func:`technique_differences`: the paired differences of a finished (or partial) techniques study
  folder, read from its ``results.json``;
- :func:`claims_table`: the Markdown table, one measured column per budget;
- :func:`arms_table`: the preset study's arms budget by budget, each with its training accuracy (level 4's table).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from utils.errors import UserError
from utils.studies.catalogue import (PRESET_TECHNIQUE_PAIRS, PRESET_TECHNIQUES, TECHNIQUE_PAIRS, TECHNIQUES,
                                     Experiment)
from utils.studies.report import plus_minus, summarize
from utils.studies.runner import load_results
from utils.studies.statistics import paired_interval


@dataclass(frozen=True)
class Claim:
    text: str  # as the original README put it
    points: Optional[float]  # the claimed difference in accuracy points (0: "same accuracy", None: no figure)


# Keys are the row labels of studies.TECHNIQUE_PAIRS; the figures are the original README's, quoted.
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
# Rows a study measures that the original README listed as a feature without a figure.
UNCLAIMED = {"no Cutout -> Cutout (16 px)": Claim("listed, no figure", None)}


THIS_BUDGET = "this budget"  # a verdict's budget where the study did not record its own


@dataclass(frozen=True)
class Difference:
    mean: float
    low: Optional[float]  # None with one seed: no interval
    high: Optional[float]
    seeds: int


@dataclass(frozen=True)
class Budget:
    """One column of the claims table: its heading, what it measured, and its budget in a verdict's words."""
    name: str
    differences: dict[str, Difference]
    words: str = THIS_BUDGET


SAME_MARGIN = 0.5  # points: how close to zero a whole interval must be to confirm "same accuracy"


def verdict(claim: Claim, difference: Optional[Difference], budget: str = THIS_BUDGET) -> str:
    """Confirmed / reversed / not resolved at ``budget`` ("5 epochs on 10k images"; see the module docstring)."""
    if difference is None:
        return "not measured"
    low, high = difference.low, difference.high
    if low is None:
        return f"not resolved at {budget} (one seed)"
    if claim.points is None:  # a technique the original README listed without a figure: which side of zero
        return f"not resolved at {budget}" if low <= 0 <= high else f"{'adds accuracy' if low > 0 else 'costs accuracy'} at {budget}"
    if claim.points == 0:
        if -SAME_MARGIN <= low and high <= SAME_MARGIN:
            return f"confirmed at {budget}"
        return f"not resolved at {budget}" if low <= 0 <= high else f"reversed at {budget}"
    sign = 1 if claim.points > 0 else -1
    if sign * low < 0 and sign * high < 0:
        return f"reversed at {budget}"
    if sign * low <= 0 or sign * high <= 0:  # the interval holds zero; it may still rule the claim out
        excluded = "" if low <= claim.points <= high else ", the claimed size excluded"
        return f"not resolved at {budget}{excluded}"
    if low <= claim.points <= high:
        return f"confirmed at {budget}, the claimed size included"
    smaller = sign * high < sign * claim.points
    return f"confirmed at {budget}, {'smaller' if smaller else 'larger'} than claimed"


# The preset-techniques study's rows under the techniques study's labels (the claims'), by treatment arm; Cutout
# has no claim and keeps its own label.
PRESET_ROW_LABELS = {"label_smoothing": "label smoothing 0 -> 0.1", "ema": "EMA off -> on (EMA weights)",
                     "randaugment": "standard augmentation -> RandAugment", "mixup": "no MixUp -> MixUp"}


def technique_differences(folder: Path) -> dict[str, Difference]:
    """Each row's paired difference over the seeds both arms finished, from a study folder's ``results.json``: a
    techniques study (``--techniques``, rows of TECHNIQUE_PAIRS) or the preset's (``--preset-techniques``, its
    rows under the same labels where a claim has them)."""
    if not (Path(folder) / "results.json").is_file():
        raise UserError(f"{folder} holds no results.json: give the folder of a techniques study "
                        f"(benchmark_all.py --techniques or --preset-techniques --output-dir FOLDER)")
    results = load_results(Path(folder))
    if any(r["study"] == "preset_techniques" for r in results):
        study, arms, pairs = "preset_techniques", PRESET_TECHNIQUES, PRESET_TECHNIQUE_PAIRS
    else:
        study, arms, pairs = "techniques", TECHNIQUES, TECHNIQUE_PAIRS
    summary = summarize(results, [Experiment(study, name, changes) for name, changes in arms.items()])
    differences = {}
    for label, base, treat, base_figure, treat_figure in pairs:
        mean, low, high, seeds = paired_interval(summary[f"{study}/{treat}"][treat_figure + "_by_seed"],
                                                 summary[f"{study}/{base}"][base_figure + "_by_seed"])
        if mean is not None:
            differences[PRESET_ROW_LABELS.get(treat, label) if study == "preset_techniques" else label] = \
                Difference(mean, low, high, seeds)
    return differences


def finished_runs(folder: Path) -> tuple[dict, tuple[int, int]]:
    """The config of a study folder's finished runs, and the fewest and most seeds any of its arms finished (an
    error if none did): a study caught part-way has arms a seed ahead of others."""
    done = [r for r in load_results(Path(folder)) if r["status"] == "done"]
    if not done:
        raise UserError(f"{folder} holds no finished run yet: nothing to compare")
    per_arm = {}
    for r in done:
        per_arm.setdefault((r["study"], r["experiment"]), set()).add(r["seed"])
    counts = [len(seeds) for seeds in per_arm.values()]
    return done[0].get("config", {}), (min(counts), max(counts))


def study_budget(folder: Path) -> str:
    """The budget a study folder's finished runs had, in words: network, images, epochs, seeds."""
    config, (fewest, most) = finished_runs(folder)
    images = f"{config['subset']:,} images" if config.get("subset") else "all training images"
    epochs = f"{config['epochs']:g} epochs" if "epochs" in config else "epochs not recorded"
    seeds = f"{most} seed{'s' if most > 1 else ''}" if fewest == most else f"{fewest}-{most} seeds (by arm)"
    return f"{config.get('model', 'model not recorded')}, {images}, {epochs}, {seeds}"


def budget_words(folder: Path) -> str:
    """What a verdict says its budget was: "5 epochs on 10k images" ("50k": all of CIFAR-10's training images)."""
    config, _ = finished_runs(folder)
    if "epochs" not in config:
        return THIS_BUDGET
    subset = config.get("subset")
    images = "50k" if not subset else f"{subset / 1000:g}k" if subset % 1000 == 0 else f"{subset:,}"
    return f"{config['epochs']:g} epochs on {images} images"


def display_label(label: str) -> str:
    """A TECHNIQUE_PAIRS label as the docs print it (an arrow, not ``->``)."""
    return label.replace(" -> ", " → ")


def interval_points(measured: dict[str, Difference], rows: Sequence[str] = tuple(CLAIMS)
                    ) -> list[Optional[tuple[float, float, float]]]:
    """(mean, low, high) per row (default: the rows of CLAIMS), None where there is no interval: what the budgets
    picture draws."""
    return [None if measured.get(label) is None or measured[label].low is None else
            (measured[label].mean, measured[label].low, measured[label].high) for label in rows]


def _cell(difference: Optional[Difference]) -> str:
    if difference is None:
        return "not measured"
    if difference.low is None:
        return f"{difference.mean:+.2f} (1 seed)"
    return f"{difference.mean:+.2f} [{difference.low:+.2f}, {difference.high:+.2f}] ({difference.seeds} seeds)"


def table_rows(budgets: Sequence[Budget]) -> list[tuple[str, Claim]]:
    """Every claim, then each row without a claim that some budget measured (Cutout)."""
    found = {label for budget in budgets for label in budget.differences}
    return list(CLAIMS.items()) + [(label, claim) for label, claim in UNCLAIMED.items() if label in found]


def claims_table(budgets: Sequence[Budget]) -> list[str]:
    """Markdown: technique | claim | each budget's paired difference [95% CI] | the verdicts, each naming its
    budget (a budget that did not measure a row says nothing in its verdicts)."""
    lines = ["| technique | claimed (original README) | " + " | ".join(b.name for b in budgets) + " | verdicts |",
             "| --- | --- | " + " | ".join("---" for _ in budgets) + " | --- |"]
    for label, claim in table_rows(budgets):
        cells = [_cell(b.differences.get(label)) for b in budgets]
        verdicts = [verdict(claim, b.differences[label], b.words) for b in budgets if label in b.differences]
        lines.append(f"| {display_label(label)} | {claim.text} | " + " | ".join(cells) + " | "
                     + ("; ".join(verdicts) or "not measured") + " |")
    return lines


# Level 4's table: the preset study's augmentation arms, as the guide names them, with the row of the claims
# table each one is judged by.
AUGMENTATION_ARMS = {"baseline": ("nothing (baseline)", None),
                     "cutout": ("Cutout, 16 px", "no Cutout -> Cutout (16 px)"),
                     "randaugment": ("RandAugment (2, 9)", "standard augmentation -> RandAugment"),
                     "mixup": ("MixUp, alpha 0.8", "no MixUp -> MixUp")}


def arms_table(folders: Sequence[Path], arms: dict[str, tuple[str, Optional[str]]] = AUGMENTATION_ARMS) -> list[str]:
    """Markdown: each arm of ``--preset-techniques`` studies, one line per study folder (budget): its final test
    accuracy over its seeds, its last epoch's training accuracy (what an augmentation lowers on purpose), its
    paired difference to the baseline and the verdict at that budget. An arm's lines sit together, so a loss
    turning into a gain between budgets reads down the table."""
    studies = []
    for folder in folders:
        results = load_results(Path(folder))
        if not any(r["study"] == "preset_techniques" for r in results):
            raise UserError(f"{folder}: not a --preset-techniques study (its arms are the preset's)")
        arms_run = [Experiment("preset_techniques", name, changes) for name, changes in PRESET_TECHNIQUES.items()]
        studies.append((budget_words(folder), summarize(results, arms_run), technique_differences(folder)))
    lines = ["| added to the preset | budget | final test acc % | train acc, last epoch % "
             "| paired difference [95%] | verdict |", "| --- | --- | --- | --- | --- | --- |"]
    for arm, (name, label) in arms.items():
        for words, summary, differences in studies:
            row = summary[f"preset_techniques/{arm}"]
            if not row["seeds"]:
                continue  # not run yet at this budget
            test = plus_minus(row["final_test_acc"], missing="not recorded")
            train = "not recorded" if row["final_train_acc"] is None else f"{row['final_train_acc'][0]:.2f}"
            compared = ("", "") if label is None else \
                (_cell(differences.get(label)), verdict({**CLAIMS, **UNCLAIMED}[label], differences.get(label), words))
            lines.append(f"| {name} | {words}, {row['seeds']} seed{'s' if row['seeds'] > 1 else ''} "
                         f"| {test} | {train} | {compared[0]} | {compared[1]} |")
    return lines
