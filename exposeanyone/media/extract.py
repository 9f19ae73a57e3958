"""From a video file to :class:`ClipFeatures`, once: decode, corrupt (optionally), smooth if noisy, track,
featurise, cache.

The cache key is the file's content hash plus every option that changes the result, so the app and the
CLI never track the same clip twice and a changed option never returns a stale track.
"""
from __future__ import annotations

import io
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.assets import FACE_LANDMARKER_SHA256, file_sha256
from ..core.config import FPS, SAMPLE_RATE, Limits, cache_dir
from ..core.errors import NoFaceError
from ..core.memory import freed_memory_returned
from ..core.progress import ProgressFn, no_progress
from ..core.storage import atomic_write_bytes
from .audio_features import audio_features
from .clip import ClipFeatures
from .corruptions import CorruptionSpec, add_audio_noise
from .decode import MediaInfo, iter_frames, probe, read_audio
from .denoise import denoise_frames

EXTRACTOR_VERSION = 2
"""Part of the cache key; 2 since noisy clips are smoothed before tracking (:mod:`~exposeanyone.media.denoise`)."""


def extract_clip(path: str | Path, corrupt: CorruptionSpec | None = None, *, limits: Limits | None = None,
                 use_cache: bool = True, refresh_cache: bool = False, require_face: bool = True,
                 speech_features: bool = True, progress: ProgressFn = no_progress) -> ClipFeatures:
    """Analyse a video file: its expression track and audio features on the 25 fps timeline.

    Args:
        path: a video with an audio track, in any container PyAV reads.
        corrupt: corruptions applied before tracking (:class:`~exposeanyone.media.corruptions.CorruptionSpec`;
            text such as ``"blur:3,jpeg:2"`` is parsed at the app and CLI edges by ``parse_corruption_spec``).
        limits: size, duration and resolution bounds, checked before any decoding.
        use_cache: read and write the track cache (``EXPOSEANYONE_CACHE_DIR``).
        refresh_cache: analyse again even when cached, and overwrite the entry (for timing runs).
        require_face: raise :class:`NoFaceError` when no frame shows a face.
        speech_features: also encode the (corrupted) audio with the Whisper speech encoder
            (``clip.audio.encoded``), cached beside the track under a key that names the encoder's hash.
    """
    if isinstance(corrupt, str):
        raise TypeError("extract_clip takes a CorruptionSpec; parse text with parse_corruption_spec first.")
    limits = limits or Limits.from_env()
    spec = corrupt or CorruptionSpec()
    info = probe(path, limits)
    file_hash = file_sha256(info.path)
    options = {"version": EXTRACTOR_VERSION, "corrupt": str(spec), "max_side": limits.max_side_px,
               "tracker": FACE_LANDMARKER_SHA256}
    key = _cache_key(file_hash, options)
    cached = _cache_path(key)
    clip = _load_cached(cached, info.path.name) if use_cache and not refresh_cache else None
    analysed = clip is None
    samples = None  # the (corrupted) audio, kept from the analysis so the speech encoder does not decode it again
    if analysed:
        clip, samples = _analyse(info, spec, limits, progress)
        clip = ClipFeatures(track=clip.track, audio=clip.audio, name=info.path.name,
                            content_hash=file_hash if not spec else key, corruption=str(spec),
                            waveform_envelope=clip.waveform_envelope)
    if require_face and not clip.track.valid.any():  # checked before caching: a refused file leaves nothing behind
        raise NoFaceError(f"No face was found in any frame of '{info.path.name}': the detectors need the "
                          "speaker's face visible and facing the camera.")
    if use_cache and analysed:
        _save_cached(cached, clip)
    if speech_features:
        clip = _with_speech_features(clip, info, spec, key, samples, use_cache, progress)
    progress(1.0, "analysed")
    return clip


