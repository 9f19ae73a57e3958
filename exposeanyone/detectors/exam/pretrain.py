"""Training the EXAM denoiser: pre-training on many speakers, and personalisation of adapter tokens.

Pre-training learns, besides the shared backbone and its null tokens, one set of adapter tokens per
pre-training identity, and uses the null tokens for half of the windows. The backbone thus learns to
*read* identity tokens, which is what makes a person's tokens, learned later with the backbone frozen,
worth anything. The per-identity tokens are saved next to the log and not shipped with the model.

Checkpoints hold weights, tokens, optimizer moments and random states as safetensors, and counters as
JSON (no pickles), written atomically; an interrupted run resumes where its last checkpoint left off.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ...core.errors import NoFaceError
from ...core.progress import ProgressFn, no_progress
from ...core.storage import atomic_write_text, replace_directory
from ...media.clip import ClipFeatures
from ..audio_inputs import audio_shape
from ..windows import MIN_FACE_RATIO, WINDOW_FRAMES
from .data import (
    PRETRAIN_AUGMENTATION,
    Augmentation,
    ClipArrays,
    WindowBatch,
    amplify_motion,
    clip_arrays,
    concatenate,
    draw_windows,
    sampling_weights,
    sliding_windows,
    window_tensors,
)
from .diffusion import NUM_TRAIN_TIMESTEPS, reconstruction_errors, training_loss, training_scheduler
from .model import ExamDenoiser

logger = logging.getLogger(__name__)

NULL_ADAPTER_PROBABILITY = 0.5
"""Share of pre-training windows seen with the null tokens instead of their identity's tokens."""
DEFAULT_AUDIO_FEATURES = "whisper-base"
"""What a newly pre-trained model hears: the frozen speech encoder's features (see the model card for the
measurement that replaced log-mel)."""
IDENTITY_BALANCE = 0.5
"""Pre-training draws each identity in proportion to (its footage) ** this: 1 is proportional to
footage, 0 is every identity equally often. The few minor speakers are what keeps the model from
becoming a model of the one speaker that dominates the footage."""
VALIDATION_FRACTION = 0.1
WARMUP_STEPS = 100
VALIDATION_TIMESTEPS = 10
CHECKPOINT_DIR = "checkpoint"
MODEL_DIR = "model"
LOG_FILE = "training_log.json"
IDENTITY_TOKENS_FILE = "identity_tokens.safetensors"


