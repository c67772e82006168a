"""Integration: the entry scripts train, write SPEC's files, and their listing flags work."""
import json

import pytest
import torch

import main as main_script
import main_modern
from utils.config import TrainConfig
from utils.data_loader import build_data
from utils.evaluation import evaluate
from utils.experiment import build_model
from utils.resolve import resolve
from utils.trainer import fit

from tests.conftest import SYNTHETIC, run_main, train_and_read_metrics

SPEC_FILES = ("config.json", "metrics.json", "metrics.csv", "last.pt", "best.pt", "curves.png", "confusion_matrix.png")
HISTORY_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_time_s"}


def test_one_epoch_on_synthetic_data_lowers_the_loss(tmp_path):
    # 32 steps: enough for BatchNorm's running statistics (momentum 0.1) to forget their initial values
    config = resolve(TrainConfig(dataset="synthetic", image_size=16, synthetic_size=1024, epochs=1, batch_size=32,
                                 workers=0, progress=False, output_dir=str(tmp_path)))
    torch.manual_seed(0)
    data = build_data(config)
    model = build_model(config, data.num_classes)
    before = evaluate(model, data.test_loader, torch.device("cpu"))["loss"]
    fit(model, data, config, tmp_path, torch.device("cpu"))
    after = evaluate(model, data.test_loader, torch.device("cpu"))["loss"]
    assert after < before - 0.1, (before, after)


def test_main_writes_every_file_of_the_spec(tmp_path, capfd):
    out = tmp_path / "run"
    code, stdout, err = run_main(main_script.main, [*SYNTHETIC, "--epochs", "2", "--output-dir", str(out)], capfd)
    assert code == 0, err
    for name in SPEC_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "cnn" and metrics["params"] > 1_000_000
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert HISTORY_KEYS <= set(metrics["history"][0])
    assert metrics["best_test_acc"] == max(h["test_acc"] for h in metrics["history"])
    assert metrics["final_test_acc"] == metrics["history"][-1]["test_acc"]
    csv_lines = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(csv_lines) == 3 and csv_lines[0].startswith("epoch,train_loss")
    config = json.loads((out / "config.json").read_text())
    assert config["optimizer"] == "adam" and config["epochs"] == 2 and metrics["num_classes"] == 10 and "num_classes" not in config
    last_line = stdout.strip().splitlines()[-1]
    assert last_line.startswith("done: cnn | final test acc") and "best on test (optimistic)" in last_line


def test_main_lists_at_least_eight_activations(capfd):
    code, stdout, _ = run_main(main_script.main, ["--list-activations"], capfd)
    assert code == 0 and len(stdout.strip().splitlines()) >= 8 and "mish" in stdout


def test_list_models_prints_the_table(capfd):
    code, stdout, _ = run_main(main_modern.main, ["--list-models"], capfd)
    rows = stdout.strip().splitlines()[1:]
    assert code == 0 and len(rows) == 12  # the 11 of the product description, and speednet
    assert any(r.split()[0] == "resnet18" and r.split()[1] == "resnet" and 10 < float(r.split()[2]) < 12 for r in rows)


def test_modern_training_records_ema_beside_raw(tmp_path, capfd):
    out = tmp_path / "modern"
    code, _, err = run_main(main_modern.main, [*SYNTHETIC, "--model", "resnet_tiny", "--modern-training",
                                               "--epochs", "2", "--output-dir", str(out)], capfd)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"ema_test_acc", "ema_test_loss"} <= set(metrics["history"][0])
    config = json.loads((out / "config.json").read_text())
    assert (config["optimizer"], config["ema"], config["label_smoothing"], config["clip_grad"]) == ("adamw", True, 0.1, 1.0)
    from utils.devices import cpu_has_native_bf16

    assert config["amp"] is cpu_has_native_bf16()  # on a CPU: bf16 where the hardware has it, else fp32
    best = max(max(h["test_acc"], h["ema_test_acc"]) for h in metrics["history"])
    assert metrics["best_test_acc"] == best


def test_quick_sets_two_epochs_on_a_subset():
    config = resolve(TrainConfig(quick=True))
    assert (config.epochs, config.subset, config.test_subset) == (2, 2000, 1000)
    assert resolve(TrainConfig(quick=True, epochs=1)).epochs == 1  # explicit flags win


def test_compare_models_writes_table_json_and_chart(tmp_path, capfd):
    out = tmp_path / "cmp"
    code, stdout, err = run_main(main_modern.main, [*SYNTHETIC, "--compare-models", "cnn", "resnet_tiny",
                                                    "--epochs", "1", "--output-dir", str(out)], capfd)
    assert code == 0, err
    comparison = json.loads((out / "comparison.json").read_text())
    assert [r["model"] for r in comparison["results"]] == ["cnn", "resnet_tiny"]
    assert (out / "comparison.png").stat().st_size > 0
    assert "resnet_tiny" in stdout and "best acc" in stdout and "latency (ms)" in stdout
    for row in comparison["results"]:  # what each model costs to run, beside its accuracy (level 5)
        assert row["gflops"] > 0 and row["latency_ms"] > 0 and row["latency_device"] == "cpu"
    cnn, resnet = comparison["results"]
    assert resnet["gflops"] > cnn["gflops"]  # resnet_tiny's full-resolution stem costs more than the cnn's


def test_inference_latency_is_the_median_of_timed_forward_passes(monkeypatch):
    """The first calls (warm-up) are not timed, and the median ignores one slow call."""
    from utils import model_cost

    clock = iter([0.0, 1.0, 1.002, 2.0, 2.003, 3.0, 3.500])  # a warm-up start, then 2 ms, 3 ms, 500 ms
    monkeypatch.setattr(model_cost, "perf_counter", lambda: next(clock))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2))
    assert model_cost.inference_latency_ms(model, 4, repeats=3, warmup=1) == pytest.approx(3.0)


