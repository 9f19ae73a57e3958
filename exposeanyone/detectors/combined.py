"""The combined verdict: EXAM (does the face move like this person's?) fused with FauForensics (do face
and voice belong together?).

Each detector's window score is standardised against the person's own reference footage — the mean and
spread of that detector's scores on the reference windows, stored at enrollment — and the fused window
score is the mean of the two standardised scores. Standardising per person puts a ratio near 1 and a
probability near 0 on one scale without hand-set weights; the pipeline then calibrates the fused score
like any enrolling detector (held-out halves of the reference).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.errors import ProfileError
from ..core.jsonable import json_floats
from ..core.progress import ProgressFn, no_progress
from ..media.clip import ClipFeatures
from .base import Detector, DetectorOutput, PersonModel
from .windows import windowed_output

MIN_SPREAD = 1e-3
"""Floor of a reference spread, so a detector that is constant on the reference does not dominate."""


class CombinedDetector:
    """EXAM for the enrolled person fused with FauForensics (higher score = more likely fake)."""

    name = "combined"
    requires_enrollment = True

    def __init__(self, exam: Detector, fau: Detector):
        self.exam, self.fau = exam, fau

    def enroll(self, clips: Sequence[ClipFeatures], progress: ProgressFn = no_progress) -> PersonModel:
        """EXAM's adapter tokens plus both detectors' reference score statistics."""
        person = self.exam.enroll(clips, lambda f, m: progress(0.9 * f, m))
        exam_scores, fau_scores = [], []
        for clip in clips:
            exam_windows, fau_windows = self._window_scores(clip, person)
            exam_scores += list(exam_windows[np.isfinite(exam_windows)])
            fau_scores += list(fau_windows[np.isfinite(fau_windows)])
        progress(1.0, "reference statistics of both detectors")
        stats = np.array([_mean(exam_scores), _spread(exam_scores), _mean(fau_scores), _spread(fau_scores)],
                         dtype=np.float32)
        return PersonModel(self.name, {**person.tensors, "reference_stats": stats},
                           {**person.info, "fusion": "mean of per-person standardised EXAM and FAU window scores"})

    def score(self, clip: ClipFeatures, person: PersonModel | None = None) -> DetectorOutput:
        if person is None or "reference_stats" not in person.tensors:
            raise ProfileError("The combined detector needs a profile enrolled with it; enroll the person again.")
        exam_mean, exam_spread, fau_mean, fau_spread = person.tensors["reference_stats"].astype(float)
        exam_output = self.exam.score(clip, _exam_part(person))
        fau_output = self.fau.score(clip)
        fau_windows = _on_windows(fau_output.frame_scores, exam_output)
        fused = ((exam_output.window_scores - exam_mean) / exam_spread + (fau_windows - fau_mean) / fau_spread) / 2
        return windowed_output(
            self.name, clip.num_frames, exam_output.window_starts, exam_output.window_length, fused,
            trajectories=exam_output.trajectories,
            extras={"exam_window_scores": json_floats(exam_output.window_scores),
                    "fau_window_scores": json_floats(fau_windows)},
            warnings=exam_output.warnings + fau_output.warnings)

    def _window_scores(self, clip: ClipFeatures, person: PersonModel) -> tuple[np.ndarray, np.ndarray]:
        exam_output = self.exam.score(clip, _exam_part(person))
        return exam_output.window_scores, _on_windows(self.fau.score(clip, estimate_offset=False).frame_scores,
                                                      exam_output)


def _on_windows(frame_scores: np.ndarray, exam_output: DetectorOutput) -> np.ndarray:
    """A per-frame curve ``(frames,)`` averaged over each EXAM window: ``(windows,)``."""
    length = exam_output.window_length
    values = []
    for start in exam_output.window_starts:
        part = frame_scores[start:start + length]
        values.append(np.nanmean(part) if np.isfinite(part).any() else np.nan)
    return np.asarray(values, dtype=float)


def _exam_part(person: PersonModel) -> PersonModel:
    tensors = {k: v for k, v in person.tensors.items() if k != "reference_stats"}
    return PersonModel("exam", tensors, person.info)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _spread(values: list[float]) -> float:
    return max(float(np.std(values)), MIN_SPREAD) if len(values) > 1 else 1.0
