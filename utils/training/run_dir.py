"""Run folders that never lose work.

A run folder (``--output-dir``) belongs to one run. :func:`claim_run_dir` is the one guard every
training run passes through:

- the folder must be writable (checked before any data is read);
- a folder that holds another run's files (``last.pt``, ``best.pt``, ``metrics.json``,
  ``config.json``) is refused unless the run resumes it (``--resume``); one that holds only a
  ``config.json`` (a run that failed before its first epoch ended) is taken over;
- a lock file (``run.lock``, holding the owner's pid) keeps two processes out of one folder at a
  time. The lock is an ``flock`` on that file, so the kernel drops it when its owner dies, even
  by ``kill -9``: a lock file whose owner is gone is stale and is simply taken over;
- a default folder (``runs/<model>-<date>-<time>``) is created with ``mkdir`` that fails if it
  exists, and gets a ``-2``, ``-3``... suffix when another run started in the same second.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator, Optional

from utils.errors import UserError

try:  # POSIX; elsewhere runs are not locked (the other guards still hold)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

RUN_FILES = ("last.pt", "best.pt", "metrics.json", "config.json")
STUDY_FILES = ("benchmark.json", "results.json", "results.csv", "RESULTS.md")  # benchmark_all.py's own
LOCK_NAME = "run.lock"


def holds_checkpoint(run_dir: Path) -> bool:
    """Run or resume: True when ``run_dir`` holds a run to continue (its ``last.pt``); else False, and what a run
    stopped before its first checkpoint left there (``config.json``) is removed, so that it starts afresh.

    What a study and ``--compare-models`` do for each of their runs: a re-run of the command continues them."""
    if (Path(run_dir) / "last.pt").exists():
        return True
    for name in RUN_FILES:
        (Path(run_dir) / name).unlink(missing_ok=True)
    return False


def refuse_run_files(path: Path, flag: str) -> None:
    """A file a command writes on request (predictions, say) never replaces a run's or a study's own files."""
    own = (*RUN_FILES, *STUDY_FILES, LOCK_NAME)
    if path.name in own and any((path.parent / name).exists() for name in own):
        raise UserError(f"{flag} {path} would replace a file of the run or study in {path.parent}; choose "
                        f"another name")


def unique_run_dir(parent: Path, prefix: str) -> Path:
    """Create and return ``parent/<prefix>-<YYYYmmdd-HHMMSS>``, with a suffix if that name is taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        candidate = parent / (f"{prefix}-{stamp}" + (f"-{attempt}" if attempt > 1 else ""))
        try:
            candidate.mkdir(parents=True)  # atomic: exactly one process creates a given name
            return candidate
        except FileExistsError:
            continue
        except OSError as error:
            raise UserError(f"cannot create a run folder in {parent} ({error.strerror or error}); "
                            f"choose a folder you can write to with --output-dir") from None
    raise UserError(f"too many runs named {prefix}-{stamp} in {parent}; pass --output-dir")


def _check_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise UserError(f"cannot write to --output-dir {run_dir} ({error.strerror or error}); "
                        f"choose a folder you can write to") from None


def _refuse_other_runs(run_dir: Path) -> None:
    if (run_dir / "benchmark.json").exists():
        raise UserError(f"{run_dir} holds a benchmark (benchmark.json), not a run; choose another --output-dir")
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if found == ["config.json"]:  # a run that failed before its first epoch ended: nothing to resume, nothing lost
        (run_dir / "config.json").unlink()
        return
    if found:
        raise UserError(f"{run_dir} already holds a run ({', '.join(found)}); continue it with --resume, "
                        f"or choose another --output-dir")


class RunLock:
    """An exclusive, non-blocking lock on ``run_dir/run.lock``; released (and the file removed) by :meth:`release`."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_NAME
        self._file = None

    def acquire(self) -> None:
        if fcntl is None or self._file is not None:  # (held already: a second flock would block on our own lock)
            return
        for _ in range(10):
            handle = open(self.path, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                owner = handle.read().strip() or "unknown"
                handle.close()
                raise UserError(f"{self.path.parent} is in use by another run (pid {owner}); wait for it to end, "
                                f"or choose another --output-dir") from None
            # The owner before us may have removed the file between our open() and flock(): then we
            # hold a lock on a deleted file, which protects nothing. Check and try again.
            try:
                same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
                self._file = handle
                return
            handle.close()
        raise UserError(f"could not lock {self.path}; another process keeps replacing it")

    def release(self) -> None:
        if self._file is not None:
            self.path.unlink(missing_ok=True)  # while still locked, so nobody takes a file about to vanish
            self._file.close()
            self._file = None


@contextlib.contextmanager
def claim_run_dir(output_dir: Optional[str], model: str, resume: bool) -> Iterator[Path]:
    """The run folder for this run, locked for as long as the ``with`` block runs.

    ``output_dir`` None: a new ``runs/<model>-<timestamp>`` folder. Otherwise the folder must be
    writable, must not hold another run unless ``resume``, and must not be in use.
    """
    run_dir = Path(output_dir) if output_dir else unique_run_dir(Path("runs"), model)
    _check_writable(run_dir)
    lock = RunLock(run_dir)
    lock.acquire()
    try:
        if not resume:
            _refuse_other_runs(run_dir)
        yield run_dir
    finally:
        lock.release()
