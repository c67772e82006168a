"""``--config RUN/config.json``: a new run with a recorded run's settings reproduces it; flags on top win; what a
script or a study set comes back too; what depends on the machine is decided afresh.

The refusals (missing file, not JSON, unknown settings, ``--config`` with ``--resume``...) are rows of
``tests/test_bad_inputs.py``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import main_modern
from utils.after.rerun import DECIDED_HERE, NOT_INHERITED, rerun_settings, with_preset
from utils.cli import config_from_args
from utils.config import TrainConfig
from utils.presets import preset_settings
from utils.resolve import resolve, resolve_for_device

from tests.conftest import run_main

TINY = ["--dataset", "synthetic", "--synthetic-size", "64", "--image-size", "16", "--batch-size", "16",
        "--device", "cpu", "--workers", "0", "--no-progress", "--cache-dir", "", "--seed", "5"]


def comparable(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if not k.endswith("_time_s")} for row in history]


def read(run: Path, name: str) -> dict:
    return json.loads((run / name).read_text())


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("rerun") / "recorded"
    code = main_modern.main([*TINY, "--epochs", "2", "--step-size", "1", "--ema", "--output-dir", str(run)]) or 0
    assert code == 0 and (run / "config.json").exists()
    return run


def test_a_rerun_reproduces_the_recorded_run(recorded_run, tmp_path, capfd):
    rerun = tmp_path / "rerun"
    code, _, err = run_main(main_modern.main, ["--config", str(recorded_run / "config.json"), "--output-dir",
                                               str(rerun)], capfd)
    assert code == 0, err
    assert comparable(read(rerun, "metrics.json")["history"]) == comparable(read(recorded_run, "metrics.json")["history"])
    then, now = read(recorded_run, "config.json"), read(rerun, "config.json")
    assert {k for k in then if then[k] != now[k]} == {"output_dir", "rerun_of"}
    assert now["rerun_of"] == str(recorded_run / "config.json") and then["rerun_of"] is None
    assert now["user_settings"] == then["user_settings"]  # the same flags given (then and now: --output-dir)


def test_a_flag_on_top_wins_and_the_rerun_gets_a_folder_of_its_own(recorded_run, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)  # the default folder is runs/<model>-<time> under the working directory
    code, out, err = run_main(main_modern.main, ["--config", str(recorded_run / "config.json"), "--epochs", "1"], capfd)
    assert code == 0, err
    (run,) = (tmp_path / "runs").iterdir()
    history = read(run, "metrics.json")["history"]
    assert len(history) == 1 and read(run, "config.json")["epochs"] == 1
    # With --step-size 1 the schedule is the same for epoch 1 of 1 or of 2: so is the epoch.
    assert comparable(history) == comparable(read(recorded_run, "metrics.json")["history"])[:1]


# ------------------------------------------------------------------------------------ what a rerun takes
def rerun_config(recorded: TrainConfig, **on_top) -> TrainConfig:
    """The config a rerun of ``recorded`` builds (as ``utils/cli.config_from_args`` does), with flags on top."""
    settings, _ = rerun_settings(json.loads(json.dumps(recorded.to_dict())))  # as read back from config.json
    return resolve(TrainConfig(**with_preset({**settings, **on_top})))


def same_run(a: TrainConfig, b: TrainConfig) -> dict:
    """The settings in which two configs differ, bookkeeping and machine-dependent ones aside."""
    return {k: (v, getattr(b, k)) for k, v in a.to_dict().items()
            if k not in NOT_INHERITED + DECIDED_HERE and v != getattr(b, k)}


def test_values_a_study_set_without_flags_come_back():
    """A benchmark arm: its budget and its technique set with replace(), none of it in user_settings."""
    base = TrainConfig(dataset="synthetic", epochs=3, subset=64, eval_every=1, progress=False)
    arm = resolve(base.replace(model="resnet_tiny", recipe="modern", optimizer="sgd", lookahead=True, ema=False,
                               mixup=0.8, seed=2, output_dir="study/x/seed-2"))
    assert arm.user_settings == [] and same_run(arm, rerun_config(arm)) == {}


def test_a_preset_run_reruns_from_its_preset_and_its_flags():
    given = {"preset": "speed", "epochs": 3, "tta": "none"}
    preset = preset_settings("speed")
    recorded = resolve(TrainConfig(**{**preset, **given}, user_settings=sorted(given),
                                   preset_settings=sorted(set(preset) - set(given) - {"preset"})))
    settings, user_given = rerun_settings(json.loads(json.dumps(recorded.to_dict())))
    assert settings == given and sorted(user_given) == sorted(given)  # the preset's values come from the preset
    assert same_run(recorded, rerun_config(recorded)) == {}


def test_the_values_the_recipe_derives_are_derived_again_with_a_flag_on_top():
    recorded = resolve(TrainConfig(recipe="modern", epochs=30, dataset="synthetic", user_settings=["recipe", "epochs"]))
    assert recorded.warmup_epochs == 3.0 and rerun_config(recorded).warmup_epochs == 3.0
    assert rerun_config(recorded, epochs=90).warmup_epochs == 5.0  # as a fresh 90-epoch run: at most 5 epochs


def test_a_gpu_run_reruns_on_a_cpu_with_the_cpus_precision():
    import torch

    recorded = resolve(TrainConfig(recipe="modern", dataset="synthetic", workers=8, user_settings=["recipe"]))
    recorded, _ = resolve_for_device(recorded, torch.device("cuda"))  # what config.json holds after a GPU run
    assert recorded.amp and recorded.channels_last and recorded.resolved_for == "cuda"
    settings, _ = rerun_settings(json.loads(json.dumps(recorded.to_dict())))
    assert not {"amp", "amp_dtype", "channels_last", "workers", "resolved_for"} & set(settings)
    fresh, _ = resolve_for_device(resolve(TrainConfig(recipe="modern", dataset="synthetic")), torch.device("cpu"))
    rerun, _ = resolve_for_device(rerun_config(recorded), torch.device("cpu"))
    assert (rerun.amp, rerun.amp_dtype, rerun.channels_last) == (fresh.amp, fresh.amp_dtype, fresh.channels_last)
    kept = recorded.replace(user_settings=["recipe", "amp"], amp=False)  # --no-amp was the user's: it stays
    assert rerun_config(kept).amp is False


def test_the_rerun_config_records_where_it_came_from(recorded_run):
    args = main_modern.build_parser().parse_args(["--config", str(recorded_run / "config.json"), "--lr", "0.01"])
    config = config_from_args(args)
    assert config.rerun_of == str(recorded_run / "config.json") and config.output_dir is None and not config.resume
    assert config.lr == 0.01 and "lr" in config.user_settings and "ema" in config.user_settings
