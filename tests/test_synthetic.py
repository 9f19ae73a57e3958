"""The test-clip generator: deterministic arrays, decodable files, audio that drives the mouth, bad inputs."""
from __future__ import annotations

import time
from fractions import Fraction

import av
import numpy as np
import pytest
from media_factory import make_bad_input

from exposeanyone.core.config import SAMPLE_RATE
from exposeanyone.demo import synthetic
from exposeanyone.media.audio_features import frame_energy_db

JAW_OPEN = 25  # index of jawOpen among MediaPipe's 52 blendshapes


def decode(path) -> dict:
    """Streams of a file: codec names, frame times, frame size and mono audio samples (as stored)."""
    found = {"video": None, "audio": None, "times": [], "samples": [], "rate": None}
    with av.open(str(path)) as container:
        found["duration"] = container.duration / 1e6 if container.duration else None
        for stream in container.streams:
            if stream.type in ("video", "audio"):
                found[stream.type] = stream.codec_context.name
        if container.streams.video:
            for frame in container.decode(video=0):
                found["times"].append(float(frame.time))
                found["shape"] = (frame.height, frame.width)
    if found["audio"]:
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                found["rate"] = frame.sample_rate
                found["samples"].append(frame.to_ndarray().reshape(frame.samples, -1).mean(axis=1)
                                        if frame.format.is_packed else frame.to_ndarray().mean(axis=0))
    found["samples"] = np.concatenate(found["samples"]) if found["samples"] else np.zeros(0)
    return found


def landmark(path, num_faces: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe on every frame: faces found per frame ``(frames,)`` and jawOpen of the first ``(frames,)``."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    from exposeanyone.core.assets import face_landmarker_path

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
        running_mode=vision.RunningMode.VIDEO, num_faces=num_faces, output_face_blendshapes=True)
    counts, jaw = [], []
    with vision.FaceLandmarker.create_from_options(options) as landmarker, av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=frame.to_ndarray(format="rgb24"))
            result = landmarker.detect_for_video(image, int(round(frame.time * 1000)))
            counts.append(len(result.face_landmarks))
            jaw.append(result.face_blendshapes[0][JAW_OPEN].score if result.face_blendshapes else np.nan)
    return np.array(counts), np.array(jaw)


