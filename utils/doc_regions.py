"""Regions of the docs that a script writes: ``<!-- FAMILY:NAME -->`` ... ``<!-- /FAMILY:NAME -->``.

README and the guide print figures that a results folder holds (the levels' Tries, the GPU suite's
tables, the techniques' claims table). Each such figure sits inside a marked region, and the script
that measured it rewrites the region, so no figure is copied by hand and a test can check that a
region still says what its results say.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping

from utils.errors import UserError


def region_pattern(family: str) -> re.Pattern:
    return re.compile(rf"<!-- {family}:([a-z0-9-]+) -->\n(.*?)\n?<!-- /{family}:\1 -->", re.S)


def read_regions(text: str, family: str) -> dict[str, str]:
    """Each region's name and what it holds now."""
    return {name: body for name, body in region_pattern(family).findall(text)}


def rewrite_regions(text: str, family: str, render: Mapping[str, Callable[[str], str]]) -> tuple[str, list[str]]:
    """``text`` with each region rewritten by ``render[NAME](what it holds now)``, and the names found.

    A region no renderer knows is an error (a misspelt name would otherwise keep a stale figure)."""
    pattern = region_pattern(family)
    unknown = sorted(set(read_regions(text, family)) - set(render))
    if unknown:
        raise UserError(f"unknown region(s) {', '.join(unknown)}; known: {', '.join(render)}")
    found = []

    def replace(match: re.Match) -> str:
        name = match.group(1)
        found.append(name)
        return f"<!-- {family}:{name} -->\n{render[name](match.group(2))}\n<!-- /{family}:{name} -->"

    return pattern.sub(replace, text), found
