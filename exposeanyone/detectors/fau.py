"""FauForensics as a detector: is the face consistent with the voice, second by second?

It needs no enrollment: one model, trained once, scores anyone. :meth:`FauDetector.enroll` therefore
returns an empty :class:`PersonModel` rather than raising, so that code which enrolls every detector
for a person keeps working; :meth:`FauDetector.score` ignores ``person``.

A window's score compares the joint head's fake logit with the clip's own audio against its mean
with the audio moved by 1.4-2 s (:mod:`~exposeanyone.audio_reference`): how much *less* the face
matches its own soundtrack than a soundtrack it did not make. Genuine speech scores well below 0;
a face driven by other speech scores about 0, since no timing fits it. The raw probability alone
shifts with the camera, the person and the language (on the avdata persons of interest, trained on
GRID, it called 86 % of genuine clips fake at one half); the difference carries over, so the
threshold is 0 without calibration: "no better with its own audio than with moved audio". Windows are
1 s (25 frames) every ``stride`` frames; the clip score is the mean over the windows with a face in at
least half the frames and speech in at least a quarter. ``extras`` carries, JSON-ready:

- ``fake_probability``: ``(windows,)`` the joint head's probability with the clip's own audio;
- ``av_consistency``: ``(frames,)`` each frame's audio-visual match, the diagonal of the windows'
  audio-visual similarity maps (probability that the frame's face matches its own audio frame rather
  than another one of the second), averaged over the usable windows covering it (``None`` if none);
- ``av_similarity``: ``(25, 25)`` the audio-visual map of the window whose score is the median
  (rows: face frames, columns: audio frames), with ``av_similarity_start``, its first frame;
- ``audio_offset``: the constant audio-video offset (:mod:`~exposeanyone.av_offset`): the audio move
  within +-10 frames at which the windows look most genuine, with a warning when it is noticeable;
- ``audio_scores`` / ``visual_scores``: ``(windows,)`` the auxiliary heads' fake probabilities.
"""
from __future__ import annotations

import json
from dataclasses import replace

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
from ..audio_reference import reference_shifts, shifted_audio
from ..av_offset import MAX_OFFSET_FRAMES, AudioOffset, best_offset
from ..pseudo_fakes import ClipStreams, WindowBatch, clip_streams
from ..windows import window_usable
from .base import (DetectorOutput, PersonModel, ProgressFn, clip_score, frame_scores_from_windows, no_progress,
                   window_starts)

