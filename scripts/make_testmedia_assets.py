"""Regenerate assets/testmedia/astronaut_face.png and its mouth geometry from scikit-image's astronaut.

The photo (Eileen Collins, NASA) is public domain and ships with scikit-image, a dev dependency; the
runtime test-clip generator (exposeanyone.demo.synthetic) reads only the small crop written here.

    .venv/bin/python scripts/make_testmedia_assets.py
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "assets" / "testmedia"
LANDMARKER = REPO / "assets" / "face_landmarker" / "face_landmarker.task"
CROP_BOX = (97, 0, 353, 256)
"""left, top, right, bottom in the 512x512 photo: the face (about 90x105 px) centred, native resolution."""

UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
MOUTH_LEFT, MOUTH_RIGHT, CHIN = 61, 291, 152


def astronaut_crop() -> np.ndarray:
    from skimage import data

    left, top, right, bottom = CROP_BOX
    return np.ascontiguousarray(data.astronaut()[top:bottom, left:right])


def face_landmarks(rgb: np.ndarray) -> np.ndarray:
    """``(478, 2)`` landmark positions as fractions of the image width and height."""
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(LANDMARKER)),
        running_mode=vision.RunningMode.IMAGE, num_faces=1)
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    if not result.face_landmarks:
        raise RuntimeError("MediaPipe found no face in the astronaut crop")
    return np.array([[point.x, point.y] for point in result.face_landmarks[0]])


def mouth_geometry(landmarks: np.ndarray) -> dict[str, float]:
    """Where the synthetic jaw opens, as fractions of the image side."""
    lips_x = (landmarks[UPPER_LIP_INNER, 0] + landmarks[LOWER_LIP_INNER, 0]) / 2
    lips_y = (landmarks[UPPER_LIP_INNER, 1] + landmarks[LOWER_LIP_INNER, 1]) / 2
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    geometry = {
        "mouth_x": lips_x,
        "mouth_y": lips_y,
        "mouth_half_width": (landmarks[MOUTH_RIGHT, 0] - landmarks[MOUTH_LEFT, 0]) / 2,
        "chin_y": landmarks[CHIN, 1],
        "face_left": low[0], "face_top": low[1], "face_right": high[0], "face_bottom": high[1],
    }
    return {name: round(float(value), 4) for name, value in geometry.items()}


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rgb = astronaut_crop()
    Image.fromarray(rgb).save(OUT_DIR / "astronaut_face.png", optimize=True)
    geometry = {"source": "skimage.data.astronaut()", "crop_box": list(CROP_BOX),
                **mouth_geometry(face_landmarks(rgb))}
    (OUT_DIR / "astronaut_face.json").write_text(json.dumps(geometry, indent=2) + "\n")
    print(json.dumps(geometry))


if __name__ == "__main__":
    main()
