import cv2
import numpy as np
import pytest

from exposeanyone.media.denoise import (
    MAX_BLUR,
    MIN_BLUR,
    NOISE_GATE,
    PROBE_FRAMES,
    blur_for,
    denoise_frames,
    noise_level,
)


def shaded_face_like_frame(height: int = 192, width: int = 256) -> np.ndarray:
    """A smooth frame with edges: a lit gradient and a disc, ``(height, width, 3)`` uint8."""
    y, x = np.mgrid[:height, :width]
    grey = 60 + 0.5 * x + 0.3 * y
    grey[(x - width / 2) ** 2 + (y - height / 2) ** 2 < 50 ** 2] = 200
    return np.repeat(grey[..., None], 3, axis=2).clip(0, 255).astype(np.uint8)


def with_noise(frame: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, sigma, frame.shape[:2])[..., None]
    return (frame + noise).clip(0, 255).round().astype(np.uint8)


@pytest.mark.parametrize("sigma", [5.0, 10.0, 20.0])
def test_noise_level_reads_the_added_noise_not_the_edges(sigma):
    clean = shaded_face_like_frame()
    assert noise_level(clean) < 1.0
    assert noise_level(with_noise(clean, sigma)) == pytest.approx(sigma, rel=0.15)


def test_blur_grows_with_noise_within_bounds():
    assert blur_for(0.0) == blur_for(NOISE_GATE - 0.01) == 0.0
    levels = [NOISE_GATE, 10.0, 20.0, 40.0, 200.0]
    blurs = [blur_for(level) for level in levels]
    assert blurs == sorted(blurs) and blurs[0] == MIN_BLUR and blurs[-1] == MAX_BLUR


def test_clean_clip_passes_through_unchanged():
    frames = [shaded_face_like_frame() for _ in range(PROBE_FRAMES + 3)]
    stream, denoising = denoise_frames(frames)
    out = list(stream)
    assert denoising.blur_px == 0.0 and len(out) == len(frames)
    assert all(a is b for a, b in zip(out, frames))


def test_noisy_clip_is_smoothed_whole_and_in_order():
    frames = [with_noise(shaded_face_like_frame(), 20.0, seed) for seed in range(PROBE_FRAMES + 5)]
    stream, denoising = denoise_frames(iter(frames))
    out = list(stream)
    assert denoising.noise == pytest.approx(20.0, rel=0.15) and denoising.blur_px > 1.0
    assert len(out) == len(frames)
    for smoothed, original in zip(out, frames):
        assert noise_level(smoothed) < noise_level(original) / 2
    np.testing.assert_array_equal(out[-1], cv2.GaussianBlur(frames[-1], (0, 0), denoising.blur_px))
    assert denoising.to_json() == {"noise_grey_levels": round(denoising.noise, 2), "blur_px": round(denoising.blur_px, 2)}


def test_an_empty_clip_is_left_alone():
    stream, denoising = denoise_frames([])
    assert list(stream) == [] and denoising.blur_px == 0.0
