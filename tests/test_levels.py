"""benchmarks/levels.py: every level's Try runs (smoke mode), its figures land in levels.json, and the docs'
regions are rewritten from them, not by hand."""
from __future__ import annotations

import json
import os
import re
import shlex

import pytest

from tests.conftest import REPO, load_benchmark

levels = load_benchmark("levels")


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("levels") / "results"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(out.parent)
        code = levels.main(["--smoke", "--output-dir", str(out)])
    assert code == 0
    return out


def test_every_level_runs_every_command_and_records_its_figures(smoke_results):
    report = json.loads((smoke_results / "levels.json").read_text())
    assert [entry["level"] for entry in report["levels"]] == list(range(1, 8)) and report["smoke"] is True
    assert "CIFAR_SMOKE" not in os.environ  # smoke mode ends with the script: later code trains for real
    for entry, level in zip(report["levels"], levels.LEVELS):
        assert entry["ok"] and [r["command"] for r in entry["commands"]] == list(level.commands)
        assert all(r["exit_code"] == 0 and r["wall_s"] >= 0 for r in entry["commands"])
        assert entry["picture"] and (smoke_results / entry["picture"]).stat().st_size > 0
    by_level = {entry["level"]: entry for entry in report["levels"]}
    assert all("final_test_acc" in r for r in by_level[1]["commands"])
    assert by_level[4]["commands"][0]["final_train_acc"] is not None  # the train/test gap is level 4's point
    (row, *_), = [r["models"] for r in by_level[5]["commands"]]
    assert row["latency_ms"] > 0 and row["gflops"] > 0
    assert "paired" in by_level[7]["commands"][0] and "arms" in by_level[7]["commands"][0]
    links = re.findall(r"\]\(([^)#]+)#level-", (smoke_results / "README.md").read_text())
    assert len(links) == 7 and all((smoke_results / link).is_file() for link in links)  # the guide, from there


def test_the_try_commands_are_the_ones_readme_prints():
    """README's table is written from LEVELS: every Try appears there as the user types it."""
    readme = (REPO / "README.md").read_text()
    for level in levels.LEVELS:
        for command in level.commands:
            assert f"`{command}`" in readme, command
            assert "--data-dir" not in command and "--output-dir /" not in command  # nothing of this machine


def test_the_docs_regions_are_rewritten_from_the_results(smoke_results, tmp_path):
    readme, guide = tmp_path / "README.md", tmp_path / "GUIDE.md"
    readme.write_text("intro\n<!-- levels:table -->\nold\n<!-- /levels:table -->\n<!-- levels:first -->\n"
                      "<!-- /levels:first -->\nend\n")
    guide.write_text("".join(f"## {n}\n<!-- levels:try-{n} -->\nstale\n<!-- /levels:try-{n} -->\n" for n in range(1, 8)))
    assert levels.main(["--docs", str(smoke_results), "--readme", str(readme), "--guide", str(guide)]) == 0
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "| [5. mobile-optimized networks]" in text and "ms an image" in text
    assert "runs/cnn-YYYYMMDD-HHMMSS" in text  # the first result's folder as the user's will be named
    guide_text = guide.read_text()
    assert "stale" not in guide_text and guide_text.count("```bash") == 7
    assert (tmp_path / "docs" / "images" / "try-level6.png").stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["--docs", "/nonexistent"], "holds no levels.json"),
    (["--levels", "9"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capfd):
    with pytest.raises(SystemExit) as stop:
        levels.main(argv)
    err = capfd.readouterr().err
    assert stop.value.code == 2 and message in err and "Traceback" not in err


def test_a_results_folder_of_another_run_is_refused(smoke_results, capfd):
    with pytest.raises(SystemExit) as stop:
        levels.main(["--smoke", "--output-dir", str(smoke_results)])
    assert stop.value.code == 2 and "another levels.py run" in capfd.readouterr().err


def test_an_unknown_region_is_refused_and_the_file_left_alone(smoke_results, tmp_path, capfd):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- levels:nosuch -->\nkeep\n<!-- /levels:nosuch -->\n")
    with pytest.raises(SystemExit):
        levels.main(["--docs", str(smoke_results), "--readme", str(readme), "--guide", str(readme)])
    assert "keep" in readme.read_text() and "unknown region" in capfd.readouterr().err


def test_the_output_dir_flag_of_a_try_moves_under_the_results_folder(tmp_path):
    script, argv, out = levels.run_argv(levels.LEVELS[5].commands[0], tmp_path, "DATA", 0)
    assert script == "main_modern.py" and out == tmp_path / "runs/level6"
    assert argv[argv.index("--output-dir") + 1] == str(out) and argv[-2:] == ["--data-dir", "DATA"]
    _, explain_argv, _ = levels.run_argv(levels.LEVELS[5].commands[1], tmp_path, "DATA", 1)
    assert str(tmp_path / "runs/level6/best.pt") in explain_argv and "--data-dir" not in explain_argv
    assert shlex.join(explain_argv).count("runs/level6") == 2
