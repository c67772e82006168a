"""After training: predict on image files, export (ONNX, .pt2), explain (Grad-CAM, attention rollout).

    python -m pytest -q tests/test_after_training.py            (the registry-wide export: -m slow)
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import main_modern
from models import create_model, list_models
from utils.after.explain import attention_maps, grad_cam, rollout_of
from utils.after.export import ImageClassifierForUInt8, compare_with_pytorch, export_checkpoint
from utils.after.inference import load_trained_model
from utils.after.predict import image_files, predict_images
from utils.evaluation import evaluate_saved

from tests.conftest import run_main, write_image_folder


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory) -> tuple[Path, Path]:
    """A model trained a little on a small image folder: (the data folder, the run folder)."""
    tmp = tmp_path_factory.mktemp("after-training")
    data = write_image_folder(tmp / "data", per_class=8)
    run = tmp / "run"
    main_modern.main(["--model", "resnet_tiny", "--data-dir", str(data), "--image-size", "16", "--epochs", "2",
                      "--batch-size", "8", "--workers", "0", "--no-progress", "--cache-dir", "",
                      "--output-dir", str(run)])
    return data, run


def test_predict_gives_a_test_image_the_class_the_run_evaluation_gave_it(folder_run, capfd):
    data, run = folder_run
    trained = load_trained_model(run / "best.pt", "cpu")
    files, _ = image_files([str(data / "test")])
    rows = predict_images(str(run / "best.pt"), [str(data / "test")], top_k=2, device="cpu",
                          save=str(run / "p.json"))
    # the run's own evaluation of its test split (the same files, listed class by class, as the folder is)
    from utils.data_loader import build_data

    bundle = build_data(trained.config.replace(workers=0, data_mode="memory"))
    result = evaluate_saved(torch.load(run / "best.pt", weights_only=True), trained.model, bundle.test_loader,
                            trained.device)
    assert [Path(r["file"]) for r in rows] == files and len(rows) == len(result["predictions"])
    assert [trained.class_names.index(r["predicted"]) for r in rows] == result["predictions"].tolist()
    saved = json.loads((run / "p.json").read_text())
    assert [record["predicted"] for record in saved] == [r["predicted"] for r in rows]
    assert all(abs(sum(record["probabilities"].values()) - 1) < 1e-4 for record in saved)
    out = capfd.readouterr().out
    assert "top 2" in out and rows[0]["predicted"] in out


def test_predict_on_a_folder_skips_stray_files_and_writes_a_csv_beside_the_checkpoint(folder_run, tmp_path, capfd):
    data, run = folder_run
    photos = tmp_path / "photos"
    (photos / "nested").mkdir(parents=True)
    big = (torch.rand(3, 480, 640) * 255).to(torch.uint8)  # photo-sized: resized to the run's 16×16
    from torchvision.io import write_jpeg

    write_jpeg(big, str(photos / "nested" / "photo.jpg"))
    (photos / "notes.txt").write_text("not an image")
    (photos / ".hidden.jpg").write_bytes(b"junk")
    (photos / "broken.jpg").write_bytes(b"not a jpeg")  # one broken photo is skipped, with a note
    before = set(run.glob("predictions*.csv"))
    rows = predict_images(str(run / "best.pt"), [str(photos)], device="cpu")
    written = set(run.glob("predictions*.csv")) - before
    assert [Path(r["file"]).name for r in rows] == ["photo.jpg"] and len(written) == 1
    table = list(csv.reader(written.pop().open()))
    assert table[0][:3] == ["file", "predicted", "probability"] and len(table) == 2
    assert abs(sum(map(float, table[1][3:])) - 1) < 1e-3
    assert "skipped 1 file(s) that could not be decoded" in capfd.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["{run}/best.pt", "{tmp}/notes.txt"], "cannot decode image"),
    (["{run}/best.pt", "{tmp}/empty"], "holds no images"),
    (["{tmp}/notes.txt", "{data}/test"], "is not a readable checkpoint"),
    (["{run}", "{data}/test"], "is a folder, not a checkpoint; give"),
    (["{run}/best.pt", "{tmp}/missing.jpg"], "no such image or folder"),
])
def test_predict_bad_input_is_one_line(folder_run, tmp_path, capfd, argv, message):
    data, run = folder_run
    (tmp_path / "notes.txt").write_text("text")
    (tmp_path / "empty").mkdir()
    argv = [a.format(run=run, tmp=tmp_path, data=data) for a in argv]
    code, _, err = run_main(main_modern.main, ["--predict", *argv, "--device", "cpu"], capfd)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_companion_flags_without_their_mode_are_refused(folder_run, capfd):
    _, run = folder_run
    code, _, err = run_main(main_modern.main, ["--evaluate", str(run / "best.pt"), "--top-k", "5"], capfd)
    assert code == 2 and "--top-k goes with --predict CHECKPOINT IMAGE..." in err, err
    code, _, err = run_main(main_modern.main, ["--export", str(run / "best.pt"), "--explain-count", "3"], capfd)
    assert code == 2 and "--explain-count goes with --explain" in err, err


def test_export_onnx_and_pt2_match_pytorch_on_test_images(folder_run, tmp_path):
    pytest.importorskip("onnxruntime")
    _, run = folder_run
    results = export_checkpoint(str(run / "best.pt"), out_dir=str(tmp_path), check_images=24)
    for fmt in ("onnx", "pt2"):
        assert Path(results[fmt]["path"]).is_file() and results[fmt]["images"] == 12  # the whole test split
        assert results[fmt]["top1_agree"] == 12 and results[fmt]["max_logit_difference"] < 1e-3
    # the exported program takes uint8 images as a decoder gives them, at any batch size
    again = export_checkpoint(str(run / "best.pt"), formats=["pt2"], out_dir=str(tmp_path), check_images=4)
    assert Path(again["pt2"]["path"]).name == "best-2.pt2"  # a second export never replaces the first
    loaded = torch.export.load(results["pt2"]["path"]).module()
    images = torch.randint(0, 256, (5, 3, 16, 16), dtype=torch.uint8)
    trained = load_trained_model(run / "best.pt", "cpu")
    expected = trained.model(trained.normalized(images))
    assert torch.allclose(loaded(images), expected, atol=1e-4)


def test_the_comparison_with_pytorch_can_fail():
    model = ImageClassifierForUInt8(create_model("cnn", image_size=16), (0.5,) * 3, (0.25,) * 3).eval()
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    result = compare_with_pytorch(model, lambda batch: model(batch).flip(1), images)
    assert result["max_logit_difference"] > 0 and result["top1_agree"] < 8


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_every_registry_model_exports_to_pt2(name):
    model = ImageClassifierForUInt8(create_model(name).eval(), (0.5,) * 3, (0.25,) * 3).eval()
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (images[:2],), dynamic_shapes={"images": {0: batch}})
    assert torch.allclose(program.module()(images), model(images), atol=1e-5)


# ------------------------------------------------------------------------------------ explain
def corner_images(count: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise images whose class (0-3) is a bright 8×8 patch in one corner (top-left, top-right, ...)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, size, size, generator=generator) * 0.5 - 0.25
    labels = torch.arange(count) % 4
    for index, label in enumerate(labels.tolist()):
        top, left = (0 if label < 2 else size - 8), (0 if label % 2 == 0 else size - 8)
        images[index, :, top:top + 8, left:left + 8] = 2.0
    return images, labels


def train_on_corners(model: torch.nn.Module, steps: int, lr: float) -> torch.nn.Module:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(steps):
        images, labels = corner_images(32, seed=step)
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def peak_quadrants(maps: torch.Tensor) -> list[int]:
    """The quadrant (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) holding each map's peak."""
    size = maps.shape[-1]
    peaks = maps.flatten(1).argmax(1)
    rows, columns = peaks // size, peaks % size
    return ((rows >= size // 2).long() * 2 + (columns >= size // 2).long()).tolist()


def test_grad_cam_of_a_trained_model_peaks_in_the_corner_that_decides_the_class():
    torch.manual_seed(0)
    model = train_on_corners(create_model("resnet_tiny", num_classes=4), steps=40, lr=2e-3)
    images, labels = corner_images(16, seed=999)
    assert (model(images).argmax(1) == labels).all()
    assert peak_quadrants(grad_cam(model, images, labels)) == labels.tolist()


def test_the_attention_maps_are_the_ones_the_model_computes():
    """The hook's weights, applied to the values, give back each block's own (fused-kernel) attention output."""
    model = create_model("vit_tiny", image_size=16).eval()
    images = torch.randn(3, 3, 16, 16)
    inputs, outputs = [], []

    def keep(module, given, output) -> None:
        inputs.append(given[0])
        outputs.append(output)

    hooks = [block.attention.register_forward_hook(keep) for block in model.blocks]
    maps = attention_maps(model, images)
    for hook in hooks:
        hook.remove()
    assert len(maps) == len(model.blocks) == len(outputs)
    for block, weights, x, expected in zip(model.blocks, maps, inputs, outputs):
        n, t, d = x.shape
        values = block.attention.qkv(x).view(n, t, 3, block.attention.heads, -1).permute(2, 0, 3, 1, 4)[2]
        mixed = (weights @ values).transpose(1, 2).reshape(n, t, d)
        assert torch.allclose(block.attention.proj(mixed), expected, atol=1e-5)
        assert torch.allclose(weights.sum(-1), torch.ones(()), atol=1e-5)


def test_attention_rollout_follows_the_attention():
    """When every block's class token attends only to one patch, the rollout peaks on that patch."""
    model = create_model("vit_tiny", image_size=16).eval()
    images = torch.randn(2, 3, 16, 16)
    chosen = 5  # token 1 + 5: the patch in row 1, column 1 of the 4×4 grid (4-pixel patches at 16 px)

    maps = attention_maps(model, images)
    forced = []
    for weights in maps:
        w = weights.clone()
        w[:, :, 0] = 0
        w[:, :, 0, 1 + chosen] = 1
        forced.append(w)
    heat = rollout_of(forced, pool="cls", size=(16, 16))
    assert peak_quadrants(heat) == [0, 0]  # row 1, column 1 of 4: the top-left quadrant
    assert heat[0, 4:8, 4:8].mean() > heat[0, 8:, 8:].mean()


def test_explain_writes_the_picture_and_refuses_a_bad_count(folder_run, tmp_path, capfd):
    _, run = folder_run
    code, out, err = run_main(main_modern.main, ["--explain", str(run / "best.pt"), str(tmp_path / "cam.png"),
                                                 "--explain-count", "6", "--device", "cpu"], capfd)
    assert code == 0 and (tmp_path / "cam.png").stat().st_size > 1000 and "Grad-CAM" in out, err
    code, _, err = run_main(main_modern.main, ["--explain", str(run / "best.pt"), str(tmp_path / "c.png"),
                                               "--explain-count", "0"], capfd)
    assert code == 2 and "--explain-count must be between 1 and 64" in err


def test_predict_breaks_ties_as_evaluation_does():
    """bf16 logits tie now and then: the predicted class is the lowest index among the tied, as argmax says."""
    from utils.after.predict import prediction_rows

    probabilities = torch.tensor([[0.1, 0.35, 0.35, 0.2], [0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.3, 0.7]])
    rows = prediction_rows(["a.jpg", "b.jpg", "c.jpg"], probabilities, ["w", "x", "y", "z"], top_k=3)
    assert [row["predicted"] for row in rows] == [["w", "x", "y", "z"][i] for i in probabilities.argmax(1).tolist()]
    assert [name for name, _ in rows[1]["top"]] == ["w", "x", "y"] and rows[2]["top"][0] == ("z", pytest.approx(0.7))