# --------------------------------------------------------------------------------------------- data
def normalization_statistics(model: ExamDenoiser, clips: Sequence[ClipArrays], identities: Sequence[int],
                             window: int = WINDOW_FRAMES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel statistics of ``clips`` as ``model`` sees them, every identity weighing the same.

    Equal weights describe a typical speaker rather than the one who dominates the footage (a lab
    speaker who barely moves made every other face look 2-6 standard deviations wide).

    Returns ``(expression_mean (58,), expression_std (58,), audio_std (channels,))``: of the window-relative
    expressions (:meth:`ExamDenoiser.relative_expressions`) and of the audio features with each window's
    per-channel mean removed.
    """
    moments = []
    for identity in sorted(set(identities)):
        mine = [c for c, i in zip(clips, identities) if i == identity]
        batch = concatenate([sliding_windows(c, window, stride=window // 2) for c in mine])
        with torch.no_grad():
            relative = model.relative_expressions(torch.from_numpy(batch.expressions),
                                                  torch.from_numpy(batch.frame_mask)).numpy()
        values = relative[batch.frame_mask].astype(np.float64)
        if len(values) < 2:
            continue
        mel = (batch.audio - batch.audio.mean(axis=1, keepdims=True)).reshape(-1, batch.audio.shape[-1])
        moments.append((values.mean(0), (values ** 2).mean(0), (mel.astype(np.float64) ** 2).mean(0)))
    if not moments:
        raise NoFaceError("The training clips contain almost no frames with a face.")
    mean, square, mel_square = (np.mean(m, axis=0) for m in zip(*moments))
    std = np.sqrt(np.maximum(square - mean ** 2, 0.0))
    return mean.astype(np.float32), std.astype(np.float32), np.sqrt(mel_square).astype(np.float32)


def _split_for_validation(clips: Sequence[ClipArrays], identities: Sequence[str], rng: np.random.Generator,
                          window: int) -> tuple[list[ClipArrays], list[int], list[ClipArrays], list[int]]:
    """Hold out about :data:`VALIDATION_FRACTION` of the clips, only from identities with several clips
    (so every identity keeps training data); if none has several, hold out each clip's last 10 %."""
    names = sorted(set(identities))
    id_of = [names.index(i) for i in identities]
    multi = [i for i, name in enumerate(identities) if identities.count(name) > 1]
    if multi:
        n_val = max(1, int(round(VALIDATION_FRACTION * len(clips))))
        held = set(rng.permutation(multi)[:n_val].tolist())
        # never hold out all clips of an identity
        for name in names:
            mine = [i for i, n in enumerate(identities) if n == name]
            if all(i in held for i in mine):
                held.discard(mine[0])
        train = [i for i in range(len(clips)) if i not in held]
        val = sorted(held)
        return ([clips[i] for i in train], [id_of[i] for i in train],
                [clips[i] for i in val], [id_of[i] for i in val])
    train_clips, val_clips, val_ids = [], [], []
    for clip, ident in zip(clips, id_of):
        cut = clip.num_clip_frames - max(window, int(VALIDATION_FRACTION * clip.num_clip_frames))
        if cut >= window:
            train_clips.append(_frames(clip, 0, cut))
            val_clips.append(_frames(clip, cut, clip.num_clip_frames))
            val_ids.append(ident)
        else:
            train_clips.append(clip)
    return train_clips, id_of, val_clips, val_ids


def _frames(clip: ClipArrays, start: int, stop: int) -> ClipArrays:
    rate = clip.audio_per_frame
    return ClipArrays(clip.expressions[start:stop], clip.audio[start * rate: stop * rate],
                      clip.frame_mask[start:stop], clip.speech[start:stop], stop - start)


# --------------------------------------------------------------------------------------------- checkpoints
def _optimizerwindow_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    state = optimizer.state_dict()
    tensors = {f"optimizer.{index}.{key}": value.detach().clone().contiguous()
               for index, entry in state["state"].items() for key, value in entry.items()}
    return tensors, state["param_groups"]


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _save_checkpoint(out_dir: Path, model: ExamDenoiser, identity_tokens: torch.Tensor,
                     optimizer: torch.optim.Optimizer, generator: torch.Generator,
                     rng: np.random.Generator, counters: dict) -> None:
    staging = out_dir / f".{CHECKPOINT_DIR}.staging"
    if staging.exists():
        shutil.rmtree(staging)  # left by a run killed while writing
    model.save_pretrained(staging / MODEL_DIR)
    tensors, groups = _optimizerwindow_tensors(optimizer)
    tensors["identity_tokens"] = identity_tokens.detach().clone()
    tensors["noise_generator_state"] = generator.get_state()
    tensors["torch_rng_state"] = torch.get_rng_state()
    save_file(tensors, str(staging / "training_state.safetensors"))
    state = dict(counters, optimizer_param_groups=groups, numpy_rng_state=rng.bit_generator.state)
    (staging / "training_state.json").write_text(json.dumps(state, indent=1))
    replace_directory(staging, out_dir / CHECKPOINT_DIR)


def _lr_at(step: int, steps: int, peak: float) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < WARMUP_STEPS:
        return peak * (step + 1) / WARMUP_STEPS
    progress = min(1.0, (step - WARMUP_STEPS) / max(1, steps - WARMUP_STEPS))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


# --------------------------------------------------------------------------------------------- validation
@dataclass
class _Validation:
    batch: WindowBatch
    identity: torch.Tensor
    timesteps: torch.Tensor
    noises: torch.Tensor

    @classmethod
    def build(cls, clips: Sequence[ClipArrays], ids: Sequence[int], seed: int, window: int) -> "_Validation | None":
        parts, owners = [], []
        for clip, ident in zip(clips, ids):
            windows = sliding_windows(clip, window, stride=window // 2)
            windows = windows.select(windows.frame_mask.mean(axis=1) >= MIN_FACE_RATIO)
            parts.append(windows)
            owners += [ident] * len(windows)
        if not owners:
            return None
        generator = torch.Generator().manual_seed(seed + 1)
        timesteps = torch.linspace(0, NUM_TRAIN_TIMESTEPS - 1, VALIDATION_TIMESTEPS).round().long()
        noises = torch.randn((1, window, 58), generator=generator)
        return cls(concatenate(parts), torch.tensor(owners), timesteps, noises)

    def losses(self, model: ExamDenoiser, scheduler, identity_tokens: torch.Tensor) -> dict[str, float]:
        """Mean x0 reconstruction error with the null tokens and with each window's identity tokens."""
        was_training = model.training
        model.eval()
        x0, mel, mask = window_tensors(self.batch, model.device)
        null = reconstruction_errors(model, scheduler, x0, mel, None, mask, self.timesteps, self.noises)
        own = reconstruction_errors(model, scheduler, x0, mel, identity_tokens[self.identity].to(model.device),
                                    mask, self.timesteps, self.noises)
        model.train(was_training)
        return {"val_loss_null": float(null.mean()), "val_loss_identity": float(own.mean())}


# --------------------------------------------------------------------------------------------- pre-training
def pretrain_exam(
    clips: Sequence[ClipFeatures],
    identities: Sequence[str],
    out_dir: str | Path,
    *,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    resume: bool = True,
    checkpoint_every: int = 500,
    progress: ProgressFn = no_progress,
    time_budget_s: float | None = None,
    model_config: dict | None = None,
    null_adapter_probability: float = NULL_ADAPTER_PROBABILITY,
    augmentation: Augmentation = PRETRAIN_AUGMENTATION,
    identity_balance: float = IDENTITY_BALANCE,
) -> ExamDenoiser:
    """Pre-train an :class:`ExamDenoiser` on genuine talking clips of several people.

    Args:
        clips: pre-training clips (never reference or test footage of an evaluated person).
        identities: ``identities[i]`` names the person in ``clips[i]``.
        out_dir: receives ``checkpoint/`` (resumable), ``model/`` (the final model, ``save_pretrained``),
            ``identity_tokens.safetensors`` and ``training_log.json``.
        steps: total optimiser steps (a resumed run continues up to this count).
        batch_size: windows per step.
        lr: peak AdamW learning rate.
        seed: fixes initialisation, the validation split, the windows and the noise.
        resume: continue from ``out_dir/checkpoint`` if it exists.
        checkpoint_every: steps between validation + checkpoint.
        progress: ``progress(fraction, message)``.
        time_budget_s: stop (with a checkpoint and a saved model) once this much wall time has passed.
        model_config: keyword arguments for :class:`ExamDenoiser` (ignored when resuming).
        null_adapter_probability: share of windows trained with the null tokens.
        augmentation: window augmentations.
        identity_balance: how evenly identities are drawn (see :data:`IDENTITY_BALANCE`).
    Returns:
        the trained model (eval mode), also saved in ``out_dir/model``.
    """
    with torch.random.fork_rng():  # the seeds below must not leak into the caller's random state
        return _run_pretraining(clips, identities, Path(out_dir), steps=steps, batch_size=batch_size, lr=lr,
                                seed=seed, resume=resume, checkpoint_every=checkpoint_every, progress=progress,
                                time_budget_s=time_budget_s, model_config=model_config,
                                null_adapter_probability=null_adapter_probability, augmentation=augmentation,
                                identity_balance=identity_balance)


def _run_pretraining(clips, identities, out_dir: Path, *, steps, batch_size, lr, seed, resume, checkpoint_every,
                     progress, time_budget_s, model_config, null_adapter_probability, augmentation,
                     identity_balance) -> ExamDenoiser:
    if len(clips) != len(identities) or not clips:
        raise ValueError("pretrain_exam needs one identity per clip and at least one clip")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    names = sorted(set(identities))
    model_config = model_config_for((model_config or {}).get("audio_features", DEFAULT_AUDIO_FEATURES), model_config)
    window = model_config.get("window", WINDOW_FRAMES)
    arrays = [clip_arrays(c, window, model_config["audio_features"]) for c in clips]
    rng = np.random.default_rng(seed)
    train_clips, train_ids, val_clips, val_ids = _split_for_validation(arrays, list(identities), rng, window)
    validation = _Validation.build(val_clips, val_ids, seed, window)

    checkpoint = out_dir / CHECKPOINT_DIR
    log: dict = {"hyperparameters": {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                                     "null_adapter_probability": null_adapter_probability,
                                     "identity_balance": identity_balance,
                                     "augmentation": asdict(augmentation)},
                 "identities": names, "train_clips": len(train_clips), "validation_clips": len(val_clips),
                 "validation_windows": 0 if validation is None else len(validation.batch), "entries": []}
    generator = torch.Generator().manual_seed(seed)
    if resume and (checkpoint / "training_state.json").is_file():
        run = _resume(checkpoint, names, rng, generator)
        if (out_dir / LOG_FILE).is_file():
            log["entries"] = json.loads((out_dir / LOG_FILE).read_text()).get("entries", [])
    else:
        run = _fresh_start(train_clips, train_ids, len(names), model_config, seed, window)
    model, start_step, elapsed_before = run.model, run.step, run.elapsed_s
    log["model_config"] = {k: v for k, v in dict(model.config).items() if not k.startswith("_")}

    device = model.device
    identity_tokens = torch.nn.Parameter(run.identity_tokens.detach().to(device))
    optimizer = torch.optim.AdamW(list(model.parameters()) + [identity_tokens], lr=lr, weight_decay=0.01)
    if run.optimizer_groups is not None:
        _load_optimizer(optimizer, run.optimizer_tensors, run.optimizer_groups)
    scheduler = training_scheduler(model.config.prediction_type)
    model.train()

    def checkpoint_now(step: int, recent_losses: list[float]) -> None:
        entry = {"step": step, "train_loss": float(np.mean(recent_losses)) if recent_losses else None,
                 "lr": _lr_at(max(step - 1, 0), steps, lr),
                 "elapsed_s": round(elapsed_before + time.monotonic() - started, 1)}
        if validation is not None:
            entry.update(validation.losses(model, scheduler, identity_tokens.detach()))
        log["entries"].append(entry)
        atomic_write_text(out_dir / LOG_FILE, json.dumps(log, indent=1))
        _save_checkpoint(out_dir, model, identity_tokens, optimizer, generator, rng,
                         {"step": step, "elapsed_s": entry["elapsed_s"], "identities": names})
        message = f"step {step}/{steps}: train {entry['train_loss'] or float('nan'):.4f}"
        if validation is not None:
            message += f", val null {entry['val_loss_null']:.4f}, val identity {entry['val_loss_identity']:.4f}"
        logger.info(message)
        progress(step / steps, message)

    weights = sampling_weights(train_clips, train_ids, identity_balance)
    recent: list[float] = []
    step = start_step
    while step < steps:
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, steps, lr)
        batch, clip_index = draw_windows(train_clips, rng, batch_size, augmentation, window, weights)
        use_null = rng.random(batch_size) < null_adapter_probability
        amplified = use_null & (rng.random(batch_size) < augmentation.motion_gain_probability)
        gains = np.where(amplified, np.exp(rng.uniform(-1, 1, batch_size) * np.log(augmentation.motion_gain)), 1.0)
        batch = replace(batch, expressions=amplify_motion(batch.expressions, batch.frame_mask, gains))
        x0, mel, mask = window_tensors(batch, device)
        owner = torch.as_tensor(np.asarray(train_ids)[clip_index], device=device)
        null = torch.as_tensor(use_null, device=device)
        adapter = torch.where(null[:, None, None], model.null_adapter.expand(batch_size, -1, -1),
                              identity_tokens[owner])
        loss = training_loss(model, scheduler, x0, mel, adapter, mask, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()) + [identity_tokens], 1.0)
        optimizer.step()
        recent.append(float(loss.detach()))
        step += 1
        out_of_time = time_budget_s is not None and time.monotonic() - started >= time_budget_s
        if step % checkpoint_every == 0 or step == steps or out_of_time:
            checkpoint_now(step, recent)
            recent = []
        elif step % 10 == 0:
            progress(step / steps, f"step {step}/{steps}: train {np.mean(recent):.4f}")
        if out_of_time:
            logger.info("time budget reached at step %d", step)
            break
    if step == start_step and not log["entries"]:
        checkpoint_now(step, recent)

    model.eval()
    staging = out_dir / f".{MODEL_DIR}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    model.save_pretrained(staging)
    replace_directory(staging, out_dir / MODEL_DIR)
    save_file({name: identity_tokens[i].detach().clone() for i, name in enumerate(names)},
              str(out_dir / IDENTITY_TOKENS_FILE))
    return model


