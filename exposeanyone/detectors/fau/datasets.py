"""Labelled audio-visual deepfake datasets in their released layouts, for supervised FauForensics training.

Neither dataset ships with the project (both need the authors' agreement); a user who has one points
these readers at its root folder.

- **FakeAVCeleb** v1.2: ``<root>/meta_data.csv``. Its header reads
  ``source,target1,target2,method,category,type,race,gender,path,`` but every row has one more value
  than the named columns: the 9th field is the file name and the 10th, unnamed, is the folder
  (``FakeAVCeleb/<type>/<race>/<gender>/<source>``, relative to the folder that holds ``root``). The
  ``type`` field says which modality is fake (``RealVideo-RealAudio``, ``FakeVideo-RealAudio``,
  ``RealVideo-FakeAudio``, ``FakeVideo-FakeAudio``); labels apply to the whole video.
- **LAV-DF**: ``<root>/metadata.json`` (or ``metadata.min.json``), a list of objects with ``file``
  (``<split>/<id>.mp4``), ``split`` (``train``/``dev``/``test``), ``modify_video``, ``modify_audio``,
  ``n_fakes`` and ``fake_periods`` (``[[start_s, end_s], ...]``: only these segments are fake).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...core.config import FPS
from ...core.errors import InputError
from .pseudo_fakes import LabelledWindows
from .streams import FAU_WINDOW_FRAMES, ClipStreams

FAKEAVCELEB_TYPES = {
    "RealVideo-RealAudio": (0, 0),
    "FakeVideo-RealAudio": (0, 1),
    "RealVideo-FakeAudio": (1, 0),
    "FakeVideo-FakeAudio": (1, 1),
}
"""FakeAVCeleb ``type`` -> ``(label_audio, label_video)``."""
LAVDF_SPLITS = ("train", "dev", "test")
MIN_FAKE_OVERLAP_FRAMES = 5
"""A window counts as fake when at least this many of its frames (0.2 s) lie in a fake period."""


@dataclass(frozen=True)
class LabelledVideo:
    """One video of a labelled dataset."""

    path: Path
    label: int
    """1 when anything in the video is fake."""
    label_audio: int
    """1 when the audio was manipulated."""
    label_video: int
    """1 when the face was manipulated."""
    fake_periods: tuple[tuple[float, float], ...] | None = None
    """Fake segments in seconds; ``None`` when the labels hold for the whole video (FakeAVCeleb)."""
    dataset: str = ""
    identity: str = ""
    """The person shown (FakeAVCeleb ``source``; LAV-DF: the original video's id)."""
    method: str = ""
    """How the fake was made (FakeAVCeleb ``method``); '' when unknown."""
    split: str = ""

    def window_labels(self, start_frame: int, length: int = FAU_WINDOW_FRAMES, fps: float = FPS
                      ) -> tuple[int, int, int] | None:
        """``(label, label_audio, label_video)`` of the window ``start_frame:start_frame+length``.

        ``None`` when the window only grazes a fake period (fewer than
        :data:`MIN_FAKE_OVERLAP_FRAMES` fake frames): neither label would be true.
        """
        if self.fake_periods is None or not self.label:
            return self.label, self.label_audio, self.label_video
        window_start, window_stop = start_frame / fps, (start_frame + length) / fps
        overlap_s = sum(max(0.0, min(window_stop, stop) - max(window_start, start))
                        for start, stop in self.fake_periods)
        overlap_frames = overlap_s * fps
        if overlap_frames >= min(MIN_FAKE_OVERLAP_FRAMES, length) - 1e-6:
            return 1, self.label_audio, self.label_video
        if overlap_frames <= 1e-6:
            return 0, 0, 0
        return None


def read_fakeavceleb(root: str | Path) -> list[LabelledVideo]:
    """Every video listed in FakeAVCeleb's ``meta_data.csv`` under ``root``."""
    root = Path(root)
    metadata = root / "meta_data.csv"
    if not metadata.is_file():
        raise InputError(f"'{root}' is not a FakeAVCeleb folder: it has no meta_data.csv.")
    videos = []
    with open(metadata, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if header[:6] != ["source", "target1", "target2", "method", "category", "type"]:
            raise InputError(f"'{metadata}' does not have FakeAVCeleb's header (source,target1,...,type,...).")
        for line, fields in enumerate(reader, start=2):
            if not any(field.strip() for field in fields):
                continue
            videos.append(_fakeavceleb_row(root, [field.strip() for field in fields], line))
    return videos


def _fakeavceleb_row(root: Path, fields: list[str], line: int) -> LabelledVideo:
    if len(fields) < 10:
        raise InputError(f"meta_data.csv line {line} has {len(fields)} fields; FakeAVCeleb rows have 10 "
                         "(source, target1, target2, method, category, type, race, gender, file, folder).")
    source, _, _, method, _, kind, _, _, file_name, folder = fields[:10]
    if kind not in FAKEAVCELEB_TYPES:
        raise InputError(f"meta_data.csv line {line}: unknown type '{kind}'; "
                         f"expected one of {', '.join(FAKEAVCELEB_TYPES)}.")
    label_audio, label_video = FAKEAVCELEB_TYPES[kind]
    return LabelledVideo(path=_fakeavceleb_path(root, folder, file_name), label=int(label_audio or label_video),
                         label_audio=label_audio, label_video=label_video, fake_periods=None,
                         dataset="FakeAVCeleb", identity=source, method=method)


def _fakeavceleb_path(root: Path, folder: str, file_name: str) -> Path:
    """The folder field starts with the dataset's own top folder name, which ``root`` already is."""
    parts = Path(folder).parts
    candidates = [root / folder / file_name]
    if len(parts) > 1:
        candidates.insert(0, root.joinpath(*parts[1:]) / file_name)
    return next((path for path in candidates if path.exists()), candidates[0])


def read_lavdf(root: str | Path, split: str | None = None) -> list[LabelledVideo]:
    """The videos of LAV-DF's ``split`` (``train``, ``dev``, ``test``; ``None`` for all) under ``root``."""
    root = Path(root)
    if split is not None and split not in LAVDF_SPLITS:
        raise InputError(f"LAV-DF split must be one of {', '.join(LAVDF_SPLITS)}, got '{split}'.")
    metadata = next((root / name for name in ("metadata.json", "metadata.min.json") if (root / name).is_file()), None)
    if metadata is None:
        raise InputError(f"'{root}' is not a LAV-DF folder: it has no metadata.json.")
    try:
        entries = json.loads(metadata.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"'{metadata}' is not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    if not isinstance(entries, list):
        raise InputError(f"'{metadata}' must hold a list of videos.")
    return [_lavdf_entry(root, entry, index) for index, entry in enumerate(entries)
            if split is None or entry.get("split") == split]


def _lavdf_entry(root: Path, entry: dict, index: int) -> LabelledVideo:
    try:
        periods = tuple((float(start), float(stop)) for start, stop in entry.get("fake_periods") or [])
        label_audio, label_video = int(bool(entry["modify_audio"])), int(bool(entry["modify_video"]))
        path = root / str(entry["file"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"LAV-DF metadata entry {index} lacks 'file', 'modify_audio', 'modify_video' "
                         f"or a valid 'fake_periods' ({exc}).") from None
    label = int(bool(periods) or label_audio or label_video)
    return LabelledVideo(path=path, label=label, label_audio=label_audio, label_video=label_video,
                         fake_periods=periods, dataset="LAV-DF", split=str(entry.get("split", "")),
                         identity=Path(str(entry.get("original") or entry["file"])).stem)


class SupervisedSampler:
    """Windows of labelled videos with their labels (windows that only graze a fake period are skipped).

    Args:
        pairs: ``(streams, video)``: a clip's model streams and its dataset labels.
    """

    def __init__(self, pairs: Sequence[tuple[ClipStreams, LabelledVideo]], length: int = FAU_WINDOW_FRAMES):
        self.length = length
        self.clips = [streams for streams, _ in pairs]
        clip_index, starts, labels = [], [], []
        for index, (streams, video) in enumerate(pairs):
            for start in streams.usable_starts(length):
                window_labels = video.window_labels(int(start), length)
                if window_labels is not None:
                    clip_index.append(index)
                    starts.append(int(start))
                    labels.append(window_labels)
        if not starts:
            raise InputError("No labelled video has a 1 s window with a face and speech to train on.")
        self.clip_index = np.asarray(clip_index, dtype=np.int32)
        self.window_starts = np.asarray(starts, dtype=np.int32)
        self.window_labels = np.asarray(labels, dtype=np.int8).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.window_starts)

    def sample(self, rng: np.random.Generator, batch_size: int) -> LabelledWindows:
        """``batch_size`` windows, drawn uniformly over all labelled windows."""
        picks = rng.integers(0, len(self), size=batch_size)
        windows = [self.clips[self.clip_index[p]].window(int(self.window_starts[p]), self.length) for p in picks]
        labels = [tuple(int(v) for v in self.window_labels[p]) for p in picks]
        kinds = ["supervised_fake" if label[0] else "supervised_real" for label in labels]
        return LabelledWindows.stack(windows, labels, kinds)
