"""Decoding any common container with PyAV onto the fixed 25 fps / 16 kHz timeline.

Frames are streamed (a long file never sits in memory whole); audio is small enough to hold (10 min of
16 kHz mono float32 is 38 MB). Time zero is the start of the video stream, so audio that starts later
than the picture is padded with silence and audio that starts earlier is cut: the two stay aligned.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..core.config import FPS, SAMPLE_RATE, Limits
from ..core.errors import LimitError, MediaError

TRUNCATION_TOLERANCE = 0.9
"""A file whose decodable video is shorter than this share of what its header claims is truncated."""


@dataclass(frozen=True)
class MediaInfo:
    """What a media file holds, read from its headers before any decoding."""

    path: Path
    size_bytes: int
    duration_s: float
    width: int
    height: int
    has_audio: bool
    video_codec: str
    audio_codec: str
    nominal_fps: float

    @property
    def num_frames(self) -> int:
        """Frames on the 25 fps timeline."""
        return max(1, int(math.floor(self.duration_s * FPS + 1e-6)))

    def output_size(self, max_side: int) -> tuple[int, int]:
        """``(width, height)`` after downscaling so the longer side is at most ``max_side`` (even sizes)."""
        scale = min(1.0, max_side / max(self.width, self.height))
        return (max(2, int(self.width * scale) // 2 * 2), max(2, int(self.height * scale) // 2 * 2))


def check_file(path: str | Path, limits: Limits) -> Path:
    """The path as a readable regular file within the size limit, or a one-sentence error."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"'{path.name}' does not exist: check the path.")
    if not path.is_file():
        raise MediaError(f"'{path.name}' is not a file (a folder?): give the path of a video file.")
    size = path.stat().st_size
    if size == 0:
        raise MediaError(f"'{path.name}' is empty (0 bytes): the upload or copy did not complete.")
    if size > limits.max_file_mb * 1e6:
        raise LimitError(f"'{path.name}' is {size / 1e6:.3g} MB, over the {limits.max_file_mb:g} MB limit: "
                         "cut the clip shorter or raise EXPOSEANYONE_MAX_FILE_MB.")
    return path


def probe(path: str | Path, limits: Limits | None = None, require_audio: bool = True) -> MediaInfo:
    """Read a file's headers and check it is a video we can analyse within ``limits``."""
    limits = limits or Limits.from_env()
    path = check_file(path, limits)
    try:
        with av.open(str(path)) as container:
            return _media_info(path, container, limits, require_audio)
    except (MediaError, LimitError):
        raise
    except Exception:
        raise MediaError(f"'{path.name}' is not a video file that can be decoded (unknown format, or truncated).") from None


def _media_info(path: Path, container, limits: Limits, require_audio: bool) -> MediaInfo:
    if not container.streams.video:
        kind = "an audio-only file" if container.streams.audio else "not a video"
        raise MediaError(f"'{path.name}' has no video stream ({kind}): upload a video of the person speaking.")
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        raise MediaError(f"'{path.name}' is a still image, not a video: upload a video of the person speaking.")
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    if require_audio and audio is None:
        raise MediaError(f"'{path.name}' has no audio track: the detectors compare the face with the voice, "
                         "so upload a clip with sound.")
    width, height = int(video.codec_context.width or 0), int(video.codec_context.height or 0)
    if width <= 0 or height <= 0:
        raise MediaError(f"'{path.name}' has a video stream without a picture size: the file is damaged.")
    if width * height > limits.max_pixels:
        raise LimitError(f"'{path.name}' is {width}x{height} pixels, too large to analyse: re-encode it at "
                         "1080p or less.")
    duration = _duration_s(container, video)
    if duration <= 0:
        raise MediaError(f"'{path.name}' has zero length: there is nothing to analyse.")
    if duration > limits.max_duration_s:
        raise LimitError(f"'{path.name}' lasts {duration:.0f} s, over the {limits.max_duration_s:.0f} s limit: "
                         "cut the part to check (or raise EXPOSEANYONE_MAX_DURATION_S).")
    rate = video.average_rate or video.guessed_rate or 0
    return MediaInfo(path=path, size_bytes=path.stat().st_size, duration_s=duration, width=width,
                     height=height, has_audio=audio is not None, video_codec=video.codec_context.name,
                     audio_codec=audio.codec_context.name if audio else "", nominal_fps=float(rate))


def _duration_s(container, video) -> float:
    # the video stream's own length first: a container's duration also counts audio padding
    if video.duration is not None and video.time_base is not None:
        return float(video.duration * video.time_base)
    if video.frames and video.average_rate:
        return float(video.frames / video.average_rate)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _video_start(container) -> float:
    video = container.streams.video[0]
    return float(video.start_time * video.time_base) if video.start_time is not None else 0.0


def iter_frames(info: MediaInfo, max_side: int | None = None) -> Iterator[np.ndarray]:
    """Yield ``(height, width, 3)`` uint8 RGB frames on the 25 fps timeline, ``info.num_frames`` of them.

    Output frame ``k`` shows the last decoded picture whose timestamp is at or before ``k / 25`` s, so a
    30 fps or variable-rate phone clip maps onto the grid without drift. Raises :class:`MediaError` when the
    stream ends well before its declared length (a truncated file).
    """
    width, height = info.output_size(max_side or max(info.width, info.height))
    emitted = 0
    held: np.ndarray | None = None
    try:
        with av.open(str(info.path)) as container:
            start = _video_start(container)
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                time_s = float(frame.pts * frame.time_base) - start
                while held is not None and emitted < info.num_frames and emitted / FPS < time_s - 1e-6:
                    yield held
                    emitted += 1
                if emitted >= info.num_frames:
                    return
                held = frame.to_ndarray(format="rgb24", width=width, height=height)
    except av.error.FFmpegError:
        pass  # a damaged tail: judged by how much was decoded, below
    if held is None:
        raise MediaError(f"'{info.path.name}' contains no decodable video frame: the file is damaged or truncated.")
    if emitted + 1 < TRUNCATION_TOLERANCE * info.num_frames:
        raise MediaError(f"'{info.path.name}' stops after {emitted / FPS:.1f} s of its {info.duration_s:.1f} s: "
                         "the file is truncated (an incomplete download or copy).")
    while emitted < info.num_frames:
        yield held
        emitted += 1


def read_audio(info: MediaInfo) -> np.ndarray:
    """The audio track as ``(samples,)`` float32 mono at 16 kHz, aligned to the video start and length."""
    wanted = int(round(info.num_frames / FPS * SAMPLE_RATE))
    if not info.has_audio:
        return np.zeros(wanted, dtype=np.float32)
    chunks: list[np.ndarray] = []
    try:
        with av.open(str(info.path)) as container:
            video_start = _video_start(container)
            stream = container.streams.audio[0]
            audio_start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError:
        pass  # keep what decoded; a damaged video is reported by iter_frames
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    offset = int(round((audio_start - video_start) * SAMPLE_RATE))
    audio = np.pad(audio, (offset, 0)) if offset > 0 else audio[-offset:]
    audio = np.nan_to_num(audio[:wanted], nan=0.0, posinf=0.0, neginf=0.0)
    return np.pad(audio, (0, wanted - len(audio))).clip(-1.0, 1.0)
