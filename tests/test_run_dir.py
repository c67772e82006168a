"""Run folders never lose work: unique default names, one run per folder, full disks, refused resumes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import main as main_script
import main_modern
from utils import trainer as trainer_module
from utils.errors import UserError
from utils.training.checkpoint import load_checkpoint
from utils.training.run_dir import LOCK_NAME, RunLock, claim_run_dir, unique_run_dir

from tests.conftest import REPO, SYNTHETIC, run_main, run_script, start_script, wait_for

LONG_RUN = ["--dataset", "synthetic", "--image-size", "32", "--synthetic-size", "2048", "--batch-size", "32",
            "--workers", "0", "--no-progress", "--cache-dir", "", "--epochs", "2"]



# ------------------------------------------------------------------------------------ names and locks
def test_default_run_folders_are_unique_within_one_second(tmp_path):
    made = []
    threads = [threading.Thread(target=lambda: made.append(unique_run_dir(tmp_path, "cnn"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8 and all(path.is_dir() for path in made)


def test_two_processes_on_one_folder_the_second_refuses(tmp_path):
    out = tmp_path / "shared"
    first = start_script("main.py", [*LONG_RUN, "--output-dir", str(out)])
    wait_for(lambda: (out / "config.json").exists(), first)
    second = run_script("main.py", [*LONG_RUN, "--output-dir", str(out)])
    assert second.returncode == 2, second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"in use by another run (pid {first.pid})" in lines[0]
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 2
    assert not (out / LOCK_NAME).exists(), "the lock is removed when the run ends"
    assert not list(out.glob("*.tmp")), "no temporary files are left"


def test_a_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    out = tmp_path / "run"
    process = start_script("main.py", [*LONG_RUN, "--output-dir", str(out)])
    wait_for(lambda: (out / "last.pt").exists(), process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (out / LOCK_NAME).read_text().strip() == str(process.pid)  # left behind by kill -9
    resumed = run_script("main.py", ["--resume", "--output-dir", str(out), "--no-progress"])
    assert resumed.returncode == 0, resumed.stderr
    assert not (out / LOCK_NAME).exists()


def test_a_lock_is_exclusive_across_open_files_and_released(tmp_path):
    first = RunLock(tmp_path)
    first.acquire()
    with pytest.raises(UserError, match=f"pid {os.getpid()}"):
        RunLock(tmp_path).acquire()
    first.release()
    with claim_run_dir(str(tmp_path), "cnn", resume=False) as run_dir:
        assert (run_dir / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert not (tmp_path / LOCK_NAME).exists()


# ------------------------------------------------------------------------------------ full disk
def test_a_full_disk_keeps_the_last_checkpoint_and_leaves_no_temporary_file(tmp_path, monkeypatch, capfd):
    """Writing fails on the second epoch's save: one line, exit 2, last.pt of epoch 1 intact."""
    out = tmp_path / "run"
    real_save = torch.save
    calls = {"n": 0}

    def save(obj, target, *args, **kwargs):
        if str(target).endswith(".tmp") and "last.pt" in str(target):
            calls["n"] += 1
            if calls["n"] == 2:
                Path(target).write_bytes(b"partial")  # a half-written file, as a full disk leaves it
                raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file")
        return real_save(obj, target, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    code, _, err = run_main(main_script.main, [*SYNTHETIC, "--epochs", "3", "--output-dir", str(out)], capfd)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "cannot write" in err and "last.pt" in err and "the previous last.pt is kept" in err
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="mounting a tmpfs needs root on Linux")
def test_a_real_full_disk(tmp_path):
    """A run on a 40 MB tmpfs: the first epoch's two checkpoints fit, the second epoch's do not."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        out = mount / "run"
        result = run_script("main.py", [*SYNTHETIC, "--epochs", "4", "--output-dir", str(out)])
        assert result.returncode == 2, (result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "No space left on device" in lines[0] and "Traceback" not in result.stderr
        assert load_checkpoint(out / "last.pt")["epoch"] >= 1
        assert not [p.name for p in out.iterdir() if ".tmp" in p.name]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# ------------------------------------------------------------------------------------ resume
def test_resume_with_another_batch_size_at_an_epoch_boundary_continues_the_schedule(tmp_path, capfd):
    out = tmp_path / "run"
    code, _, err = run_main(main_modern.main, [*SYNTHETIC, "--modern-training", "--epochs", "1", "--batch-size", "16",
                                               "--output-dir", str(out)], capfd)
    assert code == 0, err
    code, stdout, err = run_main(main_modern.main, ["--resume", "--output-dir", str(out), "--epochs", "2",
                                                    "--batch-size", "32", "--no-progress"], capfd)
    assert code == 0, err
    assert "batch size 16 -> 32, schedule at step 4" in stdout  # 128 images: one epoch is 4 steps of 32
    checkpoint = load_checkpoint(out / "last.pt")
    assert checkpoint["global_step"] == 8 and checkpoint["config"]["batch_size"] == 32


def test_evaluate_says_it_uses_the_checkpoints_model(tmp_path, capfd):
    out = tmp_path / "run"
    assert run_main(main_script.main, [*SYNTHETIC, "--epochs", "1", "--output-dir", str(out)], capfd)[0] == 0
    code, stdout, err = run_main(main_modern.main, ["--evaluate", str(out / "best.pt"), "--model", "resnet18",
                                                    *SYNTHETIC], capfd)
    assert code == 0, err
    assert "--model resnet18 ignored" in stdout and "holds model cnn" in stdout and "cnn from" in stdout


def test_a_timestamp_seed_works(tmp_path, capfd):
    seed = str(time.time_ns())
    code, _, err = run_main(main_script.main, [*SYNTHETIC, "--epochs", "1", "--seed", seed,
                                               "--output-dir", str(tmp_path / "run")], capfd)
    assert code == 0, err


# ------------------------------------------------------------------------------------ divergence and signals
def test_a_non_finite_test_loss_stops_the_run_with_exit_3(tmp_path, monkeypatch, capfd):
    real_evaluate = trainer_module.evaluate

    def overflowing(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        return {**result, "loss": float("nan")}

    monkeypatch.setattr(trainer_module, "evaluate", overflowing)
    out = tmp_path / "run"
    code, stdout, err = run_main(main_script.main, [*SYNTHETIC, "--epochs", "2", "--output-dir", str(out)], capfd)
    assert code == 3, (stdout, err)
    assert len(err.strip().splitlines()) == 1 and "test loss of the raw weights is nan" in err
    assert "done:" not in stdout and not (out / "best.pt").exists()


def test_a_signal_during_evaluation_stops_there_and_resumes_exactly(tmp_path, monkeypatch, capfd):
    reference = tmp_path / "reference"
    argv = [*SYNTHETIC, "--epochs", "2", "--seed", "5", "--batch-size", "32"]  # 4 steps an epoch
    assert run_main(main_script.main, [*argv, "--output-dir", str(reference)], capfd)[0] == 0

    real_evaluate = trainer_module.evaluate
    calls = {"n": 0}

    def interrupted_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # epoch 2's evaluation: Ctrl-C arrives while it runs
            os.kill(os.getpid(), signal.SIGINT)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", interrupted_once)
    out = tmp_path / "run"
    code, _, err = run_main(main_script.main, [*argv, "--output-dir", str(out)], capfd)
    assert code == 130 and len(err.strip().splitlines()) == 1 and "SIGINT received" in err, err
    checkpoint = load_checkpoint(out / "last.pt")
    assert checkpoint["epoch"] == 1 and checkpoint["step_in_epoch"] == 4  # epoch 2 trained, not yet evaluated
    assert checkpoint["totals"]["time_s"] > 0  # the interrupted epoch's time is kept

    monkeypatch.setattr(trainer_module, "evaluate", real_evaluate)
    assert run_main(main_script.main, ["--resume", "--output-dir", str(out), "--no-progress"], capfd)[0] == 0
    want = json.loads((reference / "metrics.json").read_text())["history"]
    got = json.loads((out / "metrics.json").read_text())["history"]
    assert [{k: v for k, v in h.items() if not k.endswith("_time_s")} for h in got] == \
           [{k: v for k, v in h.items() if not k.endswith("_time_s")} for h in want]


@pytest.mark.parametrize("delay", [0.4, 1.2, 2.0])
def test_ctrl_c_at_any_moment_of_start_up_is_one_line_and_130(delay):
    """Python is up after ~0.1 s; importing torch and building 11 models for --list-models take seconds."""
    process = subprocess.Popen([sys.executable, str(REPO / "main_modern.py"), "--list-models"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    if process.returncode == 0:
        pytest.skip(f"the listing finished within {delay} s on this machine")
    assert process.returncode == 130, stderr
    assert stderr.strip() == "main_modern.py: interrupted"


def test_a_run_resumed_on_another_kind_of_device_gets_that_devices_precision(monkeypatch):
    from utils.config import TrainConfig
    from utils.resolve import resolve_for_device

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    started_on_cpu = TrainConfig(recipe="modern", amp=False, amp_dtype="bf16", channels_last=False, resume=True,
                                 output_dir="x", resolved_for="cpu", user_settings=["recipe"])
    config, note = resolve_for_device(started_on_cpu, torch.device("cuda"))
    assert (config.amp, config.amp_dtype, config.channels_last, config.resolved_for) == (True, "bf16", True, "cuda")
    assert "started on cpu, continues on cuda: AMP bf16, channels_last on" in note
    # what the user set stays as set
    kept, _ = resolve_for_device(started_on_cpu.replace(user_settings=["amp"]), torch.device("cuda"))
    assert kept.amp is False and kept.channels_last is True
    # same device: nothing moves
    same, note = resolve_for_device(started_on_cpu, torch.device("cpu"))
    assert (same.amp, same.channels_last, note) == (False, False, "")


def test_a_run_that_failed_before_its_first_epoch_ended_leaves_a_folder_a_new_run_takes(tmp_path, capfd):
    """A diverged first epoch (or a crash before the first checkpoint) leaves only config.json: nothing to resume,
    so --resume refuses it, and the same command without --resume starts over in it."""
    run = tmp_path / "run"
    code, _, err = run_main(main_modern.main, [*SYNTHETIC, "--epochs", "1", "--lr", "1e6", "--optimizer", "sgd",
                                               "--output-dir", str(run)], capfd)
    assert code == 3, err  # the loss diverged in the first epoch (exit 3)
    assert (run / "config.json").exists() and not (run / "last.pt").exists()
    code, _, err = run_main(main_modern.main, ["--resume", "--output-dir", str(run), "--no-progress"], capfd)
    assert code == 2 and "start the run without --resume" in err
    code, _, err = run_main(main_modern.main, [*SYNTHETIC, "--epochs", "1", "--output-dir", str(run)], capfd)
    assert code == 0, err
    assert json.loads((run / "config.json").read_text())["lr"] != 1e6 and (run / "last.pt").exists()