def _with_speech_features(clip: ClipFeatures, info: MediaInfo, spec: CorruptionSpec, key: str,
                          samples: np.ndarray | None, use_cache: bool, progress: ProgressFn) -> ClipFeatures:
    """``clip`` with ``audio.encoded``: from the speech cache when the clip's track came from the cache too
    (``samples`` is None), else encoded now from ``samples``, or from the file's audio decoded again."""
    from .speech import SPEECH_ENCODER_SHA256, load_speech_encoder

    cached = _cache_path(_cache_key(key, {"speech_encoder": SPEECH_ENCODER_SHA256}), "speech")
    encoded = _load_speech_cached(cached, clip.num_frames) if use_cache and samples is None else None
    if encoded is None:
        progress(0.97, "encoding the speech")
        audio = samples if samples is not None else _corrupted_audio(info, spec)
        encoded = as_stored(load_speech_encoder().encode(audio, clip.num_frames))
        if use_cache:
            buffer = io.BytesIO()
            np.savez(buffer, encoded=encoded.astype(np.float16))
            atomic_write_bytes(cached, buffer.getvalue())
    return replace(clip, audio=replace(clip.audio, encoded=encoded))


def as_stored(encoded: np.ndarray) -> np.ndarray:
    """Speech features rounded through float16, as the cache keeps them, so that a clip scores the same
    whether its features were just computed or read back (float16 keeps 3 significant digits; the
    features' spread is about 1)."""
    return encoded.astype(np.float16).astype(np.float32)


def _load_speech_cached(path: Path, num_frames: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            encoded = np.asarray(data["encoded"], dtype=np.float32)
    except Exception:
        return None
    return encoded if encoded.shape[0] == num_frames and np.isfinite(encoded).all() else None


def _corrupted_audio(info: MediaInfo, spec: CorruptionSpec) -> np.ndarray:
    """The file's audio ``(samples,)`` at 16 kHz, with the spec's audio noise if it has any."""
    audio = read_audio(info)
    return audio if spec.audio_snr_db is None else add_audio_noise(audio, spec.audio_snr_db)


@freed_memory_returned()
def _analyse(info: MediaInfo, spec: CorruptionSpec, limits: Limits,
             progress: ProgressFn) -> tuple[ClipFeatures, np.ndarray]:
    """The clip's track and audio features, and the (corrupted) audio ``(samples,)`` they were made from."""
    from .corruptions import FrameCorruptor, reencode_h264
    from .tracking import FaceTracker

    with tempfile.TemporaryDirectory(prefix="exposeanyone-") as scratch:
        if spec.video_crf is not None:
            progress(0.0, f"re-encoding with H.264 CRF {spec.video_crf}")
            reencoded = Path(scratch) / "reencoded.mp4"
            reencode_h264(info.path, reencoded, spec.video_crf)
            info = probe(reencoded, limits)
        frames = iter_frames(info, limits.max_side_px)
        if spec.frame_corruptions:
            corrupt_frame = FrameCorruptor(spec)
            frames = (corrupt_frame(frame, index) for index, frame in enumerate(frames))
        frames, denoising = denoise_frames(frames)
        with FaceTracker(FPS) as tracker:
            for index, frame in enumerate(frames):
                tracker.add(frame)
                if index % 25 == 0:
                    progress(0.95 * index / info.num_frames, f"tracking the face: frame {index}/{info.num_frames}")
            track = tracker.finish()
        audio = _corrupted_audio(info, spec)
    track = replace(track, extra={**track.extra, "denoising": denoising.to_json()})
    clip = ClipFeatures(track=track, audio=audio_features(audio, track.num_frames),
                        waveform_envelope=waveform_envelope(audio, track.num_frames))
    return clip, audio


def waveform_envelope(audio: np.ndarray, num_frames: int) -> np.ndarray:
    """Peak absolute amplitude per video frame: ``(frames,)`` float32."""
    per_frame = SAMPLE_RATE // FPS
    audio = np.pad(audio[: num_frames * per_frame], (0, max(0, num_frames * per_frame - len(audio))))
    return np.abs(audio.reshape(num_frames, per_frame)).max(axis=1).astype(np.float32)


def _cache_key(file_hash: str, options: dict) -> str:
    import hashlib

    return hashlib.sha256((file_hash + json.dumps(options, sort_keys=True)).encode()).hexdigest()


def _cache_path(key: str, kind: str = "clips") -> Path:
    return cache_dir() / kind / key[:2] / f"{key}.npz"


def _save_cached(path: Path, clip: ClipFeatures) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **clip.to_arrays())
    atomic_write_bytes(path, buffer.getvalue())


def _load_cached(path: Path, name: str) -> ClipFeatures | None:
    """The cached analysis, or None when absent or unreadable (a bad cache entry is simply redone)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return ClipFeatures.from_arrays(data, name)
    except Exception:
        return None
