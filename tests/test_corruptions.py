"""The DeeperForensics-1.0 perturbations, the JPEG encode, audio noise and H.264 re-encoding."""
from __future__ import annotations

import io
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from exposeanyone.core.errors import InputError, MediaError
from exposeanyone.media.corruptions import (
    CORRUPTIONS,
    LEVELS,
    NEUTRAL_CHROMA,
    CorruptionSpec,
    FrameCorruptor,
    add_audio_noise,
    block_count,
    encode_jpeg,
    parse_corruption_spec,
    reencode_h264,
    rgb_to_ycbcr,
    ycbcr_to_rgb,
)

FRAME_CORRUPTIONS = [name for name, c in CORRUPTIONS.items() if c.stage == "frame"]
RANDOM_CORRUPTIONS = ["block", "noise"]


def textured_frame(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """A colourful frame with both smooth gradients and pixel-level detail, avoiding pure 0/255/128."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.stack([rows * 180 / height, cols * 180 / width, (rows + cols) * 90 / (height + width)], -1)
    detail = rng.integers(-30, 31, (height, width, 3))
    frame = np.clip(base + 40 + detail, 1, 254).astype(np.uint8)
    frame[frame == 128] = 129
    return frame


def corrupt(frame: np.ndarray, name: str, level: int, seed: int = 0, index: int = 0) -> np.ndarray:
    return FrameCorruptor(f"{name}:{level}", seed=seed)(frame, index)


def levels_of(name: str) -> list[float]:
    return [CORRUPTIONS[name].param(level) for level in LEVELS]


# -- registry and spec parsing --------------------------------------------------------------------


def test_registry_names_codes_and_parameters():
    assert list(CORRUPTIONS) == [
        "saturation", "contrast", "block", "noise", "blur", "jpeg", "jpeg-encode", "video", "audio-noise",
    ]
    codes = {name: c.code for name, c in CORRUPTIONS.items() if c.code}
    assert codes == {
        "saturation": "CS", "contrast": "CC", "block": "BW", "noise": "GNC", "blur": "GB", "jpeg": "JPEG",
        "video": "VC",
    }
    assert levels_of("saturation") == [0.4, 0.3, 0.2, 0.1, 0.0]
    assert levels_of("contrast") == [0.85, 0.725, 0.6, 0.475, 0.35]
    assert levels_of("block") == [16, 32, 48, 64, 80]
    assert levels_of("noise") == [0.001, 0.002, 0.005, 0.01, 0.05]
    assert levels_of("blur") == [7, 9, 13, 17, 21]
    assert levels_of("jpeg") == [2, 3, 4, 5, 6]
    assert levels_of("video") == [30, 32, 35, 38, 40]
    assert levels_of("jpeg-encode") == [90, 70, 50, 30, 10]
    assert levels_of("audio-noise") == [20, 10, 5, 0, -5]
    assert "pixelation" in CORRUPTIONS["jpeg"].description
    for corruption in CORRUPTIONS.values():
        assert corruption.unit and corruption.description
        assert corruption.stage in {"frame", "video", "audio"}
    with pytest.raises(TypeError):
        CORRUPTIONS["fog"] = CORRUPTIONS["blur"]  # type: ignore[index]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
@pytest.mark.parametrize("level", LEVELS)
def test_spec_round_trips_every_name_and_level(name, level):
    spec = parse_corruption_spec(f"{name}:{level}")
    assert spec.items == ((name, level),)
    assert str(spec) == f"{name}:{level}"
    assert parse_corruption_spec(str(spec)) == spec
    assert bool(spec)


def test_spec_accepts_codes_in_any_case_and_sorts_canonically():
    assert parse_corruption_spec("GB:5") == parse_corruption_spec("blur:5")
    assert parse_corruption_spec("gnc:2, jpeg:1") == parse_corruption_spec("noise:2,jpeg:1")
    assert str(parse_corruption_spec("Vc:1,  cs:4")) == "saturation:4,video:1"
    assert str(parse_corruption_spec("jpeg:2,blur:3")) == "blur:3,jpeg:2"
    assert str(parse_corruption_spec("audio_noise:2,JPEG-ENCODE:1")) == "jpeg-encode:1,audio-noise:2"
    full = ",".join(f"{name}:{i % 5 + 1}" for i, name in enumerate(reversed(list(CORRUPTIONS))))
    spec = parse_corruption_spec(full)
    assert [name for name, _ in spec.items] == list(CORRUPTIONS)
    assert parse_corruption_spec(str(spec)) == spec
    assert hash(spec) == hash(parse_corruption_spec(str(spec)))


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_empty_spec_means_none(empty):
    spec = parse_corruption_spec(empty)
    assert spec == CorruptionSpec()
    assert not spec and str(spec) == ""
    assert spec.frame_corruptions == () and spec.video_crf is None and spec.audio_snr_db is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fog:2", "saturation"),
        ("blur:0", "1 to 5"),
        ("blur:6", "1 to 5"),
        ("blur:-1", "malformed"),
        ("blur:2.5", "malformed"),
        ("blur", "malformed"),
        ("blur:", "malformed"),
        (":3", "malformed"),
        ("blur:3,,jpeg:2", "malformed"),
        ("blur:3;jpeg:2", "malformed"),
        ("blur:3,GB:4", "twice"),
        ("noise:1,noise:1", "twice"),
    ],
)
def test_bad_specs_are_rejected_with_a_clear_message(spec, message):
    with pytest.raises(InputError, match=message):
        parse_corruption_spec(spec)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(InputError) as caught:
        parse_corruption_spec("fog:2")
    for name in CORRUPTIONS:
        assert name in str(caught.value)


def test_spec_built_directly_is_validated_and_sorted():
    assert str(CorruptionSpec((("JPEG", 2), ("cs", 1)))) == "saturation:1,jpeg:2"
    with pytest.raises(InputError):
        CorruptionSpec((("blur", 7),))
    with pytest.raises(InputError):
        CorruptionSpec((("blur", True),))


def test_spec_splits_frame_video_and_audio_parts():
    spec = parse_corruption_spec("audio-noise:3,VC:2,blur:1,saturation:5")
    assert spec.frame_corruptions == (("saturation", 5), ("blur", 1))
    assert spec.video_crf == 32 and isinstance(spec.video_crf, int)
    assert spec.audio_snr_db == 5.0
    crfs = [parse_corruption_spec(f"video:{level}").video_crf for level in LEVELS]
    snrs = [parse_corruption_spec(f"audio-noise:{level}").audio_snr_db for level in LEVELS]
    assert crfs == [30, 32, 35, 38, 40] and snrs == [20, 10, 5, 0, -5]
    assert spec.level("GB") == 1 and spec.level("noise") is None


# -- every per-frame corruption at every level ----------------------------------------------------


@pytest.mark.parametrize("name", FRAME_CORRUPTIONS)
@pytest.mark.parametrize("level", LEVELS)
def test_frame_corruption_is_deterministic_and_keeps_shape(name, level):
    frame = textured_frame(48, 80)
    before = frame.copy()
    first = corrupt(frame, name, level, seed=3, index=11)
    second = corrupt(frame, name, level, seed=3, index=11)
    assert first.shape == frame.shape and first.dtype == np.uint8
    assert np.array_equal(first, second)
    assert np.array_equal(frame, before), "the input frame must not be modified"
    assert not np.array_equal(first, frame), "every level must change a textured frame"


@pytest.mark.parametrize("name", RANDOM_CORRUPTIONS)
def test_random_parts_depend_on_seed_and_index_but_not_call_order(name):
    frame = textured_frame(256, 256)
    corruptor = FrameCorruptor(f"{name}:2", seed=5)
    for index in range(4):
        corruptor(frame, index)
    after_others = corruptor(frame, 7)
    fresh = FrameCorruptor(f"{name}:2", seed=5)(frame, 7)
    assert np.array_equal(after_others, fresh)
    assert not np.array_equal(fresh, FrameCorruptor(f"{name}:2", seed=5)(frame, 8))
    assert not np.array_equal(fresh, FrameCorruptor(f"{name}:2", seed=6)(frame, 7))


def test_colour_conversion_round_trips_every_grey_and_random_colours():
    greys = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    colours = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for frame in (greys, colours):
        assert np.array_equal(ycbcr_to_rgb(rgb_to_ycbcr(frame)), frame)
    ycbcr = rgb_to_ycbcr(greys)
    assert ycbcr[0, 0, 0] == pytest.approx(16 / 255, abs=1e-6)
    assert ycbcr[0, -1, 0] == pytest.approx(235 / 255, abs=1e-6)
    assert np.allclose(ycbcr[..., 1:], NEUTRAL_CHROMA, atol=1e-6)


def test_saturation_scales_chroma_by_p_and_level_5_is_exactly_grey():
    frame = textured_frame(64, 64)
    original = rgb_to_ycbcr(frame)
    for level, scale in zip(LEVELS, levels_of("saturation")):
        out = corrupt(frame, "saturation", level)
        ycbcr = rgb_to_ycbcr(out)
        luma_change = (ycbcr[..., 0] - original[..., 0]) * 255
        assert np.abs(luma_change).max() < 1.0 and abs(luma_change.mean()) < 0.1, "luma must be kept"
        chroma_in = (original[..., 1:] - NEUTRAL_CHROMA).ravel()
        chroma_out = (ycbcr[..., 1:] - NEUTRAL_CHROMA).ravel()
        slope = float(chroma_in @ chroma_out / (chroma_in @ chroma_in))
        assert slope == pytest.approx(scale, abs=0.01)
    grey = corrupt(frame, "saturation", 5)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])


def test_contrast_multiplies_by_p_and_truncates():
    frame = textured_frame(64, 64)
    for level, factor in zip(LEVELS, levels_of("contrast")):
        out = corrupt(frame, "contrast", level).astype(np.float64)
        scaled = frame.astype(np.float64) * factor
        assert np.all(out <= scaled + 1e-3) and np.all(out > scaled - 1 - 1e-3)
        assert out.mean() == pytest.approx(frame.mean() * factor - 0.5, abs=0.5)


@pytest.mark.parametrize(
    ("height", "width", "per_level"),
    [
        (512, 512, lambda p: 2 * p),
        (256, 256, lambda p: p),
        (300, 1000, lambda p: p),
        (1080, 1920, lambda p: 4 * p),
        (128, 128, lambda p: p // 4),
        (64, 64, lambda p: p // 16),
        (20, 30, lambda p: p // 16),
    ],
)
def test_block_count_follows_the_reference_formula(height, width, per_level):
    for level, per_256 in zip(LEVELS, levels_of("block")):
        assert block_count(height, width, level) == per_level(int(per_256))


def test_blocks_are_grey_8x8_squares_in_the_reference_range():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 128, (512, 512, 3), dtype=np.uint8)
    areas = []
    for level in LEVELS:
        out = corrupt(frame, "block", level, index=level)
        painted = np.any(out != frame, axis=2)
        assert np.all(out[painted] == 128)
        assert np.all(out[~painted] == frame[~painted])
        opened = ndimage.binary_opening(painted, np.ones((8, 8), bool))
        assert np.array_equal(opened, painted), "every painted pixel must lie in a whole 8x8 block"
        assert not painted[-1].any() and not painted[:, -1].any()
        expected_area = block_count(512, 512, level) * 64
        assert 0.8 * expected_area <= painted.sum() <= expected_area
        areas.append(painted.sum())
    assert areas == sorted(areas)


def test_blocks_on_tiny_frames_do_not_fail():
    out = corrupt(textured_frame(6, 40), "block", 5)
    assert out.shape == (6, 40, 3) and np.any(out == 128)


def test_noise_std_matches_sqrt_variance_in_ycbcr_and_grows_with_level():
    frame = np.full((128, 128, 3), 128, np.uint8)
    frame[::2] = 120
    original = rgb_to_ycbcr(frame)
    measured = []
    for level, variance in zip(LEVELS, levels_of("noise")):
        diff = rgb_to_ycbcr(corrupt(frame, "noise", level)) - original
        std = diff.reshape(-1, 3).std(axis=0)
        measured.append(float(std.mean()))
        assert abs(float(diff.mean())) < 0.1 * math.sqrt(variance)
        if level <= 4:  # level 5 is dominated by clipping, as in the reference
            assert std == pytest.approx(np.full(3, math.sqrt(variance)), rel=0.1)
    assert measured == sorted(measured) and measured[-1] > 1.5 * measured[-2]


def test_blur_sigma_is_p_over_6_and_high_frequencies_fall_with_level():
    step = np.zeros((16, 96, 3), np.uint8)
    step[:, 48:] = 255
    texture = textured_frame(64, 64)
    energies = [float(np.mean(cv2.Laplacian(texture.astype(np.float64), cv2.CV_64F) ** 2))]
    for level, size in zip(LEVELS, levels_of("blur")):
        edge = corrupt(step, "blur", level)[8, :, 0].astype(np.float64)
        slope = np.diff(edge)
        positions = np.arange(len(slope))
        centre = (slope * positions).sum() / slope.sum()
        sigma = math.sqrt((slope * (positions - centre) ** 2).sum() / slope.sum())
        assert sigma == pytest.approx(size / 6, rel=0.05)
        assert np.count_nonzero(slope) <= size
        blurred = corrupt(texture, "blur", level).astype(np.float64)
        energies.append(float(np.mean(cv2.Laplacian(blurred, cv2.CV_64F) ** 2)))
    assert all(later < earlier for earlier, later in zip(energies, energies[1:]))


def high_frequency_fraction(frame: np.ndarray, factor: float) -> float:
    """Share of the spectral power above the Nyquist frequency of a frame downscaled by ``factor``."""
    grey = frame.astype(np.float64).mean(axis=2)
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    rows = np.abs(np.fft.fftfreq(grey.shape[0]))[:, None]
    cols = np.abs(np.fft.fftfreq(grey.shape[1]))[None, :]
    beyond = (rows > 0.5 / factor) | (cols > 0.5 / factor)
    return float(power[beyond].sum() / power.sum())


def test_pixelation_removes_detail_finer_than_the_downscale_factor():
    noise = np.random.default_rng(4).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    for level, factor in zip(LEVELS, levels_of("jpeg")):
        out = corrupt(noise, "jpeg", level)
        assert high_frequency_fraction(noise, factor) > 0.7
        assert high_frequency_fraction(out, factor) < 0.2
    level_1 = corrupt(noise, "jpeg", 1).astype(np.float64)
    pair_means = noise.astype(np.float64).reshape(48, 2, 48, 2, 3).mean(axis=(1, 3))
    # Bilinear 2x down then up: each 2x2 cell holds its mean at its centre.
    cell_means = level_1.reshape(48, 2, 48, 2, 3).mean(axis=(1, 3))
    assert np.corrcoef(cell_means.ravel(), pair_means.ravel())[0, 1] > 0.9


def test_jpeg_encode_uses_the_quality_and_degrades_with_level():
    frame = textured_frame(64, 64)
    dc_quantisers, errors = [], []
    for level in LEVELS:
        quality = int(CORRUPTIONS["jpeg-encode"].param(level))
        image = Image.open(io.BytesIO(encode_jpeg(frame, quality)))
        assert image.format == "JPEG"
        dc_quantisers.append(image.quantization[0][0])
        out = corrupt(frame, "jpeg-encode", level).astype(np.float64)
        errors.append(float(np.mean((out - frame) ** 2)))
    assert dc_quantisers == [3, 10, 16, 27, 80]  # the libjpeg luma tables at quality 90, 70, 50, 30, 10
    assert all(later > earlier for earlier, later in zip(errors, errors[1:]))
    assert not np.array_equal(corrupt(frame, "jpeg-encode", 1), corrupt(frame, "jpeg", 1))


def test_corruptions_are_applied_in_registry_order():
    frame = textured_frame(256, 256)
    out = FrameCorruptor("block:5,contrast:5")(frame, 0)
    assert np.count_nonzero(np.all(out == 128, axis=2)) >= 0.8 * 80 * 64, "blocks come after contrast"


def test_empty_corruptor_returns_the_frame_and_bad_input_is_rejected():
    frame = textured_frame(8, 8)
    assert FrameCorruptor(None)(frame, 0) is frame
    assert not FrameCorruptor("video:1,audio-noise:2") and FrameCorruptor("blur:1")
    corruptor = FrameCorruptor("blur:1")
    for bad in (frame.astype(np.float32), frame[..., 0], frame[..., :2], np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(InputError):
            corruptor(bad, 0)
    with pytest.raises(InputError):
        corruptor(frame, -1)
    with pytest.raises(InputError):
        FrameCorruptor("blur:1", seed=-1)


# -- audio ----------------------------------------------------------------------------------------


def test_audio_noise_hits_the_snr_of_every_level():
    t = np.arange(16_000) / 16_000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    before = audio.copy()
    for level in LEVELS:
        snr = parse_corruption_spec(f"audio-noise:{level}").audio_snr_db
        noisy = add_audio_noise(audio, snr, seed=level)
        assert noisy.shape == audio.shape and noisy.dtype == np.float32
        noise = noisy.astype(np.float64) - audio
        measured = 10 * math.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.5)
        assert np.array_equal(noisy, add_audio_noise(audio, snr, seed=level))
        assert not np.array_equal(noisy, add_audio_noise(audio, snr, seed=level + 10))
    assert np.array_equal(audio, before)


def test_audio_noise_on_silence_stays_finite_and_bad_audio_is_rejected():
    silent = add_audio_noise(np.zeros(1000, np.float32), -5.0)
    assert np.all(np.isfinite(silent)) and np.all(silent == 0)
    assert add_audio_noise(np.zeros(0, np.float32), 10.0).shape == (0,)
    for bad in (np.zeros((10, 2), np.float32), np.zeros(10, np.int16), np.array([0.1, np.nan], np.float32)):
        with pytest.raises(InputError):
            add_audio_noise(bad, 10.0)
    with pytest.raises(InputError):
        add_audio_noise(np.zeros(10, np.float32), float("inf"))


# -- whole-video compression ----------------------------------------------------------------------


def write_tiny_video(path: Path, frames: int = 16, size: int = 64) -> None:
    """``frames`` textured 64x64 frames at 25 fps with a 440 Hz mono AAC track, written with PyAV."""
    import av

    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "10"}
        audio = container.add_stream("aac", rate=16_000, layout="mono")
        for index in range(frames):
            frame = np.roll(textured_frame(size, size, seed=1), index, axis=1)
            frame = np.clip(frame + rng.integers(-20, 21, frame.shape), 0, 255).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        samples = np.sin(2 * np.pi * 440 * np.arange(frames * 640) / 16_000).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[None, start : start + 1024]
            audio_frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            audio_frame.sample_rate = 16_000
            audio_frame.pts = start
            for packet in audio.encode(audio_frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)


def read_video(path: Path) -> tuple[int, tuple[int, int], str, list[bytes]]:
    """Frame count, (height, width), audio codec name and the audio packets' payloads."""
    import av

    with av.open(str(path)) as container:
        shapes = [frame.to_ndarray(format="rgb24").shape[:2] for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        payloads = [bytes(packet) for packet in container.demux(stream) if packet.size]
        codec = stream.codec_context.name
    return len(shapes), shapes[0], codec, payloads


def test_reencode_h264_shrinks_with_crf_and_copies_the_audio(tmp_path):
    source = tmp_path / "source.mp4"
    write_tiny_video(source)
    frames, shape, codec, audio_payloads = read_video(source)
    sizes = []
    for level in (1, 3, 5):
        crf = parse_corruption_spec(f"VC:{level}").video_crf
        target = tmp_path / "out" / f"crf{crf}.mp4"
        reencode_h264(source, target, crf)
        assert read_video(target) == (frames, shape, codec, audio_payloads)
        sizes.append(target.stat().st_size)
    assert frames == 16 and shape == (64, 64)
    assert sizes[0] > sizes[1] > sizes[2]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["crf30.mp4", "crf35.mp4", "crf40.mp4"]


def test_reencode_h264_rejects_bad_input(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 10)
    with pytest.raises(MediaError):
        reencode_h264(tmp_path / "missing.mp4", tmp_path / "out.mp4", 30)
    with pytest.raises(MediaError, match="garbage.mp4"):
        reencode_h264(garbage, tmp_path / "out.mp4", 30)
    assert not any(p.name.startswith(".") or p.name == "out.mp4" for p in tmp_path.iterdir())
    with pytest.raises(InputError):
        reencode_h264(garbage, tmp_path / "out.mp4", 52)
    with pytest.raises(InputError):
        reencode_h264(garbage, garbage, 30)
