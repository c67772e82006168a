"""keep_freed_memory (utils/devices.py): a block freed and allocated again costs no new page faults."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

# Allocate and free 128 MB once, then count the page faults of allocating and filling it again.
SECOND_ALLOCATION_FAULTS = """
import resource, sys, torch
from utils.devices import keep_freed_memory
if sys.argv[1] == "keep" and not keep_freed_memory():
    print("unsupported"); raise SystemExit
block = torch.ones(32 * 2**20); del block
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = torch.ones(32 * 2**20); del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def second_allocation_faults(mode: str) -> str:
    result = subprocess.run([sys.executable, "-c", SECOND_ALLOCATION_FAULTS, mode], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_kept_memory_is_reused_without_page_faults():
    kept = second_allocation_faults("keep")
    if kept == "unsupported":
        pytest.skip("not glibc: keep_freed_memory has nothing to set")
    fresh = int(second_allocation_faults("default"))
    assert fresh > 0, "by default the block is handed back and faulted in again"
    assert int(kept) <= fresh // 10
