"""Deterministic talking clips, made from material the project ships.

The face is a 256x256 crop of NASA's public-domain astronaut portrait (``assets/testmedia``). Its jaw
is warped open in step with the loudness envelope of a seeded vowel synthesizer, so that MediaPipe's
``jawOpen`` follows the audio. Tests and app examples use these clips on machines without real data
(broken inputs for the tests are made by ``tests/media_factory.py``).

    make_talking_clip("clip.mp4", seconds=4.0, seed=0)          # h264 + aac, 256x256, 25 fps
"""
from __future__ import annotations

import json
import shutil
import subprocess
import wave
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..core.config import ASSETS_DIR, SAMPLE_RATE

FACE_IMAGE = "testmedia/astronaut_face.png"
FACE_GEOMETRY = "testmedia/astronaut_face.json"

SPEECH_MODES = ("synth", "tts", "silence")

# (F1, F2, F3) in Hz of a, e, i, o, u and the vowel of "bat"
VOWEL_FORMANTS = np.array(
    [[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240],
     [660, 1720, 2410]], dtype=np.float64)
FORMANT_BANDWIDTHS = np.array([90.0, 110.0, 170.0])
SPEECH_PEAK = 0.6
NOISE_FLOOR = 3e-4
"""Room noise between words (about -70 dBFS), so that pauses are quiet but not digital silence."""

MAX_JAW_DROP = 0.75
"""Jaw drop at full loudness, as a fraction of the mouth's half width."""
HEAD_SCALE, HEAD_SHIFT_PX, HEAD_ROLL_DEG = 0.03, 6.0, 2.0
"""Head motion amplitudes; the shift is for a 256 px frame and scales with the frame size."""
CAVITY_RGB = np.array([42.0, 14.0, 18.0], dtype=np.float32)

TTS_SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "We will meet again tomorrow morning to talk about the results.",
    "Please remember to bring your notes and a warm coat for the trip.",
    "She opened the window and looked at the bright city lights below.",
    "Every good idea needs a careful test before anyone can trust it.",
    "Our mission launched on time and the crew is doing very well.",
)

# container suffix -> (format, video codec, audio codec, codec options for the video)
CONTAINERS: dict[str, tuple[str | None, str, str, dict[str, str]]] = {
    ".mp4": (None, "libx264", "aac", {"preset": "veryfast", "crf": "23"}),
    ".mov": (None, "libx264", "pcm_s16le", {"preset": "veryfast", "crf": "23"}),
    ".mkv": (None, "libx264", "flac", {"preset": "veryfast", "crf": "23"}),
    ".webm": (None, "libvpx-vp9", "libopus", {"deadline": "realtime", "cpu-used": "8", "crf": "34",
                                              "b": "0"}),
    ".avi": (None, "mpeg4", "libmp3lame", {"qscale": "4"}),
    ".flv": (None, "libx264", "aac", {"preset": "veryfast", "crf": "23"}),
    ".m4a": ("ipod", "", "aac", {}),
    ".wav": (None, "", "pcm_s16le", {}),
}
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


# --------------------------------------------------------------------------- speech


@dataclass(frozen=True)
class _Syllable:
    start: float
    duration: float
    vowel: int
    loudness: float
    f0_start: float
    f0_end: float
    formant_scale: float
    fricative: bool


def _syllable_plan(seconds: float, rng: np.random.Generator) -> list[_Syllable]:
    """Words of 1-4 voiced syllables (120-300 ms) separated by pauses, with a falling pitch per phrase."""
    syllables: list[_Syllable] = []
    t = rng.uniform(0.15, 0.35)
    phrase_f0 = rng.uniform(120, 210)
    while t < seconds - 0.2:
        word_f0 = phrase_f0 * rng.uniform(0.9, 1.12)
        for index in range(int(rng.integers(1, 5))):
            duration = rng.uniform(0.12, 0.30)
            if t + duration > seconds - 0.05:
                break
            f0_start = word_f0 * (1.0 - 0.04 * index) * rng.uniform(0.95, 1.08)
            syllables.append(_Syllable(
                start=t, duration=duration, vowel=int(rng.integers(len(VOWEL_FORMANTS))),
                loudness=rng.uniform(0.45, 1.0), f0_start=f0_start,
                f0_end=f0_start * rng.uniform(0.85, 1.05), formant_scale=rng.uniform(0.92, 1.08),
                fricative=bool(rng.random() < 0.5)))
            t += duration + rng.uniform(0.0, 0.04)
        long_pause = rng.random() < 0.15
        t += rng.uniform(0.5, 0.9) if long_pause else rng.uniform(0.10, 0.45)
        if long_pause:
            phrase_f0 = rng.uniform(120, 210)
    return syllables


