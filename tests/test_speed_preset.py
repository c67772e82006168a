"""The speed preset: the whitening layer, TTA invariances, the preset's config, and a short run on CPU."""
from __future__ import annotations

import json

import torch
from torch import nn

import main_modern
from models import create_model
from models.speednet import PatchWhitening, patch_covariance
from utils.evaluation import predict
from utils.presets import PRESETS
from utils.resolve import resolve

from tests.conftest import SYNTHETIC, run_main, train_and_read_metrics


def _correlated_images(n: int = 64, size: int = 12) -> torch.Tensor:
    """Images whose channels and neighbouring pixels are strongly correlated (as real images are)."""
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(n, 1, size, size, generator=generator)
    smooth = nn.functional.avg_pool2d(base, 3, stride=1, padding=1)  # neighbours share values
    mix = torch.tensor([[1.0], [0.8], [0.5]]).view(1, 3, 1, 1)
    return smooth * mix + 0.1 * torch.randn(n, 3, size, size, generator=generator)


def test_whitening_gives_identity_covariance_on_its_patches():
    images = _correlated_images()
    layer = PatchWhitening(3, kernel_size=2, eps=1e-8)
    before = patch_covariance(images, 2)
    assert (before - torch.eye(12, dtype=before.dtype)).abs().max() > 0.5  # far from white to start with
    layer.fit(images)
    with torch.no_grad():
        out = layer(images) - layer.bias.view(1, -1, 1, 1)
    half = out[:, :12].permute(1, 0, 2, 3).reshape(12, -1).double()  # the second half is the negatives
    covariance = half @ half.T / half.shape[1]
    torch.testing.assert_close(covariance, torch.eye(12, dtype=torch.float64), atol=1e-3, rtol=0)
    torch.testing.assert_close(out[:, 12:], -out[:, :12])


def test_whitening_weight_gets_no_gradient_and_is_not_optimized():
    model = create_model("speednet", image_size=16)
    model.init_from_data(torch.randn(32, 3, 16, 16))
    frozen = model.whiten.weight.clone()
    model(torch.randn(4, 3, 16, 16)).sum().backward()
    assert model.whiten.weight.grad is None and model.whiten.bias.grad is not None
    from utils.config import TrainConfig
    from utils.modern_trainer import build_optimizer

    config = resolve(TrainConfig(**{**PRESETS["speed"], "image_size": 16}))
    optimizer = build_optimizer(model, config)
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert id(model.whiten.weight) not in optimized and id(model.whiten.bias) in optimized
    optimizer.step()
    assert torch.equal(model.whiten.weight, frozen)