def test_evaluate_a_checkpoint_reports_its_accuracy(tmp_path, capfd):
    out = tmp_path / "run"
    assert run_main(main_script.main, [*SYNTHETIC, "--epochs", "1", "--output-dir", str(out)], capfd)[0] == 0
    best = json.loads((out / "metrics.json").read_text())["best_test_acc"]
    code, stdout, err = run_main(main_modern.main, ["--evaluate", str(out / "best.pt"), "--no-progress"], capfd)
    assert code == 0, err
    assert f"test acc {best:.2f}%" in stdout


# fp16 has no native CPU kernels: a step of 128 images at 16 px takes ~28 s on a 2-core Xeon, so its run is
# the smallest that still trains (64 images of 8 px, the cnn); bf16 is native and runs the usual size.
AMP_RUNS = {"bf16": ["--model", "resnet_tiny"],
            "fp16": ["--model", "cnn", "--image-size", "8", "--synthetic-size", "64", "--batch-size", "32"]}


@pytest.mark.parametrize("dtype", list(AMP_RUNS))
def test_amp_run_on_cpu_trains_with_finite_losses(dtype, tmp_path, capfd):
    out = tmp_path / dtype
    code, _, err = run_main(main_modern.main, [*SYNTHETIC, *AMP_RUNS[dtype], "--modern-training", "--amp",
                                               "--amp-dtype", dtype, "--epochs", "2", "--output-dir", str(out)], capfd)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["amp"] is True and config["amp_dtype"] == dtype
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert all(h["train_loss"] == h["train_loss"] and h["train_loss"] < 10 for h in history)  # finite
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_val_split_holds_out_images_and_chooses_best_pt_on_them(tmp_path, capfd):
    stdout, metrics = train_and_read_metrics(main_script.main, [*SYNTHETIC, "--epochs", "2", "--val-split", "32"],
                                             tmp_path / "run", capfd)
    assert metrics["train_images"] == 128 - 32 and metrics["val_images"] == 32
    assert metrics["best_pt_chosen_on"] == "validation"
    assert all("val_acc" in h for h in metrics["history"] if h["test_acc"] is not None)
    best_val = max(h["val_acc"] for h in metrics["history"] if "val_acc" in h)
    assert metrics["best_val_acc"] == best_val
    assert "chosen on 32 validation images" in stdout.strip().splitlines()[-1]


def test_plot_schedule_draws_the_schedule_the_run_would_use(tmp_path, monkeypatch):
    """--warmup-epochs, --lr and --step-size count: the first curve is the run's own schedule."""
    import main_modern
    from utils.cli import config_from_args
    from utils.experiment import plot_schedules

    drawn = {}
    monkeypatch.setattr("utils.experiment.plot_lr_schedules", lambda curves, steps, path, title: drawn.update(curves))
    parser = main_modern.build_parser()
    args = parser.parse_args(["--modern-training", "--epochs", "10", "--warmup-epochs", "5", "--lr", "0.01",
                              "--dataset", "synthetic"])
    plot_schedules(config_from_args(args), tmp_path / "s.png", steps_per_epoch=10)
    run = next(iter(drawn.values()))
    assert max(run) == pytest.approx(0.01) and run.index(max(run)) == 49  # the peak at the end of epoch 5
    assert len(drawn) == 3  # beside the two recipes' defaults


def test_an_interrupted_comparison_continues_where_it_stopped(tmp_path, capfd):
    import shutil

    import main_modern

    out = tmp_path / "compare"
    argv = [*SYNTHETIC, "--compare-models", "cnn", "resnet_tiny", "--epochs", "1", "--output-dir", str(out)]
    code, _, err = run_main(main_modern.main, argv, capfd)
    assert code == 0 and (out / "comparison.json").exists(), err
    shutil.rmtree(out / "resnet_tiny")  # as if stopped before its first checkpoint
    (out / "comparison.json").unlink()
    code, stdout, err = run_main(main_modern.main, [*argv, "--resume"], capfd)
    assert code == 0, err
    assert "cnn: finished in" in stdout and "resnet_tiny: finished" not in stdout
    results = json.loads((out / "comparison.json").read_text())["results"]
    assert [r["model"] for r in results] == ["cnn", "resnet_tiny"]
    code, _, err = run_main(main_modern.main, [*argv, "--lr", "0.5"], capfd)
    assert code == 2 and "trained with other settings (lr)" in err, err


def test_the_confusion_matrix_reuses_the_evaluation_that_chose_best_pt(tmp_path, monkeypatch):
    """No second pass over the test set at the end: the kept weights' own evaluation draws the matrix, and the
    model handed to ``after`` holds best.pt's weights (raw or EMA, whichever was judged better)."""
    from utils.experiment import run_training

    evaluations = []
    monkeypatch.setattr("utils.experiment.evaluate_saved", lambda *a, **k: evaluations.append(a))
    seen = {}
    config = TrainConfig(dataset="synthetic", image_size=16, synthetic_size=64, batch_size=32, epochs=2, eval_every=1,
                         recipe="modern", workers=0, progress=False, cache_dir="", output_dir=str(tmp_path / "run"))
    run_training(resolve(config), after=lambda model, data, device, run_dir: seen.update(model.state_dict()))
    assert evaluations == [] and (tmp_path / "run" / "confusion_matrix.png").stat().st_size > 0
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(seen[name], value) for name, value in best.items())
