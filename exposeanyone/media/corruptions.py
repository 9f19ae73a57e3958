"""The DeeperForensics-1.0 perturbations (levels 1-5), a true JPEG encode and audio noise.

Robustness studies (DeeperForensics-1.0, LipForensics, RealForensics, ExposeAnyone) corrupt the test
videos with seven perturbations at five levels each. This module reproduces them with the reference
parameters (``EndlessSora/DeeperForensics-1.0``, ``perturbation/``) so scores are comparable:

* per-frame corruptions (:class:`FrameCorruptor`) are applied to decoded ``(H, W, 3)`` uint8 RGB frames
  before tracking, in the order of :data:`CORRUPTIONS`;
* ``video`` (H.264 at a CRF) is applied to the whole file (:func:`reencode_h264`);
* ``audio-noise`` is applied to the decoded waveform (:func:`add_audio_noise`).

A corruption is chosen with a spec string such as ``"blur:3,jpeg:2"`` (:func:`parse_corruption_spec`).
Random parts are drawn from a generator seeded by ``(seed, frame index, corruption)``, so a corrupted clip
is reproducible and each frame's output does not depend on which frames were corrupted before it.

Where this implementation departs from the reference, on purpose:

* Colour conversions use exact BT.601 video-range YCbCr in [0, 1] (what the reference computes through
  OpenCV once its value-range quirks cancel out) and round to the nearest grey level, where the reference
  truncates (a bias of up to one level). Saturation scales the chroma around neutral grey, so level 5 is
  exactly grey. Contrast keeps the reference's multiply-then-truncate, which is its definition.
* Block-wise: the reference draws ``(min(H, W) // 256) * p`` blocks, i.e. none under 256 px. Below
  256 px we keep the occluded fraction of a 256 x 256 frame: ``round(p * (min(H, W) / 256) ** 2)``
  blocks, and at least ``p // 16`` (1 to 5). From 256 px up, the reference count.
* ``jpeg`` is the reference's "JPEG compression", which is really pixelation: an ``INTER_LINEAR``
  downscale by 1/p and an ``INTER_LINEAR`` upscale back (OpenCV's default, as in the reference).
  A true JPEG encode is offered separately as ``jpeg-encode``.
"""
from __future__ import annotations

import math
import os
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import cv2
import numpy as np

from ..core.errors import InputError, MediaError

LEVELS = (1, 2, 3, 4, 5)
BLOCK_SIZE = 8
BLOCK_GREY = 128
BLOCK_REFERENCE_SIDE = 256


@dataclass(frozen=True)
class Corruption:
    """One corruption type: how it is named, what each level means, and where it is applied."""

    name: str
    code: str | None
    """The DeeperForensics-1.0 code (``None`` for the two additions that are not part of it)."""
    description: str
    params: tuple[float, ...]
    """The parameter at levels 1..5, in :attr:`unit`."""
    unit: str
    stage: str
    """``"frame"`` (every decoded frame), ``"video"`` (the whole file) or ``"audio"`` (the waveform)."""

    def param(self, level: int) -> float:
        """The parameter at ``level`` (1..5)."""
        return self.params[_check_level(level, repr(self.name)) - 1]


def _registry(*corruptions: Corruption) -> Mapping[str, Corruption]:
    return MappingProxyType({corruption.name: corruption for corruption in corruptions})


CORRUPTIONS: Mapping[str, Corruption] = _registry(
    Corruption(
        "saturation", "CS",
        "Colour saturation: Cb and Cr scaled towards neutral grey in YCbCr (level 5 is greyscale).",
        (0.4, 0.3, 0.2, 0.1, 0.0), "chroma scale", "frame",
    ),
    Corruption(
        "contrast", "CC",
        "Colour contrast: every pixel value multiplied by the factor, then truncated.",
        (0.85, 0.725, 0.6, 0.475, 0.35), "intensity scale", "frame",
    ),
    Corruption(
        "block", "BW",
        "Block-wise: grey 8x8 blocks at random places, p per 256 px of the shorter side "
        "(under 256 px, as many as keep the occluded fraction of a 256x256 frame, at least p // 16).",
        (16, 32, 48, 64, 80), "blocks per 256 px", "frame",
    ),
    Corruption(
        "noise", "GNC",
        "Gaussian noise in colour: white noise of this variance added to YCbCr in [0, 1], then clipped.",
        (0.001, 0.002, 0.005, 0.01, 0.05), "variance", "frame",
    ),
    Corruption(
        "blur", "GB",
        "Gaussian blur with a p x p kernel and sigma = p / 6.",
        (7, 9, 13, 17, 21), "kernel size (px)", "frame",
    ),
    Corruption(
        "jpeg", "JPEG",
        "The reference's 'JPEG compression', which is really pixelation: bilinear downscale by 1/p "
        "and upscale back (no JPEG encode; see jpeg-encode).",
        (2, 3, 4, 5, 6), "downscale factor", "frame",
    ),
    Corruption(
        "jpeg-encode", None,
        "A true JPEG encode and decode of every frame at this quality (not in DeeperForensics).",
        (90, 70, 50, 30, 10), "JPEG quality", "frame",
    ),
    Corruption(
        "video", "VC",
        "Video compression: the whole file re-encoded with H.264 at this constant rate factor.",
        (30, 32, 35, 38, 40), "CRF", "video",
    ),
    Corruption(
        "audio-noise", None,
        "White Gaussian noise added to the audio at this signal-to-noise ratio (not in DeeperForensics).",
        (20, 10, 5, 0, -5), "SNR (dB)", "audio",
    ),
)

