"""The analysed clip: a file turned once into everything the detectors need."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .audio_features import AudioFeatures
from .track import Track


@dataclass(frozen=True)
class ClipFeatures:
    """One clip on the 25 fps timeline: its expression track and its audio features.

    ``track`` and ``audio`` have the same number of frames. Detectors read only this, never files.
    """

    track: Track
    audio: AudioFeatures
    name: str = "clip"
    """A label for messages and reports (the file name, never a full path from a user)."""
    content_hash: str = ""
    """sha256 of the source file (and of the options that changed it), for caches and profile cards."""
    corruption: str = ""
    """The corruption spec applied before tracking, '' for none."""
    waveform_envelope: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    """``(frames,)`` float32 peak amplitude per video frame, for plotting the waveform."""

    def __post_init__(self) -> None:
        if self.track.num_frames != self.audio.num_frames:
            raise ValueError(
                f"track has {self.track.num_frames} frames but audio features have {self.audio.num_frames}")

    @property
    def num_frames(self) -> int:
        return self.track.num_frames

    @property
    def fps(self) -> float:
        return self.track.fps

    @property
    def duration_s(self) -> float:
        return self.track.duration_s

    @property
    def usable(self) -> np.ndarray:
        """``(frames,)`` bool: a face is known and someone is speaking."""
        return self.track.valid & self.audio.speech

    def with_audio_of(self, other: "ClipFeatures") -> "ClipFeatures":
        """This clip's face with ``other``'s audio, trimmed or looped to this length (a dubbing fake)."""
        envelope = other.waveform_envelope
        if len(envelope):
            envelope = envelope[np.arange(self.num_frames) % len(envelope)]
        return replace(self, audio=other.audio.fitted_to(self.num_frames), waveform_envelope=envelope,
                       name=f"{self.name}+audio:{other.name}",
                       content_hash=f"{self.content_hash}+audio:{other.content_hash}")

    def slice(self, start: int, stop: int) -> "ClipFeatures":
        return replace(self, track=self.track.slice(start, stop), audio=self.audio.slice(start, stop),
                       waveform_envelope=self.waveform_envelope[start:stop])