class FlipInvariant(nn.Module):
    """Logits of the image plus its mirror: the same for an image and its flip, by construction."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 5))

    def forward(self, x):
        return self.net(x) + self.net(x.flip(-1))


def test_flip_tta_of_a_flip_invariant_model_is_plain_evaluation():
    torch.manual_seed(0)
    model, images = FlipInvariant().eval(), torch.randn(6, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(predict(model, images, "flip"), predict(model, images, "none"))


def test_flip_translate_on_a_constant_image_is_plain_evaluation():
    # Zero is the padding value (the data set's mean after normalization): a zero image stays itself
    # under every shift, so all six views are the same image.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)).eval()
    images = torch.zeros(3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(predict(model, images, "flip-translate"), predict(model, images, "none"))


PRESET_RUN = [*SYNTHETIC, "--preset", "speed", "--batch-size", "32", "--eval-batch-size", "32"]


def test_the_preset_trains_and_its_config_round_trips_through_resume(tmp_path, capfd):
    out = tmp_path / "run"
    stdout, metrics = train_and_read_metrics(main_modern.main, [*PRESET_RUN, "--epochs", "1"], out, capfd)
    assert "speednet" in stdout and metrics["model"] == "speednet" and metrics["data_mode"] == "device"
    config = json.loads((out / "config.json").read_text())
    for key, value in PRESETS["speed"].items():
        if key not in ("batch_size", "epochs"):  # set on the command line above: the flags win
            assert config[key] == value, key
    assert config["preset"] == "speed" and config["batch_size"] == 32
    # Resume for a second epoch: the preset's settings come back from the run, not from the flags.
    code, stdout, err = run_main(main_modern.main, ["--resume", "--output-dir", str(out), "--epochs", "2",
                                                    "--no-progress"], capfd)
    assert code == 0, err
    resumed = json.loads((out / "config.json").read_text())
    assert {k: resumed[k] for k in PRESETS["speed"]} == {**PRESETS["speed"], "batch_size": 32, "epochs": 2}
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    code, stdout, err = run_main(main_modern.main, ["--evaluate", str(out / "best.pt"), *SYNTHETIC], capfd)
    assert code == 0 and "speednet" in stdout, err


def test_explicit_flags_override_the_preset(tmp_path, capfd):
    out = tmp_path / "run"
    train_and_read_metrics(main_modern.main, [*PRESET_RUN, "--epochs", "1", "--lr", "0.05", "--tta", "none",
                                              "--label-smoothing", "0", "--momentum", "0.5"], out, capfd)
    config = json.loads((out / "config.json").read_text())
    assert (config["lr"], config["tta"], config["label_smoothing"], config["momentum"]) == (0.05, "none", 0.0, 0.5)
    assert config["optimizer"] == "muon" and config["crop_padding"] == 2  # the rest still from the preset
    assert {"lr", "tta", "label_smoothing", "momentum"} <= set(config["user_settings"])


def test_alternating_flip_shows_each_image_both_ways_over_two_epochs():
    from utils.data.batch_augment import BatchAugment
    from utils.data.device_loader import DeviceLoader
    from utils.data.order import epoch_order
    from utils.data.splits import ImageTensors

    n = 16
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    split = ImageTensors(images, torch.zeros(n, dtype=torch.long))
    mean, std = (0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)  # normalization that keeps the pixel values
    augment = BatchAugment(padding=0, flip=True, cutout=None, mean=mean, std=std, device=torch.device("cpu"))
    loader = DeviceLoader(split, n, torch.device("cpu"), mean, std, seed=3, shuffle=False, augment=augment,
                          alternating_flip=True)
    loader.shuffle = True  # one batch of all images, in epoch_order
    loader.drop_last, loader.steps_per_epoch = False, 1
    flipped = []
    for epoch in range(3):
        loader.set_epoch(epoch)
        (batch, _), = list(loader)
        by_index = torch.empty_like(batch)
        by_index[epoch_order(n, 3, epoch)] = batch
        flipped.append(torch.tensor([not torch.equal(by_index[i], images[i].float()) for i in range(n)]))
    assert torch.equal(flipped[1], ~flipped[0]) and torch.equal(flipped[2], flipped[0])
    assert 0 < int(flipped[0].sum()) < n  # the even-epoch orientation itself is random per image


# ------------------------------------------------------------------------------------ accuracy against time
PROBED = [*SYNTHETIC, "--model", "cnn", "--epochs", "3", "--batch-size", "32", "--eval-every", "3", "--seed", "5"]


def test_probes_record_accuracy_every_epoch_and_change_nothing_else(tmp_path, capfd):
    _, plain = train_and_read_metrics(main_modern.main, PROBED, tmp_path / "plain", capfd)
    stdout, probed = train_and_read_metrics(main_modern.main, [*PROBED, "--probe-images", "20"], tmp_path / "probed",
                                            capfd)
    assert [h["probe_acc"] is not None for h in probed["history"]] == [True, True, True]
    assert all(0 <= h["probe_acc"] <= 100 and h["probe_time_s"] >= 0 for h in probed["history"])
    assert "probe_acc" not in plain["history"][0] and "| probe " in stdout
    # the probes read the weights and draw no random numbers: training is the same, loss for loss
    keys = ("train_loss", "train_acc", "test_acc", "test_loss")
    assert [[h[k] for k in keys] for h in plain["history"]] == [[h[k] for k in keys] for h in probed["history"]]


def test_the_probe_of_the_last_epoch_is_the_accuracy_on_those_images(tmp_path, capfd):
    """With every test image probed and no TTA, the last probe is the final test accuracy (same weights, same images)."""
    _, metrics = train_and_read_metrics(main_modern.main, [*PROBED, "--test-subset", "24", "--probe-images", "24"],
                                        tmp_path / "run", capfd)
    last = metrics["history"][-1]
    assert last["probe_acc"] == last["test_acc"]


def test_the_time_to_accuracy_plot_is_drawn(tmp_path):
    from utils.visualization import plot_time_to_accuracy

    history = [{"epoch": e, "epoch_time_s": 60.0, "probe_acc": 50.0 + e} for e in range(1, 4)]
    plot_time_to_accuracy({"preset": history}, tmp_path / "t.png", title="probe")
    assert (tmp_path / "t.png").stat().st_size > 1000


def test_time_to_accuracy_script_draws_runs_and_refuses_a_run_without_probes(tmp_path, capfd):
    import subprocess
    import sys

    _, _ = train_and_read_metrics(main_modern.main, [*PROBED, "--probe-images", "20"], tmp_path / "probed", capfd)
    _, _ = train_and_read_metrics(main_modern.main, PROBED, tmp_path / "plain", capfd)
    script = [sys.executable, "benchmarks/time_to_accuracy.py"]
    done = subprocess.run([*script, str(tmp_path / "probed"), "--out", str(tmp_path / "t.png")], capture_output=True,
                          text=True)
    assert done.returncode == 0 and "epoch  3" in done.stdout and (tmp_path / "t.png").exists(), done.stderr
    refused = subprocess.run([*script, str(tmp_path / "plain"), "--out", str(tmp_path / "u.png")], capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "--probe-images" in refused.stderr and len(refused.stderr.splitlines()) == 1
