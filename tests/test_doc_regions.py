"""The regions of the docs that scripts write: found, rewritten, and refused when a marker is broken."""
from __future__ import annotations

import pytest

from utils.doc_regions import read_regions, rewrite_files, rewrite_regions
from utils.errors import UserError

TEXT = ("intro\n<!-- fig:table -->\nold table\n<!-- /fig:table -->\nmiddle\n"
        "<!-- fig:note -->\nold note\n<!-- /fig:note -->\nend\n")


def test_every_region_is_rewritten_from_what_it_held_and_the_rest_kept():
    text, found = rewrite_regions(TEXT, "fig", {"table": lambda old: old.upper(), "note": lambda old: "new note"})
    assert found == ["table", "note"]
    assert text == ("intro\n<!-- fig:table -->\nOLD TABLE\n<!-- /fig:table -->\nmiddle\n"
                    "<!-- fig:note -->\nnew note\n<!-- /fig:note -->\nend\n")
    assert read_regions(text, "other") == {}  # another family's regions are not these


@pytest.mark.parametrize("broken", [
    "<!-- fig:table -->\nold\n<!-- /fig:tabel -->\n",  # misspelt closing marker
    "<!-- fig:table -->\nold\n",  # none at all
    "<!-- fig:table -->old<!-- /fig:table -->\n",  # not on lines of their own
    TEXT + "<!-- fig:note -->\nsecond, unclosed\n",  # the same name again, unclosed
])
def test_a_region_without_its_closing_marker_is_refused_not_skipped(broken):
    with pytest.raises(UserError, match="no matching"):
        rewrite_regions(broken, "fig", {"table": str, "note": str}, source="README.md")


def test_an_unknown_region_is_refused_and_names_its_file():
    with pytest.raises(UserError, match="README.md: unknown region"):
        rewrite_regions(TEXT, "fig", {"table": str}, source="README.md")


def test_no_file_is_written_unless_every_file_renders(tmp_path):
    readme, guide = tmp_path / "README.md", tmp_path / "GUIDE.md"
    readme.write_text(TEXT)
    guide.write_text("<!-- fig:nosuch -->\nx\n<!-- /fig:nosuch -->\n")
    render = {"table": lambda old: "new", "note": lambda old: "new"}
    with pytest.raises(UserError, match="GUIDE.md"):
        rewrite_files([readme, guide], "fig", render)
    assert readme.read_text() == TEXT  # README untouched: the guide failed before anything was written
    guide.write_text("no regions\n")
    assert rewrite_files([readme, guide], "fig", render) == {readme: ["table", "note"], guide: []}
    assert "old" not in readme.read_text()
