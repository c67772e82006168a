"""The GPU suite off the GPU: its plan fits the device call, its smoke run writes every item, its boxes hold."""
from __future__ import annotations

import json
import sys

from tests.conftest import load_benchmark


def _suite():
    return load_benchmark("gpu_suite")


def test_the_boxes_add_up_to_at_most_nine_minutes(capsys):
    suite = _suite()
    assert sum(item.box_s for item in suite.ITEMS) <= 9 * 60
    assert [item.name for item in suite.ITEMS] == ["cuda", "steps", "flagship", "airbench", "models", "techniques"]
    suite.main(["--plan"])
    out = capsys.readouterr().out
    assert "flagship" in out and "total 540s = 9.0 min" in out


def test_the_smoke_run_writes_every_item_in_at_most_eight_files(tmp_path):
    out = tmp_path / "out"
    report = _suite().main(["--smoke", "--out", str(out), "--models", "cnn", "vit_tiny"])
    assert len(list(out.iterdir())) <= 8
    record = json.loads((out / "gpu-suite.json").read_text())
    items = {item["name"]: item for item in record["items"]}
    assert list(items) == ["cuda", "steps", "flagship", "airbench", "models", "techniques"]
    assert all(item["status"] == "done" for item in items.values()), [(i["name"], i.get("error")) for i in items.values()]
    assert items["cuda"]["rows"][0]["exit"] == 0  # the cuda tests collect (and skip without a GPU)
    assert [row["variant"] for row in items["steps"]["rows"]] == ["eager", "compiled"]  # the step compiled whole
    assert all(row["img_per_s"] > 0 and row["warmup_s"] > 0 for row in items["steps"]["rows"])
    assert all(row["steady"] and row["train_s"] > 0 for row in items["models"]["rows"])  # windows, not whole epochs
    assert items["flagship"]["rows"][0]["model"] == "resnet18"
    assert items["airbench"]["rows"][0]["model"] == "speednet"  # the preset's network, not the default cnn
    assert [row["model"] for row in items["models"]["rows"]] == ["cnn", "vit_tiny"]
    assert all(row["img_per_s"] > 0 for row in items["models"]["rows"])
    assert "standard -> modern recipe" in items["techniques"]["results_md"]
    assert (out / "gpu-suite.md").read_text().startswith("# GPU suite") and report == record


def test_an_item_past_its_box_is_stopped_and_the_next_one_runs(tmp_path):
    suite = _suite()
    with open(tmp_path / "log", "w") as log:
        status, code, seconds, _ = suite.run_boxed([sys.executable, "-c", "import time; time.sleep(60)"], 2.0, log)
        assert status == "time box" and seconds < 5
        status, code, _, stderr = suite.run_boxed([sys.executable, "-c", "raise SystemExit('boom')"], 10.0, log)
    assert status == "failed" and code == 1 and "boom" in stderr


def test_how_far_projects_a_stopped_run_to_its_end(tmp_path):
    history = [{"epoch": e, "epoch_time_s": 2.0, "test_acc": 50.0 + e, "ema_test_acc": None} for e in (1, 2)]
    (tmp_path / "metrics.json").write_text(json.dumps({"history": history, "train_time_s": 3.0, "train_images": 600}))
    far = _suite().how_far({"label": "r", "run_dir": str(tmp_path), "epochs": 50})
    assert far["epochs_done"] == 2 and far["projected_total_s"] == 100.0
    assert far["img_per_s"] == 400.0 and far["last_test_acc"] == 52.0
