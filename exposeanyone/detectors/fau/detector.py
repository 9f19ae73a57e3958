"""FauForensics as a detector: is the face consistent with the voice, second by second?

It needs no enrollment: one model, trained once, scores anyone. :meth:`FauDetector.enroll` therefore
returns an empty :class:`PersonModel` rather than raising, so that code which enrolls every detector
for a person keeps working; :meth:`FauDetector.score` ignores ``person``.

A window's score compares the joint head's fake logit with the clip's own audio against its mean
with the audio moved by 1-2.6 s either way (:mod:`~exposeanyone.detectors.audio_reference`), the own audio and
each moved one taken at their best alignment within 2 frames: how much *less* the face matches its own
soundtrack than a soundtrack it did not make. Genuine speech scores well below 0;
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
- ``audio_offset``: the constant audio-video offset (:mod:`~exposeanyone.detectors.fau.av_offset`): the audio move
  within +-10 frames at which the windows look most genuine, with a warning when it is noticeable;
- ``audio_scores`` / ``visual_scores``: ``(windows,)`` the auxiliary heads' fake probabilities.

The model hears the audio features it was trained on (``model.config.audio_features``: the Whisper-base
encoder's ``clip.audio.encoded``, or the log-mel ``clip.audio.mel`` of older models); moving the audio
moves either alike.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...core.assets import fau_model_dir
from ...core.config import torch_device
from ...core.errors import InputError
from ...core.jsonable import json_floats
from ...core.progress import ProgressFn, no_progress
from ...media.clip import ClipFeatures
from ..audio_inputs import clip_audio
from ..audio_reference import reference_shifts, shifted_audio
from ..base import Calibration, DetectorOutput, PersonModel
from ..windows import frame_scores_from_windows, usable_windows, window_starts, windowed_output
from .av_offset import MAX_OFFSET_FRAMES, AudioOffset, best_offset
from .model import FauForensicsModel
from .streams import ClipStreams, clip_streams

DEFAULT_STRIDE = 5
OFFSET_STRIDE = 10
"""Frames between the windows used to estimate the audio offset: 21 audio moves on every other scoring
window keep it to about 1 s of CPU per 10 s of clip. Artificial +-5-frame moves of 25 avdata clips moved
the estimate by the same amount (within a frame) in 48 of 50 cases."""
MAX_OFFSET_WINDOWS = 60
"""At most this many windows (spread over the clip) for the offset: a constant offset shows in any
minute of speech, and a 10-minute clip would otherwise cost about 2 minutes of CPU."""
FAU_REFERENCE_SHIFTS = (-65, -50, -35, -25, 25, 35, 50, 65)
"""Audio moves (frames) of the reference "speech this face did not make": eight moves of 1-2.6 s
average out more of one move's chance agreement than EXAM's four (see ``benchmarks/validation.py``)."""
ALIGNMENT_TOLERANCE_FRAMES = 2
"""The own audio and every moved one are each taken at their best alignment within this many frames
(80 ms) of their nominal move, alike, so that a constant offset of a frame or two, common in
re-encoded footage, does not make genuine speech look dubbed. On the persons' reference footage
(``benchmarks/validation.py``, never the test clips) the dubbing AUC went from 0.93 (no tolerance,
four moves) to 0.97."""
CALIBRATION_FILE = "calibration.json"
"""Beside the weights: the threshold at a stated false-alarm rate on held-out genuine clips."""


class FauDetector:
    """Audio-visual consistency detector (no enrollment; higher score = more likely fake).

    Args:
        model: a trained :class:`FauForensicsModel`.
        stride: frames between consecutive 1 s windows.
        batch_size: windows per forward pass (results do not depend on it).
        calibration: a threshold to use instead of 0 (``calibration.json`` beside the weights).
        alignment_tolerance: frames either way within which the own and the moved audio are each
            taken at their best alignment (:data:`ALIGNMENT_TOLERANCE_FRAMES`).
    """

    name = "fau"
    requires_enrollment = False

    def __init__(self, model: FauForensicsModel, stride: int = DEFAULT_STRIDE, batch_size: int = 64,
                 calibration: dict | None = None, alignment_tolerance: int = ALIGNMENT_TOLERANCE_FRAMES):
        if stride < 1:
            raise InputError(f"The FauForensics window stride must be at least 1 frame, got {stride}.")
        self.model = model.eval()
        self.stride = int(stride)
        self.batch_size = int(batch_size)
        self.window_length = int(model.config.num_frames)
        self.calibration = dict(calibration or {})
        self.alignment_tolerance = int(alignment_tolerance)

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

    @property
    def audio_features(self) -> str:
        """The kind of audio features the model hears (``"whisper-base"`` or ``"log-mel"``)."""
        return str(self.model.config.audio_features)

    def streams(self, clip: ClipFeatures) -> ClipStreams:
        """``clip`` as the model reads it, with the audio features of the model's kind."""
        return clip_streams(clip, audio_features=self.audio_features)

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
        offset search (about half a second per 10 s of clip) where only the scores are wanted."""
        length = self.window_length
        streams = self.streams(clip)
        starts = window_starts(clip.num_frames, length, self.stride)
        chosen = np.flatnonzero(self.usable(streams, starts))
        moves = AudioMoves(self, streams, clip, starts[chosen])
        search = moves.subset(MAX_OFFSET_WINDOWS)
        shifts = reference_shifts(clip.num_frames, FAU_REFERENCE_SHIFTS)
        scores, probability = np.full(len(starts), np.nan), np.full(len(starts), np.nan)
        audio_scores, visual_scores = np.full(len(starts), np.nan), np.full(len(starts), np.nan)
        diagonals = np.full((len(starts), length), np.nan)
        if len(chosen) and shifts:
            tolerance = self.alignment_tolerance
            own = moves.logits(search.best_move_near(0, tolerance))
            references = [moves.logits(search.best_move_near(shift, tolerance)) for shift in shifts]
            scores[chosen] = own - np.mean(references, axis=0)
        outputs = moves.outputs()
        if len(chosen):
            probability[chosen] = 1.0 / (1.0 + np.exp(-moves.logits(0)))
            audio_scores[chosen], visual_scores[chosen] = outputs["audio"], outputs["visual"]
            diagonals[chosen] = np.diagonal(outputs["av"], axis1=1, axis2=2)
        maps = {int(i): matrix for i, matrix in zip(chosen, outputs["av"])}
        extras = {"stride": self.stride, "audio_shifts": shifts, "alignment_tolerance": self.alignment_tolerance,
                  "fake_probability": json_floats(probability),
                  "av_consistency": json_floats(frame_scores_from_windows(clip.num_frames, starts, length, diagonals)),
                  "audio_scores": json_floats(audio_scores), "visual_scores": json_floats(visual_scores)}
        extras.update(_representative_map(starts, scores, maps))
        offset = self.estimate_offset(clip, moves) if estimate_offset else None
        extras["audio_offset"] = offset.to_json() if offset else None
        return windowed_output(self.name, clip.num_frames, starts, length, scores, extras=extras,
                               warnings=[offset.warning()] if offset and offset.noticeable else [])

    def estimate_offset(self, clip: ClipFeatures, scored: "AudioMoves | None" = None) -> AudioOffset | None:
        """The constant audio-video offset of ``clip`` (``None`` if no window is usable); ``scored``, the
        clip's windows as :meth:`score` read them, lends the faces it has already encoded."""
        streams = scored.streams if scored is not None else self.streams(clip)
        starts = window_starts(clip.num_frames, self.window_length, OFFSET_STRIDE)
        starts = _spread(starts[self.usable(streams, starts)], MAX_OFFSET_WINDOWS)
        if not len(starts) or clip.num_frames <= 2 * MAX_OFFSET_FRAMES:
            return None
        search = scored.on(starts) if scored is not None else AudioMoves(self, streams, clip, starts)
        moves = np.arange(-MAX_OFFSET_FRAMES, MAX_OFFSET_FRAMES + 1)
        return best_offset(moves, np.array([search.logits(int(move)).mean() for move in moves]), clip.fps)

    def encode_visual(self, streams: ClipStreams, starts: np.ndarray) -> torch.Tensor:
        """``(windows, 25, width)`` the face of the windows at ``starts``, as the model reads it."""
        length = self.window_length
        device = next(self.model.parameters()).device
        encoded = []
        for begin in range(0, len(starts), self.batch_size):
            index = starts[begin:begin + self.batch_size, None] + np.arange(length)
            with torch.inference_mode():
                encoded.append(self.model.encode_visual(
                    torch.from_numpy(streams.action_units[index].astype(np.float32)).to(device),
                    torch.from_numpy(streams.mouth[index].astype(np.float32) / 255.0).to(device)))
        return torch.cat(encoded) if encoded else torch.zeros((0, length, self.model.config.width), device=device)

    def fake_logits(self, audio_features: np.ndarray, starts: np.ndarray, visual: torch.Tensor
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(windows,)`` joint fake logits of the faces ``visual`` (:meth:`encode_visual`) heard with the
        windows at ``starts`` of ``audio_features`` ``(frames * rows, channels)`` (the model's kind:
        ``(frames, 512)`` Whisper-base or ``(frames * 4, 80)`` log-mel), and the auxiliary heads'
        probabilities and audio-visual maps ``(windows, 25, 25)``."""
        length = self.window_length
        rows = int(self.model.config.mel_per_frame)
        device = visual.device
        logits, audio, visual_fake, av = [], [], [], []
        for begin in range(0, len(starts), self.batch_size):
            index = starts[begin:begin + self.batch_size, None] * rows + np.arange(length * rows)
            with torch.inference_mode():
                heard = torch.from_numpy(audio_features[index]).to(device)
                output = self.model.classify(self.model.encode_audio(heard), visual[begin:begin + self.batch_size])
            logits.append((output.joint_logits[:, 1] - output.joint_logits[:, 0]).double().cpu().numpy())
            audio.append(output.audio_logits.softmax(-1)[:, 1].double().cpu().numpy())
            visual_fake.append(output.visual_logits.softmax(-1)[:, 1].double().cpu().numpy())
            av.append(output.av_similarity.double().cpu().numpy())
        empty = np.zeros(0)
        return (np.concatenate(logits) if logits else empty,
                {"audio": np.concatenate(audio) if audio else empty,
                 "visual": np.concatenate(visual_fake) if visual_fake else empty,
                 "av": np.concatenate(av) if av else np.zeros((0, length, length))})

    def usable(self, streams: ClipStreams, starts: np.ndarray) -> np.ndarray:
        """``(windows,)`` bool: the shared rule (:func:`usable_windows`), for whole windows only (the model
        reads every frame of a window, so one running past the clip's end is not scored)."""
        inside = starts + self.window_length <= streams.num_frames
        return usable_windows(streams.valid, streams.speech, starts, self.window_length) & inside


class AudioMoves:
    """One clip's windows heard with its audio moved by any number of frames: the face is encoded once
    (it is most of the model's cost) and each move's logits are kept once computed (the heads'
    probabilities and maps only for the clip as it is, move 0, since a long clip's maps are large)."""

    def __init__(self, detector: FauDetector, streams: ClipStreams, clip: ClipFeatures, starts: np.ndarray,
                 visual: torch.Tensor | None = None):
        self.detector, self.streams, self.clip, self.starts = detector, streams, clip, starts
        self.visual = visual if visual is not None else detector.encode_visual(streams, starts)
        self._logits: dict[int, np.ndarray] = {}
        self._outputs: dict[str, np.ndarray] | None = None

    def subset(self, max_windows: int) -> "AudioMoves":
        """The same clip on at most ``max_windows`` of its windows, spread over it (itself if it has no more)."""
        return self if len(self.starts) <= max_windows else self.on(_spread(self.starts, max_windows))

    def on(self, starts: np.ndarray) -> "AudioMoves":
        """The same clip on the windows at ``starts``, reusing the faces already encoded here."""
        position = {int(start): i for i, start in enumerate(self.starts)}
        if not all(int(start) in position for start in starts):
            return AudioMoves(self.detector, self.streams, self.clip, starts)
        return AudioMoves(self.detector, self.streams, self.clip, starts,
                          self.visual[[position[int(start)] for start in starts]])

    def logits(self, move: int) -> np.ndarray:
        """``(windows,)`` joint fake logits with the audio moved by ``move`` frames (:func:`shifted_audio`)."""
        if move not in self._logits:
            audio = (self.streams.audio if move == 0
                     else clip_audio(shifted_audio(self.clip, move), self.streams.audio_features)[0])
            self._logits[move], outputs = self.detector.fake_logits(audio, self.starts, self.visual)
            if move == 0:
                self._outputs = outputs
        return self._logits[move]

    def outputs(self) -> dict[str, np.ndarray]:
        """The auxiliary heads' probabilities and the audio-visual maps with the clip's own audio."""
        self.logits(0)
        return self._outputs

    def best_move_near(self, centre: int, tolerance: int) -> int:
        """The move within ``tolerance`` frames of ``centre`` at which the windows look most genuine."""
        candidates = range(centre - tolerance, centre + tolerance + 1)
        return min(candidates, key=lambda move: (float(np.mean(self.logits(move))), abs(move - centre)))


def _spread(starts: np.ndarray, max_windows: int) -> np.ndarray:
    """At most ``max_windows`` of ``starts``, evenly spread over them."""
    if len(starts) <= max_windows:
        return starts
    return starts[np.linspace(0, len(starts) - 1, max_windows).round().astype(int)]


def _representative_map(starts: np.ndarray, scores: np.ndarray, maps: dict[int, np.ndarray]) -> dict:
    """The audio-visual map of the usable window whose score is closest to the median (None if no window was usable)."""
    if not maps:
        return {"av_similarity": None, "av_similarity_start": None}
    indices = np.array(sorted(maps))
    median = np.median(scores[indices])
    index = int(indices[np.argmin(np.abs(scores[indices] - median))])
    return {"av_similarity": np.round(maps[index], 5).tolist(), "av_similarity_start": int(starts[index])}
