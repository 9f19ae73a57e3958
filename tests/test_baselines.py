import json

import numpy as np
import pytest

from exposeanyone.core.errors import InputError, ProfileError
from exposeanyone.detectors.base import PersonModel
from exposeanyone.detectors.baselines import (
    MOUTH_OPENING_CHANNEL,
    N_AUDIO_FEATURES,
    WINDOW_LENGTH,
    RidgeRatioBaseline,
    SyncBaseline,
    fit_ridge_cv,
    stacked_log_mel,
)
from exposeanyone.media.audio_features import AudioFeatures
from exposeanyone.media.clip import ClipFeatures
from exposeanyone.media.track import Track


def smooth_noise(rng, length, channels, width=3):
    """``(length, channels)`` random signal smoothed over ``width`` frames (it forgets itself in ~2 width)."""
    raw = rng.normal(size=(length + 4 * width, channels))
    kernel = np.exp(-0.5 * (np.arange(-2 * width, 2 * width + 1) / width) ** 2)
    smoothed = np.stack([np.convolve(raw[:, c], kernel, mode="valid") for c in range(channels)], axis=1)
    smoothed = smoothed[:length]
    return (smoothed - smoothed.mean(0)) / smoothed.std(0)


def make_clip(blendshapes, mel, energy_db=None, speech=None, valid=None, name="clip"):
    frames = len(blendshapes)
    valid = np.ones(frames, bool) if valid is None else valid
    track = Track(fps=25.0, blendshapes=blendshapes.astype(np.float32), pose=np.zeros((frames, 6), np.float32),
                  landmarks=np.zeros((frames, 478, 3), np.float16), mouth=np.zeros((frames, 32, 32), np.uint8),
                  valid=valid, interpolated=np.zeros(frames, bool))
    audio = AudioFeatures(
        mel=mel.astype(np.float32),
        speech=np.ones(frames, bool) if speech is None else speech,
        energy_db=np.full(frames, -30.0, np.float32) if energy_db is None else energy_db.astype(np.float32))
    return ClipFeatures(track=track, audio=audio, name=name)


# --------------------------------------------------------------------------------------------------
# sync
# --------------------------------------------------------------------------------------------------

def sync_clip(mouth_signal, energy_signal, name="clip"):
    frames = len(mouth_signal)
    blendshapes = np.zeros((frames, 52))
    blendshapes[:, MOUTH_OPENING_CHANNEL] = 0.4 + 0.1 * mouth_signal
    return make_clip(blendshapes, np.zeros((frames * 4, 80)), energy_db=-30 + 8 * energy_signal, name=name)


@pytest.fixture(scope="module")
def speech_signal():
    return smooth_noise(np.random.default_rng(0), 300, 1)[:, 0]


def test_sync_scores_in_sync_clip_lower_than_shifted_or_replaced(speech_signal):
    rng = np.random.default_rng(1)
    frames = 250
    noisy = speech_signal + 0.3 * rng.normal(size=len(speech_signal))
    in_sync = SyncBaseline().score(sync_clip(speech_signal[:frames], noisy[:frames]))
    shifted = SyncBaseline().score(sync_clip(speech_signal[:frames], noisy[25:frames + 25]))
    other = smooth_noise(np.random.default_rng(7), frames, 1)[:, 0]
    replaced = SyncBaseline().score(sync_clip(speech_signal[:frames], other))
    assert in_sync.score < -0.8
    assert in_sync.score < shifted.score - 0.4
    assert in_sync.score < replaced.score - 0.4
    assert in_sync.usable_windows == len(in_sync.window_starts) == 7
    assert in_sync.window_length == WINDOW_LENGTH and in_sync.frame_scores.shape == (frames,)


@pytest.mark.parametrize("lag", [-4, 3])
def test_sync_recovers_known_lag(speech_signal, lag):
    frames = 200
    mouth = speech_signal[10:10 + frames]
    energy = speech_signal[10 - lag:10 - lag + frames]  # energy[t + lag] == mouth[t]: audio `lag` frames late
    output = SyncBaseline().score(sync_clip(mouth, energy))
    assert output.extras["best_lag"] == [lag] * len(output.window_starts)
    assert output.extras["median_best_lag"] == lag
    assert output.score == pytest.approx(-1.0, abs=1e-6)
    json.dumps(output.extras)


