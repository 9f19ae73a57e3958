"""An annotated copy of a checked clip: the verdict and a per-frame score strip burned into the video.

A banner at the foot of the picture gives the verdict; the strip under the picture shows the score over the whole clip (red where it is above the person's
threshold, the threshold as a dashed line) with a white cursor at the current frame, so the copy can be
watched, shared or filed without the app. Frames are decoded with the project's reader (the same 25 fps
grid as the scores), written with moviepy, and the original audio is muxed back with ffmpeg, because
moviepy's audio reading is unreliable (see the feasibility notes).
"""
from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import cv2
import imageio_ffmpeg
import numpy as np

from ..core.config import FPS
from ..core.errors import MediaError
from ..core.progress import ProgressFn, no_progress
from ..media.decode import iter_frames, probe
from ..report import ScoreReport

MAX_SIDE_PX = 640
"""The copy is downscaled to this longer side: it is for viewing, not for analysis."""
MIN_SIDE_PX = 480
"""Smaller videos are upscaled to this longer side, so the burned-in text stays legible."""
STRIP_HEIGHT_FRACTION = 0.22
BANNER_HEIGHT_FRACTION = 0.09
VERDICT_COLOURS = {"real": (46, 160, 67), "fake": (214, 39, 40), "inconclusive": (150, 150, 150)}
"""RGB."""
CURVE_COLOUR = (235, 235, 235)
ABOVE_COLOUR = (214, 39, 40)
THRESHOLD_COLOUR = (255, 200, 60)
CURSOR_COLOUR = (255, 255, 255)
BACKGROUND = (24, 24, 28)


def annotate_video(video: str | Path, report: ScoreReport, out_path: str | Path, *,
                   max_side: int = MAX_SIDE_PX, progress: ProgressFn = no_progress) -> Path:
    """Write ``video`` with the verdict banner and the score strip to ``out_path`` (H.264 + AAC mp4).

    Raises:
        MediaError: the video cannot be decoded, or its length does not match the report's.
    """
    from moviepy import VideoClip

    info = probe(video, require_audio=False)
    if abs(info.num_frames - len(report.frame_scores)) > 2:
        raise MediaError(f"'{info.path.name}' has {info.num_frames} frames but the report covers "
                         f"{len(report.frame_scores)}: annotate the clip the report was made from.")
    width, height = _output_size(info.width, info.height, max_side)
    strip_height = _even(max(40, round(height * STRIP_HEIGHT_FRACTION)))
    strip = score_strip(report, width, strip_height)
    banner = verdict_banner(report, width, _even(max(24, round(height * BANNER_HEIGHT_FRACTION))))
    frames = len(report.frame_scores)

    def compose(picture: np.ndarray, index: int) -> np.ndarray:
        if picture.shape[:2] != (height, width):
            picture = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
        frame = np.concatenate([picture, strip], axis=0)
        frame[height - banner.shape[0]:height] = banner  # at the bottom: players overlay labels at the top
        cursor = round((index + 0.5) / frames * (width - 1))
        frame[height:, max(0, cursor - 1):cursor + 1] = CURSOR_COLOUR
        if index % FPS == 0:
            progress(0.9 * index / frames, f"writing the annotated copy: {index / FPS:.0f} s")
        return frame

    out_path = Path(out_path)
    silent = out_path.with_name(f".{out_path.stem}.silent.mp4")
    reader = SequentialFrames(iter_frames(info, max_side), frames, compose)
    clip = VideoClip(frame_function=reader, duration=frames / FPS).with_fps(FPS)
    try:
        clip.write_videofile(str(silent), fps=FPS, codec="libx264", audio=False, preset="veryfast",
                             pixel_format="yuv420p", logger=None)
        progress(0.95, "adding the original sound")
        _mux_audio(silent, info.path if info.has_audio else None, out_path)
    finally:
        clip.close()
        silent.unlink(missing_ok=True)
    progress(1.0, "annotated copy written")
    return out_path


class SequentialFrames:
    """A moviepy frame function over a frame iterator, for writers that ask for times in order.

    moviepy asks for a frame by time; decoding is sequential, so this keeps the iterator's position and
    advances it to the frame at ``t`` (asking again for an earlier time gives the current frame).
    """

    def __init__(self, frames: Iterator[np.ndarray], count: int,
                 compose: Callable[[np.ndarray, int], np.ndarray]) -> None:
        self._frames, self._count, self._compose = frames, count, compose
        self._index, self._picture = -1, None

    def __call__(self, t: float) -> np.ndarray:
        wanted = min(self._count - 1, max(0, int(round(t * FPS))))
        while self._index < wanted:
            try:
                self._picture = next(self._frames)
            except StopIteration:
                break
            self._index += 1
        if self._picture is None:
            raise MediaError("The video has no decodable frame to annotate.")
        return self._compose(self._picture, max(0, self._index))


