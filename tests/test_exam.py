"""EXAM: model, diffusion utilities, windows, training and detector on synthetic arrays (no files)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from exposeanyone.core.errors import InputError, ProfileError
from exposeanyone.detectors.base import PersonModel
from exposeanyone.detectors.exam.data import (
    amplify_motion,
    clip_arrays,
    random_window,
    sampling_weights,
    sliding_windows,
    warp_frequencies,
)
from exposeanyone.detectors.exam.detector import ExamDetector
from exposeanyone.detectors.exam.diffusion import (
    predicted_x0,
    reconstruction_errors,
    sample,
    schedulers_for,
    training_scheduler,
)
from exposeanyone.detectors.exam.model import ExamDenoiser
from exposeanyone.detectors.exam.personalize import personalize
from exposeanyone.detectors.exam.pretrain import pretrain_exam
from exposeanyone.detectors.windows import MIN_FACE_RATIO, MIN_SPEECH_RATIO
from exposeanyone.media.audio_features import AudioFeatures
from exposeanyone.media.clip import ClipFeatures
from exposeanyone.media.track import Track

WINDOW = 40
TINY = dict(width=32, layers=2, heads=2, ff_mult=2, n_adapter_tokens=2, window=WINDOW, dropout=0.0)
CONTENT_WEIGHTS = np.random.default_rng(123).uniform(0.2, 1.0, 58).astype(np.float32)
"""How strongly each channel follows the speech envelope, for everybody."""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny matrices: threads only add contention on a shared 2-core machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SPEECH_DIRECTION = np.random.default_rng(99).standard_normal(512)
"""Where the synthetic speech features move with the envelope (a stand-in for the Whisper encoder's)."""


def talking_clip(gain: float, seconds: float = 6.0, seed: int = 0, name: str = "clip",
                 valid: np.ndarray | None = None, silent: bool = False) -> ClipFeatures:
    """A synthetic person talking: every channel follows the speech envelope of the audio with a
    person-specific gain, so a person's tokens have something to learn."""
    frames = int(seconds * 25)
    rng = np.random.default_rng(seed)
    kernel = np.hanning(9) / np.hanning(9).sum()
    envelope = 1 / (1 + np.exp(-4 * np.convolve(rng.standard_normal(frames), kernel, mode="same") * 3))
    if silent:
        envelope[:] = 0.0
    spectrum = np.linspace(1.0, -2.0, 80)
    mel = spectrum + 6 * np.repeat(envelope, 4)[:, None] - 8 + 0.1 * rng.standard_normal((frames * 4, 80))
    expressions = gain * CONTENT_WEIGHTS * envelope[:, None] * 0.5 + 0.02 * rng.standard_normal((frames, 58))
    valid = np.ones(frames, bool) if valid is None else valid
    expressions[~valid] = 0.0
    track = Track(fps=25.0, blendshapes=expressions[:, :52].astype(np.float32),
                  pose=expressions[:, 52:].astype(np.float32), landmarks=np.zeros((frames, 478, 3), np.float16),
                  mouth=np.zeros((frames, 32, 32), np.uint8), valid=valid, interpolated=np.zeros(frames, bool))
    encoded = SPEECH_DIRECTION * envelope[:, None] + 0.1 * rng.standard_normal((frames, 512))
    audio = AudioFeatures(mel=mel.astype(np.float32), speech=envelope > 0.3,
                          energy_db=(20 * envelope - 40).astype(np.float32), encoded=encoded.astype(np.float32))
    return ClipFeatures(track=track, audio=audio, name=name)


def randomized(model: ExamDenoiser, seed: int = 0) -> ExamDenoiser:
    """An untrained model whose zero-initialised layers are made non-zero, so outputs depend on inputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    gains = {"p0": 0.3, "p1": 0.7, "p2": 1.1, "p3": 1.5}
    clips, identities = [], []
    for k, (person, gain) in enumerate(gains.items()):
        for j in range(3):
            clips.append(talking_clip(gain, 6.0, seed=10 * k + j, name=f"{person}_{j}"))
            identities.append(person)
    out = tmp_path_factory.mktemp("exam_pretrain")
    model = pretrain_exam(clips, identities, out, steps=160, batch_size=8, lr=5e-3, checkpoint_every=80,
                          model_config=TINY)
    return model, out


# ------------------------------------------------------------------------------------------ model
def test_save_load_round_trip_is_bit_identical(tmp_path):
    model = randomized(ExamDenoiser(**TINY))
    model.set_normalization(torch.linspace(0, 1, 58), torch.linspace(0.5, 2, 58), torch.linspace(1, 3, 80))
    model.save_pretrained(tmp_path)
    loaded = ExamDenoiser.from_pretrained(tmp_path, low_cpu_mem_usage=False).eval()
    settings = lambda m: {k: v for k, v in dict(m.config).items() if not k.startswith("_")}  # noqa: E731
    assert settings(loaded) == settings(model)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    x, t, mel = torch.randn(3, WINDOW, 58), torch.tensor([5, 300, 900]), torch.randn(3, WINDOW * 4, 80)
    with torch.no_grad():
        assert torch.equal(model(x, t, mel).sample, loaded(x, t, mel).sample)


def test_adapter_tokens_change_the_output_and_null_is_the_default():
    model = randomized(ExamDenoiser(**TINY))
    x, t, mel = torch.randn(2, WINDOW, 58), torch.tensor([100, 500]), torch.randn(2, WINDOW * 4, 80)
    tokens = torch.randn(2, 32)
    with torch.no_grad():
        null = model(x, t, mel).sample
        explicit_null = model(x, t, mel, adapter_tokens=model.null_adapter).sample
        personal = model(x, t, mel, adapter_tokens=tokens).sample
    assert null.shape == (2, WINDOW, 58)
    assert torch.equal(null, explicit_null)
    assert (personal - null).abs().max() > 1e-4
    with pytest.raises(ValueError):
        model(x, t, mel, adapter_tokens=torch.randn(3, 32))


def test_unknown_frames_do_not_influence_known_frames():
    model = randomized(ExamDenoiser(**TINY))
    x, mel = torch.randn(1, WINDOW, 58), torch.randn(1, WINDOW * 4, 80)
    mask = torch.ones(1, WINDOW, dtype=torch.bool)
    mask[:, 10:20] = False
    changed = x.clone()
    changed[:, 10:20] += 5.0
    with torch.no_grad():
        a = model(x, 200, mel, frame_mask=mask).sample
        b = model(changed, 200, mel, frame_mask=mask).sample
    known = mask[0]
    assert torch.allclose(a[:, known], b[:, known], atol=1e-5)


@pytest.mark.parametrize("center_blendshapes", [True, False])
def test_expressions_are_relative_to_the_window(center_blendshapes):
    model = randomized(ExamDenoiser(**TINY, center_blendshapes=center_blendshapes))
    x = torch.randn(2, WINDOW, 58)
    moved = x.clone()
    moved[..., 52:] += torch.tensor([0.3, -0.2, 0.1, 5.0, -3.0, 40.0])
    assert torch.allclose(model.normalize_expressions(x), model.normalize_expressions(moved), atol=1e-5)
    moved_blend = x.clone()
    moved_blend[..., :52] += 0.3
    same = torch.allclose(model.normalize_expressions(x), model.normalize_expressions(moved_blend), atol=1e-5)
    assert same == center_blendshapes
    offset = model.window_offset(x)
    round_trip = model.denormalize_expressions(model.normalize_expressions(x), offset)
    assert torch.allclose(round_trip, x, atol=1e-5)


# ------------------------------------------------------------------------------------------ diffusion
def test_reconstruction_errors_are_deterministic_and_sample_has_raw_shape():
    model = randomized(ExamDenoiser(**TINY))
    ddpm, ddim = schedulers_for(model)
    x0, mel = torch.rand(3, WINDOW, 58), torch.randn(3, WINDOW * 4, 80)
    mask = torch.ones(3, WINDOW, dtype=torch.bool)
    timesteps = torch.tensor([50, 300, 600])
    noises = torch.randn(2, WINDOW, 58, generator=torch.Generator().manual_seed(0))
    first = reconstruction_errors(model, ddpm, x0, mel, None, mask, timesteps, noises)
    again = reconstruction_errors(model, ddpm, x0, mel, None, mask, timesteps, noises)
    assert first.shape == (3, 58) and torch.equal(first, again) and (first > 0).all()
    generated = sample(model, ddim, mel, torch.randn(2, 32), steps=4, generator=torch.Generator().manual_seed(0))
    assert generated.shape == (3, WINDOW, 58) and torch.isfinite(generated).all()


@pytest.mark.parametrize("kind", ["sample", "epsilon", "v_prediction"])
def test_every_prediction_type_recovers_the_clean_window(kind):
    scheduler = training_scheduler(kind)
    x0, noise, t = torch.randn(3, 10, 58), torch.randn(3, 10, 58), torch.tensor([10, 400, 900])
    noisy = scheduler.add_noise(x0, noise, t)
    target = {"sample": x0, "epsilon": noise, "v_prediction": scheduler.get_velocity(x0, noise, t)}[kind]
    assert torch.allclose(predicted_x0(scheduler, target, noisy, t), x0, atol=1e-4)


# ------------------------------------------------------------------------------------------ windows
def test_short_clips_are_padded_and_masked():
    clip = talking_clip(1.0, seconds=1.0)  # 25 frames
    windows = sliding_windows(clip, window=WINDOW, stride=10)
    assert windows.expressions.shape == (1, WINDOW, 58) and windows.audio.shape == (1, WINDOW * 4, 80)
    assert windows.frame_mask[0, :25].all() and not windows.frame_mask[0, 25:].any()
    assert not windows.speech[0, 25:].any()
    assert windows.frame_mask.mean() == 25 / WINDOW  # shares are of the whole window, padding included
    short = talking_clip(1.0, seconds=0.6)  # 15 frames, all speech: enough speech, too little face
    short = replace(short, audio=replace(short.audio, speech=np.ones(15, bool)))
    assert not sliding_windows(short, window=WINDOW, stride=10).usable[0]
    long = sliding_windows(talking_clip(1.0, seconds=4.0), window=WINDOW, stride=10)
    assert long.starts.tolist() == [0, 10, 20, 30, 40, 50, 60]


def test_usability_thresholds():
    clip = talking_clip(1.0, seconds=4.0)
    windows = sliding_windows(clip, window=WINDOW, stride=10)
    face = windows.frame_mask.mean(axis=1)
    speech = windows.speech.mean(axis=1)
    assert np.array_equal(windows.usable, (face >= MIN_FACE_RATIO) & (speech >= MIN_SPEECH_RATIO))


def test_time_warped_crop_keeps_audio_and_video_aligned():
    arrays = clip_arrays(talking_clip(1.0, seconds=8.0))
    crop = random_window(arrays, np.random.default_rng(0), window=WINDOW, time_warp=0.2)
    assert crop.expressions.shape == (1, WINDOW, 58) and crop.audio.shape == (1, WINDOW * 4, 80)
    mouth = crop.expressions[0, :, 25]
    loudness = crop.audio[0].mean(axis=1).reshape(WINDOW, 4).mean(axis=1)
    assert np.corrcoef(mouth, loudness)[0, 1] > 0.8


# ------------------------------------------------------------------------------------------ training
def test_identity_balanced_sampling_weights():
    clips = [clip_arrays(talking_clip(1.0, seconds)) for seconds in (4.0, 12.0, 4.0)]
    even = sampling_weights(clips, [0, 0, 1], balance=0.0)
    assert np.allclose(even, [0.125, 0.375, 0.5])
    by_footage = sampling_weights(clips, [0, 0, 1], balance=1.0)
    assert np.allclose(by_footage, [0.2, 0.6, 0.2])


def test_audio_and_motion_augmentations_keep_what_they_must():
    mel = np.random.default_rng(0).normal(size=(16, 80)).astype(np.float32)
    assert np.allclose(warp_frequencies(mel, 1.0), mel)
    assert warp_frequencies(mel, 1.15).shape == mel.shape
    x = np.random.default_rng(1).normal(size=(2, WINDOW, 58)).astype(np.float32)
    mask = np.ones((2, WINDOW), bool)
    louder = amplify_motion(x, mask, np.array([2.0, 1.0]))
    assert np.allclose(louder.mean(axis=1), x.mean(axis=1), atol=1e-5)
    assert np.allclose(louder[0].std(axis=0), 2 * x[0].std(axis=0), rtol=1e-4)
    assert np.allclose(louder[1], x[1], atol=1e-6)


def test_pretraining_writes_model_and_log_and_validation_improves(pretrained):
    model, out = pretrained
    log = json.loads((out / "training_log.json").read_text())
    entries = log["entries"]
    assert [e["step"] for e in entries] == [80, 160]
    assert log["validation_windows"] > 0
    assert entries[-1]["val_loss_null"] < 0.9  # normalised units: 1.0 is knowing nothing
    assert (out / "model" / "config.json").is_file() and (out / "identity_tokens.safetensors").is_file()
    loaded = ExamDenoiser.from_pretrained(out / "model", low_cpu_mem_usage=False)
    assert torch.equal(loaded.expression_std, model.expression_std)


def test_interrupted_pretraining_resumes_to_the_same_weights(tmp_path):
    clips = [talking_clip(g, 4.0, seed=s) for s, g in enumerate((0.5, 0.6, 1.0, 1.1))]
    identities = ["a", "a", "b", "b"]
    straight = pretrain_exam(clips, identities, tmp_path / "straight", steps=6, batch_size=4, checkpoint_every=3,
                             model_config=TINY)
    pretrain_exam(clips, identities, tmp_path / "resumed", steps=6, batch_size=4, checkpoint_every=100,
                  time_budget_s=0.0, model_config=TINY)  # stops after one step, with a checkpoint
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "training_state.json").read_text())
    assert state["step"] == 1
    resumed = pretrain_exam(clips, identities, tmp_path / "resumed", steps=6, batch_size=4, checkpoint_every=100,
                            model_config=TINY)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_personalisation_changes_only_the_tokens(pretrained):
    model, _ = pretrained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    model.train()
    tokens = personalize(model, [talking_clip(1.4, 6.0, seed=50)], steps=15, seed=0)
    assert model.training and [p.requires_grad for p in model.parameters()] == flags
    model.eval()
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert tokens.shape == model.null_adapter.shape
    assert (tokens - model.null_adapter.detach()).abs().max() > 1e-3
    messages = []
    again = personalize(model, [talking_clip(1.4, 6.0, seed=50)], steps=15, seed=0,
                        progress=lambda fraction, message: messages.append((fraction, message)))
    assert torch.equal(tokens, again)
    assert messages[-1][0] == 1.0 and "step 15/15, loss " in messages[-1][1]  # the app shows the loss


# ------------------------------------------------------------------------------------------ detector
@pytest.fixture(scope="module")
def detector_and_person(pretrained):
    model, _ = pretrained
    detector = ExamDetector(model, window=WINDOW, stride=10, n_noises=2, generation_steps=4)
    person = detector.enroll([talking_clip(1.4, 8.0, seed=100), talking_clip(1.4, 8.0, seed=101)])
    return detector, person


def test_enrollment_output(detector_and_person, pretrained):
    detector, person = detector_and_person
    assert person.detector == "exam"
    assert person.tensors["adapter_tokens"].shape == tuple(pretrained[0].null_adapter.shape)
    assert person.info["personalize_steps"] > 0 and person.info["backbone"] == detector.backbone
    json.dumps(person.info)


def test_genuine_clips_score_lower_than_dubbed_ones(detector_and_person):
    detector, person = detector_and_person
    genuine = [talking_clip(1.4, 6.0, seed=200 + i, name=f"genuine{i}") for i in range(4)]
    dubbed = [clip.with_audio_of(talking_clip(1.4, 6.0, seed=300 + i)) for i, clip in enumerate(genuine)]
    genuine_scores = [detector.score(c, person).score for c in genuine]
    dubbed_scores = [detector.score(c, person).score for c in dubbed]
    # on average only: a clip whose speech barely varies says little about the person, either way
    assert np.mean(genuine_scores) < np.mean(dubbed_scores) - 0.02, (genuine_scores, dubbed_scores)
    assert np.mean(genuine_scores) < 1.0  # the person's tokens explain their own footage better


def test_score_is_deterministic_and_well_shaped(detector_and_person):
    detector, person = detector_and_person
    clip = talking_clip(1.4, 5.0, seed=400)
    first, second = detector.score(clip, person), detector.score(clip, person)
    assert np.array_equal(first.window_scores, second.window_scores, equal_nan=True)
    assert np.array_equal(first.trajectories["generated"], second.trajectories["generated"])
    n = clip.num_frames
    assert first.detector == "exam" and first.window_length == WINDOW
    assert first.window_starts.tolist() == [0, 10, 20, 30, 40, 50, 60, 70, 80, 85]
    assert first.window_scores.shape == (10,) and first.frame_scores.shape == (n,)
    assert first.trajectories["observed"].shape == (n, 58) and first.trajectories["generated"].shape == (n, 58)
    assert np.isfinite(first.trajectories["generated"]).all()
    assert len(first.extras["error_with"]) == len(first.extras["error_without"]) == 10
    json.dumps(first.extras)
    assert np.isclose(first.score, np.nanmean(first.window_scores))


def test_identity_ratio_reads_the_blendshapes_at_its_own_noise_levels(detector_and_person):
    detector, person = detector_and_person
    clip = talking_clip(1.4, 5.0, seed=401)
    extras = detector.score(clip, person).extras
    windows = sliding_windows(clip_arrays(clip, WINDOW, detector.model.config.audio_features), WINDOW, 10)
    x0, audio, mask = (torch.from_numpy(a) for a in (windows.expressions, windows.audio, windows.frame_mask))
    tokens = torch.from_numpy(person.tensors["adapter_tokens"])
    for adapter, key in ((tokens, "error_with"), (None, "error_without")):
        errors = reconstruction_errors(detector.model, detector.ddpm, x0, audio, adapter, mask,
                                       detector.identity_timesteps, detector.noises)
        np.testing.assert_allclose(extras[key], errors[:, :52].mean(-1).double().numpy(), rtol=1e-5)
    assert extras["identity_timesteps"] == [400, 600, 700] and extras["timing_timesteps"] == [600, 700, 800, 900]


def test_unusable_windows_score_nan(detector_and_person):
    detector, person = detector_and_person
    silent = detector.score(talking_clip(1.4, 4.0, seed=500, silent=True), person)
    assert np.isnan(silent.score) and np.isnan(silent.window_scores).all() and np.isnan(silent.frame_scores).all()
    valid = np.ones(150, bool)
    valid[:80] = False  # no face in the first 3.2 s
    partly = detector.score(talking_clip(1.4, 6.0, seed=501, valid=valid), person)
    face = sliding_windows(talking_clip(1.4, 6.0, seed=501, valid=valid), WINDOW, 10).frame_mask.mean(axis=1)
    assert np.isnan(partly.window_scores[face < MIN_FACE_RATIO]).all()
    assert np.isfinite(partly.score)
    assert np.isnan(partly.trajectories["observed"][:80]).all()


def test_profiles_for_another_model_or_detector_are_refused(detector_and_person):
    detector, person = detector_and_person
    clip = talking_clip(1.4, 4.0, seed=600)
    with pytest.raises(ProfileError):
        detector.score(clip, None)
    with pytest.raises(ProfileError):
        detector.score(clip, PersonModel("fau", person.tensors, person.info))
    with pytest.raises(ProfileError):
        detector.score(clip, PersonModel("exam", person.tensors, dict(person.info, backbone="0" * 16)))
    with pytest.raises(ProfileError):
        detector.score(clip, PersonModel("exam", {"adapter_tokens": np.zeros((3, 3), np.float32)}, {}))


def test_enrollment_without_speech_is_refused(detector_and_person):
    detector, _ = detector_and_person
    with pytest.raises(InputError):
        detector.enroll([talking_clip(1.4, 6.0, seed=700, silent=True)])


def test_detector_loads_from_a_saved_model(tmp_path, pretrained):
    model, _ = pretrained
    model.save_pretrained(tmp_path)
    detector = ExamDetector.from_pretrained(tmp_path, window=WINDOW, stride=10)
    assert detector.backbone == ExamDetector(model, window=WINDOW).backbone
