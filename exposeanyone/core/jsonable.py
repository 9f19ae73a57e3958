"""Numbers on their way to JSON, which has no NaN or infinity: a missing value is written as null."""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np


def is_finite(value) -> bool:
    """True for a number that is neither None, NaN nor infinite."""
    return value is not None and math.isfinite(float(value))


def json_float(value, digits: int | None = None) -> float | None:
    """``value`` as a float (rounded to ``digits`` decimals if given), None when it is not finite."""
    if not is_finite(value):
        return None
    return float(value) if digits is None else round(float(value), digits)


def json_floats(values: Iterable | np.ndarray, digits: int | None = None) -> list[float | None]:
    """Every value of ``values`` (any shape, flattened) through :func:`json_float`."""
    return [json_float(v, digits) for v in np.asarray(values, dtype=float).reshape(-1)]
