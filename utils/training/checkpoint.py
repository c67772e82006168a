"""Checkpoints that are safe to write, safe to read, and enough to resume exactly.

- Written atomically (``utils/files.atomic_write``), so a crash during the write leaves the
  previous ``last.pt`` intact.
- Read with ``torch.load(weights_only=True)``: only tensors and plain containers are unpickled,
  so a file that carries code is refused instead of executed. Everything stored here is such plain
  data (NumPy's RNG state is converted to a tensor for that reason).
- A missing, truncated or corrupt file is a one-line :class:`UserError` naming it.
"""
from __future__ import annotations

import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from utils.errors import UserError
from utils.files import atomic_write

CHECKPOINT_FORMAT = 1


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda temporary: torch.save({"format": CHECKPOINT_FORMAT, **state}, temporary))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; refuse anything else with one line."""
    path = Path(path)
    if path.is_dir():
        hint = f"give {path / 'best.pt'}" if (path / "best.pt").exists() else "give a checkpoint file (best.pt or last.pt)"
        raise UserError(f"{path} is a folder, not a checkpoint; {hint}")
    if not path.is_file():
        raise UserError(f"no checkpoint at {path}")
    with open(path, "rb") as file:
        start = file.read(2)
    # torch.save writes a zip archive (older torch: a pickle, protocol 2+): anything else is another kind of
    # file (text, an image...), which the unpickler would only report as an odd "unsupported operand".
    if start != b"PK" and start[:1] != b"\x80":
        raise UserError(f"{path} is not a readable checkpoint: not a file torch.save writes (a text file, an image "
                        f"or another kind of file); give the run's best.pt or last.pt")
    try:
        with warnings.catch_warnings():  # torch warns about unusual pickle protocols; our error says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refused an object that is not plain data: it could run code when unpickled.
        # torch's message is long; the name of the refused global (e.g. posix.system) is what matters.
        found = re.search(r"GLOBAL ([\w.]+)|Unsupported operand \d+", str(error))
        what = f" ({found.group(1) or found.group(0)})" if found else ""
        raise UserError(f"refusing to load {path}: it holds objects other than tensors and plain data{what}, "
                        f"which could run code") from None
    except Exception as error:  # whatever torch.load meets in a file that is not one (KeyError for text, ...)
        raise UserError(f"{path} is not a readable checkpoint: truncated, corrupt or another kind of file "
                        f"({error.__class__.__name__}); delete it or use another one") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "model" not in state:
        raise UserError(f"{path} is not a checkpoint of this project (no model state or unknown format)")
    return state


def describe_classes(names: list[str]) -> str:
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{len(names)} classes ({shown})"


def check_class_names(checkpoint: dict[str, Any], class_names: list[str], path: Path) -> None:
    """Refuse to use ``checkpoint`` on data whose classes are not the ones it was trained on.

    Same count but other names (or another order) would still give an accuracy, a meaningless one.
    Checkpoints from before class names were stored are checked by their class count.
    """
    trained = checkpoint.get("class_names")
    count = checkpoint.get("config", {}).get("num_classes")
    if trained is not None and list(trained) != list(class_names):
        raise UserError(f"{path} was trained on {describe_classes(list(trained))}, but this data has "
                        f"{describe_classes(list(class_names))}; use the data it was trained on (--data-dir)")
    if trained is None and count is not None and count != len(class_names):
        raise UserError(f"{path} was trained on {count} classes, but this data has "
                        f"{describe_classes(list(class_names))}; use the data it was trained on (--data-dir)")


# ------------------------------------------------------------------------------------ RNG states
def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states, as plain data."""
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
