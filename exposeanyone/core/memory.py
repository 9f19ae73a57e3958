"""Keep a long-running process's resident memory near what it actually holds (glibc's malloc only).

By default glibc raises its mmap threshold every time a large block is freed (up to 32 MiB). After the
first video frames or activations are freed, the next large temporary arrays therefore come from the heap,
whose freed space fragments and is not handed back to the system. Fixing both thresholds, as the
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` environment variables would before start-up, sends
large blocks to mmap (returned on free) and trims the heap's free top. Measured with
``python benchmarks/timing.py`` on 2 CPU cores (analyse 60 s + 10 s, enroll, score): peak resident memory
1.73-1.76 GB by default, of which tracking left 460 MB and each personalisation 330 MB freed but held, and
1.21 GB with :func:`keep_resident_memory_low`. The price is a fresh mapping for every large temporary:
scoring a 10-s clip took 0.78 s by default and 1.13-1.16 s so (4.4 and 4.9 s end to end), enrollment 1-2 s
more. Mapping from 512 kB or 1 MB up kept 1.61 GB, so 256 kB it is.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

MMAP_THRESHOLD_BYTES = 256 * 1024
"""Blocks this large or larger are mapped on their own and returned to the system when freed."""
TRIM_THRESHOLD_BYTES = 1024 * 1024
"""Free space at the top of the heap beyond this is returned to the system."""
_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3


def glibc_mallopt():
    """glibc's ``mallopt(parameter, value)``, or None where the C library has none (not Linux, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt


def keep_resident_memory_low() -> bool:
    """Fix glibc's mmap and trim thresholds for this process (for the app's and the CLI's start-up).

    Returns:
        True when they were set; False where the C library is not glibc (nothing changes there).
    """
    mallopt = glibc_mallopt()
    return mallopt is not None and bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
