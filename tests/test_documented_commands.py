"""Every ``python main.py`` / ``main_modern.py`` / ``benchmark_all.py`` command in README.md and the guide runs.

Each command is run end to end, in-process, in smoke mode (``CIFAR_SMOKE=1``, ``utils/smoke.py``:
synthetic data, one epoch, the same code paths otherwise) in a temporary folder, and must exit 0 and
write the files it promises (a run folder, a comparison, a preview, a benchmark report). Placeholders
are filled in: ``DATA`` and the data paths are ignored by smoke mode; ``runs/<model>-YYYYMMDD-HHMMSS``
is a run trained here first (for ``--evaluate`` and ``--resume``); absolute ``/tmp/...`` output folders
move into the temporary folder.
"""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from torchvision.io import write_jpeg

import benchmark_all
import main as main_script
import main_modern

from tests.conftest import REPO, run_main

MAINS = {"main.py": main_script.main, "main_modern.py": main_modern.main, "benchmark_all.py": benchmark_all.main}
DOCS = ("README.md", "MODERN_DL_GUIDE.md")
COMMAND = re.compile(r"python (main(?:_modern)?\.py|benchmark_all\.py)([^`|\n#]*)")
PLACEHOLDER_RUN = re.compile(r"runs/([a-z0-9_]+)-YYYYMMDD-HHMMSS")


def documented_commands() -> list[tuple[str, str]]:
    """(document, command) for every distinct command; two that differ only in ``--data-dir`` (ignored in
    smoke mode) run once."""
    commands: dict[str, tuple[str, str]] = {}
    for doc in DOCS:
        text = (REPO / doc).read_text().replace("\\\n", " ")  # a command continued over lines is one line
        for match in COMMAND.finditer(text):
            command = " ".join(f"{match.group(1)}{match.group(2)}".split()).split("&&")[0].strip()
            commands.setdefault(re.sub(r" --data-dir \S+", "", command), (doc, command))
    return sorted(commands.values())


def test_the_docs_hold_commands_of_every_script():
    scripts = {command.split()[0] for _, command in documented_commands()}
    assert scripts == set(MAINS)


BENCHMARK_COMMAND = re.compile(r"python benchmarks/(?:gpu/)?([a-z_]+)\.py([^`|\n#]*)")


def documented_benchmark_commands() -> list[tuple[str, str, str]]:
    """(document, script, arguments) of every ``python benchmarks/<script>.py`` command in the docs."""
    found: dict[str, tuple[str, str, str]] = {}
    for doc in DOCS:
        text = (REPO / doc).read_text().replace("\\\n", " ")
        for match in BENCHMARK_COMMAND.finditer(text):
            arguments = " ".join(match.group(2).split()).split("&&")[0].strip()
            found.setdefault(f"{match.group(1)} {arguments}", (doc, match.group(1), arguments))
    return sorted(found.values())


class _Parsed(Exception):
    """Raised once a script has parsed its flags: the command is valid, and nothing more runs."""


@pytest.mark.parametrize("doc,script,arguments", documented_benchmark_commands())
def test_documented_benchmark_command_parses(doc, script, arguments, monkeypatch, capfd):
    """The benchmarks need data, a GPU or minutes (each says so in the docs); what the test can check without
    them is that every flag exists and every value is accepted by the script's own parser. levels.py runs
    whole in smoke mode in tests/test_levels.py."""
    from tests.conftest import load_benchmark
    import argparse

    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed()

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    argv = shlex.split(arguments)
    monkeypatch.setattr("sys.argv", [f"{script}.py", *argv])
    module = load_benchmark(script)
    main = module.main
    with pytest.raises(_Parsed):
        try:
            main(argv) if main.__code__.co_argcount else main()
        except SystemExit as stop:
            pytest.fail(f"{doc}: python benchmarks/{script}.py {arguments}: exit {stop.code}: "
                        f"{capfd.readouterr().err[-500:]}")


def test_the_docs_hold_benchmark_commands():
    scripts = {script for _, script, _ in documented_benchmark_commands()}
    assert {"levels", "speed", "vs_airbench"} <= scripts, scripts


def _train_smoke_run(run: Path, model: str, capfd) -> None:
    code, _, err = run_main(main_modern.main, ["--model", model, "--output-dir", str(run), "--no-progress"], capfd)
    assert code == 0, err


