"""Real-data checks, marked slow (minutes on a CPU): ``python -m pytest -m slow``.

They need CIFAR-10 as an image folder at ``../shared/data/cifar10-jpeg`` (or ``$CIFAR10_DIR``), and
are skipped without it.
"""
import json
import os
from pathlib import Path

import pytest

import main_modern
from models import list_models

from tests.conftest import REPO, run_main

DATA = Path(os.environ.get("CIFAR10_DIR", REPO.parent / "shared" / "data" / "cifar10-jpeg"))
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (DATA / "train").is_dir(), reason=f"no CIFAR-10 at {DATA}")]


@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_one_epoch_on_real_data(name, tmp_path, capfd):
    out = tmp_path / name
    code, stdout, err = run_main(main_modern.main, ["--model", name, "--data-dir", str(DATA), "--epochs", "1",
                                                    "--subset", "512", "--test-subset", "1000", "--batch-size", "64",
                                                    "--seed", "0", "--no-progress", "--output-dir", str(out)], capfd)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    entry = metrics["history"][0]
    assert entry["train_loss"] == entry["train_loss"] and entry["test_acc"] >= 0  # finite, recorded
    print(f"{name}: {entry}")
