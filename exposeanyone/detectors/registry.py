"""Every detector by name: how to load it, where its weights are, what its score means.

Adding a detector is one :class:`DetectorSpec` in :data:`REGISTRY`; the pipeline, the report, the app
and the CLI read everything they say about a detector from here. Classes are imported only when a
detector is loaded, so listing detectors costs no torch import.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..core.assets import exam_base_dir, fau_model_dir, file_sha256, ridge_generic_path, whisper_ridge_path
from ..core.errors import InputError
from .base import Detector


@dataclass(frozen=True)
class DetectorSpec:
    """What the library knows about one detector without loading it."""

    name: str
    label: str
    """What the detector is called in sentences (e.g. "FauForensics")."""
    summary: str
    """A few words on what it is, for pickers (e.g. "the ExposeAnyone model")."""
    load: Callable[[Path | None], Detector]
    """Build the detector from its weights location (``None`` when it has none); imports its class lazily."""
    requires_enrollment: bool
    """Whether it learns a person (and so needs a profile to score); equals the class's attribute."""
    explanation: str
    """What its score means, shown with every report."""
    weights: Callable[[], Path] | None = None
    """Where its shipped weights are: a ``save_pretrained`` folder or one file (``None``: it has none)."""
    weights_what: str = ""
    """What the weights are called in the sentence said when they are missing."""
    shipped_as: str = ""
    """Where the repository ships them, as the user would restore them (e.g. ``assets/exam_base``)."""
    train_command: str = ""
    """The ``exposeanyone`` command that makes the weights."""
    parts: tuple[str, ...] = ()
    """Detectors it is built from; its weights are theirs."""
    score_version: int | None = None
    """Raised when the score changes meaning, so that a profile calibrated on the old score is refused
    instead of compared with a threshold that no longer fits."""
    components: tuple[tuple[str, str, str], ...] = ()
    """Per-window ingredients of the score it puts in ``extras``: ``(key, label, what it means)``."""
    app_rank: int | None = None
    """Its place in the app's detector list (best first); ``None``: not offered in the app."""

    @property
    def installed(self) -> bool:
        """Whether its weights are present: a weights file, or a ``save_pretrained`` folder with its config."""
        if self.parts:
            return all(spec(part).installed for part in self.parts)
        if self.weights is None:
            return True
        location = Path(self.weights())
        return location.is_file() or (location / "config.json").is_file()


def _exam(path: Path | None) -> Detector:
    from .exam.detector import ExamDetector

    return ExamDetector.from_pretrained(path)


def _fau(path: Path | None) -> Detector:
    from .fau.detector import FauDetector

    return FauDetector.from_pretrained(path)


def _combined(path: Path | None) -> Detector:
    from .combined import CombinedDetector

    return CombinedDetector(load_detector("exam"), load_detector("fau"))


def _sync(path: Path | None) -> Detector:
    from .baselines import SyncBaseline

    return SyncBaseline()


def _ridge(path: Path | None) -> Detector:
    from .baselines import RidgeRatioBaseline

    return RidgeRatioBaseline.load(path)


def _whisper_ridge(path: Path | None) -> Detector:
    from .whisper_ridge import WhisperRidgeBaseline

    return WhisperRidgeBaseline.load(path)


