"""Locating and verifying the files the project ships in ``assets/``."""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from .config import ASSETS_DIR
from .errors import InputError

FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
FACE_LANDMARKER_ENV = "EXPOSEANYONE_FACE_LANDMARKER"


def fingerprint(parts: Iterable[bytes]) -> str:
    """The one fingerprint of the project: the sha256 (hex) of ``parts`` read in order.

    A profile records the fingerprints of the weights it was made with (the weights file, see
    :func:`~exposeanyone.detectors.registry.weights_fingerprint`; EXAM's backbone, see
    :func:`~exposeanyone.detectors.exam.detector.backbone_fingerprint`) and is refused when they change.
    """
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def file_sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """The :func:`fingerprint` of a file's bytes."""
    with open(path, "rb") as handle:
        return fingerprint(iter(lambda: handle.read(chunk_bytes), b""))


@lru_cache(maxsize=2)
def _verified(path: Path, expected_sha256: str) -> Path:
    if not path.is_file():
        raise InputError(f"Model file {path} is missing: restore assets/ from the repository "
                         f"or point {FACE_LANDMARKER_ENV} at a copy.")
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise InputError(f"Model file {path} has sha256 {actual[:12]}…, not the expected "
                         f"{expected_sha256[:12]}…: it is corrupted or a different model.")
    return path


def face_landmarker_path() -> Path:
    """The MediaPipe ``face_landmarker.task`` bundle, hash-checked (``EXPOSEANYONE_FACE_LANDMARKER`` overrides)."""
    override = os.environ.get(FACE_LANDMARKER_ENV)
    path = Path(override) if override else ASSETS_DIR / "face_landmarker" / "face_landmarker.task"
    return _verified(path.resolve(), FACE_LANDMARKER_SHA256)


def exam_base_dir() -> Path:
    """The shipped pre-trained EXAM base model folder (``save_pretrained`` layout)."""
    return Path(os.environ.get("EXPOSEANYONE_EXAM_MODEL", ASSETS_DIR / "exam_base"))


def fau_model_dir() -> Path:
    """The shipped FauForensics model folder (``save_pretrained`` layout)."""
    return Path(os.environ.get("EXPOSEANYONE_FAU_MODEL", ASSETS_DIR / "fau"))


def ridge_generic_path() -> Path:
    """The shipped generic ridge baseline (one safetensors file with JSON metadata)."""
    return ASSETS_DIR / "baselines" / "ridge_generic.safetensors"


def whisper_ridge_path() -> Path:
    """The shipped generic Whisper-feature ridge baseline (one safetensors file with JSON metadata)."""
    return ASSETS_DIR / "baselines" / "whisper_ridge.safetensors"
