"""The allocator settings of the app and the CLI (exposeanyone/core/memory.py), each in a fresh process."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from exposeanyone.core.memory import glibc

pytestmark = pytest.mark.skipif(glibc() is None, reason="the C library is not glibc")

FRAGMENTING = textwrap.dedent("""
    import sys
    import numpy as np
    from exposeanyone.core.memory import freed_memory_returned, keep_resident_memory_low

    def rss_mb():
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(status["VmRSS"].split()[0]) / 1024

    turned_on, map_large_blocks = sys.argv[1] == "on", sys.argv[2] == "mapped"
    if turned_on:
        assert keep_resident_memory_low()
    big = np.ones(1 << 20); del big  # by default this raises glibc's mmap threshold to 8 MiB
    before = rss_mb()
    kept = []
    with freed_memory_returned(map_large_blocks):
        scratch = []
        for _ in range(300):  # 400-kB temporaries between small arrays that stay, as in a training loop
            scratch.append(np.ones(50_000)); kept.append(np.ones(100))
        del scratch
        inside = rss_mb() - before
    print(inside, rss_mb() - before)
""")


def retained_mb(turned_on: bool, map_large_blocks: bool) -> tuple[float, float]:
    """MB still resident after 300 x 400 kB were freed: inside the step, and after it."""
    result = subprocess.run([sys.executable, "-c", FRAGMENTING, "on" if turned_on else "off",
                             "mapped" if map_large_blocks else "heap"], capture_output=True, text=True, check=True)
    inside, after = map(float, result.stdout.split())
    return inside, after


def test_by_default_glibc_keeps_the_freed_temporaries():
    assert min(retained_mb(turned_on=False, map_large_blocks=True)) > 60  # so the tests below can tell


def test_a_step_hands_the_freed_memory_back_when_it_ends():
    inside, after = retained_mb(turned_on=True, map_large_blocks=False)
    assert inside > 60 and after < 20


def test_mapped_large_blocks_go_back_as_soon_as_they_are_freed():
    inside, after = retained_mb(turned_on=True, map_large_blocks=True)
    assert inside < 20 and after < 20
