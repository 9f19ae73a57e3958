import numpy as np
import pytest

from exposeanyone.core.config import Limits
from exposeanyone.core.errors import InputError, LimitError, MediaError, NoFaceError
from exposeanyone.media.corruptions import parse_corruption_spec
from exposeanyone.media.decode import probe
from exposeanyone.media.extract import extract_clip


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPOSEANYONE_CACHE_DIR", str(tmp_path / "cache"))


def best_lag(mouth: np.ndarray, loudness: np.ndarray, max_lag: int = 10) -> int:
    """The lag (frames, positive = audio later) maximising the correlation of mouth opening and loudness."""
    def corr(lag):
        a, b = (mouth[:len(mouth) - lag], loudness[lag:]) if lag >= 0 else (mouth[-lag:], loudness[:lag])
        return np.corrcoef(a, b)[0, 1]
    return max(range(-max_lag, max_lag + 1), key=corr)


def test_synthetic_clip_is_tracked_on_the_25_fps_timeline(talking_clip):
    clip = extract_clip(talking_clip)
    assert clip.num_frames == 100 and clip.fps == 25
    assert clip.track.face_detected_ratio >= 0.95
    assert clip.audio.mel.shape == (400, 80)
    assert 0.3 < clip.audio.speech_ratio < 1.0
    assert clip.track.mouth.shape == (100, 32, 32) and clip.track.mouth.std() > 5
    assert clip.track.max_faces == 1


def test_analysis_is_cached_by_content_and_options(talking_clip, tmp_path):
    first = extract_clip(talking_clip)
    cached_files = list((tmp_path / "cache" / "clips").rglob("*.npz"))
    assert len(cached_files) == 1
    again = extract_clip(talking_clip)
    np.testing.assert_array_equal(first.track.blendshapes, again.track.blendshapes)
    assert again.content_hash == first.content_hash
    extract_clip(talking_clip, parse_corruption_spec("contrast:2"))
    assert len(list((tmp_path / "cache" / "clips").rglob("*.npz"))) == 2


def test_audio_shifted_by_200_ms_moves_the_features_by_5_frames(talking_clip_factory):
    lags = []
    for shift in (0, 200):
        clip = extract_clip(talking_clip_factory(".mp4", seconds=8.0, seed=3, audio_shift_ms=shift))
        loudness = 10 ** (clip.audio.energy_db / 20)
        lags.append(best_lag(clip.track.blendshapes[:, 25], loudness))
    assert lags[0] == 0
    assert lags[1] - lags[0] == 5


@pytest.mark.parametrize("suffix", [".mkv", ".webm", ".mov", ".avi", ".flv"])
def test_common_containers_decode_to_the_same_timeline(talking_clip_factory, suffix):
    clip = extract_clip(talking_clip_factory(suffix, seconds=2.0, seed=1))
    assert 50 <= clip.num_frames <= 52  # some muxers keep a frame or two of encoder padding
    assert clip.track.face_detected_ratio >= 0.95
    assert clip.audio.speech_ratio > 0.2


def test_other_frame_rates_are_resampled_to_25_fps(talking_clip_factory):
    assert extract_clip(talking_clip_factory(".mp4", seconds=2.0, seed=2, fps=30.0)).num_frames == 50
    vfr = extract_clip(talking_clip_factory(".mp4", seconds=3.0, seed=2, vfr=True))
    assert abs(vfr.num_frames - 75) <= 2 and vfr.track.face_detected_ratio >= 0.9


@pytest.mark.parametrize("kind, error, words", [
    ("empty", MediaError, "empty"),
    ("random_bytes", MediaError, "not a video file"),
    ("text_as_mp4", MediaError, "not a video file"),
    ("image", MediaError, "still image"),
    ("audio_only", MediaError, "no video stream"),
    ("video_only", MediaError, "no audio track"),
    ("truncated", MediaError, "truncated"),
    ("truncated_no_index", MediaError, "truncated"),
    ("no_face", NoFaceError, "No face"),
    ("long", LimitError, "limit"),
])
def test_bad_inputs_raise_one_clear_sentence(bad_input, kind, error, words):
    with pytest.raises(error) as raised:
        extract_clip(bad_input(kind))
    message = str(raised.value)
    assert words in message and "\n" not in message and "Traceback" not in message


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        extract_clip(tmp_path / "nope.mp4")
    with pytest.raises(MediaError, match="not a file"):
        extract_clip(tmp_path)


