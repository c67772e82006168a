"""The device-resident data path and the sync-free step, against their per-image and library definitions."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.transforms import v2

import main_modern
from models import create_model
from utils.augmentation import cutout
from utils.config import TrainConfig
from utils.data.batch_augment import BatchAugment, crop_with_padding, cutout_masks, flip_where, normalize
from utils.data_loader import build_data
from utils.experiment import build_model
from utils.modern_trainer import ModelEMA, ema_decay_at
from utils.resolve import resolve
from utils.trainer import Trainer, train
from utils.training.run_record import default_eval_every
from utils.training.step_log import StepLog

from tests.conftest import SYNTHETIC, load_benchmark, run_main, train_and_read_metrics

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def _images(n: int = 6, size: int = 12) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------------ batched ops
def test_batched_crop_equals_padding_then_cropping_each_image():
    images = _images()
    offsets = torch.tensor([[0, 0], [8, 8], [3, 5], [8, 0], [0, 8], [4, 4]])
    cropped = crop_with_padding(images, 4, offsets)
    for n, (top, left) in enumerate(offsets.tolist()):
        expected = v2.functional.crop(v2.functional.pad(images[n], [4]), top, left, 12, 12)
        assert torch.equal(cropped[n], expected), n


def test_batched_flip_mirrors_exactly_the_chosen_images():
    images = _images()
    flip = torch.tensor([True, False, True, True, False, False])
    flipped = flip_where(images, flip)
    for n in range(6):
        expected = v2.functional.horizontal_flip(images[n]) if flip[n] else images[n]
        assert torch.equal(flipped[n], expected)


def test_batched_cutout_equals_the_per_image_cutout_at_the_same_centres():
    images = normalize(_images(), torch.tensor(MEAN), torch.tensor(STD))
    centers = torch.tensor([[0, 0], [11, 11], [5, 6], [0, 11], [6, 0], [2, 9]])  # corners clip the square
    masked = images.masked_fill(cutout_masks(12, 12, 5, centers), 0.0)
    for n, center in enumerate(centers.tolist()):
        assert torch.equal(masked[n], cutout(images[n], 5, center=tuple(center))), n
    inside = cutout_masks(12, 12, 5, torch.tensor([[6, 6]]))
    assert int(inside.sum()) == 25  # a centred square keeps its full area


def test_normalize_equals_torchvisions_to_dtype_and_normalize():
    images = _images()
    reference = v2.Normalize(list(MEAN), list(STD))(v2.ToDtype(torch.float32, scale=True)(images))
    torch.testing.assert_close(normalize(images, torch.tensor(MEAN), torch.tensor(STD)), reference)


def test_batch_augment_draws_every_offset_and_flips_about_half():
    augment = BatchAugment(padding=2, flip=True, cutout=None, mean=MEAN, std=STD, device=torch.device("cpu"))
    # A one-bright-pixel image at (row 3, column 2): where the pixel lands tells the offset and the flip drawn.
    image = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    image[..., 3, 2] = 255
    out = augment(image.expand(2000, -1, -1, -1).contiguous(), torch.Generator().manual_seed(0))
    bright = out[:, 0].flatten(1).argmax(1)
    rows, cols = (bright // 16).tolist(), (bright % 16).tolist()
    assert set(rows) == {1, 2, 3, 4, 5}  # moved by -2..+2
    assert set(cols) == {0, 1, 2, 3, 4} | {11, 12, 13, 14, 15}  # moved, and mirrored (15 - column)
    assert 0.45 < sum(c >= 11 for c in cols) / len(cols) < 0.55


# ------------------------------------------------------------------------------------ the two paths
def _config(**changes) -> TrainConfig:
    values = dict(dataset="synthetic", synthetic_size=96, image_size=16, batch_size=16, workers=0, progress=False,
                  seed=3)
    return resolve(TrainConfig(**{**values, **changes}))


def test_auto_picks_the_device_path_unless_a_per_image_policy_needs_workers():
    assert _config().data_mode == "device"
    assert _config(cutout=0, mixup=0.8).data_mode == "device"
    assert _config(augmentation="randaugment").data_mode == "memory"
    assert _config(random_erasing=0.25).data_mode == "memory"


def test_both_paths_give_the_same_batches_with_augmentation_off():
    device_data = build_data(_config(augmentation="none", data_mode="device"))
    memory_data = build_data(_config(augmentation="none", data_mode="memory"))
    for data in (device_data, memory_data):
        data.set_epoch(2)
    pairs = list(zip(device_data.train_loader, memory_data.train_loader))
    assert len(pairs) == 6
    for (a_images, a_labels), (b_images, b_labels) in pairs:
        torch.testing.assert_close(a_images, b_images)
        assert torch.equal(a_labels, b_labels)
    test_pairs = list(zip(device_data.test_loader, memory_data.test_loader))
    assert sum(len(a[1]) for a, _ in test_pairs) == device_data.test_loader.num_images
    for (a_images, _), (b_images, _) in test_pairs:
        torch.testing.assert_close(a_images, b_images)


def test_device_batches_are_a_function_of_seed_epoch_and_step():
    data = build_data(_config(cutout=0))
    data.set_epoch(4)
    full = [images for images, _ in data.train_loader]
    data.set_epoch(4, start_step=2)  # a run resumed mid-epoch
    resumed = [images for images, _ in data.train_loader]
    assert len(resumed) == len(full) - 2
    for a, b in zip(full[2:], resumed):
        assert torch.equal(a, b)
    data.set_epoch(5)
    assert not torch.equal(next(iter(data.train_loader))[0], full[0])


# ------------------------------------------------------------------------------------ EMA and the step
def test_model_ema_matches_torchs_averaged_model():
    torch.manual_seed(0)
    model = create_model("resnet_tiny", num_classes=4)
    reference = AveragedModel(model, use_buffers=True, multi_avg_fn=lambda e, p, n: get_ema_multi_avg_fn(
        ema_decay_at(int(n), 0.99))(e, p, n))
    ema = ModelEMA(model, 0.99)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(4):
        loss = model(torch.randn(4, 3, 32, 32)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        reference.update_parameters(model)
        ema.update_parameters(model)
    theirs, mine = reference.state_dict(), ema.state_dict()
    assert theirs.keys() == mine.keys()
    for key, value in theirs.items():
        if value.is_floating_point():  # (AveragedModel also lerps BatchNorm's integer batch counter; we copy it)
            torch.testing.assert_close(mine[key], value, rtol=1e-5, atol=1e-6, msg=key)
    restored = ModelEMA(model, 0.99)
    restored.load_state_dict(mine)
    assert restored.updates == 4


def test_the_training_step_reads_nothing_back_from_the_device(tmp_path, monkeypatch):
    """No .item(), .tolist(), bool() or float() of a tensor in a step of the loop: on a GPU each would be a sync.

    (MixUp/CutMix are left out: they draw their coin and λ from the CPU generator, host values that
    involve no device, but this CPU-only check cannot tell those tensors apart.)
    """
    config = _config(recipe="modern", clip_grad=1.0, ema=True, dropblock=0.1, model="resnet_tiny",
                     output_dir=str(tmp_path))
    data = build_data(config)
    trainer = Trainer(build_model(config, data.num_classes), data, config, tmp_path, torch.device("cpu"))
    train(trainer, max_steps=1)  # the first step builds optimizer state; then watch the next two

    def sync(*args, **kwargs):
        raise AssertionError("a host-device sync inside the training loop's step")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    train(trainer, max_steps=3)
    monkeypatch.undo()
    assert trainer.state.global_step == 3 and trainer.state.step_in_epoch == 3


def test_the_step_log_reads_each_step_once():
    log = StepLog(steps=5, start=1, device=torch.device("cpu"))
    for step in range(1, 4):
        log.record(step, torch.tensor(0.5 * step), torch.tensor(float(step)), count=2)
    assert log.read(3) == [(1, 1.0, 1.0, 2), (2, 2.0, 2.0, 2)]
    assert log.read(4) == [(3, 3.0, 3.0, 2)] and log.read(4) == []


def test_a_non_finite_loss_is_skipped_on_the_device_and_stops_the_run(tmp_path, capfd):
    out = tmp_path / "run"
    code, _, err = run_main(main_modern.main, [*SYNTHETIC, "--model", "cnn", "--epochs", "2", "--optimizer", "adamw",
                                               "--lr", "1e30", "--output-dir", str(out)], capfd)
    assert code == 3 and "training diverged" in err and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------------------------ evaluation schedule
def test_default_eval_every_keeps_evaluation_near_15_percent():
    assert default_eval_every(50_000, 10_000, 1) == 1  # full CIFAR-10: evaluation is cheap
    assert default_eval_every(10_000, 10_000, 2) == 4  # a 10k subset with EMA: every 4th epoch
    assert default_eval_every(1_000, 10_000, 1) == 19
    for train_images, test, evaluations in [(50_000, 10_000, 2), (10_000, 10_000, 1), (2_000, 1_000, 2)]:
        every = default_eval_every(train_images, test, evaluations)
        share = evaluations * test / (every * 3 * train_images + evaluations * test)
        assert share <= 0.15 + 1e-9, (train, test, evaluations)


def test_eval_every_evaluates_those_epochs_and_the_last(tmp_path, capfd):
    out = tmp_path / "run"
    _, metrics = train_and_read_metrics(main_modern.main, [*SYNTHETIC, "--epochs", "3", "--eval-every", "2"], out,
                                        capfd)
    assert [h["test_acc"] is not None for h in metrics["history"]] == [False, True, True]
    assert metrics["eval_every"] == 2 and metrics["final_test_acc"] == metrics["history"][-1]["test_acc"]
    assert metrics["total_time_s"] >= metrics["train_time_s"] + metrics["eval_time_s"] - 0.05
    assert (out / "curves.png").exists() and (out / "best.pt").exists()


def test_the_speed_benchmark_runs_and_reports_both_paths(tmp_path):
    speed = load_benchmark("speed")
    rows = speed.main(["--models", "cnn", "--steps", "2", "--warmup", "1", "--batch-size", "16", "--workers", "0",
                       "--no-progress", "--results-dir", str(tmp_path), "--output", "smoke"])
    assert [row["data_mode"] for row in rows] == ["device", "memory"]
    assert all(row["img_per_s"] > 0 and 0 <= row["input_share"] <= 1 for row in rows)
    assert rows[0]["speedup_vs_memory"] > 0
    assert json.loads((tmp_path / "smoke.json").read_text())["rows"] == rows
    again = speed.main(["--models", "cnn", "--modes", "device", "--steps", "1", "--warmup", "0", "--batch-size", "16",
                        "--no-progress", "--results-dir", str(tmp_path), "--output", "smoke"])
    assert json.loads((tmp_path / "smoke.json").read_text())["rows"] == rows  # the first run's files are kept
    assert json.loads((tmp_path / "smoke-2.json").read_text())["rows"] == again and (tmp_path / "smoke-2.md").exists()


@pytest.mark.parametrize("argv, message", [
    (["--device", "cuda"], "no CUDA GPU is visible"),
    (["--models", "nope"], "unknown model 'nope'"),
    (["--batch-size", "0"], "--batch-size: must be at least 1"),
    (["--data-dir", "/no/such/folder"], "does not exist"),
    (["--steps", "0"], "--steps: must be at least 1"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_the_speed_benchmark_refuses_bad_input_in_one_line(tmp_path, argv, message):
    if argv == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("CUDA is here")
    done = subprocess.run([sys.executable, "benchmarks/speed.py", *argv, "--results-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.slow  # torch.compile on the CPU: a C++ toolchain and tens of seconds
def test_the_speed_benchmark_compares_precisions_side_by_side(tmp_path):
    speed = load_benchmark("speed")
    rows = speed.main(["--models", "cnn", "--precisions", "fp32", "fp32-compile", "--modes", "device", "--steps", "1",
                       "--warmup", "1", "--batch-size", "16", "--no-progress", "--results-dir", str(tmp_path),
                       "--output", "precisions"])
    assert [row["precision"] for row in rows] == ["fp32", "fp32-compile"]
    assert rows[0]["speedup_vs_fp32"] == 1.0 and rows[1]["speedup_vs_fp32"] > 0
    assert rows[1]["first_steps_s"] > rows[0]["first_steps_s"] + 1.0  # the compilation fell in the warm-up
    assert "| cnn | device | fp32-compile |" in (tmp_path / "precisions.md").read_text()