def test_sync_windows_without_speech_or_face_are_nan(speech_signal):
    clip = sync_clip(speech_signal[:200], speech_signal[:200])
    silent = ClipFeatures(track=clip.track, audio=AudioFeatures(
        mel=clip.audio.mel, speech=np.zeros(200, bool), energy_db=clip.audio.energy_db))
    output = SyncBaseline().score(silent)
    assert np.isnan(output.score) and output.usable_windows == 0
    assert np.isnan(output.frame_scores).all()
    assert output.extras["best_lag"] == [None] * len(output.window_starts)

    faceless = np.ones(200, bool)
    faceless[:120] = False  # windows starting at 0, 25, 50 have 0, 5, 30 % face; at 75, 100: 55, 80 %
    partial = make_clip(clip.track.blendshapes, clip.audio.mel, clip.audio.energy_db, valid=faceless)
    scores = SyncBaseline().score(partial).window_scores
    assert np.isnan(scores[:3]).all() and np.isfinite(scores[3:]).all()


def test_sync_short_clip_counts_missing_frames_like_exam(speech_signal):
    """A clip shorter than a window is one window whose missing frames have no face (EXAM's padding)."""
    long_enough = SyncBaseline().score(sync_clip(speech_signal[:60], speech_signal[:60]))
    too_short = SyncBaseline().score(sync_clip(speech_signal[:40], speech_signal[:40]))
    assert list(long_enough.window_starts) == [0] and np.isfinite(long_enough.score)
    assert np.isnan(too_short.score)  # 40 of 100 frames with a face: under the 50 % bar


# --------------------------------------------------------------------------------------------------
# ridge
# --------------------------------------------------------------------------------------------------

N_SOURCES = 6


@pytest.fixture(scope="module")
def people():
    """Blendshapes are a person-specific linear function of 6 hidden audio sources plus noise."""
    rng = np.random.default_rng(42)
    mel_mixing = rng.normal(size=(N_SOURCES, 80))
    mouths = {name: rng.normal(scale=0.05, size=(N_SOURCES, 52)) for name in ("alice", "bob", "carol", "dave")}

    def clip_of(person, frames, seed):
        local = np.random.default_rng(seed)
        sources = smooth_noise(local, frames, N_SOURCES, width=2)
        mel_per_frame = sources @ mel_mixing + 0.3 * local.normal(size=(frames, 80)) - 5.0
        mel = np.repeat(mel_per_frame, 4, axis=0) + 0.05 * local.normal(size=(frames * 4, 80))
        blendshapes = 0.3 + sources @ mouths[person] + 0.01 * local.normal(size=(frames, 52))
        return make_clip(blendshapes, mel, name=f"{person}-{seed}")

    return clip_of


@pytest.fixture(scope="module")
def generic(people):
    clips = [people(name, 250, seed) for seed, name in enumerate(("bob", "carol", "dave"))]
    return RidgeRatioBaseline.fit_generic(clips)


def test_stacked_log_mel_layout():
    frames = 12
    mel = np.repeat(np.arange(frames, dtype=float), 4)[:, None] * np.ones((1, 80))
    features = stacked_log_mel(AudioFeatures(mel=mel, speech=np.ones(frames, bool),
                                             energy_db=np.zeros(frames)))
    assert features.shape == (frames, N_AUDIO_FEATURES)
    np.testing.assert_array_equal(features[6].reshape(11, 80)[:, 0], np.arange(1, 12))
    np.testing.assert_array_equal(features[0].reshape(11, 80)[:, 0], [0] * 6 + [1, 2, 3, 4, 5])


@pytest.mark.parametrize("frames", [60, 200])  # fewer and more frames than features (kernel / Gram path)
def test_ridge_fit_matches_closed_form(frames):
    rng = np.random.default_rng(frames)
    features = rng.normal(size=(frames, 150)) * rng.uniform(0.5, 2, 150) + 3
    targets = rng.normal(size=(frames, 4))
    model, info = fit_ridge_cv(features, targets, alphas=(0.1, 10.0, 1000.0))
    standardised = (features - features.mean(0)) / features.std(0)
    alpha = info["alpha"]
    weights = np.linalg.solve(standardised.T @ standardised + alpha * np.eye(150),
                              standardised.T @ (targets - targets.mean(0)))
    np.testing.assert_allclose(model.predict(features), standardised @ weights + targets.mean(0), atol=1e-9)
    assert len(info["cv_errors"]) == 3 and info["frames"] == frames


