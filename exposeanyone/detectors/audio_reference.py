"""The clip's own audio moved in time: a reference that says how well a face matches speech it did not make.

A raw match between face and voice (a reconstruction error, a sync probability) depends on the person,
the camera and what is said as much as on whether the two belong together. Scoring the same face
against its own soundtrack moved by a second or two keeps all of that and breaks only the timing, so
"own audio ÷ moved audio" measures the timing alone: genuine speech matches its own audio much better
than the moved one; a face driven by other speech (dubbing, a lip-sync fake) matches neither.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..media.clip import ClipFeatures

REFERENCE_SHIFTS = (-50, -35, 35, 50)
"""Frames the audio is moved by (1.4 and 2 s, both ways): far beyond any lip-sync tolerance, and
long enough that a syllable's rhythm does not line up again by chance."""
MIN_SHIFT_FRAMES = 10
"""On a clip shorter than a shift the move wraps around; a wrapped move closer to 0 than this (0.4 s)
would still look almost in sync, so it is dropped."""


def reference_shifts(num_frames: int, shifts: tuple[int, ...] = REFERENCE_SHIFTS) -> list[int]:
    """The moves (frames, cyclic within the clip) that stay at least :data:`MIN_SHIFT_FRAMES` from 0."""
    kept = []
    for shift in shifts:
        wrapped = shift % num_frames if num_frames else 0
        if min(wrapped, num_frames - wrapped) >= MIN_SHIFT_FRAMES and wrapped not in kept:
            kept.append(wrapped)
    return kept


def shifted_audio(clip: ClipFeatures, shift: int) -> ClipFeatures:
    """``clip`` whose frame ``i`` hears the audio of frame ``(i + shift) % frames``.

    The audio is rolled cyclically, so every frame keeps speech to hear; ``waveform_envelope`` is
    rolled with it.
    """
    frames = clip.num_frames
    order = (np.arange(frames) + shift) % frames
    envelope = clip.waveform_envelope[order] if len(clip.waveform_envelope) == frames else clip.waveform_envelope
    return replace(clip, audio=clip.audio.at_frames(order), waveform_envelope=envelope,
                   name=f"{clip.name}+audio shifted {shift}")
