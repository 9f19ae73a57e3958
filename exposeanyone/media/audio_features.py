"""Log-mel features and speech activity, aligned with the 25 fps video timeline.

The mel frames are centred on the video frame times: mel frame ``j`` covers the audio around
``j / 100`` s, so video frame ``i`` owns mel frames ``4 i … 4 i + 3``. Pure numpy, so it is
identical on every machine and needs no JIT warm-up.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..core.config import FPS, MEL_PER_FRAME, N_MELS, SAMPLE_RATE

N_FFT = 512
WIN_LENGTH = 320
HOP_LENGTH = SAMPLE_RATE // (FPS * MEL_PER_FRAME)  # 160 samples = 10 ms
LOG_FLOOR = 1e-5


@dataclass(frozen=True)
class AudioFeatures:
    """Audio of one clip on the video timeline."""

    mel: np.ndarray
    """``(frames * 4, 80)`` float32 log-mel (natural log of power), 100 Hz."""
    speech: np.ndarray
    """``(frames,)`` bool: speech is active during this video frame."""
    energy_db: np.ndarray
    """``(frames,)`` float32 frame loudness in dB relative to full scale."""
    encoded: np.ndarray | None = None
    """``(frames, 512)`` float32 Whisper-base encoder features (:mod:`~exposeanyone.media.speech`): what is
    said; None when the clip was analysed without them."""

    @property
    def num_frames(self) -> int:
        return int(len(self.speech))

    @property
    def speech_ratio(self) -> float:
        return float(self.speech.mean()) if self.num_frames else 0.0

    def per_frame(self) -> np.ndarray:
        """The 4 mel frames of each video frame side by side: ``(frames, 320)``."""
        return self.mel.reshape(self.num_frames, MEL_PER_FRAME * N_MELS)

    def slice(self, start: int, stop: int) -> "AudioFeatures":
        return AudioFeatures(
            mel=self.mel[start * MEL_PER_FRAME: stop * MEL_PER_FRAME],
            speech=self.speech[start:stop],
            energy_db=self.energy_db[start:stop],
            encoded=None if self.encoded is None else self.encoded[start:stop],
        )

    def fitted_to(self, num_frames: int) -> "AudioFeatures":
        """Trimmed, or looped, to exactly ``num_frames`` video frames (used to swap audio between clips)."""
        if self.num_frames == 0:
            raise ValueError("cannot fit empty audio features to a length")
        return self.at_frames(np.arange(num_frames) % self.num_frames)

    def at_frames(self, index: np.ndarray) -> "AudioFeatures":
        """The audio of video frames ``index`` ``(frames,)`` int, in that order."""
        mel_index = (np.asarray(index)[:, None] * MEL_PER_FRAME + np.arange(MEL_PER_FRAME)).reshape(-1)
        return AudioFeatures(mel=self.mel[mel_index], speech=self.speech[index], energy_db=self.energy_db[index],
                             encoded=None if self.encoded is None else self.encoded[index])


@lru_cache(maxsize=4)
def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """HTK-scale triangular filters with Slaney area normalisation: ``(n_mels, n_fft // 2 + 1)``."""
    def hz_to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def mel_to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    fft_freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_freqs[None] - lower) / (centre - lower)
    falling = (upper - fft_freqs[None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (upper - lower))
    return weights.astype(np.float32)


def log_mel(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """Log-mel power of mono 16 kHz ``audio`` at 100 Hz for ``num_frames`` video frames.

    Args:
        audio: ``(samples,)`` float32 in [-1, 1]; padded with silence or cut to the video length.
        num_frames: number of 25 fps video frames.
    Returns:
        ``(num_frames * 4, 80)`` float32.
    """
    n_mel_frames = num_frames * MEL_PER_FRAME
    wanted = n_mel_frames * HOP_LENGTH
    audio = np.asarray(audio, dtype=np.float32)[:wanted]
    audio = np.pad(audio, (0, wanted - len(audio)))
    padded = np.pad(audio, (N_FFT // 2, N_FFT // 2))
    starts = np.arange(n_mel_frames) * HOP_LENGTH + HOP_LENGTH // 2
    window = np.zeros(N_FFT, dtype=np.float32)
    offset = (N_FFT - WIN_LENGTH) // 2
    window[offset: offset + WIN_LENGTH] = np.hanning(WIN_LENGTH + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[starts]
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return np.log(power @ mel_filterbank().T + LOG_FLOOR).astype(np.float32)


def frame_energy_db(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """RMS loudness of each video frame's 40 ms of audio, in dBFS: ``(num_frames,)``."""
    per_frame = SAMPLE_RATE // FPS
    audio = np.asarray(audio, dtype=np.float32)[: num_frames * per_frame]
    audio = np.pad(audio, (0, num_frames * per_frame - len(audio)))
    rms = np.sqrt(np.mean(audio.reshape(num_frames, per_frame) ** 2, axis=1) + 1e-12)
    return (20 * np.log10(rms + 1e-9)).astype(np.float32)


def speech_activity(energy_db: np.ndarray, min_level_db: float = -50.0, margin_db: float = 15.0,
                    hangover_frames: int = 4) -> np.ndarray:
    """Energy-based voice activity: ``(frames,)`` bool.

    A frame is speech when it is louder than both an absolute floor and the clip's noise floor (its
    10th loudness percentile) plus a margin; short pauses inside speech are bridged by a hangover so
    that words are not cut into pieces.
    """
    if len(energy_db) == 0:
        return np.zeros(0, dtype=bool)
    noise_floor, loud = np.percentile(energy_db, [10, 95])
    # a clip of continuous speech has no quiet floor to measure: then 25 dB under its loud level counts
    threshold = max(min_level_db, min(noise_floor + margin_db, loud - 25.0))
    active = energy_db > threshold
    if hangover_frames > 0 and active.any():
        kernel = np.ones(2 * hangover_frames + 1)
        active = np.convolve(active.astype(float), kernel, mode="same") > 0
    return active


def audio_features(audio: np.ndarray, num_frames: int) -> AudioFeatures:
    """All audio features of a clip with ``num_frames`` video frames (``audio``: ``(samples,)`` 16 kHz)."""
    energy = frame_energy_db(audio, num_frames)
    return AudioFeatures(mel=log_mel(audio, num_frames), speech=speech_activity(energy), energy_db=energy)
