"""One statement of every default: what --help says a flag defaults to is what the config resolves to, and
README says the same of the defaults a learner meets first (model, seed, mixed precision)."""
from __future__ import annotations

import dataclasses
import re

import pytest

import main_modern
from tests.conftest import REPO
import torch

from utils.config import TrainConfig
from utils.devices import cpu_has_native_bf16
from utils.resolve import resolve, resolve_amp

DEFAULT = re.compile(r"default:? ([\w./\-]+)( \(modern\)| with --modern-training)?")
RULES = ("a", "as", "one", "twice", "decay", "never", "beside", "both", "on", "default", "runs/", "3/4")
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def stated_defaults() -> list[tuple[str, str, str]]:
    """(config field, the value --help states, standard or modern) for every flag whose help names a value."""
    stated = []
    for action in main_modern.build_parser()._actions:
        match = DEFAULT.search(action.help or "")
        if match and action.dest in FIELDS:
            stated.append((action.dest, match.group(1), "modern" if match.group(2) else "standard"))
    return stated


def _same(stated: str, value) -> bool:
    if isinstance(value, bool) or value is None:
        return {"on": True, "off": False, "all": None, "none": None}.get(stated, "?") == value or str(value) == stated
    try:
        return float(stated) == float(value)
    except (TypeError, ValueError):
        return str(value) == stated


@pytest.mark.parametrize("field, stated, recipe", stated_defaults())
def test_help_states_the_default_the_config_resolves_to(field, stated, recipe):
    if stated in RULES or not re.fullmatch(r"[\d.e\-]+|[a-z_]+|\./\w+", stated):
        pytest.skip(f"--{field}: its default is a rule, not a value ({stated} ...)")
    unresolved = TrainConfig(recipe=recipe)
    resolved = resolve(unresolved)
    assert _same(stated, getattr(unresolved, field)) or _same(stated, getattr(resolved, field)), (
        f"--{field.replace('_', '-')} --help says default {stated}; the config resolves "
        f"{getattr(resolved, field)!r}")


def test_enough_defaults_are_compared():
    assert len(stated_defaults()) >= 25


def test_mixed_precision_is_stated_the_same_everywhere():
    """bf16 with the modern recipe on CUDA and on CPUs with native bf16: --help, README and the config agree."""
    helps = {a.dest: a.help for a in main_modern.build_parser()._actions}
    assert "CPUs with native bf16" in helps["recipe"] and "CPUs with native bf16" in helps["amp"]
    readme = (REPO / "README.md").read_text()
    assert "on CUDA GPUs and on CPUs with native bf16" in readme
    cpu = torch.device("cpu")
    modern = resolve_amp(resolve(TrainConfig(recipe="modern", device="cpu")), cpu)
    assert modern.amp == cpu_has_native_bf16() and resolve_amp(resolve(TrainConfig(device="cpu")), cpu).amp is False
    defaults = resolve(TrainConfig())
    assert f"`--model {defaults.model}`" in readme and f"seed {defaults.seed}" in readme
