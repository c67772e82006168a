"""The bad-input contract, as users really meet it: one table, one row per case.

Every row runs an entry script (in-process) on folders and runs this module builds in a temp dir,
and asserts: the exit status, exactly one line on stderr, no traceback, the text that line must
contain, and, for the rows that could lose work, that the run folder is byte-for-byte unchanged.

    python -m pytest tests/test_bad_inputs.py -q
"""
from __future__ import annotations

import hashlib
import json
import shutil
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch
from PIL import Image

import benchmark_all
import main as main_script
import main_modern
from utils.training.checkpoint import load_checkpoint, save_checkpoint
from utils.training.run_dir import RunLock

from tests.conftest import SYNTHETIC, RunsCode, run_main, write_image_folder

SCRIPTS = {"main.py": main_script.main, "main_modern.py": main_modern.main, "benchmark_all.py": benchmark_all.main}
# Fast defaults added to every row unless the row sets the flag itself.
BASE = ["--no-progress", "--workers", "0", "--cache-dir", "", "--epochs", "1", "--image-size", "16"]


@dataclass
class Case:
    script: str
    argv: list[str]
    expected: str  # text the one stderr line must contain
    exit: int = 2
    unchanged: Optional[Path] = None  # a folder that must be byte-for-byte the same afterwards
    never_created: Optional[Path] = None  # a path the refused command must not create


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _image(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


def _copy_run(source: Path, target: Path, **checkpoint_changes) -> Path:
    """A copy of a finished run, with ``last.pt`` edited (e.g. to stop mid-epoch)."""
    target.mkdir(parents=True)
    for name in ("config.json", "metrics.json", "best.pt"):
        (target / name).write_bytes((source / name).read_bytes())
    checkpoint = load_checkpoint(source / "last.pt")
    checkpoint.update(checkpoint_changes)
    checkpoint.pop("format")
    save_checkpoint(checkpoint, target / "last.pt")
    return target


def build_cases(tmp: Path, run: Path, folder_run: Path, lock: RunLock) -> dict[str, Case]:
    """Folders, files and runs for every row; returns name -> Case. ``lock`` is held on the "locked" folder."""
    data = write_image_folder(tmp / "data")  # classes cat, dog, ship; the folder of ``folder_run``
    bench_folder = tmp / "bench-folder"  # what benchmark_all.py leaves at the top of its --output-dir
    bench_folder.mkdir()
    (bench_folder / "benchmark.json").write_text('{"command": "python benchmark_all.py", "signature": {}}\n')
    grown, grown_run = tmp / "grown-data", tmp / "grown-run"  # the same data with one more training image
    shutil.copytree(data, grown)
    shutil.copy(next((grown / "train" / "cat").iterdir()), grown / "train" / "cat" / "zz-added.png")
    shutil.copytree(folder_run, grown_run)

    # ---- folder discovery
    empty_class = write_image_folder(tmp / "empty-class")
    (empty_class / "train" / "bird").mkdir()
    only_text = write_image_folder(tmp / "only-text")
    (only_text / "train" / "notes").mkdir()
    (only_text / "train" / "notes" / "readme.txt").write_text("not an image")
    broken_file = write_image_folder(tmp / "broken-file")
    (broken_file / "train" / "cat" / "0100.jpg").symlink_to(tmp / "gone.jpg")
    broken_class = write_image_folder(tmp / "broken-class")
    (broken_class / "train" / "horse").symlink_to(tmp / "gone-folder", target_is_directory=True)
    broken_test = write_image_folder(tmp / "broken-test")
    (broken_test / "test" / "dog" / "0100.png").symlink_to(tmp / "gone.png")
    (tmp / "a-file").write_text("x")
    only_test = tmp / "only-test"
    _image(only_test / "test" / "cat" / "0.png")
    only_train = tmp / "only-train"
    _image(only_train / "train" / "cat" / "0.png")
    loose = tmp / "loose"
    _image(loose / "train" / "0.png")
    _image(loose / "test" / "cat" / "0.png")
    split_only = tmp / "split-only"  # class folders of images with no train/ above them
    _image(split_only / "cat" / "0.png")
    _image(split_only / "dog" / "0.png")
    extra_test_class = write_image_folder(tmp / "extra-test-class")
    _image(extra_test_class / "test" / "zebra" / "0.png")
    empty_test = write_image_folder(tmp / "empty-test")
    for image in (empty_test / "test").rglob("*.*"):
        image.unlink()
    (tmp / "dangling-data").symlink_to(tmp / "nowhere-at-all", target_is_directory=True)
    empty = tmp / "empty"
    for split in ("train", "test"):
        (empty / split / "cat").mkdir(parents=True)

    # ---- decoding
    corrupt = write_image_folder(tmp / "corrupt")
    (corrupt / "train" / "dog" / "9999.jpg").write_bytes(b"not a jpeg at all")
    zero_bytes = write_image_folder(tmp / "zero-bytes")
    (zero_bytes / "train" / "cat" / "9999.png").write_bytes(b"")
    truncated_png = write_image_folder(tmp / "truncated-png")
    png = next((truncated_png / "train" / "cat").glob("*.png"))
    png.write_bytes(png.read_bytes()[:40])
    nan_tiff = write_image_folder(tmp / "nan-tiff")
    Image.fromarray(np.full((8, 8), np.nan, np.float32)).save(nan_tiff / "train" / "cat" / "9999.tif")

    # ---- run folders: other runs' files, locks, refused resumes
    run_files = {}
    for name in ("best.pt", "metrics.json", "config.json"):
        folder = tmp / f"has-{name}"
        folder.mkdir()
        (folder / name).write_bytes((run / name).read_bytes())
        run_files[name] = folder
    locked = lock.path.parent  # held by this test process: a run started now must refuse the folder
    no_last = tmp / "no-last"
    no_last.mkdir()
    (no_last / "best.pt").write_bytes((run / "best.pt").read_bytes())
    mid_epoch = _copy_run(run, tmp / "mid-epoch", epoch=0, step_in_epoch=2, history=[])
    other_names = write_image_folder(tmp / "other-names", classes=("apple", "pear", "plum"))
    other_count = write_image_folder(tmp / "other-count", classes=("cat", "dog", "ship", "tree"))
    folder_best = folder_run / "best.pt"

    # ---- checkpoints and flags
    text_checkpoint = tmp / "text-checkpoint"
    text_checkpoint.mkdir()
    (text_checkpoint / "last.pt").write_text("these are not the weights you are looking for\n")
    truncated_checkpoint = tmp / "truncated-checkpoint"
    truncated_checkpoint.mkdir()
    data_bytes = (run / "last.pt").read_bytes()
    (truncated_checkpoint / "last.pt").write_bytes(data_bytes[: len(data_bytes) // 2])
    folder_args = ["--data-dir", str(data)]
    evil = tmp / "evil.pt"
    torch.save({"format": 1, "model": RunsCode(tmp / "marker")}, evil)
    raw_pickle = tmp / "raw.pkl"
    raw_pickle.write_bytes(pickle.dumps({"format": 1, "model": RunsCode(tmp / "marker")}, protocol=4))

    # ---- --config: a recorded run's config.json, broken in each way a file can be
    recorded = json.loads((run / "config.json").read_text())
    configs = {name: tmp / f"config-{name}.json" for name in ("not-json", "unknown", "wrong-type", "resnet")}
    configs["not-json"].write_text("model: cnn\n")
    configs["unknown"].write_text(json.dumps({**recorded, "colour": "red", "legacy_flag": 1}))
    configs["wrong-type"].write_text(json.dumps({**recorded, "epochs": "ten"}))
    configs["resnet"].write_text(json.dumps({**recorded, "model": "resnet_tiny"}))

    no_config = tmp / "no-config"  # a checkpoint of another program: weights without the run's settings
    no_config.mkdir()
    stripped = load_checkpoint(run / "best.pt")
    stripped.pop("config")
    stripped.pop("format")
    save_checkpoint(stripped, no_config / "best.pt")
    infinite, not_a_number = tmp / "infinite.json", tmp / "nan.json"  # JSON readers accept Infinity and NaN
    recorded = json.loads((run / "config.json").read_text())
    infinite.write_text(json.dumps({**recorded, "epochs": float("inf")}))
    not_a_number.write_text(json.dumps({**recorded, "lr": float("nan")}))

    return {
        # folder discovery
        "empty class folder": Case("main.py", ["--data-dir", str(empty_class)], "train/bird holds no images"),
        "class folder with only a text file": Case("main.py", ["--data-dir", str(only_text)], "train/notes holds no images"),
        "broken symlink to an image": Case("main.py", ["--data-dir", str(broken_file)], "0100.jpg is a broken symbolic link"),
        "broken symlink as a class folder": Case("main.py", ["--data-dir", str(broken_class)], "horse is a broken symbolic link"),
        "broken symlink in test/": Case("main.py", ["--data-dir", str(broken_test)], "0100.png is a broken symbolic link"),
        "data dir is a broken symlink": Case("main.py", ["--data-dir", str(tmp / "dangling-data")], "broken symbolic link"),
        "data dir is a file": Case("main.py", ["--data-dir", str(tmp / "a-file")], "is a file, not a folder"),
        "data dir is the train split": Case("main.py", ["--data-dir", str(data / "train")],
                                            f"looks like a single split (class folders of images), not a data set; "
                                            f"pass the folder that holds train/ and test/: --data-dir {data.resolve()}"),
        "data dir is a folder of class folders": Case("main.py", ["--data-dir", str(split_only)], "looks like a single split"),
        "data dir has only test/": Case("main.py", ["--data-dir", str(only_test)], "has test/ but no train/ folder"),
        "data dir has only train/": Case("main.py", ["--data-dir", str(only_train)], "has train/ but no test/ or val/"),
        "images loose in train/": Case("main.py", ["--data-dir", str(loose)], "holds images directly"),
        "test class that train lacks": Case("main.py", ["--data-dir", str(extra_test_class)], "class folders that train/ lacks: zebra"),
        "test split without images": Case("main.py", ["--data-dir", str(empty_test)], "test holds no images"),
        "missing data dir": Case("main.py", ["--data-dir", str(tmp / "nowhere")], "does not exist"),
        "empty image folder": Case("main.py", ["--data-dir", str(empty)], "holds no images"),
        "--dataset folder on a file": Case("main.py", ["--dataset", "folder", "--data-dir", str(tmp / "a-file")],
                                           "is a file, not a folder"),
        "cifar missing, no download": Case("main.py", ["--data-dir", str(tmp), "--dataset", "cifar10", "--no-download"],
                                           "--data-dir"),
        # decoding
        "corrupt jpeg": Case("main.py", ["--data-dir", str(corrupt)], "cannot decode image"),
        "zero-byte png": Case("main.py", ["--data-dir", str(zero_bytes)], "9999.png"),
        "truncated png": Case("main.py", ["--data-dir", str(truncated_png)], png.name),
        "float tiff full of NaN": Case("main.py", ["--data-dir", str(nan_tiff)], "non-finite pixel values"),
        # run folders never lose work
        "folder holds another run's best.pt": Case("main.py", ["--output-dir", str(run_files["best.pt"])],
                                                   "already holds a run (best.pt)", unchanged=run_files["best.pt"]),
        "folder holds another run's metrics.json": Case("main.py", ["--output-dir", str(run_files["metrics.json"])],
                                                        "already holds a run (metrics.json)",
                                                        unchanged=run_files["metrics.json"]),
        "output dir holds a run": Case("main.py", ["--output-dir", str(run)], "already holds a run", unchanged=run),
        "folder in use by a live run": Case("main.py", ["--output-dir", str(locked)], f"in use by another run (pid {os.getpid()})",
                                            unchanged=locked),
        "resume without output dir": Case("main.py", ["--resume"], "--resume needs --output-dir"),
        "resume without last.pt": Case("main.py", ["--resume", "--output-dir", str(no_last)], "no last.pt",
                                       unchanged=no_last),
        "unwritable output dir": Case("main.py", ["--output-dir", str(tmp / "a-file" / "run")], "cannot write to --output-dir"),
        # resume is exact or refused (and a refused resume changes nothing)
        "resume of another model": Case("main_modern.py", ["--model", "resnet_tiny", "--resume", "--output-dir", str(run)],
                                        "model=cnn", unchanged=run),
        "predictions over the run's metrics.json": Case(
            "main_modern.py", ["--predict", str(run / "best.pt"), str(data), "--save-predictions",
                               str(run / "metrics.json")], "would replace a file of the run", unchanged=run),
        "predictions over the run's config.json": Case(
            "main_modern.py", ["--predict", str(run / "best.pt"), str(data), "--save-predictions",
                               str(run / "config.json")], "would replace a file of the run", unchanged=run),
        "whitening bias epochs on a model without whitening": Case(
            "main_modern.py", ["--model", "resnet_tiny", "--whitening-bias-epochs", "2"], "with a whitening layer"),
        "compile mode without compile": Case("main_modern.py", ["--compile-mode", "max-autotune"], "acts only with --compile"),
        "low-res size without low-res epochs": Case("main_modern.py", ["--low-res-size", "12"], "--low-res-epochs N"),
        "muon lr with adam": Case("main_modern.py", ["--muon-lr", "0.1"], "--optimizer muon"),
        "dropblock size without dropblock": Case("main_modern.py", ["--model", "resnet_tiny", "--dropblock-size", "5"],
                                                 "--dropblock P"),
        "step size with the cosine schedule": Case("main_modern.py", ["--modern-training", "--step-size", "3"],
                                                   "the step scheduler"),
        "workers far above the cores": Case("main.py", ["--workers", "100000"], "--workers must be at most"),
        "reflect padding as wide as the image": Case("main_modern.py", ["--crop-pad-mode", "reflect", "--crop-padding",
                                                                        "16"], "must be smaller than --image-size"),
        "predict with a checkpoint without its config": Case(
            "main_modern.py", ["--predict", str(no_config / "best.pt"), str(data)], "no model or config"),
        "config file with infinite epochs": Case("main_modern.py", ["--config", str(infinite)], "finite"),
        "config file with a NaN learning rate": Case("main_modern.py", ["--config", str(not_a_number)], "finite"),
        "resume with a preset the run was not trained with": Case(
            "main_modern.py", ["--preset", "speed", "--resume", "--output-dir", str(run)], "preset=None", unchanged=run),
        "predict and evaluate in one command": Case(
            "main_modern.py", ["--predict", str(run / "best.pt"), str(data), "--evaluate", str(run / "best.pt")],
            "--evaluate and --predict are two commands"),
        "predict and export in one command": Case(
            "main_modern.py", ["--predict", str(run / "best.pt"), str(data), "--export", str(run / "best.pt")],
            "are two commands"),
        "predict with training flags": Case(
            "main_modern.py", ["--predict", str(run / "best.pt"), str(data), "--model", "resnet18", "--epochs", "3",
                               "--resume"], "--epochs, --model, --resume would be ignored"),
        "explain with --data-dir": Case("main_modern.py", ["--explain", str(run / "best.pt"), str(tmp / "cam.png"),
                                                           "--data-dir", str(data)], "--data-dir would be ignored",
                                        never_created=tmp / "cam.png"),
        "export with --data-dir": Case("main_modern.py", ["--export", str(run / "best.pt"), "--data-dir", str(data)],
                                       "--data-dir would be ignored"),
        "resume on data with other class names": Case("main.py", ["--resume", "--output-dir", str(folder_run),
                                                                  "--data-dir", str(other_names)],
                                                      "3 classes (cat, dog, ship), but this data has 3 classes (apple",
                                                      unchanged=folder_run),
        "resume on data with another class count": Case("main.py", ["--resume", "--output-dir", str(folder_run),
                                                                    "--data-dir", str(other_count)],
                                                        "this data has 4 classes", unchanged=folder_run),
        "resume mid-epoch with another batch size": Case("main.py", ["--resume", "--output-dir", str(mid_epoch),
                                                                     "--batch-size", "8"],
                                                         "in the middle of epoch 1 (step 2)", unchanged=mid_epoch),
        "truncated checkpoint": Case("main.py", ["--resume", "--output-dir", str(truncated_checkpoint)],
                                     "truncated, corrupt", unchanged=truncated_checkpoint),
        "resume from a last.pt that holds text": Case("main.py", ["--resume", "--output-dir", str(text_checkpoint)],
                                                      "is not a readable checkpoint", unchanged=text_checkpoint),
        "evaluate a text file named .pt": Case("main_modern.py", ["--evaluate", str(text_checkpoint / "last.pt")],
                                               "is not a readable checkpoint"),
        "evaluate on other class names": Case("main_modern.py", ["--evaluate", str(folder_best), "--data-dir", str(other_names)],
                                              "this data has 3 classes (apple, pear, plum)"),
        "evaluate on another class count": Case("main_modern.py", ["--evaluate", str(folder_best), "--data-dir",
                                                                   str(other_count)], "this data has 4 classes"),
        "evaluate with --test-subset 0": Case("main_modern.py", ["--evaluate", str(folder_best), "--test-subset", "0"],
                                              "--test-subset must be at least 1"),
        "evaluate with --workers -1": Case("main_modern.py", ["--evaluate", str(folder_best), "--workers", "-1"],
                                           "--workers must be >= 0"),
        "evaluate with --batch-size 0": Case("main_modern.py", ["--evaluate", str(folder_best), "--batch-size", "0"],
                                             "--batch-size must be at least 1"),
        "evaluate a missing file": Case("main_modern.py", ["--evaluate", str(tmp / "none.pt")], "no checkpoint at"),
        "evaluate a pickle that runs code": Case("main_modern.py", ["--evaluate", str(evil)], "refusing to load",
                                                 never_created=tmp / "marker"),
        "evaluate a raw pickle that runs code": Case("main_modern.py", ["--evaluate", str(raw_pickle)],
                                                     "refusing to load", never_created=tmp / "marker"),
        "evaluate a folder": Case("main_modern.py", ["--evaluate", str(folder_run)], "is a folder, not a checkpoint; give"),
        "evaluate with a test subset larger than the test set": Case(
            "main_modern.py", ["--evaluate", str(folder_best), "--test-subset", "1000"], "--test-subset 1000 is larger"),
        # every flag validated once, in every mode
        "negative seed": Case("main.py", ["--seed", "-1"], "--seed must be between 0 and 2**64 - 1"),
        "seed beyond 64 bits": Case("main.py", ["--seed", str(2**64)], "--seed must be between"),
        "warm-up of inf epochs": Case("main_modern.py", ["--warmup-epochs", "inf"], "--warmup-epochs must be a finite number"),
        "lr nan": Case("main.py", ["--lr", "nan"], "--lr must be a finite number"),
        "weight decay inf": Case("main.py", ["--weight-decay", "inf"], "--weight-decay must be a finite number"),
        "clip-grad inf": Case("main_modern.py", ["--clip-grad", "inf"], "--clip-grad must be a finite number"),
        "mixup alpha inf": Case("main_modern.py", ["--mixup", "inf"], "--mixup must be a finite number"),
        "ema decay nan": Case("main_modern.py", ["--ema-decay", "nan"], "--ema-decay must be a finite number"),
        "image size a ViT cannot take": Case("main_modern.py", ["--model", "vit_tiny", "--image-size", "44"],
                                             "model vit_tiny cannot take --image-size 44"),
        "image size the CNN-Transformer cannot take": Case("main_modern.py", ["--model", "cnn_transformer_small",
                                                                              "--image-size", "50"],
                                                           "cannot take --image-size 50"),
        "low-res size a ViT cannot take": Case("main_modern.py", ["--model", "vit_tiny", "--low-res-epochs", "2",
                                                  "--low-res-size", "12"], "cannot take --low-res-size 12"),
        "low-res size above the image size": Case("main_modern.py", ["--low-res-epochs", "2", "--low-res-size", "20"],
                                                  "--low-res-size must be between 2 and --image-size"),
        "negative low-res epochs": Case("main_modern.py", ["--low-res-epochs", "-1"], "--low-res-epochs must be >= 0"),
        "compare-models with an image size one model cannot take": Case(
            "main_modern.py", ["--compare-models", "cnn", "vit_tiny", "--image-size", "44", "--output-dir",
                               str(tmp / "compare")], "model vit_tiny cannot take --image-size 44",
            never_created=tmp / "compare"),
        "compare-models naming a model twice": Case("main_modern.py", ["--compare-models", "cnn", "cnn", "--output-dir",
                                                                     str(tmp / "compare-twice")],
                                                    "names cnn more than once", never_created=tmp / "compare-twice"),
        "benchmark naming a model twice": Case("benchmark_all.py", ["--architectures", "--models", "cnn", "cnn",
                                                                    "--output-dir", str(tmp / "bench-twice")],
                                               "names cnn more than once", never_created=tmp / "bench-twice"),
        "preset speed with a per-image policy": Case("main_modern.py", ["--preset", "speed", "--augmentation",
                                                                    "randaugment"],
                                                     "add --data-mode memory --no-alternating-flip"),
        "preset speed on the memory path keeps its alternating flip": Case(
            "main_modern.py", ["--preset", "speed", "--data-mode", "memory"],
            "or add --no-alternating-flip (--preset speed sets it)"),
        "resume after images were added to train/": Case("main.py", ["--resume", "--output-dir", str(grown_run),
                                                                     "--data-dir", str(grown)],
                                                         "it was trained on other training images",
                                                         unchanged=grown_run),
        "benchmark into a folder that holds a run": Case("benchmark_all.py", ["--architectures", "--models", "cnn",
                                                                              "--output-dir", str(run)],
                                                         "holds a training run", unchanged=run),
        "run into a benchmark's folder": Case("main.py", ["--output-dir", str(bench_folder)], "holds a benchmark",
                                              unchanged=bench_folder),
        "benchmark into a folder in use": Case("benchmark_all.py", ["--architectures", "--models", "cnn",
                                                                    "--output-dir", str(locked)],
                                               f"in use by another run (pid {os.getpid()})", unchanged=locked),
        "misclassified pointing at a folder": Case("main_modern.py", ["--evaluate", str(folder_best), "--misclassified",
                                                                      str(tmp)], "is a folder; give a file name in it"),
        "plot-schedule pointing at a folder": Case("main_modern.py", ["--plot-schedule", str(tmp)],
                                                   "is a folder; give a file name in it"),
        "plot-schedule into a file's folder": Case("main_modern.py", ["--plot-schedule", str(tmp / "a-file" / "s.png")],
                                                   "is a file"),
        # after training: predict, export, explain
        "predict a text file": Case("main_modern.py", ["--predict", str(run / "best.pt"), str(tmp / "a-file")],
                                    "cannot decode image"),
        "predict a folder without images": Case("main_modern.py", ["--predict", str(run / "best.pt"),
                                                                   str(only_text / "train" / "notes")], "holds no images"),
        "predict with a text file as the checkpoint": Case(
            "main_modern.py", ["--predict", str(text_checkpoint / "last.pt"), str(data)], "is not a readable checkpoint"),
        "predict to a file that is neither csv nor json": Case(
            "main_modern.py", ["--predict", str(run / "best.pt"), str(data), "--save-predictions", str(tmp / "p.txt")],
            "give a .csv or .json file name", never_created=tmp / "p.txt"),
        "export to an unknown format": Case("main_modern.py", ["--export", str(run / "best.pt"), "--export-format", "tflite"],
                                            "invalid choice: 'tflite'"),
        "export into a file's folder": Case("main_modern.py", ["--export", str(run / "best.pt"), "--export-dir",
                                                               str(tmp / "a-file" / "exports")], "cannot create the export folder"),
        "explain with no images": Case("main_modern.py", ["--explain", str(run / "best.pt"), str(tmp / "cam.png"),
                                                          "--explain-count", "0"], "--explain-count must be between 1 and 64"),
        "explain to an unknown extension": Case("main_modern.py", ["--explain", str(run / "best.pt"), str(tmp / "cam.txt")],
                                                "cannot write an image as .txt", never_created=tmp / "cam.txt"),
        "a batch of one image on a 1x1 map": Case("main.py", ["--batch-size", "1", "--image-size", "8"],
                                                  "before BatchNorm with a single image in a batch"),
        "preview to an unknown extension": Case("main_modern.py", ["--preview-augmentation", str(tmp / "preview.txt")],
                                                "cannot write an image as .txt", never_created=tmp / "preview.txt"),
        "preview into a file's folder": Case("main_modern.py", ["--preview-augmentation", str(tmp / "a-file" / "p.png")],
                                             "a-file"),
        "train with --workers -1": Case("main.py", ["--workers", "-1"], "--workers must be >= 0"),
        "train with --test-subset 0": Case("main.py", ["--test-subset", "0"], "--test-subset must be at least 1"),
        "test subset larger than the test set": Case("main.py", [*folder_args, "--test-subset", "1000"],
                                                     "--test-subset 1000 is larger than the test set (6 images)"),
        "subset larger than data": Case("main.py", [*folder_args, "--subset", "1000"], "larger than the training set"),
        "unknown model": Case("main_modern.py", ["--model", "resnet19"], "did you mean resnet18"),
        "unknown activation": Case("main.py", ["--activation", "rleu"], "unknown activation 'rleu'"),
        "unknown dataset": Case("main.py", ["--dataset", "imagenet"], "invalid choice"),
        "epochs 0": Case("main.py", ["--epochs", "0"], "--epochs must be at least 1"),
        "negative lr": Case("main.py", ["--lr", "-0.1"], "--lr must be a positive number"),
        "batch size 0": Case("main.py", ["--batch-size", "0"], "--batch-size must be at least 1"),
        "negative batch size": Case("main.py", ["--batch-size", "-5"], "--batch-size must be at least 1"),
        "mixup alpha 0": Case("main_modern.py", ["--mixup", "0"], "--mixup alpha must be > 0"),
        "mixup alpha negative": Case("main_modern.py", ["--mixup", "-1"], "--mixup alpha must be > 0"),
        "epochs not a number": Case("main.py", ["--epochs", "many"], "argument --epochs: must be a number such as 10 or 9.9"),
        "image size 0": Case("main.py", ["--image-size", "0"], "--image-size must be between"),
        "label smoothing 1.5": Case("main_modern.py", ["--label-smoothing", "1.5"], "--label-smoothing must be in"),
        "step size 0": Case("main.py", ["--step-size", "0"], "--step-size must be at least 1"),
        "eval every 0 epochs": Case("main.py", ["--eval-every", "0"], "--eval-every must be at least 1"),
        "validation split as large as the training set": Case("main.py", [*folder_args, "--val-split", "12"],
                                                              "--val-split 12 leaves no training images"),
        "device data path with a per-image policy": Case(
            "main_modern.py", ["--data-mode", "device", "--augmentation", "randaugment"],
            "--data-mode device augments whole batches and cannot run --augmentation randaugment"),
        "cuda without a GPU": Case("main.py", ["--device", "cuda"], "no CUDA GPU"),
        # --config: a new run from a recorded config.json
        "config file missing": Case("main_modern.py", ["--config", str(tmp / "none.json")], "no such file"),
        "config file not JSON": Case("main_modern.py", ["--config", str(configs["not-json"])], "is not a JSON file"),
        "config file that is a run's metrics.json": Case("main_modern.py", ["--config", str(run / "metrics.json")],
                                                         "is not a config.json of this project"),
        "config file with unknown settings": Case("main_modern.py", ["--config", str(configs["unknown"])],
                                                  "settings this version does not know: colour, legacy_flag"),
        "config file with a setting of the wrong type": Case("main_modern.py", ["--config", str(configs["wrong-type"])],
                                                             'epochs is "ten", but it must be a finite number'),
        "config with resume": Case("main.py", ["--config", str(run / "config.json"), "--resume", "--output-dir",
                                               str(run)], "give one of them", unchanged=run),
        "config of another model on main.py": Case("main.py", ["--config", str(configs["resnet"])],
                                                   "use main_modern.py --config"),
        # divergence
        "diverging learning rate": Case("main.py", ["--optimizer", "sgd", "--lr", "1e30"], "training diverged", exit=3),
    }


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Case]:
    tmp = tmp_path_factory.mktemp("bad-inputs")
    run = tmp / "synthetic-run"
    code = main_script.main([*SYNTHETIC, "--epochs", "1", "--output-dir", str(run)]) or 0
    folder_run = tmp / "folder-run"
    data = write_image_folder(tmp / "data")
    main_script.main(["--data-dir", str(data), "--image-size", "16", "--epochs", "1", "--batch-size", "4",
                      "--workers", "0", "--no-progress", "--cache-dir", "", "--output-dir", str(folder_run)])
    assert code == 0 and (run / "last.pt").exists() and (folder_run / "best.pt").exists()
    (tmp / "locked").mkdir()
    lock = RunLock(tmp / "locked")
    lock.acquire()
    yield build_cases(tmp, run, folder_run, lock)
    lock.release()


SAVED_MODEL_MODES = ("--predict", "--export", "--explain")  # they take no training settings at all


def _argv(case: Case, tmp: Path, name: str) -> list[str]:
    if any(mode in case.argv for mode in SAVED_MODEL_MODES):
        return ["--no-progress", *case.argv]
    if "--evaluate" in case.argv:
        return ["--no-progress", "--workers", "0", "--cache-dir", "", *case.argv]
    argv = list(BASE)
    if "--data-dir" not in case.argv and "--dataset" not in case.argv and "--evaluate" not in case.argv:
        argv += ["--dataset", "synthetic"]
    if "--output-dir" not in case.argv and "--resume" not in case.argv:
        argv += ["--output-dir", str(tmp / "out" / name.replace(" ", "-").replace("/", "-"))]
    return [*argv, *case.argv]


CASE_NAMES = [
    "empty class folder", "class folder with only a text file", "broken symlink to an image",
    "broken symlink as a class folder", "broken symlink in test/", "data dir is a broken symlink", "data dir is a file",
    "data dir is the train split", "data dir is a folder of class folders", "data dir has only test/",
    "data dir has only train/", "images loose in train/", "test class that train lacks", "test split without images",
    "missing data dir", "empty image folder", "--dataset folder on a file", "cifar missing, no download",
    "corrupt jpeg", "zero-byte png", "truncated png", "float tiff full of NaN",
    "folder holds another run's best.pt", "folder holds another run's metrics.json",
    "output dir holds a run", "folder in use by a live run",
    "resume without last.pt", "unwritable output dir", "resume of another model",
    "resume on data with other class names", "resume on data with another class count",
    "resume mid-epoch with another batch size", "truncated checkpoint", "evaluate on other class names",
    "evaluate on another class count", "evaluate with --test-subset 0", "evaluate with --workers -1",
    "evaluate with --batch-size 0", "evaluate a folder", "evaluate with a test subset larger than the test set",
    "negative seed", "seed beyond 64 bits", "warm-up of inf epochs", "lr nan", "weight decay inf", "clip-grad inf",
    "mixup alpha inf", "ema decay nan", "image size a ViT cannot take", "image size the CNN-Transformer cannot take",
    "low-res size a ViT cannot take", "low-res size above the image size", "negative low-res epochs",
    "compare-models with an image size one model cannot take", "preview to an unknown extension",
    "preview into a file's folder", "train with --workers -1", "train with --test-subset 0",
    "test subset larger than the test set", "subset larger than data", "unknown model", "epochs not a number",
    "image size 0", "label smoothing 1.5", "step size 0", "diverging learning rate",
    "evaluate a missing file", "evaluate a pickle that runs code", "evaluate a raw pickle that runs code",
    "resume without output dir", "unknown activation", "unknown dataset", "epochs 0", "negative lr", "batch size 0",
    "negative batch size", "mixup alpha 0", "mixup alpha negative", "cuda without a GPU", "eval every 0 epochs",
    "device data path with a per-image policy", "validation split as large as the training set",
    "resume from a last.pt that holds text", "evaluate a text file named .pt", "compare-models naming a model twice",
    "benchmark naming a model twice", "preset speed with a per-image policy",
    "preset speed on the memory path keeps its alternating flip", "resume after images were added to train/",
    "benchmark into a folder that holds a run", "run into a benchmark's folder", "benchmark into a folder in use",
    "misclassified pointing at a folder", "plot-schedule pointing at a folder", "plot-schedule into a file's folder",
    "a batch of one image on a 1x1 map", "config file missing", "config file not JSON",
    "config file that is a run's metrics.json", "config file with unknown settings",
    "config file with a setting of the wrong type", "config with resume", "config of another model on main.py",
    "predict a text file", "predict a folder without images", "predict with a text file as the checkpoint",
    "predict to a file that is neither csv nor json", "export to an unknown format", "export into a file's folder",
    "explain with no images", "explain to an unknown extension", "resume with a preset the run was not trained with",
    "predict and evaluate in one command", "predict and export in one command", "predict with training flags",
    "explain with --data-dir", "export with --data-dir", "workers far above the cores",
    "predictions over the run's metrics.json", "predictions over the run's config.json",
    "whitening bias epochs on a model without whitening", "compile mode without compile",
    "low-res size without low-res epochs", "muon lr with adam", "dropblock size without dropblock",
    "step size with the cosine schedule",
    "reflect padding as wide as the image", "predict with a checkpoint without its config",
    "config file with infinite epochs", "config file with a NaN learning rate",
]


def test_the_table_is_complete(cases):
    assert len(cases) >= 40 and sorted(cases) == sorted(CASE_NAMES)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input(name, cases, tmp_path, capfd):
    case = cases[name]
    if name == "cuda without a GPU" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    before = folder_digest(case.unchanged) if case.unchanged else None
    code, _, err = run_main(SCRIPTS[case.script], _argv(case, tmp_path, name), capfd)
    lines = err.strip().splitlines()
    if os.environ.get("BAD_INPUT_TABLE"):  # BAD_INPUT_TABLE=FILE: each case's row (command, exit, stderr's last line)
        with open(os.environ["BAD_INPUT_TABLE"], "a") as table:
            shown = " ".join(a if len(a) < 40 else "…/" + Path(a).name for a in case.argv)
            table.write(f"| {name} | `{case.script} {shown}` | {code} | {lines[-1] if lines else ''} |\n")
    assert code == case.exit, f"exit {code}, stderr {err!r}"
    assert len(lines) == 1 and "Traceback" not in err, err
    assert case.expected in err, err
    if case.unchanged:
        assert folder_digest(case.unchanged) == before, "the run folder changed"
    if case.never_created:
        assert not case.never_created.exists(), f"{case.never_created} was created"


def test_a_resume_refused_in_smoke_mode_names_smoke_mode_not_the_user(tmp_path, capfd, monkeypatch):
    run = tmp_path / "run"
    code, _, err = run_main(main_script.main, [*SYNTHETIC, "--image-size", "32", "--epochs", "1", "--output-dir",
                                               str(run)], capfd)
    assert code == 0, err
    monkeypatch.setenv("CIFAR_SMOKE", "1")  # forces 16 px images
    code, _, err = run_main(main_script.main, ["--resume", "--output-dir", str(run), "--epochs", "2"], capfd)
    assert code == 2 and "smoke mode (CIFAR_SMOKE=1) sets image_size=16" in err and "asks for" not in err, err
