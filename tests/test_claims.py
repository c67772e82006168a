"""The description's claims against measured intervals: verdicts, the table, the docs script."""
from __future__ import annotations

import json

import pytest

from utils.errors import UserError
from utils.studies.claims import CLAIMS, Claim, Difference, claims_table, technique_differences, verdict

from tests.conftest import load_benchmark, run_main


@pytest.mark.parametrize("low, high, want", [
    (0.2, 1.8, "confirmed at this budget, the claimed size included"),
    (0.1, 0.6, "confirmed at this budget, smaller than claimed"),
    (1.2, 2.0, "confirmed at this budget, larger than claimed"),
    (-1.0, 1.5, "not resolved"),
    (-1.0, 0.5, "not resolved, the claimed size excluded"),  # no effect seen, and not one as large as +1
    (-2.0, -0.3, "reversed at this budget")])
def test_a_verdict_follows_where_the_interval_lies_against_the_claim(low, high, want):
    assert verdict(Claim("+1", 1.0), Difference((low + high) / 2, low, high, 5)) == want
    mirrored = verdict(Claim("-1", -1.0), Difference(-(low + high) / 2, -high, -low, 5))
    assert mirrored == want  # the same picture, the claim and the interval both on the other side of zero


def test_a_claim_of_no_change_needs_the_whole_interval_near_zero():
    same = Claim("same accuracy", 0.0)
    assert verdict(same, Difference(0.1, -0.3, 0.45, 5)) == "confirmed at this budget"
    assert verdict(same, Difference(0.1, -4.0, 4.2, 2)) == "not resolved"  # holds zero, and hides a lot
    assert verdict(same, Difference(1.0, 0.4, 1.6, 5)) == "reversed at this budget"
    assert verdict(same, None) == "not measured"
    assert verdict(same, Difference(1.0, None, None, 1)) == "not resolved (one seed)"


def test_every_claim_names_a_comparison_the_techniques_study_makes():
    from utils.studies import TECHNIQUE_PAIRS

    assert list(CLAIMS) == [label for label, *_ in TECHNIQUE_PAIRS]


def write_study(folder, accuracies, study="techniques", config=None):
    """A techniques study's results.json: {experiment: [accuracy per seed]}, EMA weights 1 point above."""
    results = [{"study": study, "experiment": name, "config": config or {}, "seed": seed, "status": "done", "final_test_acc": acc,
                "final_ema_test_acc": acc + 1.0, "best_test_acc": acc, "params": 1, "gflops": 0.1,
                "test_acc_curve": [acc]} for name, per_seed in accuracies.items()
               for seed, acc in enumerate(per_seed)]
    results.append({"study": study, "experiment": "mixup", "seed": 0, "status": "failed", "error": "x"})
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"command": "", "results": results}))
    return folder


def test_the_differences_are_paired_over_the_seeds_both_arms_finished(tmp_path):
    study = write_study(tmp_path / "short", {"standard": [50.0, 52.0, 48.0], "cosine": [51.0, 53.5],
                                             "ema": [50.0, 52.0, 48.0]})
    differences = technique_differences(study)
    cosine = differences["step LR -> warm-up + cosine"]
    assert (cosine.mean, cosine.seeds) == (1.25, 2)  # seed 2 has no cosine run: not paired
    assert cosine.low == pytest.approx(1.25 - 12.706 * 0.25, abs=1e-9)  # sd of (1, 1.5) / sqrt(2) = 0.25
    ema = differences["EMA off -> on (EMA weights)"]  # the EMA arm is judged by its averaged weights
    assert (ema.mean, ema.low, ema.high) == (1.0, 1.0, 1.0)
    assert "no MixUp -> MixUp" not in differences  # its one run failed


def test_the_table_has_a_column_and_a_verdict_per_budget_and_every_claim(tmp_path):
    short = technique_differences(write_study(tmp_path / "s", {"standard": [50.0, 52.0, 48.0],
                                                               "mixup": [48.0, 50.5, 46.0]}))
    lines = claims_table([("short", short), ("long", {})])
    assert lines[0].count("measured, ") == 2 and lines[0].count("verdict, ") == 2
    assert len(lines) == 2 + len(CLAIMS)
    mixup = next(line for line in lines if line.startswith("| no MixUp → MixUp |"))
    assert "reversed at this budget | not measured |" in mixup and "92% → 93.5%, +1.5" in mixup


def test_the_docs_script_prints_the_table_and_draws_the_budgets(tmp_path, capfd):
    script = load_benchmark("techniques_table")
    short = write_study(tmp_path / "short", {"standard": [50.0, 52.0, 48.0], "randaugment": [47.0, 49.5, 45.0]})
    long = write_study(tmp_path / "long", {"standard": [70.0, 71.0, 69.0], "randaugment": [71.5, 72.6, 70.4]})
    png = tmp_path / "by_budget.png"
    code, out, err = run_main(script.main, [f"short={short}", f"long={long}", "--plot", str(png)], capfd)
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("| standard augmentation → RandAugment |"))
    assert "reversed at this budget | confirmed at this budget, smaller than claimed |" in row  # the crossing
    assert png.stat().st_size > 0
    with pytest.raises(UserError, match="NAME=FOLDER"):
        script.main([str(short)])
    with pytest.raises(UserError, match="results.json"):
        script.main([f"short={tmp_path / 'nowhere'}"])


def test_the_preset_study_gives_its_rows_under_the_claims_labels_and_names_its_budget(tmp_path):
    """--preset-techniques: the same techniques on another network and budget, one more column of the table;
    Cutout, which no claim has, keeps its own row."""
    from utils.studies.claims import study_budget

    preset = write_study(tmp_path / "preset", {"baseline": [90.0, 90.5, 91.0], "mixup": [89.0, 90.0, 90.0],
                                               "cutout": [90.5, 91.0, 91.0], "ema": [90.0, 90.5, 91.0]},
                         study="preset_techniques", config={"model": "speednet", "subset": None, "epochs": 24})
    differences = technique_differences(preset)
    assert differences["no MixUp -> MixUp"].mean == pytest.approx(-2.5 / 3)
    assert differences["EMA off -> on (EMA weights)"].mean == 1.0  # judged by the EMA weights
    assert differences["no Cutout -> Cutout (16 px)"].mean == pytest.approx(1 / 3)
    assert study_budget(preset) == "speednet, all training images, 24 epochs, 3 seeds"
    mixup = next(line for line in claims_table([("50k", differences)]) if line.startswith("| no MixUp → MixUp |"))
    assert "-0.83 [" in mixup
