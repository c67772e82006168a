"""The description's claims against measured intervals: verdicts, the table, the docs script."""
from __future__ import annotations

import json

import pytest

from utils.errors import UserError
from utils.doc_regions import read_regions
from utils.studies.claims import (CLAIMS, Budget, Claim, Difference, budget_words, claims_table,
                                  technique_differences, verdict)

from tests.conftest import load_benchmark, run_main


@pytest.mark.parametrize("low, high, want", [
    (0.2, 1.8, "confirmed at 5 epochs on 10k images, the claimed size included"),
    (0.1, 0.6, "confirmed at 5 epochs on 10k images, smaller than claimed"),
    (1.2, 2.0, "confirmed at 5 epochs on 10k images, larger than claimed"),
    (-1.0, 1.5, "not resolved at 5 epochs on 10k images"),
    (-1.0, 0.5, "not resolved at 5 epochs on 10k images, the claimed size excluded"),  # none as large as +1
    (-2.0, -0.3, "reversed at 5 epochs on 10k images")])
def test_a_verdict_follows_where_the_interval_lies_against_the_claim_and_names_its_budget(low, high, want):
    budget = "5 epochs on 10k images"
    assert verdict(Claim("+1", 1.0), Difference((low + high) / 2, low, high, 5), budget) == want
    mirrored = verdict(Claim("-1", -1.0), Difference(-(low + high) / 2, -high, -low, 5), budget)
    assert mirrored == want  # the same picture, the claim and the interval both on the other side of zero


def test_a_claim_of_no_change_needs_the_whole_interval_near_zero():
    same = Claim("same accuracy", 0.0)
    assert verdict(same, Difference(0.1, -0.3, 0.45, 5)) == "confirmed at this budget"
    assert verdict(same, Difference(0.1, -4.0, 4.2, 2)) == "not resolved at this budget"  # hides a lot
    assert verdict(same, Difference(1.0, 0.4, 1.6, 5)) == "reversed at this budget"
    assert verdict(same, None) == "not measured"
    assert verdict(same, Difference(1.0, None, None, 1)) == "not resolved at this budget (one seed)"


def test_a_technique_listed_without_a_figure_is_judged_by_its_side_of_zero():
    listed = Claim("listed, no figure", None)
    assert verdict(listed, Difference(-1.0, -1.5, -0.5, 3), "8 epochs on 50k images") == "costs accuracy at 8 epochs on 50k images"
    assert verdict(listed, Difference(0.6, 0.2, 1.0, 3), "24 epochs") == "adds accuracy at 24 epochs"
    assert verdict(listed, Difference(0.2, -0.2, 0.6, 3), "24 epochs") == "not resolved at 24 epochs"


def test_every_claim_names_a_comparison_the_techniques_study_makes():
    from utils.studies import TECHNIQUE_PAIRS

    assert list(CLAIMS) == [label for label, *_ in TECHNIQUE_PAIRS]


BUDGET_10K = {"model": "cnn", "subset": 10000, "epochs": 5}


