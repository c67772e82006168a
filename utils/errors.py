"""User-facing errors: one clear line on stderr and exit status 2, never a traceback.

Library code raises :class:`UserError` for anything the *user* can fix (a bad flag, missing data,
a corrupt checkpoint). Entry scripts wrap their work in :func:`exit_on_user_error`, which turns the
exception into ``error: <message>`` on stderr and exit status 2. Programming errors keep their
tracebacks, because those are for us, not for the user.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import math
import os
import signal
import stat
import sys
from typing import Callable, Iterable, Iterator, Optional


class UserError(Exception):
    """A mistake in the user's input; the message says what was wrong and what to do."""


def close_names(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Phrase like ``did you mean resnet18, resnet34?`` or the full list when nothing is close."""
    choices = sorted(choices)
    matches = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if matches:
        return "did you mean " + ", ".join(matches) + "?"
    return "choose from " + ", ".join(choices)


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (exit 2) instead of the usage block (every script uses it)."""

    def error(self, message: str) -> None:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def whole_number(low: int, high: Optional[int] = None) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high] (high None: no upper bound), else one line."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number (got '{text}')") from None
        if value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bounds} (got {value})")
        return value
    return parse


def positive_number(text: str) -> float:
    """An argparse type: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (got '{text}')") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0 (got {text})")
    return value


@contextlib.contextmanager
def exit_on_user_error(program: str = "", file_errors: bool = False) -> Iterator[None]:
    """Turn a :class:`UserError` into one line on stderr and ``SystemExit(2)``; a :class:`RunStopped`
    into one line and its own exit status (130 for SIGINT, 143 for SIGTERM, 3 for a diverged loss);
    a bare Ctrl-C (outside training, or a second one) into ``interrupted`` and 130; output piped into a
    reader that stopped reading (``| head``) into a quiet exit, 141. ``file_errors``: an OSError (a
    read-only folder, a path under a file) is one line and exit 2 too (the benchmarks' scripts, whose
    files are their own; the training code turns its OSErrors into UserErrors where they happen)."""
    prefix = f"{program}: " if program else ""
    try:
        yield
        sys.stdout.flush()  # piped output is buffered: a reader that left is met here, not at exit
    except UserError as error:
        print(f"{prefix}error: {_one_line(error)}", file=sys.stderr)
        sys.exit(2)
    except RunStopped as stop:
        if not stop.quiet:
            print(f"{prefix}stopped: {_one_line(stop)}", file=sys.stderr)
        sys.exit(stop.exit_code)
    except KeyboardInterrupt:  # Ctrl-C outside training, or twice: nothing to save, stop quietly
        print(f"{prefix}interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader left (``--list | head``): stop quietly, as a shell tool does
        if not stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode):
            raise  # a broken pipe elsewhere (a data worker) is a real failure
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush has nowhere to fail
        sys.exit(141)  # 128 + SIGPIPE
    except OSError as error:  # file_errors: a script's own files (a read-only folder, a path under a file)
        if not file_errors:
            raise
        where = f" {error.filename}" if error.filename else ""
        print(f"{prefix}error: cannot write or read{where} ({error.strerror or error})", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def exit_at_once_on_ctrl_c(program: str) -> Iterator[None]:
    """While the entry script imports torch (seconds), Ctrl-C exits at once: one line, status 130.

    Nothing can be lost yet, and a KeyboardInterrupt raised into a half-imported library can
    surface later as an unrelated error with a traceback; a handler that exits avoids both.
    """
    def handler(signum, frame) -> None:
        sys.stderr.write(f"{program}: interrupted\n")
        sys.stderr.flush()
        os._exit(130)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (imported by a test runner's worker): nothing to do
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _one_line(error: Exception) -> str:
    # Collapse to one line: a user error is a sentence, not a report.
    return " ".join(str(error).split())


class RunStopped(Exception):
    """A run that stopped on purpose (signal, diverged loss): a one-line message and an exit status."""

    def __init__(self, message: str, exit_code: int, quiet: bool = False, advice: str = "") -> None:
        super().__init__(f"{message}; {advice}" if advice else message)
        self.what, self.advice = message, advice  # what happened; how to continue (a caller may know better)
        self.exit_code = exit_code
        self.quiet = quiet  # a torchrun process other than rank 0, whose rank 0 says the same line

    def __reduce__(self):  # pickled as it was made (Exception's default passes the message alone)
        return RunStopped, (self.what, self.exit_code, self.quiet, self.advice)
