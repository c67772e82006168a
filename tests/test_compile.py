"""torch.compile stays clean: one graph per model, no breaks; compiled runs checkpoint, resume and evaluate.

Marked slow (minutes on a CPU): ``python -m pytest -m slow tests/test_compile.py``.
"""
from __future__ import annotations

import json

import pytest
import torch

import main_modern
from models import create_model, list_models
from utils.training.checkpoint import load_checkpoint

from tests.conftest import SYNTHETIC, run_main

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("training", [True, False])
def test_every_model_compiles_to_one_graph_without_breaks(name, training):
    torch._dynamo.reset()
    model = create_model(name, drop_path_rate=0.1, dropblock_prob=0.1).train(training)
    explanation = torch._dynamo.explain(model)(torch.randn(2, 3, 32, 32))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


def test_a_compiled_run_with_ema_checkpoints_resumes_and_evaluates(tmp_path, capfd):
    out = tmp_path / "run"
    flags = [*SYNTHETIC, "--model", "resnet_tiny", "--modern-training", "--compile", "--dropblock", "0.1"]
    assert run_main(main_modern.main, [*flags, "--epochs", "1", "--output-dir", str(out)], capfd)[0] == 0
    code, _, err = run_main(main_modern.main, ["--resume", "--output-dir", str(out), "--epochs", "2",
                                               "--no-progress"], capfd)
    assert code == 0, err
    checkpoint = load_checkpoint(out / "last.pt")
    assert not any("_orig_mod." in key for key in checkpoint["model"])
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 2
    code, stdout, err = run_main(main_modern.main, ["--evaluate", str(out / "best.pt"), *SYNTHETIC], capfd)
    assert code == 0 and "test acc" in stdout, err