def write_study(folder, accuracies, study="techniques", config=None):
    """A techniques study's results.json: {experiment: [accuracy per seed]}, EMA weights 1 point above."""
    results = [{"study": study, "experiment": name, "config": config or {}, "seed": seed, "status": "done", "final_test_acc": acc,
                "final_ema_test_acc": acc + 1.0, "best_test_acc": acc, "final_train_acc": acc + 5.0, "params": 1, "gflops": 0.1,
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


def test_the_table_has_a_column_per_budget_every_claim_and_verdicts_that_name_their_budget(tmp_path):
    folder = write_study(tmp_path / "s", {"standard": [50.0, 52.0, 48.0], "mixup": [48.0, 50.5, 46.0]},
                         config={"model": "cnn", "subset": 10000, "epochs": 5})
    assert budget_words(folder) == "5 epochs on 10k images"
    lines = claims_table([Budget("short", technique_differences(folder), budget_words(folder)),
                          Budget("long", {}, "15 epochs on 10k images")])
    assert lines[0] == "| technique | claimed (original README) | short | long | verdicts |"
    assert len(lines) == 2 + len(CLAIMS)  # no Cutout row: nobody measured it
    mixup = next(line for line in lines if line.startswith("| no MixUp → MixUp |"))
    assert mixup.endswith("| not measured | reversed at 5 epochs on 10k images |")  # the long budget says nothing
    assert "92% → 93.5%, +1.5" in mixup


def test_the_docs_script_prints_the_table_and_draws_the_budgets(tmp_path, capfd):
    script = load_benchmark("techniques_table")
    short = write_study(tmp_path / "short", {"standard": [50.0, 52.0, 48.0], "randaugment": [47.0, 49.5, 45.0]},
                        config={"model": "cnn", "subset": 10000, "epochs": 2})
    long = write_study(tmp_path / "long", {"standard": [70.0, 71.0, 69.0], "randaugment": [71.5, 72.6, 70.4]},
                       config={"model": "cnn", "subset": 10000, "epochs": 6})
    png = tmp_path / "by_budget.png"
    code, out, err = run_main(script.main, [f"short={short}", f"long={long}", "--plot", str(png)], capfd)
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("| standard augmentation → RandAugment |"))
    assert row.endswith("| reversed at 2 epochs on 10k images; "
                        "confirmed at 6 epochs on 10k images, smaller than claimed |")  # the crossing
    assert png.stat().st_size > 0
    with pytest.raises(UserError, match="NAME=FOLDER"):
        script.main([str(short)])
    with pytest.raises(UserError, match="results.json"):
        script.main([f"short={tmp_path / 'nowhere'}"])
    with pytest.raises(UserError, match="either budgets"):
        script.main([])
    with pytest.raises(UserError, match="different networks or budgets"):
        script.main([f"both={short}+{long}"])
    with pytest.raises(UserError, match="NAME=FOLDER"):
        script.main([f"short={short}+"])
    with pytest.raises(UserError, match="--docs alone"):
        script.main(["--docs", "--plot", str(png)])
    with pytest.raises(UserError, match="give --plot"):
        script.main([f"short={short}", "--rows-of", "short"])
    with pytest.raises(UserError, match="no budget has that name"):
        script.main([f"short={short}", "--plot", str(png), "--rows-of", "shrt"])


def test_folders_of_different_networks_are_not_one_budget_and_an_unfinished_study_is_refused(tmp_path):
    script = load_benchmark("techniques_table")
    cnn = write_study(tmp_path / "cnn", {"standard": [50.0, 52.0]}, config=BUDGET_10K)
    resnet = write_study(tmp_path / "resnet", {"standard": [60.0, 61.0]}, config={**BUDGET_10K, "model": "resnet18"})
    with pytest.raises(UserError, match="different networks"):
        script.main([f"both={cnn}+{resnet}"])
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "results.json").write_text(json.dumps({"command": "", "results": [
        {"study": "techniques", "experiment": "standard", "seed": 0, "status": "failed", "error": "x"}]}))
    with pytest.raises(UserError, match="no finished run"):
        script.main([f"short={unfinished}"])


def test_the_picture_draws_every_measured_row_or_only_one_budgets(tmp_path):
    script = load_benchmark("techniques_table")
    cnn = write_study(tmp_path / "cnn", {"standard": [50.0, 52.0], "mixup": [49.0, 50.0], "ema": [50.0, 52.0]},
                      config=BUDGET_10K)
    preset = write_study(tmp_path / "preset", {"baseline": [90.0, 91.0], "cutout": [90.5, 91.0]},
                         study="preset_techniques", config={"model": "speednet", "epochs": 8})
    budgets, _ = script.read_budgets([f"small={cnn}", f"full={preset}"])
    assert script.drawn_rows(budgets, None) == ["EMA off -> on (EMA weights)", "no MixUp -> MixUp",
                                                "no Cutout -> Cutout (16 px)"]
    assert script.drawn_rows(budgets, "full") == ["no Cutout -> Cutout (16 px)"]
    assert budget_words(preset) == "8 epochs on 50k images"
    assert budget_words(write_study(tmp_path / "odd", {"standard": [1.0]}, config={"subset": 12345, "epochs": 3})) \
        == "3 epochs on 12,345 images"


def test_a_later_folder_replaces_the_rows_it_measured_again(tmp_path, capfd):
    script = load_benchmark("techniques_table")
    first = write_study(tmp_path / "first", {"standard": [50.0, 52.0, 48.0], "cosine": [55.0, 57.0, 53.0],
                                             "mixup": [48.0, 50.0, 46.0]}, config=BUDGET_10K)
    again = write_study(tmp_path / "again", {"standard": [50.0, 52.0, 48.0], "cosine": [52.0, 55.0, 50.5]},
                        config=BUDGET_10K)
    code, out, err = run_main(script.main, [f"short={first}+{again}"], capfd)
    assert code == 0, err
    rows = {line.split(" | ")[0]: line for line in out.splitlines() if line.startswith("| ")}
    assert "| +2.50 [" in rows["| step LR → warm-up + cosine"]  # the second folder's, not the first's +5.00
    assert "| -2.00 [" in rows["| no MixUp → MixUp"]  # kept from the first folder


