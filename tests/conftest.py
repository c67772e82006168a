"""Shared helpers: tiny data written by the tests themselves, and running the entry scripts."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import pytest
import torch
from torchvision.io import write_jpeg, write_png

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Small, fast settings shared by the integration tests: synthetic 16×16 data, no workers, no cache.
SYNTHETIC = ["--dataset", "synthetic", "--image-size", "16", "--synthetic-size", "128", "--workers", "0",
             "--no-progress", "--cache-dir", ""]


class RunsCode:
    """Unpickling this object runs code: it creates a marker file. A safe loader must refuse it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_image_folder(root: Path, classes: Sequence[str] = ("cat", "dog", "ship"), per_class: int = 4,
                       test_name: str = "test") -> Path:
    """train/ and test/ class folders of small images of mixed sizes and formats (one greyscale PNG)."""
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", per_class), (test_name, max(1, per_class // 2))):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                height, width = (32, 32) if i % 2 == 0 else (40, 28)
                image = (torch.rand(3, height, width, generator=generator) * 60 + 60 * label).to(torch.uint8)
                if i == 1:
                    write_png(image[:1], str(folder / f"{i:04d}.png"))  # greyscale, converted to RGB
                else:
                    write_jpeg(image, str(folder / f"{i:04d}.jpg"), quality=95)
    return root


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_image_folder(tmp_path / "images")


def benchmark_path(name: str) -> Path:
    """``benchmarks/<name>.py``, or ``benchmarks/gpu/<name>.py`` for the tooling of a lent GPU."""
    path = REPO / "benchmarks" / f"{name}.py"
    return path if path.exists() else REPO / "benchmarks" / "gpu" / f"{name}.py"


def load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` (a script folder, not a package) as a module, to call its functions."""
    import importlib.util

    path = benchmark_path(name)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses in the script look their module up there
    spec.loader.exec_module(module)
    return module


def run_main(main, argv: Sequence[str], capfd) -> tuple[int, str, str]:
    """Call an entry script's ``main(argv)`` in-process; return (exit status, stdout, stderr)."""
    try:
        main(list(argv))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    out, err = capfd.readouterr()
    return code, out, err


def train_and_read_metrics(main, argv: Sequence[str], out: Path, capfd) -> tuple[str, dict]:
    """Run an entry script into ``out`` (it must succeed); return its stdout and ``metrics.json``."""
    import json

    code, stdout, err = run_main(main, [*argv, "--output-dir", str(out)], capfd)
    assert code == 0, err
    return stdout, json.loads((out / "metrics.json").read_text())


def run_script(script: str, argv: Sequence[str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run an entry script in a fresh Python process (for signals, exit codes and tracebacks)."""
    return subprocess.run([sys.executable, str(REPO / script), *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def start_script(script: str, argv: Sequence[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / script), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


def wait_for(predicate, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll ``predicate`` while ``process`` runs; fail if it exits or the time runs out first."""
    deadline = time.time() + timeout
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)
