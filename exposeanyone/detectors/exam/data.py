"""The EXAM model's inputs: clips cut into fixed-length windows, and the random training draws.

A window is :data:`WINDOW_FRAMES` frames (4 s) of expressions, the matching audio features (the
model's kind, see :mod:`~exposeanyone.detectors.audio_inputs`: Whisper encoder features, one row a frame, or log-mel, four rows a
frame), and a mask of the frames where a face is known. Clips shorter than a window are padded at the
end with masked frames and silent audio. Scoring uses sliding windows; training draws random crops, optionally time-warped.
The loss and the score count every frame with a known face, silent or not (how a person moves between
words is theirs too); speech only decides whether a window is scored at all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ...core.config import N_MELS
from ...media.clip import ClipFeatures
from ..audio_inputs import clip_audio
from ..windows import MIN_FACE_RATIO, SCORING_STRIDE, WINDOW_FRAMES, window_starts, window_usable


@dataclass(frozen=True)
class ClipArrays:
    """A clip's model inputs as plain arrays, padded to at least one window."""

    expressions: np.ndarray
    """``(frames, 58)`` float32 blendshapes + head pose."""
    audio: np.ndarray
    """``(frames * rate, channels)`` float32 audio features (``rate`` rows a frame: 1 Whisper, 4 log-mel)."""
    frame_mask: np.ndarray
    """``(frames,)`` bool: a face is known (False on padding)."""
    speech: np.ndarray
    """``(frames,)`` bool: speech is active (False on padding)."""
    num_clip_frames: int
    """Frames of the clip before padding."""

    @property
    def num_frames(self) -> int:
        return len(self.frame_mask)

    @property
    def audio_per_frame(self) -> int:
        return len(self.audio) // self.num_frames


@dataclass(frozen=True)
class WindowBatch:
    """Windows stacked for the model."""

    expressions: np.ndarray
    """``(windows, frames, 58)`` float32."""
    audio: np.ndarray
    """``(windows, frames * rate, channels)`` float32 audio features (see :class:`ClipArrays`)."""
    frame_mask: np.ndarray
    """``(windows, frames)`` bool."""
    speech: np.ndarray
    """``(windows, frames)`` bool."""
    starts: np.ndarray
    """``(windows,)`` int first clip frame of each window."""

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def usable(self) -> np.ndarray:
        """``(windows,)`` bool: enough face and speech to be scored."""
        return window_usable(self.frame_mask, self.speech)

    def select(self, keep: np.ndarray) -> "WindowBatch":
        return WindowBatch(self.expressions[keep], self.audio[keep], self.frame_mask[keep],
                           self.speech[keep], self.starts[keep])


def clip_arrays(clip: ClipFeatures, window: int = WINDOW_FRAMES, audio_features: str = "log-mel") -> ClipArrays:
    """The model inputs of ``clip`` with audio of the kind ``audio_features``, padded at the end to at
    least ``window`` frames."""
    n = clip.num_frames
    pad = max(0, window - n)
    expressions = np.asarray(clip.track.expressions(), dtype=np.float32)
    mask = np.asarray(clip.track.valid, dtype=bool)
    # frames without a face hold zeros by contract; make sure nothing else leaks from them
    expressions = np.where(mask[:, None], expressions, 0.0).astype(np.float32)
    audio, silence = clip_audio(clip, audio_features)
    rate = len(audio) // max(n, 1)
    return ClipArrays(
        expressions=np.pad(expressions, ((0, pad), (0, 0))),
        audio=np.pad(audio, ((0, pad * rate), (0, 0)), constant_values=silence),
        frame_mask=np.pad(mask, (0, pad)),
        speech=np.pad(np.asarray(clip.audio.speech, dtype=bool), (0, pad)),
        num_clip_frames=n,
    )


def _stack(arrays: ClipArrays, starts: np.ndarray, window: int) -> WindowBatch:
    frame_index = starts[:, None] + np.arange(window)
    rate = arrays.audio_per_frame
    audio_index = starts[:, None] * rate + np.arange(window * rate)
    return WindowBatch(
        expressions=arrays.expressions[frame_index],
        audio=arrays.audio[audio_index],
        frame_mask=arrays.frame_mask[frame_index],
        speech=arrays.speech[frame_index],
        starts=np.asarray(starts, dtype=int),
    )


