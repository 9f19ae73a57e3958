"""The one window rule every detector shares.

A clip is cut into sliding windows; a window is scored only when it holds enough face and speech; its
score is spread back over the frames it covers; the clip's score is the mean of its usable windows.
"""
from __future__ import annotations

import numpy as np

from .base import DetectorOutput

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


def usable_windows(face: np.ndarray, speech: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``(windows,)`` bool: :func:`window_usable` for the windows of ``length`` frames at ``starts`` of a clip
    with per-frame ``face`` and ``speech`` masks ``(frames,)``. Frames past the clip's end count as neither
    face nor speech, exactly as EXAM's padding does."""
    starts = np.asarray(starts, dtype=int)
    pad = max(0, int(starts.max(initial=0)) + length - len(face))
    face = np.pad(np.asarray(face, dtype=bool), (0, pad))
    speech = np.pad(np.asarray(speech, dtype=bool), (0, pad))
    index = starts[:, None] + np.arange(length)
    return window_usable(face[index], speech[index])


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
    """Spread window values over frames: ``(frames,)``, each the mean over the windows covering it.

    ``scores`` is ``(windows,)``, one value a window, or ``(windows, length)``, one value a frame of each
    window. A window with any non-finite value is left out.
    """
    total = np.zeros(num_frames)
    count = np.zeros(num_frames)
    for start, score in zip(starts, scores):
        if np.isfinite(score).all():
            stop = min(start + length, num_frames)
            total[start:stop] += np.broadcast_to(score, (length,))[:stop - start]
            count[start:stop] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def clip_score(window_scores: np.ndarray) -> float:
    """Mean of the usable (finite) window scores, NaN when there are none."""
    finite = window_scores[np.isfinite(window_scores)]
    return float(finite.mean()) if len(finite) else float("nan")


def windowed_output(detector: str, num_frames: int, starts: np.ndarray, length: int, scores: np.ndarray,
                    **details) -> DetectorOutput:
    """A detector's output from its window scores ``(windows,)``: the clip score (:func:`clip_score`) and
    the per-frame curve (:func:`frame_scores_from_windows`) follow the one rule; ``details`` are
    :class:`DetectorOutput`'s optional fields (trajectories, extras, warnings)."""
    return DetectorOutput(detector=detector, score=clip_score(scores), window_starts=starts, window_length=length,
                          window_scores=scores,
                          frame_scores=frame_scores_from_windows(num_frames, starts, length, scores), **details)
