"""Two simple detectors that any new system must beat (``research/baselines.md``, B1 and B2).

- :class:`SyncBaseline` asks whether the mouth moves with the loudness of the audio; it knows no one.
- :class:`RidgeRatioBaseline` asks whether a linear audio-to-expression model fitted on the person explains
  the face better than one fitted on other people.

Both score the same 4-s windows as EXAM (100 frames, stride 25), skip the windows with too little face
or speech, and average the rest into the clip score (higher means more likely fake).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.config import MEL_PER_FRAME, N_MELS
from ..core.errors import InputError, ProfileError
from ..core.jsonable import json_floats
from ..core.progress import ProgressFn, no_progress
from ..core.storage import atomic_write_bytes
from ..media.audio_features import AudioFeatures
from ..media.clip import ClipFeatures
from ..media.track import BLENDSHAPE_NAMES, POSE_NAMES
from .base import DetectorOutput, PersonModel
from .windows import SCORING_STRIDE, WINDOW_FRAMES, usable_windows, window_starts, windowed_output

WINDOW_LENGTH = WINDOW_FRAMES
"""Frames per scored window (4 s at 25 fps), as in EXAM."""
WINDOW_STRIDE = SCORING_STRIDE


# --------------------------------------------------------------------------------------------------
# B1: audio-visual sync
# --------------------------------------------------------------------------------------------------

MOUTH_OPENING_CHANNEL = BLENDSHAPE_NAMES.index("jawOpen")
"""The mouth-opening signal is the jawOpen blendshape alone (MediaPipe's most reliable mouth channel)."""
ENERGY_RANGE_DB = 40.0
"""Loudness is floored this far below the clip's 95th percentile, so that digital silence at -120 dB
does not dominate the correlation."""
MIN_CORRELATION_PAIRS = 25


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two ``(n,)`` series; NaN when either is constant."""
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator > 1e-12 else float("nan")


def lagged_correlations(mouth: np.ndarray, energy: np.ndarray, face_valid: np.ndarray, start: int,
                        length: int, lags: np.ndarray) -> np.ndarray:
    """Correlation of ``mouth[t]`` with ``energy[t + lag]`` over the face frames ``t`` of one window.

    A positive lag means the audio comes *after* the video. Audio frames just outside the window are
    used so that every lag sees the same frames, except at the clip's ends.

    Args:
        mouth, energy, face_valid: ``(frames,)`` for the whole clip.
        lags: ``(lags,)`` int.
    Returns:
        ``(lags,)`` float, NaN where fewer than 25 frames pair up or a signal is constant.
    """
    frames = np.arange(start, min(start + length, len(mouth)))
    correlations = np.full(len(lags), np.nan)
    for index, lag in enumerate(lags):
        shifted = frames + lag
        keep = face_valid[frames] & (shifted >= 0) & (shifted < len(energy))
        if keep.sum() >= MIN_CORRELATION_PAIRS:
            correlations[index] = pearson(mouth[frames[keep]], energy[shifted[keep]])
    return correlations


class SyncBaseline:
    """B1: minus the best correlation, over lags of -5..+5 frames, between mouth opening and loudness.

    ``extras``: ``lags`` tried, ``best_lag`` (frames, audio after video when positive) and
    ``best_correlation`` per window (None where unusable), and ``median_best_lag`` over the clip, which
    reports rather than hides a constant audio offset. No trajectories.
    """

    name = "sync"
    requires_enrollment = False

    def __init__(self, max_lag: int = 5):
        self.lags = np.arange(-max_lag, max_lag + 1)

    def enroll(self, clips: Sequence[ClipFeatures], progress: ProgressFn = no_progress) -> PersonModel:
        """Nothing to learn: returns an empty model so that callers can treat every detector alike."""
        progress(1.0, "The sync baseline needs no reference.")
        return PersonModel(detector=self.name, tensors={}, info={})

    def score(self, clip: ClipFeatures, person: PersonModel | None = None) -> DetectorOutput:
        """Score ``clip``; ``person`` is ignored."""
        starts = window_starts(clip.num_frames, WINDOW_LENGTH, WINDOW_STRIDE)
        usable = usable_windows(clip.track.valid, clip.audio.speech, starts, WINDOW_LENGTH)
        mouth = clip.track.blendshapes[:, MOUTH_OPENING_CHANNEL].astype(float)
        energy = clip.audio.energy_db.astype(float)
        if len(energy):
            energy = np.maximum(energy, np.percentile(energy, 95) - ENERGY_RANGE_DB)
        best_correlation = np.full(len(starts), np.nan)
        best_lag = np.full(len(starts), np.nan)
        for index in np.flatnonzero(usable):
            correlations = lagged_correlations(mouth, energy, clip.track.valid, starts[index],
                                               WINDOW_LENGTH, self.lags)
            if np.isfinite(correlations).any():
                best = int(np.nanargmax(correlations))
                best_correlation[index], best_lag[index] = correlations[best], self.lags[best]
        finite_lags = best_lag[np.isfinite(best_lag)]
        extras = {
            "lags": self.lags.tolist(),
            "best_lag": [int(v) if np.isfinite(v) else None for v in best_lag],
            "best_correlation": json_floats(best_correlation),
            "median_best_lag": float(np.median(finite_lags)) if len(finite_lags) else None,
            "mouth_signal": BLENDSHAPE_NAMES[MOUTH_OPENING_CHANNEL],
        }
        return windowed_output(self.name, clip.num_frames, starts, WINDOW_LENGTH, -best_correlation, extras=extras)


# --------------------------------------------------------------------------------------------------
# B2: personal / generic ridge ratio
# --------------------------------------------------------------------------------------------------

MEL_CONTEXT = 5
"""Video frames of audio context on each side of a frame: 11 frames x 80 mel bins = 880 features."""
N_AUDIO_FEATURES = (2 * MEL_CONTEXT + 1) * N_MELS
N_TARGETS = len(BLENDSHAPE_NAMES)
RIDGE_ALPHAS = tuple(float(a) for a in 10.0 ** np.arange(0.0, 6.5, 0.5))
"""Candidate penalties for the 2-fold cross-validation (on standardised features)."""
TARGET_SCALE_FLOOR = 0.01
"""Blendshapes that barely move are not allowed to dominate the error."""
MIN_TRAINING_FRAMES = 50
GENERIC_FORMAT = "exposeanyone-ridge-generic"
GENERIC_FORMAT_VERSION = 1


def stacked_log_mel(audio: AudioFeatures, context: int = MEL_CONTEXT) -> np.ndarray:
    """Each frame's 80-bin log-mel (mean of its 4 mel frames) with ``context`` frames on each side.

    The clip's first and last frames are repeated beyond its ends.

    Returns:
        ``(frames, (2 * context + 1) * 80)`` float64, ordered from frame ``t - context`` to ``t + context``.
    """
    frames = audio.num_frames
    if frames == 0:
        return np.zeros((0, (2 * context + 1) * N_MELS))
    per_frame = audio.mel.reshape(frames, MEL_PER_FRAME, N_MELS).mean(axis=1).astype(float)
    padded = np.pad(per_frame, ((context, context), (0, 0)), mode="edge")
    return np.concatenate([padded[offset:offset + frames] for offset in range(2 * context + 1)], axis=1)


@dataclass(frozen=True)
class RidgeModel:
    """A linear map from stacked log-mel to blendshapes, in raw units on both sides."""

    weights: np.ndarray
    """``(880, 52)`` float."""
    bias: np.ndarray
    """``(52,)`` float."""
    alpha: float
    """The penalty it was fitted with (on standardised features)."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``(frames, 880)`` features to ``(frames, 52)`` blendshapes."""
        return features @ self.weights + self.bias


class _RidgeSolver:
    """One eigendecomposition, then a ridge fit per penalty for free.

    With fewer frames than features (a typical reference) it decomposes the ``(frames, frames)`` kernel
    instead of the ``(880, 880)`` Gram matrix: the same solution, at a fraction of the cost.
    """

    def __init__(self, features: np.ndarray, targets: np.ndarray):
        self.feature_mean = features.mean(axis=0)
        self.feature_scale = np.maximum(features.std(axis=0), 1e-6)
        self.target_mean = targets.mean(axis=0)
        standardised = (features - self.feature_mean) / self.feature_scale
        centred_targets = targets - self.target_mean
        if len(features) < features.shape[1]:
            self.eigenvalues, eigenvectors = np.linalg.eigh(standardised @ standardised.T)
            self.basis = standardised.T @ eigenvectors
            self.projected = eigenvectors.T @ centred_targets
        else:
            self.eigenvalues, self.basis = np.linalg.eigh(standardised.T @ standardised)
            self.projected = self.basis.T @ (standardised.T @ centred_targets)

    def model(self, alpha: float) -> RidgeModel:
        shrunk = self.projected / (np.maximum(self.eigenvalues, 0.0) + alpha)[:, None]
        weights = (self.basis @ shrunk) / self.feature_scale[:, None]
        return RidgeModel(weights=weights, bias=self.target_mean - self.feature_mean @ weights, alpha=alpha)


def normalised_error(observed: np.ndarray, predicted: np.ndarray, target_scale: np.ndarray) -> np.ndarray:
    """Per-frame mean squared error over the 52 blendshapes, each in units of ``target_scale``: ``(frames,)``."""
    return np.mean(((observed - predicted) / target_scale) ** 2, axis=1)


def target_scale_of(targets: np.ndarray) -> np.ndarray:
    """``(52,)`` standard deviation of each blendshape, floored at :data:`TARGET_SCALE_FLOOR`."""
    return np.maximum(targets.std(axis=0), TARGET_SCALE_FLOOR)


def fit_ridge_cv(features: np.ndarray, targets: np.ndarray,
                 alphas: Sequence[float] = RIDGE_ALPHAS) -> tuple[RidgeModel, dict]:
    """Ridge regression with its penalty chosen by 2-fold cross-validation on contiguous halves.

    The halves are the first and second half of the frames in order: adjacent frames are nearly
    identical, so a random split would let each fold see its test frames' neighbours.

    Args:
        features: ``(frames, 880)``; targets: ``(frames, 52)``.
    Returns:
        The model refitted on all frames with the best penalty, and ``{"alpha", "cv_alphas",
        "cv_errors", "frames"}`` (errors in units of the targets' standard deviation).
    """
    scale = target_scale_of(targets)
    half = len(features) // 2
    folds = [(slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))]
    errors = np.zeros(len(alphas))
    for train, held_out in folds:
        solver = _RidgeSolver(features[train], targets[train])
        for index, alpha in enumerate(alphas):
            predicted = solver.model(alpha).predict(features[held_out])
            errors[index] += normalised_error(targets[held_out], predicted, scale).mean() / 2
    best = float(alphas[int(np.argmin(errors))])
    info = {"alpha": best, "cv_alphas": [float(a) for a in alphas], "cv_errors": errors.tolist(),
            "frames": int(len(features))}
    return _RidgeSolver(features, targets).model(best), info