DEFAULT_STRIDE = 5
OFFSET_STRIDE = 10
"""Frames between the windows used to estimate the audio offset: 21 audio moves on every other scoring
window keep it to about 1 s of CPU per 10 s of clip. Artificial +-5-frame moves of 25 avdata clips moved
the estimate by the same amount (within a frame) in 48 of 50 cases."""
MAX_OFFSET_WINDOWS = 60
"""At most this many windows (spread over the clip) for the offset: a constant offset shows in any
minute of speech, and a 10-minute clip would otherwise cost about 2 minutes of CPU."""
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
        """The threshold shipped with the model (``calibration.json``), else 0 (see the module docstring)."""
        if self.calibration:
            return Calibration.from_json(self.calibration)
        return Calibration(threshold=0.0, false_alarm_rate=float("nan"), genuine_scores=[],
                           method="no calibration needed: the face matches its own audio no better than "
                                  "audio moved by 1.4-2 s")

    def enroll(self, clips: Sequence[ClipFeatures], progress: ProgressFn = no_progress) -> PersonModel:
        """Nothing to learn about a person: an empty model (see the module docstring)."""
        progress(1.0, "FauForensics needs no enrollment")
        return PersonModel(detector=self.name, tensors={}, info={"requires_enrollment": False})

    def score(self, clip: ClipFeatures, person: PersonModel | None = None, *,
              estimate_offset: bool = True) -> DetectorOutput:
        """Score ``clip`` window by window (``person`` is ignored); ``estimate_offset=False`` skips the
        offset search (about 1 s per 10 s of clip) where only the scores are wanted."""
        length = self.window_length
        streams = clip_streams(clip)
        starts = window_starts(clip.num_frames, length, self.stride)
        chosen = np.flatnonzero(self._usable(streams.valid, streams.speech, starts))
        shifts = reference_shifts(clip.num_frames)
        own_logits, outputs = self._fake_logits(streams, starts[chosen])
        moved = [self._fake_logits(_with_audio_moved(streams, clip, shift), starts[chosen])[0] for shift in shifts]
        scores, probability = np.full(len(starts), np.nan), np.full(len(starts), np.nan)
        audio_scores, visual_scores = np.full(len(starts), np.nan), np.full(len(starts), np.nan)
        diagonals = np.full((len(starts), length), np.nan)
        if len(chosen) and moved:
            scores[chosen] = own_logits - np.mean(moved, axis=0)
        if len(chosen):
            probability[chosen] = 1.0 / (1.0 + np.exp(-own_logits))
            audio_scores[chosen], visual_scores[chosen] = outputs["audio"], outputs["visual"]
            diagonals[chosen] = np.diagonal(outputs["av"], axis1=1, axis2=2)
        maps = {int(i): matrix for i, matrix in zip(chosen, outputs["av"])}
        extras = {"stride": self.stride, "audio_shifts": shifts,
                  "fake_probability": _json_floats(probability),
                  "av_consistency": _json_floats(_frame_means(clip.num_frames, starts, diagonals)),
                  "audio_scores": _json_floats(audio_scores), "visual_scores": _json_floats(visual_scores)}
        extras.update(_representative_map(starts, scores, maps))
        offset = self.estimate_offset(clip, streams) if estimate_offset else None
        extras["audio_offset"] = offset.to_json() if offset else None
        return DetectorOutput(detector=self.name, score=clip_score(scores), window_starts=starts,
                              window_length=length, window_scores=scores,
                              frame_scores=frame_scores_from_windows(clip.num_frames, starts, length, scores),
                              extras=extras, warnings=[offset.warning()] if offset and offset.noticeable else [])

    def estimate_offset(self, clip: ClipFeatures, streams: ClipStreams | None = None) -> AudioOffset | None:
        """The constant audio-video offset of ``clip`` (``None`` if no window is usable);
        ``streams`` are ``clip_streams(clip)`` when the caller already has them."""
        streams = streams if streams is not None else clip_streams(clip)
        starts = window_starts(clip.num_frames, self.window_length, OFFSET_STRIDE)
        starts = starts[self._usable(streams.valid, streams.speech, starts)]
        if not len(starts) or clip.num_frames <= 2 * MAX_OFFSET_FRAMES:
            return None
        if len(starts) > MAX_OFFSET_WINDOWS:
            starts = starts[np.linspace(0, len(starts) - 1, MAX_OFFSET_WINDOWS).round().astype(int)]
        moves = np.arange(-MAX_OFFSET_FRAMES, MAX_OFFSET_FRAMES + 1)
        suspicion = [self._fake_logits(_with_audio_moved(streams, clip, int(move)), starts)[0].mean()
                     for move in moves]
        return best_offset(moves, np.array(suspicion), clip.fps)

    def _fake_logits(self, streams: ClipStreams, starts: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(windows,)`` joint fake logits of the windows at ``starts``, and the auxiliary heads'
        probabilities and audio-visual maps ``(windows, 25, 25)``."""
        length = self.window_length
        logits, audio, visual, av = [], [], [], []
        for begin in range(0, len(starts), self.batch_size):
            part = starts[begin:begin + self.batch_size]
            batch = WindowBatch.stack([streams.window(int(start), length) for start in part],
                                      [(0, 0, 0)] * len(part), ["scored"] * len(part))
            with torch.inference_mode():
                output = self.model(**batch.model_inputs(str(next(self.model.parameters()).device)))
            logits.append((output.joint_logits[:, 1] - output.joint_logits[:, 0]).double().cpu().numpy())
            audio.append(output.audio_logits.softmax(-1)[:, 1].double().cpu().numpy())
            visual.append(output.visual_logits.softmax(-1)[:, 1].double().cpu().numpy())
            av.append(output.av_similarity.double().cpu().numpy())
        empty = np.zeros(0)
        return (np.concatenate(logits) if logits else empty,
                {"audio": np.concatenate(audio) if audio else empty,
                 "visual": np.concatenate(visual) if visual else empty,
                 "av": np.concatenate(av) if av else np.zeros((0, length, length))})

    def _usable(self, valid: np.ndarray, speech: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """``(windows,)`` bool: a whole window that passes EXAM's rule (:func:`window_usable`)."""
        length = self.window_length
        inside = starts + length <= len(valid)
        usable = np.zeros(len(starts), dtype=bool)
        if inside.any():
            index = starts[inside, None] + np.arange(length)
            usable[inside] = window_usable(np.asarray(valid, bool)[index], np.asarray(speech, bool)[index])
        return usable


def _with_audio_moved(streams: ClipStreams, clip: ClipFeatures, shift: int) -> ClipStreams:
    """``streams`` hearing the audio of :func:`shifted_audio` (the face streams are kept, not recomputed)."""
    audio = shifted_audio(clip, shift).audio
    return replace(streams, mel=np.asarray(audio.mel, dtype=np.float32), speech=np.asarray(audio.speech, dtype=bool))


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
