"""``--config RUN/config.json``: a new run with the settings of a recorded one; flags given on top win.

A rerun is the recorded run's command given again, resolved afresh like any new run. It takes:

- the settings the recorded run was given (its ``user_settings``) and its ``--preset``, whose values sit under
  the flags as in any run;
- every other recorded value that a fresh run with those settings would not arrive at by itself: values a
  script or a study set rather than a flag (``--compare-models``' model, a benchmark's budget and arms);
- never its bookkeeping: ``output_dir`` (a new run folder, unless ``--output-dir`` is given on top), ``resume``,
  where its values came from. What depends on the machine (mixed precision, channels_last, worker processes,
  progress bars) is decided for this one unless the recorded run was given it, so a GPU run's config reruns on
  a CPU with the CPU's defaults (fp32), as its resume would.

The values the recipe derives (optimizer, learning rate, warm-up, step size...) are derived again, unless the
recorded run's differ from what its settings give: a flag given on top changes them as it would in a fresh run
(``--epochs 90`` on top of a 30-epoch run gets the warm-up of 90 epochs). The new run's ``config.json``
records ``rerun_of`` (this file) and, in ``user_settings``, the settings given then and now.

A file that is missing, not JSON, not a config of this project, or that holds settings this version does not
know or values of the wrong type, is one line (exit 2), as is ``--config`` with ``--resume``.
"""
from __future__ import annotations

import json
import math
import typing
from pathlib import Path
from typing import Any

from utils.config import TrainConfig
from utils.errors import UserError
from utils.presets import preset_settings
from utils.resolve import resolve

NOT_INHERITED = ("output_dir", "resume", "user_settings", "preset_settings", "resolved_for", "rerun_of")
DECIDED_HERE = ("amp", "amp_dtype", "channels_last", "workers", "progress")  # this machine's, unless given
# What resolve() (utils/resolve.py) fills in from the other settings; the rest it leaves as given.
DERIVED = ("optimizer", "scheduler", "lr", "weight_decay", "warmup_epochs", "step_size", "label_smoothing", "ema",
           "clip_grad", "crop_padding", "low_res_size", "cutout", "eval_batch_size", "data_mode")
SETTING_TYPES = typing.get_type_hints(TrainConfig)


def rerun_from(path: str, resume: bool, fixed: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(settings the new run starts from, the names of those the recorded run's user gave) of ``--config path``.

    ``fixed``: what the entry script sets itself (main.py: the basic CNN and the standard recipe).
    """
    if resume:
        raise UserError("--config starts a new run from a recorded config, --resume continues the run in "
                        "--output-dir: give one of them")
    recorded = read_recorded_config(path)
    for key, value in fixed.items():
        if key not in NOT_INHERITED and key in recorded and recorded[key] != value:
            raise UserError(f"--config {path} records {key} {recorded[key]}, and this script trains {key} {value} "
                            f"only (main.py: the basic CNN, standard recipe); use main_modern.py --config {path}")
    return rerun_settings(recorded)


def read_recorded_config(path: str) -> dict[str, Any]:
    """The settings in a run's ``config.json``, checked: a JSON object of this project's settings, each of its type."""
    file = Path(path)
    if file.is_dir():
        raise UserError(f"--config {path} is a folder; give the run's config.json (--config {file / 'config.json'})")
    try:
        recorded = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise UserError(f"--config {path}: no such file; give a run's config.json") from None
    except OSError as error:
        raise UserError(f"--config {path} cannot be read ({error.strerror or error})") from None
    except ValueError as error:  # not JSON, or not text at all
        raise UserError(f"--config {path} is not a JSON file ({error}); give a run's config.json") from None
    if not isinstance(recorded, dict) or not {"model", "user_settings"} <= set(recorded):
        raise UserError(f"--config {path} is not a config.json of this project (a run folder's config.json holds "
                        f"the run's settings: model, epochs, user_settings...)")
    unknown = sorted(set(recorded) - set(SETTING_TYPES))
    if unknown:
        raise UserError(f"--config {path} holds settings this version does not know: {', '.join(unknown)}")
    for key, value in recorded.items():
        if not accepts(SETTING_TYPES[key], value):
            raise UserError(f"--config {path}: {key} is {json.dumps(value)}, but it must be "
                            f"{type_words(SETTING_TYPES[key])}")
    return recorded


def accepts(hint: Any, value: Any) -> bool:
    """Can ``value`` (read from JSON) be the value of a setting typed ``hint``? (An int is a float; a bool no number.)"""
    kinds = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
    for kind in kinds:
        if typing.get_origin(kind) is list:
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return True
        elif kind is float:  # JSON readers accept Infinity and NaN: no setting takes them
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                return True
        elif kind is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif isinstance(value, kind):
            return True
    return False


def type_words(hint: Any) -> str:
    """``Optional[int]`` → 'a whole number or null': a setting's type as the JSON file spells values."""
    words = {int: "a whole number", float: "a finite number", bool: "true or false", str: "a string",
             type(None): "null"}
    kinds = typing.get_args(hint) if typing.get_origin(hint) is typing.Union else (hint,)
    return " or ".join(words.get(kind, "a list of strings") for kind in kinds)


def rerun_settings(recorded: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(settings, the names the recorded run's user gave): the settings that make a fresh run the recorded one."""
    given = [k for k in recorded["user_settings"] if k in recorded and k not in NOT_INHERITED]
    settings = {k: recorded[k] for k in given}
    open_keys = [k for k in recorded if k not in NOT_INHERITED and k not in DECIDED_HERE and k not in settings]
    # Values set by a script, not a flag: the preset first (its values then sit under the rest), then what
    # resolve() keeps as given, against the defaults.
    for group in (["preset"], [k for k in open_keys if k not in DERIVED and k != "preset"]):
        fresh = TrainConfig(**with_preset(settings))
        settings |= {k: recorded[k] for k in group if k in open_keys and getattr(fresh, k) != recorded[k]}
    try:
        fresh = resolve(TrainConfig(**with_preset(settings)))
        differ = [k for k in DERIVED if k in open_keys and getattr(fresh, k) != recorded[k]]
    except UserError:  # values that hold only together (a study's arm: --lookahead with --no-ema): keep them all
        differ = [k for k in DERIVED if k in open_keys]
    settings |= {k: recorded[k] for k in differ}
    return settings, given


def with_preset(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` over their preset's values, as a run builds them (``utils/cli.py``)."""
    return {**preset_settings(settings["preset"]), **settings} if settings.get("preset") else settings
