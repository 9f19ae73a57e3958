"""FauForensics: action units, the model, pseudo-fakes, dataset readers, training and the detector."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from exposeanyone.core.errors import InputError
from exposeanyone.core.metrics import roc_auc
from exposeanyone.detectors.audio_reference import shifted_audio
from exposeanyone.detectors.fau.action_units import AU_NAMES, blendshapes_to_action_units
from exposeanyone.detectors.fau.datasets import SupervisedSampler, read_fakeavceleb, read_lavdf
from exposeanyone.detectors.fau.detector import FauDetector
from exposeanyone.detectors.fau.model import FauForensicsModel, fau_loss, model_config_for
from exposeanyone.detectors.fau.pseudo_fakes import KIND_LABELS, KINDS, LabelledWindows, PseudoFakeSampler
from exposeanyone.detectors.fau.streams import clip_streams
from exposeanyone.detectors.fau.training import DEFAULT_AUDIO_FEATURES, train_fau
from exposeanyone.media.audio_features import AudioFeatures
from exposeanyone.media.clip import ClipFeatures
from exposeanyone.media.track import BLENDSHAPE_NAMES, Track

FIXTURES = Path(__file__).parent / "fixtures" / "fau"
TINY = {"width": 32, "heads": 2, "mouth_channels": (8, 16)}
WHISPER = "whisper-base"
SPEECH_DIRECTION = np.random.default_rng(99).standard_normal(512)
"""Where the synthetic speech features move with the envelope (a stand-in for the Whisper encoder's)."""


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Small convolutions run several times faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _speech_envelope(rng: np.random.Generator, frames: int) -> np.ndarray:
    """Syllable-like bumps about every 6 frames (4 per second), in [0, 1]."""
    t = np.arange(frames)
    envelope = np.zeros(frames)
    position = 0.0
    while position < frames:
        position += rng.uniform(3, 10)
        envelope += rng.uniform(0.4, 1.0) * np.exp(-0.5 * ((t - position) / rng.uniform(1.5, 3.0)) ** 2)
    return np.clip(envelope, 0, 1)


def talking_clip(seed: int, frames: int = 150) -> ClipFeatures:
    """A clip whose mouth opening (crop and jawOpen) follows the loudness of its log-mel and the size of
    its speech features (:data:`SPEECH_DIRECTION` times the envelope, plus noise)."""
    rng = np.random.default_rng(seed)
    envelope = _speech_envelope(rng, frames)
    blendshapes = rng.uniform(0, 0.05, (frames, 52)).astype(np.float32)
    blendshapes[:, BLENDSHAPE_NAMES.index("jawOpen")] = envelope
    yy, xx = np.mgrid[0:32, 0:32]
    mouth = np.empty((frames, 32, 32), np.uint8)
    for i, opening in enumerate(envelope):
        image = 170 + rng.normal(0, 6, (32, 32))
        image[((xx - 16) / 10) ** 2 + ((yy - 16) / (1 + 8 * opening)) ** 2 < 1] = 50
        mouth[i] = np.clip(image, 0, 255)
    loudness = np.interp(np.arange(frames * 4) / 4, np.arange(frames), envelope)
    mel = (np.log(1e-4 + loudness[:, None]) + 0.5 * rng.normal(0, 1, 80)[None]
           + rng.normal(0, 0.3, (frames * 4, 80))).astype(np.float32)
    track = Track(fps=25.0, blendshapes=blendshapes, pose=np.zeros((frames, 6), np.float32),
                  landmarks=np.zeros((frames, 478, 3), np.float16), mouth=mouth,
                  valid=np.ones(frames, bool), interpolated=np.zeros(frames, bool))
    energy_db = (20 * np.log10(envelope + 1e-3)).astype(np.float32)
    encoded = SPEECH_DIRECTION * envelope[:, None] + 0.1 * rng.standard_normal((frames, 512))
    audio = AudioFeatures(mel=mel, speech=envelope > 0.05, energy_db=energy_db, encoded=encoded.astype(np.float32))
    return ClipFeatures(track=track, audio=audio, name=f"talking{seed}")


def random_inputs(batch: int, seed: int = 0, audio_features: str = WHISPER) -> dict:
    generator = torch.Generator().manual_seed(seed)
    audio_shape = (batch, 25, 512) if audio_features == WHISPER else (batch, 100, 80)
    return {"action_units": torch.rand(batch, 25, len(AU_NAMES), generator=generator),
            "mouth": torch.rand(batch, 25, 32, 32, generator=generator),
            "audio": torch.randn(*audio_shape, generator=generator)}


def streams_of(seed: int, identity: str = "", frames: int = 150):
    return clip_streams(talking_clip(seed, frames), identity, audio_features=WHISPER)


# ---------------------------------------------------------------------------------------------- AUs

def test_action_units_of_known_blendshapes():
    vector = np.zeros((2, 52), np.float32)
    named = {"jawOpen": 0.6, "mouthClose": 0.2, "mouthSmileLeft": 0.8, "mouthSmileRight": 0.4,
             "browInnerUp": 0.3, "eyeBlinkLeft": 1.0}
    for name, value in named.items():
        vector[0, BLENDSHAPE_NAMES.index(name)] = value
    vector[1, BLENDSHAPE_NAMES.index("mouthClose")] = 0.5  # lips pressed with the jaw closed
    units = dict(zip(AU_NAMES, blendshapes_to_action_units(vector)[0]))
    assert units["AU26"] == pytest.approx(0.6)
    assert units["AU25"] == pytest.approx(0.4)
    assert units["AU12"] == pytest.approx(0.6)
    assert units["AU1"] == pytest.approx(0.3)
    assert units["AU45"] == pytest.approx(0.5)
    assert sum(v > 0 for v in units.values()) == 5
    assert blendshapes_to_action_units(vector)[1].max() == 0.0  # AU25 clipped, not negative
    assert len(set(AU_NAMES)) == len(AU_NAMES) >= 16


def test_action_units_reject_wrong_shape():
    with pytest.raises(InputError):
        blendshapes_to_action_units(np.zeros((10, 58)))


# -------------------------------------------------------------------------------------------- model

@pytest.mark.parametrize("audio_features", ["whisper-base", "log-mel"])
def test_model_shapes_and_maps(audio_features):
    torch.manual_seed(0)
    model = FauForensicsModel(**model_config_for(audio_features, TINY)).eval()
    # 25 Hz Whisper rows are read as they are; 100 Hz log-mel is halved twice to the video rate
    assert len(model.audio_encoder.down) == (0 if audio_features == WHISPER else 2)
    output = model(**random_inputs(3, audio_features=audio_features))
    for name in ("joint_logits", "audio_logits", "visual_logits"):
        assert getattr(output, name).shape == (3, 2)
    for name in ("av_similarity", "aa_similarity", "vv_similarity"):
        matrix = getattr(output, name)
        assert matrix.shape == (3, 25, 25)
        torch.testing.assert_close(matrix.sum(-1), torch.ones(3, 25))
    assert output.fake_probability().shape == (3,)
    labels = torch.tensor([0, 1, 1])
    assert torch.isfinite(fau_loss(output, labels, labels, 1 - labels))


def test_model_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    model = FauForensicsModel(**model_config_for(WHISPER, TINY)).eval()
    model.save_pretrained(tmp_path / "fau")
    assert (tmp_path / "fau" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = FauForensicsModel.from_pretrained(tmp_path / "fau", low_cpu_mem_usage=False).eval()
    inputs = random_inputs(2, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).joint_logits, loaded(**inputs).joint_logits)
    assert loaded.config.width == TINY["width"] and loaded.config.audio_features == WHISPER
    assert (loaded.config.n_mels, loaded.config.mel_per_frame) == (512, 1)


def test_model_audio_shape_must_match_its_kind():
    with pytest.raises(ValueError):
        FauForensicsModel(**TINY, audio_features=WHISPER)  # 80 channels, 4 rows a frame: log-mel's shape
    with pytest.raises(InputError):
        model_config_for("wav2vec")
    assert DEFAULT_AUDIO_FEATURES == WHISPER


# ------------------------------------------------------------------------------------- pseudo-fakes

def test_pseudo_fake_labels_and_construction():
    clips = [streams_of(seed, identity) for seed, identity in [(0, "a"), (1, "a"), (2, "b")]]
    sampler = PseudoFakeSampler(clips, augment=False)
    rng = np.random.default_rng(0)
    for kind in KINDS:
        batch = sampler.sample_kind(rng, kind, 6)
        # person "b" has a single clip: its same-person dubbing becomes another person's audio
        assert set(batch.kind) <= ({kind, "audio_other_person"} if kind == "audio_other_clip" else {kind})
        made = np.array([KIND_LABELS[made_kind] for made_kind in batch.kind])
        assert (batch.label_audio == made[:, 0]).all() and (batch.label_visual == made[:, 1]).all()
        assert (batch.label == made.max(axis=1)).all() and (batch.label == (kind != "real")).all()
        assert batch.action_units.shape == (6, 25, len(AU_NAMES)) and batch.audio.shape == (6, 25, 512)

    # a shifted window keeps the face and takes audio 5-25 frames away in the same clip
    (au, mouth, audio), kind = sampler.make("audio_shift", 0, 40, np.random.default_rng(1))
    original_au, original_mouth, _ = clips[0].window(40)
    assert kind == "audio_shift" and np.array_equal(mouth, original_mouth) and np.array_equal(au, original_au)
    offsets = [s for s in range(clips[0].num_frames - 24) if np.array_equal(clips[0].window(s)[2], audio)]
    assert len(offsets) == 1 and 5 <= abs(offsets[0] - 40) <= 25

    # same-person dubbing borrows from the other clip of "a"; a frozen face repeats one frame's AUs
    (_, _, audio), kind = sampler.make("audio_other_clip", 0, 40, np.random.default_rng(2))
    assert kind == "audio_other_clip"
    assert any(np.array_equal(clips[1].window(s)[2], audio) for s in range(clips[1].num_frames - 24))
    (au, _, _), _ = sampler.make("mouth_freeze", 0, 40, np.random.default_rng(3))
    assert (np.abs(np.diff(au, axis=0)).sum(axis=1) == 0).sum() >= 7


def test_identity_balance_shares_windows_between_people():
    clips = [streams_of(seed, identity) for seed, identity in [(0, "a"), (1, "a"), (2, "a"), (3, "b")]]
    per_window = PseudoFakeSampler(clips, identity_balance=1.0).anchor_weights
    per_person = PseudoFakeSampler(clips, identity_balance=0.0).anchor_weights
    assert per_window[3] == pytest.approx(per_window[0]) and per_window.sum() == pytest.approx(1.0)
    assert per_person[:3].sum() == pytest.approx(0.5) and per_person[3] == pytest.approx(0.5)
    genuine = PseudoFakeSampler(clips, augment=False)
    window, kind = genuine.make("real", 2, 30, np.random.default_rng(0))
    assert kind == "real" and all(np.array_equal(a, b) for a, b in zip(window, clips[2].window(30)))


def test_pseudo_fakes_are_deterministic_and_fall_back():
    clips = [streams_of(seed, "a") for seed in range(2)]
    first = PseudoFakeSampler(clips).sample(np.random.default_rng(5), 16)
    second = PseudoFakeSampler(clips).sample(np.random.default_rng(5), 16)
    assert first.kind == second.kind and np.array_equal(first.audio, second.audio)
    assert np.array_equal(first.mouth, second.mouth)
    lonely = PseudoFakeSampler(clips[:1], augment=False)
    _, kind = lonely.make("audio_other_person", 0, 40, np.random.default_rng(0))
    assert kind == "audio_shift"  # no other clip to borrow audio from
    with pytest.raises(InputError):
        PseudoFakeSampler(clips, kind_weights={"deepfake": 1.0})
    with pytest.raises(InputError):  # windows of both kinds cannot be stacked into one batch
        PseudoFakeSampler(clips + [clip_streams(talking_clip(2), "b", audio_features="log-mel")])


def test_streams_read_the_audio_of_their_kind():
    clip = talking_clip(4, frames=60)
    whisper, mel = clip_streams(clip, audio_features=WHISPER), clip_streams(clip, audio_features="log-mel")
    assert whisper.audio.shape == (60, 512) and mel.audio.shape == (240, 80)
    assert whisper.window(10)[2].shape == (25, 512) and mel.window(10)[2].shape == (100, 80)
    np.testing.assert_array_equal(whisper.window(10, audio_start=20)[2], clip.audio.encoded[20:45])
    np.testing.assert_array_equal(mel.window(10, audio_start=20)[2], clip.audio.mel[80:180])
    unencoded = ClipFeatures(track=clip.track, audio=AudioFeatures(clip.audio.mel, clip.audio.speech,
                                                                   clip.audio.energy_db))
    with pytest.raises(InputError, match="without speech features"):
        clip_streams(unencoded, audio_features=WHISPER)


# --------------------------------------------------------------------------------- dataset readers

def test_read_fakeavceleb_fixture():
    videos = read_fakeavceleb(FIXTURES / "fakeavceleb")
    assert [(v.label, v.label_audio, v.label_video) for v in videos] == [(0, 0, 0), (1, 1, 0), (1, 0, 1), (1, 1, 1)]
    assert videos[0].path == FIXTURES / "fakeavceleb" / "RealVideo-RealAudio/African/men/id00076/00109.mp4"
    assert videos[3].identity == "id00166" and videos[3].method == "wav2lip"
    assert all(v.fake_periods is None for v in videos)
    assert videos[2].window_labels(1000) == (1, 0, 1)  # whole-video labels
    with pytest.raises(InputError):
        read_fakeavceleb(FIXTURES / "lavdf")


def test_read_lavdf_fixture_and_window_labels():
    everything = read_lavdf(FIXTURES / "lavdf")
    assert len(everything) == 4
    train = read_lavdf(FIXTURES / "lavdf", "train")
    assert [v.path.name for v in train] == ["000000.mp4", "000001.mp4"]
    real, audio_fake = train
    assert (real.label, real.fake_periods) == (0, ())
    assert (audio_fake.label, audio_fake.label_audio, audio_fake.label_video) == (1, 1, 0)
    assert audio_fake.fake_periods == ((1.2, 1.8),)
    assert audio_fake.window_labels(25) == (1, 1, 0)  # 1.0-2.0 s covers the fake 1.2-1.8 s
    assert audio_fake.window_labels(70) == (0, 0, 0)  # 2.8-3.8 s: genuine part of a fake video
    assert audio_fake.window_labels(42) is None  # 1.68-2.68 s: only 3 fake frames, ambiguous
    assert real.window_labels(0) == (0, 0, 0)
    with pytest.raises(InputError):
        read_lavdf(FIXTURES / "lavdf", "validation")
    with pytest.raises(InputError):
        read_lavdf(FIXTURES / "fakeavceleb")


def test_supervised_sampler_takes_labels_from_periods():
    video = read_lavdf(FIXTURES / "lavdf", "train")[1]
    sampler = SupervisedSampler([(streams_of(0, frames=120), video)])
    batch = sampler.sample(np.random.default_rng(0), 64)
    assert set(batch.kind) <= {"supervised_fake", "supervised_real"}
    assert (batch.label_audio == batch.label).all() and (batch.label_visual == 0).all()
    assert 0 < batch.label.sum() < 64


# ------------------------------------------------------------------------------ training, detector

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained on synthetic talking clips to tell synchronised from shifted audio."""
    out = tmp_path_factory.mktemp("fau_train")
    clips = [talking_clip(seed) for seed in range(6)]
    result = train_fau(clips, ["a", "a", "a", "b", "b", "b"], out, steps=60, seed=0, batch_size=16,
                       eval_every=30, val_windows_per_kind=8, model_config=TINY,
                       kind_weights={"real": 0.5, "audio_shift": 0.3, "audio_other_clip": 0.2})
    return result, out


def test_training_writes_model_log_and_checkpoint(trained):
    result, out = trained
    assert result.finished and result.steps_done == 60
    log = json.loads((out / "training_log.json").read_text())
    assert [entry["step"] for entry in log["history"]] == [30, 60]
    assert set(log["split"]["val_clips"]).isdisjoint(log["split"]["train_clips"])
    assert log["best_val_auc"] == max(entry["val_auc"] for entry in log["history"])
    assert (out / "model" / "config.json").is_file() and (out / "checkpoint" / "optimizer.safetensors").is_file()
    assert log["settings"]["model_config"]["audio_features"] == WHISPER


def test_trained_model_ranks_shifted_audio_above_genuine(trained):
    result, _ = trained
    detector = FauDetector(result.model, stride=5)
    genuine, shifted = [], []
    for seed in (100, 101, 102):  # clips never seen in training
        clip = talking_clip(seed)
        genuine.append(detector.score(clip).window_scores)
        shifted.append(detector.score(shifted_audio(clip, -12)).window_scores)
    assert roc_auc(np.concatenate(genuine), np.concatenate(shifted)) > 0.8


def test_detector_finds_a_constant_audio_offset(trained):
    result, _ = trained
    detector = FauDetector(result.model, stride=5)
    found = []
    for seed in (100, 101, 102):
        late = shifted_audio(talking_clip(seed, frames=200), -6)  # frame i hears the sound of frame i - 6
        found.append(detector.estimate_offset(late).frames)
    assert np.median(found) >= 4, found  # the sound comes after the face
    output = detector.score(shifted_audio(talking_clip(100, frames=200), -6))
    assert output.extras["audio_offset"]["frames"] == found[0]
    assert bool(output.warnings) == output.extras["audio_offset"]["noticeable"]
    quick = detector.score(shifted_audio(talking_clip(100, frames=200), -6), estimate_offset=False)
    assert quick.extras["audio_offset"] is None and quick.score == pytest.approx(output.score)


def test_offset_search_on_a_long_clip_reads_a_sample_of_windows(trained, monkeypatch):
    import exposeanyone.detectors.fau.detector as fau_module

    result, _ = trained
    detector = FauDetector(result.model, stride=5)
    late = shifted_audio(talking_clip(101, frames=300), -6)
    seen = []
    original = detector.fake_logits
    monkeypatch.setattr(fau_module, "MAX_OFFSET_WINDOWS", 8)
    monkeypatch.setattr(detector, "fake_logits",
                        lambda audio, starts, visual: seen.append(len(starts)) or original(audio, starts, visual))
    offset = detector.estimate_offset(late)
    assert max(seen) == 8 and len(seen) == 21
    assert offset.frames >= 4


def test_split_encoders_give_the_forward_pass(trained):
    result, _ = trained
    model = result.model.eval()
    generator = torch.Generator().manual_seed(0)
    assert model.config.audio_features == WHISPER  # train_fau's default
    au, mouth, audio = torch.rand(3, 25, 21, generator=generator), torch.rand(3, 25, 32, 32, generator=generator), \
        torch.randn(3, 25, 512, generator=generator)
    with torch.inference_mode():
        whole = model(au, mouth, audio)
        split = model.classify(model.encode_audio(audio), model.encode_visual(au, mouth))
    torch.testing.assert_close(whole.joint_logits, split.joint_logits)
    torch.testing.assert_close(whole.av_similarity, split.av_similarity)


def test_score_takes_own_and_moved_audio_each_at_their_best_alignment(trained):
    from exposeanyone.detectors.audio_inputs import clip_audio
    from exposeanyone.detectors.windows import window_starts

    result, _ = trained
    clip = talking_clip(103, frames=200)
    streams = FauDetector(result.model).streams(clip)
    assert streams.audio_features == WHISPER
    for tolerance in (0, 2):
        detector = FauDetector(result.model, stride=5, alignment_tolerance=tolerance)
        output = detector.score(clip, estimate_offset=False)
        starts = output.window_starts[np.isfinite(output.window_scores)]
        visual = detector.encode_visual(streams, starts)

        def logits(move):
            return detector.fake_logits(clip_audio(shifted_audio(clip, move), WHISPER)[0], starts, visual)[0]

        def best(centre):
            return min((logits(centre + m) for m in range(-tolerance, tolerance + 1)), key=np.mean)

        shifts = output.extras["audio_shifts"]
        assert len(shifts) == 8 and output.extras["alignment_tolerance"] == tolerance
        expected = best(0) - np.mean([best(shift) for shift in shifts], axis=0)
        np.testing.assert_allclose(output.window_scores[np.isfinite(output.window_scores)], expected, atol=1e-6)
        assert window_starts(200, 25, 5).tolist() == output.window_starts.tolist()


def test_score_encodes_each_face_once_for_scores_and_offset(trained, monkeypatch):
    result, _ = trained
    detector = FauDetector(result.model, stride=5)
    encoded = []
    original = detector.encode_visual
    monkeypatch.setattr(detector, "encode_visual", lambda streams, starts: encoded.append(len(starts))
                        or original(streams, starts))
    output = detector.score(shifted_audio(talking_clip(102, frames=200), -6))
    assert output.extras["audio_offset"] is not None
    assert encoded == [int(np.isfinite(output.window_scores).sum())]


def test_detector_output_is_deterministic_and_json_ready(trained):
    result, _ = trained
    detector = FauDetector(result.model, stride=7)
    clip = talking_clip(7, frames=130)
    first, second = detector.score(clip), detector.score(clip)
    assert first.detector == "fau" and np.isfinite(first.score)
    np.testing.assert_array_equal(first.window_scores, second.window_scores)
    assert first.frame_scores.shape == (130,) and first.window_length == 25
    assert len(first.extras["av_consistency"]) == 130
    assert np.array(first.extras["av_similarity"]).shape == (25, 25)
    json.dumps(first.extras)
    assert FauDetector(result.model, stride=7, batch_size=3).score(clip).score == pytest.approx(first.score, abs=1e-6)
    empty = detector.enroll([clip])
    assert empty.detector == "fau" and empty.tensors == {}
    short = detector.score(clip.slice(0, 20))
    assert np.isnan(short.score) and short.extras["av_similarity"] is None


def test_detector_from_pretrained(trained, tmp_path):
    result, out = trained
    detector = FauDetector.from_pretrained(out / "model")
    clip = talking_clip(8)
    assert detector.score(clip).score == pytest.approx(FauDetector(result.model).score(clip).score, abs=1e-6)
    with pytest.raises(InputError):
        FauDetector.from_pretrained(tmp_path / "nothing")


def test_log_mel_model_saved_before_whisper_features_loads_and_scores(tmp_path):
    """A model saved before the Whisper features (no ``audio_features`` in its config, like the log-mel
    ``assets/fau``) still hears log-mel, and scores clips analysed without speech features."""
    torch.manual_seed(2)
    FauForensicsModel(**TINY).save_pretrained(tmp_path / "old")
    config_path = tmp_path / "old" / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("audio_features")
    config_path.write_text(json.dumps(config))
    detector = FauDetector.from_pretrained(tmp_path / "old")
    assert detector.audio_features == "log-mel" and len(detector.model.audio_encoder.down) == 2
    clip = talking_clip(9)
    unencoded = ClipFeatures(track=clip.track, audio=AudioFeatures(clip.audio.mel, clip.audio.speech,
                                                                   clip.audio.energy_db), name=clip.name)
    output = detector.score(unencoded)
    assert np.isfinite(output.score) and output.score == pytest.approx(detector.score(clip).score, abs=1e-9)
    assert output.extras["audio_offset"] is not None


def test_shipped_model_loads_and_scores():
    detector = FauDetector.from_pretrained()
    assert detector.audio_features in ("log-mel", WHISPER)
    output = detector.score(talking_clip(10), estimate_offset=False)
    assert np.isfinite(output.score) and np.isfinite(output.window_scores).sum() > 0


class _Interrupted(Exception):
    pass


def _interrupt_at(fraction: float):
    def progress(done: float, message: str) -> None:
        if done >= fraction:
            raise _Interrupted(message)
    return progress


def test_training_resumes_to_the_same_weights(tmp_path):
    """(On the log-mel path: train_fau can still train the older kind.)"""
    clips = [talking_clip(seed, frames=60) for seed in range(4)]
    settings = dict(steps=12, seed=3, batch_size=4, eval_every=6, val_windows_per_kind=2,
                    model_config={"width": 16, "heads": 2, "mouth_channels": (4, 8), "audio_features": "log-mel"},
                    kind_weights={"real": 0.5, "audio_shift": 0.5})
    straight = train_fau(clips, ["a"] * 4, tmp_path / "straight", **settings)
    assert not train_fau(clips, ["a"] * 4, tmp_path / "paused", time_budget_s=0.0, **settings).finished
    with pytest.raises(_Interrupted):  # killed at step 10: the step-6 checkpoint survives
        train_fau(clips, ["a"] * 4, tmp_path / "paused", resume=True, progress=_interrupt_at(0.8), **settings)
    resumed = train_fau(clips, ["a"] * 4, tmp_path / "paused", resume=True, **settings)
    assert resumed.finished and resumed.steps_done == straight.steps_done == 12
    assert [h["step"] for h in resumed.history] == [6, 12]
    straight_weights = load_file(str(tmp_path / "straight" / "checkpoint" / "model.safetensors"))
    resumed_weights = load_file(str(tmp_path / "paused" / "checkpoint" / "model.safetensors"))
    for name, value in straight_weights.items():
        torch.testing.assert_close(resumed_weights[name], value, rtol=0, atol=0)
    with pytest.raises(InputError):  # other settings cannot continue this checkpoint
        train_fau(clips, ["a"] * 4, tmp_path / "paused", resume=True, **dict(settings, base_lr=1.0))
    assert resumed.model.config.audio_features == "log-mel" and resumed.model.config.n_mels == 80


def test_train_fau_rejects_mismatched_inputs(tmp_path):
    with pytest.raises(InputError):
        train_fau([talking_clip(0)] * 4, ["a"], tmp_path)
    with pytest.raises(InputError):
        train_fau([talking_clip(0)] * 2, ["a", "b"], tmp_path)


def test_window_batch_inputs_are_scaled():
    batch = LabelledWindows.stack([(np.zeros((25, len(AU_NAMES))), np.full((25, 32, 32), 255, np.uint8),
                                    np.zeros((25, 512)))], [(1, 0, 1)], ["mouth_freeze"])
    inputs = batch.model_inputs()
    assert inputs["mouth"].max().item() == 1.0 and inputs["mouth"].dtype == torch.float32
    assert batch.labels()["label_visual"].tolist() == [1]
    assert inputs["audio"].shape == (1, 25, 512) and inputs["audio"].dtype == torch.float32
