"""Face tracking with MediaPipe FaceLandmarker: frames in, a :class:`~exposeanyone.media.track.Track` out.

One landmarker per video in VIDEO mode (its tracker carries state between frames and needs strictly
increasing timestamps). Up to two faces are detected so that a second person is noticed; the tracked
person is the largest face at the start and, after that, whichever face continues its path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..core.assets import FACE_LANDMARKER_SHA256, face_landmarker_path
from ..core.config import FPS
from .track import MOUTH_CROP_SIZE, N_LANDMARKS, Track

MAX_GAP_FRAMES = 5
"""Gaps up to this long (0.2 s) are interpolated; longer ones stay invalid."""
MAX_FACES = 2
MOUTH_LEFT, MOUTH_RIGHT, UPPER_LIP, LOWER_LIP = 61, 291, 13, 14
MOUTH_CROP_SCALE = 1.8
"""The mouth crop is this many mouth-widths wide, so lips and chin fit at any distance from the camera."""


@dataclass
class _Face:
    blendshapes: np.ndarray
    pose: np.ndarray
    landmarks: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        return self.landmarks[:, :2].mean(axis=0)

    @property
    def size(self) -> float:
        extent = self.landmarks[:, :2].max(axis=0) - self.landmarks[:, :2].min(axis=0)
        return float(extent.max())


def pose_from_matrix(matrix: np.ndarray) -> np.ndarray:
    """Pitch, yaw, roll (radians) and x, y, z translation (cm) of a 4x4 face transform: ``(6,)``."""
    rotation = matrix[:3, :3]
    pitch = math.atan2(rotation[2, 1], rotation[2, 2])
    yaw = math.asin(float(np.clip(-rotation[2, 0], -1.0, 1.0)))
    roll = math.atan2(rotation[1, 0], rotation[0, 0])
    return np.array([pitch, yaw, roll, *matrix[:3, 3]], dtype=np.float32)


def mouth_crop(grey: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """An upright ``(32, 32)`` uint8 crop centred on the lips and scaled to the mouth width."""
    height, width = grey.shape
    points = landmarks[:, :2] * np.array([width, height])
    left, right = points[MOUTH_LEFT], points[MOUTH_RIGHT]
    centre = (points[UPPER_LIP] + points[LOWER_LIP] + left + right) / 4
    mouth_width = max(float(np.linalg.norm(right - left)), 1.0)
    angle = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    scale = MOUTH_CROP_SIZE / (MOUTH_CROP_SCALE * mouth_width)
    transform = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    transform[:, 2] += MOUTH_CROP_SIZE / 2 - centre
    return cv2.warpAffine(grey, transform, (MOUTH_CROP_SIZE, MOUTH_CROP_SIZE), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)


class FaceTracker:
    """Feeds frames of one video to a fresh FaceLandmarker and collects the tracked person.

    Use as a context manager; call :meth:`add` for each 25 fps frame in order, then :meth:`finish`.
    """

    def __init__(self, fps: float = FPS) -> None:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
            running_mode=vision.RunningMode.VIDEO, num_faces=MAX_FACES,
            output_face_blendshapes=True, output_facial_transformation_matrixes=True)
        self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self.fps = fps
        self._faces: list[_Face | None] = []
        self._mouths: list[np.ndarray] = []
        self._frame_size = (0, 0)
        self._max_faces = 0
        self._multi_face_frames = 0

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc) -> None:
        self._landmarker.close()

    def add(self, rgb: np.ndarray) -> bool:
        """Track one ``(height, width, 3)`` uint8 RGB frame; returns whether the person was found."""
        import mediapipe as mp

        index = len(self._faces)
        self._frame_size = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect_for_video(image, int(round(index * 1000 / self.fps)))
        faces = [_Face(np.array([c.score for c in shapes], dtype=np.float32),
                       pose_from_matrix(np.asarray(matrix)),
                       np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32))
                 for shapes, matrix, points in zip(result.face_blendshapes, result.facial_transformation_matrixes,
                                                   result.face_landmarks)]
        self._max_faces = max(self._max_faces, len(faces))
        self._multi_face_frames += len(faces) > 1
        face = self._pick(faces)
        self._faces.append(face)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if face is not None else None
        self._mouths.append(mouth_crop(grey, face.landmarks) if face is not None
                            else np.zeros((MOUTH_CROP_SIZE, MOUTH_CROP_SIZE), np.uint8))
        return face is not None

    def _pick(self, faces: list[_Face]) -> _Face | None:
        if not faces:
            return None
        previous = next((f for f in reversed(self._faces[-MAX_GAP_FRAMES * 5:]) if f is not None), None)
        if previous is None:
            return max(faces, key=lambda f: f.size)
        # the person continues where they were, at about the size they were
        return min(faces, key=lambda f: float(np.linalg.norm(f.centre - previous.centre))
                   + abs(math.log(f.size / max(previous.size, 1e-6))))

    def finish(self) -> Track:
        """The collected track, with short gaps interpolated."""
        n = len(self._faces)
        seen = np.array([f is not None for f in self._faces], dtype=bool)
        blendshapes = np.zeros((n, 52), np.float32)
        pose = np.zeros((n, 6), np.float32)
        landmarks = np.zeros((n, N_LANDMARKS, 3), np.float32)
        for i, face in enumerate(self._faces):
            if face is not None:
                blendshapes[i], pose[i], landmarks[i] = face.blendshapes, face.pose, face.landmarks
        mouth = np.stack(self._mouths) if n else np.zeros((0, MOUTH_CROP_SIZE, MOUTH_CROP_SIZE), np.uint8)
        filled = short_gaps(seen, MAX_GAP_FRAMES)
        for array in (blendshapes, pose, landmarks):
            interpolate_gaps(array, seen, filled)
        fill_nearest(mouth, seen, filled)
        return Track(fps=self.fps, blendshapes=blendshapes, pose=pose, landmarks=landmarks.astype(np.float16),
                     mouth=mouth, valid=seen | filled, interpolated=filled, frame_size=tuple(self._frame_size),
                     max_faces=self._max_faces, multi_face_frames=self._multi_face_frames,
                     extra={"tracker": "mediapipe-face-landmarker", "model_sha256": FACE_LANDMARKER_SHA256,
                            "max_gap_frames": MAX_GAP_FRAMES})


def short_gaps(seen: np.ndarray, max_gap: int) -> np.ndarray:
    """``(frames,)`` bool: frames inside a run of misses no longer than ``max_gap``, with a face on both sides."""
    filled = np.zeros_like(seen)
    index = np.flatnonzero(seen)
    for before, after in zip(index[:-1], index[1:]):
        if 1 < after - before <= max_gap + 1:
            filled[before + 1:after] = True
    return filled


def interpolate_gaps(values: np.ndarray, seen: np.ndarray, filled: np.ndarray) -> None:
    """Linearly interpolate ``values`` (frames first) in place at the ``filled`` frames."""
    if not filled.any():
        return
    known = np.flatnonzero(seen)
    flat = values.reshape(len(values), -1)
    for column in range(flat.shape[1]):
        flat[filled, column] = np.interp(np.flatnonzero(filled), known, flat[known, column])


def fill_nearest(values: np.ndarray, seen: np.ndarray, filled: np.ndarray) -> None:
    """Copy the nearest seen frame into each ``filled`` frame (images do not interpolate linearly)."""
    known = np.flatnonzero(seen)
    for i in np.flatnonzero(filled):
        values[i] = values[known[np.argmin(np.abs(known - i))]]