def test_ridge_cv_prefers_strong_penalty_on_pure_noise():
    rng = np.random.default_rng(9)
    _, info = fit_ridge_cv(rng.normal(size=(200, 300)), rng.normal(size=(200, 3)), alphas=(0.01, 1e6))
    assert info["alpha"] == 1e6


def test_ridge_ratio_below_one_for_person_and_higher_for_someone_else(people, generic):
    detector = generic
    person = detector.enroll([people("alice", 300, 100), people("alice", 300, 101)])
    assert person.detector == "ridge" and person.tensors["weights"].shape == (880, 52)
    assert person.info["alpha"] in person.info["cv_alphas"]
    own = detector.score(people("alice", 250, 200), person)
    stranger = detector.score(people("bob", 250, 201), person)
    assert own.score < 0.5
    assert stranger.score > 2 * own.score
    assert stranger.score > 1.0
    assert own.trajectories["observed"].shape == own.trajectories["generated"].shape == (250, 58)
    assert np.isnan(own.trajectories["generated"][:, 52:]).all()
    json.dumps(own.extras)


def test_ridge_detects_dubbing_of_the_same_person(people, generic):
    person = generic.enroll([people("alice", 500, 110)])
    genuine = people("alice", 250, 210)
    dubbed = genuine.with_audio_of(people("alice", 250, 211))
    assert generic.score(dubbed, person).score > 2 * generic.score(genuine, person).score


def test_ridge_save_load_round_trip(tmp_path, people, generic):
    path = tmp_path / "generic.safetensors"
    generic.save(path)
    loaded = RidgeRatioBaseline.load(path)
    assert loaded.generic.alpha == generic.generic.alpha
    assert loaded.generic_info["frames"] == generic.generic_info["frames"]
    person = generic.enroll([people("alice", 300, 120)])
    clip = people("alice", 200, 220)
    assert loaded.score(clip, person).score == pytest.approx(generic.score(clip, person).score, rel=1e-4)


def test_ridge_load_refuses_other_files(tmp_path):
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"\x00" * 64)
    with pytest.raises(InputError):
        RidgeRatioBaseline.load(bogus)
    from safetensors.numpy import save_file
    wrong = tmp_path / "wrong.safetensors"
    save_file({"weights": np.zeros((3, 3), np.float32)}, str(wrong), metadata={"format": "other"})
    with pytest.raises(InputError):
        RidgeRatioBaseline.load(wrong)


def test_ridge_needs_generic_person_and_enough_frames(people, generic):
    clip = people("alice", 120, 230)
    with pytest.raises(InputError):
        RidgeRatioBaseline().score(clip, generic.enroll([people("alice", 200, 231)]))
    with pytest.raises(ProfileError):
        generic.score(clip, None)
    with pytest.raises(ProfileError):
        generic.score(clip, PersonModel(detector="sync", tensors={}))
    with pytest.raises(InputError):
        generic.enroll([people("alice", 30, 232)])
    with pytest.raises(InputError):
        generic.enroll([])


def test_ridge_windows_without_speech_are_nan(people, generic):
    person = generic.enroll([people("alice", 300, 140)])
    clip = people("alice", 200, 240)
    speech = np.zeros(200, bool)
    speech[:20] = True  # 20 % speech in the first window, less in the others: below the 25 % bar everywhere
    silent = ClipFeatures(track=clip.track, audio=AudioFeatures(
        mel=clip.audio.mel, speech=speech, energy_db=clip.audio.energy_db))
    output = generic.score(silent, person)
    assert np.isnan(output.score) and output.usable_windows == 0
    assert output.extras["personal_error"] == [None] * len(output.window_starts)


def test_ridge_is_deterministic(people):
    clips = [people("bob", 300, 1), people("carol", 300, 2)]
    first, second = RidgeRatioBaseline.fit_generic(clips), RidgeRatioBaseline.fit_generic(clips)
    np.testing.assert_array_equal(first.generic.weights, second.generic.weights)
    reference = [people("alice", 300, 150)]
    person_a, person_b = first.enroll(reference), second.enroll(reference)
    np.testing.assert_array_equal(person_a.tensors["weights"], person_b.tensors["weights"])
    clip = people("alice", 200, 250)
    np.testing.assert_array_equal(first.score(clip, person_a).window_scores,
                                  second.score(clip, person_b).window_scores)
