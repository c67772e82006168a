"""benchmark_all.py: the statistics on made-up numbers, FLOPs and ECE by hand, planning, skipping and resuming."""
from __future__ import annotations

import json
from pathlib import Path
import math

import pytest
import torch
from torch import nn

import benchmark_all
from utils.errors import RunStopped, UserError
from utils.experiment import run_training
from utils.model_cost import forward_gflops
from utils.studies.statistics import (calibration_bins, expected_calibration_error, mean_std, paired_interval,
                                      t_quantile_975, welch_interval)

from tests.conftest import run_main

TINY = ["--dataset", "synthetic", "--synthetic-size", "64", "--image-size", "16", "--epochs", "1", "--batch-size",
        "32", "--workers", "0", "--cache-dir", "", "--no-progress"]


# ------------------------------------------------------------------------------------ statistics
def test_mean_and_sample_std():
    assert mean_std([1.0, 2.0, 3.0, 4.0]) == (2.5, pytest.approx(math.sqrt(5 / 3)))
    assert mean_std([7.0]) == (7.0, 0.0)


def test_welch_interval_on_made_up_results():
    # treatment 60, 62, 64 (mean 62, var 4); baseline 50, 51, 52 (mean 51, var 1); n = 3 each
    difference, low, high = welch_interval([60.0, 62.0, 64.0], [50.0, 51.0, 52.0])
    error = math.sqrt(4 / 3 + 1 / 3)
    df = (4 / 3 + 1 / 3) ** 2 / ((4 / 3) ** 2 / 2 + (1 / 3) ** 2 / 2)  # 2.94
    assert difference == 11.0 and df == pytest.approx(2.941, abs=1e-3)
    assert (high - low) / 2 == pytest.approx(t_quantile_975(df) * error)
    assert 3.18 < t_quantile_975(df) < 3.25  # between t(3) = 3.182 and t(2) = 4.303, near t(3)
    assert welch_interval([1.0], [2.0, 3.0]) == (-1.5, None, None)  # one seed: no interval


def test_paired_interval_matches_scipy():
    """Reference values from scipy 1.17.1 (not a dependency), computed once:
    ``scipy.stats.ttest_rel(treatment, baseline).confidence_interval(0.95)``."""
    treatment = dict(enumerate([93.1, 92.4, 92.9, 93.5, 92.8]))
    baseline = dict(enumerate([92.5, 92.0, 92.6, 92.9, 92.1]))
    mean, low, high, n = paired_interval(treatment, baseline)
    assert n == 5 and mean == pytest.approx(0.52)
    assert (low, high) == (pytest.approx(0.3159737858025317, abs=1e-4), pytest.approx(0.7240262141974716, abs=1e-4))
    mean, low, high, n = paired_interval({0: 90.47, 1: 90.41, 2: 90.42}, {0: 90.1, 1: 90.3, 2: 90.0})
    assert (n, mean) == (3, pytest.approx(0.3))
    assert (low, high) == (pytest.approx(-0.113442913514121, abs=1e-4), pytest.approx(0.7134429135141247, abs=1e-4))
    # Welch on the same numbers ignores the pairing: wider
    _, welch_low, welch_high = welch_interval(list(treatment.values()), list(baseline.values()))
    assert welch_high - welch_low > 1.5 * (0.7240262141974716 - 0.3159737858025317)


def test_paired_interval_pairs_by_seed_and_needs_two_pairs():
    assert paired_interval({0: 2.0, 1: 5.0, 7: 1.0}, {1: 4.0, 0: 1.0}) == (1.0, 1.0, 1.0, 2)  # seed 7 unpaired
    assert paired_interval({0: 2.0}, {0: 1.5}) == (0.5, None, None, 1)
    assert paired_interval({0: 2.0}, {1: 1.5}) == (None, None, None, 0)


def test_t_quantiles_match_the_table():
    """scipy.stats.t.ppf(0.975, df) for df = 2, 4, 9: 4.30265, 2.77645, 2.26216."""
    assert t_quantile_975(2) == pytest.approx(4.302652729749462, abs=1e-3)
    assert t_quantile_975(4) == pytest.approx(2.7764451051977934, abs=1e-3)
    assert t_quantile_975(9) == pytest.approx(2.262157162798205, abs=1e-3)
    assert t_quantile_975(1) == 12.706 and t_quantile_975(10) == 2.228
    assert 1.960 < t_quantile_975(1000) < 1.9625


