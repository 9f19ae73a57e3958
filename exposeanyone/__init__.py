"""ExposeAnyone: is this talking-head video really them?

Enroll a person from genuine reference clips, then score a suspicious clip: a personalised
audio-to-expression diffusion model (EXAM) predicts how this person's face moves for the clip's
audio, and the clip is judged by how much better the person's model explains it than a generic one.

    from exposeanyone import ProfileStore, enroll_files, score_file
    store = ProfileStore("profiles")
    enroll_files("Ada", ["ref1.mp4", "ref2.mp4"], store)
    report = score_file("clip.mp4", "Ada", store)
    print(report.verdict, report.score, report.threshold)

The names below are imported on first use, so ``import exposeanyone`` (and ``exposeanyone --help``)
stays fast and loads neither torch nor MediaPipe.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .core.config import VERSION as __version__

_PUBLIC = {
    "enroll_files": "exposeanyone.pipeline",
    "score_file": "exposeanyone.pipeline",
    "enroll_clips": "exposeanyone.pipeline",
    "score_clip": "exposeanyone.pipeline",
    "load_detector": "exposeanyone.pipeline",
    "extract_clip": "exposeanyone.media.extract",
    "parse_corruption_spec": "exposeanyone.media.corruptions",
    "ProfileStore": "exposeanyone.profiles",
    "ScoreReport": "exposeanyone.report",
}
__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:
    from .media.corruptions import parse_corruption_spec
    from .media.extract import extract_clip
    from .pipeline import enroll_clips, enroll_files, load_detector, score_clip, score_file
    from .profiles import ProfileStore
    from .report import ScoreReport


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'exposeanyone' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
