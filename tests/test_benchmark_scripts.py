"""Every script of benchmarks/ answers bad input with one line and exit status 2, like the main scripts."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, benchmark_path, load_benchmark
from utils.errors import exit_on_user_error

SCRIPTS = sorted(p.stem for p in [*(REPO / "benchmarks").glob("*.py"), *(REPO / "benchmarks/gpu").glob("*.py")])


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_enters_through_the_one_line_error_handler(script):
    text = benchmark_path(script).read_text()
    main_block = text.split('if __name__ == "__main__":')[-1]
    assert "exit_on_user_error(" in main_block or script == "levels", script
    assert "file_errors=True" in main_block or script == "levels", script  # a read-only folder is one line too
    assert "OneLineArgumentParser" in text, script


def _run(script: str, argv: list[str], capfd) -> tuple[int, str]:
    module = load_benchmark(script)
    with pytest.raises(SystemExit) as stop:
        with exit_on_user_error(f"{script}.py", file_errors=True):
            module.main(argv) if module.main.__code__.co_argcount else module.main()
    return stop.value.code, capfd.readouterr().err


def _cases(tmp: Path) -> dict[str, tuple[str, list[str], str]]:
    a_file = tmp / "a-file"
    a_file.write_text("x")
    not_a_report = tmp / "results.json"
    not_a_report.write_text(json.dumps({"results": []}))
    smoke_report = tmp / "gpu-suite.json"
    smoke_report.write_text(json.dumps({"items": [], "smoke": True, "machine": {"gpu": None}}))
    data = tmp / "data"
    (data / "train" / "cat").mkdir(parents=True)
    return {
        "eval_chunks unknown model": ("eval_chunks", ["--model", "nosuch"], "unknown model 'nosuch'"),
        "eval_chunks no images": ("eval_chunks", ["--images", "0"], "--images: must be at least 1"),
        "eval_chunks unknown views": ("eval_chunks", ["--tta", "nosuch"], "invalid choice"),
        "eval_chunks negative chunk": ("eval_chunks", ["--chunks", "-1"], "--chunks: must be at least 0"),
        "eval_chunks batch 0": ("eval_chunks", ["--batch-size", "0"], "--batch-size: must be at least 1"),
        "large_folder size 0": ("large_folder", ["--data-dir", str(data), "--output", str(tmp / "o"), "--size", "0"],
                                "--size: must be between 1 and 4096"),
        "large_folder step 0": ("large_folder", ["--data-dir", str(data), "--output", str(tmp / "o"), "--step", "0"],
                                "--step: must be at least 1"),
        "large_folder quality 500": ("large_folder", ["--data-dir", str(data), "--output", str(tmp / "o"),
                                                      "--quality", "500"], "between 1 and 100"),
        "large_folder into its own data": ("large_folder", ["--data-dir", str(data), "--output", str(data)],
                                           "overlaps --data-dir"),
        "large_folder under a file": ("large_folder", ["--data-dir", str(data), "--output", str(a_file / "o")],
                                      "cannot create --output"),
        "step_ops with 0 steps": ("step_ops", ["--steps", "0"], "--steps: must be at least 1"),
        "step_ops of an unknown model": ("step_ops", ["--models", "nosuch"], "unknown model 'nosuch'"),
        "speed on a banana": ("speed", ["--device", "banana"], "invalid choice"),
        "speed with 0 steps": ("speed", ["--steps", "0"], "--steps: must be at least 1"),
        "augmentation throughput with 0 repeats": ("augmentation_throughput", ["--repeats", "0"],
                                                   "--repeats: must be at least 1"),
        "gpu_docs of a JSON that is not a report": ("gpu_docs", [str(not_a_report)], "is not a report"),
        "gpu_docs of a CPU smoke report": ("gpu_docs", [str(smoke_report)], "CPU smoke run"),
        "gpu_docs with --readme at a folder": ("gpu_docs", [str(REPO / "benchmarks/results/gpu-2026-11-30/gpu-suite.json"),
                                                            "--readme", str(tmp), "--guide", str(tmp / "none.md")],
                                               "is not a file"),
        "gpu_suite with no time": ("gpu_suite", ["--smoke", "--total-s", "0", "--out", str(tmp / "g")],
                                   "--total-s: must be a finite number above 0"),
        "gpu_suite with a negative time": ("gpu_suite", ["--smoke", "--total-s", "-5", "--out", str(tmp / "g")],
                                           "above 0"),
        "gpu_suite into an earlier report": ("gpu_suite", ["--smoke", "--out", str(smoke_report.parent)],
                                             "holds the report of an earlier suite run"),
    }


CASE_NAMES = sorted([
    "eval_chunks unknown model", "eval_chunks no images", "eval_chunks unknown views", "eval_chunks negative chunk",
    "eval_chunks batch 0", "large_folder size 0", "large_folder step 0", "large_folder quality 500",
    "large_folder into its own data", "large_folder under a file", "step_ops with 0 steps",
    "step_ops of an unknown model", "speed on a banana", "speed with 0 steps",
    "augmentation throughput with 0 repeats", "gpu_docs of a JSON that is not a report",
    "gpu_docs of a CPU smoke report", "gpu_docs with --readme at a folder", "gpu_suite with no time",
    "gpu_suite with a negative time", "gpu_suite into an earlier report"])


@pytest.mark.parametrize("name", CASE_NAMES)
def test_bad_input_to_a_benchmark_script_is_one_line_and_exit_2(name, tmp_path, capfd, monkeypatch):
    script, argv, expected = _cases(tmp_path)[name]
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])  # the scripts whose main() reads sys.argv
    code, err = _run(script, argv, capfd)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err and expected in err, err


def test_a_study_report_into_a_folder_of_another_study_is_refused_and_left_alone(tmp_path, capfd, monkeypatch):
    import benchmark_all
    from tests.conftest import run_main

    tiny = ["--dataset", "synthetic", "--synthetic-size", "64", "--image-size", "16", "--epochs", "1", "--batch-size",
            "32", "--workers", "0", "--cache-dir", "", "--no-progress", "--seeds", "1"]
    out = tmp_path / "study"
    code, _, err = run_main(benchmark_all.main, [*tiny, "--architectures", "--models", "cnn", "--output-dir", str(out)],
                            capfd)
    assert code == 0, err
    before = (out / "RESULTS.md").read_text()
    code, _, err = run_main(benchmark_all.main, [*tiny, "--record", "--report", "--output-dir", str(out)], capfd)
    assert code == 2 and "holds a benchmark of another command" in err
    # --report trains nothing, so it reads no data: without a data source it still answers about the folder
    monkeypatch.chdir(tmp_path)  # where the default --data-dir ./data would be made
    code, _, err = run_main(benchmark_all.main, ["--record", "--report", "--output-dir", str(out)], capfd)
    assert code == 2 and "holds a benchmark of another command" in err and not (tmp_path / "data").exists()
    assert (out / "RESULTS.md").read_text() == before


def test_gpu_run_without_arguments_prints_its_usage_on_stderr_and_exits_2():
    result = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu" / "gpu_run.sh")], capture_output=True, text=True)
    assert result.returncode == 2 and "usage: bash benchmarks/gpu/gpu_run.sh OUT" in result.stderr and not result.stdout


def test_a_read_only_output_folder_is_one_line(tmp_path, capfd):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    code, err = _run("gpu_suite", ["--smoke", "--items", "cuda", "--out", str(folder / "out")], capfd)
    assert code == 2 and re.search(r"cannot write or read|Permission denied", err)
