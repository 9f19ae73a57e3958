"""Smoothing visibly noisy video before tracking.

Grain makes the face tracker's blendshapes jitter and drift: on reference clips of three avdata persons
with DeeperForensics noise at level 3 (about 20 grey levels), the tracked blendshapes moved 0.087 (RMS,
clip mean removed) from those of the clean video; a Gaussian blur of 1.5 px before tracking brought
that to 0.049 (non-local means: 0.043 at ten times the cost), and at level 5 it let the tracker find the
face in every frame instead of 4 %. Clean footage is left untouched: the noise of a clip is measured on
its first frames and only a clip above :data:`NOISE_GATE` is smoothed, so the tracks the models were
trained on do not change (avdata's clean frames measure at most 0.9 grey levels).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Iterator

import cv2
import numpy as np

NOISE_GATE = 4.0
"""Grey levels (of 255) of noise above which a clip is smoothed before tracking."""
BLUR_PER_GREY_LEVEL = 1 / 13
"""Blur sigma (px) per grey level of noise: 0.75 px at DeeperForensics noise level 1 (about 9.4 grey
levels), 1.5 px at level 3 (about 20); each the closest to the clean tracks of those tried."""
MIN_BLUR, MAX_BLUR = 0.75, 3.0
PROBE_FRAMES = 8
"""Frames at the start of a clip whose median noise decides for the whole clip (one decision per clip,
so a track is never half smoothed)."""
_LAPLACIAN_DIFFERENCE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


@dataclass(frozen=True)
class Denoising:
    """What was done to a clip's frames before tracking."""

    noise: float
    """Estimated noise standard deviation, in grey levels of 255."""
    blur_px: float
    """Gaussian blur sigma applied to every frame, 0 when the clip was left as it was."""

    def to_json(self) -> dict:
        return {"noise_grey_levels": round(self.noise, 2), "blur_px": round(self.blur_px, 2)}


def noise_level(rgb: np.ndarray) -> float:
    """Noise standard deviation of an ``(height, width, 3)`` uint8 RGB frame, in grey levels.

    Immerkaer's estimator (1996): the mean absolute response to a mask that cancels edges and smooth
    shading to first order, so what remains is mostly pixel-to-pixel noise.
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if min(grey.shape) < 3:
        return 0.0
    response = np.abs(cv2.filter2D(grey, -1, _LAPLACIAN_DIFFERENCE))[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * response.mean() / 6)


def blur_for(noise: float) -> float:
    """The blur sigma (px) for a clip with ``noise`` grey levels of noise; 0 below :data:`NOISE_GATE`."""
    if noise < NOISE_GATE:
        return 0.0
    return float(np.clip(noise * BLUR_PER_GREY_LEVEL, MIN_BLUR, MAX_BLUR))


def denoise_frames(frames: Iterable[np.ndarray]) -> tuple[Iterator[np.ndarray], Denoising]:
    """The clip's frames, smoothed if its first frames are noisy, and what was decided.

    Reads :data:`PROBE_FRAMES` frames ahead; the returned iterator still yields every frame, in order.
    """
    frames = iter(frames)
    head = list(itertools.islice(frames, PROBE_FRAMES))
    noise = float(np.median([noise_level(frame) for frame in head])) if head else 0.0
    denoising = Denoising(noise, blur_for(noise))
    stream = itertools.chain(head, frames)
    if not denoising.blur_px:
        return stream, denoising
    return (cv2.GaussianBlur(frame, (0, 0), denoising.blur_px) for frame in stream), denoising
