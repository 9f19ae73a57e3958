"""The 1 s windows FauForensics trains on: genuine ones, and pseudo-fakes made on the fly from genuine clips.

A clip is first reduced to its model streams (:class:`~.streams.ClipStreams`: action units, mouth crops, and
audio features of the model's kind, Whisper-base or log-mel; nothing here depends on which).
:class:`PseudoFakeSampler` then cuts windows out of them and breaks some of them on purpose, the way a
forgery would, with a label per modality:

=======================  =====================================================  ===========  ============
kind                     what is done to the window                             label_audio  label_visual
=======================  =====================================================  ===========  ============
``real``                 nothing (audio jittered by at most 1 frame)            0            0
``audio_shift``          audio taken 5-25 frames (0.2-1 s) earlier or later     1            0
``audio_other_clip``     audio of another clip of the same person (dubbing)     1            0
``audio_other_person``   audio of another person's clip                         1            0
``mouth_freeze``         the face held still for 8-25 frames                    0            1
``mouth_warp``           the face played 0.5-0.8x or 1.25-2x as fast            0            1
``expression_other``     action units of another clip (person if possible)      0            1
=======================  =====================================================  ===========  ============

The joint label is 1 when either modality label is. Sampling is a pure function of the numpy
``Generator`` passed in, so a seed reproduces a training run exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ...core.errors import InputError
from .streams import FAU_WINDOW_FRAMES, ClipStreams

KIND_LABELS: dict[str, tuple[int, int]] = {
    "real": (0, 0),
    "audio_shift": (1, 0),
    "audio_other_clip": (1, 0),
    "audio_other_person": (1, 0),
    "mouth_freeze": (0, 1),
    "mouth_warp": (0, 1),
    "expression_other": (0, 1),
}
"""``kind -> (label_audio, label_visual)``."""
KINDS = tuple(KIND_LABELS)
FAKE_KINDS = KINDS[1:]

DEFAULT_KIND_WEIGHTS: dict[str, float] = {
    "real": 0.5, "audio_shift": 0.15, "audio_other_clip": 0.15, "audio_other_person": 0.05,
    "mouth_freeze": 0.05, "mouth_warp": 0.05, "expression_other": 0.05,
}
"""Half the windows genuine; audio mismatches (what dubbing produces) weighted most among the fakes."""

SHIFT_RANGE = (5, 25)
FREEZE_RANGE = (8, 25)
SLOW_RANGE = (0.5, 0.8)
FAST_RANGE = (1.25, 2.0)
FREEZE_NOISE_GREY = 1.5
"""Grey-level noise on frozen crops, so that "exactly constant pixels" is not a shortcut to learn."""


def _anchor_weights(identities: Sequence[str], windows: np.ndarray, balance: float) -> np.ndarray:
    """``(clips,)`` probabilities: a person's share grows as ``windows ** balance``, split by windows."""
    totals: dict[str, float] = {}
    for identity, count in zip(identities, windows):
        totals[identity] = totals.get(identity, 0.0) + count
    weights = np.array([count / totals[identity] * totals[identity] ** balance
                        for identity, count in zip(identities, windows)])
    return weights / weights.sum()


@dataclass
class LabelledWindows:
    """A batch of labelled windows, as numpy arrays."""

    action_units: np.ndarray
    """``(batch, T, n_au)`` float32."""
    mouth: np.ndarray
    """``(batch, T, 32, 32)`` uint8."""
    audio: np.ndarray
    """``(batch, T * rows, channels)`` float32 audio features: ``(batch, T, 512)`` Whisper-base or
    ``(batch, T * 4, 80)`` log-mel."""
    label: np.ndarray
    """``(batch,)`` int64: 1 when anything in the window is fake."""
    label_audio: np.ndarray
    """``(batch,)`` int64: 1 when the audio is not the original."""
    label_visual: np.ndarray
    """``(batch,)`` int64: 1 when the face stream was manipulated."""
    kind: tuple[str, ...]
    """``(batch,)`` what was done to each window (a :data:`KINDS` entry, or ``supervised:...``)."""

    def __len__(self) -> int:
        return len(self.label)

    def model_inputs(self, device: str = "cpu") -> dict:
        """Keyword tensors for :meth:`FauForensicsModel.forward` (mouth scaled to [0, 1])."""
        import torch

        return {"action_units": torch.from_numpy(self.action_units).to(device),
                "mouth": torch.from_numpy(self.mouth).to(device).float() / 255.0,
                "audio": torch.from_numpy(self.audio).to(device)}

    def labels(self, device: str = "cpu") -> dict:
        """``label``, ``label_audio`` and ``label_visual`` as ``(batch,)`` int64 tensors."""
        import torch

        return {name: torch.from_numpy(getattr(self, name)).to(device)
                for name in ("label", "label_audio", "label_visual")}

    @classmethod
    def stack(cls, windows: Sequence[tuple], labels: Sequence[tuple[int, int, int]],
              kinds: Sequence[str]) -> "LabelledWindows":
        """Build a batch from ``(au, mouth, audio)`` windows and ``(label, label_audio, label_visual)``."""
        label = np.asarray(labels, dtype=np.int64).reshape(-1, 3)
        return cls(action_units=np.stack([w[0] for w in windows]).astype(np.float32),
                   mouth=np.stack([w[1] for w in windows]).astype(np.uint8),
                   audio=np.stack([w[2] for w in windows]).astype(np.float32),
                   label=label[:, 0].copy(), label_audio=label[:, 1].copy(), label_visual=label[:, 2].copy(),
                   kind=tuple(kinds))

    @classmethod
    def concatenate(cls, batches: Sequence["LabelledWindows"]) -> "LabelledWindows":
        return cls(**{name: np.concatenate([getattr(b, name) for b in batches])
                      for name in ("action_units", "mouth", "audio", "label", "label_audio", "label_visual")},
                   kind=tuple(k for b in batches for k in b.kind))


