"""What FauForensics reads of a clip: its action units, mouth crops and audio features on one 25 fps timeline.

The audio is of the kind the model was trained on (``config.audio_features``, see
:mod:`~exposeanyone.detectors.audio_inputs`): Whisper-base features, one ``(512,)`` row a frame, or
log-mel, four ``(80,)`` rows a frame.

Scoring and training both start here; the pseudo-fake sampler (:mod:`.pseudo_fakes`) cuts its windows out of
these streams.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.config import FPS
from ...media.clip import ClipFeatures
from ..audio_inputs import audio_shape, clip_audio
from ..windows import MIN_FACE_RATIO, MIN_SPEECH_RATIO
from .action_units import blendshapes_to_action_units

FAU_WINDOW_FRAMES = FPS
"""Frames per window: 1 s, one learnable query per frame."""


@dataclass(frozen=True)
class ClipStreams:
    """One clip as the model reads it; every array shares the 25 fps timeline."""

    action_units: np.ndarray
    """``(frames, n_au)`` float32 in [0, 1]."""
    mouth: np.ndarray
    """``(frames, 32, 32)`` uint8 grey mouth crops."""
    audio: np.ndarray
    """``(frames * rows, channels)`` float32 audio features: ``(frames, 512)`` Whisper-base or
    ``(frames * 4, 80)`` log-mel (``audio_features`` says which)."""
    valid: np.ndarray
    """``(frames,)`` bool: a face is known."""
    speech: np.ndarray
    """``(frames,)`` bool: someone speaks."""
    name: str = "clip"
    identity: str = ""
    audio_features: str = "log-mel"
    """The kind of ``audio`` (:data:`~exposeanyone.detectors.audio_inputs.AUDIO_FEATURES`)."""

    @property
    def num_frames(self) -> int:
        return int(len(self.valid))

    @property
    def audio_per_frame(self) -> int:
        """Audio rows per video frame: 1 for Whisper features, 4 for log-mel."""
        return audio_shape(self.audio_features)[1]

    def usable_starts(self, length: int = FAU_WINDOW_FRAMES, min_face: float = MIN_FACE_RATIO,
                      min_speech: float = MIN_SPEECH_RATIO) -> np.ndarray:
        """``(windows,)`` int: every start whose window has enough face and enough speech."""
        if self.num_frames < length:
            return np.zeros(0, dtype=int)
        face = _window_means(self.valid, length)
        speech = _window_means(self.speech, length)
        return np.flatnonzero((face >= min_face) & (speech >= min_speech))

    def window(self, start: int, length: int = FAU_WINDOW_FRAMES, audio_start: int | None = None,
               visual_index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(action_units (T, n_au), mouth (T, 32, 32), audio (T * rows, channels))`` of frames ``start:start+T``.

        ``audio_start`` takes the audio from elsewhere in the clip; ``visual_index`` (``(T,)`` frame
        indices) takes the face from arbitrary frames.
        """
        frames = np.arange(start, start + length) if visual_index is None else visual_index
        audio = start if audio_start is None else audio_start
        rows = self.audio_per_frame
        return self.action_units[frames], self.mouth[frames], self.audio[audio * rows:(audio + length) * rows]


def _window_means(values: np.ndarray, length: int) -> np.ndarray:
    """``(frames - length + 1,)`` mean of ``values`` over every window of ``length`` frames."""
    cumulative = np.concatenate([[0.0], np.cumsum(values.astype(np.float64))])
    return (cumulative[length:] - cumulative[:-length]) / length


def clip_streams(clip: ClipFeatures, identity: str = "", audio_features: str = "log-mel") -> ClipStreams:
    """The model streams of ``clip`` with audio features of the kind ``audio_features`` (``clip.audio.mel``
    or ``clip.audio.encoded``); ``identity`` names the person, for pseudo-fakes across people."""
    audio, _ = clip_audio(clip, audio_features)
    return ClipStreams(action_units=blendshapes_to_action_units(clip.track.blendshapes),
                       mouth=np.asarray(clip.track.mouth, dtype=np.uint8), audio=audio,
                       valid=np.asarray(clip.track.valid, dtype=bool),
                       speech=np.asarray(clip.audio.speech, dtype=bool), name=clip.name, identity=identity,
                       audio_features=audio_features)