def _prepare_placeholder_runs(argv: list[str], workdir: Path, capfd) -> list[str]:
    """Train (in smoke mode) the runs a command reads: a ``runs/<model>-YYYYMMDD-HHMMSS`` placeholder, or
    the checkpoint of ``--evaluate`` or the ``config.json`` of ``--config`` that an earlier documented
    command would have written; return argv."""
    if "--resume" in argv and "--output-dir" in argv:  # a run an earlier command of the docs trained
        run = Path(argv[argv.index("--output-dir") + 1])
        if not PLACEHOLDER_RUN.search(str(run)) and not (run / "last.pt").exists():
            _train_smoke_run(run, "cnn", capfd)
    for flag in ("--evaluate", "--config", "--predict", "--export", "--explain"):
        if flag in argv:
            written = Path(argv[argv.index(flag) + 1])
            if not PLACEHOLDER_RUN.search(str(written)) and not written.exists():
                _train_smoke_run(written.parent, "cnn", capfd)
    if "--predict" in argv:  # the user's own pictures: a photo-sized JPEG for each file, one in each folder
        for name in argv[argv.index("--predict") + 2:]:
            if name.startswith("-"):
                break
            path = workdir / name
            path = path / "photo.jpg" if not Path(name).suffix else path
            path.parent.mkdir(parents=True, exist_ok=True)
            write_jpeg((torch.rand(3, 480, 640) * 255).to(torch.uint8), str(path))
    filled = []
    for arg in argv:
        match = PLACEHOLDER_RUN.search(arg)
        if match:
            run = workdir / "prepared" / match.group(1)
            if not (run / "best.pt").exists():
                _train_smoke_run(run, match.group(1), capfd)
            arg = arg.replace(match.group(0), str(run))
        filled.append(arg)
    return filled


def _promised_files(script: str, argv: list[str], workdir: Path) -> list[Path]:
    """The files the command says it writes (checked after it ran)."""
    def value(flag: str):
        return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None

    if script == "benchmark_all.py":
        if "--list" in argv:
            return []
        out = value("--output-dir")
        return [Path(out) / "RESULTS.md"] if out else [next((workdir / "runs").glob("benchmark-*")) / "RESULTS.md"]
    for flag in ("--preview-augmentation", "--plot-schedule", "--misclassified"):  # a picture at the path given
        if flag in argv:
            return [workdir / value(flag)]
    if "--explain" in argv:  # --explain CHECKPOINT PNG
        return [workdir / argv[argv.index("--explain") + 2]]
    if "--export" in argv:  # best.pt → best.onnx and best.pt2 beside it
        checkpoint = Path(value("--export"))
        return [checkpoint.with_suffix(".onnx"), checkpoint.with_suffix(".pt2")]
    if any(flag in argv for flag in ("--list-models", "--list-activations", "--evaluate", "--predict")):
        return []
    if "--compare-models" in argv:
        out = value("--output-dir")
        folder = Path(out) if out else next((workdir / "runs").glob("compare-*"))
        return [folder / "comparison.json", folder / "comparison.png"]
    out = value("--output-dir")
    folder = Path(out) if out else max((workdir / "runs").glob("*-*"), key=lambda p: p.stat().st_mtime)
    return [folder / name for name in ("config.json", "metrics.json", "best.pt", "last.pt", "curves.png")]


def _is_heavy(command: str) -> bool:
    """Commands that train many models (every registry model, or a whole benchmark): their checkpoints take
    gigabytes of disk even in smoke mode, so they run with ``-m slow``, not in the default suite."""
    return ((command.startswith("benchmark_all.py") and "--list" not in command)
            or re.search(r"--compare-models(?! [a-z])", command) is not None)


def _marked(commands: list[tuple[str, str]]) -> list:
    return [pytest.param(doc, command, marks=pytest.mark.slow) if _is_heavy(command) else (doc, command)
            for doc, command in commands]


@pytest.fixture
def workdir(tmp_path):
    """The command's folder, deleted afterwards: checkpoints of many runs would otherwise fill the disk."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.parametrize("doc,command", _marked(documented_commands()))
def test_documented_command_runs_in_smoke_mode(doc, command, workdir, monkeypatch, capfd):
    tmp_path = workdir
    monkeypatch.setenv("CIFAR_SMOKE", "1")
    monkeypatch.chdir(tmp_path)
    script, *argv = shlex.split(command)
    argv = [re.sub(r"^/tmp/", f"{tmp_path}/abs/", a) for a in argv]
    argv = _prepare_placeholder_runs(argv, tmp_path, capfd)
    if "--no-progress" not in argv and script != "benchmark_all.py":
        argv.append("--no-progress")
    code, stdout, err = run_main(MAINS[script], argv, capfd)
    assert code == 0, f"{doc}: {command}\n{err[-2000:]}"
    for path in _promised_files(script, argv, tmp_path):
        assert path.is_file() and path.stat().st_size > 0, f"{doc}: {command} did not write {path}"
    if any(flag in argv for flag in ("--list-models", "--list-activations", "--list", "--evaluate", "--predict",
                                     "--export")):
        assert stdout.strip(), f"{doc}: {command} printed nothing"
