"""Paths, limits and environment variables in one place."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

VERSION = "0.1.0"
"""The package version (``exposeanyone.__version__``); pyproject.toml repeats it."""

FPS = 25
"""Every clip is resampled to this video frame rate."""
SAMPLE_RATE = 16_000
"""Audio is decoded as mono float32 at this rate."""
MEL_PER_FRAME = 4
"""Log-mel frames per video frame (100 Hz)."""
N_MELS = 80

PACKAGE_DIR = Path(__file__).resolve().parent.parent
ASSETS_DIR = Path(os.environ.get("EXPOSEANYONE_ASSETS_DIR", PACKAGE_DIR.parent / "assets"))
EXAMPLES_DIR = Path(os.environ.get("EXPOSEANYONE_EXAMPLES_DIR", PACKAGE_DIR.parent / "examples"))
"""The app's example clips and their ready person (``examples/NOTICE.md``); absent from a pip-installed package."""


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise InputError(f"The environment variable {name}={value!r} is not a positive number: fix it or unset it.")
    return number


@dataclass(frozen=True)
class Limits:
    """Bounds enforced before heavy work starts; every one can be set by an environment variable."""

    max_file_mb: float = 500.0
    max_duration_s: float = 600.0
    max_side_px: int = 720
    """Frames larger than this on their longer side are downscaled before tracking."""
    max_pixels: int = 8192 * 8192
    """Frames larger than this are refused outright (a decompression bomb, not a video)."""
    max_reference_clips: int = 20

    @classmethod
    def from_env(cls) -> "Limits":
        default = cls()
        return cls(
            max_file_mb=_env_float("EXPOSEANYONE_MAX_FILE_MB", default.max_file_mb),
            max_duration_s=_env_float("EXPOSEANYONE_MAX_DURATION_S", default.max_duration_s),
            max_side_px=int(_env_float("EXPOSEANYONE_MAX_SIDE_PX", default.max_side_px)),
            max_pixels=int(_env_float("EXPOSEANYONE_MAX_PIXELS", default.max_pixels)),
            max_reference_clips=int(
                _env_float("EXPOSEANYONE_MAX_REFERENCE_CLIPS", default.max_reference_clips)
            ),
        )


def cache_dir() -> Path:
    """Where extracted tracks are cached (``EXPOSEANYONE_CACHE_DIR`` overrides)."""
    override = os.environ.get("EXPOSEANYONE_CACHE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "exposeanyone"


def profiles_dir() -> Path:
    """Default folder of enrolled person profiles (``EXPOSEANYONE_PROFILES_DIR`` overrides)."""
    override = os.environ.get("EXPOSEANYONE_PROFILES_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "exposeanyone" / "profiles"


def avdata_dir() -> Path | None:
    """The real-clip corpus: ``EXPOSEANYONE_AVDATA``, else ``../shared/avdata`` beside the repo, if present."""
    override = os.environ.get("EXPOSEANYONE_AVDATA")
    candidates = [Path(override)] if override else [PACKAGE_DIR.parent.parent / "shared" / "avdata"]
    for candidate in candidates:
        if (candidate / "MANIFEST.tsv").is_file():
            return candidate
    return None


def torch_device() -> str:
    """CUDA when present, else CPU; ``EXPOSEANYONE_DEVICE`` forces one."""
    forced = os.environ.get("EXPOSEANYONE_DEVICE")
    if forced:
        return forced
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
