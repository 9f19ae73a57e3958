"""Personalisation: a person's adapter tokens learned from their genuine reference clips, the backbone frozen."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ...core.errors import NoFaceError
from ...core.memory import freed_memory_returned
from ...core.progress import ProgressFn, no_progress
from ...media.clip import ClipFeatures
from ..windows import MIN_FACE_RATIO
from .data import Augmentation, clip_arrays, draw_windows, window_tensors
from .diffusion import training_loss, training_scheduler
from .model import ExamDenoiser

PERSONALIZE_TIMESTEPS = (20, 700)
"""Timesteps of the personalisation loss. Measured on avdata (one pre-training, scoring at 600-900):
(20, 700) gave a dubbing AUC of 0.61 and an impostor AUC of 0.81, (300, 1000) 0.55 and 0.88, within
the noise of 22 dubbed clips; the one that favours dubbing, the harder case, is kept."""
PERSONALIZE_LR = 0.1
"""Adam learning rate of the adapter tokens; chosen with the detector's steps per second of reference
(see :data:`exposeanyone.detectors.exam.detector.PERSONALIZE_STEPS_PER_SECOND`)."""
PERSONALIZE_AUGMENTATION = Augmentation(time_warp=0.0, band_drop_probability=0.0, mel_noise=0.1,
                                        motion_gain_probability=0.0)
"""No time warp here: a person's speaking rate is part of what the tokens should learn."""


@freed_memory_returned(map_large_blocks=True)
def personalize(
    model: ExamDenoiser,
    clips: Sequence[ClipFeatures],
    *,
    steps: int,
    lr: float = PERSONALIZE_LR,
    batch_size: int = 8,
    seed: int = 0,
    progress: ProgressFn = no_progress,
    augmentation: Augmentation = PERSONALIZE_AUGMENTATION,
    timestep_range: tuple[int, int] = PERSONALIZE_TIMESTEPS,
) -> torch.Tensor:
    """Learn a person's adapter tokens from genuine reference clips, the backbone frozen.

    The tokens start from the null tokens and follow the pre-training loss. The model is left exactly
    as it was (weights, ``requires_grad`` flags and train/eval mode); dropout is off while fitting, so
    the same clips and seed give the same tokens.

    Args:
        clips: reference clips of one person.
        steps: Adam steps on the tokens.
        lr: Adam learning rate.
        batch_size: windows per step.
        seed: fixes the windows and the noise.
        progress: ``progress(fraction, message)``.
    Returns:
        ``(n_tokens, width)`` float32 adapter tokens (on the CPU).
    """
    window = model.config.window
    arrays = [clip_arrays(c, window, model.config.audio_features) for c in clips]
    if not any(a.frame_mask.sum() >= MIN_FACE_RATIO * window for a in arrays):
        raise NoFaceError("The reference clips need at least one stretch of 2 s with a visible face.")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    scheduler = training_scheduler(model.config.prediction_type)
    tokens = torch.nn.Parameter(model.null_adapter.detach().clone())
    optimizer = torch.optim.Adam([tokens], lr=lr)

    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    try:
        model.eval()
        model.requires_grad_(False)
        recent: list[float] = []
        for step in range(steps):
            batch, _ = draw_windows(arrays, rng, batch_size, augmentation, window)
            x0, mel, mask = window_tensors(batch, model.device)
            loss = training_loss(model, scheduler, x0, mel, tokens, mask, generator, timestep_range)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recent = (recent + [float(loss.detach())])[-10:]
            if (step + 1) % 10 == 0 or step + 1 == steps:
                progress((step + 1) / steps, f"personalising: step {step + 1}/{steps}, loss {np.mean(recent):.4f}")
    finally:
        for parameter, flag in zip(model.parameters(), flags):
            parameter.requires_grad_(flag)
        model.train(was_training)
    return tokens.detach().cpu().clone()
