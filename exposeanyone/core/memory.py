"""Keep a long-running process's resident memory near what it actually holds (glibc's malloc only).

glibc keeps memory that Python and PyTorch have freed, to serve later requests: tracking a 60-s clip left
460 MB of it held, and each personalisation 330 MB, so the app and the CLI peaked at 1.73-1.76 GB
(``python benchmarks/timing.py`` on 2 CPU cores: analyse 60 s + 10 s, enroll, score) though they never
held that much at once. :func:`keep_resident_memory_low` (called at the app's and the CLI's start-up)
turns on :func:`freed_memory_returned`, which the heavy steps are wrapped in: it hands the free space back
when a step ends, and while personalising (small Adam steps whose activations scatter over the heap)
gives every block of 256 kB or more its own mapping, returned as soon as it is freed.

Measured the same way, peak and seconds (10-s clip end to end; 60 s of reference enrolled, tracking
included): glibc's default 1.76 GB, 4.4 s, 52 s; large blocks mapped everywhere 1.21-1.24 GB, 4.9-5.2 s,
54-57 s (every video frame and every scoring activation then costs a fresh zeroed mapping); this module's
split 1.38 GB, 4.3-4.4 s, 51-53 s.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import sys
import threading

HEAP_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
"""Outside personalisation, blocks up to this size come from the heap (glibc's own ceiling for it), where
same-sized video frames and activations are reused without a fresh mapping each time."""
MAPPED_MMAP_THRESHOLD_BYTES = 256 * 1024
"""While personalising, blocks this large or larger get their own mapping (512 kB or 1 MB kept 1.61 GB)."""
TRIM_THRESHOLD_BYTES = 1024 * 1024
"""Free space at the top of the heap beyond this is returned to the system as it appears."""
_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3

_lock = threading.Lock()
_state = {"on": False, "depth": 0, "mapped": 0}


@functools.lru_cache(maxsize=1)
def glibc():
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None (not Linux, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def keep_resident_memory_low() -> bool:
    """Fix glibc's thresholds and turn on :func:`freed_memory_returned` for this process.

    Returns:
        True when done; False where the C library is not glibc (nothing changes there).
    """
    libc = glibc()
    with _lock:
        _state["on"] = libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD_BYTES)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
        return _state["on"]


@contextlib.contextmanager
def freed_memory_returned(map_large_blocks: bool = False):
    """A heavy step after which the heap's free space is handed back to the system (``malloc_trim``).

    Args:
        map_large_blocks: meanwhile, blocks of :data:`MAPPED_MMAP_THRESHOLD_BYTES` or more get their own
            mapping, returned when freed (for steps whose temporaries would otherwise scatter over the heap).

    Does nothing unless :func:`keep_resident_memory_low` was called; may be nested and entered from several
    threads (the memory is trimmed when the last one leaves).
    """
    with _lock:
        _state["depth"] += 1
        mapped = _state["on"] and map_large_blocks
        if mapped:
            _state["mapped"] += 1
            glibc().mallopt(_M_MMAP_THRESHOLD, MAPPED_MMAP_THRESHOLD_BYTES)
    try:
        yield
    finally:
        with _lock:
            _state["depth"] -= 1
            if mapped:
                _state["mapped"] -= 1
                if _state["mapped"] == 0:
                    glibc().mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD_BYTES)
            if _state["on"] and _state["depth"] == 0:
                glibc().malloc_trim(0)
