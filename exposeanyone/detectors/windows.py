"""The one window rule every detector shares.

A clip is cut into sliding windows; a window is scored only when it holds enough face and speech; its
score is spread back over the frames it covers; the clip's score is the mean of its usable windows.
"""
from __future__ import annotations

import numpy as np

WINDOW_FRAMES = 100
"""Frames per window: 4 s at 25 fps."""
SCORING_STRIDE = 25
"""Frames between scored windows: 1 s."""
MIN_FACE_RATIO = 0.5
"""A window is scored only if a face is known in at least this share of its frames..."""
MIN_SPEECH_RATIO = 0.25
"""...and someone speaks in at least this share (an audio-to-expression model has nothing to say about
silence). Both shares are of the full window, padding included, so a clip needs 2 s of face and 1 s of
speech to be scored at all."""


def window_usable(frame_mask: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """``(..., frames)`` masks -> ``(...)`` bool: at least :data:`MIN_FACE_RATIO` face and
    :data:`MIN_SPEECH_RATIO` speech."""
    return (frame_mask.mean(axis=-1) >= MIN_FACE_RATIO) & (speech.mean(axis=-1) >= MIN_SPEECH_RATIO)


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