def _training_frames(clips: Sequence[ClipFeatures], who: str) -> tuple[np.ndarray, np.ndarray]:
    """Stacked features and blendshapes of every face frame of ``clips``, in order: ``(n, 880), (n, 52)``."""
    if not clips:
        raise InputError(f"The ridge baseline needs at least one {who} clip.")
    features, targets = [], []
    for clip in clips:
        valid = clip.track.valid
        features.append(stacked_log_mel(clip.audio)[valid])
        targets.append(clip.track.blendshapes[valid].astype(float))
    features, targets = np.concatenate(features), np.concatenate(targets)
    if len(features) < MIN_TRAINING_FRAMES:
        raise InputError(f"The {who} clips have only {len(features)} frames with a face; the ridge "
                         f"baseline needs at least {MIN_TRAINING_FRAMES} (2 seconds).")
    return features, targets


def _pad_to_expressions(blendshapes: np.ndarray) -> np.ndarray:
    """``(frames, 52)`` to ``(frames, 58)`` float32, with NaN where a model says nothing (head pose)."""
    padded = np.full((len(blendshapes), len(BLENDSHAPE_NAMES) + len(POSE_NAMES)), np.nan, np.float32)
    padded[:, :len(BLENDSHAPE_NAMES)] = blendshapes
    return padded