def _syllable_envelope(syllables: list[_Syllable], num_samples: int, sample_rate: int) -> np.ndarray:
    """``(samples,)`` loudness in [0, 1]: raised-cosine attack (30 ms) and release (60 ms) per syllable."""
    envelope = np.zeros(num_samples, dtype=np.float64)
    attack, release = int(0.03 * sample_rate), int(0.06 * sample_rate)
    for syllable in syllables:
        start = int(round(syllable.start * sample_rate))
        length = int(round(syllable.duration * sample_rate))
        shape = np.ones(length)
        shape[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / attack)
        shape[length - release:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(release) / release)
        stop = min(start + length, num_samples)
        np.maximum(envelope[start:stop], syllable.loudness * shape[: stop - start], out=envelope[start:stop])
    return envelope


def _knot_curve(times: np.ndarray, knot_times: list[float], knot_values: list, default) -> np.ndarray:
    if not knot_times:
        return np.broadcast_to(np.asarray(default, dtype=np.float64), (len(times),) + np.shape(default)).copy()
    values = np.asarray(knot_values, dtype=np.float64)
    if values.ndim == 1:
        return np.interp(times, knot_times, values)
    return np.stack([np.interp(times, knot_times, values[:, j]) for j in range(values.shape[1])], axis=1)


def _harmonic_amplitudes(f0: np.ndarray, formants: np.ndarray, num_harmonics: int,
                         sample_rate: int) -> np.ndarray:
    """``(points, harmonics)`` amplitudes of a -6 dB/octave source through 3 cascaded formant resonators,
    scaled to unit RMS so that loudness is set by the envelope alone."""
    frequencies = f0[:, None] * np.arange(1, num_harmonics + 1)[None, :]
    gain = 1.0 / np.arange(1, num_harmonics + 1)[None, :]
    for j in range(formants.shape[1]):
        centre = formants[:, j: j + 1]
        gain = gain * centre**2 / np.sqrt((centre**2 - frequencies**2) ** 2
                                          + (FORMANT_BANDWIDTHS[j] * frequencies) ** 2)
    gain[frequencies > 0.45 * sample_rate] = 0.0
    rms = np.sqrt(0.5 * np.sum(gain**2, axis=1, keepdims=True))
    return gain / np.maximum(rms, 1e-12)


