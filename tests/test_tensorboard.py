"""``--tensorboard``: the event files hold the run's own numbers, a resume appends without doubling a curve,
logging reads nothing more from the device, and a missing package is one line.

The event files are read back with TensorBoard's own reader (``EventAccumulator``), as the dashboard reads them.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("tensorboard", reason="--tensorboard is an optional extra (requirements-extras.txt)")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import benchmark_all  # noqa: E402
import main_modern  # noqa: E402
from utils.config import TrainConfig  # noqa: E402
from utils.data_loader import build_data  # noqa: E402
from utils.experiment import build_model  # noqa: E402
from utils.resolve import resolve
from utils.trainer import Trainer, train  # noqa: E402
from utils.training.tensorboard_log import epoch_tag  # noqa: E402

from tests.conftest import run_main  # noqa: E402

# 64 training images in batches of 16: 4 optimizer steps an epoch. EMA and a probe add their tags.
TINY = ["--dataset", "synthetic", "--synthetic-size", "64", "--image-size", "16", "--batch-size", "16",
        "--device", "cpu", "--workers", "0", "--no-progress", "--cache-dir", "", "--ema", "--probe-images", "8",
        "--tensorboard"]
STEPS_PER_EPOCH = 4


def read_events(run: Path) -> EventAccumulator:
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def scalars(events: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(event.step, event.value) for event in events.Scalars(tag)]


def assert_epochs_match_history(events: EventAccumulator, history: list[dict], times: bool = True) -> None:
    """Every number of every history row is in the event files, at its epoch, under its tag.

    ``times=False``: not the times (a resumed run's history holds the epoch times its last.pt saved, which
    lack the file writes that metrics.json, and TensorBoard, had then)."""
    keys = {key for row in history for key, value in row.items()
            if key != "epoch" and value is not None and (times or not key.endswith("_time_s"))}
    assert {"test_acc", "train_loss", "ema_test_acc", "probe_acc", "lr"} <= keys and (not times or "epoch_time_s" in keys)
    for key in keys:
        expected = [(row["epoch"], pytest.approx(row[key], rel=1e-6)) for row in history if row.get(key) is not None]
        assert scalars(events, epoch_tag(key)) == expected, key


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("tensorboard") / "run"
    code = main_modern.main([*TINY, "--epochs", "2", "--output-dir", str(run)]) or 0
    assert code == 0 and (run / "metrics.json").exists()
    return run


def test_the_epochs_in_tensorboard_are_the_history_in_metrics_json(logged_run):
    history = json.loads((logged_run / "metrics.json").read_text())["history"]
    events = read_events(logged_run)
    assert_epochs_match_history(events, history)
    assert scalars(events, "accuracy/test_acc") == [(h["epoch"], pytest.approx(h["test_acc"])) for h in history]
    assert scalars(events, "loss/train_loss") == [(h["epoch"], pytest.approx(h["train_loss"])) for h in history]
    config = json.loads((logged_run / "config.json").read_text())
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert json.loads(text) == config  # the resolved config, as text (a markdown code block)
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")


def test_every_step_is_logged_once_with_its_loss_and_learning_rate(logged_run):
    history = json.loads((logged_run / "metrics.json").read_text())["history"]
    events = read_events(logged_run)
    losses, rates = scalars(events, "step/train_loss"), scalars(events, "step/lr")
    assert [step for step, _ in losses] == [step for step, _ in rates] == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    for row in history:  # equal batches: the epoch's train loss is the mean of its steps' losses
        steps = losses[(row["epoch"] - 1) * STEPS_PER_EPOCH: row["epoch"] * STEPS_PER_EPOCH]
        assert sum(value for _, value in steps) / STEPS_PER_EPOCH == pytest.approx(row["train_loss"], rel=1e-5)
        assert rates[row["epoch"] * STEPS_PER_EPOCH - 1][1] == pytest.approx(row["lr"])  # the epoch's last step


def test_a_resumed_run_appends_and_drops_what_came_after_its_checkpoint(logged_run, tmp_path, capfd):
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "run"
    shutil.copytree(logged_run, run)
    # What a run killed in epoch 3 leaves: steps logged after last.pt (end of epoch 2), which the resume trains again.
    stale = SummaryWriter(str(run / "tensorboard"))
    for step in (2 * STEPS_PER_EPOCH + 1, 2 * STEPS_PER_EPOCH + 2):
        stale.add_scalar("step/train_loss", 999.0, step)
    stale.close()
    code, _, err = run_main(main_modern.main, [*TINY, "--epochs", "3", "--resume", "--output-dir", str(run)], capfd)
    assert code == 0, err
    history = json.loads((run / "metrics.json").read_text())["history"]
    events = read_events(run)
    assert len(history) == 3
    assert_epochs_match_history(events, history, times=False)
    losses = scalars(events, "step/train_loss")
    assert [step for step, _ in losses] == list(range(1, 3 * STEPS_PER_EPOCH + 1))  # each step once
    assert 999.0 not in [value for _, value in losses]
    assert losses[: 2 * STEPS_PER_EPOCH] == scalars(read_events(logged_run), "step/train_loss")


def count_device_reads(monkeypatch, trainer: Trainer, steps: int) -> int:
    """Calls of the tensor methods that read a value back to the host (each a sync on a GPU) during ``steps`` steps."""
    calls = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counted(*args, _original=original, **kwargs):
            calls.append(1)
            return _original(*args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    try:
        train(trainer, max_steps=steps)
    finally:
        monkeypatch.undo()
    return len(calls)


def test_logging_reads_nothing_more_from_the_device(tmp_path, monkeypatch):
    """With the step log read every 2 steps, 6 steps hold 3 reads: TensorBoard must add none of its own."""
    reads = {}
    for tensorboard in (False, True):
        config = resolve(TrainConfig(dataset="synthetic", synthetic_size=96, image_size=16, batch_size=16, workers=0,
                                     progress=False, seed=3, tensorboard=tensorboard, output_dir=str(tmp_path)))
        data = build_data(config)
        trainer = Trainer(build_model(config, data.num_classes), data, config, tmp_path / str(tensorboard),
                          torch.device("cpu"))
        trainer.guard_every = 2
        reads[tensorboard] = count_device_reads(monkeypatch, trainer, 6)
    assert reads[True] == reads[False] > 0
    assert [step for step, _ in scalars(read_events(tmp_path / "True"), "step/train_loss")] == list(range(1, 7))


@pytest.mark.parametrize("script, argv", [
    ("main_modern.py", ["--dataset", "synthetic", "--epochs", "1"]),
    ("benchmark_all.py", ["--architectures", "--models", "cnn", "--dataset", "synthetic", "--epochs", "1"]),
])
def test_without_the_package_tensorboard_is_one_line(script, argv, tmp_path, monkeypatch, capfd):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed: importing it fails
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    main = {"main_modern.py": main_modern.main, "benchmark_all.py": benchmark_all.main}[script]
    out = tmp_path / "out"
    code, _, err = run_main(main, [*argv, "--tensorboard", "--output-dir", str(out)], capfd)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "--tensorboard needs the tensorboard package" in err and "pip install -r requirements-extras.txt" in err
    assert not out.exists()


def test_a_study_passes_tensorboard_to_every_run(tmp_path, capfd):
    out = tmp_path / "study"
    code, _, err = run_main(benchmark_all.main, ["--architectures", "--models", "cnn", "--dataset",
                                                 "synthetic", "--synthetic-size", "32", "--image-size", "16",
                                                 "--epochs", "1", "--workers", "0", "--device", "cpu",
                                                 "--no-progress", "--cache-dir", "", "--tensorboard",
                                                 "--output-dir", str(out)], capfd)
    assert code == 0, err
    for model in ("cnn",):  # each run its own event files: tensorboard --logdir STUDY shows them side by side
        events = read_events(out / "architectures" / model / "seed-0")
        assert len(scalars(events, "accuracy/test_acc")) == 1
