"""A constant audio-video offset: estimated so that reports show it instead of hiding it.

Re-encoded or re-uploaded footage often carries its sound a few frames early or late throughout. That is
not in itself a sign of forgery, and the timing comparisons of the detectors (own audio against audio
moved by a second or two; FauForensics also lets each sound find its best alignment within 2 frames)
tolerate it, but someone checking a clip by hand should know. A detector that judges face-voice
agreement estimates it as the audio move, within :data:`MAX_OFFSET_FRAMES`, at which the clip looks
most genuine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_OFFSET_FRAMES = 10
"""Moves searched either way (0.4 s): a larger constant offset is a broken file, not a subtle one."""
REPORTED_OFFSET_FRAMES = 3
"""Offsets from this size (0.12 s, about where viewers notice) are reported as a warning..."""
MIN_MARGIN = 0.5
"""...when the best move beats no move by this much (in the detector's log-odds: the odds of "fake"
are 1.6 times lower), so that a flat curve does not produce a confident-looking number."""


@dataclass(frozen=True)
class AudioOffset:
    """Where a clip's sound fits its face best."""

    frames: int
    """Positive: the sound comes this many frames *after* the face; negative: before it."""
    margin: float
    """How much more genuine the best move looks than no move (detector units, >= 0)."""
    fps: float

    @property
    def milliseconds(self) -> float:
        return 1000.0 * self.frames / self.fps

    @property
    def noticeable(self) -> bool:
        """Large enough to notice and clear enough to trust."""
        return abs(self.frames) >= REPORTED_OFFSET_FRAMES and self.margin >= MIN_MARGIN

    def to_json(self) -> dict:
        return {"frames": self.frames, "milliseconds": round(self.milliseconds), "margin": round(self.margin, 4),
                "noticeable": self.noticeable}

    def warning(self) -> str:
        direction = "after" if self.frames > 0 else "before"
        # the search stops at MAX_OFFSET_FRAMES: a best move there only bounds the offset from below
        amount = "at least" if abs(self.frames) >= MAX_OFFSET_FRAMES else "about"
        return (f"The sound seems to come {amount} {abs(self.milliseconds):.0f} ms {direction} the face all through "
                "the clip. A constant offset often comes from re-encoding and is not in itself a sign of forgery.")


def best_offset(moves: np.ndarray, suspicion: np.ndarray, fps: float) -> AudioOffset | None:
    """The offset from a detector's mean suspicion of the clip with its audio moved by each of ``moves``.

    Args:
        moves: ``(moves,)`` int, containing 0; moving by ``k`` makes frame ``i`` hear the audio of ``i + k``
            (:func:`~exposeanyone.detectors.audio_reference.shifted_audio`), so the best ``k`` undoes an offset of ``k``.
        suspicion: ``(moves,)`` lower = more genuine; NaN where nothing was scored.
    """
    moves, suspicion = np.asarray(moves), np.asarray(suspicion, dtype=float)
    at_zero = suspicion[moves == 0]
    if not np.isfinite(suspicion).all() or len(at_zero) != 1:
        return None
    best = int(np.argmin(suspicion))
    return AudioOffset(frames=int(moves[best]), margin=float(at_zero[0] - suspicion[best]), fps=fps)
