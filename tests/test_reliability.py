"""Reliability: interrupted runs resume exactly; checkpoints are safe. (The bad-input table: test_bad_inputs.py.)"""
import json
import pickle
import signal
import time

import pytest
import torch

from utils.errors import UserError
from utils.training.checkpoint import load_checkpoint, save_checkpoint

from tests.conftest import SYNTHETIC, RunsCode, run_script, start_script, wait_for


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
    return [{k: v for k, v in h.items() if not k.endswith("_time_s")} for h in metrics["history"]]



@pytest.mark.parametrize("data_mode", ["device", "memory"])
def test_kill_9_in_epoch_2_then_resume_equals_an_uninterrupted_run(tmp_path, data_mode):
    reference = tmp_path / "reference"
    flags = [*RESUMABLE, "--model", "cnn", "--modern-training", "--data-mode", data_mode]
    result = run_script("main_modern.py", [*flags, "--output-dir", str(reference)])
    assert result.returncode == 0, result.stderr

    interrupted = tmp_path / "interrupted"
    process = start_script("main_modern.py", [*flags, "--output-dir", str(interrupted)])
    metrics_file = interrupted / "metrics.json"
    wait_for(lambda: metrics_file.exists() and len(json.loads(metrics_file.read_text())["history"]) == 1, process)
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
    wait_for(lambda: (out / "config.json").exists(), process)
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


def test_export_names_are_claimed_whole_so_two_exports_at_once_never_share_one(tmp_path):
    """The first export takes best.*; a second (at the same time) finds the files made and takes best-2.*; a name
    half taken (best-3.pt2 made by someone else) is released and the next one taken whole."""
    from utils.files import claim_stem

    suffixes = [".onnx", ".pt2"]
    assert claim_stem(tmp_path, "best", suffixes) == "best"
    assert claim_stem(tmp_path, "best", suffixes) == "best-2"
    (tmp_path / "best-3.pt2").write_text("another program's")
    assert claim_stem(tmp_path, "best", suffixes) == "best-4"
    assert not (tmp_path / "best-3.onnx").exists()  # released: it was claimed only with its partner
    assert (tmp_path / "best-3.pt2").read_text() == "another program's"
