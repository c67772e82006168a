"""Data-parallel training under torchrun on the CPU (gloo): shards, gradient averaging, checkpoints, resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from utils.data.device_loader import DeviceLoader
from utils.data.order import epoch_order
from utils.data.splits import ImageTensors
from utils.data.torch_loader import EpochBatchSampler
from utils.training.checkpoint import load_checkpoint

from tests.conftest import REPO, run_script, wait_for

# A model without BatchNorm (vit_tiny: LayerNorm is per image), so per-process batches of 32 compute
# exactly what one batch of 64 does; no augmentation, no weight decay, constant LR.
EQUIVALENT = ["--model", "vit_tiny", "--dataset", "synthetic", "--synthetic-size", "256", "--image-size", "16",
              "--epochs", "1", "--augmentation", "none", "--optimizer", "sgd", "--weight-decay", "0", "--scheduler",
              "none", "--device", "cpu", "--no-progress", "--cache-dir", "", "--seed", "3"]


def torchrun(processes: int, argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            str(REPO / "main_modern.py"), *argv]


def run_torchrun(processes: int, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun(processes, argv), capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.mark.parametrize("world_size", [2, 3])
def test_each_process_has_a_disjoint_shard_and_together_they_are_the_epoch(world_size):
    size, batch, seed, epoch = 100, 8, 5, 2
    global_batch = batch * world_size
    steps = size // global_batch
    samplers = [EpochBatchSampler(size, batch, seed, rank, world_size) for rank in range(world_size)]
    split = ImageTensors(torch.zeros(size, 3, 4, 4, dtype=torch.uint8), torch.arange(size))
    loaders = [DeviceLoader(split, batch, torch.device("cpu"), (0, 0, 0), (1, 1, 1), seed=seed, shuffle=True,
                            rank=rank, world_size=world_size) for rank in range(world_size)]
    for sampler, loader in zip(samplers, loaders):
        sampler.set_epoch(epoch)
        loader.set_epoch(epoch)
    by_sampler = [list(sampler) for sampler in samplers]
    by_loader = [[labels.tolist() for _, labels in loader] for loader in loaders]  # labels = image indices
    assert by_sampler == by_loader  # both data paths shard alike
    order = epoch_order(size, seed, epoch).tolist()
    for step in range(steps):
        shards = [by_sampler[rank][step] for rank in range(world_size)]
        flat = [i for shard in shards for i in shard]
        assert len(set(flat)) == global_batch  # disjoint
        assert flat == order[step * global_batch:(step + 1) * global_batch]  # = one process's global batch


def test_two_processes_of_32_train_the_weights_of_one_process_of_64(tmp_path):
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    result = run_torchrun(2, [*EQUIVALENT, "--batch-size", "32", "--output-dir", str(ddp)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 processes x batch 32 = global batch 64" in result.stdout
    assert result.stdout.count("done: vit_tiny") == 1  # only rank 0 prints
    result = run_script("main_modern.py", [*EQUIVALENT, "--batch-size", "64", "--output-dir", str(single)])
    assert result.returncode == 0, result.stderr
    a, b = load_checkpoint(ddp / "last.pt")["model"], load_checkpoint(single / "last.pt")["model"]
    assert a.keys() == b.keys()  # the unwrapped model: no "module." prefixes
    for key in a:
        # DDP averages the two halves' gradients; a sum in another order differs in the last bits (fp32)
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    metrics = json.loads((ddp / "metrics.json").read_text())
    assert metrics["test_images"] == json.loads((single / "metrics.json").read_text())["test_images"]
    assert metrics["history"][0]["test_acc"] == pytest.approx(
        json.loads((single / "metrics.json").read_text())["history"][0]["test_acc"], abs=1e-6)
    assert json.loads((ddp / "metrics.json").read_text())["world_size"] == 2
    # The DDP run's checkpoint evaluates in a single process.
    evaluated = run_script("main_modern.py", ["--evaluate", str(ddp / "best.pt"), "--device", "cpu"])
    assert evaluated.returncode == 0 and "vit_tiny from" in evaluated.stdout, evaluated.stderr


def test_the_speed_preset_trains_past_its_whitening_freeze_under_torchrun_and_resumes(tmp_path):
    """The frozen whitening bias stays in the set of gradients DDP reduces: epochs after the freeze train (they
    stalled DDP when the bias stopped requiring a gradient), a resume continues past it, and the bias no longer
    moves."""
    out = tmp_path / "preset"
    argv = ["--preset", "speed", "--whitening-bias-epochs", "1", "--low-res-epochs", "0", "--dataset", "synthetic",
            "--synthetic-size", "128", "--image-size", "16", "--batch-size", "16", "--device", "cpu", "--no-progress",
            "--cache-dir", "", "--output-dir", str(out)]
    result = run_torchrun(2, [*argv, "--epochs", "2"])
    assert result.returncode == 0, result.stderr[-3000:]
    bias = load_checkpoint(out / "last.pt")["model"]["whiten.bias"]
    result = run_torchrun(2, ["--epochs", "4", "--resume", "--output-dir", str(out), "--device", "cpu",
                              "--no-progress"])
    assert result.returncode == 0, result.stderr[-3000:]
    saved = load_checkpoint(out / "last.pt")
    assert saved["epoch"] == 4 and torch.equal(saved["model"]["whiten.bias"], bias)
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 4


def test_sync_bn_on_a_cpu_is_one_line(tmp_path):
    result = run_script("main_modern.py", ["--dataset", "synthetic", "--sync-bn", "--device", "cpu",
                                           "--output-dir", str(tmp_path / "run")])
    assert result.returncode == 2 and result.stderr.strip() == (
        "main_modern.py: error: --sync-bn needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only); drop it on a CPU")


def test_a_process_with_no_test_images_does_not_hang_the_evaluation(tmp_path):
    """One test image, two processes: rank 1's share is empty, and it must still meet rank 0 in every collective."""
    result = run_torchrun(2, ["--dataset", "synthetic", "--synthetic-size", "64", "--image-size", "16", "--epochs", "1",
                              "--device", "cpu", "--workers", "0", "--batch-size", "8", "--test-subset", "1",
                              "--no-progress", "--output-dir", str(tmp_path / "run")])
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_images"] == 1 and metrics["history"][-1]["test_acc"] in (0.0, 100.0)