def sliding_windows(clip: ClipFeatures | ClipArrays, window: int = WINDOW_FRAMES,
                    stride: int = SCORING_STRIDE) -> WindowBatch:
    """Windows every ``stride`` frames, the last one flush with the clip's end (one for a short clip)."""
    arrays = clip if isinstance(clip, ClipArrays) else clip_arrays(clip, window)
    return _stack(arrays, window_starts(arrays.num_clip_frames, window, stride), window)


def _resample_rows(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` ``(n, c)`` at fractional row ``positions`` ``(m,)``."""
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, len(values) - 1)
    weight = (positions - low)[:, None].astype(np.float32)
    return values[low] * (1 - weight) + values[high] * weight


def random_window(arrays: ClipArrays, rng: np.random.Generator, window: int = WINDOW_FRAMES,
                  time_warp: float = 0.0) -> WindowBatch:
    """One random crop of ``arrays``, played ``1 +- time_warp`` times faster (uniformly drawn).

    Expressions and audio are warped together, so the audio-visual timing is kept.
    """
    rate = 1.0 + rng.uniform(-time_warp, time_warp) if time_warp > 0 else 1.0
    source_frames = min(arrays.num_frames, max(2, int(round(window * rate))))
    start = int(rng.integers(0, arrays.num_frames - source_frames + 1))
    if source_frames == window:
        return _stack(arrays, np.array([start]), window)
    positions = start + np.linspace(0, source_frames - 1, window)
    rate = arrays.audio_per_frame
    audio_positions = start * rate + np.linspace(0, source_frames * rate - 1, window * rate)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, arrays.num_frames - 1)
    nearest = np.round(positions).astype(int)
    return WindowBatch(
        expressions=_resample_rows(arrays.expressions, positions)[None].astype(np.float32),
        audio=_resample_rows(arrays.audio, audio_positions)[None].astype(np.float32),
        # an interpolated frame is known only if both frames it mixes are
        frame_mask=(arrays.frame_mask[low] & arrays.frame_mask[high])[None],
        speech=arrays.speech[nearest][None],
        starts=np.array([start]),
    )


def concatenate(batches: Sequence[WindowBatch]) -> WindowBatch:
    """Stack several batches into one."""
    return WindowBatch(
        expressions=np.concatenate([b.expressions for b in batches]),
        audio=np.concatenate([b.audio for b in batches]),
        frame_mask=np.concatenate([b.frame_mask for b in batches]),
        speech=np.concatenate([b.speech for b in batches]),
        starts=np.concatenate([b.starts for b in batches]),
    )


# --------------------------------------------------------------------------------------------- training draws
@dataclass(frozen=True)
class Augmentation:
    """Random changes to training windows that keep who is talking and what is said."""

    time_warp: float = 0.1
    """Windows are played up to this much faster or slower (expressions and audio together)."""
    time_warp_probability: float = 0.5
    mel_gain: float = 1.0
    """Uniform log-power offset (+-1 natural-log unit is +-4.3 dB): recording level."""
    mel_noise: float = 0.2
    """Standard deviation of Gaussian noise added to the log-mel."""
    band_drop_probability: float = 0.5
    max_band: int = 10
    """A band of up to this many mel bins is flattened (SpecAugment-style channel dropout)."""
    frequency_warp: float = 0.0
    """The mel axis may be stretched by up to this much (vocal-tract length perturbation), so that a
    higher or lower voice does not change what the mouth is expected to do. Off: 0.15 (with two other
    changes) made the model lean less on audio in a 10-minute avdata run."""
    motion_gain: float = 1.3
    """Null-token windows may have their motion scaled by up to this factor (or its inverse): the
    generic model must not assume one speaker's articulation, the identity tokens must."""
    motion_gain_probability: float = 0.5


PRETRAIN_AUGMENTATION = Augmentation()


def warp_frequencies(mel: np.ndarray, factor: float) -> np.ndarray:
    """``(time, bins)`` log-mel with its frequency axis stretched by ``factor`` (edges held)."""
    source = np.clip(np.arange(mel.shape[1]) / factor, 0, mel.shape[1] - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, mel.shape[1] - 1)
    weight = (source - low).astype(np.float32)
    return mel[:, low] * (1 - weight) + mel[:, high] * weight


def augment_audio(audio: np.ndarray, rng: np.random.Generator, augmentation: Augmentation) -> np.ndarray:
    """A window's audio features ``(frames * rate, channels)`` changed as another recording would (a new array)."""
    if audio.shape[1] != N_MELS:
        return augment_speech_features(audio, rng, augmentation)
    mel = audio
    floor = mel.min()
    if augmentation.frequency_warp > 0:
        mel = warp_frequencies(mel, 1.0 + rng.uniform(-augmentation.frequency_warp, augmentation.frequency_warp))
    out = np.maximum(mel + rng.uniform(-augmentation.mel_gain, augmentation.mel_gain), floor)
    out = out + rng.normal(0.0, augmentation.mel_noise, size=out.shape).astype(np.float32)
    if augmentation.max_band > 0 and rng.random() < augmentation.band_drop_probability:
        width = int(rng.integers(1, augmentation.max_band + 1))
        low = int(rng.integers(0, out.shape[1] - width + 1))
        out[:, low:low + width] = out[:, low:low + width].mean(axis=0, keepdims=True)
    return out.astype(np.float32)


def augment_speech_features(features: np.ndarray, rng: np.random.Generator,
                            augmentation: Augmentation) -> np.ndarray:
    """Noise and channel dropout on a window's Whisper features ``(frames, 512)`` (a new array).

    The noise's spread is ``mel_noise`` times the window's (the features have no natural unit); with
    probability ``band_drop_probability`` up to ``max_band`` per cent of the channels are held at their
    window mean. Gain and frequency warp have no meaning for these features.
    """
    scale = float(features.std()) or 1.0
    out = features + rng.normal(0.0, augmentation.mel_noise * scale, size=features.shape).astype(np.float32)
    if augmentation.max_band > 0 and rng.random() < augmentation.band_drop_probability:
        count = int(rng.integers(1, augmentation.max_band * features.shape[1] // 100 + 2))
        dropped = rng.choice(features.shape[1], size=count, replace=False)
        out[:, dropped] = out[:, dropped].mean(axis=0, keepdims=True)
    return out.astype(np.float32)


def amplify_motion(expressions: np.ndarray, frame_mask: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Scale each window's movement around its mean: ``(windows, frames, 58)``, gains ``(windows,)``."""
    known = frame_mask[..., None].astype(np.float32)
    mean = (expressions * known).sum(axis=1, keepdims=True) / np.maximum(known.sum(axis=1, keepdims=True), 1.0)
    return ((mean + gains[:, None, None] * (expressions - mean)) * known).astype(np.float32)


def sampling_weights(clips: Sequence[ClipArrays], identities: Sequence[int], balance: float) -> np.ndarray:
    """``(clips,)`` probabilities: identity ``i`` gets a share proportional to its footage ** ``balance``,
    split among its clips in proportion to their length."""
    lengths = np.array([c.num_clip_frames for c in clips], dtype=float)
    ids = np.asarray(identities)
    footage = {i: lengths[ids == i].sum() for i in set(ids.tolist())}
    weights = np.array([length / footage[i] * footage[i] ** balance for length, i in zip(lengths, ids)])
    return weights / weights.sum()


def draw_windows(clips: Sequence[ClipArrays], rng: np.random.Generator, count: int,
                 augmentation: Augmentation, window: int = WINDOW_FRAMES,
                 weights: np.ndarray | None = None) -> tuple[WindowBatch, np.ndarray]:
    """``count`` random training windows, clips drawn with probabilities ``weights`` (default: in
    proportion to their length).

    Returns the windows and ``(count,)`` the index of the clip each came from. A window with a face
    in fewer than :data:`MIN_FACE_RATIO` of its frames is redrawn (a few times at most). Only the audio
    is augmented here (see :func:`amplify_motion` for the expressions).
    """
    if weights is None:
        lengths = np.array([c.num_clip_frames for c in clips], dtype=float)
        weights = lengths / lengths.sum()
    clip_index = rng.choice(len(clips), size=count, p=weights)
    windows = []
    for index in clip_index:
        for _ in range(8):
            warp = augmentation.time_warp if rng.random() < augmentation.time_warp_probability else 0.0
            drawn = random_window(clips[index], rng, window, time_warp=warp)
            if drawn.frame_mask.mean() >= MIN_FACE_RATIO:
                break
        audio = augment_audio(drawn.audio[0], rng, augmentation)[None]
        windows.append(WindowBatch(drawn.expressions, audio, drawn.frame_mask, drawn.speech, drawn.starts))
    return concatenate(windows), clip_index


def window_tensors(batch: WindowBatch, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch's expressions ``(windows, frames, 58)``, audio ``(windows, frames * rate, channels)`` and face mask
    ``(windows, frames)`` as tensors on ``device``."""
    return (torch.from_numpy(batch.expressions).to(device), torch.from_numpy(batch.audio).to(device),
            torch.from_numpy(batch.frame_mask).to(device))
