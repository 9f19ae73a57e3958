"""Training FauForensics: self-supervised from genuine clips, optionally with labelled fakes as well.

``train_fau`` holds out whole clips for validation, draws pseudo-fake batches (:mod:`.pseudo_fakes`)
from the rest, and, when labelled datasets are given, mixes in their windows. It writes into ``out_dir``:

- ``model/``: the model with the best validation AUC so far (``save_pretrained`` layout, safetensors);
- ``checkpoint/``: model, optimiser and sampler state to resume from (safetensors + JSON);
- ``training_log.json``: the split, the settings, and the loss and validation AUCs of every evaluation.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ...core.config import torch_device
from ...core.errors import InputError
from ...core.jsonable import json_float
from ...core.metrics import roc_auc
from ...core.progress import ProgressFn, no_progress
from ...core.storage import atomic_write_text, replace_directory
from ...media.clip import ClipFeatures
from .datasets import LabelledVideo, SupervisedSampler
from .model import FauForensicsModel, fau_loss, model_config_for
from .pseudo_fakes import FAKE_KINDS, KINDS, LabelledWindows, PseudoFakeSampler
from .streams import clip_streams

CHECKPOINT_VERSION = 1
DEFAULT_AUDIO_FEATURES = "whisper-base"
"""What a new model hears unless ``model_config`` says otherwise: the frozen Whisper-base encoder's
features (``clip.audio.encoded``), as in the paper; ``"log-mel"`` trains the older kind."""
WARMUP_STEPS = 100
FINAL_LR_FRACTION = 0.05


@dataclass
class FauTrainingResult:
    """What :func:`train_fau` did."""

    model: FauForensicsModel
    """The best model by validation AUC (also saved in ``model_dir``)."""
    model_dir: Path
    log_path: Path
    steps_done: int
    finished: bool
    """False when the time budget stopped training early (resume to continue)."""
    best_val_auc: float
    history: list[dict] = field(default_factory=list)


def split_by_clip(num_clips: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """``(train, validation)`` clip indices: a seeded shuffle, at least 2 clips held out (donors need a pair)."""
    if num_clips < 4:
        raise InputError(f"FauForensics training needs at least 4 clips (2 held out for validation), got {num_clips}.")
    order = np.random.default_rng(seed).permutation(num_clips)
    held_out = min(max(2, int(round(val_fraction * num_clips))), num_clips - 2)
    return sorted(int(i) for i in order[held_out:]), sorted(int(i) for i in order[:held_out])


def learning_rate(step: int, total_steps: int, base: float) -> float:
    """Linear warm-up (:data:`WARMUP_STEPS`, at most a tenth of the run), then cosine decay to
    :data:`FINAL_LR_FRACTION` of ``base``."""
    warmup = min(1.0, (step + 1) / min(WARMUP_STEPS, max(1, total_steps // 10)))
    progress = min(1.0, step / max(1, total_steps))
    return base * warmup * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.inference_mode()
def window_probabilities(model: FauForensicsModel, batch: LabelledWindows, batch_size: int = 128) -> np.ndarray:
    """``(windows,)`` fake probability of each window of ``batch``."""
    model.eval()
    device = next(model.parameters()).device
    probabilities = []
    for begin in range(0, len(batch), batch_size):
        part = _batch_slice(batch, slice(begin, begin + batch_size))
        probabilities.append(model(**part.model_inputs(str(device))).fake_probability().float().cpu().numpy())
    return np.concatenate(probabilities) if probabilities else np.zeros(0, np.float32)


def validation_metrics(model: FauForensicsModel, batch: LabelledWindows) -> dict:
    """AUC of every window kind against the genuine windows, their mean, and all fakes pooled."""
    scores = window_probabilities(model, batch)
    kinds = np.asarray(batch.kind)
    real = scores[batch.label == 0]
    fake = scores[batch.label == 1]
    per_kind = {kind: roc_auc(real, scores[kinds == kind]) for kind in dict.fromkeys(batch.kind)
                if kind not in ("real", "supervised_real") and (kinds == kind).any()}
    finite = [v for v in per_kind.values() if np.isfinite(v)]
    return {"auc": roc_auc(real, fake), "mean_kind_auc": float(np.mean(finite)) if finite else float("nan"),
            "kind_auc": per_kind}


def train_fau(clips: Sequence[ClipFeatures], identities: Sequence[str], out_dir: str | Path, *,
              steps: int = 4000, seed: int = 0, progress: ProgressFn = no_progress,
              time_budget_s: float | None = None, resume: bool = False,
              supervised: Sequence[tuple[ClipFeatures, LabelledVideo]] = (),
              batch_size: int = 32, base_lr: float = 1e-3, weight_decay: float = 1e-2, sync_weight: float = 0.1,
              val_fraction: float = 0.15, val_windows_per_kind: int = 64, eval_every: int = 250,
              kind_weights: Mapping[str, float] | None = None, identity_balance: float = 1.0,
              supervised_fraction: float = 0.5,
              model_config: Mapping | None = None) -> FauTrainingResult:
    """Train a :class:`FauForensicsModel` and save it in ``out_dir`` (see the module docstring).

    Args:
        clips: genuine clips; ``identities`` (same length) names the person in each.
        steps: optimiser steps in total (a resumed run continues towards the same total).
        seed: fixes the split, the initial weights and every sampled window.
        time_budget_s: stop after this much wall time in this call, checkpointing first.
        resume: continue from ``out_dir/checkpoint`` when it exists (same clips and settings).
        supervised: labelled clips (FakeAVCeleb, LAV-DF); ``supervised_fraction`` of each batch
            comes from them, the rest are pseudo-fakes.
        sync_weight: weight of the frame-alignment term of :func:`fau_loss` (0 for the paper's loss).
        kind_weights: pseudo-fake kind frequencies (default ``DEFAULT_KIND_WEIGHTS``).
        identity_balance: 1 samples every training window equally, 0 every person equally (see
            :class:`PseudoFakeSampler`); in between favours people with little footage.
        model_config: keyword overrides for :class:`FauForensicsModel` (e.g. ``{"width": 96}``);
            ``audio_features`` (default :data:`DEFAULT_AUDIO_FEATURES`) sets the audio input's shape
            (:func:`~.model.model_config_for`). Every clip needs those features (``clip.audio.encoded``
            for Whisper-base, which :func:`~exposeanyone.media.extract.extract_clip` adds).
    """
    if len(clips) != len(identities):
        raise InputError(f"Got {len(clips)} clips but {len(identities)} identities; give one identity per clip.")
    started = time.monotonic()
    out_dir = Path(out_dir)
    device = torch_device()
    config = model_config_for((model_config or {}).get("audio_features", DEFAULT_AUDIO_FEATURES), model_config)
    data = _training_data(clips, identities, supervised, kind_weights, val_fraction, val_windows_per_kind,
                          identity_balance, seed, config["audio_features"])
    torch.manual_seed(seed)
    model = FauForensicsModel(**config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=base_lr, weight_decay=weight_decay)
    rng = np.random.default_rng([seed, 0])
    settings = {"steps": steps, "seed": seed, "batch_size": batch_size, "base_lr": base_lr,
                "weight_decay": weight_decay, "sync_weight": sync_weight, "val_fraction": val_fraction,
                "kind_weights": kind_weights, "identity_balance": identity_balance,
                "supervised_fraction": supervised_fraction if data.supervised else 0.0,
                "model_config": dict(model.config)}
    checkpoint_dir, model_dir, log_path = out_dir / "checkpoint", out_dir / "model", out_dir / "training_log.json"
    state = {"step": 0, "best_val_auc": None, "best_step": None, "history": [], "elapsed_s": 0.0}
    if resume and (checkpoint_dir / "state.json").is_file():
        state = _load_checkpoint(checkpoint_dir, model, optimizer, rng, settings, data.split)
    else:
        for stale in (checkpoint_dir, model_dir):
            shutil.rmtree(stale, ignore_errors=True)

    def checkpoint(step: int, running_loss: list[float]) -> None:
        if not state["history"] or state["history"][-1]["step"] != step:
            _evaluate_and_save(model, data.val_batch, state, step, running_loss, model_dir, started)
        state["step"] = step
        _save_checkpoint(checkpoint_dir, model, optimizer, rng, state, settings, data.split)
        _write_log(log_path, settings, data.split, state, finished=step >= steps)

    step, running_loss = state["step"], []
    while step < steps and (time_budget_s is None or time.monotonic() - started < time_budget_s):
        batch = _training_batch(data, rng, batch_size, supervised_fraction)
        running_loss.append(_train_step(model, optimizer, batch, learning_rate(step, steps, base_lr),
                                         sync_weight, device))
        step += 1
        if step % 10 == 0 or step == steps:
            recent_loss = np.mean(running_loss[-50:])
            progress(step / steps, f"FauForensics training: step {step}/{steps}, loss {recent_loss:.3f}")
        if step % eval_every == 0:
            checkpoint(step, running_loss)
            running_loss = []
    if step > state["step"]:
        checkpoint(step, running_loss)
    _write_log(log_path, settings, data.split, state, finished=step >= steps)
    best = model.eval()
    if model_dir.is_dir():
        best = FauForensicsModel.from_pretrained(model_dir, low_cpu_mem_usage=False).to(device).eval()
    return FauTrainingResult(model=best, model_dir=model_dir, log_path=log_path, steps_done=step,
                             finished=step >= steps, best_val_auc=_nan_if_none(state["best_val_auc"]),
                             history=list(state["history"]))


@dataclass
class _TrainingData:
    pseudo_fakes: PseudoFakeSampler
    supervised: SupervisedSampler | None
    val_batch: LabelledWindows
    split: dict


def _training_data(clips: Sequence[ClipFeatures], identities: Sequence[str],
                   supervised: Sequence[tuple[ClipFeatures, LabelledVideo]], kind_weights: Mapping[str, float] | None,
                   val_fraction: float, val_windows_per_kind: int, identity_balance: float,
                   seed: int, audio_features: str) -> _TrainingData:
    """Samplers over the training clips and a fixed validation batch from the held-out ones, all with
    audio features of the kind ``audio_features``."""
    streams = [clip_streams(clip, identity, audio_features) for clip, identity in zip(clips, identities)]
    train_index, val_index = split_by_clip(len(streams), val_fraction, seed)
    val_sampler = PseudoFakeSampler([streams[i] for i in val_index], kind_weights, augment=False)
    val_rng = np.random.default_rng([seed, 1])
    val_parts = [val_sampler.sample_kind(val_rng, kind, val_windows_per_kind) for kind in KINDS]
    supervised_train, supervised_val = _supervised_samplers(supervised, val_fraction, seed, audio_features)
    if supervised_val is not None:
        val_parts.append(supervised_val.sample(val_rng, 4 * val_windows_per_kind))
    val_batch = LabelledWindows.concatenate(val_parts)
    split = {"train_clips": [streams[i].name for i in train_index],
             "val_clips": [streams[i].name for i in val_index],
             "supervised_clips": len(supervised), "val_windows": len(val_batch)}
    train_sampler = PseudoFakeSampler([streams[i] for i in train_index], kind_weights,
                                      identity_balance=identity_balance)
    return _TrainingData(pseudo_fakes=train_sampler,
                         supervised=supervised_train, val_batch=val_batch, split=split)


def _train_step(model: FauForensicsModel, optimizer: torch.optim.Optimizer, batch: LabelledWindows, lr: float,
                sync_weight: float, device: str) -> float:
    """One optimiser step on ``batch``; returns its loss."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.train()
    loss = fau_loss(model(**batch.model_inputs(device)), **batch.labels(device), sync_weight=sync_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return float(loss.detach())


def _supervised_samplers(supervised: Sequence[tuple[ClipFeatures, LabelledVideo]], val_fraction: float,
                         seed: int, audio_features: str) -> tuple[SupervisedSampler | None, SupervisedSampler | None]:
    if not supervised:
        return None, None
    pairs = [(clip_streams(clip, video.identity, audio_features), video) for clip, video in supervised]
    if len(pairs) < 4:
        return SupervisedSampler(pairs), None
    train_index, val_index = split_by_clip(len(pairs), val_fraction, seed + 7919)
    return SupervisedSampler([pairs[i] for i in train_index]), SupervisedSampler([pairs[i] for i in val_index])


def _training_batch(data: _TrainingData, rng: np.random.Generator, batch_size: int,
                    supervised_fraction: float) -> LabelledWindows:
    if data.supervised is None:
        return data.pseudo_fakes.sample(rng, batch_size)
    labelled = int(round(batch_size * supervised_fraction))
    return LabelledWindows.concatenate([data.pseudo_fakes.sample(rng, batch_size - labelled),
                                    data.supervised.sample(rng, labelled)])


def _batch_slice(batch: LabelledWindows, part: slice) -> LabelledWindows:
    return LabelledWindows(action_units=batch.action_units[part], mouth=batch.mouth[part], audio=batch.audio[part],
                       label=batch.label[part], label_audio=batch.label_audio[part],
                       label_visual=batch.label_visual[part], kind=batch.kind[part])


def _evaluate_and_save(model: FauForensicsModel, val_batch: LabelledWindows, state: dict, step: int,
                       running_loss: list[float], model_dir: Path, started: float) -> None:
    """Validate, append to the history, and keep the model when it is the best so far."""
    metrics = validation_metrics(model, val_batch)
    entry = {"step": step, "train_loss": float(np.mean(running_loss)) if running_loss else None,
             "val_auc": json_float(metrics["auc"]), "val_mean_kind_auc": json_float(metrics["mean_kind_auc"]),
             "val_kind_auc": {kind: json_float(auc) for kind, auc in metrics["kind_auc"].items()},
             "elapsed_s": round(state["elapsed_s"] + time.monotonic() - started, 1)}
    state["history"].append(entry)
    best = state["best_val_auc"]
    if np.isfinite(metrics["auc"]) and (best is None or metrics["auc"] > best):
        state["best_val_auc"] = metrics["auc"]
        state["best_step"] = step
        staging = model_dir.with_name(f".{model_dir.name}.staging")
        if staging.exists():
            shutil.rmtree(staging)
        model.save_pretrained(staging)
        replace_directory(staging, model_dir)


def _save_checkpoint(folder: Path, model: FauForensicsModel, optimizer: torch.optim.Optimizer,
                     rng: np.random.Generator, state: dict, settings: dict, split: dict) -> None:
    staging = folder.with_name(f".{folder.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              str(staging / "model.safetensors"))
    optimizer_state = optimizer.state_dict()
    tensors = {f"{index}.{key}": value.detach().cpu().contiguous()
               for index, entry in optimizer_state["state"].items() for key, value in entry.items()}
    save_file(tensors, str(staging / "optimizer.safetensors"))
    saved = dict(state, version=CHECKPOINT_VERSION, settings=settings, split=split,
                 rng=rng.bit_generator.state, param_groups=optimizer_state["param_groups"])
    (staging / "state.json").write_text(json.dumps(saved, indent=1), encoding="utf-8")
    replace_directory(staging, folder)


def _load_checkpoint(folder: Path, model: FauForensicsModel, optimizer: torch.optim.Optimizer,
                     rng: np.random.Generator, settings: dict, split: dict) -> dict:
    saved = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    if saved.get("version") != CHECKPOINT_VERSION or saved.get("split") != split:
        raise InputError(f"The checkpoint in '{folder}' was made from other clips or by another version; "
                         "train without resume to start over.")
    if _comparable(saved.get("settings")) != _comparable(settings):
        raise InputError(f"The checkpoint in '{folder}' was made with other settings; "
                         "use the same ones or train without resume.")
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        per_param.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": saved["param_groups"]})
    rng.bit_generator.state = saved["rng"]
    return {"step": int(saved["step"]), "best_val_auc": saved["best_val_auc"],
            "best_step": saved.get("best_step"), "history": list(saved["history"]),
            "elapsed_s": float(saved["history"][-1]["elapsed_s"]) if saved["history"] else 0.0}


def _comparable(settings: dict | None) -> str:
    """Settings as canonical JSON, so tuples and lists compare equal after a JSON round trip."""
    return json.dumps(settings, sort_keys=True, default=str)


def _write_log(path: Path, settings: dict, split: dict, state: dict, finished: bool) -> None:
    log = {"settings": settings, "split": split, "finished": finished, "best_val_auc": state["best_val_auc"],
           "best_step": state.get("best_step"), "history": state["history"], "fake_kinds": list(FAKE_KINDS)}
    atomic_write_text(path, json.dumps(log, indent=1, default=_json_default))


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
