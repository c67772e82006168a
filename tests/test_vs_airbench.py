"""benchmarks/vs_airbench.py off the GPU: the data it hands airbench, its summary, its one-line refusal."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import load_benchmark, run_script, write_image_folder


def test_airbench_files_hold_our_pixels_in_its_layout(tmp_path):
    data = write_image_folder(tmp_path / "images", per_class=4)
    folder = load_benchmark("vs_airbench").write_airbench_data(str(data), tmp_path / "work", cache_dir="")
    train = torch.load(folder / "cifar10" / "train.pt", weights_only=True)  # as airbench loads it (safe load)
    test = torch.load(folder / "cifar10" / "test.pt", weights_only=True)
    assert train["images"].dtype == torch.uint8 and train["images"].shape == (12, 32, 32, 3)  # N, H, W, C
    assert test["images"].shape == (6, 32, 32, 3) and train["labels"].dtype == torch.int64
    assert train["classes"] == ["cat", "dog", "ship"] and sorted(set(train["labels"].tolist())) == [0, 1, 2]
    from utils.config import TrainConfig
    from utils.data.sources import load_splits
    from utils.resolve import resolve

    ours, _, _ = load_splits(resolve(TrainConfig(data_dir=str(data), progress=False, cache_dir="")))
    theirs = train["images"].permute(0, 3, 1, 2)
    assert not torch.equal(train["labels"], ours.labels.long())  # shuffled: the folder's order is class by class
    # The same (image, label) pairs, only transposed and reordered.
    assert sorted(zip(theirs.flatten(1).tolist(), train["labels"].tolist())) == \
        sorted(zip(ours.images.flatten(1).tolist(), ours.labels.tolist()))


def test_summary_means_stds_and_ratio():
    rows = [{"side": "preset", "seconds": s, "wall_s": s + 1, "accuracy": a} for s, a in ((2.0, 94.0), (4.0, 94.2))]
    rows += [{"side": "airbench94", "seconds": s, "wall_s": s, "accuracy": 94.0} for s in (4.0, 4.0)]
    summary = load_benchmark("vs_airbench").summarize(rows)
    assert summary["preset"]["seconds_mean"] == 3.0 and summary["preset"]["seconds_std"] == pytest.approx(1.414, abs=1e-3)
    assert summary["airbench94"]["accuracy_std"] == 0.0 and summary["ratio"]["time_preset_over_airbench"] == 0.75


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_without_cuda_it_says_so_in_one_line(tmp_path):
    result = run_script("benchmarks/vs_airbench.py", ["--data-dir", str(tmp_path)])
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "CUDA" in result.stderr
