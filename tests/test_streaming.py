"""--data-mode stream: the same batches as the decoded tensor, errors named in one line, auto's choice."""
from __future__ import annotations

import json

import torch

import main_modern
from utils.config import TrainConfig
from utils.data.splits import ImageFiles, LazyImages
from utils.data.memory_fit import should_stream
from utils.data_loader import build_data
from utils.resolve import resolve

from tests.conftest import run_main, write_image_folder


def _batches(folder, mode: str, epoch: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    config = resolve(TrainConfig(data_dir=str(folder), data_mode=mode, augmentation="none", batch_size=4, workers=2,
                                 cache_dir="", progress=False, user_settings=["data_mode"]))
    data = build_data(config)
    data.set_epoch(epoch)
    return data, [(images.clone(), labels.clone()) for images, labels in data.train_loader]


def test_stream_and_memory_give_the_same_batches(tmp_path):
    folder = write_image_folder(tmp_path / "images", per_class=6)
    streamed, stream_batches = _batches(folder, "stream")
    held, memory_batches = _batches(folder, "memory")
    assert streamed.data_mode == "stream" and held.data_mode == "memory"
    assert isinstance(streamed.train_loader.dataset.split, ImageFiles)
    assert len(stream_batches) == len(memory_batches) == 4  # 18 images, batches of 4, the last dropped
    for (a, la), (b, lb) in zip(stream_batches, memory_batches):
        assert torch.equal(la, lb) and torch.equal(a, b)  # same order, same pixels
    assert torch.equal(streamed.test_images[torch.arange(3)], held.test_images[:3])


def test_a_corrupt_file_in_a_stream_is_one_line_naming_it(tmp_path, capfd):
    folder = write_image_folder(tmp_path / "images", per_class=6)
    (folder / "train" / "dog" / "0003.jpg").write_bytes(b"not an image")
    code, _, err = run_main(main_modern.main, ["--data-dir", str(folder), "--data-mode", "stream", "--epochs", "1",
                                               "--batch-size", "4", "--workers", "2", "--cache-dir", "",
                                               "--no-progress", "--output-dir", str(tmp_path / "run")], capfd)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "cannot decode image" in err and "dog/0003.jpg" in err and "Traceback" not in err


def test_lazy_images_index_like_a_tensor(tmp_path):
    folder = write_image_folder(tmp_path / "images", per_class=2)
    files = sorted((folder / "train").rglob("*.*"))
    lazy = LazyImages(files, 16)
    assert lazy[0].shape == (3, 16, 16) and lazy[1:3].shape == (2, 3, 16, 16)
    assert torch.equal(lazy[torch.tensor([2, 0])][1], lazy[0])


def test_auto_streams_only_what_would_not_fit():
    assert not should_stream(50_000, 32)  # CIFAR-10: 150 MB
    assert should_stream(10**9, 256)  # 196 TB


def test_a_folder_too_large_for_memory_streams_when_nobody_chose_and_config_json_says_so(tmp_path, capfd, monkeypatch):
    folder = write_image_folder(tmp_path / "images", per_class=6)
    monkeypatch.setattr("utils.data_loader.should_stream", lambda images, image_size: True)
    out = tmp_path / "run"
    code, stdout, err = run_main(main_modern.main, ["--data-dir", str(folder), "--epochs", "1", "--batch-size", "4",
                                                    "--workers", "0", "--cache-dir", "", "--no-progress",
                                                    "--output-dir", str(out)], capfd)
    assert code == 0, err
    assert "streaming them from disk" in stdout
    assert json.loads((out / "config.json").read_text())["data_mode"] == "stream"  # what the run used
    assert json.loads((out / "metrics.json").read_text())["data_mode"] == "stream"


def test_the_speed_preset_on_a_folder_too_large_refuses_instead_of_dropping_its_alternating_flip(tmp_path, capfd,
                                                                                                monkeypatch):
    folder = write_image_folder(tmp_path / "images", per_class=6)
    monkeypatch.setattr("utils.data_loader.should_stream", lambda images, image_size: True)
    code, _, err = run_main(main_modern.main, ["--preset", "speed", "--data-dir", str(folder), "--epochs", "1",
                                               "--cache-dir", "", "--no-progress",
                                               "--output-dir", str(tmp_path / "run")], capfd)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--preset speed keeps the data set in memory" in err and "--alternating-flip" in err


def test_a_preset_records_its_settings_apart_from_the_users(tmp_path, capfd):
    folder = write_image_folder(tmp_path / "images", per_class=6)
    out = tmp_path / "run"
    code, _, err = run_main(main_modern.main, ["--preset", "speed", "--data-dir", str(folder), "--epochs", "1",
                                               "--batch-size", "8", "--cache-dir", "", "--no-progress",
                                               "--output-dir", str(out)], capfd)
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())
    assert config["data_mode"] == "device" and config["alternating_flip"] is True
    assert "alternating_flip" in config["preset_settings"] and "batch_size" not in config["preset_settings"]
    assert {"batch_size", "epochs", "preset"} <= set(config["user_settings"])
    assert config["resolved_for"] == "cpu"
