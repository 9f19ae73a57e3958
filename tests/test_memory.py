"""The start-up allocator setting of the app and the CLI (exposeanyone/core/memory.py)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from exposeanyone.core.memory import glibc_mallopt

FRAGMENTING = textwrap.dedent("""
    import sys
    import numpy as np
    from exposeanyone.core.memory import keep_resident_memory_low

    def rss_mb():
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(status["VmRSS"].split()[0]) / 1024

    if sys.argv[1] == "set":
        keep_resident_memory_low()
    big = np.ones(1 << 20); del big  # by default this raises glibc's mmap threshold to 8 MiB
    before = rss_mb()
    kept, scratch = [], []
    for _ in range(300):  # 400-kB temporaries between small arrays that stay, as frames and activations do
        scratch.append(np.ones(50_000)); kept.append(np.ones(100))
    del scratch
    print(rss_mb() - before)
""")


def retained_mb(mode: str) -> float:
    result = subprocess.run([sys.executable, "-c", FRAGMENTING, mode], capture_output=True, text=True, check=True)
    return float(result.stdout)


@pytest.mark.skipif(glibc_mallopt() is None, reason="the C library is not glibc")
def test_freed_temporaries_go_back_to_the_system():
    assert retained_mb("set") < 20  # 300 x 400 kB were freed; by default glibc keeps about 115 MB of them

