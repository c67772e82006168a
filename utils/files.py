"""Writing files so that a crash never leaves half of one, and recognizing files that changed.

- :func:`atomic_write`: every file a run or a study writes (checkpoints, metrics, pictures, caches)
  goes through it: a temporary file in the same folder, then ``os.replace``;
- :func:`files_fingerprint`: the key of a cache built from files (decoded folders, streamed
  statistics): it changes when a file is added, removed, renamed or rewritten;
- :func:`unused_stem`: a name for result files that no earlier result holds (a second run the same
  day gets ``-2``, never the first one's files).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Sequence

from utils.errors import UserError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file through ``write(temporary)``, then rename it to ``path``.

    The rename is atomic on POSIX and Windows (same file system), so ``path`` is always either the
    old file or the complete new one. When writing fails (a full disk, a removed folder) the
    temporary file is deleted, the old ``path`` is kept, and the error is one line naming the file.
    The temporary name carries the pid, so two processes never write the same temporary file.
    """
    path = Path(path)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as error:  # torch.save reports a full disk as a RuntimeError
        reason = _why_writing_failed(error, path.parent)
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        kept = f"the previous {path.name} is kept" if path.exists() else f"no {path.name} was written"
        raise UserError(f"cannot write {path} ({reason}); {kept}; free some space (or fix the folder) "
                        f"and run again (a training run continues with --resume)") from None


def _why_writing_failed(error: Exception, folder: Path) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    try:  # torch.save's RuntimeError does not say why; a full disk is by far the most common cause
        if shutil.disk_usage(folder).free < 2**20:
            return "No space left on device"
    except OSError:
        pass
    return str(error).splitlines()[0][:100] or error.__class__.__name__


def write_json(path: Path, value: Any) -> None:
    """``value`` as indented JSON, written atomically."""
    atomic_write(path, lambda temporary: temporary.write_text(json.dumps(value, indent=2) + "\n"))


def files_fingerprint(header: str, files: Sequence[tuple[Path, int]]) -> str:
    """16 hex digits that change with ``header`` or any (file name, label, size, modification time)."""
    key = hashlib.sha1(header.encode())
    for path, label in files:
        try:
            stat = path.stat()
        except OSError as error:  # vanished or unreadable since it was listed
            raise UserError(f"cannot read {path} ({error.strerror or error.__class__.__name__})") from None
        key.update(f"{path.name}|{label}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return key.hexdigest()[:16]


def claim_stem(folder: Path, stem: str, suffixes: Sequence[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``...: the first whose files this process creates, empty, with O_EXCL.

    Two commands writing into one folder at the same time never get the same name: the kernel gives each
    file to one creator. The caller writes over the empty files, or removes them if it fails.
    """
    number = 1
    while True:
        candidate = stem if number == 1 else f"{stem}-{number}"
        made = []
        try:
            for suffix in suffixes:
                path = Path(folder) / f"{candidate}{suffix}"
                with open(path, "x"):
                    pass
                made.append(path)
            return candidate
        except FileExistsError:
            for path in made:
                path.unlink(missing_ok=True)
            number += 1


def unused_stem(folder: Path, stem: str, suffixes: Sequence[str]) -> str:
    """``stem``, or ``stem-2``, ``stem-3``...: the first for which no ``folder/<stem><suffix>`` exists yet."""
    candidate, number = stem, 1
    while any((Path(folder) / f"{candidate}{suffix}").exists() for suffix in suffixes):
        number += 1
        candidate = f"{stem}-{number}"
    return candidate
