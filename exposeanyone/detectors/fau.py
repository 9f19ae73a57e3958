"""FauForensics as a detector: is the face consistent with the voice, second by second?

It needs no enrollment: one model, trained once, scores anyone. :meth:`FauDetector.enroll` therefore
returns an empty :class:`PersonModel` rather than raising, so that code which enrolls every detector
for a person keeps working; :meth:`FauDetector.score` ignores ``person``.

Scores are the joint head's fake probability of 1 s windows (25 frames) taken every ``stride``
frames; the clip score is their mean over the windows with a face in at least half the frames and
speech in at least a quarter. ``extras`` carries, JSON-ready:

- ``av_consistency``: ``(frames,)`` each frame's audio-visual match, the diagonal of the windows'
  audio-visual similarity maps (probability that the frame's face matches its own audio frame rather
  than another one of the second), averaged over the usable windows covering it (``None`` if none);
- ``av_similarity``: ``(25, 25)`` the audio-visual map of the window whose score is the median
  (rows: face frames, columns: audio frames), with ``av_similarity_start``, its first frame;
- ``audio_scores`` / ``visual_scores``: ``(windows,)`` the auxiliary heads' fake probabilities.
"""
from __future__ import annotations

import json

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..assets import fau_model_dir
from ..calibration import Calibration
from ..clip import ClipFeatures
from ..config import torch_device
from ..errors import InputError
from ..models.fau import FauForensicsModel
from ..pseudo_fakes import WindowBatch, clip_streams
from ..windows import window_usable
from .base import (DetectorOutput, PersonModel, ProgressFn, clip_score, frame_scores_from_windows, no_progress,
                   window_starts)

DEFAULT_STRIDE = 5
CALIBRATION_FILE = "calibration.json"
"""Beside the weights: the threshold at a stated false-alarm rate on held-out genuine clips."""


class FauDetector:
    """Audio-visual consistency detector (no enrollment; higher score = more likely fake).

    Args:
        model: a trained :class:`FauForensicsModel`.
        stride: frames between consecutive 1 s windows.
        batch_size: windows per forward pass (results do not depend on it).
    """

    name = "fau"
    requires_enrollment = False

    def __init__(self, model: FauForensicsModel, stride: int = DEFAULT_STRIDE, batch_size: int = 64,
                 calibration: dict | None = None):
        if stride < 1:
            raise InputError(f"The FauForensics window stride must be at least 1 frame, got {stride}.")
        self.model = model.eval()
        self.stride = int(stride)
        self.batch_size = int(batch_size)
        self.window_length = int(model.config.num_frames)
        self.calibration = dict(calibration or {})

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, **kwargs) -> "FauDetector":
        """Load a model saved by ``save_pretrained`` (default: the shipped ``assets/fau``)."""
        folder = Path(path) if path is not None else fau_model_dir()
        if not (folder / "config.json").is_file():
            raise InputError(f"No FauForensics model in '{folder}': train one with train_fau or restore assets/fau.")
        model = FauForensicsModel.from_pretrained(folder, low_cpu_mem_usage=False).to(torch_device())
        calibration_file = folder / CALIBRATION_FILE
        if calibration_file.is_file() and "calibration" not in kwargs:
            kwargs["calibration"] = json.loads(calibration_file.read_text())
        return cls(model, **kwargs)

    def default_calibration(self) -> Calibration:
        """The threshold shipped with the model (``calibration.json``), else an uncalibrated 0.5."""
        if self.calibration:
            return Calibration.from_json(self.calibration)
        return Calibration(threshold=0.5, false_alarm_rate=float("nan"), genuine_scores=[],
                           method="uncalibrated: fake probability above one half")

    def enroll(self, clips: Sequence[ClipFeatures], progress: ProgressFn = no_progress) -> PersonModel:
        """Nothing to learn about a person: an empty model (see the module docstring)."""
        progress(1.0, "FauForensics needs no enrollment")
        return PersonModel(detector=self.name, tensors={}, info={"requires_enrollment": False})

    def score(self, clip: ClipFeatures, person: PersonModel | None = None) -> DetectorOutput:
        """Score ``clip`` window by window (``person`` is ignored)."""
        length = self.window_length
        streams = clip_streams(clip)
        starts = window_starts(clip.num_frames, length, self.stride)
        usable = self._usable(streams.valid, streams.speech, starts)
        scores = np.full(len(starts), np.nan)
        audio_scores, visual_scores = np.full(len(starts), np.nan), np.full(len(starts), np.nan)
        diagonals = np.full((len(starts), length), np.nan)
        maps: dict[int, np.ndarray] = {}
        chosen = np.flatnonzero(usable)
        for begin in range(0, len(chosen), self.batch_size):
            part = chosen[begin:begin + self.batch_size]
            batch = WindowBatch.stack([streams.window(int(starts[i]), length) for i in part],
                                      [(0, 0, 0)] * len(part), ["scored"] * len(part))
            with torch.inference_mode():
                output = self.model(**batch.model_inputs(str(next(self.model.parameters()).device)))
            scores[part] = output.fake_probability().double().cpu().numpy()
            audio_scores[part] = output.audio_logits.softmax(-1)[:, 1].double().cpu().numpy()
            visual_scores[part] = output.visual_logits.softmax(-1)[:, 1].double().cpu().numpy()
            av = output.av_similarity.double().cpu().numpy()
            diagonals[part] = np.diagonal(av, axis1=1, axis2=2)
            maps.update({int(i): matrix for i, matrix in zip(part, av)})
        extras = {"stride": self.stride,
                  "av_consistency": _json_floats(_frame_means(clip.num_frames, starts, diagonals)),
                  "audio_scores": _json_floats(audio_scores), "visual_scores": _json_floats(visual_scores)}
        extras.update(_representative_map(starts, scores, maps))
        return DetectorOutput(detector=self.name, score=clip_score(scores), window_starts=starts,
                              window_length=length, window_scores=scores,
                              frame_scores=frame_scores_from_windows(clip.num_frames, starts, length, scores),
                              extras=extras)

    def _usable(self, valid: np.ndarray, speech: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """``(windows,)`` bool: a whole window that passes EXAM's rule (:func:`window_usable`)."""
        length = self.window_length
        inside = starts + length <= len(valid)
        usable = np.zeros(len(starts), dtype=bool)
        if inside.any():
            index = starts[inside, None] + np.arange(length)
            usable[inside] = window_usable(np.asarray(valid, bool)[index], np.asarray(speech, bool)[index])
        return usable


def _frame_means(num_frames: int, starts: np.ndarray, per_window: np.ndarray) -> np.ndarray:
    """``(frames,)`` mean of per-window per-frame values ``(windows, T)`` over the windows covering each frame."""
    total, count = np.zeros(num_frames), np.zeros(num_frames)
    for start, values in zip(starts, per_window):
        if np.isfinite(values).all():
            total[start:start + len(values)] += values
            count[start:start + len(values)] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _representative_map(starts: np.ndarray, scores: np.ndarray, maps: dict[int, np.ndarray]) -> dict:
    """The audio-visual map of the usable window whose score is closest to the median (None if no window was usable)."""
    if not maps:
        return {"av_similarity": None, "av_similarity_start": None}
    indices = np.array(sorted(maps))
    median = np.median(scores[indices])
    index = int(indices[np.argmin(np.abs(scores[indices] - median))])
    return {"av_similarity": np.round(maps[index], 5).tolist(), "av_similarity_start": int(starts[index])}


def _json_floats(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=float)]
