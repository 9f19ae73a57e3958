"""Diffusion around :class:`~exposeanyone.models.ExamDenoiser`: noise, loss, reconstruction error, sampling.

The network never sees a scheduler: these functions own the noise schedule (diffusers ``DDPMScheduler``
for training and scoring, ``DDIMScheduler`` built from its config for sampling). Every function takes
*raw* expressions ``(batch, frames, 58)`` and raw audio features ``(batch, frames * mel_per_frame, n_mels)`` and normalises
them with the model's stored statistics, so callers never handle normalised data.
"""
from __future__ import annotations

import torch
from diffusers import DDIMScheduler, DDPMScheduler

from .model import ExamDenoiser

NUM_TRAIN_TIMESTEPS = 1000
BETA_SCHEDULE = "squaredcos_cap_v2"
MAX_FORWARD_BATCH = 128
"""Windows per forward pass when scoring, to bound memory on long clips."""


def training_scheduler(prediction_type: str = "sample") -> DDPMScheduler:
    """The noise schedule the model is trained and scored with (1000 steps, cosine)."""
    return DDPMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule=BETA_SCHEDULE,
                         prediction_type=prediction_type, clip_sample=False)


def sampling_scheduler(ddpm: DDPMScheduler) -> DDIMScheduler:
    """A DDIM sampler over the same schedule as ``ddpm``."""
    return DDIMScheduler.from_config(ddpm.config)


def schedulers_for(model: ExamDenoiser) -> tuple[DDPMScheduler, DDIMScheduler]:
    """The training scheduler and the sampler matching ``model.config.prediction_type``."""
    ddpm = training_scheduler(model.config.prediction_type)
    return ddpm, sampling_scheduler(ddpm)