class PseudoFakeSampler:
    """Draws genuine and pseudo-fake windows from genuine clips.

    Args:
        clips: the genuine clips' streams; ``identity`` tells people apart (clips with the same
            identity count as one person).
        kind_weights: relative frequency of each kind (default :data:`DEFAULT_KIND_WEIGHTS`).
        augment: mirror mouth crops at random and jitter genuine audio by up to a frame (for
            training; leave off for validation sets). Only these two, and neither depends on the
            audio kind: camera-like variations (shifts, gamma, blur, noise, raised mel floors, a
            withheld visual stream) made 9-minute runs of the log-mel model on the avdata
            ``pretrain`` rows generalise worse, not better. Raised mel floors, the one log-mel
            specific variation, has no Whisper-feature counterpart and is not used for either kind;
            a recording's noise reaches Whisper features only through the encoder (corrupt the
            clips with ``extract_clip(corrupt=...)`` to train on it).
        identity_balance: how the windows are shared between people: 1 draws every window equally
            often (a person with more footage is seen more), 0 gives every person the same share;
            in between, a person's share grows as the power ``identity_balance`` of their footage.
    """

    def __init__(self, clips: Sequence[ClipStreams], kind_weights: Mapping[str, float] | None = None,
                 augment: bool = True, length: int = FAU_WINDOW_FRAMES, identity_balance: float = 1.0):
        weights = dict(DEFAULT_KIND_WEIGHTS if kind_weights is None else kind_weights)
        unknown = set(weights) - set(KINDS)
        if unknown:
            raise InputError(f"Unknown pseudo-fake kind(s) {sorted(unknown)}; known kinds are {list(KINDS)}.")
        self.clips = list(clips)
        kinds = {clip.audio_features for clip in self.clips}
        if len(kinds) > 1:
            raise InputError(f"The clips' streams hear different audio features ({', '.join(sorted(kinds))}); "
                             "make them all with the same audio_features.")
        self.length = length
        self.augment = augment
        self.starts = [clip.usable_starts(length) for clip in self.clips]
        self.anchors = [i for i, starts in enumerate(self.starts) if len(starts)]
        if not self.anchors:
            raise InputError("No clip has a 1 s window with a face and speech to train on.")
        self.anchor_weights = _anchor_weights([self.clips[i].identity for i in self.anchors],
                                              np.array([len(self.starts[i]) for i in self.anchors], float),
                                              identity_balance)
        probabilities = np.array([weights.get(kind, 0.0) for kind in KINDS], dtype=float)
        if probabilities.sum() <= 0:
            raise InputError("Pseudo-fake kind weights must not all be zero.")
        self.kind_probabilities = probabilities / probabilities.sum()

    def sample(self, rng: np.random.Generator, batch_size: int) -> LabelledWindows:
        """``batch_size`` windows of random kinds."""
        kinds = rng.choice(len(KINDS), size=batch_size, p=self.kind_probabilities)
        return self._build([KINDS[k] for k in kinds], rng)

    def sample_kind(self, rng: np.random.Generator, kind: str, count: int) -> LabelledWindows:
        """``count`` windows of one ``kind`` (for validation sets)."""
        if kind not in KIND_LABELS:
            raise InputError(f"Unknown pseudo-fake kind '{kind}'; known kinds are {list(KINDS)}.")
        return self._build([kind] * count, rng)

    def _build(self, kinds: Sequence[str], rng: np.random.Generator) -> LabelledWindows:
        windows, labels, made = [], [], []
        for kind in kinds:
            clip_index = int(self.anchors[rng.choice(len(self.anchors), p=self.anchor_weights)])
            start = int(rng.choice(self.starts[clip_index]))
            window, kind = self.make(kind, clip_index, start, rng)
            if self.augment and rng.random() < 0.5:
                window = (window[0], window[1][:, :, ::-1], window[2])
            label_audio, label_visual = KIND_LABELS[kind]
            windows.append(window)
            labels.append((int(label_audio or label_visual), label_audio, label_visual))
            made.append(kind)
        return LabelledWindows.stack(windows, labels, made)

    def make(self, kind: str, clip_index: int, start: int, rng: np.random.Generator
             ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], str]:
        """One window of ``kind`` anchored at ``start`` of clip ``clip_index``, and the kind actually made.

        A kind that this clip cannot make (a clip too short to shift, no second clip to borrow
        from) falls back to the nearest kind that it can.
        """
        clip = self.clips[clip_index]
        length = self.length
        if kind == "real":
            return clip.window(start, audio_start=self._jittered(clip, start, rng)), kind
        if kind == "audio_shift":
            audio_start = self._shifted(clip, start, rng)
            if audio_start is None:
                return self.make("audio_other_clip", clip_index, start, rng)
            return clip.window(start, audio_start=audio_start), kind
        if kind in ("audio_other_clip", "audio_other_person", "expression_other"):
            donor_index = self._donor(clip_index, prefer_other_person=kind != "audio_other_clip", rng=rng)
            if donor_index is None:
                return self.make("audio_shift" if kind != "expression_other" else "mouth_warp",
                                 clip_index, start, rng)
            if kind == "audio_other_clip" and self.clips[donor_index].identity != clip.identity:
                kind = "audio_other_person"
            donor = self.clips[donor_index]
            donor_start = self._donor_start(donor_index, rng)
            action_units, mouth, audio = clip.window(start)
            donor_au, _, donor_audio = donor.window(donor_start)
            if kind == "expression_other":
                return (donor_au, mouth, audio), kind
            return (action_units, mouth, donor_audio), kind
        if kind == "mouth_freeze":
            span = int(rng.integers(FREEZE_RANGE[0], min(FREEZE_RANGE[1], length) + 1))
            first = start + int(rng.integers(0, length - span + 1))
            index = np.arange(start, start + length)
            index[first - start:first - start + span] = first
            action_units, mouth, audio = clip.window(start, visual_index=index)
            noise = rng.normal(0.0, FREEZE_NOISE_GREY, size=(span,) + mouth.shape[1:])
            mouth = mouth.copy()
            frozen = slice(first - start, first - start + span)
            mouth[frozen] = np.clip(mouth[frozen] + noise, 0, 255).astype(np.uint8)
            return (action_units, mouth, audio), kind
        if kind == "mouth_warp":
            low, high = SLOW_RANGE if rng.random() < 0.5 else FAST_RANGE
            speed = rng.uniform(low, high)
            centre = start + length // 2
            index = np.rint(centre + speed * (np.arange(length) - length // 2)).astype(int)
            index = np.clip(index, 0, clip.num_frames - 1)
            return clip.window(start, visual_index=index), kind
        raise InputError(f"Unknown pseudo-fake kind '{kind}'; known kinds are {list(KINDS)}.")

    def _jittered(self, clip: ClipStreams, start: int, rng: np.random.Generator) -> int:
        if not self.augment:
            return start
        return int(np.clip(start + rng.integers(-1, 2), 0, clip.num_frames - self.length))

    def _shifted(self, clip: ClipStreams, start: int, rng: np.random.Generator) -> int | None:
        """An audio start 5-25 frames away from ``start`` inside the clip, or None when none fits."""
        shifts = np.arange(SHIFT_RANGE[0], SHIFT_RANGE[1] + 1)
        candidates = np.concatenate([start - shifts, start + shifts])
        candidates = candidates[(candidates >= 0) & (candidates <= clip.num_frames - self.length)]
        return int(rng.choice(candidates)) if len(candidates) else None

    def _donor(self, clip_index: int, prefer_other_person: bool, rng: np.random.Generator) -> int | None:
        """Another clip to borrow a stream from: another person's or the same person's, as preferred."""
        identity = self.clips[clip_index].identity
        others = [i for i in range(len(self.clips)) if i != clip_index and self.clips[i].num_frames >= self.length]
        same = [i for i in others if self.clips[i].identity == identity]
        different = [i for i in others if self.clips[i].identity != identity]
        pool = (different or same) if prefer_other_person else (same or different)
        return int(pool[rng.integers(len(pool))]) if pool else None

    def _donor_start(self, donor_index: int, rng: np.random.Generator) -> int:
        """A donor window with speech when the donor has one (a silent donor would be too easy)."""
        starts = self.starts[donor_index]
        if len(starts):
            return int(rng.choice(starts))
        return int(rng.integers(0, self.clips[donor_index].num_frames - self.length + 1))
