"""B3, the bar for any detector that hears speech through Whisper: a generic linear map and a timing ratio.

A ridge regression from the frozen Whisper-base encoder's features (``clip.audio.encoded``, one 512-d
vector a frame) to the 52 blendshapes, fitted once on other people's genuine clips (avdata's ``pretrain``
rows), predicts how a face moves for a sound. A window's score is the mouth error of that prediction
with the clip's own sound divided by its mean error with the sound moved by 1.4-2 s
(:mod:`~exposeanyone.detectors.audio_reference`): below 1 the face follows its own sound. Nothing is
learned per person, so it needs no enrollment. A personalised model that hears the same features and does
not beat it has learned nothing about the person.

Features and blendshapes are centred per 4-s window before the map, in fitting and in scoring: the map
predicts how the face moves, not where it rests (a face's resting shape is the camera's and the tracker's
as much as the person's).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.errors import InputError
from ..core.jsonable import json_floats
from ..core.progress import ProgressFn, no_progress
from ..media.clip import ClipFeatures
from ..media.track import BLENDSHAPE_NAMES, SPEECH_CHANNELS
from .audio_inputs import clip_audio
from .audio_reference import reference_shifts, shifted_audio
from .base import DetectorOutput, PersonModel
from .baselines import RidgeModel, fit_ridge_cv, read_linear_model, target_scale_of, write_linear_model
from .windows import SCORING_STRIDE, WINDOW_FRAMES, usable_windows, window_starts, windowed_output

FORMAT = "exposeanyone-whisper-ridge"
FORMAT_VERSION = 1
MOUTH = [c for c in SPEECH_CHANNELS if c < len(BLENDSHAPE_NAMES)]
"""The blendshapes the timing ratio reads (jaw and lips): the ones speech moves."""


def _speech_features(clip: ClipFeatures) -> np.ndarray:
    """``(frames, 512)`` the clip's Whisper features as float64 (refused in one sentence when missing)."""
    return clip_audio(clip, "whisper-base")[0].astype(float)


