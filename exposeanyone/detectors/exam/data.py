"""Cutting clips into the fixed-length windows the EXAM model reads.

A window is :data:`WINDOW_FRAMES` frames (4 s) of expressions, the matching log-mel, and a mask of the
frames where a face is known. Clips shorter than a window are padded at the end with masked frames and
silent audio. Scoring uses sliding windows; training draws random crops, optionally time-warped.
The loss and the score count every frame with a known face, silent or not (how a person moves between
words is theirs too); speech only decides whether a window is scored at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...media.audio_features import LOG_FLOOR
from ...media.clip import ClipFeatures
from ...core.config import MEL_PER_FRAME
from ..base import window_starts

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
SILENT_LOG_MEL = float(np.log(LOG_FLOOR))
"""The log-mel value of digital silence, used to pad audio."""


@dataclass(frozen=True)
class ClipArrays:
    """A clip's model inputs as plain arrays, padded to at least one window."""

    expressions: np.ndarray
    """``(frames, 58)`` float32 blendshapes + head pose."""
    mel: np.ndarray
    """``(frames * 4, 80)`` float32 log-mel."""
    frame_mask: np.ndarray
    """``(frames,)`` bool: a face is known (False on padding)."""
    speech: np.ndarray
    """``(frames,)`` bool: speech is active (False on padding)."""
    num_clip_frames: int
    """Frames of the clip before padding."""

    @property
    def num_frames(self) -> int:
        return len(self.frame_mask)


@dataclass(frozen=True)
class WindowBatch:
    """Windows stacked for the model."""

    expressions: np.ndarray
    """``(windows, frames, 58)`` float32."""
    mel: np.ndarray
    """``(windows, frames * 4, 80)`` float32."""
    frame_mask: np.ndarray
    """``(windows, frames)`` bool."""
    speech: np.ndarray
    """``(windows, frames)`` bool."""
    starts: np.ndarray
    """``(windows,)`` int first clip frame of each window."""

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def usable(self) -> np.ndarray:
        """``(windows,)`` bool: enough face and speech to be scored."""
        return window_usable(self.frame_mask, self.speech)

    def select(self, keep: np.ndarray) -> "WindowBatch":
        return WindowBatch(self.expressions[keep], self.mel[keep], self.frame_mask[keep],
                           self.speech[keep], self.starts[keep])


def window_usable(frame_mask: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """``(..., frames)`` masks -> ``(...)`` bool: at least :data:`MIN_FACE_RATIO` face and
    :data:`MIN_SPEECH_RATIO` speech."""
    return (frame_mask.mean(axis=-1) >= MIN_FACE_RATIO) & (speech.mean(axis=-1) >= MIN_SPEECH_RATIO)


def clip_arrays(clip: ClipFeatures, window: int = WINDOW_FRAMES) -> ClipArrays:
    """The model inputs of ``clip``, padded at the end to at least ``window`` frames."""
    n = clip.num_frames
    pad = max(0, window - n)
    expressions = np.asarray(clip.track.expressions(), dtype=np.float32)
    mask = np.asarray(clip.track.valid, dtype=bool)
    # frames without a face hold zeros by contract; make sure nothing else leaks from them
    expressions = np.where(mask[:, None], expressions, 0.0).astype(np.float32)
    mel = np.asarray(clip.audio.mel, dtype=np.float32)
    return ClipArrays(
        expressions=np.pad(expressions, ((0, pad), (0, 0))),
        mel=np.pad(mel, ((0, pad * MEL_PER_FRAME), (0, 0)), constant_values=SILENT_LOG_MEL),
        frame_mask=np.pad(mask, (0, pad)),
        speech=np.pad(np.asarray(clip.audio.speech, dtype=bool), (0, pad)),
        num_clip_frames=n,
    )


def _stack(arrays: ClipArrays, starts: np.ndarray, window: int) -> WindowBatch:
    frame_index = starts[:, None] + np.arange(window)
    mel_index = starts[:, None] * MEL_PER_FRAME + np.arange(window * MEL_PER_FRAME)
    return WindowBatch(
        expressions=arrays.expressions[frame_index],
        mel=arrays.mel[mel_index],
        frame_mask=arrays.frame_mask[frame_index],
        speech=arrays.speech[frame_index],
        starts=np.asarray(starts, dtype=int),
    )


def sliding_windows(clip: ClipFeatures | ClipArrays, window: int = WINDOW_FRAMES,
                    stride: int = SCORING_STRIDE) -> WindowBatch:
    """Windows every ``stride`` frames, the last one flush with the clip's end (one for a short clip)."""
    arrays = clip if isinstance(clip, ClipArrays) else clip_arrays(clip, window)
    return _stack(arrays, window_starts(arrays.num_clip_frames, window, stride), window)


def _resample_rows(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` ``(n, c)`` at fractional row ``positions`` ``(m,)``."""
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, len(values) - 1)
    weight = (positions - low)[:, None].astype(np.float32)
    return values[low] * (1 - weight) + values[high] * weight


def random_window(arrays: ClipArrays, rng: np.random.Generator, window: int = WINDOW_FRAMES,
                  time_warp: float = 0.0) -> WindowBatch:
    """One random crop of ``arrays``, played ``1 +- time_warp`` times faster (uniformly drawn).

    Expressions and mel are warped together, so the audio-visual timing is kept.
    """
    rate = 1.0 + rng.uniform(-time_warp, time_warp) if time_warp > 0 else 1.0
    source_frames = min(arrays.num_frames, max(2, int(round(window * rate))))
    start = int(rng.integers(0, arrays.num_frames - source_frames + 1))
    if source_frames == window:
        return _stack(arrays, np.array([start]), window)
    positions = start + np.linspace(0, source_frames - 1, window)
    mel_positions = start * MEL_PER_FRAME + np.linspace(0, source_frames * MEL_PER_FRAME - 1,
                                                        window * MEL_PER_FRAME)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, arrays.num_frames - 1)
    nearest = np.round(positions).astype(int)
    return WindowBatch(
        expressions=_resample_rows(arrays.expressions, positions)[None].astype(np.float32),
        mel=_resample_rows(arrays.mel, mel_positions)[None].astype(np.float32),
        # an interpolated frame is known only if both frames it mixes are
        frame_mask=(arrays.frame_mask[low] & arrays.frame_mask[high])[None],
        speech=arrays.speech[nearest][None],
        starts=np.array([start]),
    )


def concatenate(batches: Sequence[WindowBatch]) -> WindowBatch:
    """Stack several batches into one."""
    return WindowBatch(
        expressions=np.concatenate([b.expressions for b in batches]),
        mel=np.concatenate([b.mel for b in batches]),
        frame_mask=np.concatenate([b.frame_mask for b in batches]),
        speech=np.concatenate([b.speech for b in batches]),
        starts=np.concatenate([b.starts for b in batches]),
    )