class RidgeRatioBaseline:
    """B2: error of a personal audio-to-blendshape ridge model divided by that of a generic one.

    Below 1, the person's own model explains the face better than a model of other people: a genuine
    sign. Errors are mean squared over the 52 blendshapes, each in units of its spread in the person's
    reference, over the face frames of each window.

    ``trajectories``: ``observed`` (frames, 58) with NaN where no face is known, ``generated`` (the
    personal prediction) and ``generic`` (frames, 58) with NaN head pose, which neither model predicts.
    ``extras``: per-window ``personal_error`` and ``generic_error`` and both penalties.
    """

    name = "ridge"
    requires_enrollment = True

    def __init__(self, generic: RidgeModel | None = None, generic_info: dict | None = None):
        self.generic = generic
        self.generic_info = dict(generic_info or {})

    @classmethod
    def fit_generic(cls, clips: Sequence[ClipFeatures],
                    progress: ProgressFn = no_progress) -> "RidgeRatioBaseline":
        """Fit the generic model on other people's clips (``pretrain`` rows only, never ``ref``/``test``)."""
        progress(0.0, "Computing audio features of the generic clips.")
        features, targets = _training_frames(clips, "pre-training")
        progress(0.3, "Fitting the generic ridge model.")
        model, info = fit_ridge_cv(features, targets)
        progress(1.0, "Generic ridge model fitted.")
        return cls(model, {**info, "clips": len(clips)})

    def save(self, path: str | Path) -> None:
        """Write the generic model as one safetensors file whose header metadata holds its JSON info."""
        generic = self._require_generic()
        write_linear_model(path, GENERIC_FORMAT, GENERIC_FORMAT_VERSION,
                           {"weights": generic.weights, "bias": generic.bias}, {**self.generic_info, "alpha": generic.alpha})

    @classmethod
    def load(cls, path: str | Path) -> "RidgeRatioBaseline":
        """Read a file written by :meth:`save`; anything else raises :class:`InputError`."""
        path = Path(path)
        tensors, info = read_linear_model(path, GENERIC_FORMAT, GENERIC_FORMAT_VERSION, "generic ridge model")
        _check_linear_map(tensors, f"'{path.name}'", InputError)
        model = RidgeModel(weights=tensors["weights"].astype(float), bias=tensors["bias"].astype(float),
                           alpha=float(info.get("alpha", float("nan"))))
        return cls(model, info)

    def enroll(self, clips: Sequence[ClipFeatures], progress: ProgressFn = no_progress) -> PersonModel:
        """Fit the personal model on the person's reference clips (penalty by 2-fold CV inside them)."""
        progress(0.0, "Computing audio features of the reference clips.")
        features, targets = _training_frames(clips, "reference")
        progress(0.3, "Fitting the personal ridge model.")
        model, info = fit_ridge_cv(features, targets)
        progress(1.0, "Personal ridge model fitted.")
        tensors = {"weights": model.weights.astype(np.float32), "bias": model.bias.astype(np.float32),
                   "target_scale": target_scale_of(targets).astype(np.float32)}
        return PersonModel(detector=self.name, tensors=tensors,
                           info={**info, "context_frames": MEL_CONTEXT, "clips": len(clips)})

    def score(self, clip: ClipFeatures, person: PersonModel | None = None) -> DetectorOutput:
        """Score ``clip`` against the enrolled ``person`` (required)."""
        generic = self._require_generic()
        personal, target_scale = _personal_model(person)
        starts = window_starts(clip.num_frames, WINDOW_LENGTH, WINDOW_STRIDE)
        usable = usable_windows(clip.track.valid, clip.audio.speech, starts, WINDOW_LENGTH)
        features = stacked_log_mel(clip.audio)
        observed = clip.track.blendshapes.astype(float)
        personal_prediction = personal.predict(features)
        generic_prediction = generic.predict(features)
        personal_error = normalised_error(observed, personal_prediction, target_scale)
        generic_error = normalised_error(observed, generic_prediction, target_scale)

        window_personal = np.full(len(starts), np.nan)
        window_generic = np.full(len(starts), np.nan)
        for index in np.flatnonzero(usable):
            frames = np.arange(starts[index], min(starts[index] + WINDOW_LENGTH, clip.num_frames))
            frames = frames[clip.track.valid[frames]]
            window_personal[index] = personal_error[frames].mean()
            window_generic[index] = generic_error[frames].mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(window_generic > 0, window_personal / window_generic, np.nan)

        observed_track = clip.track.expressions()
        observed_track[~clip.track.valid] = np.nan
        trajectories = {"observed": observed_track,
                        "generated": _pad_to_expressions(personal_prediction),
                        "generic": _pad_to_expressions(generic_prediction)}
        extras = {"personal_error": json_floats(window_personal),
                  "generic_error": json_floats(window_generic),
                  "personal_alpha": float(person.info.get("alpha", float("nan"))),
                  "generic_alpha": generic.alpha}
        return windowed_output(self.name, clip.num_frames, starts, WINDOW_LENGTH, ratios, trajectories=trajectories,
                               extras=extras)

    def _require_generic(self) -> RidgeModel:
        if self.generic is None:
            raise InputError("The ridge baseline has no generic model: fit one with "
                             "RidgeRatioBaseline.fit_generic or load one with RidgeRatioBaseline.load.")
        return self.generic


