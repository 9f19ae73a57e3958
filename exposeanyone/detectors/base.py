"""The one interface every detector (EXAM, FauForensics, the baselines) implements.

Detectors know nothing about files, profiles on disk or exit codes: they take :class:`ClipFeatures`
and return numbers. Scores are oriented so that **higher means more likely fake**.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

from ..media.clip import ClipFeatures

ProgressFn = Callable[[float, str], None]
"""``progress(fraction_done, message)``; fraction in [0, 1]."""


def no_progress(fraction: float, message: str) -> None:
    """A :data:`ProgressFn` that ignores its reports."""


@dataclass
class PersonModel:
    """What a detector learned about one person.

    ``tensors`` are saved as safetensors (float arrays only), ``info`` as JSON; both must round-trip.
    """

    detector: str
    tensors: dict[str, np.ndarray]
    info: dict = field(default_factory=dict)


@dataclass
class DetectorOutput:
    """A detector's verdict material for one clip (higher scores mean more likely fake)."""

    detector: str
    score: float
    """Clip score: the mean of the usable window scores; NaN when no window was usable."""
    window_starts: np.ndarray
    """``(windows,)`` int first frame of each window."""
    window_length: int
    """Frames per window."""
    window_scores: np.ndarray
    """``(windows,)`` float; NaN for windows with too little face or speech."""
    frame_scores: np.ndarray
    """``(frames,)`` float: each frame's mean over the usable windows covering it; NaN if none."""
    trajectories: dict[str, np.ndarray] = field(default_factory=dict)
    """Optional curves for plots, e.g. ``{"observed": (frames, 58), "generated": (frames, 58)}``."""
    extras: dict = field(default_factory=dict)
    """Detector-specific JSON-serialisable details (e.g. an audio-visual similarity matrix)."""
    warnings: list[str] = field(default_factory=list)
    """What the detector noticed that a user should know besides the score (one sentence each)."""

    @property
    def usable_windows(self) -> int:
        return int(np.isfinite(self.window_scores).sum())


class Detector(Protocol):
    """A deepfake detector usable by the CLI, the app and the evaluation alike."""

    name: str
    requires_enrollment: bool

    def enroll(self, clips: Sequence[ClipFeatures], progress: ProgressFn = no_progress) -> PersonModel:
        """Learn one person from genuine reference clips."""
        ...

    def score(self, clip: ClipFeatures, person: PersonModel | None = None) -> DetectorOutput:
        """Score one clip, against ``person`` when the detector needs enrollment."""
        ...


def window_starts(num_frames: int, length: int, stride: int) -> np.ndarray:
    """First frames of sliding windows covering ``num_frames`` (the last one flush with the end)."""
    if num_frames <= length:
        return np.zeros(1, dtype=int)
    starts = list(range(0, num_frames - length + 1, stride))
    if starts[-1] != num_frames - length:
        starts.append(num_frames - length)
    return np.asarray(starts, dtype=int)


def frame_scores_from_windows(num_frames: int, starts: np.ndarray, length: int,
                              scores: np.ndarray) -> np.ndarray:
    """Spread window scores over frames: ``(frames,)``, each the mean of the usable windows covering it."""
    total = np.zeros(num_frames)
    count = np.zeros(num_frames)
    for start, score in zip(starts, scores):
        if np.isfinite(score):
            total[start:start + length] += score
            count[start:start + length] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def clip_score(window_scores: np.ndarray) -> float:
    """Mean of the usable (finite) window scores, NaN when there are none."""
    finite = window_scores[np.isfinite(window_scores)]
    return float(finite.mean()) if len(finite) else float("nan")