def score_strip(report: ScoreReport, width: int, height: int) -> np.ndarray:
    """``(height, width, 3)`` uint8: the per-frame score over the clip, threshold dashed, red above it."""
    strip = np.empty((height, width, 3), np.uint8)
    strip[:] = BACKGROUND
    scores = np.array([np.nan if v is None else v for v in report.frame_scores], dtype=float)
    finite = scores[np.isfinite(scores)]
    threshold = report.threshold if math.isfinite(report.threshold) else None
    if len(finite) == 0:
        cv2.putText(strip, "no part of the clip could be scored", (6, height // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, CURVE_COLOUR, 1, cv2.LINE_AA)
        return strip
    low, high = float(finite.min()), float(finite.max())
    if threshold is not None:
        low, high = min(low, threshold), max(high, threshold)
    if high - low < 1e-6:  # a flat curve is drawn across the middle, not along the bottom edge
        low, high = low - 0.5, high + 0.5
    span = high - low
    margin = 4

    def to_y(value: float) -> int:
        return int(round(height - margin - (value - low) / span * (height - 2 * margin)))

    columns = np.clip(((np.arange(len(scores)) + 0.5) / len(scores) * width).astype(int), 0, width - 1)
    points = [(int(x), to_y(v)) for x, v in zip(columns, scores) if math.isfinite(v)]
    if threshold is not None:
        for x, value in zip(columns, scores):
            if math.isfinite(value) and value > threshold:
                strip[to_y(value):to_y(threshold), x] = ABOVE_COLOUR
        y = to_y(threshold)
        for x in range(0, width, 8):
            strip[max(0, y):y + 1, x:x + 4] = THRESHOLD_COLOUR
    if len(points) > 1:
        cv2.polylines(strip, [np.array(points, np.int32)], False, CURVE_COLOUR, 1, cv2.LINE_AA)
    label = 0.4
    cv2.putText(strip, "score per frame", (4, 13), cv2.FONT_HERSHEY_SIMPLEX, label, CURVE_COLOUR, 1, cv2.LINE_AA)
    if threshold is not None:
        cv2.putText(strip, "threshold", (width - 72, max(12, to_y(threshold) - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    label, THRESHOLD_COLOUR, 1, cv2.LINE_AA)
    return strip


def verdict_banner(report: ScoreReport, width: int, height: int) -> np.ndarray:
    """``(height, width, 3)`` uint8: the verdict, score and threshold on the verdict's colour."""
    banner = np.empty((height, width, 3), np.uint8)
    banner[:] = VERDICT_COLOURS.get(report.verdict, VERDICT_COLOURS["inconclusive"])
    score = f"{report.score:.3f}" if math.isfinite(report.score) else "n/a"
    threshold = f"{report.threshold:.3f}" if math.isfinite(report.threshold) else "n/a"
    text = f"{report.verdict.upper()}  score {score}  threshold {threshold}  ({report.detector})"
    scale = height / 40
    text_width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0]
    scale *= min(1.0, (width - 12) / max(1, text_width))  # shrink to fit narrow (portrait) videos
    cv2.putText(banner, text, (6, int(height * 0.7)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                max(1, round(scale * 1.5)), cv2.LINE_AA)
    return banner


def _mux_audio(video_only: Path, audio_source: Path | None, out_path: Path) -> None:
    if audio_source is None:
        video_only.replace(out_path)
        return
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-i", str(video_only), "-i", str(audio_source),
               "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k", "-shortest",
               "-movflags", "+faststart", str(out_path)]
    result = subprocess.run(command, capture_output=True, timeout=600)
    if result.returncode != 0:
        raise MediaError(f"The annotated copy could not get its sound back from '{audio_source.name}' "
                         f"(ffmpeg: {result.stderr.decode(errors='replace').strip()[:200]}).")


def _output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    longer = min(max_side, max(MIN_SIDE_PX, width, height))
    scale = longer / max(width, height)
    return _even(round(width * scale)), _even(round(height * scale))


def _even(value: int) -> int:
    return value + value % 2