def _highpass_noise(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    noise = rng.standard_normal(num_samples + 2)
    return (noise[2:] - 2 * noise[1:-1] + noise[:-2]) / 2.5


def synth_speech_with_envelope(seconds: float, seed: int = 0,
                               sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Speech-like audio from a seeded vowel synthesizer, and the loudness envelope that shaped it.

    Returns:
        ``(samples,)`` float32 waveform in [-0.6, 0.6] and ``(samples,)`` float32 envelope in [0, 1],
        where ``samples = round(seconds * sample_rate)``. Frame RMS is proportional to the envelope.
    """
    num_samples = int(round(seconds * sample_rate))
    rng = np.random.default_rng([seed, 0x5BEEC])
    syllables = _syllable_plan(seconds, rng)
    envelope = _syllable_envelope(syllables, num_samples, sample_rate)
    waveform = _voiced(syllables, num_samples, sample_rate, rng) * envelope
    waveform += _fricatives(syllables, num_samples, sample_rate, rng)
    peak = np.max(np.abs(waveform)) if num_samples else 0.0
    if peak > 0:
        waveform *= SPEECH_PEAK / peak
    waveform += NOISE_FLOOR * rng.standard_normal(num_samples)
    return waveform.astype(np.float32), envelope.astype(np.float32)


def _voiced(syllables: list[_Syllable], num_samples: int, sample_rate: int,
            rng: np.random.Generator, num_harmonics: int = 40) -> np.ndarray:
    """``(samples,)`` unit-RMS voiced sound: harmonics of a gliding pitch shaped by gliding formants."""
    times = np.arange(num_samples) / sample_rate
    f0_times = [t for s in syllables for t in (s.start, s.start + s.duration)]
    f0_values = [f for s in syllables for f in (s.f0_start, s.f0_end)]
    f0 = _knot_curve(times, f0_times, f0_values, 150.0)
    f0 *= 1.0 + 0.01 * np.sin(2 * np.pi * 5.3 * times + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate

    # the spectrum changes slowly: compute it every 5 ms and interpolate
    hop = max(1, sample_rate // 200)
    control_times = np.arange(0, num_samples + 2 * hop, hop) / sample_rate
    formants = _knot_curve(control_times, [s.start + s.duration / 2 for s in syllables],
                           [VOWEL_FORMANTS[s.vowel] * s.formant_scale for s in syllables], VOWEL_FORMANTS[0])
    amplitudes = _harmonic_amplitudes(_knot_curve(control_times, f0_times, f0_values, 150.0), formants,
                                      num_harmonics, sample_rate)

    voiced = np.zeros(num_samples, dtype=np.float64)
    harmonics = np.arange(1, num_harmonics + 1)[:, None]
    for start in range(0, num_samples, sample_rate):  # a second at a time bounds the memory
        stop = min(start + sample_rate, num_samples)
        position = np.arange(start, stop) / hop
        left = position.astype(int)
        weight = (position - left)[None, :]
        chunk_amplitudes = amplitudes[left].T * (1 - weight) + amplitudes[left + 1].T * weight
        voiced[start:stop] = np.sum(chunk_amplitudes * np.sin(harmonics * phase[None, start:stop]), axis=0)
    return voiced


def _fricatives(syllables: list[_Syllable], num_samples: int, sample_rate: int,
                rng: np.random.Generator) -> np.ndarray:
    """``(samples,)`` short hisses leading into half of the syllables, as consonants do."""
    hiss = np.zeros(num_samples, dtype=np.float64)
    for syllable in syllables:
        if not syllable.fricative:
            continue
        length = int(rng.uniform(0.03, 0.06) * sample_rate)
        start = max(0, int(syllable.start * sample_rate) - length // 2)
        stop = min(start + length, num_samples)
        hiss[start:stop] += 0.12 * syllable.loudness * _highpass_noise(rng, stop - start) * np.hanning(stop - start)
    return hiss


def synth_speech(seconds: float, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speech-like audio from a seeded vowel synthesizer: ``(round(seconds * sample_rate),)`` float32."""
    return synth_speech_with_envelope(seconds, seed, sample_rate)[0]


def amplitude_envelope(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Loudness of any waveform: RMS over a sliding 30 ms window, divided by its 98th percentile.

    Args:
        audio: ``(samples,)`` float waveform.
    Returns:
        ``(samples,)`` float32 in [0, 1]; all zeros for digital silence.
    """
    audio = np.asarray(audio, dtype=np.float64)
    if len(audio) == 0:
        return np.zeros(0, dtype=np.float32)
    width = max(1, int(0.03 * sample_rate))
    power = np.convolve(audio**2, np.ones(width) / width, mode="same")
    rms = np.sqrt(np.maximum(power, 0.0))
    reference = np.percentile(rms, 98)
    if reference <= 1e-6:
        return np.zeros(len(audio), dtype=np.float32)
    return np.clip(rms / reference, 0.0, 1.0).astype(np.float32)


def resample_fft(audio: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of a clip that starts and ends quietly: ``(samples,)`` -> float32.

    Plain numpy (scipy.signal takes seconds to import, longer than the speech takes to make).
    """
    if rate == new_rate or len(audio) == 0:
        return np.asarray(audio, dtype=np.float32)
    new_length = int(round(len(audio) * new_rate / rate))
    spectrum = np.fft.rfft(audio)
    kept = np.zeros(new_length // 2 + 1, dtype=complex)
    shared = min(len(kept), len(spectrum))
    kept[:shared] = spectrum[:shared]
    return (np.fft.irfft(kept, n=new_length) * (new_length / len(audio))).astype(np.float32)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _read_wav_mono(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(BytesIO(data)) as reader:
        rate, channels, width = reader.getframerate(), reader.getnchannels(), reader.getsampwidth()
        # espeak-ng writes to a pipe, so the header's frame count is a placeholder: read what is there
        raw = reader.readframes(2**31 - 1)
    if width != 2:
        raise RuntimeError(f"espeak-ng wrote {8 * width}-bit audio, expected 16-bit")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, channels).mean(axis=1), rate


def tts_speech(seconds: float, text: str | None = None, seed: int = 0,
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Real words spoken by ``espeak-ng`` (must be on PATH), cut or padded with silence to ``seconds``.

    Without ``text``, seeded sentences are spoken until they fill the clip.
    Returns ``(round(seconds * sample_rate),)`` float32.
    """
    executable = shutil.which("espeak-ng")
    if executable is None:
        raise RuntimeError("speech='tts' needs the espeak-ng program (Debian package espeak-ng)")
    num_samples = int(round(seconds * sample_rate))
    rng = np.random.default_rng([seed, 0x7755])
    order = rng.permutation(len(TTS_SENTENCES))
    sentences = [text] if text else []
    for attempt in range(len(TTS_SENTENCES) + 1):
        spoken = " ".join(sentences) if sentences else TTS_SENTENCES[order[0]]
        result = subprocess.run([executable, "--stdout", "-v", "en-us", "-s", "160", spoken],
                                capture_output=True, check=True, timeout=60)
        samples, rate = _read_wav_mono(result.stdout)
        if text or len(samples) >= seconds * rate or attempt == len(TTS_SENTENCES):
            break
        sentences.append(TTS_SENTENCES[order[attempt % len(order)]])
    samples = resample_fft(samples, rate, sample_rate)[:num_samples]
    return np.pad(samples, (0, num_samples - len(samples)))


# --------------------------------------------------------------------------- face animation


@dataclass(frozen=True)
class FaceGeometry:
    """Where the jaw opens in a face image, in pixels of that image."""

    mouth_x: float
    mouth_y: float
    mouth_half_width: float
    chin_y: float
    jaw_half_width: float

    def mirrored(self, width: int) -> "FaceGeometry":
        return FaceGeometry(width - 1 - self.mouth_x, self.mouth_y, self.mouth_half_width, self.chin_y,
                            self.jaw_half_width)


@lru_cache(maxsize=4)
def load_face(size: int = 256) -> tuple[np.ndarray, FaceGeometry]:
    """The shipped astronaut face resized to ``(size, size, 3)`` uint8 RGB, and its jaw geometry."""
    import cv2

    bgr = cv2.imread(str(ASSETS_DIR / FACE_IMAGE), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"the test face {ASSETS_DIR / FACE_IMAGE} is missing or unreadable")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if rgb.shape[0] != size:
        interpolation = cv2.INTER_AREA if size < rgb.shape[0] else cv2.INTER_CUBIC
        rgb = cv2.resize(rgb, (size, size), interpolation=interpolation)
    rgb.setflags(write=False)
    info = json.loads((ASSETS_DIR / FACE_GEOMETRY).read_text())
    geometry = FaceGeometry(
        mouth_x=info["mouth_x"] * size, mouth_y=info["mouth_y"] * size,
        mouth_half_width=info["mouth_half_width"] * size, chin_y=info["chin_y"] * size,
        jaw_half_width=0.38 * (info["face_right"] - info["face_left"]) * size)
    return rgb, geometry


def smooth_motion(times: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """``(len(times),)`` a slow wander within +-amplitude: three sinusoids of 0.1-0.7 Hz."""
    weights = rng.dirichlet(np.ones(3))
    frequencies = rng.uniform(0.1, 0.7, size=3)
    phases = rng.uniform(0, 2 * np.pi, size=3)
    waves = np.sin(2 * np.pi * frequencies[None, :] * np.asarray(times)[:, None] + phases[None, :])
    return amplitude * waves @ weights


@dataclass(frozen=True)
class HeadPose:
    """Head motion over a clip, one value per video frame: ``(frames,)`` each."""

    scale: np.ndarray
    shift_x: np.ndarray
    shift_y: np.ndarray
    roll_deg: np.ndarray

    @classmethod
    def random(cls, times: np.ndarray, rng: np.random.Generator, size: int) -> "HeadPose":
        shift = HEAD_SHIFT_PX * size / 256
        return cls(scale=1.0 + smooth_motion(times, rng, HEAD_SCALE),
                   shift_x=smooth_motion(times, rng, shift), shift_y=smooth_motion(times, rng, shift),
                   roll_deg=smooth_motion(times, rng, HEAD_ROLL_DEG))


def _bell(offset: np.ndarray, half_width: float, power: float) -> np.ndarray:
    """1 at 0, 1/2 at +-half_width; a larger power gives a flatter top and steeper sides."""
    return np.exp(np.float32(-np.log(2.0)) * np.abs(offset / np.float32(half_width)) ** np.float32(power))


@lru_cache(maxsize=4)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    ys.setflags(write=False)
    xs.setflags(write=False)
    return ys, xs


def _head_to_face_coordinates(size: int, geometry: FaceGeometry, scale: float, shift_x: float,
                              shift_y: float, roll_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each output pixel comes from in the still face: ``(size, size)`` x and y, float32."""
    ys, xs = _pixel_grid(size)
    centre_x, centre_y = np.float32(geometry.mouth_x), np.float32(geometry.mouth_y - 0.1 * size)
    angle = np.deg2rad(roll_deg)
    cos, sin = np.float32(np.cos(angle) / scale), np.float32(np.sin(angle) / scale)
    rel_x, rel_y = xs - np.float32(centre_x + shift_x), ys - np.float32(centre_y + shift_y)
    return centre_x + cos * rel_x + sin * rel_y, centre_y - sin * rel_x + cos * rel_y


def _jaw_box(face_x: np.ndarray, face_y: np.ndarray, geometry: FaceGeometry, jaw_length: float,
             size: int) -> tuple[slice, slice]:
    """The output rows and columns the jaw warp can touch (computing only there keeps frames cheap)."""
    near = ((face_y > geometry.mouth_y - jaw_length - 2) & (face_y < geometry.chin_y + 0.1 * size + 2)
            & (np.abs(face_x - geometry.mouth_x) < 2.5 * geometry.jaw_half_width))
    rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    if len(rows) == 0:
        return slice(0, 0), slice(0, 0)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _jaw_shift(face_x: np.ndarray, face_y: np.ndarray, geometry: FaceGeometry, jaw_drop_px: float,
               jaw_length: float, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertical source offset, cavity opacity and cavity depth (0 top, 1 bottom) at face coordinates."""
    across = face_x - np.float32(geometry.mouth_x)
    below_lips = face_y - np.float32(geometry.mouth_y)
    lips = np.sqrt(np.clip(1.0 - (across / np.float32(0.95 * geometry.mouth_half_width)) ** 2, 0.0, 1.0))
    lower_gap, upper_gap = np.float32(0.8 * jaw_drop_px) * lips, np.float32(0.2 * jaw_drop_px) * lips
    jaw = np.float32(0.8 * jaw_drop_px) * _bell(across, geometry.jaw_half_width, 4.0)

    # below the gap: from the lower lip's drop to the jaw's, then fading out under the chin
    towards_chin = np.clip((below_lips - lower_gap) / np.maximum(jaw_length - lower_gap, 1.0), 0.0, 1.0)
    past_chin = np.clip((face_y - np.float32(geometry.chin_y)) / np.float32(0.1 * size), 0.0, 1.0)
    drop_down = (lower_gap + (jaw - lower_gap) * towards_chin) * (0.5 + 0.5 * np.cos(np.pi * past_chin))
    # above the gap: the upper lip lifts, fading out towards the nose
    lift = upper_gap * np.clip(1.0 + (below_lips + upper_gap) / np.float32(0.5 * jaw_length), 0.0, 1.0)
    shift = np.where(below_lips >= 0, drop_down, -lift)
    cavity = np.clip(np.minimum(lower_gap - below_lips, below_lips + upper_gap), 0.0, 1.0)
    depth = np.clip((below_lips + upper_gap) / np.float32(max(jaw_drop_px, 1.0)), 0.0, 1.0)
    return shift, cavity, depth


def render_face(face: np.ndarray, geometry: FaceGeometry, jaw_drop_px: float, scale: float,
                shift_x: float, shift_y: float, roll_deg: float) -> np.ndarray:
    """One frame of the face with its mouth opened by ``jaw_drop_px`` and the head moved.

    The lips part along an ellipse as wide as the mouth (the lower lip takes 80 % of the gap, the upper
    lip 20 %); below, the jaw slides down as a block that fades out below the chin and beside the jaw;
    the gap is painted as a dark mouth cavity. Head motion and jaw are one backward mapping, so the
    picture is resampled once.

    Args:
        face: ``(size, size, 3)`` uint8 RGB.
    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    import cv2

    size = face.shape[0]
    face_x, face_y = _head_to_face_coordinates(size, geometry, scale, shift_x, shift_y, roll_deg)
    if jaw_drop_px <= 0:
        return cv2.remap(face, face_x, face_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)

    jaw_length = max(geometry.chin_y - geometry.mouth_y, 1.0)
    box = _jaw_box(face_x, face_y, geometry, jaw_length, size)
    shift = np.zeros((size, size), np.float32)
    shift[box], cavity, depth = _jaw_shift(face_x[box], face_y[box], geometry, jaw_drop_px, jaw_length, size)
    frame = cv2.remap(face, face_x, face_y - shift, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    if cavity.any():
        shade = CAVITY_RGB * (1.0 - 0.5 * np.sin(np.pi * depth))[..., None]
        alpha = cavity[..., None]
        frame[box] = (frame[box] * (1 - alpha) + shade * alpha).round().astype(np.uint8)
    return frame


def noise_background(size: int, times: np.ndarray, rng: np.random.Generator) -> Callable[[int], np.ndarray]:
    """A face-free picture: smooth coloured noise drifting slowly. Returns ``frame(i) -> (size, size, 3)``."""
    import cv2

    margin = size // 8
    coarse = rng.uniform(60, 200, size=(10, 10, 3)).astype(np.float32)
    texture = cv2.resize(coarse, (size + 2 * margin, size + 2 * margin), interpolation=cv2.INTER_CUBIC)
    texture = np.clip(texture, 0, 255).astype(np.uint8)
    drift_x = np.round(smooth_motion(times, rng, margin - 1)).astype(int) + margin
    drift_y = np.round(smooth_motion(times, rng, margin - 1)).astype(int) + margin

    def frame(index: int) -> np.ndarray:
        return np.ascontiguousarray(texture[drift_y[index]: drift_y[index] + size,
                                            drift_x[index]: drift_x[index] + size])
    return frame


# --------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class TalkingClip:
    """A rendered clip before encoding: deterministic for its arguments."""

    frame_times: np.ndarray
    """``(frames,)`` float64 presentation time of each video frame, seconds."""
    audio: np.ndarray
    """``(samples,)`` float32 mono waveform as written (already shifted by ``audio_shift_ms``)."""
    envelope: np.ndarray
    """``(samples,)`` float32 loudness in [0, 1] that drives the mouth, on the video's timeline (unshifted)."""
    mouth_open: np.ndarray
    """``(frames,)`` float32 in [0, 1]: the jaw opening drawn in each frame."""
    sample_rate: int
    width: int
    height: int
    seconds: float
    render_frame: Callable[[int], np.ndarray]
    """``render_frame(i) -> (height, width, 3)`` uint8 RGB."""

    @property
    def num_frames(self) -> int:
        return len(self.frame_times)

    def frames(self) -> Iterator[np.ndarray]:
        for index in range(self.num_frames):
            yield self.render_frame(index)


def video_frame_times(seconds: float, fps: float, vfr: bool, rng: np.random.Generator) -> np.ndarray:
    """``(frames,)`` start times: regular at ``fps``, or with seeded durations of 0.5-1.6 frame periods."""
    if not vfr:
        return np.arange(int(round(seconds * fps))) / fps
    durations = rng.uniform(0.5, 1.6, size=int(seconds * fps * 2) + 2) / fps
    starts = np.concatenate([[0.0], np.cumsum(durations)])
    return np.round(starts[starts < seconds - 0.5 / fps], 3)


def shift_audio(audio: np.ndarray, shift_samples: int) -> np.ndarray:
    """Delay (positive) or advance (negative) ``(samples,)`` audio, keeping its length; gaps are silence."""
    shifted = np.zeros_like(audio)
    if shift_samples >= 0:
        shifted[shift_samples:] = audio[: max(len(audio) - shift_samples, 0)]
    else:
        shifted[: max(len(audio) + shift_samples, 0)] = audio[-shift_samples:]
    return shifted


def _speech_and_envelope(speech: str, seconds: float, seed: int, sample_rate: int,
                         text: str | None) -> tuple[np.ndarray, np.ndarray]:
    num_samples = int(round(seconds * sample_rate))
    if speech == "synth":
        return synth_speech_with_envelope(seconds, seed, sample_rate)
    if speech == "tts":
        audio = tts_speech(seconds, text, seed, sample_rate)
        return audio, amplitude_envelope(audio, sample_rate)
    if speech == "silence":
        return np.zeros(num_samples, np.float32), np.zeros(num_samples, np.float32)
    raise ValueError(f"speech must be one of {SPEECH_MODES}, not {speech!r}")


def mouth_opening(envelope: np.ndarray, sample_rate: int, frame_times: np.ndarray,
                  window_s: float) -> np.ndarray:
    """``(frames,)`` mean loudness of the ``window_s`` of audio that starts at each frame's time."""
    cumulative = np.concatenate([[0.0], np.cumsum(envelope, dtype=np.float64)])
    starts = np.clip(np.round(frame_times * sample_rate).astype(int), 0, len(envelope))
    stops = np.clip(starts + int(round(window_s * sample_rate)), 0, len(envelope))
    sums = cumulative[stops] - cumulative[starts]
    return (sums / np.maximum(stops - starts, 1)).astype(np.float32)


def render_talking_clip(seconds: float = 4.0, *, seed: int = 0, speech: str = "synth", faces: int = 1,
                        audio_shift_ms: float = 0.0, size: int = 256, fps: float = 25.0, vfr: bool = False,
                        text: str | None = None, sample_rate: int = SAMPLE_RATE) -> TalkingClip:
    """Everything of a talking clip except its encoding; see :func:`make_talking_clip` for the arguments."""
    if faces not in (0, 1, 2):
        raise ValueError(f"faces must be 0, 1 or 2, not {faces}")
    if size < 64 or size % 2:
        raise ValueError(f"size must be an even number of pixels >= 64, not {size}")
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, not {seconds}")
    rng = np.random.default_rng([seed, 0xFACE])
    audio, envelope = _speech_and_envelope(speech, seconds, seed, sample_rate, text)
    audio = shift_audio(audio, int(round(audio_shift_ms * sample_rate / 1000)))
    times = video_frame_times(seconds, fps, vfr, rng)
    opening = mouth_opening(envelope, sample_rate, times, 1.0 / fps)

    if faces == 0:
        render_frame = noise_background(size, times, rng)
    else:
        face, geometry = load_face(size)
        poses = [HeadPose.random(times, rng, size) for _ in range(faces)]
        tiles = [(face, geometry, 1.0)]
        if faces == 2:
            # the second person is a mirrored, silent listener
            tiles.append((np.ascontiguousarray(face[:, ::-1]), geometry.mirrored(size), 0.0))
        max_drop = MAX_JAW_DROP * geometry.mouth_half_width

        def render_frame(index: int) -> np.ndarray:
            pictures = [render_face(picture, geom, max_drop * speaking * float(opening[index]),
                                    float(pose.scale[index]), float(pose.shift_x[index]),
                                    float(pose.shift_y[index]), float(pose.roll_deg[index]))
                        for (picture, geom, speaking), pose in zip(tiles, poses)]
            return np.concatenate(pictures, axis=1) if len(pictures) > 1 else pictures[0]

    return TalkingClip(frame_times=times, audio=audio, envelope=envelope, mouth_open=opening,
                       sample_rate=sample_rate, width=size * max(faces, 1), height=size, seconds=seconds,
                       render_frame=render_frame)


def _container_for(path: Path) -> tuple[str | None, str, str, dict[str, str]]:
    suffix = path.suffix.lower()
    if suffix not in CONTAINERS:
        raise ValueError(f"cannot write {suffix!r}: use one of {', '.join(CONTAINERS)}")
    return CONTAINERS[suffix]


def write_clip(path: str | Path, clip: TalkingClip, *, audio: bool = True, video: bool = True,
               fps: float = 25.0, vfr: bool = False, faststart: bool = False,
               video_options: dict[str, str] | None = None) -> Path:
    """Encode ``clip`` with PyAV into the container named by ``path``'s suffix (see ``CONTAINERS``).

    ``video_options`` replace the container's default encoder options (e.g. a faster x264 preset).
    """
    import av

    path = Path(path)
    container_format, video_codec, audio_codec, default_video_options = _container_for(path)
    video = video and bool(video_codec)
    if not (audio or video):
        raise ValueError(f"{path.suffix} with audio={audio} and video={video} would hold no stream")
    if audio_codec == "libopus" and clip.sample_rate not in OPUS_RATES:
        raise ValueError(f"Opus cannot store {clip.sample_rate} Hz audio; use one of {OPUS_RATES}")
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), "w", format=container_format, options=options) as container:
        video_stream = audio_stream = None
        if video:
            video_stream = container.add_stream(video_codec, rate=Fraction(fps).limit_denominator(1001),
                                                options=dict(video_options if video_options is not None
                                                             else default_video_options))
            video_stream.width, video_stream.height = clip.width, clip.height
            video_stream.pix_fmt = "yuv420p"
            if vfr:
                video_stream.codec_context.time_base = Fraction(1, 1000)
        if audio:
            audio_stream = container.add_stream(audio_codec, rate=clip.sample_rate, layout="mono")
        audio_written = 0
        block = 1024
        for index in range(clip.num_frames if video else 0):
            frame = av.VideoFrame.from_ndarray(clip.render_frame(index), format="rgb24")
            if vfr:
                frame.pts, frame.time_base = int(round(clip.frame_times[index] * 1000)), Fraction(1, 1000)
            else:
                frame.pts = index
            container.mux(video_stream.encode(frame))
            # keep the audio just ahead of the video so that every container is well interleaved
            audio_until = int((clip.frame_times[index] + 0.2) * clip.sample_rate) if audio else 0
            while audio_written < min(audio_until, len(clip.audio)):
                container.mux(encode_audio(audio_stream, clip.audio, clip.sample_rate, audio_written, block))
                audio_written += block
        if video:
            container.mux(video_stream.encode(None))
        while audio and audio_written < len(clip.audio):
            container.mux(encode_audio(audio_stream, clip.audio, clip.sample_rate, audio_written, block))
            audio_written += block
        if audio:
            container.mux(audio_stream.encode(None))
    return path


def encode_audio(stream, audio: np.ndarray, sample_rate: int, start: int, block: int) -> list:
    import av

    samples = np.ascontiguousarray(audio[None, start: start + block], dtype=np.float32)
    frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
    frame.sample_rate, frame.pts = sample_rate, start
    frame.time_base = Fraction(1, sample_rate)
    return stream.encode(frame)


def make_talking_clip(path: str | Path, seconds: float = 4.0, *, seed: int = 0, speech: str = "synth",
                      audio: bool = True, video: bool = True, faces: int = 1, audio_shift_ms: float = 0.0,
                      size: int = 256, fps: float = 25.0, vfr: bool = False, text: str | None = None,
                      sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a deterministic talking-head test clip and return its path.

    Args:
        path: output file; its suffix picks the container and codecs: .mp4 (h264 + aac), .mov (h264 +
            pcm), .mkv (h264 + flac), .webm (vp9 + opus), .avi (mpeg4 + mp3), .flv (h264 + aac),
            .m4a / .wav (audio only).
        seconds: duration of audio and video.
        seed: every random choice (syllables, pitch, head motion, frame durations) follows it.
        speech: "synth" (vowel synthesizer), "tts" (espeak-ng speaking ``text``), or "silence"
            (digital zeros, mouth closed).
        audio, video: which streams to write.
        faces: 1; 0 for a drifting noise picture without a face; 2 for two people side by side (the
            frame is then ``2 * size`` wide and only the left one speaks).
        audio_shift_ms: positive makes the audio late against the mouth, negative early.
        size: frame height (and width per face) in pixels, even.
        fps: video frame rate; with ``vfr`` the mean rate is about ``fps / 1.05``.
        vfr: seeded irregular frame durations (0.5-1.6 frame periods), as a phone records.
        text: what espeak-ng says in "tts" mode.
        sample_rate: audio sample rate of the file.
    """
    clip = render_talking_clip(seconds, seed=seed, speech=speech, faces=faces, audio_shift_ms=audio_shift_ms,
                               size=size, fps=fps, vfr=vfr, text=text, sample_rate=sample_rate)
    return write_clip(path, clip, audio=audio, video=video, fps=fps, vfr=vfr)
