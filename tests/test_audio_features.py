import numpy as np

from exposeanyone.core.config import FPS, SAMPLE_RATE
from exposeanyone.media.audio_features import HOP_LENGTH, audio_features, log_mel, speech_activity


def tone(seconds, freq=440.0, amplitude=0.3):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_log_mel_has_four_frames_per_video_frame_at_100_hz():
    mel = log_mel(tone(2.0), num_frames=50)
    assert mel.shape == (200, 80)
    assert HOP_LENGTH * 100 == SAMPLE_RATE


def test_log_mel_peaks_in_the_band_of_the_tone():
    low, high = log_mel(tone(1.0, 300.0), 25), log_mel(tone(1.0, 3000.0), 25)
    assert low.mean(axis=0).argmax() < high.mean(axis=0).argmax()


def test_audio_is_padded_or_cut_to_the_video_length():
    assert log_mel(tone(0.5), 50).shape == (200, 80)
    short = audio_features(tone(0.5), 50)
    assert short.speech[:10].all() and not short.speech[-10:].any()


def test_speech_mask_follows_bursts_and_ignores_silence():
    audio = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), tone(1.0), np.zeros(SAMPLE_RATE, np.float32)])
    features = audio_features(audio, 3 * FPS)
    assert not features.speech[:20].any()
    assert features.speech[30:45].all()
    assert not features.speech[-20:].any()
    assert 0.3 < features.speech_ratio < 0.55


def test_silent_clip_has_no_speech():
    features = audio_features(np.zeros(2 * SAMPLE_RATE, np.float32), 2 * FPS)
    assert features.speech_ratio == 0.0
    assert np.isfinite(features.mel).all()


def test_continuous_speech_without_pauses_is_still_speech():
    rng = np.random.default_rng(0)
    audio = tone(3.0) * (0.6 + 0.4 * rng.random(3 * SAMPLE_RATE)).astype(np.float32)
    assert speech_activity(audio_features(audio, 75).energy_db).mean() > 0.9


def test_fitted_to_loops_and_trims():
    features = audio_features(tone(1.0), 25)
    looped = features.fitted_to(60)
    assert looped.num_frames == 60 and looped.mel.shape == (240, 80)
    np.testing.assert_array_equal(looped.mel[100:200], features.mel[:100])
    assert features.fitted_to(10).mel.shape == (40, 80)