def test_the_docs_table_is_what_the_script_writes_from_the_committed_studies():
    """README's and the guide's claims tables are the script's output from the results folders in DOCS, so a
    figure there cannot drift from its study."""
    script = load_benchmark("techniques_table")
    wanted = script.docs_regions(script.docs_table())
    for name in script.DOCS_FILES:
        regions = read_regions((script.REPO / name).read_text(), "claims")
        assert regions.get("table") == "\n".join(wanted["table"]), f"{name}: run python benchmarks/techniques_table.py --docs"
    guide = read_regions((script.REPO / "MODERN_DL_GUIDE.md").read_text(), "claims")
    assert guide.get("augmentations") == "\n".join(wanted["augmentations"]), \
        "MODERN_DL_GUIDE.md, level 4: run python benchmarks/techniques_table.py --docs"


def test_the_docs_regions_are_rewritten_and_an_unknown_one_refused(tmp_path):
    script = load_benchmark("techniques_table")
    doc = tmp_path / "README.md"
    doc.write_text("before\n<!-- claims:table -->\nold\n<!-- /claims:table -->\nafter\n")
    regions = {"table": ["| new |"], "augmentations": ["| arms |"]}
    assert script.write_docs(regions, [doc]) == [str(doc)]
    assert doc.read_text() == "before\n<!-- claims:table -->\n| new |\n<!-- /claims:table -->\nafter\n"
    doc.write_text("<!-- claims:tabel -->\nold\n<!-- /claims:tabel -->\n")
    with pytest.raises(UserError, match="unknown region"):
        script.write_docs(regions, [doc])
    assert "old" in doc.read_text()


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
    part_way = write_study(tmp_path / "part-way", {"baseline": [90.0, 90.5], "mixup": [89.0]},
                           study="preset_techniques", config={"model": "speednet", "subset": None, "epochs": 24})
    assert study_budget(part_way) == "speednet, all training images, 24 epochs, 1-2 seeds (by arm)"
    table = claims_table([Budget("50k", differences, budget_words(preset))])
    mixup = next(line for line in table if line.startswith("| no MixUp → MixUp |"))
    assert "-0.83 [" in mixup and mixup.endswith("at 24 epochs on 50k images |")
    cutout = next(line for line in table if line.startswith("| no Cutout → Cutout (16 px) |"))
    assert "| listed, no figure | +0.33 [" in cutout


def test_the_arms_table_lists_each_augmentation_budget_by_budget_with_its_training_accuracy(tmp_path):
    """Level 4's table: an arm's line at each budget sit together, so a loss that turns into a gain reads down it."""
    from utils.studies.claims import arms_table

    short = write_study(tmp_path / "short", {"baseline": [90.0, 90.4, 90.8], "mixup": [89.0, 89.2, 89.4]},
                        study="preset_techniques", config={"model": "speednet", "epochs": 8})
    long = write_study(tmp_path / "long", {"baseline": [91.0], "mixup": [92.0], "cutout": [90.0]},
                       study="preset_techniques", config={"model": "speednet", "epochs": 24})
    lines = arms_table([short, long])
    assert lines[2:] == [
        "| nothing (baseline) | 8 epochs on 50k images, 3 seeds | 90.40 ± 0.40 | 95.40 |  |  |",
        "| nothing (baseline) | 24 epochs on 50k images, 1 seed | 91.00 | 96.00 |  |  |",
        "| Cutout, 16 px | 24 epochs on 50k images, 1 seed | 90.00 | 95.00 | -1.00 (1 seed) "
        "| not resolved at 24 epochs on 50k images (one seed) |",
        "| MixUp, alpha 0.8 | 8 epochs on 50k images, 3 seeds | 89.20 ± 0.20 | 94.20 | -1.20 [-1.70, -0.70] (3 seeds) "
        "| reversed at 8 epochs on 50k images |",
        "| MixUp, alpha 0.8 | 24 epochs on 50k images, 1 seed | 92.00 | 97.00 | +1.00 (1 seed) "
        "| not resolved at 24 epochs on 50k images (one seed) |"]
    with pytest.raises(UserError, match="not a --preset-techniques study"):
        arms_table([write_study(tmp_path / "cnn", {"standard": [50.0]}, config=BUDGET_10K)])
