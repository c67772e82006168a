"""Regions of the docs that a script writes: ``<!-- FAMILY:NAME -->`` ... ``<!-- /FAMILY:NAME -->``.

README and the guide print figures that a results folder holds (the levels' Tries, the GPU suite's
tables, the techniques' claims table). Each such figure sits inside a marked region, and the script
that measured it rewrites the region, so no figure is copied by hand and a test can check that a
region still says what its results say.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

from utils.errors import UserError


def region_pattern(family: str) -> re.Pattern:
    family = re.escape(family)
    return re.compile(rf"<!-- {family}:([a-z0-9-]+) -->\n(.*?)\n?<!-- /{family}:\1 -->", re.S)


def read_regions(text: str, family: str, source: str = "the text") -> dict[str, str]:
    """Each region's name and what it holds now. An opening marker without its closing one (misspelt, missing,
    not on a line of its own) is an error: the region would otherwise keep a stale figure without a word."""
    closed = [name for name, _ in region_pattern(family).findall(text)]
    opened = re.findall(rf"<!-- {re.escape(family)}:(\S*)", text)
    broken = sorted({name for name in opened if opened.count(name) > closed.count(name)})
    if broken:
        raise UserError(f"{source}: the region(s) {', '.join(broken)} of <!-- {family}:NAME --> have no "
                        f"matching <!-- /{family}:NAME --> (each marker on a line of its own)")
    regions = dict(region_pattern(family).findall(text))
    return regions


def rewrite_regions(text: str, family: str, render: Mapping[str, Callable[[str], str]], source: str = "the text"
                    ) -> tuple[str, list[str]]:
    """``text`` with each region rewritten by ``render[NAME](what it holds now)``, and the names found.

    A region no renderer knows is an error (a misspelt name would otherwise keep a stale figure)."""
    unknown = sorted(set(read_regions(text, family, source)) - set(render))
    if unknown:
        raise UserError(f"{source}: unknown region(s) {', '.join(unknown)}; known: {', '.join(render)}")
    found = []

    def replace(match: re.Match) -> str:
        name = match.group(1)
        found.append(name)
        return f"<!-- {family}:{name} -->\n{render[name](match.group(2))}\n<!-- /{family}:{name} -->"

    return region_pattern(family).sub(replace, text), found


def rewrite_files(paths: Sequence[Path], family: str, render: Mapping[str, Callable[[str], str]]
                  ) -> dict[Path, list[str]]:
    """Rewrite the regions of every file; the names found in each. Every file is rendered before any is
    written, so a bad region in the guide never leaves README rewritten and the guide not."""
    rendered = {path: rewrite_regions(path.read_text(), family, render, source=str(path)) for path in paths}
    for path, (text, _) in rendered.items():
        path.write_text(text)
    return {path: found for path, (_, found) in rendered.items()}