def test_size_and_resolution_limits_are_checked_before_decoding(talking_clip, bad_input):
    with pytest.raises(LimitError, match="MB"):
        probe(talking_clip, Limits(max_file_mb=0.001))
    with pytest.raises(LimitError, match="pixels"):
        probe(bad_input("huge_resolution"), Limits(max_pixels=1000 * 1000))


def test_huge_frames_are_downscaled_before_tracking(bad_input):
    clip = extract_clip(bad_input("huge_resolution"), require_face=False)
    assert max(clip.track.frame_size) <= Limits().max_side_px


def test_silent_clip_has_a_face_and_no_speech(bad_input):
    clip = extract_clip(bad_input("silent"))
    assert clip.track.face_detected_ratio > 0.9 and clip.audio.speech_ratio == 0.0


def test_second_face_is_reported_and_one_person_is_followed(bad_input):
    clip = extract_clip(bad_input("two_faces"))
    assert clip.track.max_faces == 2 and clip.track.multi_face_frames > 0
    centres = clip.track.landmarks[:, :, 0].astype(float).mean(axis=1)
    assert np.ptp(centres[clip.track.valid]) < 0.25


def test_unknown_corruption_is_refused_before_work(talking_clip):
    with pytest.raises(InputError, match="Unknown|unknown"):
        extract_clip(talking_clip, parse_corruption_spec("sepia:2"))
    with pytest.raises(TypeError, match="CorruptionSpec"):
        extract_clip(talking_clip, "blur:2")


def test_a_refused_clip_leaves_nothing_in_the_cache(bad_input, tmp_path):
    with pytest.raises(NoFaceError):
        extract_clip(bad_input("no_face"))
    assert not list((tmp_path / "cache" / "clips").rglob("*.npz"))


def test_noisy_video_is_smoothed_before_tracking_and_says_so(talking_clip):
    clean = extract_clip(talking_clip)
    noisy = extract_clip(talking_clip, parse_corruption_spec("noise:3"))
    assert clean.track.extra["denoising"]["blur_px"] == 0.0
    assert noisy.track.extra["denoising"]["noise_grey_levels"] > 10
    assert noisy.track.extra["denoising"]["blur_px"] > 1.0
    assert noisy.track.face_detected_ratio >= 0.95


def test_a_grainy_reference_is_named_in_the_profile_warnings(talking_clip_factory):
    from exposeanyone.pipeline import enroll_clips

    clip = extract_clip(talking_clip_factory(".mp4", seconds=12.0, seed=3), parse_corruption_spec("noise:3"))
    profile = enroll_clips("Grace", [clip], detectors=("sync",))
    assert any(clip.name in w and "grainy" in w for w in profile.card.warnings), profile.card.warnings


def test_speech_features_are_cached_beside_the_track_and_follow_the_audio(talking_clip, tmp_path):
    clean = extract_clip(talking_clip)
    assert clean.audio.encoded.shape == (clean.num_frames, 512) and clean.audio.encoded.dtype == np.float32
    (entry,) = (tmp_path / "cache" / "speech").rglob("*.npz")
    again = extract_clip(talking_clip)  # read back: exactly what was computed
    np.testing.assert_array_equal(again.audio.encoded, clean.audio.encoded)
    entry.write_bytes(b"damaged")
    np.testing.assert_array_equal(extract_clip(talking_clip).audio.encoded, clean.audio.encoded)
    noisy = extract_clip(talking_clip, parse_corruption_spec("audio-noise:5"))
    assert np.abs(noisy.audio.encoded - clean.audio.encoded).mean() > 0.05 * np.abs(clean.audio.encoded).mean()
    np.testing.assert_array_equal(noisy.track.blendshapes, clean.track.blendshapes)
    assert extract_clip(talking_clip, speech_features=False).audio.encoded is None


def test_speech_features_move_with_the_audio_when_clips_are_cut_swapped_or_shifted(talking_clip,
                                                                                   talking_clip_factory):
    from exposeanyone.detectors.audio_reference import shifted_audio

    clip = extract_clip(talking_clip)
    other = extract_clip(talking_clip_factory(".mp4", seconds=2.0, seed=5))
    np.testing.assert_array_equal(clip.slice(10, 40).audio.encoded, clip.audio.encoded[10:40])
    dubbed = clip.with_audio_of(other)
    np.testing.assert_array_equal(dubbed.audio.encoded, other.audio.encoded[np.arange(clip.num_frames) % other.num_frames])
    moved = shifted_audio(clip, 30)
    np.testing.assert_array_equal(moved.audio.encoded[0], clip.audio.encoded[30])
