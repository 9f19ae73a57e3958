"""What a detector's network may hear of a clip: its audio features by kind, with their shape.

Two kinds exist on the 25 fps timeline of :class:`~exposeanyone.media.clip.ClipFeatures`:

- ``"log-mel"``: ``clip.audio.mel``, ``(frames * 4, 80)`` natural-log mel power at 100 Hz (how it sounds);
- ``"whisper-base"``: ``clip.audio.encoded``, ``(frames, 512)`` frozen Whisper-base encoder features at
  25 Hz, one row a video frame (what is said; :mod:`~exposeanyone.media.speech`).

A model's saved config names its kind (``config.audio_features``), so a model is always fed what it was
trained on. Both EXAM and FauForensics read their audio through here.
"""
from __future__ import annotations

import numpy as np

from ..core.config import MEL_PER_FRAME, N_MELS
from ..core.errors import InputError
from ..media.audio_features import LOG_FLOOR
from ..media.clip import ClipFeatures
from ..media.speech import SPEECH_FEATURES

AUDIO_FEATURES = ("log-mel", "whisper-base")
"""The kinds of audio features a model may hear."""
AUDIO_SHAPES: dict[str, tuple[int, int]] = {"log-mel": (N_MELS, MEL_PER_FRAME), "whisper-base": (SPEECH_FEATURES, 1)}
"""``kind -> (channels, rows per video frame)``."""
SILENT_LOG_MEL = float(np.log(LOG_FLOOR))
"""The log-mel value of digital silence."""


def audio_shape(kind: str) -> tuple[int, int]:
    """``(channels, rows per video frame)`` of the audio features ``kind``."""
    if kind not in AUDIO_SHAPES:
        raise InputError(f"Unknown audio features {kind!r}: use one of {', '.join(AUDIO_FEATURES)}.")
    return AUDIO_SHAPES[kind]


def clip_audio(clip: ClipFeatures, kind: str) -> tuple[np.ndarray, float]:
    """``(frames * rows, channels)`` float32 audio features of ``kind`` and the value that pads them (silence).

    Whisper features are padded with zeros: a model removes each window's mean from them anyway.
    """
    audio_shape(kind)
    if kind == "log-mel":
        return np.asarray(clip.audio.mel, dtype=np.float32), SILENT_LOG_MEL
    if clip.audio.encoded is None:
        raise InputError(f"'{clip.name}' was analysed without speech features; extract it with "
                         "speech_features=True.")
    return np.asarray(clip.audio.encoded, dtype=np.float32), 0.0