def _centred(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``values`` ``(frames, k)`` minus their mean over the frames where ``weights`` ``(frames,)`` is set."""
    known = weights.astype(float)[:, None]
    return values - (values * known).sum(axis=0) / max(float(known.sum()), 1.0)


def training_windows(clips: Sequence[ClipFeatures]) -> tuple[np.ndarray, np.ndarray]:
    """Window-centred features and blendshapes of every face frame of ``clips``: ``(n, 512), (n, 52)``.

    Each clip is cut into back-to-back 4-s windows (a shorter clip is one window); frames without a face
    are left out.
    """
    features, targets = [], []
    for clip in clips:
        audio, valid = _speech_features(clip), clip.track.valid
        blendshapes = clip.track.blendshapes.astype(float)
        for start in window_starts(clip.num_frames, WINDOW_FRAMES, WINDOW_FRAMES):
            frames = slice(start, start + WINDOW_FRAMES)
            known = valid[frames]
            if known.sum() < 2:
                continue
            features.append(_centred(audio[frames], known)[known])
            targets.append(_centred(blendshapes[frames], known)[known])
    if not features:
        raise InputError("The Whisper baseline needs training clips with a visible face.")
    return np.concatenate(features), np.concatenate(targets)


class WhisperRidgeBaseline:
    """The generic Whisper-feature ridge map and its timing ratio (see the module docstring).

    ``trajectories``: ``observed`` (frames, 58) with NaN where no face is known and ``generated``, the
    map's blendshapes from the clip's own sound placed at each window's observed level (NaN head pose).
    ``extras``: per-window ``mouth_error`` (own sound) and ``mouth_error_moved`` (mean over the moves).
    """

    name = "whisper-ridge"
    requires_enrollment = False

    def __init__(self, model: RidgeModel, target_scale: np.ndarray, info: dict | None = None):
        self.model = model
        self.target_scale = np.asarray(target_scale, dtype=float)
        self.info = dict(info or {})

    @classmethod
    def fit(cls, clips: Sequence[ClipFeatures], progress: ProgressFn = no_progress) -> "WhisperRidgeBaseline":
        """Fit on other people's genuine clips (``pretrain`` rows, never ``ref``/``test``), penalty by 2-fold CV."""
        progress(0.0, "Collecting the speech features of the training clips.")
        features, targets = training_windows(clips)
        progress(0.3, "Fitting the Whisper ridge map.")
        model, info = fit_ridge_cv(features, targets)
        progress(1.0, "Whisper ridge map fitted.")
        return cls(model, target_scale_of(targets), {**info, "clips": len(clips)})

    def save(self, path: str | Path) -> None:
        """One safetensors file; its header metadata holds the JSON info (penalty, CV errors, data)."""
        write_linear_model(path, FORMAT, FORMAT_VERSION, {"weights": self.model.weights, "bias": self.model.bias,
                                                          "target_scale": self.target_scale},
                           {**self.info, "alpha": self.model.alpha})

    @classmethod
    def load(cls, path: str | Path) -> "WhisperRidgeBaseline":
        """Read a file written by :meth:`save`; anything else raises :class:`InputError` in one sentence."""
        path = Path(path)
        tensors, info = read_linear_model(path, FORMAT, FORMAT_VERSION, "Whisper ridge model")
        shapes = {k: v.shape for k, v in tensors.items()}
        n = len(BLENDSHAPE_NAMES)
        if shapes.get("bias") != (n,) or shapes.get("target_scale") != (n,) or len(shapes.get("weights", ())) != 2 \
                or shapes["weights"][1] != n or not all(np.isfinite(v).all() for v in tensors.values()):
            raise InputError(f"'{path.name}' holds a damaged Whisper ridge model; fit it again.")
        model = RidgeModel(weights=tensors["weights"].astype(float), bias=tensors["bias"].astype(float),
                           alpha=float(info.get("alpha", float("nan"))))
        return cls(model, tensors["target_scale"], info)

    def enroll(self, clips: Sequence[ClipFeatures], progress: ProgressFn = no_progress) -> PersonModel:
        """Nothing to learn about a person: the map is generic."""
        progress(1.0, "The Whisper baseline needs no enrollment.")
        return PersonModel(detector=self.name, tensors={}, info={"requires_enrollment": False})

    def mouth_errors(self, clip: ClipFeatures, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the clip's audio: ``(windows,)`` the mean mouth error of the map's prediction in each window
        (in units of each blendshape's spread in the training data), and ``(frames, 52)`` the prediction
        put at each window's observed level (where windows overlap, the later one's)."""
        features, valid = _speech_features(clip), clip.track.valid
        observed = clip.track.blendshapes.astype(float)
        errors = np.full(len(starts), np.nan)
        predicted = np.full(observed.shape, np.nan)
        for index, start in enumerate(starts):
            frames = slice(start, min(start + WINDOW_FRAMES, clip.num_frames))
            known = valid[frames]
            if known.sum() < 2:
                continue
            prediction = self.model.predict(_centred(features[frames], known))
            target = _centred(observed[frames], known)
            squared = ((target - prediction)[:, MOUTH] / self.target_scale[MOUTH]) ** 2
            errors[index] = squared[known].mean()
            level = (observed[frames] * known[:, None]).sum(axis=0) / known.sum()
            predicted[frames] = prediction + level
        return errors, predicted

    def score(self, clip: ClipFeatures, person: PersonModel | None = None) -> DetectorOutput:
        """Score ``clip`` window by window (``person`` is ignored)."""
        starts = window_starts(clip.num_frames, WINDOW_FRAMES, SCORING_STRIDE)
        usable = usable_windows(clip.track.valid, clip.audio.speech, starts, WINDOW_FRAMES)
        own, predicted = self.mouth_errors(clip, starts)
        shifts = reference_shifts(clip.num_frames)
        moved = (np.mean([self.mouth_errors(shifted_audio(clip, s), starts)[0] for s in shifts], axis=0)
                 if shifts else np.full(len(starts), np.nan))
        own, moved = np.where(usable, own, np.nan), np.where(usable, moved, np.nan)  # like the score, only where usable
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = np.where(moved > 0, own / moved, np.nan)
        observed = clip.track.expressions()
        observed[~clip.track.valid] = np.nan
        generated = np.full(observed.shape, np.nan)
        generated[:, :len(BLENDSHAPE_NAMES)] = predicted
        return windowed_output(self.name, clip.num_frames, starts, WINDOW_FRAMES, ratios,
                               trajectories={"observed": observed, "generated": generated},
                               extras={"mouth_error": json_floats(own), "mouth_error_moved": json_floats(moved),
                                       "audio_shifts": shifts})