def _alphas(scheduler: DDPMScheduler, timesteps: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    alpha_bar = scheduler.alphas_cumprod.to(like.device)[timesteps.to(like.device)].to(like.dtype)
    return alpha_bar.sqrt()[:, None, None], (1 - alpha_bar).sqrt()[:, None, None]


def predicted_x0(scheduler: DDPMScheduler, model_output: torch.Tensor, noisy: torch.Tensor,
                 timesteps: torch.Tensor) -> torch.Tensor:
    """The clean window implied by the network's output, whatever its prediction type.

    Args:
        model_output, noisy: ``(batch, frames, channels)``.
        timesteps: ``(batch,)`` long.
    Returns:
        ``(batch, frames, channels)`` normalised x0 estimate.
    """
    kind = scheduler.config.prediction_type
    if kind == "sample":
        return model_output
    signal, noise_scale = _alphas(scheduler, timesteps, noisy)
    if kind == "epsilon":
        return (noisy - noise_scale * model_output) / signal
    if kind == "v_prediction":
        return signal * noisy - noise_scale * model_output
    raise ValueError(f"unknown prediction type {kind!r}")


def _target(scheduler: DDPMScheduler, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    kind = scheduler.config.prediction_type
    if kind == "sample":
        return x0
    if kind == "epsilon":
        return noise
    return scheduler.get_velocity(x0, noise, timesteps)


def masked_mean_square(difference: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean of squares over the known frames and all channels: ``(batch, frames, c)`` -> ``(batch,)``."""
    return channel_mean_square(difference, frame_mask).mean(dim=1)


def channel_mean_square(difference: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean of squares over the known frames, per channel: ``(batch, frames, c)`` -> ``(batch, c)``."""
    weights = frame_mask.to(difference.dtype)[..., None]
    return (difference.pow(2) * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def training_loss(
    model: ExamDenoiser,
    scheduler: DDPMScheduler,
    x0: torch.Tensor,
    audio: torch.Tensor,
    adapter: torch.Tensor | None,
    frame_mask: torch.Tensor,
    generator: torch.Generator | None = None,
    timestep_range: tuple[int, int] = (0, NUM_TRAIN_TIMESTEPS),
) -> torch.Tensor:
    """The denoising loss on a batch of windows, averaged over its known frames.

    The squared error of the network's own prediction type (x0, noise or velocity). Measuring it on the
    reconstructed x0 instead, as the detector scores, was tried for v prediction and made the model
    lean less on audio (one 10-minute run on avdata).

    Args:
        x0: ``(batch, frames, 58)`` raw expressions.
        audio: ``(batch, frames * mel_per_frame, n_mels)`` raw audio features.
        adapter: ``(batch, n_tokens, width)``, ``(n_tokens, width)`` or ``None`` (null adapter).
        frame_mask: ``(batch, frames)`` bool, True where a face is known.
        generator: draws the timesteps and the noise (on the CPU, so runs are reproducible anywhere).
        timestep_range: ``[low, high)`` of the uniformly drawn timesteps.
    Returns:
        scalar loss.
    """
    device = x0.device
    clean = model.normalize_expressions(x0, frame_mask)
    batch = clean.shape[0]
    timesteps = torch.randint(timestep_range[0], timestep_range[1], (batch,), generator=generator).to(device)
    noise = torch.randn(clean.shape, generator=generator).to(device)
    noisy = scheduler.add_noise(clean, noise, timesteps)
    prediction = model(noisy, timesteps, audio, adapter_tokens=adapter, frame_mask=frame_mask).sample
    return masked_mean_square(prediction - _target(scheduler, clean, noise, timesteps), frame_mask).mean()


@torch.no_grad()
def reconstruction_errors(
    model: ExamDenoiser,
    scheduler: DDPMScheduler,
    x0: torch.Tensor,
    audio: torch.Tensor,
    adapter: torch.Tensor | None,
    frame_mask: torch.Tensor,
    timesteps: torch.Tensor,
    noises: torch.Tensor,
) -> torch.Tensor:
    """How well the model reconstructs each window from fixed noisings of it.

    Each window is noised at every timestep with every noise draw; the error is the squared distance
    between the reconstructed clean window and the observed one (normalised units, known frames only),
    averaged over all draws. Pass the *same* ``timesteps`` and ``noises`` when comparing adapters, so
    that the comparison is paired and the draws' randomness cancels.

    Args:
        x0: ``(batch, frames, 58)`` raw expressions.
        audio: ``(batch, frames * mel_per_frame, n_mels)`` raw audio features.
        adapter: ``(n_tokens, width)``, ``(batch, n_tokens, width)`` or ``None`` (null adapter).
        frame_mask: ``(batch, frames)`` bool.
        timesteps: ``(n_timesteps,)`` long.
        noises: ``(n_noises, frames, 58)`` standard normal, shared by all windows.
    Returns:
        ``(batch, 58)`` mean squared reconstruction error per channel (``.mean(-1)``: the window's error).
    """
    device = x0.device
    clean = model.normalize_expressions(x0, frame_mask)
    batch, frames, channels = clean.shape
    n_t, n_noise = len(timesteps), len(noises)
    per_window = n_t * n_noise
    tokens = model.expand_adapter(adapter, batch)
    # draw index d = (timestep i, noise j): row b * per_window + d
    draw_t = timesteps.to(device).repeat_interleave(n_noise)
    draw_noise = noises.to(device).repeat(n_t, 1, 1)
    errors = torch.empty((batch * per_window, channels), device=device)
    windows_per_pass = max(1, MAX_FORWARD_BATCH // per_window)
    for start in range(0, batch, windows_per_pass):
        stop = min(batch, start + windows_per_pass)
        n = stop - start
        rows = slice(start * per_window, stop * per_window)
        clean_rows = clean[start:stop].repeat_interleave(per_window, dim=0)
        mask_rows = frame_mask[start:stop].repeat_interleave(per_window, dim=0)
        t_rows = draw_t.repeat(n)
        noisy = scheduler.add_noise(clean_rows, draw_noise.repeat(n, 1, 1), t_rows)
        encoded = model.encode_audio(audio[start:stop]).repeat_interleave(per_window, dim=0)
        output = model(noisy, t_rows, None, adapter_tokens=tokens[start:stop].repeat_interleave(per_window, dim=0),
                       frame_mask=mask_rows, encoded_audio=encoded).sample
        errors[rows] = channel_mean_square(predicted_x0(scheduler, output, noisy, t_rows) - clean_rows, mask_rows)
    return errors.reshape(batch, per_window, channels).mean(dim=1)


@torch.no_grad()
def sample(
    model: ExamDenoiser,
    ddim: DDIMScheduler,
    audio: torch.Tensor,
    adapter: torch.Tensor | None,
    steps: int = 25,
    generator: torch.Generator | None = None,
    offset: torch.Tensor | None = None,
) -> torch.Tensor:
    """Generate expressions for the given audio with DDIM (deterministic, eta = 0).

    Args:
        audio: ``(batch, frames * mel_per_frame, n_mels)`` raw audio features.
        adapter: ``(n_tokens, width)``, ``(batch, n_tokens, width)`` or ``None`` (the generic model).
        steps: DDIM steps.
        generator: draws the starting noise (on the CPU).
        offset: ``(batch, 58)`` window level to add back (the model generates window-relative
            expressions), e.g. ``model.window_offset`` of the observed windows.
    Returns:
        ``(batch, frames, 58)`` raw (denormalised) expressions.
    """
    device = audio.device
    batch = audio.shape[0]
    frames = audio.shape[1] // model.config.mel_per_frame
    scheduler = DDIMScheduler.from_config(ddim.config)  # a private copy: set_timesteps mutates it
    scheduler.set_timesteps(steps)
    tokens = model.expand_adapter(adapter, batch)
    encoded = model.encode_audio(audio)
    current = torch.randn((batch, frames, model.config.n_channels), generator=generator).to(device)
    current = current * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        output = model(current, t.to(device), None, adapter_tokens=tokens, encoded_audio=encoded).sample
        current = scheduler.step(output, t, current, eta=0.0).prev_sample
    return model.denormalize_expressions(current, offset)
