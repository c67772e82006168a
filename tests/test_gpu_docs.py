"""benchmarks/gpu/gpu_docs.py: GPU figures go into the docs' marked regions, and nowhere else."""
from __future__ import annotations

import json

import pytest

from utils.errors import UserError

from tests.conftest import load_benchmark

MACHINE = {"gpu": "NVIDIA H200", "torch": "2.11.0", "cuda": "13.0", "date": "2026-11-30"}
README = """# Title
Keep this line.
<!-- gpu:models-table -->
| model | parameters (measured) | H200 img/s, 1 epoch (measured) | peak GPU memory (measured) | use |
| --- | --- | --- | --- | --- |
| `cnn` | 1.21M | old | old | baseline |
| `vit_tiny` | 5.36M | old | old | attention |
<!-- /gpu:models-table -->
<!-- gpu:faq-memory -->
stale text
<!-- /gpu:faq-memory -->
Tail line.
"""


def _report(tmp_path, items):
    path = tmp_path / "gpu-suite.json"
    path.write_text(json.dumps({"command": "c", "machine": MACHINE, "total_s": 540, "items": items}))
    return str(path)


def test_cells_and_paragraphs_are_written_from_the_json_and_the_rest_is_kept(tmp_path):
    docs = load_benchmark("gpu_docs")
    report = _report(tmp_path, [{"name": "models", "status": "done", "rows": [
        {"model": "cnn", "img_per_s": 12048.2, "train_s": 4.15, "peak_memory_mib": 359.7}]}])
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert docs.main([report, "--readme", str(readme), "--guide", str(tmp_path / "absent.md")]) == 0
    text = readme.read_text()
    assert "| `cnn` | 1.21M | 12,048 (4.2 s) | 0.35 GiB | baseline |" in text
    assert f"| `vit_tiny` | 5.36M | {docs.NOT_MEASURED} | {docs.NOT_MEASURED} | attention |" in text
    assert "stale text" not in text and "cnn 0.35 GiB" in text and "NVIDIA H200, torch 2.11.0" in text
    assert text.startswith("# Title\nKeep this line.\n") and text.endswith("Tail line.\n")
    again = readme.read_text()
    docs.main([report, "--readme", str(readme), "--guide", str(tmp_path / "absent.md")])
    assert readme.read_text() == again  # rewriting is idempotent: the markers survive


def test_an_earlier_report_wins_and_a_later_one_fills_the_gaps(tmp_path):
    docs = load_benchmark("gpu_docs")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _report(tmp_path / "a", [{"name": "models", "rows": [{"model": "cnn", "img_per_s": 1.0, "train_s": 1}]}])
    second = _report(tmp_path / "b", [{"name": "models", "rows": [{"model": "cnn", "img_per_s": 2.0, "train_s": 1},
                                                                  {"model": "vit_tiny", "img_per_s": 3.0,
                                                                   "train_s": 1}]}])
    figures = docs.load([first, second])
    assert figures.models["cnn"]["img_per_s"] == 1.0 and figures.models["vit_tiny"]["img_per_s"] == 3.0


def test_an_unknown_region_is_refused(tmp_path):
    docs = load_benchmark("gpu_docs")
    with pytest.raises(UserError, match="unknown region"):
        docs.rewrite("<!-- gpu:nonsense -->\nx\n<!-- /gpu:nonsense -->\n", docs.load([_report(tmp_path, [])]))
