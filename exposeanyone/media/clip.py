"""The analysed clip: a file turned once into everything the detectors need."""
from __future__ import annotations

import json
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

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``np.savez`` (no pickles), read back by :meth:`from_arrays`; ``audio_encoded``
        only when the clip has speech features."""
        arrays = {f"track_{k}": v for k, v in self.track.to_arrays().items()}
        arrays.update(audio_mel=self.audio.mel, audio_speech=self.audio.speech, audio_energy_db=self.audio.energy_db,
                      envelope=self.waveform_envelope,
                      clip_json=np.frombuffer(json.dumps({"content_hash": self.content_hash,
                                                          "corruption": self.corruption}).encode(), np.uint8))
        if self.audio.encoded is not None:
            arrays["audio_encoded"] = self.audio.encoded
        return arrays

    @classmethod
    def from_arrays(cls, arrays, name: str) -> "ClipFeatures":
        """The clip written by :meth:`to_arrays` (``arrays``: a mapping such as an opened ``.npz``)."""
        meta = json.loads(bytes(arrays["track_meta_json"]).decode())
        track = Track.from_arrays(meta, {k[len("track_"):]: np.array(arrays[k]) for k in arrays
                                         if k.startswith("track_") and k != "track_meta_json"}, name)
        encoded = np.array(arrays["audio_encoded"]) if "audio_encoded" in arrays else None
        audio = AudioFeatures(mel=np.array(arrays["audio_mel"]), speech=np.array(arrays["audio_speech"]),
                              energy_db=np.array(arrays["audio_energy_db"]), encoded=encoded)
        info = json.loads(bytes(arrays["clip_json"]).decode())
        return cls(track=track, audio=audio, name=name, content_hash=info["content_hash"],
                   corruption=info["corruption"], waveform_envelope=np.array(arrays["envelope"]))
