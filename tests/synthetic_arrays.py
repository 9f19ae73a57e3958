"""Analysed clips built straight from arrays, for tests that need no video file."""
from __future__ import annotations

import numpy as np

from exposeanyone.core.config import FPS, SAMPLE_RATE
from exposeanyone.media.audio_features import audio_features
from exposeanyone.media.clip import ClipFeatures
from exposeanyone.media.track import Track


def make_track(frames: int, seed: int = 0, valid: np.ndarray | None = None) -> Track:
    rng = np.random.default_rng(seed)
    valid = np.ones(frames, bool) if valid is None else valid
    return Track(fps=FPS, blendshapes=rng.random((frames, 52), dtype=np.float32),
                 pose=rng.normal(size=(frames, 6)).astype(np.float32),
                 landmarks=rng.random((frames, 478, 3)).astype(np.float16),
                 mouth=rng.integers(0, 255, (frames, 32, 32), dtype=np.uint8),
                 valid=valid, interpolated=np.zeros(frames, bool), frame_size=(256, 256))


def make_clip(seconds: float = 5.0, seed: int = 0, name: str = "clip") -> ClipFeatures:
    frames = int(seconds * FPS)
    rng = np.random.default_rng(seed)
    audio = (0.2 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
    return ClipFeatures(track=make_track(frames, seed), audio=audio_features(audio, frames), name=name,
                        content_hash=f"hash{seed}", waveform_envelope=np.abs(audio[:frames]))
