"""The expression track of one clip: what the face did, frame by frame.

A :class:`Track` is the tracker's output on the fixed 25 fps timeline. It is plain numpy, saved as an
uncompressed ``.npz`` without pickles, so that caches and user files are safe to read.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..core.errors import InputError

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
"""MediaPipe FaceLandmarker's 52 blendshapes, in the model's index order."""

POSE_NAMES: tuple[str, ...] = ("headPitch", "headYaw", "headRoll", "headX", "headY", "headZ")
"""Head rotation (radians, XYZ Euler angles) and translation (cm, camera space)."""

EXPRESSION_NAMES: tuple[str, ...] = BLENDSHAPE_NAMES + POSE_NAMES
"""The 58 expression channels the detectors model: blendshapes then head pose."""

SPEECH_CHANNELS: tuple[int, ...] = tuple(i for i, name in enumerate(EXPRESSION_NAMES)
                                         if name.startswith(("jaw", "mouth")))
"""Indices of the 27 jaw and mouth channels: the ones speech moves directly."""

N_LANDMARKS = 478
MOUTH_CROP_SIZE = 32
TRACK_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Track:
    """Per-frame face tracking of one clip at ``fps`` frames per second.

    Arrays all share the first axis ``frames``. Frames where no face was usable hold zeros and
    ``valid`` False; frames filled by interpolation across a short gap have ``interpolated`` True.
    """

    fps: float
    blendshapes: np.ndarray
    """``(frames, 52)`` float32 in [0, 1], in :data:`BLENDSHAPE_NAMES` order."""
    pose: np.ndarray
    """``(frames, 6)`` float32, in :data:`POSE_NAMES` order."""
    landmarks: np.ndarray
    """``(frames, 478, 3)`` float16, x and y normalised to the frame size, z relative depth."""
    mouth: np.ndarray
    """``(frames, 32, 32)`` uint8 grey crop around the lips, upright and scaled to the mouth width."""
    valid: np.ndarray
    """``(frames,)`` bool: a face is known for this frame (seen or interpolated)."""
    interpolated: np.ndarray
    """``(frames,)`` bool: this frame's face was filled in across a short gap."""
    frame_size: tuple[int, int] = (0, 0)
    """``(height, width)`` of the frames the tracker saw."""
    max_faces: int = 0
    """The most faces seen in any one frame (more than 1: other people were present)."""
    multi_face_frames: int = 0
    """How many frames showed more than one face."""
    extra: dict = field(default_factory=dict)
    """JSON-serialisable notes from the tracker (options, model hash)."""

    def __post_init__(self) -> None:
        n = len(self.valid)
        for name in ("blendshapes", "pose", "landmarks", "mouth", "interpolated"):
            if len(getattr(self, name)) != n:
                raise InputError(f"Invalid track: '{name}' has {len(getattr(self, name))} frames, expected {n}.")

    @property
    def num_frames(self) -> int:
        return int(len(self.valid))

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps

    @property
    def face_detected_ratio(self) -> float:
        """Share of frames with a face actually seen (interpolated frames do not count)."""
        if self.num_frames == 0:
            return 0.0
        return float(np.mean(self.valid & ~self.interpolated))

    def expressions(self) -> np.ndarray:
        """Blendshapes and head pose side by side: ``(frames, 58)`` float32."""
        return np.concatenate([self.blendshapes, self.pose], axis=1).astype(np.float32)

    def slice(self, start: int, stop: int) -> "Track":
        """The frames ``start:stop`` as a new track."""
        arrays = {name: getattr(self, name)[start:stop] for name in _ARRAY_FIELDS}
        return Track(fps=self.fps, frame_size=self.frame_size, max_faces=self.max_faces,
                     multi_face_frames=self.multi_face_frames, extra=dict(self.extra), **arrays)

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` (no pickles) atomically: a reader never sees half a file."""
        from ..core.storage import atomic_write_bytes

        buffer = io.BytesIO()
        np.savez(buffer, **self.to_arrays())
        atomic_write_bytes(Path(path), buffer.getvalue())

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {"version": TRACK_FORMAT_VERSION, "fps": self.fps, "frame_size": list(self.frame_size),
                "max_faces": self.max_faces, "multi_face_frames": self.multi_face_frames, "extra": self.extra}
        arrays = {name: getattr(self, name) for name in _ARRAY_FIELDS}
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        return arrays

    @classmethod
    def load(cls, path: str | Path) -> "Track":
        """Read a track written by :meth:`save`; anything else raises :class:`InputError`."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta_json"]).decode())
                arrays = {name: np.array(data[name]) for name in _ARRAY_FIELDS}
        except InputError:
            raise
        except Exception as exc:  # any malformed file is the user's problem, said in one sentence
            raise InputError(f"'{Path(path).name}' is not a valid ExposeAnyone track file ({exc}).") from None
        return cls.from_arrays(meta, arrays, name=Path(path).name)

    @classmethod
    def from_arrays(cls, meta: dict, arrays: dict[str, np.ndarray], name: str = "track") -> "Track":
        expected = {"blendshapes": (52,), "pose": (6,), "landmarks": (N_LANDMARKS, 3),
                    "mouth": (MOUTH_CROP_SIZE, MOUTH_CROP_SIZE), "valid": (), "interpolated": ()}
        for key, tail in expected.items():
            if arrays[key].ndim != 1 + len(tail) or arrays[key].shape[1:] != tail:
                raise InputError(f"'{name}' is not a valid track: '{key}' has shape {arrays[key].shape}.")
            if arrays[key].dtype.kind not in "biuf":
                raise InputError(f"'{name}' is not a valid track: '{key}' holds {arrays[key].dtype} values.")
        try:
            fps = float(meta.get("fps", 0))
            frame_size = tuple(int(v) for v in meta.get("frame_size", (0, 0)))
            max_faces, multi_face_frames = int(meta.get("max_faces", 0)), int(meta.get("multi_face_frames", 0))
            extra = dict(meta.get("extra", {}))
        except (AttributeError, TypeError, ValueError, OverflowError):
            raise InputError(f"'{name}' is not a valid track: its metadata is damaged.") from None
        if meta.get("version") != TRACK_FORMAT_VERSION or not (np.isfinite(fps) and fps > 0) or len(frame_size) != 2:
            raise InputError(f"'{name}' is not a valid track: unknown version, frame rate or frame size.")
        with np.errstate(invalid="ignore", over="ignore"):
            blendshapes, pose = arrays["blendshapes"].astype(np.float32), arrays["pose"].astype(np.float32)
            landmarks, mouth = arrays["landmarks"].astype(np.float16), arrays["mouth"].astype(np.uint8)
        for key, values in (("blendshapes", blendshapes), ("pose", pose)):
            if not np.isfinite(values).all():
                raise InputError(f"'{name}' is not a valid track: '{key}' holds NaN or infinite values.")
        return cls(fps=fps, blendshapes=blendshapes, pose=pose, landmarks=landmarks, mouth=mouth,
                   valid=arrays["valid"].astype(bool), interpolated=arrays["interpolated"].astype(bool),
                   frame_size=frame_size, max_faces=max_faces, multi_face_frames=multi_face_frames, extra=extra)


_ARRAY_FIELDS = tuple(f.name for f in fields(Track) if f.type == "np.ndarray")
