"""The detector registry: one entry per detector says everything the library tells about it."""
import pytest

from exposeanyone.core.errors import InputError
from exposeanyone.detectors import registry
from exposeanyone.detectors.baselines import RidgeRatioBaseline, SyncBaseline
from exposeanyone.detectors.combined import CombinedDetector
from exposeanyone.detectors.exam.detector import ExamDetector
from exposeanyone.detectors.fau.detector import FauDetector
from exposeanyone.detectors.whisper_ridge import WhisperRidgeBaseline

CLASSES = {"exam": ExamDetector, "fau": FauDetector, "combined": CombinedDetector, "sync": SyncBaseline,
           "ridge": RidgeRatioBaseline, "whisper-ridge": WhisperRidgeBaseline}


def test_every_detector_has_one_complete_entry():
    assert registry.detector_names() == ("exam", "fau", "combined", "sync", "ridge", "whisper-ridge")
    for name, cls in CLASSES.items():
        entry = registry.spec(name)
        assert entry.name == cls.name == name and entry.requires_enrollment == cls.requires_enrollment
        assert entry.label and entry.summary and entry.explanation == registry.explanation(name)
        if entry.weights is not None:
            assert entry.weights_what and entry.shipped_as and entry.train_command


def test_an_unknown_detector_is_refused_in_one_sentence():
    with pytest.raises(InputError, match=r"^Unknown detector 'bogus'; choose one of exam, fau, combined, sync, "
                                         r"ridge, whisper-ridge\.$"):
        registry.spec("bogus")
    with pytest.raises(InputError, match="Unknown detector"):
        registry.load_detector("bogus")
    assert registry.explanation("bogus") == "" and registry.score_components("bogus") == {}
    assert registry.profile_fingerprint("bogus") == ""  # a stand-in detector outside the registry has no weights


def test_missing_weights_name_the_command_that_makes_them(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPOSEANYONE_FAU_MODEL", str(tmp_path / "nowhere"))
    registry.load_detector.cache_clear()
    try:
        with pytest.raises(InputError, match=r"FauForensics model is missing at .*nowhere.*exposeanyone train-fau"):
            registry.load_detector("fau")
        assert "fau" not in registry.available_detectors()
        assert registry.weights_fingerprint("fau") == ""
    finally:
        registry.load_detector.cache_clear()


def test_fingerprints_are_the_weights_sha256_and_score_version():
    from exposeanyone.core.assets import file_sha256

    exam = file_sha256(registry.spec("exam").weights() / "diffusion_pytorch_model.safetensors")
    fau = file_sha256(registry.spec("fau").weights() / "diffusion_pytorch_model.safetensors")
    assert registry.profile_fingerprint("exam") == f"{exam}/score-v4"
    assert registry.profile_fingerprint("combined") == f"{exam}{fau}/score-v5"
    assert registry.profile_fingerprint("ridge") == file_sha256(registry.spec("ridge").weights())
    assert registry.profile_fingerprint("sync") == ""


def test_the_app_offers_the_installed_detectors_best_first():
    assert registry.available_detectors() == ["exam", "fau", "ridge", "sync", "whisper-ridge"]  # the shipped assets
    assert set(registry.score_components("exam")) == {"identity_ratio", "timing_ratio"}