def test_ece_on_a_case_worked_out_by_hand():
    # 4 predictions: confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.6 (right)
    # bin (0.867, 0.933]: 2 samples, confidence 0.9, accuracy 0.5 -> |0.5 - 0.9| = 0.4, weight 1/2
    # bin (0.533, 0.6]:   2 samples, confidence 0.6, accuracy 1.0 -> |1.0 - 0.6| = 0.4, weight 1/2
    probabilities = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    labels = torch.tensor([0, 1, 1, 0])
    assert expected_calibration_error(probabilities, labels, bins=15) == pytest.approx(0.4)
    assert sum(b["count"] for b in calibration_bins(probabilities, labels)) == 4


def test_flops_of_a_linear_and_a_conv_layer_by_hand():
    assert forward_gflops(nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10)), 4) * 1e9 == pytest.approx(2 * 48 * 10)
    # 3x3 conv, 3 -> 8 channels, padding 1, on 8x8: 8*8 outputs x 8 channels x 27 multiply-adds x 2
    assert forward_gflops(nn.Conv2d(3, 8, 3, padding=1, bias=False), 8) * 1e9 == pytest.approx(2 * 8 * 8 * 8 * 27)


# ------------------------------------------------------------------------------------ planning and errors
@pytest.mark.parametrize("study,expected", [("--architectures", 12), ("--techniques", 10), ("--activations", 10)])
def test_list_prints_every_experiment_of_each_study(study, expected, capfd):
    code, stdout, err = run_main(benchmark_all.main, [study, "--list", "--model", "cnn"], capfd)
    assert code == 0, err
    assert stdout.startswith(f"{expected} experiments x 3 seeds")
    assert len([line for line in stdout.splitlines() if line.startswith("  ")]) == expected


