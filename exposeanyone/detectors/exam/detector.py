"""The ExposeAnyone detector: does this face move the way *this person* moves to *this audio*?

Enrollment learns the person's adapter tokens on their genuine reference clips (backbone frozen).
Scoring noises each 4-s window of the suspect clip at a fixed set of timesteps with fixed noise and
reconstructs it several times from the same noisy windows; a window's score is the product of two
ratios of reconstruction errors, each of which cancels how hard the content is (what is said, how much
the face moves), which a raw error would mostly measure:

- the **identity ratio** (the paper's): error with the person's tokens ÷ error with the null tokens, over
  the 52 blendshapes. Below 1: the person's own way of moving explains the face better than a generic
  talker does; someone else's face is not explained better.
- the **timing ratio**: error with the clip's own audio ÷ mean error with that audio moved by 1.4-2 s
  (:mod:`~exposeanyone.detectors.audio_reference`), person's tokens, jaw and mouth channels only. Below 1: the
  audio explains the lips better at its own timing. A face driven by other speech (dubbing, lip-sync
  fakes) is explained no better by its soundtrack than by a moved one.

With the identity ratio alone our base model, pre-trained on 39 minutes of talk, could not tell dubbing
from genuine speech (audio-swap AUC 0.57 on avdata): mismatched audio raised the error by only 2-4 %,
the same with and without the person's tokens, so the ratio cancelled it. The timing ratio measures
that effect directly.

The score is not normalised per person. Pooled over people, dubbing ranks worse than per person (on
reference footage, ``benchmarks/validation.py``: 0.74 against 0.83), since each person's genuine scores sit at
their own level; measuring the score against the person's calibration windows (z-score, median, 95th
percentile) raised the pooled dubbing AUC to 0.78-0.80 but lowered the pooled identity swap from 0.99 to
0.90-0.95 and the per-person dubbing AUC by up to 5 points, so the raw score and a per-person threshold stay.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ...core.assets import fingerprint
from ...core.config import torch_device
from ...core.errors import InputError, ProfileError
from ...core.jsonable import json_floats
from ...core.memory import freed_memory_returned
from ...core.progress import ProgressFn, no_progress
from ...media.clip import ClipFeatures
from ...media.track import BLENDSHAPE_NAMES, SPEECH_CHANNELS
from ..audio_reference import reference_shifts, shifted_audio
from ..base import DetectorOutput, PersonModel
from ..windows import SCORING_STRIDE, WINDOW_FRAMES, window_starts, windowed_output
from .data import ClipArrays, WindowBatch, clip_arrays, sliding_windows
from .diffusion import reconstruction_errors, sample, schedulers_for
from .model import ExamDenoiser
from .personalize import PERSONALIZE_LR, personalize

TIMING_TIMESTEPS = (600, 700, 800, 900)
"""Noise levels of the timing ratio. At low noise the noisy window still shows what the face did and
the reconstruction copies it, whatever the audio: on the avdata persons of interest (one 10-minute
pre-training) 50-300 gave a dubbing AUC of 0.48, 50-600 0.52 and 600-900 0.61, the best tried."""
IDENTITY_TIMESTEPS = (400, 600, 700)
"""Noise levels of the identity ratio. Chosen with ``benchmarks/validation.py`` (reference footage only):
with the blendshapes at 400-700 instead of all channels at 600-900, identity swap rose from 0.66 to
0.72 and dubbing from 0.71 to 0.78 (mean per person; both better in 95-100 % of bootstrap draws); with
the better-trained tokens since (:data:`PERSONALIZE_STEPS_PER_SECOND`), 0.79 to 0.88 and 0.77 to 0.82."""
IDENTITY_CHANNELS = tuple(range(len(BLENDSHAPE_NAMES)))
"""The blendshapes. Head pose is left out of the identity ratio: its ratio ranked other people's
footage as *more* like the person than their own (identity-swap AUC 0.37-0.47 at every noise level in
``benchmarks/validation.py``); how far a head moves in the picture depends on the framing."""
PERSONALIZE_STEPS_PER_SECOND = 6.0
"""Adapter-token steps per second of usable reference footage (bounded below and above). A step of 8
windows costs about 0.09 CPU-s. Chosen with the learning rate on reference footage
(``benchmarks/validation.py``'s leave-one-piece-out protocol, 16 pieces): at 3 steps per second and a
rate of 0.03 the tokens were under-trained (identity swap 0.72, dubbing 0.78 mean per person); 6 steps
per second at 0.1 gave 0.88 and 0.82. Longer reference is capped, so that enrollment, which
personalises three times (two calibration folds and the final fit), stays within 1.5 s per second."""
GENERATION_SAMPLES = 8
"""DDIM samples averaged into the plotted trajectory (see :meth:`ExamDetector.generate`). One sample zigzags
from frame to frame; the average is what this person's model expects for the sound, not one possible take.
Measured on the persons' reference clips (``benchmarks/trajectories.py --on-reference --generation-samples K``,
8 clips, generated vs observed jawOpen: median correlation and the ratio of frame-to-frame change). With the
5400-step base model: 4 samples 0.373 and 1.05, **8 samples 0.406 and 0.90**, 16 samples 0.423 and 0.78 (at twice
the cost of 8, about 0.3 s more per 10-s clip on 2 CPU cores, for a gain within the noise of 8 clips, and
smoother than a real mouth). With the 1800-step model: 1 sample 0.32 and 1.71, 4 samples 0.37 and 1.05, 16
samples 0.41 and 0.75. Neither the sampler nor a shortcut helped (5400-step model, 8 samples, same clips, a one-off
variant of that command): DDIM's "trailing" steps, which start from the last noise level, 0.41 and 0.95; 25 such steps
0.41 and 0.98; the one-step estimate of the clean window from pure noise, the model's conditional mean, 0.39 and
0.77. The generic linear Whisper map gets 0.41 on these clips (``--on-reference --detector whisper-ridge``)."""
MIN_PERSONALIZE_STEPS = 40
MAX_PERSONALIZE_STEPS = 150


class ExamDetector:
    """Personalised audio-to-expression diffusion detector (higher score = more likely fake).

    Args:
        model: a pre-trained :class:`ExamDenoiser`.
        identity_timesteps: noise levels of the identity ratio (see :data:`IDENTITY_TIMESTEPS`).
        timing_timesteps: noise levels of the timing ratio (see :data:`TIMING_TIMESTEPS`).
        n_noises: noise draws per timestep.
        window: frames per scored window.
        stride: frames between scored windows.
        seed: fixes the noise draws (so a clip always gets the same score) and personalisation.
        generation_steps: DDIM steps for the generated trajectory shown in plots; 0 skips it.
        generation_samples: DDIM samples (from consecutive seeds) averaged into that trajectory.
        personalize_lr: Adam learning rate of the adapter tokens.
        personalize_steps_per_second: token-fitting steps per second of usable reference footage.
    """

    name = "exam"
    requires_enrollment = True

    def __init__(self, model: ExamDenoiser, *, identity_timesteps: Sequence[int] = IDENTITY_TIMESTEPS,
                 timing_timesteps: Sequence[int] = TIMING_TIMESTEPS, n_noises: int = 2,
                 window: int = WINDOW_FRAMES, stride: int = SCORING_STRIDE, seed: int = 0,
                 generation_steps: int = 10, generation_samples: int = GENERATION_SAMPLES,
                 personalize_lr: float = PERSONALIZE_LR,
                 personalize_steps_per_second: float = PERSONALIZE_STEPS_PER_SECOND):
        if window > model.config.window or window % model.config.frames_per_token:
            raise ValueError(f"the model reads windows of at most {model.config.window} frames, "
                             f"in multiples of {model.config.frames_per_token}")
        self.model = model.eval()
        self.ddpm, self.ddim = schedulers_for(model)
        self.window, self.stride, self.seed = window, stride, seed
        self.generation_steps, self.generation_samples = generation_steps, max(1, generation_samples)
        self.personalize_lr = personalize_lr
        self.personalize_steps_per_second = personalize_steps_per_second
        self.identity_timesteps = torch.tensor(identity_timesteps, dtype=torch.long)
        self.timing_timesteps = torch.tensor(timing_timesteps, dtype=torch.long)
        self.noises = torch.randn((n_noises, window, model.config.n_channels),
                                  generator=torch.Generator().manual_seed(seed))
        self.backbone = backbone_fingerprint(model)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs) -> "ExamDetector":
        """Load the model saved by ``ExamDenoiser.save_pretrained`` (or ``pretrain_exam``) in ``path``."""
        model = ExamDenoiser.from_pretrained(Path(path), low_cpu_mem_usage=False)
        return cls(model.to(torch_device()), **kwargs)

    # ------------------------------------------------------------------------------------------ enroll
    def personalize_steps(self, usable_seconds: float) -> int:
        """Token-fitting steps for this much usable reference footage."""
        steps = round(self.personalize_steps_per_second * usable_seconds)
        return int(min(MAX_PERSONALIZE_STEPS, max(MIN_PERSONALIZE_STEPS, steps)))

    def enroll(self, clips: Sequence[ClipFeatures], progress: ProgressFn = no_progress) -> PersonModel:
        """Learn one person's adapter tokens from genuine reference clips.

        Returns:
            ``PersonModel(detector="exam", tensors={"adapter_tokens": (n_tokens, width)}, info)``.
        Raises:
            InputError: no reference clip has a window with enough face and speech.
        """
        usable_windows = sum(int(sliding_windows(c, self.window, self.stride).usable.sum()) for c in clips)
        if usable_windows == 0:
            raise InputError("The reference clips have no 4-second stretch with the face visible half of the "
                             "time and speech a quarter of the time; add clips of the person speaking.")
        usable_seconds = sum(float(c.usable.sum()) / c.fps for c in clips)
        steps = self.personalize_steps(usable_seconds)
        started = time.monotonic()
        tokens = personalize(self.model, clips, steps=steps, lr=self.personalize_lr, seed=self.seed,
                             progress=progress)
        info = {
            "backbone": self.backbone,
            "reference_clips": len(clips),
            "reference_seconds": round(sum(c.duration_s for c in clips), 2),
            "usable_seconds": round(usable_seconds, 2),
            "usable_windows": usable_windows,
            "personalize_steps": steps,
            "personalize_lr": self.personalize_lr,
            "personalize_seconds": round(time.monotonic() - started, 2),
            "seed": self.seed,
        }
        return PersonModel(detector=self.name, tensors={"adapter_tokens": tokens.numpy()}, info=info)

    def _adapter(self, person: PersonModel | None) -> torch.Tensor:
        if person is None:
            raise ProfileError("The EXAM detector scores a clip against an enrolled person; enroll one first.")
        if person.detector != self.name:
            raise ProfileError(f"This profile was made by the '{person.detector}' detector, not by EXAM.")
        tokens = person.tensors.get("adapter_tokens")
        expected = tuple(self.model.null_adapter.shape)
        if tokens is None or tuple(np.shape(tokens)) != expected or not np.isfinite(tokens).all():
            raise ProfileError("This profile's EXAM adapter tokens are missing or damaged; enroll the person again.")
        if person.info.get("backbone", self.backbone) != self.backbone:
            raise ProfileError("This profile was enrolled with another EXAM model; enroll the person again.")
        return torch.as_tensor(np.asarray(tokens, dtype=np.float32), device=self.model.device)

    def _arrays(self, clip: ClipFeatures) -> ClipArrays:
        """``clip``'s model inputs, with the audio features this model was trained on."""
        return clip_arrays(clip, self.window, self.model.config.audio_features)

    # ------------------------------------------------------------------------------------------ score
    @freed_memory_returned()
    def score(self, clip: ClipFeatures, person: PersonModel | None = None) -> DetectorOutput:
        """Score ``clip`` against ``person``'s tokens.

        Returns:
            a :class:`DetectorOutput` whose window scores are identity ratio x timing ratio (NaN for
            windows short of face or speech), with ``trajectories`` ``{"observed": (frames, 58),
            "generated": (frames, 58)}`` (observed NaN where no face is known) and ``extras`` holding
            both ratios and the errors behind them for every window.
        """
        adapter = self._adapter(person)
        arrays = self._arrays(clip)
        windows = sliding_windows(arrays, self.window, self.stride)
        usable = windows.usable
        shifts = reference_shifts(clip.num_frames)
        errors = {key: np.full(len(windows), np.nan) for key in
                  ("error_with", "error_without", "speech_error", "speech_error_moved")}
        if usable.any() and shifts:
            for key, values in self._window_errors(clip, windows, usable, adapter, shifts).items():
                errors[key][usable] = values
        with np.errstate(invalid="ignore", divide="ignore"):
            identity_ratio = errors["error_with"] / errors["error_without"]
            timing_ratio = errors["speech_error"] / errors["speech_error_moved"]
        window_scores = identity_ratio * timing_ratio
        observed = np.where(arrays.frame_mask[:, None], arrays.expressions, np.nan)[:clip.num_frames]
        trajectories = {"observed": observed}
        if self.generation_steps > 0:
            trajectories["generated"] = self.generate(arrays, adapter)
        return windowed_output(
            self.name, clip.num_frames, windows.starts, self.window, window_scores,
            trajectories=trajectories,
            extras={
                "identity_ratio": json_floats(identity_ratio),
                "timing_ratio": json_floats(timing_ratio),
                **{key: json_floats(values) for key, values in errors.items()},
                "audio_shifts": shifts,
                "identity_timesteps": self.identity_timesteps.tolist(),
                "timing_timesteps": self.timing_timesteps.tolist(),
                "n_noises": len(self.noises),
                "stride": self.stride,
            },
        )

    def _window_errors(self, clip: ClipFeatures, windows: WindowBatch, usable: np.ndarray, adapter: torch.Tensor,
                       shifts: list[int]) -> dict[str, np.ndarray]:
        """The errors behind both ratios for the ``usable`` ``windows``, each ratio from one batched pass.

        Every reconstruction within a ratio sees the same noisy windows (same timesteps and noise
        draws), so each ratio compares like with like.
        """
        chosen = windows.select(usable)
        moved_audio = [sliding_windows(self._arrays(shifted_audio(clip, shift)), self.window,
                                       self.stride).audio[usable] for shift in shifts]
        null = self.model.null_adapter.detach()
        # rows: [person] [null], both with the clip's own audio
        identity = self._errors(chosen, [chosen.audio] * 2, [adapter, null], self.identity_timesteps)
        # rows: [own audio] [moved audio 1] ... [moved audio k], all with the person's tokens
        timing = self._errors(chosen, [chosen.audio, *moved_audio], [adapter] * (1 + len(shifts)), self.timing_timesteps)
        identity = identity[..., list(IDENTITY_CHANNELS)].mean(axis=-1)
        speech = timing[..., list(SPEECH_CHANNELS)].mean(axis=-1)
        return {"error_with": identity[0], "error_without": identity[1],
                "speech_error": speech[0], "speech_error_moved": speech[1:].mean(axis=0)}

    def _errors(self, windows: WindowBatch, audios: list[np.ndarray], adapters: list[torch.Tensor],
                timesteps: torch.Tensor) -> np.ndarray:
        """``(len(audios), windows, 58)`` per-channel errors of ``windows`` reconstructed with each
        ``(audio, adapter)`` pair in one batch."""
        device, n, copies = self.model.device, len(windows.audio), len(audios)
        tokens = torch.cat([adapter.expand(n, -1, -1) for adapter in adapters])
        errors = reconstruction_errors(
            self.model, self.ddpm, torch.from_numpy(windows.expressions).to(device).repeat(copies, 1, 1),
            torch.from_numpy(np.concatenate(audios)).to(device), tokens,
            torch.from_numpy(windows.frame_mask).to(device).repeat(copies, 1), timesteps, self.noises)
        return errors.cpu().double().numpy().reshape(copies, n, -1)

    def generate(self, clip: ClipFeatures | ClipArrays, adapter: torch.Tensor | None) -> np.ndarray:
        """What the person's model makes of the clip's audio: ``(frames, 58)`` raw expressions.

        Non-overlapping windows (the last one flush with the end) are sampled with DDIM from a fixed
        seed, :attr:`generation_samples` times in one batch, averaged, and put end to end; each window is
        placed at the observed window's mean level.
        """
        arrays = clip if isinstance(clip, ClipArrays) else self._arrays(clip)
        starts = window_starts(arrays.num_clip_frames, self.window, self.window)
        windows = sliding_windows(arrays, self.window, self.window)
        device = self.model.device
        x0 = torch.from_numpy(windows.expressions).to(device)
        mask = torch.from_numpy(windows.frame_mask).to(device)
        copies = self.generation_samples  # drawn in one batch: copy k of window w is row k * windows + w
        audio = torch.from_numpy(windows.audio).to(device).repeat(copies, 1, 1)
        offset = self.model.window_offset(x0, mask).repeat(copies, 1)
        generated = sample(self.model, self.ddim, audio, adapter, steps=self.generation_steps,
                           generator=torch.Generator().manual_seed(self.seed), offset=offset).cpu().numpy()
        generated = generated.reshape(copies, len(windows), *generated.shape[1:]).mean(axis=0)
        out = np.full((max(arrays.num_clip_frames, self.window), generated.shape[-1]), np.nan, np.float32)
        for start, window in zip(reversed(starts), reversed(generated)):
            out[start:start + self.window] = window  # earlier windows win where the last one overlaps
        return out[:arrays.num_clip_frames]


def backbone_fingerprint(model: ExamDenoiser) -> str:
    """A short :func:`~exposeanyone.core.assets.fingerprint` of the model's config and weights, kept in the
    person's ``info`` as ``backbone``: a profile only fits the backbone it was made with, also when the detector
    was built from a model in memory (tests, ``benchmarks/validation.py``) rather than from the registry's
    weights file, whose fingerprint the card keeps (:func:`~exposeanyone.detectors.registry.profile_fingerprint`)."""
    settings = {key: value for key, value in dict(model.config).items() if not key.startswith("_")}

    def parts():
        yield repr(sorted(settings.items())).encode()
        for name, tensor in sorted(model.state_dict().items()):
            yield name.encode()
            yield tensor.detach().cpu().contiguous().numpy().tobytes()

    return fingerprint(parts())[:16]