def lagged_correlation(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """Pearson r of ``a[t]`` with ``b[t - lag]``."""
    n = len(a)
    return float(np.corrcoef(a[max(lag, 0): n + min(lag, 0)], b[max(-lag, 0): n - max(lag, 0)])[0, 1])


def envelope_lag(reference: np.ndarray, shifted: np.ndarray, max_lag: int) -> int:
    """The delay of ``shifted`` against ``reference`` (samples) that best aligns their loudness."""
    ref, sig = synthetic.amplitude_envelope(reference), synthetic.amplitude_envelope(shifted)
    n = min(len(ref), len(sig))
    ref, sig = ref[:n] - ref[:n].mean(), sig[:n] - sig[:n].mean()
    lags = np.arange(-max_lag, max_lag + 1)
    scores = [np.dot(sig[max(lag, 0): n + min(lag, 0)], ref[max(-lag, 0): n - max(lag, 0)]) for lag in lags]
    return int(lags[int(np.argmax(scores))])


# --------------------------------------------------------------------------- arrays


def test_synth_speech_is_seeded_speech_with_pauses():
    audio, envelope = synthetic.synth_speech_with_envelope(4.0, seed=3)
    assert audio.shape == envelope.shape == (4 * SAMPLE_RATE,) and audio.dtype == np.float32
    np.testing.assert_array_equal(audio, synthetic.synth_speech(4.0, seed=3))
    assert not np.array_equal(audio, synthetic.synth_speech(4.0, seed=4))
    _, envelope_48k = synthetic.synth_speech_with_envelope(4.0, seed=3, sample_rate=48000)
    np.testing.assert_allclose(envelope_48k[::3], envelope, atol=0.05, err_msg="the same words at any rate")
    assert 0.55 < np.abs(audio).max() <= 0.6 + 1e-3 and envelope.min() >= 0 and envelope.max() <= 1
    voiced = envelope > 0.05
    assert 0.35 < voiced.mean() < 0.9, "words and pauses both present"
    starts = np.flatnonzero(np.diff(voiced.astype(int)) == 1)
    assert len(starts) >= 8, "at least two syllables a second"
    # loudness of each 40 ms frame follows the envelope: the mouth can follow the audio
    frames = 100
    rms = 10 ** (frame_energy_db(audio, frames) / 20)
    envelope_per_frame = envelope.reshape(frames, -1).mean(axis=1)
    assert np.corrcoef(rms, envelope_per_frame)[0, 1] > 0.95
    pauses = rms[envelope_per_frame == 0]
    assert np.median(pauses) < 1e-3, "pauses are quiet"
    assert pauses.max() < 0.05 * rms.max(), "only a consonant's hiss leads a syllable into a pause"


def test_rendering_is_deterministic_and_the_mouth_opens_with_loudness():
    first = synthetic.render_talking_clip(2.0, seed=5)
    again = synthetic.render_talking_clip(2.0, seed=5)
    other = synthetic.render_talking_clip(2.0, seed=6)
    assert first.num_frames == 50 and first.width == first.height == 256
    np.testing.assert_array_equal(first.audio, again.audio)
    loudest, quietest = int(np.argmax(first.mouth_open)), int(np.argmin(first.mouth_open))
    for index in (0, loudest):
        np.testing.assert_array_equal(first.render_frame(index), again.render_frame(index))
    assert not np.array_equal(first.render_frame(loudest), other.render_frame(loudest))
    assert first.mouth_open[loudest] > 0.6 and first.mouth_open[quietest] < 0.05
    # an open mouth shows a dark cavity below the lips
    face, geometry = synthetic.load_face(256)
    box = (slice(int(geometry.mouth_y) - 2, int(geometry.mouth_y) + 12),
           slice(int(geometry.mouth_x) - 8, int(geometry.mouth_x) + 8))
    open_frame = synthetic.render_face(face, geometry, 15.0, 1.0, 0.0, 0.0, 0.0)
    closed_frame = synthetic.render_face(face, geometry, 0.0, 1.0, 0.0, 0.0, 0.0)
    assert open_frame[box].mean() < closed_frame[box].mean() - 40
    assert np.abs(closed_frame.astype(int) - face).max() <= 1, "no motion, no jaw: the still face"


def test_audio_shift_moves_the_waveform_and_keeps_its_length():
    audio = np.arange(1, 11, dtype=np.float32)
    np.testing.assert_array_equal(synthetic.shift_audio(audio, 3), [0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
    np.testing.assert_array_equal(synthetic.shift_audio(audio, -3), [4, 5, 6, 7, 8, 9, 10, 0, 0, 0])
    clip = synthetic.render_talking_clip(1.0, seed=1, audio_shift_ms=100)
    np.testing.assert_array_equal(clip.audio[1600:], synthetic.synth_speech(1.0, 1)[:-1600])


def test_vfr_frame_times_are_irregular_but_cover_the_clip():
    clip = synthetic.render_talking_clip(3.0, seed=2, vfr=True)
    durations = np.diff(clip.frame_times)
    assert durations.min() >= 0.5 / 25 - 1e-3 and durations.max() <= 1.6 / 25 + 1e-3
    assert len(np.unique(np.round(durations, 3))) > 10
    assert clip.frame_times[0] == 0 and 3.0 - 1.6 / 25 <= clip.frame_times[-1] < 3.0


def test_argument_errors():
    with pytest.raises(ValueError, match="faces"):
        synthetic.render_talking_clip(1.0, faces=3)
    with pytest.raises(ValueError, match="speech"):
        synthetic.render_talking_clip(1.0, speech="singing")
    with pytest.raises(ValueError, match="size"):
        synthetic.render_talking_clip(1.0, size=255)
    with pytest.raises(ValueError, match=".gif"):
        synthetic.make_talking_clip("clip.gif", 1.0)
    with pytest.raises(ValueError, match="unknown bad input"):
        make_bad_input("cursed", "folder")


# --------------------------------------------------------------------------- files


def test_talking_clip_decodes_to_the_rendered_clip(talking_clip):
    found = decode(talking_clip)
    assert (found["video"], found["audio"]) == ("h264", "aac")
    assert found["shape"] == (256, 256) and len(found["times"]) == 100
    np.testing.assert_allclose(found["times"], np.arange(100) / 25, atol=1e-6)
    assert found["duration"] == pytest.approx(4.0, abs=0.05) and found["rate"] == SAMPLE_RATE
    expected = synthetic.synth_speech(4.0, seed=0)
    decoded = found["samples"][: len(expected)]
    assert abs(len(found["samples"]) - len(expected)) <= 1024
    assert np.corrcoef(decoded, expected[: len(decoded)])[0, 1] > 0.9


@pytest.mark.parametrize("suffix, video, audio", [
    (".mov", "h264", "pcm_s16le"), (".mkv", "h264", "flac"), (".webm", "vp9", "opus"),
    (".avi", "mpeg4", "mp3float"), (".flv", "h264", "aac"), (".wav", None, "pcm_s16le"),
])
def test_every_container_decodes_with_its_streams(talking_clip_factory, suffix, video, audio):
    path = talking_clip_factory(suffix, seconds=1.0, seed=1, video=video is not None)
    found = decode(path)
    assert (found["video"], found["audio"]) == (video, audio)
    if video:
        assert len(found["times"]) == 25 and found["shape"] == (256, 256)
    seconds = len(found["samples"]) / found["rate"]
    assert seconds == pytest.approx(1.0, abs=0.1) and np.abs(found["samples"]).max() > 0.1


def test_two_faces_no_face_and_other_sizes(talking_clip_factory):
    two = decode(talking_clip_factory(seconds=1.0, faces=2))
    none = decode(talking_clip_factory(seconds=1.0, faces=0))
    big = decode(talking_clip_factory(seconds=1.0, size=320, fps=30, sample_rate=48000))
    assert two["shape"] == (256, 512) and none["shape"] == (256, 256)
    assert big["shape"] == (320, 320) and len(big["times"]) == 30 and big["rate"] == 48000


def test_silence_mode_writes_digital_silence_and_a_closed_mouth(bad_input):
    clip = synthetic.render_talking_clip(2.0, speech="silence")
    assert not clip.audio.any() and not clip.mouth_open.any()
    found = decode(bad_input("silent"))
    assert found["audio"] == "aac" and len(found["samples"]) >= 2 * SAMPLE_RATE
    assert np.abs(found["samples"]).max() == 0.0


@pytest.mark.parametrize("shift_ms", [200, -120])
def test_audio_shift_in_a_lossless_file_is_exact(talking_clip_factory, shift_ms):
    reference = decode(talking_clip_factory(".mkv", seconds=2.0, seed=4))["samples"]
    shifted = decode(talking_clip_factory(".mkv", seconds=2.0, seed=4, audio_shift_ms=shift_ms))["samples"]
    samples = shift_ms * SAMPLE_RATE // 1000
    assert len(shifted) == len(reference) == 2 * SAMPLE_RATE
    if samples > 0:
        np.testing.assert_array_equal(shifted[samples:], reference[:-samples])
    else:
        np.testing.assert_array_equal(shifted[:samples], reference[-samples:])
    assert abs(envelope_lag(reference, shifted, 8000) - samples) <= 16  # 1 ms


def test_audio_shift_survives_aac(talking_clip_factory):
    reference = decode(talking_clip_factory(seconds=2.0, seed=4))["samples"]
    shifted = decode(talking_clip_factory(seconds=2.0, seed=4, audio_shift_ms=200))["samples"]
    assert abs(envelope_lag(reference, shifted, 8000) - 3200) <= 16  # 1 ms


def test_vfr_file_keeps_its_irregular_timestamps(bad_input):
    found = decode(bad_input("vfr"))
    durations = np.diff(found["times"])
    assert len(np.unique(np.round(durations, 3))) > 10
    assert durations.min() >= 0.019 and durations.max() <= 0.065
    assert found["times"][-1] == pytest.approx(3.0, abs=0.07)


@pytest.mark.skipif(not synthetic.espeak_available(), reason="espeak-ng is not installed")
def test_tts_speaks_real_words_and_fills_the_clip(talking_clip_factory):
    audio = synthetic.tts_speech(3.0, seed=0)
    assert audio.shape == (3 * SAMPLE_RATE,) and np.abs(audio).max() > 0.2
    np.testing.assert_array_equal(audio, synthetic.tts_speech(3.0, seed=0))
    envelope = synthetic.amplitude_envelope(audio)
    assert (envelope[SAMPLE_RATE // 2:] > 0.2).mean() > 0.4, "sentences fill the clip"
    found = decode(talking_clip_factory(seconds=1.0, speech="tts", text="Hello world."))
    assert found["audio"] == "aac" and np.abs(found["samples"]).max() > 0.1


# --------------------------------------------------------------------------- MediaPipe sees what we meant


def test_mediapipe_finds_the_face_and_its_jaw_follows_the_audio(talking_clip):
    counts, jaw = landmark(talking_clip)
    assert (counts == 1).mean() >= 0.95
    energy = 10 ** (frame_energy_db(synthetic.synth_speech(4.0, seed=0), len(jaw)) / 20)
    jaw = np.nan_to_num(jaw, nan=float(np.nanmean(jaw)))
    at_lag = {lag: lagged_correlation(jaw, energy, lag) for lag in range(-4, 5)}
    assert at_lag[0] > 0.5
    assert at_lag[0] > max(at_lag[lag] for lag in (-4, -3, 3, 4)) + 0.2
    assert at_lag[0] == max(at_lag.values())


def test_mediapipe_sees_two_faces_and_no_face(talking_clip_factory):
    two, _ = landmark(talking_clip_factory(seconds=1.0, faces=2), num_faces=2)
    none, _ = landmark(talking_clip_factory(seconds=1.0, faces=0), num_faces=2)
    assert (two == 2).mean() >= 0.9
    assert none.max() == 0


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("kind", ["empty", "random_bytes", "text_as_mp4", "truncated_no_index"])
def test_unreadable_inputs_do_not_open(bad_input, kind):
    path = bad_input(kind)
    assert path.suffix == ".mp4" and path.exists()
    with pytest.raises(av.error.FFmpegError):
        decode(path)


def test_truncated_keeps_its_header_but_loses_frames(bad_input):
    """The index promises 2 s, the data stops part-way: a reader must survive an error mid-stream."""
    frames = 0
    with av.open(str(bad_input("truncated"))) as container:
        assert container.duration / 1e6 == pytest.approx(2.0, abs=0.05)
        with pytest.raises(av.error.FFmpegError):
            for _ in container.decode(video=0):
                frames += 1
    assert 0 < frames < 50


def test_single_stream_and_image_inputs(bad_input):
    audio_only = decode(bad_input("audio_only"))
    video_only = decode(bad_input("video_only"))
    assert bad_input("audio_only").suffix == ".m4a"
    assert (audio_only["video"], audio_only["audio"]) == (None, "aac") and np.abs(audio_only["samples"]).max() > 0.1
    assert (video_only["video"], video_only["audio"]) == ("h264", None) and len(video_only["times"]) == 50
    image = decode(bad_input("image"))
    assert image["video"] == "png" and image["shape"] == (256, 256) and image["audio"] is None


def test_huge_and_long_inputs_are_small_files(bad_input):
    huge = bad_input("huge_resolution")
    with av.open(str(huge)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (4000, 4000) and stream.frames <= 5
    assert huge.stat().st_size < 1_000_000

    started = time.perf_counter()
    long = make_bad_input("long", huge.parent / "again")
    assert time.perf_counter() - started < 2.0
    assert long.stat().st_size < 200_000
    with av.open(str(long)) as container:
        assert container.duration / 1e6 >= 700
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) >= 699 and stream.average_rate == Fraction(1)