@pytest.mark.parametrize("argv,message", [
    (["--architectures", "--models", "cnn", "resnet19"], "unknown model 'resnet19'"),
    (["--techniques", "--model", "vgg"], "unknown model 'vgg'"),
    (["--activations", "--seeds", "0"], "--seeds must be at least 1"),
    (["--quick"], "choose a study"),
    (["--architectures", "--epochs", "0"], "--epochs must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capfd):
    code, _, err = run_main(benchmark_all.main, argv, capfd)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_a_folder_of_another_benchmark_is_refused_and_left_alone(tmp_path, capfd):
    out = tmp_path / "bench"
    argv = [*TINY, "--architectures", "--models", "cnn", "--seeds", "1", "--output-dir", str(out)]
    assert run_main(benchmark_all.main, argv, capfd)[0] == 0
    before = (out / "results.json").read_bytes()
    code, _, err = run_main(benchmark_all.main, [*TINY, "--activations", "--model", "cnn", "--output-dir", str(out)],
                            capfd)
    assert code == 2 and "holds a benchmark of another command" in err
    assert (out / "results.json").read_bytes() == before


# ------------------------------------------------------------------------------------ running, skipping, resuming
def test_a_benchmark_writes_everything_and_a_rerun_skips_it(tmp_path, capfd, monkeypatch):
    out = tmp_path / "bench"
    argv = [*TINY, "--architectures", "--models", "cnn", "resnet_tiny", "--seeds", "2", "--output-dir", str(out)]
    code, stdout, err = run_main(benchmark_all.main, argv, capfd)
    assert code == 0, err
    for name in ("results.json", "results.csv", "RESULTS.md", "accuracy.png", "accuracy_vs_time.png"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())["results"]
    assert len(results) == 4 and all(r["status"] == "done" for r in results)
    assert all(0 <= r["ece"] <= 1 and r["gflops"] > 0 and r["img_per_s"] > 0 for r in results)
    for r in results:  # the last epoch's training accuracy, as the run itself recorded it
        history = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())["history"]
        assert r["final_train_acc"] == history[-1]["train_acc"]
    report = (out / "RESULTS.md").read_text()
    assert "± " in report and "train acc, last epoch %" in report
    cnn_train = [r["final_train_acc"] for r in results if r["experiment"] == "cnn"]
    assert f"| {sum(cnn_train) / 2:.2f} ± " in report.split("| cnn |")[1].split("\n")[0]

    calls = []
    monkeypatch.setattr("utils.experiment.run_training", lambda config, **kw: calls.append(config) or run_training(config, **kw))
    assert run_main(benchmark_all.main, argv, capfd)[0] == 0
    assert calls == []  # every (experiment, seed) was finished: nothing ran again


def test_a_curves_plot_needs_two_evaluations(tmp_path, capfd):
    """Evaluated once, at the end, a run has no curve to draw: the report says so instead of plotting dots."""
    for every, drawn in ((2, False), (1, True)):
        out = tmp_path / f"every-{every}"
        argv = [*TINY, "--epochs", "2", "--eval-every", str(every), "--architectures", "--models", "cnn",
                "--seeds", "1", "--output-dir", str(out)]
        assert run_main(benchmark_all.main, argv, capfd)[0] == 0
        report = (out / "RESULTS.md").read_text()
        assert (out / "curves.png").exists() == drawn == ("](curves.png)" in report)
        assert ("no per-epoch curve" in report) != drawn


def test_an_interrupted_benchmark_resumes_without_redoing_finished_runs(tmp_path, capfd, monkeypatch):
    out = tmp_path / "bench"
    argv = [*TINY, "--architectures", "--models", "cnn", "resnet_tiny", "--seeds", "1", "--output-dir", str(out)]
    trained = []

    def interrupted_on_the_second(config, **kw):
        if config.model == "resnet_tiny":
            raise RunStopped("SIGINT received: stopped", 130, advice="continue with --resume --output-dir RUN")
        trained.append(config.model)
        return run_training(config, **kw)

    monkeypatch.setattr("utils.experiment.run_training", interrupted_on_the_second)
    code, _, err = run_main(benchmark_all.main, argv, capfd)
    assert code == 130 and trained == ["cnn"], err
    # the way to continue is the study's command, not the one run's --resume
    assert "architectures/resnet_tiny seed 0: SIGINT received: stopped; run the same command again" in err
    assert "--resume" not in err

    # as a kill -9 before the run's first checkpoint leaves it: a config.json and nothing to resume
    (out / "architectures" / "resnet_tiny" / "seed-0").mkdir(parents=True)
    (out / "architectures" / "resnet_tiny" / "seed-0" / "config.json").write_text("{}")
    trained.clear()
    monkeypatch.setattr("utils.experiment.run_training", lambda config, **kw: trained.append(config.model) or
                        run_training(config, **kw))
    assert run_main(benchmark_all.main, argv, capfd)[0] == 0
    assert trained == ["resnet_tiny"]  # cnn was finished and not run twice
    results = json.loads((out / "results.json").read_text())["results"]
    assert [r["experiment"] for r in results] == ["cnn", "resnet_tiny"] and all(r["status"] == "done" for r in results)


@pytest.mark.parametrize("error, recorded", [
    (UserError("something about cnn went wrong"), "something about cnn went wrong"),
    # not only the project's own errors: a bug or a library error in one run is recorded too
    (ValueError("Expected more than 1 value per channel when training"),
     "ValueError: Expected more than 1 value per channel when training"),
])
def test_a_failing_run_is_recorded_and_the_study_goes_on(error, recorded, tmp_path, capfd, monkeypatch):
    out = tmp_path / "bench"

    def failing_cnn(config, **kw):
        if config.model == "cnn":
            raise error
        return run_training(config, **kw)

    monkeypatch.setattr("utils.experiment.run_training", failing_cnn)
    code, _, err = run_main(benchmark_all.main, [*TINY, "--architectures", "--models", "cnn", "resnet_tiny",
                                                 "--seeds", "1", "--output-dir", str(out)], capfd)
    assert code == 1 and "1 of 2 runs failed" in err and "Traceback" not in err
    results = {r["experiment"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert results["cnn"]["status"] == "failed" and results["cnn"]["error"] == recorded
    assert results["resnet_tiny"]["status"] == "done"
    assert f"1 failed: {recorded}" in (out / "RESULTS.md").read_text()


def test_the_record_study_takes_each_ingredient_out_of_the_preset(tmp_path, capfd):
    """--record: the preset and the preset without each ingredient, the preset's own epochs; a row per ingredient."""
    out = tmp_path / "bench"
    argv = [*TINY, "--record", "--seeds", "1", "--output-dir", str(out)]
    code, stdout, err = run_main(benchmark_all.main, [*argv, "--list"], capfd)
    assert code == 0 and "6 experiments x 1 seeds = 6 runs of 10 epochs" in stdout, err
    assert "record/bias_lr_1x" in stdout and "--norm-bias-lr-scale" not in stdout.split("record/bias_lr_1x")[1].split(
        "\n")[0]
    code, _, err = run_main(benchmark_all.main, argv, capfd)
    assert code == 0, err
    report = (out / "RESULTS.md").read_text()
    assert "## record" in report and "| warm-up + cosine -> piecewise linear |" in report
    assert "`--scheduler linear --warmup-epochs 2.3`" in report  # the flags in which the pair differs
    results = json.loads((out / "results.json").read_text())["results"]
    assert len(results) == 6 and all(r["status"] == "done" for r in results)
    ema = next(r for r in results if r["experiment"] == "ema_not_lookahead")
    assert ema["final_ema_test_acc"] is not None  # its row compares the EMA weights


def test_the_preset_techniques_study_adds_one_technique_to_the_preset_at_the_budget_asked(tmp_path, capfd):
    """--preset-techniques: the preset without label smoothing, each technique alone on it; --epochs is the budget
    (the preset's 8 unless given), and the report has a row per technique."""
    untimed = [a for a in TINY if a not in ("--epochs", "1")]
    code, stdout, err = run_main(benchmark_all.main, [*untimed, "--preset-techniques", "--seeds", "1", "--list"], capfd)
    assert code == 0 and "6 experiments x 1 seeds = 6 runs of 8 epochs" in stdout, err
    lines = {line.split()[0]: line for line in stdout.splitlines()[1:]}
    assert "--label-smoothing" not in lines["preset_techniques/baseline"]  # the preset's 0.2 is taken out
    assert "--label-smoothing 0.1" in lines["preset_techniques/label_smoothing"]
    assert "--data-mode memory" in lines["preset_techniques/randaugment"]  # a per-image policy
    out = tmp_path / "bench"
    code, _, err = run_main(benchmark_all.main, [*TINY, "--preset-techniques", "--seeds", "1", "--output-dir",
                                                 str(out), "--only", "cutout", "ema"], capfd)
    assert code == 0, err
    results = {r["experiment"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    assert sorted(results) == ["baseline", "cutout", "ema"] and results["ema"]["final_ema_test_acc"] is not None
    assert all(r["config"]["epochs"] == 1 and r["config"]["label_smoothing"] == 0 for r in results.values())
    report = (out / "RESULTS.md").read_text()
    assert "| no Cutout -> Cutout (16 px) |" in report and "`--cutout 8`" in report  # 16 px scaled to 16-px images


@pytest.mark.parametrize("study", ["--record", "--preset-techniques"])
def test_flags_given_for_every_run_win_over_the_preset_a_study_starts_from(study):
    """--batch-size and --data-mode given to a study of the preset reach every arm (under torchrun a small folder
    needs a smaller batch than the preset's); what an arm itself changes still wins."""
    from utils.studies import experiment_config

    argv = [*TINY, study, "--batch-size", "7", "--data-mode", "device", "--list"]
    plan = benchmark_all.plan_from_args(benchmark_all.build_parser().parse_args(argv), argv)
    configs = {e.name: experiment_config(plan, e, 0) for e in plan.experiments}
    assert {c.batch_size for c in configs.values()} == {7}, {n: c.batch_size for n, c in configs.items()}
    expected = {name: "memory" if name == "randaugment" else "device" for name in configs}
    assert {n: c.data_mode for n, c in configs.items()} == expected


def test_a_rerun_with_a_setting_that_changes_results_is_another_study(tmp_path, capfd):
    out = tmp_path / "bench"
    argv = [*TINY, "--architectures", "--models", "cnn", "--seeds", "1", "--output-dir", str(out)]
    assert run_main(benchmark_all.main, argv, capfd)[0] == 0
    changed = [a if a != "64" else "96" for a in argv]  # --synthetic-size 96: other data
    code, _, err = run_main(benchmark_all.main, changed, capfd)
    assert code == 2 and "holds a benchmark of another command" in err, err
    assert run_main(benchmark_all.main, argv, capfd)[0] == 0  # the same command still continues it


def test_a_benchmark_folder_from_before_full_signatures_still_continues(tmp_path, capfd):
    out = tmp_path / "bench"
    argv = [*TINY, "--architectures", "--models", "cnn", "--seeds", "1", "--output-dir", str(out)]
    assert run_main(benchmark_all.main, argv, capfd)[0] == 0
    saved = json.loads((out / "benchmark.json").read_text())
    for key in ("settings", "changes"):  # as an older version wrote it
        del saved["signature"][key]
    (out / "benchmark.json").write_text(json.dumps(saved))
    code, _, err = run_main(benchmark_all.main, argv, capfd)
    assert code == 0, err


# ------------------------------------------------------------------------------------ a full disk
def _fail_writing(monkeypatch, name: str, times: int = 1) -> None:
    """The next ``times`` atomic writes of ``name`` fail as a full disk fails them: a half-written temporary."""
    import errno

    from utils import files

    real = files.atomic_write
    left = {"n": times}

    def atomic_write(path, write):
        if Path(path).name == name and left["n"] > 0:
            left["n"] -= 1

            def half(temporary):
                temporary.write_bytes(b"{\"comm")
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(path, half)
        return real(path, write)

    monkeypatch.setattr(files, "atomic_write", atomic_write)
    import utils.studies.report
    import utils.studies.runner
    monkeypatch.setattr(utils.studies.runner, "atomic_write", atomic_write)
    monkeypatch.setattr(utils.studies.report, "atomic_write", atomic_write)


def test_a_full_disk_while_benchmark_json_is_written_is_one_line_and_the_folder_stays_usable(tmp_path, capfd,
                                                                                             monkeypatch):
    out = tmp_path / "bench"
    argv = [*TINY, "--architectures", "--models", "cnn", "--seeds", "1", "--output-dir", str(out)]
    _fail_writing(monkeypatch, "benchmark.json")
    code, _, err = run_main(benchmark_all.main, argv, capfd)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "No space left on device" in err, err
    assert not (out / "benchmark.json").exists() and not list(out.glob("*.tmp"))  # nothing half-written
    code, _, err = run_main(benchmark_all.main, argv, capfd)  # space freed: the same command starts the study
    assert code == 0, err
    assert json.loads((out / "results.json").read_text())["results"][0]["status"] == "done"


def test_a_full_disk_while_calibration_pt_is_written_leaves_no_truncated_file(tmp_path, capfd, monkeypatch):
    out = tmp_path / "bench"
    argv = [*TINY, "--architectures", "--models", "cnn", "--seeds", "1", "--output-dir", str(out)]
    _fail_writing(monkeypatch, "calibration.pt")
    code, _, err = run_main(benchmark_all.main, argv, capfd)
    assert "Traceback" not in err and "No space left on device" in err, err
    assert not list(out.rglob("calibration.pt")) and not list(out.rglob("*.tmp"))
    code, _, err = run_main(benchmark_all.main, argv, capfd)  # space freed: the run is redone and recorded
    assert code == 0, err
    assert json.loads((out / "results.json").read_text())["results"][0]["status"] == "done"
    assert list(out.rglob("calibration.pt"))


def test_a_benchmark_into_an_empty_folder_the_user_made_runs(tmp_path, capfd):
    """The folder exists but holds no benchmark.json yet: the study locks it once (not twice, against itself)."""
    out = tmp_path / "bench"
    out.mkdir()
    code, _, err = run_main(benchmark_all.main, [*TINY, "--architectures", "--models", "cnn", "--seeds", "1",
                                                 "--output-dir", str(out)], capfd)
    assert code == 0, err
    assert not (out / "run.lock").exists()


def test_the_activations_study_reports_each_activation_against_relu_paired_by_seed(tmp_path):
    from utils.config import TrainConfig
    from utils.studies import BenchmarkPlan, build_experiments, pair_table, summarize

    experiments = build_experiments(["activations"], None, "cnn")
    results = []
    for seed, (relu, gelu) in enumerate([(50.0, 51.0), (52.0, 53.5), (48.0, 49.0)]):  # gelu +1, +1.5, +1
        for name, acc in (("relu", relu), ("gelu", gelu)):
            results.append({"study": "activations", "experiment": name, "seed": seed, "status": "done",
                            "final_test_acc": acc, "best_test_acc": acc, "train_time_s": 10.0, "ece": 0.1,
                            "params": 1, "gflops": 0.1, "test_acc_curve": [acc]})
    plan = BenchmarkPlan(TrainConfig(model="cnn"), experiments, [0, 1, 2], tmp_path)
    lines = pair_table(plan, summarize(results, experiments), "activations")
    gelu = next(line for line in lines if line.startswith("| relu -> gelu |"))
    assert "+1.17 [+0.45, +1.88] (3 seeds)" in gelu  # mean 7/6, t(2) = 4.303, sd 0.289: ± 0.717
    assert sum(line.startswith("| relu -> ") for line in lines) == 9  # ten distinct activations, relu the baseline
    assert next(line for line in lines if line.startswith("| relu -> elu |")).count("not run") == 1
    # the one comparison with intervals: paired ±0.72, Welch's (seeds' spread 2.0 and 2.25, 3 each) far wider
    assert lines[-1].startswith("Half-width of the 95% intervals (1 of the comparisons above have both): "
                                "paired by seed ±0.72 points")


def test_the_architectures_study_compares_each_model_with_the_first_one_named(tmp_path):
    from utils.config import TrainConfig
    from utils.studies import BenchmarkPlan, build_experiments, pair_table, summarize, write_report

    experiments = build_experiments(["architectures"], ["cnn", "resnet_tiny", "vit_tiny"], "cnn")
    results = []
    for seed, (cnn, resnet) in enumerate([(50.0, 60.0), (52.0, 63.0), (48.0, 59.0)]):  # resnet +10, +11, +11
        for name, acc in (("cnn", cnn), ("resnet_tiny", resnet)):
            results.append({"study": "architectures", "experiment": name, "seed": seed, "status": "done",
                            "final_test_acc": acc, "best_test_acc": acc, "train_time_s": 10.0, "ece": 0.1,
                            "params": 1, "gflops": 0.1, "test_acc_curve": [acc], "config": {"epochs": 5, "subset": None,
                            "test_subset": None}})
    plan = BenchmarkPlan(TrainConfig(model="cnn"), experiments, [0, 1, 2], tmp_path)
    lines = pair_table(plan, summarize(results, experiments), "architectures")
    assert [line.split(" |")[0] for line in lines if line.startswith("| cnn -> ")] == \
        ["| cnn -> resnet_tiny", "| cnn -> vit_tiny"]  # the first model named is the reference, not compared to itself
    assert "+10.67 [+9.23, +12.10] (3 seeds)" in lines[2]  # mean 32/3, sd 0.577, t(2) = 4.303: ± 1.434
    assert "not run" in lines[3]
    plan.results = results
    report = write_report(plan).read_text()
    assert "different networks cannot share an initialization" in report


def test_the_report_states_the_budget_its_runs_had_not_the_flags_typed(tmp_path):
    """``--report`` is typed without the study's budget, and the record study trains for the preset's epochs."""
    from utils.config import TrainConfig
    from utils.studies import BenchmarkPlan, budget_sentence, build_experiments

    experiments = build_experiments(["record"], None, "cnn")
    plan = BenchmarkPlan(TrainConfig(epochs=20), experiments, [0, 1, 2], tmp_path)  # what the flags said
    plan.results = [{"study": "record", "experiment": "preset", "seed": seed, "status": "done",
                     "config": {"epochs": 10, "subset": 10000, "test_subset": None}} for seed in range(5)]
    plan.results.append({"study": "record", "experiment": "tta_off", "seed": 5, "status": "failed", "config": {}})
    assert budget_sentence(plan) == "Seeds: 0, 1, 2, 3, 4. Budget: 10 epochs, 10000 training images, all test images."
    plan.results[0]["config"]["epochs"] = 20
    assert "Budget: 10/20 epochs" in budget_sentence(plan)  # runs that differ say so


def test_a_pinned_precision_leaves_out_the_amp_arm_of_the_techniques_study(capfd):
    from utils.studies import build_experiments

    names = [e.name for e in build_experiments(["techniques"], None, "cnn")]
    assert "amp" in names
    pinned = [e.name for e in build_experiments(["techniques"], None, "cnn", precision_pinned=True)]
    assert pinned == [name for name in names if name != "amp"]
    code, out, err = run_main(benchmark_all.main, [*TINY, "--techniques", "--no-amp", "--list"], capfd)
    assert code == 0, err
    assert "techniques/amp " not in out and "techniques/mixup" in out


def test_only_runs_the_named_arms_with_their_baseline_and_the_table_says_what_was_left_out(tmp_path, capfd):
    from utils.config import TrainConfig
    from utils.studies import BenchmarkPlan, build_experiments, keep_only, pair_table, summarize

    experiments = keep_only(build_experiments(["techniques"], None, "cnn"), ["mixup", "randaugment"])
    assert [e.name for e in experiments] == ["standard", "randaugment", "mixup"]  # the baseline came along
    assert [e.name for e in keep_only(build_experiments(["activations"], None, "cnn"), ["gelu"])] == ["gelu", "relu"]
    results = [{"study": "techniques", "experiment": name, "seed": 0, "status": "done", "final_test_acc": acc,
                "best_test_acc": acc, "train_time_s": 10.0, "ece": 0.1, "params": 1, "gflops": 0.1, "test_acc_curve": [acc]}
               for name, acc in (("standard", 50.0), ("randaugment", 49.0), ("mixup", 48.0))]
    plan = BenchmarkPlan(TrainConfig(model="cnn"), experiments, [0], tmp_path, only=["mixup", "randaugment"])
    lines = pair_table(plan, summarize(results, experiments), "techniques")
    assert next(line for line in lines if line.startswith("| no MixUp -> MixUp |")).count("-2.00") == 2
    assert "left out: --only" in next(line for line in lines if line.startswith("| Adam -> AdamW |"))
    code, _, err = run_main(benchmark_all.main, [*TINY, "--techniques", "--only", "mixupp", "--list"], capfd)
    assert code == 2 and "no experiment named mixupp" in err
    code, _, err = run_main(benchmark_all.main, [*TINY, "--techniques", "--no-amp", "--only", "amp", "--list"], capfd)
    assert code == 2 and "pins every run's precision" in err
    # the record study compares each ablation against the preset: the preset comes along, not the others
    code, out, err = run_main(benchmark_all.main, [*TINY, "--record", "--only", "zero_padding", "--list"], capfd)
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["record/preset", "record/zero_padding"]


def test_the_regularization_study_sets_one_regularizer_per_arm_on_a_residual_model(tmp_path, capfd):
    from utils.config import TrainConfig
    from utils.studies import BenchmarkPlan, build_experiments, experiment_config

    code, out, err = run_main(benchmark_all.main, [*TINY, "--regularization", "--model", "resnet_tiny", "--list"], capfd)
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == [
        "regularization/baseline", "regularization/cutout", "regularization/random_erasing", "regularization/cutmix",
        "regularization/dropblock", "regularization/drop_path"]
    experiments = build_experiments(["regularization"], None, "resnet_tiny")
    plan = BenchmarkPlan(TrainConfig(dataset="synthetic"), experiments, [0], tmp_path)
    configs = {e.name: experiment_config(plan, e, 0) for e in experiments}
    baseline = configs["baseline"]
    assert (baseline.cutout, baseline.cutmix, baseline.random_erasing, baseline.dropblock, baseline.drop_path) == (
        None, None, 0, 0, 0)
    assert (configs["cutout"].cutout, configs["dropblock"].dropblock, configs["drop_path"].drop_path) == (16, 0.1, 0.1)
    assert (configs["cutmix"].cutmix, configs["random_erasing"].random_erasing) == (1.0, 0.25)
    # on a model without residual blocks two arms would silently train the baseline: refused in one line
    code, _, err = run_main(benchmark_all.main, [*TINY, "--regularization", "--model", "cnn", "--list"], capfd)
    assert code == 2 and "resnet or efficientnet" in err and "Traceback" not in err


def test_a_study_runs_seed_by_seed_so_a_stopped_one_holds_every_arm_at_its_seeds(tmp_path, capfd, monkeypatch):
    out = tmp_path / "bench"
    argv = [*TINY, "--architectures", "--models", "cnn", "resnet_tiny", "--seeds", "2", "--output-dir", str(out)]
    calls = []

    def stopped_at_the_third(config, **kw):
        if len(calls) == 2:
            raise RunStopped("SIGINT received: stopped", 130)
        calls.append((config.model, config.seed))
        return run_training(config, **kw)

    monkeypatch.setattr("utils.experiment.run_training", stopped_at_the_third)
    assert run_main(benchmark_all.main, argv, capfd)[0] == 130
    assert calls == [("cnn", 0), ("resnet_tiny", 0)]  # both arms at seed 0: one paired difference
    calls.clear()
    monkeypatch.setattr("utils.experiment.run_training", lambda config, **kw: calls.append((config.model, config.seed))
                        or run_training(config, **kw))
    assert run_main(benchmark_all.main, argv, capfd)[0] == 0
    assert calls == [("cnn", 1), ("resnet_tiny", 1)]
    results = json.loads((out / "results.json").read_text())["results"]
    assert sorted((r["experiment"], r["seed"]) for r in results if r["status"] == "done") == [
        ("cnn", 0), ("cnn", 1), ("resnet_tiny", 0), ("resnet_tiny", 1)]


def test_the_ranking_line_counts_the_seeds_that_agree_with_the_means():
    from utils.studies import ranking_line

    rows = [{"experiment": name, "final_test_acc_by_seed": dict(enumerate(accs))}
            for name, accs in (("a", [60.0, 61.0, 58.0]), ("b", [59.0, 62.0, 57.0]), ("c", [50.0, 51.0, 59.0, 70.0]))]
    line = ranking_line(rows + [{"experiment": "d", "final_test_acc_by_seed": {}}])
    assert "over the 3 seeds every arm finished: a > b > c (no finished seed: d)." in line  # c's seed 3: unpaired
    assert "a is first on 1 of 3 seeds; a and b are the top two on 2 of 3." in line
    assert ranking_line(rows[:2]).endswith("a is first on 2 of 3 seeds.")  # two arms: no "top two" to count
    assert ranking_line(rows[:1]).startswith("Ranking: needs two arms")


def test_a_listing_piped_into_a_reader_that_stops_early_ends_quietly():
    """``benchmark_all.py --full --list | head -1``: the reader leaves before the listing is written."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a user's shell: stdout buffered
    process = subprocess.Popen([sys.executable, str(REPO / "benchmark_all.py"), "--full", "--list"], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # closed before the script writes a line: its writes meet a broken pipe
    _, err = process.communicate(timeout=120)
    assert process.returncode == 141, err
    assert err == "", err  # no traceback, no "Exception ignored" from the exit's flush


def test_a_stopped_run_pickles_whole():
    import pickle

    stop = RunStopped("SIGINT received: stopped", 130, quiet=True, advice="continue with --resume")
    again = pickle.loads(pickle.dumps(stop))
    assert (str(again), again.what, again.exit_code, again.quiet) == (str(stop), stop.what, 130, True)


def test_the_study_in_progress_still_continues_with_this_code():
    """The committed full-data study's folder records its command's signature; the same command, planned by this
    code, must still match it (else the next session's re-run would be refused and the finished runs orphaned)."""
    import shlex

    from utils.studies.runner import plan_signature, same_study

    folder = Path(__file__).resolve().parents[1] / "benchmarks/results/preset-techniques-cpu-8ep-2026-12-05"
    saved = json.loads((folder / "benchmark.json").read_text())
    argv = shlex.split(saved["command"])[2:]  # after "python benchmark_all.py"
    plan = benchmark_all.plan_from_args(benchmark_all.build_parser().parse_args([*argv, "--list"]), argv)
    assert same_study(saved["signature"], plan_signature(plan))