REGISTRY: dict[str, DetectorSpec] = {spec.name: spec for spec in (
    DetectorSpec(
        name="exam", label="EXAM", summary="the ExposeAnyone model", load=_exam, requires_enrollment=True,
        weights=exam_base_dir, weights_what="EXAM base model", shipped_as="assets/exam_base",
        train_command="pretrain", app_rank=0,
        score_version=4,
        # 2: identity ratio x timing ratio; 3: identity ratio on the blendshapes at lower noise; 4: the model hears
        # the Whisper encoder's features
        explanation=(
            "The score multiplies two ratios of the EXAM model's reconstruction errors. Identity: its error with "
            "the person's adapter divided by its error without it (below 1: this person's way of talking explains "
            "the face better than a generic talker's). Timing: its error on the lips with the clip's own sound "
            "divided by its error with the sound moved by 1.4-2 s (below 1: the face follows its own sound). "
            "Above the threshold: the face is explained worse than on the person's genuine footage."),
        components=(
            ("identity_ratio", "identity ratio", "error with the person's tokens ÷ without them; below 1: their way "
                                                 "of talking explains the face"),
            ("timing_ratio", "timing ratio", "lip error with the clip's own sound ÷ with the sound moved 1.4-2 s; "
                                             "below 1: the face follows its own sound"),
        )),
    DetectorSpec(
        name="fau", label="FauForensics", summary="face and voice belong together (no enrollment)", load=_fau,
        requires_enrollment=False, weights=fau_model_dir, weights_what="FauForensics model", shipped_as="assets/fau",
        train_command="train-fau", app_rank=1,
        explanation=(
            "The score is how much more the FauForensics model believes face and voice do not belong together "
            "with the clip's own sound than with the same sound moved by 1-2.6 s (a difference of log-odds, "
            "averaged over 1-second windows; each sound taken at its best alignment within 2 frames, so a "
            "small constant offset does not count against a clip). Genuine speech scores well below 0: its own "
            "sound fits it best. At or above 0 the face fits its own sound no better than sound it did not make. "
            "No enrollment."),
        components=(
            ("fake_probability", "fake probability, own sound", "the model's raw belief that face and voice do not "
                                                                "belong together; it shifts with camera and person, "
                                                                "hence the score compares it with moved sound"),
        )),
    DetectorSpec(
        name="combined", label="EXAM + FauForensics", summary="EXAM fused with FauForensics", load=_combined,
        requires_enrollment=True, parts=("exam", "fau"),
        score_version=5,
        # 3: FauForensics' part with eight moved copies and a 2-frame alignment tolerance; 4: EXAM's identity
        # ratio on the blendshapes at lower noise; 5: both parts hear the Whisper encoder's features
        explanation=("The score averages EXAM's and FauForensics' window scores, each measured in spreads of that "
                     "detector's scores on the person's own reference footage (0: as genuine as the reference).")),
    DetectorSpec(
        name="sync", label="lip-sync baseline", summary="a mouth-loudness correlation check", load=_sync,
        requires_enrollment=False, app_rank=3,
        explanation="The score is minus the best correlation between mouth opening and loudness (a lip-sync check)."),
    DetectorSpec(
        name="ridge", label="ridge baseline", summary="a simple linear baseline", load=_ridge,
        requires_enrollment=True, weights=ridge_generic_path, weights_what="generic ridge baseline",
        shipped_as="assets/baselines/ridge_generic.safetensors", train_command="fit-ridge", app_rank=2,
        explanation=("The score is a personal linear audio-to-expression model's error divided by a generic one's "
                     "(a simple baseline of the EXAM idea).")),
    DetectorSpec(
        name="whisper-ridge", label="Whisper timing baseline",
        summary="a generic linear map from speech features (no enrollment)", load=_whisper_ridge,
        requires_enrollment=False, weights=whisper_ridge_path, weights_what="Whisper ridge baseline",
        shipped_as="assets/baselines/whisper_ridge.safetensors", train_command="fit-whisper-ridge", app_rank=4,
        explanation=("The score is the mouth error of a generic linear map from the Whisper encoder's speech features "
                     "to the face, with the clip's own sound divided by the same error with the sound moved by "
                     "1.4-2 s (below 1: the face follows its own sound). Nothing is learned about the person: it is "
                     "the bar the personalised models must beat."),
        components=(
            ("mouth_error", "mouth error, own sound", "how far the mouth is from what the generic map predicts "
                                                      "from the clip's own sound"),
            ("mouth_error_moved", "mouth error, moved sound", "the same with the sound moved by 1.4-2 s"),
        )),
)}


def detector_names() -> tuple[str, ...]:
    """Every detector's name, in registry order."""
    return tuple(REGISTRY)


def spec(name: str) -> DetectorSpec:
    """The named detector's entry; an unknown name is refused in one sentence naming the known ones."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(f"Unknown detector {name!r}; choose one of {', '.join(REGISTRY)}.") from None


@lru_cache(maxsize=None)
def load_detector(name: str) -> Detector:
    """The named detector with its shipped weights (loaded once per process)."""
    entry = spec(name)
    location = None
    if entry.weights is not None:
        location = Path(entry.weights())
        if not location.exists():
            raise InputError(f"The {entry.weights_what} is missing at {location}: restore assets/ from the "
                             f"repository or train it with `exposeanyone {entry.train_command}`.")
    return entry.load(location)


def available_detectors() -> list[str]:
    """The detectors the app offers whose weights are installed here, best first."""
    offered = sorted((entry for entry in REGISTRY.values() if entry.app_rank is not None), key=lambda e: e.app_rank)
    return [entry.name for entry in offered if entry.installed]


def weights_fingerprint(name: str) -> str:
    """The sha256 of the detector's weights file ("" without weights, or for a detector outside the registry)."""
    entry = REGISTRY.get(name)
    if entry is None:
        return ""
    if entry.parts:
        return "".join(weights_fingerprint(part) for part in entry.parts)
    if entry.weights is None:
        return ""
    location = Path(entry.weights())
    files = sorted(location.glob("*.safetensors")) if location.is_dir() else [location]
    return file_sha256(files[0]) if files and files[0].is_file() else ""


def profile_fingerprint(name: str) -> str:
    """What a profile card stores for the detector (``base_model_sha256``): its weights' fingerprint and
    its score version, so that a profile never meets a different model or a differently defined score."""
    entry = REGISTRY.get(name)
    version = entry.score_version if entry is not None else None
    return weights_fingerprint(name) + (f"/score-v{version}" if version is not None else "")


def explanation(name: str) -> str:
    """What the named detector's score means ("" for a detector outside the registry)."""
    entry = REGISTRY.get(name)
    return entry.explanation if entry is not None else ""


def score_components(name: str) -> dict[str, tuple[str, str]]:
    """The per-window ingredients the named detector reports: ``extras`` key -> (label, what it means)."""
    entry = REGISTRY.get(name)
    return {key: (label, meaning) for key, label, meaning in (entry.components if entry is not None else ())}
