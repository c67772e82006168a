"""A study's report: each arm's figures over its seeds, each pair's paired difference, and the pictures.

``RESULTS.md`` holds, per study, a table of every arm (final test accuracy, the headline, and the
optimistic best epoch, EMA, calibration, parameters, GFLOPs, time, memory) and a table of its pairs
(paired and Welch 95% intervals, time ratio, ECE, the flags that differ); ``results.csv`` the rows;
and it asks ``utils/studies/charts.py`` for the pictures (accuracy, accuracy against time, the curves).
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from utils.files import atomic_write
from utils.studies.catalogue import (ACTIVATION_BASELINE, PRESET_TECHNIQUE_PAIRS, RAW, RECORD_PAIRS,
                                     REGULARIZATION_PAIRS, STUDIES, TECHNIQUE_PAIRS, BenchmarkPlan, Experiment,
                                     differing_settings, experiment_config)
from utils.studies.runner import environment_line
from utils.studies.statistics import mean_std, paired_interval, welch_interval

# ------------------------------------------------------------------------------------ the report
def summarize(results: Sequence[dict[str, Any]], experiments: Sequence[Experiment]) -> dict[str, dict[str, Any]]:
    """Per experiment: mean and std over its finished seeds of every measured figure."""

    summary = {}
    for experiment in experiments:
        runs = [r for r in results if (r["study"], r["experiment"]) == (experiment.study, experiment.name)]
        done = [r for r in runs if r["status"] == "done"]
        row: dict[str, Any] = {"study": experiment.study, "experiment": experiment.name, "seeds": len(done),
                               "failed": [r["error"] for r in runs if r["status"] == "failed"]}
        for key in ("final_test_acc", "best_test_acc", "final_ema_test_acc", "final_train_acc", "train_time_s",
                    "img_per_s", "ece", "peak_memory_mib"):
            values = [r[key] for r in done if r.get(key) is not None]
            mean, std = mean_std(values) if values else (None, None)
            row[key] = (mean, std if len(values) > 1 else None) if values else None  # one seed: no spread
            row[key + "_values"] = values
            row[key + "_by_seed"] = {r["seed"]: r[key] for r in done if r.get(key) is not None}  # for pairing
        row["params"] = done[0]["params"] if done else None
        row["gflops"] = done[0]["gflops"] if done else None
        curves = [r["test_acc_curve"] for r in done]
        row["curve"] = [mean_std([c[i] for c in curves if i < len(c) and c[i] is not None])
                        for i in range(max(map(len, curves), default=0))]
        summary[experiment.key] = row
    return summary


def plus_minus(value: Optional[tuple[float, Optional[float]]], digits: int = 2, missing: str = "n/a") -> str:
    """``mean ± std``, or the mean alone when one seed gave no spread; ``missing`` when nothing was measured."""
    if value is None:
        return missing
    mean, std = value
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def study_pairs(plan: BenchmarkPlan, study: str) -> list[tuple[str, str, str, str, str]]:
    """(label, baseline, treatment, baseline figure, treatment figure) of each comparison a study reports."""
    if study == "techniques":
        return TECHNIQUE_PAIRS
    if study == "record":
        return RECORD_PAIRS
    if study == "regularization":
        return REGULARIZATION_PAIRS
    if study == "preset_techniques":
        return PRESET_TECHNIQUE_PAIRS
    names = [e.name for e in plan.experiments if e.study == study]
    if study == "activations":
        reference = ACTIVATION_BASELINE
    elif study == "architectures" and names:
        reference = names[0]  # the first model of --models: "how much does each beat the basic CNN?"
    else:
        return []
    return [(f"{reference} -> {name}", reference, name, RAW, RAW) for name in names if name != reference]


def pair_table(plan: BenchmarkPlan, summary: dict[str, dict[str, Any]], study: str) -> list[str]:
    """Each treatment against its baseline (techniques: the original README's table; record: the preset's
    ingredients; activations: each against ReLU; architectures: each model against the first one named)."""
    pairs = study_pairs(plan, study)
    lines = ["| change | baseline final acc % | with it % | difference, paired [95% CI] | Welch [95% CI] "
             "| train time ratio | ECE baseline → with it | flags that differ |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    arms = {e.name: e for e in plan.experiments if e.study == study}
    halves: list[tuple[float, float]] = []  # (paired, Welch) half-widths: what pairing by seed bought
    for label, base_name, treat_name, base_figure, treat_figure in pairs:
        base, treat = summary.get(f"{study}/{base_name}"), summary.get(f"{study}/{treat_name}")
        if treat_name not in arms:  # left out of this plan: by --only, or the AMP arm under --amp/--no-amp
            why = ("--only" if plan.only is not None and treat_name not in plan.only else
                   "--amp/--no-amp pins every run's precision")
            lines.append(f"| {label} | n/a | n/a | left out: {why} | | | | |")
            continue
        if not base or not treat or not base[base_figure + "_values"] or not treat[treat_figure + "_values"]:
            lines.append(f"| {label} | n/a | n/a | not run | | | | |")
            continue
        difference, welch_low, welch_high = welch_interval(treat[treat_figure + "_values"], base[base_figure + "_values"])
        welch = f"[{welch_low:+.2f}, {welch_high:+.2f}]" if welch_low is not None else "(one seed: no interval)"
        mean, low, high, pairs_found = paired_interval(treat[treat_figure + "_by_seed"], base[base_figure + "_by_seed"])
        if low is not None and welch_low is not None:
            halves.append(((high - low) / 2, (welch_high - welch_low) / 2))
        paired = (f"{mean:+.2f} [{low:+.2f}, {high:+.2f}] ({pairs_found} seeds)" if low is not None else
                  f"{mean:+.2f} (one seed: no interval)" if mean is not None else "(no common seed)")
        ratio = (f"{treat['train_time_s'][0] / base['train_time_s'][0]:.2f}x"
                 if base["train_time_s"] and base["train_time_s"][0] > 0 else "n/a")
        ece = (f"{base['ece'][0]:.3f} → {treat['ece'][0]:.3f}" if base["ece"] and treat["ece"] else "n/a")
        flags = differing_settings(experiment_config(plan, arms[base_name], 0),
                                   experiment_config(plan, arms[treat_name], 0))
        lines.append(f"| {label} | {plus_minus(base[base_figure])} | {plus_minus(treat[treat_figure])} | {paired} | "
                     f"{difference:+.2f} {welch} | {ratio} | {ece} | `{flags}` |")
    if halves:
        paired_halves, welch_halves = [h[0] for h in halves], [h[1] for h in halves]
        lines += ["", f"Half-width of the 95% intervals ({len(halves)} of the comparisons above have both): "
                  f"paired by seed ±{statistics.median(paired_halves):.2f} points (median; widest ±{max(paired_halves):.2f}), "
                  f"Welch's ±{statistics.median(welch_halves):.2f} (median; widest ±{max(welch_halves):.2f})."]
    return lines


def pair_section(plan: BenchmarkPlan, summary: dict[str, dict[str, Any]], study: str) -> list[str]:
    """RESULTS.md's comparisons of one study: what the pairing shares, then :func:`pair_table` (none when the
    study has no pairs, an architectures study of one model say)."""
    if not study_pairs(plan, study):
        return []
    # Two networks cannot share an initialization, but the same seed gives them the same data order and
    # augmentation draws, which is what pairing removes from the difference.
    shared = ("the same data order and augmentation draws; different networks cannot share an initialization"
              if study == "architectures" else "the same initialization, data order and augmentation draws")
    return ["", f"Each change against its baseline (same data, budget and seeds); the difference is in percentage "
            f"points of final test accuracy. Both arms ran with the same seeds ({shared}), so the first interval is "
            f"paired: Student's t on the per-seed differences (n - 1 degrees of freedom); Welch's interval, which "
            f"ignores the pairing, is beside it.", "", *pair_table(plan, summary, study)]


def ranking_line(rows: Sequence[dict[str, Any]]) -> str:
    """How stable the ranking of the arms' final test accuracy (raw weights) is over the seeds they share.

    A ranking by means can rest on one lucky seed; seed by seed, the top arm of the means should come
    first, and the top two should be the top two, on most seeds before a study's ranking is quoted.
    Arms with no finished seed are named and left out.
    """
    ranked = [row for row in rows if row["final_test_acc_by_seed"]]
    missing = [row["experiment"] for row in rows if not row["final_test_acc_by_seed"]]
    left_out = f" (no finished seed: {', '.join(missing)})" if missing else ""
    seeds = sorted(set.intersection(*(set(row["final_test_acc_by_seed"]) for row in ranked))) if ranked else []
    if len(ranked) < 2 or len(seeds) < 2:
        return f"Ranking: needs two arms and two seeds that every arm finished{left_out}."
    by_mean = sorted(ranked, key=lambda row: -sum(row["final_test_acc_by_seed"][s] for s in seeds))
    names = [row["experiment"] for row in by_mean]
    firsts = tops = 0
    for seed in seeds:
        order = [row["experiment"] for row in sorted(ranked, key=lambda row: -row["final_test_acc_by_seed"][seed])]
        firsts += order[0] == names[0]
        tops += set(order[:2]) == set(names[:2])
    top_two = (f"; {names[0]} and {names[1]} are the top two on {tops} of {len(seeds)}" if len(names) > 2 else "")
    return (f"Ranking by the mean final test accuracy (raw weights) over the {len(seeds)} seeds every arm "
            f"finished: {' > '.join(names)}{left_out}. {names[0]} is first on {firsts} of {len(seeds)} seeds"
            f"{top_two}.")


def _study_row(row: dict[str, Any]) -> str:
    failed = f" ({len(row['failed'])} failed: {row['failed'][0]})" if row["failed"] else ""
    if not row["params"]:
        return f"| {row['experiment']} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | n/a | 0{failed} |"
    return (f"| {row['experiment']} | {plus_minus(row['final_test_acc'])} | {plus_minus(row['best_test_acc'])} | "
            f"{plus_minus(row['final_ema_test_acc'])} | {plus_minus(row['final_train_acc'])} | {row['params'] / 1e6:.2f} | "
            f"{row['gflops']:.3f} | "
            f"{plus_minus(row['train_time_s'], 1)} | {plus_minus(row['img_per_s'], 0)} | {plus_minus(row['peak_memory_mib'], 0)} | "
            f"{plus_minus(row['ece'], 3)} | {row['seeds']}{failed} |")


def budget_sentence(plan: BenchmarkPlan) -> str:
    """Seeds and budget as the finished runs record them.

    The flags may not say: ``--report`` on a study run earlier is typed without its budget, and the
    record study trains for its preset's epochs whatever ``--epochs`` is.
    """
    done = [r for r in plan.results if r["status"] == "done"]
    if not done:
        return f"Seeds: {', '.join(map(str, plan.seeds))}. No run finished."

    def values(key: str) -> str:  # "10000", "all" (no subset), or "5/10" where the runs differ
        found = {r["config"][key] for r in done}
        return "/".join([str(v) for v in sorted(v for v in found if v)] + ["all"] * (None in found))

    seeds = sorted({r["seed"] for r in done})
    return (f"Seeds: {', '.join(map(str, seeds))}. Budget: {values('epochs')} epochs, "
            f"{values('subset')} training images, {values('test_subset')} test images.")


def write_report(plan: BenchmarkPlan) -> Path:
    """``RESULTS.md``, ``results.csv`` and the plots, from ``plan.results``."""
    import csv

    summary = summarize(plan.results, plan.experiments)
    out = plan.out_dir
    flat_keys = ["study", "experiment", "seed", "status", "final_test_acc", "final_ema_test_acc", "final_train_acc",
                 "best_test_acc", "best_epoch", "params", "gflops", "train_time_s", "img_per_s", "peak_memory_mib",
                 "peak_memory_kind", "ece", "error", "run_dir"]
    def write_csv(temporary: Path) -> None:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=flat_keys, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(plan.results)

    atomic_write(out / "results.csv", write_csv)

    lines = ["# Benchmark results", "",
             f"Command: `{plan.command}`", "",
             f"Machine: {environment_line()}. {budget_sentence(plan)}", "",
             "Headline: test accuracy after the last epoch (mean ± std over seeds). \"Best on test\" picks the best "
             "epoch on the test set itself and is optimistic. Train acc: on the last epoch's augmented batches "
             "(against the dominant label where images are mixed); far above the test accuracy, the network "
             "memorizes its training set. ECE: expected calibration error of the final weights, 15 equal-width "
             "bins. Peak memory on a CPU is the process's peak RSS, which only grows over a benchmark.",
             ""]
    for study in STUDIES:
        keys = [e.key for e in plan.experiments if e.study == study]
        if not keys:
            continue
        lines += [f"## {study}", "", "| experiment | final test acc % | best on test (optimistic) % | final EMA % "
                  "| train acc, last epoch % | params (M) | GFLOPs | train time (s) | img/s | peak memory (MiB) | ECE "
                  "| seeds |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [_study_row(summary[key]) for key in keys]
        lines += ["", ranking_line([summary[key] for key in keys])]
        lines += pair_section(plan, summary, study)
        lines.append("")
    lines += write_plots(plan, summary)
    atomic_write(out / "RESULTS.md", lambda temporary: temporary.write_text("\n".join(lines) + "\n"))
    return out / "RESULTS.md"


def write_plots(plan: BenchmarkPlan, summary: dict[str, dict[str, Any]]) -> list[str]:
    """The report's plots, written into ``plan.out_dir``; returns the markdown lines that show them.

    A per-epoch curve needs two evaluations: a study that evaluates once, at the end (``--eval-every`` =
    epochs, the cheap way), gets no curves plot, rather than a plot of single dots.
    """
    from utils.studies.charts import (plot_accuracy_vs_time, plot_benchmark_accuracy, plot_benchmark_curves,
                                      plot_reliability)

    out = plan.out_dir
    plot_benchmark_accuracy(summary, out / "accuracy.png")
    plot_accuracy_vs_time(summary, out / "accuracy_vs_time.png")
    lines = ["## Plots", "", "![accuracy](accuracy.png)", "", "![accuracy against training time](accuracy_vs_time.png)",
             ""]
    if any(sum(mean == mean for mean, _ in row["curve"]) > 1 for row in summary.values()):  # NaN: not evaluated
        plot_benchmark_curves(summary, out / "curves.png")
        lines += ["![test accuracy per epoch](curves.png)", ""]
    else:
        (out / "curves.png").unlink(missing_ok=True)  # a dot plot that older report folders hold
        lines += ["Each run was evaluated once, at its end: no per-epoch curve (`--eval-every` sets how often).", ""]
    reliability = _reliability_inputs(plan)
    if reliability:
        plot_reliability(reliability, out / "reliability.png")
        lines += ["![reliability: baseline against label smoothing](reliability.png)", ""]
    return lines


def _reliability_inputs(plan: BenchmarkPlan) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Pooled test probabilities of the baseline and label-smoothing runs (techniques study), by name."""
    pooled = {}
    for name in ("standard", "label_smoothing"):
        files = [Path(r["run_dir"]) / "calibration.pt" for r in plan.results
                 if r["status"] == "done" and (r["study"], r["experiment"]) == ("techniques", name)]
        parts = [torch.load(f, weights_only=True) for f in files if f.exists()]
        if parts:
            pooled[name] = (torch.cat([p["calibration_probabilities"] for p in parts]),
                            torch.cat([p["calibration_labels"] for p in parts]))
    return pooled if len(pooled) == 2 else {}
