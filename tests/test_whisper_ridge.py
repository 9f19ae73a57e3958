"""The generic Whisper-feature ridge baseline (B3): fit, timing ratio, save and load, refusals."""
from __future__ import annotations

import numpy as np
import pytest

from exposeanyone.core.errors import InputError
from exposeanyone.detectors.whisper_ridge import WhisperRidgeBaseline
from exposeanyone.media.audio_features import AudioFeatures
from exposeanyone.media.clip import ClipFeatures
from exposeanyone.media.track import Track

MAPPING = np.random.default_rng(7).standard_normal((512, 52)) * 0.02
"""How the synthetic faces move with the synthetic speech features."""


def speaking_clip(seed: int, seconds: float = 8.0, encoded: bool = True) -> ClipFeatures:
    frames = int(seconds * 25)
    rng = np.random.default_rng(seed)
    kernel = np.hanning(7) / np.hanning(7).sum()
    features = np.stack([np.convolve(rng.standard_normal(frames), kernel, mode="same") for _ in range(512)], 1)
    blendshapes = 0.3 + features @ MAPPING + 0.01 * rng.standard_normal((frames, 52))
    track = Track(fps=25.0, blendshapes=blendshapes.astype(np.float32), pose=np.zeros((frames, 6), np.float32),
                  landmarks=np.zeros((frames, 478, 3), np.float16), mouth=np.zeros((frames, 32, 32), np.uint8),
                  valid=np.ones(frames, bool), interpolated=np.zeros(frames, bool))
    audio = AudioFeatures(mel=np.zeros((frames * 4, 80), np.float32), speech=np.ones(frames, bool),
                          energy_db=np.full(frames, -20.0, np.float32),
                          encoded=features.astype(np.float32) if encoded else None)
    return ClipFeatures(track=track, audio=audio, name=f"clip{seed}")


@pytest.fixture(scope="module")
def baseline():
    return WhisperRidgeBaseline.fit([speaking_clip(seed) for seed in range(4)])


def test_a_face_that_follows_its_own_speech_scores_below_a_dubbed_one(baseline):
    genuine = baseline.score(speaking_clip(10))
    dubbed = baseline.score(speaking_clip(10).with_audio_of(speaking_clip(11)))
    assert genuine.score < 0.3 < 0.8 < dubbed.score
    assert genuine.window_scores.shape == genuine.window_starts.shape and np.isfinite(genuine.window_scores).all()
    assert genuine.trajectories["generated"].shape == (200, 58)
    assert np.isnan(genuine.trajectories["generated"][:, 52:]).all()
    jaw = genuine.trajectories["generated"][:, 0], genuine.trajectories["observed"][:, 0]
    assert np.corrcoef(*jaw)[0, 1] > 0.8


def test_save_and_load_round_trip_and_damaged_files_are_refused(baseline, tmp_path):
    path = tmp_path / "whisper_ridge.safetensors"
    baseline.save(path)
    loaded = WhisperRidgeBaseline.load(path)
    clip = speaking_clip(12)
    assert loaded.score(clip).score == pytest.approx(baseline.score(clip).score, rel=1e-5)
    assert loaded.info["alpha"] == baseline.model.alpha
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match="not a readable Whisper ridge model"):
        WhisperRidgeBaseline.load(path)


def test_clips_without_speech_features_are_refused_in_one_sentence(baseline):
    with pytest.raises(InputError, match="without speech features"):
        baseline.score(speaking_clip(13, encoded=False))
    with pytest.raises(InputError, match="visible face"):
        clip = speaking_clip(14)
        faceless = ClipFeatures(track=clip.track.slice(0, 1), audio=clip.audio.slice(0, 1))
        WhisperRidgeBaseline.fit([faceless])
