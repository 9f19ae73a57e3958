"""Progress reports from long work (enrollment, training, extraction) to whoever shows them."""
from __future__ import annotations

from typing import Callable

ProgressFn = Callable[[float, str], None]
"""``progress(fraction_done, message)``; fraction in [0, 1]."""


def no_progress(fraction: float, message: str) -> None:
    """A :data:`ProgressFn` that ignores its reports."""
