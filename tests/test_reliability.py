"""Reliability: every bad input is one line and exit 2; interrupted runs resume exactly; checkpoints are safe."""
import json
import os
import pickle
import signal
import time
from pathlib import Path

import pytest
import torch

import main as main_script
import main_modern
from utils.checkpoint import load_checkpoint, save_checkpoint
from utils.errors import UserError

from tests.conftest import SYNTHETIC, run_main, run_script, start_script, write_image_folder


class RunsCode:
    """Unpickling this object runs code: it creates a marker file. A safe loader must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A one-epoch cnn run on synthetic data, whose files the bad-input cases reuse."""
    out = tmp_path_factory.mktemp("runs") / "cnn"
    result = run_script("main.py", [*SYNTHETIC, "--epochs", "1", "--output-dir", str(out)])
    assert result.returncode == 0, result.stderr
    return out


def bad_inputs(tmp: Path, run: Path) -> dict[str, tuple]:
    """name -> (script, argv, text the one line must contain)."""
    empty = tmp / "empty"
    for split in ("train", "test"):
        (empty / split / "cat").mkdir(parents=True)
    corrupt = write_image_folder(tmp / "corrupt")
    (corrupt / "train" / "dog" / "9999.jpg").write_bytes(b"not a jpeg at all")
    truncated = tmp / "truncated"
    truncated.mkdir()
    data = (run / "last.pt").read_bytes()
    (truncated / "last.pt").write_bytes(data[: len(data) // 2])
    (tmp / "a-file").write_text("x")
    evil = tmp / "evil.pt"
    torch.save({"format": 1, "model": RunsCode(tmp / "marker")}, evil)
    raw_pickle = tmp / "raw.pkl"
    raw_pickle.write_bytes(pickle.dumps({"format": 1, "model": RunsCode(tmp / "marker")}, protocol=4))
    folder = write_image_folder(tmp / "small")
    return {
        "unknown model": ("main_modern.py", ["--model", "resnet19"], "did you mean resnet18"),
        "unknown activation": ("main.py", ["--activation", "rleu"], "unknown activation 'rleu'"),
        "epochs 0": ("main.py", ["--epochs", "0"], "--epochs must be at least 1"),
        "negative lr": ("main.py", ["--lr", "-0.1"], "--lr must be a positive number"),
        "batch size 0": ("main.py", ["--batch-size", "0"], "--batch-size must be at least 1"),
        "negative batch size": ("main.py", ["--batch-size", "-5"], "--batch-size must be at least 1"),
        "epochs not a number": ("main.py", ["--epochs", "many"], "invalid int value"),
        "missing data dir": ("main.py", ["--data-dir", str(tmp / "nowhere")], "does not exist"),
        "empty image folder": ("main.py", ["--data-dir", str(empty)], "holds no images"),
        "corrupt jpeg": ("main.py", ["--data-dir", str(corrupt)], "9999.jpg"),
        "cifar missing, no download": ("main.py", ["--data-dir", str(tmp), "--dataset", "cifar10", "--no-download"],
                                       "--data-dir"),
        "resume without checkpoint": ("main.py", ["--resume", "--output-dir", str(tmp / "fresh")], "no last.pt"),
        "resume without output dir": ("main.py", ["--resume"], "--resume needs --output-dir"),
        "truncated checkpoint": ("main.py", ["--resume", "--output-dir", str(truncated)], "truncated or corrupt"),
        "checkpoint of another model": ("main_modern.py", ["--model", "resnet_tiny", "--resume", "--output-dir", str(run)],
                                        "model=cnn"),
        "pickle that runs code": ("main_modern.py", ["--evaluate", str(evil)], "refusing to load"),
        "raw pickle that runs code": ("main_modern.py", ["--evaluate", str(raw_pickle)], "refusing to load"),
        "evaluate missing file": ("main_modern.py", ["--evaluate", str(tmp / "none.pt")], "no checkpoint at"),
        "unwritable output dir": ("main.py", ["--output-dir", str(tmp / "a-file" / "run")], "cannot write to --output-dir"),
        "output dir holds a run": ("main.py", ["--output-dir", str(run)], "already holds a run"),
        "subset larger than data": ("main.py", ["--data-dir", str(folder), "--subset", "1000"], "larger than the training set"),
        "image size 0": ("main.py", ["--image-size", "0"], "--image-size must be between"),
        "mixup alpha 0": ("main_modern.py", ["--mixup", "0"], "--mixup alpha must be > 0"),
        "mixup alpha negative": ("main_modern.py", ["--mixup", "-1"], "--mixup alpha must be > 0"),
        "label smoothing 1.5": ("main_modern.py", ["--label-smoothing", "1.5"], "--label-smoothing must be in"),
        "unknown dataset": ("main.py", ["--dataset", "imagenet"], "invalid choice"),
        "cuda without gpu": ("main.py", ["--device", "cuda"], "no CUDA GPU"),
    }


def test_every_bad_input_is_one_line_and_exit_2(tmp_path, finished_run, capfd):
    scripts = {"main.py": main_script.main, "main_modern.py": main_modern.main}
    cases = bad_inputs(tmp_path, finished_run)
    assert len(cases) >= 15
    failures = []
    for name, (script, argv, expected) in cases.items():
        if name == "cuda without gpu" and torch.cuda.is_available():
            continue
        base = ["--no-progress", "--workers", "0", "--cache-dir", "", "--epochs", "1", "--image-size", "16"]
        if "--data-dir" not in argv and "--dataset" not in argv:
            base += ["--dataset", "synthetic"]
        if "--output-dir" not in argv and "--resume" not in argv:
            base += ["--output-dir", str(tmp_path / "out" / name.replace(" ", "-"))]
        code, _, err = run_main(scripts[script], [*base, *argv], capfd)
        lines = err.strip().splitlines()
        if code != 2 or len(lines) != 1 or expected not in err or "Traceback" in err:
            failures.append(f"{name}: exit {code}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    assert not (tmp_path / "marker").exists(), "unpickling the malicious checkpoint ran its code"


def test_bad_input_in_a_fresh_process_has_no_traceback(tmp_path):
    result = run_script("main_modern.py", ["--model", "vit_tiniest", "--no-progress"])
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "vit_tiny" in result.stderr


def test_loading_refuses_code_and_creates_no_marker(tmp_path):
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as handle:
        pickle.dump({"format": 1, "model": RunsCode(tmp_path / "marker")}, handle)
    with pytest.raises(UserError):
        load_checkpoint(evil)
    assert not (tmp_path / "marker").exists()


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}}, path)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(UserError, match="previous last.pt is kept"):
        save_checkpoint({"model": {"w": torch.zeros(2)}}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"], "no temporary file may be left behind"


# ------------------------------------------------------------------------------------ interruption
RESUMABLE = ["--dataset", "synthetic", "--image-size", "32", "--synthetic-size", "1536", "--batch-size", "32",
             "--workers", "0", "--no-progress", "--cache-dir", "", "--seed", "3", "--epochs", "3"]


def _comparable(metrics: dict) -> list[dict]:
    return [{k: v for k, v in h.items() if k != "epoch_time_s"} for h in metrics["history"]]


def _wait_for(predicate, process, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_kill_9_in_epoch_2_then_resume_equals_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    result = run_script("main_modern.py", [*RESUMABLE, "--model", "cnn", "--modern-training", "--output-dir", str(reference)])
    assert result.returncode == 0, result.stderr

    interrupted = tmp_path / "interrupted"
    process = start_script("main_modern.py", [*RESUMABLE, "--model", "cnn", "--modern-training",
                                              "--output-dir", str(interrupted)])
    metrics_file = interrupted / "metrics.json"
    _wait_for(lambda: metrics_file.exists() and len(json.loads(metrics_file.read_text())["history"]) == 1, process)
    time.sleep(0.6)  # well inside epoch 2 (an epoch takes a few seconds)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert len(json.loads(metrics_file.read_text())["history"]) == 1, "the kill must land in epoch 2"
    assert load_checkpoint(interrupted / "last.pt")["epoch"] == 1

    resumed = run_script("main_modern.py", ["--resume", "--output-dir", str(interrupted), "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr
    expected = _comparable(json.loads((reference / "metrics.json").read_text()))
    got = _comparable(json.loads(metrics_file.read_text()))
    assert len(got) == 3
    for want, have in zip(expected, got):
        for key in want:
            assert have[key] == pytest.approx(want[key], abs=1e-6), (key, want, have)


def test_sigint_saves_a_loadable_checkpoint_and_prints_how_to_resume(tmp_path):
    out = tmp_path / "run"
    process = start_script("main.py", [*RESUMABLE, "--output-dir", str(out)])
    _wait_for(lambda: (out / "config.json").exists(), process)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "--resume --output-dir" in lines[0] and "Traceback" not in stderr
    checkpoint = load_checkpoint(out / "last.pt")
    assert checkpoint["step_in_epoch"] > 0 or checkpoint["epoch"] > 0

    resumed = run_script("main.py", ["--resume", "--output-dir", str(out), "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 3


def test_a_diverging_run_stops_with_a_message_and_keeps_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "nan"
    result = run_script("main.py", [*SYNTHETIC, "--epochs", "3", "--optimizer", "sgd", "--lr", "1e30",
                                    "--output-dir", str(out)])
    assert result.returncode == 3, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "diverged" in lines[0] and "--lr" in lines[0]
    if (out / "last.pt").exists():
        state = load_checkpoint(out / "last.pt")
        assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_ctrl_c_outside_training_is_one_line_and_130():
    from utils.errors import exit_on_user_error

    def interrupted():
        with exit_on_user_error("main.py"):
            raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        interrupted()
    assert exit_.value.code == 130