@dataclass
class _RunState:
    """Where a pre-training run starts: fresh, or from its last checkpoint."""

    model: ExamDenoiser
    identity_tokens: torch.Tensor
    step: int = 0
    elapsed_s: float = 0.0
    optimizer_tensors: dict | None = None
    optimizer_groups: list | None = None


def model_config_for(audio_features: str, overrides: dict | None = None) -> dict:
    """:class:`ExamDenoiser` keyword arguments for a model that hears ``audio_features`` (its audio input
    width and rate follow from the kind), updated with ``overrides``."""
    channels, rows = audio_shape(audio_features)
    return {"audio_features": audio_features, "n_mels": channels, "mel_per_frame": rows, **(overrides or {})}


def _fresh_start(train_clips: Sequence[ClipArrays], train_ids: Sequence[int], n_identities: int,
                 model_config: dict | None, seed: int, window: int) -> _RunState:
    torch.manual_seed(seed)  # initialisation, then dropout
    model = ExamDenoiser(**(model_config or {}))
    statistics = normalization_statistics(model, train_clips, train_ids, window)
    model.set_normalization(*(torch.from_numpy(s) for s in statistics))
    return _RunState(model, model.null_adapter.detach().clone().repeat(n_identities, 1, 1))


def _resume(checkpoint: Path, names: list[str], rng: np.random.Generator, generator: torch.Generator) -> _RunState:
    """Load the checkpoint and put every random state back where it was."""
    state = json.loads((checkpoint / "training_state.json").read_text())
    if state["identities"] != names:
        raise ValueError("the checkpoint was trained on other identities; use another out_dir or resume=False")
    tensors = load_file(str(checkpoint / "training_state.safetensors"))
    rng.bit_generator.state = state["numpy_rng_state"]
    generator.set_state(tensors["noise_generator_state"])
    torch.set_rng_state(tensors["torch_rng_state"])
    model = ExamDenoiser.from_pretrained(checkpoint / MODEL_DIR, low_cpu_mem_usage=False)
    return _RunState(model, tensors["identity_tokens"], int(state["step"]), float(state["elapsed_s"]),
                     tensors, state["optimizer_param_groups"])