def write_linear_model(path: str | Path, format_name: str, version: int, tensors: dict[str, np.ndarray],
                       info: dict) -> None:
    """One safetensors file of float32 ``tensors`` whose header metadata names the format and holds ``info``."""
    from safetensors.numpy import save

    metadata = {"format": format_name, "version": str(version), "info": json.dumps(info)}
    atomic_write_bytes(Path(path), save({k: v.astype(np.float32) for k, v in tensors.items()}, metadata=metadata))


def read_linear_model(path: Path, format_name: str, version: int, what: str) -> tuple[dict[str, np.ndarray], dict]:
    """``(tensors, info)`` of a file written by :func:`write_linear_model`; anything else is refused in one
    sentence naming ``what`` it should have been."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        info = json.loads(metadata.get("info", "{}"))
    except Exception as exc:  # any unreadable file is the user's problem, said in one sentence
        raise InputError(f"'{path.name}' is not a readable {what} ({exc}).") from None
    if metadata.get("format") != format_name or metadata.get("version") != str(version):
        raise InputError(f"'{path.name}' is not a {what} of format {version}.")
    return tensors, info


def _check_linear_map(tensors: dict[str, np.ndarray], what: str, error: type[InputError]) -> None:
    expected = {"weights": (N_AUDIO_FEATURES, N_TARGETS), "bias": (N_TARGETS,)}
    for key, shape in expected.items():
        value = tensors.get(key)
        if value is None or value.shape != shape or not np.isfinite(value).all():
            raise error(f"{what} is not a valid ridge model: '{key}' is missing, mis-shaped or not finite.")


def _personal_model(person: PersonModel | None) -> tuple[RidgeModel, np.ndarray]:
    """The personal ridge model and target scale held in ``person``, checked."""
    if person is None:
        raise ProfileError("The ridge baseline scores a clip against an enrolled person: give a profile.")
    if person.detector != RidgeRatioBaseline.name:
        raise ProfileError(f"This profile was made by the '{person.detector}' detector, not by 'ridge'.")
    _check_linear_map(person.tensors, "The profile", ProfileError)
    target_scale = person.tensors.get("target_scale")
    if target_scale is None or target_scale.shape != (N_TARGETS,) or not (target_scale > 0).all():
        raise ProfileError("The profile is not a valid ridge model: 'target_scale' is missing or not positive.")
    model = RidgeModel(weights=person.tensors["weights"].astype(float),
                       bias=person.tensors["bias"].astype(float),
                       alpha=float(person.info.get("alpha", float("nan"))))
    return model, target_scale.astype(float)
