"""The GPU suite's smoke run: every stage on the CPU with synthetic data, so it cannot rot without a GPU."""
from __future__ import annotations

import json

from tests.conftest import load_benchmark


def _suite():
    return load_benchmark("gpu_suite")


def test_the_plan_fits_a_session(capsys):
    _suite().main(["--plan"])
    out = capsys.readouterr().out
    assert "stage 1 cuda" in out and "stage 5 techniques" in out and "total ~30 min" in out


def test_the_smoke_run_writes_every_stage(tmp_path):
    done = _suite().main(["--smoke", "--results-dir", str(tmp_path), "--models", "cnn", "vit_tiny"])
    assert sorted(done) == [1, 2, 3, 5]
    folder = next(tmp_path.glob("gpu-suite-smoke-*"))
    for stem in ("stage1-cuda", "stage2-models", "stage3-long", "stage5-techniques"):
        record = json.loads((folder / f"{stem}.json").read_text())
        assert record["rows"] and "torch" in record["machine"], stem
        assert (folder / f"{stem}.md").read_text().startswith("# GPU suite"), stem
    assert done[1][0]["exit"] == 0, done[1]  # the cuda tests collect (and skip without a GPU)
    assert [row["model"] for row in done[2]] == ["cnn", "vit_tiny"]
    assert all(row["img_per_s"] > 0 for row in done[2])
    assert [row["model"] for row in done[3]] == ["resnet18", "efficientnet_b0", "cnn_transformer_base"]
    assert done[5][0]["exit"] == 0 and "standard -> modern recipe" in done[5][0]["results_md"]
