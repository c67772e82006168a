"""Every ``python main.py`` / ``main_modern.py`` / ``benchmark_all.py`` command in README.md and the guide parses.

Parsing (not running) them catches a renamed or removed flag in seconds; the real-data runs of the
documented figures are in benchmarks/results/.
"""
import re
import shlex

import pytest

import benchmark_all
import main as main_script
import main_modern
from utils.cli import config_from_args

from tests.conftest import REPO

PARSERS = {"main.py": main_script.build_parser, "main_modern.py": main_modern.build_parser,
           "benchmark_all.py": benchmark_all.build_parser}


def documented_commands() -> list[tuple[str, str]]:
    commands = []
    for doc in ("README.md", "MODERN_DL_GUIDE.md"):
        for line in (REPO / doc).read_text().splitlines():
            for match in re.finditer(r"python (main(?:_modern)?\.py|benchmark_all\.py)([^`|\n#]*)", line):
                commands.append((doc, f"{match.group(1)}{match.group(2)}".strip()))
    return sorted(set(commands))


def test_the_docs_hold_commands_of_both_scripts():
    scripts = {command.split()[0] for _, command in documented_commands()}
    assert scripts == {"main.py", "main_modern.py", "benchmark_all.py"}


@pytest.mark.parametrize("doc,command", documented_commands())
def test_documented_command_parses_into_a_valid_config(doc, command):
    script, *argv = shlex.split(command.replace("&&", ""))
    argv = [a.replace("DATA", "../shared/data/cifar10-jpeg") for a in argv]
    args = PARSERS[script]().parse_args(argv)  # an unknown flag exits 2 here
    if script == "benchmark_all.py":
        args.list = True  # plan it (every experiment's config is validated) without reading data or training
        benchmark_all.plan_from_args(args, argv)
        return
    reads_or_lists = ("resume", "evaluate", "list_activations", "list_models", "preview_augmentation")
    if any(getattr(args, name, None) for name in reads_or_lists):
        return  # these read a run or print a list: their flags parsed, there is no new config to check
    fixed = {"model": "cnn", "recipe": "standard"} if script == "main.py" else {}
    config_from_args(args, **fixed)  # values pass the config's validation