_ALIASES = {c.code.lower(): c.name for c in CORRUPTIONS.values() if c.code} | {
    name.replace("-", "_"): name for name in CORRUPTIONS
}


def _check_level(level: int, name: str = "corruption") -> int:
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)) or level not in LEVELS:
        raise InputError(f"The {name} level {level!r} is invalid; use a whole number from 1 to 5.")
    return int(level)


def corruption_name(name: str) -> str:
    """The canonical name for ``name``, a canonical name or DeeperForensics code in any case."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CORRUPTIONS:
        valid = ", ".join(f"{c.name} ({c.code})" if c.code else c.name for c in CORRUPTIONS.values())
        raise InputError(f"Unknown corruption {name.strip()!r}; valid ones are: {valid}.")
    return key


@dataclass(frozen=True)
class CorruptionSpec:
    """A set of corruptions with their levels, at most one level per corruption.

    ``items`` is kept in :data:`CORRUPTIONS` order, which is also the order frames are corrupted in.
    """

    items: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        seen: dict[str, int] = {}
        for name, level in self.items:
            canonical = corruption_name(name)
            if canonical in seen:
                raise InputError(f"Corruption {canonical!r} is given twice; give each one once.")
            seen[canonical] = _check_level(level, repr(canonical))
        order = list(CORRUPTIONS)
        items = tuple(sorted(seen.items(), key=lambda item: order.index(item[0])))
        object.__setattr__(self, "items", items)

    def __str__(self) -> str:
        return ",".join(f"{name}:{level}" for name, level in self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def level(self, name: str) -> int | None:
        """The level of corruption ``name`` (any accepted spelling), or ``None`` when absent."""
        return dict(self.items).get(corruption_name(name))

    @property
    def frame_corruptions(self) -> tuple[tuple[str, int], ...]:
        """The ``(name, level)`` pairs applied to every frame, in application order."""
        return tuple(item for item in self.items if CORRUPTIONS[item[0]].stage == "frame")

    @property
    def video_crf(self) -> int | None:
        """The H.264 CRF to re-encode the file with, or ``None``."""
        level = self.level("video")
        return None if level is None else int(CORRUPTIONS["video"].param(level))

    @property
    def audio_snr_db(self) -> float | None:
        """The SNR in dB of the noise to add to the audio, or ``None``."""
        level = self.level("audio-noise")
        return None if level is None else float(CORRUPTIONS["audio-noise"].param(level))


def parse_corruption_spec(spec: str | None) -> CorruptionSpec:
    """Parse ``"name:level,name:level"`` (e.g. ``"blur:3,jpeg:2"``, ``"GB:5"``); empty or None is none."""
    if spec is None or not spec.strip():
        return CorruptionSpec()
    items = []
    for part in spec.split(","):
        name, sep, level_text = part.partition(":")
        level_text = level_text.strip()
        if not sep or not name.strip() or not level_text.isdigit():
            raise InputError(
                f"Corruption spec {spec!r} is malformed at {part.strip()!r}; "
                "write name:level pairs separated by commas, e.g. 'blur:3,jpeg:2'."
            )
        items.append((name, int(level_text)))
    return CorruptionSpec(tuple(items))


# -- colour space ---------------------------------------------------------------------------------

_KR, _KB = 0.299, 0.114
_KG = 1 - _KR - _KB
_RGB_TO_YUV = np.array(
    [
        [_KR, _KG, _KB],
        [-_KR / (2 - 2 * _KB), -_KG / (2 - 2 * _KB), 0.5],
        [0.5, -_KG / (2 - 2 * _KR), -_KB / (2 - 2 * _KR)],
    ]
)
# Written out rather than inverted numerically so the luma column is exactly 1.
_YUV_TO_RGB = np.array(
    [
        [1.0, 0.0, 2 - 2 * _KR],
        [1.0, -(2 - 2 * _KB) * _KB / _KG, -(2 - 2 * _KR) * _KR / _KG],
        [1.0, 2 - 2 * _KB, 0.0],
    ]
)
_VIDEO_SCALE = np.array([219.0, 224.0, 224.0]) / 255.0
_VIDEO_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float32) / np.float32(255.0)
_TO_YCBCR = np.hstack([_RGB_TO_YUV * _VIDEO_SCALE[:, None] / 255.0, _VIDEO_OFFSET[:, None]])
_FROM_YCBCR = _YUV_TO_RGB * 255.0 / _VIDEO_SCALE[None, :]
NEUTRAL_CHROMA = float(_VIDEO_OFFSET[1])
"""Cb and Cr of grey in video-range YCbCr scaled to [0, 1]."""


def rgb_to_ycbcr(frame: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB to ``(H, W, 3)`` float32 BT.601 video-range YCbCr in [0, 1].

    Y spans [16, 235] / 255 and Cb, Cr span [16, 240] / 255, as in the reference.
    """
    return cv2.transform(frame.astype(np.float32), _TO_YCBCR)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`: ``(H, W, 3)`` float YCbCr to ``(H, W, 3)`` uint8 RGB (rounded, clipped)."""
    return _to_uint8(cv2.transform(np.asarray(ycbcr, dtype=np.float32) - _VIDEO_OFFSET, _FROM_YCBCR))


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# -- per-frame corruptions ------------------------------------------------------------------------


def _saturation(frame: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    # Scaling Cb and Cr around neutral with Y kept is, in RGB, moving every pixel towards its own luma:
    # one 3x3 transform whose rows are identical at scale 0, so level 5 is exactly grey.
    to_luma = np.tile(_RGB_TO_YUV[0], (3, 1))
    mixing = scale * np.eye(3) + (1 - scale) * to_luma
    return _to_uint8(cv2.transform(frame.astype(np.float32), mixing))


def _contrast(frame: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    return (frame.astype(np.float32) * np.float32(factor)).astype(np.uint8)


def block_count(height: int, width: int, level: int) -> int:
    """How many 8x8 grey blocks ``block`` draws on a ``height`` x ``width`` frame at ``level``."""
    return _block_count(height, width, int(CORRUPTIONS["block"].param(level)))


def _block_count(height: int, width: int, per_256: int) -> int:
    side = min(height, width)
    if side >= BLOCK_REFERENCE_SIDE:
        return side // BLOCK_REFERENCE_SIDE * per_256
    return max(per_256 // 16, round(per_256 * (side / BLOCK_REFERENCE_SIDE) ** 2))


def _block(frame: np.ndarray, per_256: float, rng: np.random.Generator) -> np.ndarray:
    height, width = frame.shape[:2]
    count = _block_count(height, width, int(per_256))
    # Upper bounds as in the reference (inclusive randint up to size - 1 - block).
    rows = rng.integers(0, max(height - 1 - BLOCK_SIZE, 0), size=count, endpoint=True)
    cols = rng.integers(0, max(width - 1 - BLOCK_SIZE, 0), size=count, endpoint=True)
    out = frame.copy()
    for row, col in zip(rows, cols):
        out[row : row + BLOCK_SIZE, col : col + BLOCK_SIZE] = BLOCK_GREY
    return out


def _noise(frame: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    # White noise added in YCbCr is, the conversion being linear, that noise mapped to RGB.
    noise = rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(math.sqrt(variance))
    return _to_uint8(frame.astype(np.float32) + cv2.transform(noise, _FROM_YCBCR))


def _blur(frame: np.ndarray, size: float, rng: np.random.Generator) -> np.ndarray:
    size = int(size)
    return cv2.GaussianBlur(frame, (size, size), size / 6)


def _pixelate(frame: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    height, width = frame.shape[:2]
    small = (max(width // int(factor), 1), max(height // int(factor), 1))
    down = cv2.resize(frame, small, interpolation=cv2.INTER_LINEAR)
    return cv2.resize(down, (width, height), interpolation=cv2.INTER_LINEAR)


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """``(H, W, 3)`` uint8 RGB to JPEG bytes at ``quality`` (libjpeg scale, 4:2:0 chroma)."""
    ok, encoded = cv2.imencode(
        ".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise InputError(f"A frame of shape {frame.shape} could not be JPEG-encoded.")
    return encoded.tobytes()


def _jpeg_encode(frame: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    encoded = np.frombuffer(encode_jpeg(frame, int(quality)), dtype=np.uint8)
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])


_FRAME_FUNCTIONS = {
    "saturation": _saturation,
    "contrast": _contrast,
    "block": _block,
    "noise": _noise,
    "blur": _blur,
    "jpeg": _pixelate,
    "jpeg-encode": _jpeg_encode,
}


def _rng(seed: int, index: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, index, zlib.crc32(name.encode())])


def _check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        dtype = getattr(frame, "dtype", type(frame).__name__)
        raise InputError(f"A frame to corrupt must be an (H, W, 3) uint8 RGB array, not {dtype} {shape}.")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"A frame to corrupt must not be empty, got shape {frame.shape}.")


class FrameCorruptor:
    """Applies a spec's per-frame corruptions to decoded frames.

    ``corruptor(frame, index)`` takes an ``(H, W, 3)`` uint8 RGB frame and its index in the clip and
    returns a new ``(H, W, 3)`` uint8 array (the input itself when the spec has no per-frame corruption).
    Block positions and noise are drawn from ``(seed, index, corruption)``, so the output is the same
    whatever order frames are corrupted in. The input frame is never modified.
    """

    def __init__(self, spec: CorruptionSpec | str | None, seed: int = 0) -> None:
        self.spec = spec if isinstance(spec, CorruptionSpec) else parse_corruption_spec(spec)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InputError(f"The corruption seed must be a non-negative whole number, not {seed!r}.")
        self.seed = int(seed)

    def __bool__(self) -> bool:
        return bool(self.spec.frame_corruptions)

    def __repr__(self) -> str:
        return f"FrameCorruptor({str(self.spec)!r}, seed={self.seed})"

    def __call__(self, frame: np.ndarray, index: int) -> np.ndarray:
        _check_frame(frame)
        if index < 0:
            raise InputError(f"A frame index must not be negative, got {index}.")
        for name, level in self.spec.frame_corruptions:
            param = CORRUPTIONS[name].param(level)
            frame = _FRAME_FUNCTIONS[name](frame, param, _rng(self.seed, int(index), name))
        return frame


# -- whole-file and audio corruptions -------------------------------------------------------------


def _ffmpeg_h264(ffmpeg: str, src: Path, dst: Path, crf: int, audio_codec: list[str], timeout_s: float):
    command = [
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(src), "-map", "0:v:0", "-map", "0:a?",
        "-c:v", "libx264", "-crf", str(crf), *audio_codec, str(dst),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)


def reencode_h264(src: Path, dst: Path, crf: int, timeout_s: float = 600.0) -> None:
    """Re-encode the video ``src`` to ``dst`` with H.264 (libx264, default preset) at ``crf``.

    The first video stream is re-encoded and every audio stream is copied; when ``dst``'s container cannot
    hold the source audio codec, the audio is encoded to AAC instead. ``dst`` is written through a temporary
    file, so a failure never leaves a partial file behind.
    """
    import imageio_ffmpeg

    src, dst = Path(src), Path(dst)
    if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= 51:
        raise InputError(f"The H.264 CRF must be a whole number from 0 to 51, not {crf!r}.")
    if not src.is_file():
        raise MediaError(f"The video {src} to re-encode does not exist.")
    if src.resolve() == dst.resolve():
        raise InputError(f"Re-encoding {src} would overwrite it; choose another output path.")
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    try:
        for audio_codec in (["-c:a", "copy"], ["-c:a", "aac"]):
            result = _ffmpeg_h264(ffmpeg, src, partial, int(crf), audio_codec, timeout_s)
            if result.returncode == 0:
                os.replace(partial, dst)
                return
    except subprocess.TimeoutExpired:
        raise MediaError(f"Re-encoding {src.name} took longer than {timeout_s:.0f} s and was stopped.") from None
    finally:
        partial.unlink(missing_ok=True)
    reason = (result.stderr.strip().splitlines() or ["no message"])[-1]
    raise MediaError(f"ffmpeg could not re-encode {src.name} with H.264: {reason}")


def add_audio_noise(audio: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """Add white Gaussian noise to ``audio`` at ``snr_db`` relative to the whole clip's mean power.

    ``audio`` is ``(samples,)`` float; returns a new ``(samples,)`` float32 array, not clipped (so the SNR
    holds; clip before writing to an integer format). Silent audio gets no noise (its SNR is undefined).
    """
    audio = np.asarray(audio)
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        raise InputError(f"Audio to add noise to must be a (samples,) float array, not {audio.dtype} {audio.shape}.")
    if not np.all(np.isfinite(audio)):
        raise InputError("Audio to add noise to contains NaN or infinite samples.")
    if not math.isfinite(snr_db):
        raise InputError(f"The audio SNR must be a finite number of dB, not {snr_db!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"The noise seed must be a non-negative whole number, not {seed!r}.")
    signal_power = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    noise_std = math.sqrt(signal_power / 10 ** (snr_db / 10))
    noise = np.random.default_rng([int(seed), zlib.crc32(b"audio-noise")]).standard_normal(audio.shape)
    return (audio.astype(np.float64) + noise * noise_std).astype(np.float32)
