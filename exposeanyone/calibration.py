"""Calibration: what genuine footage of this person scores, and the verdict rule built on it.

During enrollment the reference footage is split in two halves by time (the first and second half of
every clip); the detector is enrolled on each half and scores the other. The held-out window scores are
the person's genuine-score distribution; the threshold is its quantile at the stated false-alarm rate.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .core.metrics import threshold_at_false_alarm_rate
from .core.progress import ProgressFn, no_progress
from .detectors.base import Calibration, Detector
from .media.clip import ClipFeatures

FALSE_ALARM_RATE = 0.05
"""Share of genuine reference windows that the threshold flags (the verdict's stated false-alarm rate)."""
MIN_USABLE_SECONDS = 2.0
"""A clip with less face-and-speech than this is judged inconclusive."""
MIN_FACE_RATIO = 0.3


def split_halves(clips: Sequence[ClipFeatures]) -> tuple[list[ClipFeatures], list[ClipFeatures]]:
    """First and second half (by time) of every clip."""
    first = [clip.slice(0, clip.num_frames // 2) for clip in clips]
    second = [clip.slice(clip.num_frames // 2, clip.num_frames) for clip in clips]
    return first, second


def cross_validated_scores(detector: Detector, clips: Sequence[ClipFeatures],
                           progress: ProgressFn = no_progress) -> np.ndarray:
    """Genuine window scores of each reference half under the model enrolled on the other half."""
    first, second = split_halves(clips)
    scores = []
    for fold, (train, held_out) in enumerate(((first, second), (second, first))):
        def fold_progress(fraction: float, message: str, fold=fold) -> None:
            progress((fold + fraction) / 2, f"calibration fold {fold + 1}/2: {message}")

        person = detector.enroll(train, fold_progress)
        for clip in held_out:
            output = detector.score(clip, person)
            scores.extend(output.window_scores[np.isfinite(output.window_scores)].tolist())
    return np.asarray(scores, dtype=float)


def calibrate(genuine_scores: np.ndarray, rate: float = FALSE_ALARM_RATE,
              method: str = "2-fold cross-validation over reference halves") -> Calibration:
    genuine = np.asarray(genuine_scores, dtype=float)
    genuine = genuine[np.isfinite(genuine)]
    threshold = threshold_at_false_alarm_rate(genuine, rate) if len(genuine) else float("nan")
    return Calibration(threshold=float(threshold), false_alarm_rate=rate,
                       genuine_scores=[round(float(v), 6) for v in genuine], method=method)


def verdict(score: float, threshold: float, usable_seconds: float, face_ratio: float,
            speech_seconds: float, owner: str = "the person's") -> tuple[str, str]:
    """``("real" | "fake" | "inconclusive", reason)`` for a clip score against a threshold."""
    if face_ratio < MIN_FACE_RATIO:
        return "inconclusive", (f"the face was found in only {face_ratio:.0%} of the frames "
                                f"(at least {MIN_FACE_RATIO:.0%} is needed)")
    if usable_seconds < MIN_USABLE_SECONDS or not np.isfinite(score):
        return "inconclusive", (f"only {usable_seconds:.1f} s had both a visible face and speech "
                                f"({speech_seconds:.1f} s of speech in all); at least {MIN_USABLE_SECONDS:.0f} s "
                                "in one stretch of 4 s windows is needed")
    if not np.isfinite(threshold):
        return "inconclusive", "this profile has no calibrated threshold for this detector"
    if score > threshold:
        return "fake", f"the score {score:.3f} is above {owner} threshold {threshold:.3f}"
    return "real", f"the score {score:.3f} is at or below {owner} threshold {threshold:.3f}"