# 96 steps an epoch: more than the 50 between the processes' checks for a stop signal, so Ctrl-C stops mid-epoch
RESUMABLE = ["--model", "cnn", "--dataset", "synthetic", "--image-size", "32", "--synthetic-size", "3072",
             "--batch-size", "16", "--no-progress", "--cache-dir", "", "--seed", "3", "--epochs", "2", "--device", "cpu"]


def descendants(pid: int) -> list[int]:
    """Every process started (directly or not) by ``pid`` (torchrun's workers run in their own groups)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [p for child in map(int, children) for p in (*descendants(child), child)]


@pytest.mark.slow
def test_a_killed_two_process_run_resumed_with_torchrun_equals_an_uninterrupted_one(tmp_path):
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    result = run_torchrun(2, [*RESUMABLE, "--output-dir", str(reference)])
    assert result.returncode == 0, result.stderr[-3000:]
    process = subprocess.Popen(torchrun(2, [*RESUMABLE, "--output-dir", str(interrupted)]), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics_file = interrupted / "metrics.json"
    wait_for(lambda: metrics_file.exists() and len(json.loads(metrics_file.read_text())["history"]) == 1, process)
    for pid in [*descendants(process.pid), process.pid]:  # both workers and torchrun, with no warning
        os.kill(pid, signal.SIGKILL)
    process.wait()
    result = run_torchrun(2, ["--resume", "--output-dir", str(interrupted), "--no-progress"])
    assert result.returncode == 0, result.stderr[-3000:]
    want = [{k: v for k, v in h.items() if not k.endswith("_time_s")}
            for h in json.loads((reference / "metrics.json").read_text())["history"]]
    got = [{k: v for k, v in h.items() if not k.endswith("_time_s")} for h in json.loads(metrics_file.read_text())["history"]]
    assert len(got) == 2
    for a, b in zip(want, got):
        for key in a:
            assert b[key] == pytest.approx(a[key], abs=1e-6), (key, a, b)


@pytest.fixture(scope="module")
def uninterrupted_history(tmp_path_factory) -> list[dict]:
    """The history of RESUMABLE run by torchrun (2 processes) without interruption, timings left out."""
    reference = tmp_path_factory.mktemp("torchrun-reference")
    result = run_torchrun(2, [*RESUMABLE, "--output-dir", str(reference)])
    assert result.returncode == 0, result.stderr[-3000:]
    return untimed_history(reference)


def untimed_history(run) -> list[dict]:
    return [{k: v for k, v in h.items() if not k.endswith("_time_s")}
            for h in json.loads((run / "metrics.json").read_text())["history"]]


def assert_same_history(want: list[dict], got: list[dict]) -> None:
    assert len(got) == len(want) == 2
    for a, b in zip(want, got):
        for key in a:
            assert b[key] == pytest.approx(a[key], abs=1e-6), (key, a, b)


def start_torchrun(argv: list[str], *torchrun_flags: str, **options) -> subprocess.Popen:
    command = torchrun(2, argv)
    command[command.index("--standalone"):command.index("--standalone")] = list(torchrun_flags)
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"}, **options)


def wait_for_epochs(run, process: subprocess.Popen, epochs: int) -> None:
    metrics_file = run / "metrics.json"
    wait_for(lambda: metrics_file.exists() and len(json.loads(metrics_file.read_text())["history"]) == epochs, process)


def test_torchrun_max_restarts_resumes_a_killed_worker_and_ends_as_an_uninterrupted_run(tmp_path, uninterrupted_history):
    """kill -9 of one worker: torchrun --max-restarts 1 starts both again, they resume from last.pt by themselves."""
    restarted = tmp_path / "restarted"
    process = start_torchrun([*RESUMABLE, "--output-dir", str(restarted)], "--max-restarts=1")
    wait_for_epochs(restarted, process, 1)
    workers = [int(pid) for pid in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True,
                                                  text=True).stdout.split()]
    assert len(workers) == 2
    os.kill(workers[-1], signal.SIGKILL)  # one worker dies without a word; torchrun restarts the group
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0 and "Traceback" not in output, output[-3000:]
    assert "resumed from" in output
    assert_same_history(uninterrupted_history, untimed_history(restarted))


def test_ctrl_c_to_a_torchrun_run_saves_mid_epoch_says_how_to_resume_once_and_resumes_exactly(tmp_path,
                                                                                               uninterrupted_history):
    run = tmp_path / "interrupted"
    process = start_torchrun([*RESUMABLE, "--output-dir", str(run)], start_new_session=True)
    wait_for_epochs(run, process, 1)
    time.sleep(0.3)  # into epoch 2 (an epoch takes seconds); the processes agree to stop at its step 50
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches torchrun and both workers
    output, _ = process.communicate(timeout=300)
    stopped = [line for line in output.splitlines() if "stopped: SIGINT received" in line]
    assert len(stopped) == 1, output[-3000:]  # rank 0 says it; rank 1 stops quietly
    assert "run the same torchrun command (--nproc_per_node 2) with --resume" in stopped[0]
    checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint["step_in_epoch"] > 0, (checkpoint["epoch"], output[-2000:])  # saved mid-epoch
    result = run_torchrun(2, ["--resume", "--output-dir", str(run), "--no-progress"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_history(uninterrupted_history, untimed_history(run))
