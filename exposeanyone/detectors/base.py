"""The one interface every detector (EXAM, FauForensics, the baselines) implements.

Detectors know nothing about files, profiles on disk or exit codes: they take :class:`ClipFeatures`
and return numbers. Scores are oriented so that **higher means more likely fake**.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence

import numpy as np

from ..core.progress import ProgressFn, no_progress
from ..media.clip import ClipFeatures

MIN_GENUINE_WINDOWS = 10
"""Fewer held-out genuine windows than this make the threshold rough; the card says so."""


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


@dataclass
class Calibration:
    """A person's genuine-score distribution for one detector and the threshold derived from it."""

    threshold: float
    false_alarm_rate: float
    genuine_scores: list[float]
    method: str

    @property
    def reliable(self) -> bool:
        return len(self.genuine_scores) >= MIN_GENUINE_WINDOWS

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Calibration":
        return cls(threshold=float(data["threshold"]), false_alarm_rate=float(data["false_alarm_rate"]),
                   genuine_scores=[float(v) for v in data.get("genuine_scores", [])], method=str(data.get("method", "")))

    def percentile(self, score: float) -> float:
        """Share of genuine scores below ``score`` (0-100)."""
        if not self.genuine_scores or not np.isfinite(score):
            return float("nan")
        return float(100.0 * np.mean(np.asarray(self.genuine_scores) < score))
