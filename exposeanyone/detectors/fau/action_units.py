"""Facial action units (FACS) estimated from MediaPipe's 52 blendshapes.

FauForensics feeds a frozen AU detector's features to its visual stream. We have no such detector,
but MediaPipe's blendshapes follow Apple ARKit's set, which was designed around FACS: most of them are
one action unit, or its left/right half. Each AU below is therefore the mean of its blendshapes, one
(AU25) is a difference, and every value is clipped to [0, 1] like an AU intensity.

====  =====================  ==========================================================
AU    FACS name              blendshapes (mean of)
====  =====================  ==========================================================
AU1   inner brow raiser      browInnerUp
AU2   outer brow raiser      browOuterUpLeft, browOuterUpRight
AU4   brow lowerer           browDownLeft, browDownRight
AU5   upper lid raiser       eyeWideLeft, eyeWideRight
AU6   cheek raiser           cheekSquintLeft, cheekSquintRight
AU7   lid tightener          eyeSquintLeft, eyeSquintRight
AU9   nose wrinkler          noseSneerLeft, noseSneerRight
AU10  upper lip raiser       mouthUpperUpLeft, mouthUpperUpRight
AU12  lip corner puller      mouthSmileLeft, mouthSmileRight
AU14  dimpler                mouthDimpleLeft, mouthDimpleRight
AU15  lip corner depressor   mouthFrownLeft, mouthFrownRight
AU16  lower lip depressor    mouthLowerDownLeft, mouthLowerDownRight
AU17  chin raiser            mouthShrugLower
AU18  lip pucker             mouthPucker
AU20  lip stretcher          mouthStretchLeft, mouthStretchRight
AU22  lip funneler           mouthFunnel
AU23  lip tightener          mouthRollUpper, mouthRollLower (see below)
AU24  lip pressor            mouthPressLeft, mouthPressRight
AU25  lips part              jawOpen - mouthClose
AU26  jaw drop               jawOpen
AU45  blink                  eyeBlinkLeft, eyeBlinkRight
====  =====================  ==========================================================

ARKit has no lip tightener; rolling the lips inwards narrows the red of the lips as AU23 does, so
AU23 stands in for both AU23 and AU28 (lip suck). ``mouthClose`` is ARKit's "lips together while the
jaw is open", so jaw opening minus it is how far the lips are apart (AU25). Gaze, jaw sideways/forward,
cheek puff and the neutral score are left out: they are not facial actions that speech drives.
"""
from __future__ import annotations

import numpy as np

from ...core.errors import InputError
from ...media.track import BLENDSHAPE_NAMES

_AU_TABLE: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("AU1", ("browInnerUp",), ()),
    ("AU2", ("browOuterUpLeft", "browOuterUpRight"), ()),
    ("AU4", ("browDownLeft", "browDownRight"), ()),
    ("AU5", ("eyeWideLeft", "eyeWideRight"), ()),
    ("AU6", ("cheekSquintLeft", "cheekSquintRight"), ()),
    ("AU7", ("eyeSquintLeft", "eyeSquintRight"), ()),
    ("AU9", ("noseSneerLeft", "noseSneerRight"), ()),
    ("AU10", ("mouthUpperUpLeft", "mouthUpperUpRight"), ()),
    ("AU12", ("mouthSmileLeft", "mouthSmileRight"), ()),
    ("AU14", ("mouthDimpleLeft", "mouthDimpleRight"), ()),
    ("AU15", ("mouthFrownLeft", "mouthFrownRight"), ()),
    ("AU16", ("mouthLowerDownLeft", "mouthLowerDownRight"), ()),
    ("AU17", ("mouthShrugLower",), ()),
    ("AU18", ("mouthPucker",), ()),
    ("AU20", ("mouthStretchLeft", "mouthStretchRight"), ()),
    ("AU22", ("mouthFunnel",), ()),
    ("AU23", ("mouthRollUpper", "mouthRollLower"), ()),
    ("AU24", ("mouthPressLeft", "mouthPressRight"), ()),
    ("AU25", ("jawOpen",), ("mouthClose",)),
    ("AU26", ("jawOpen",), ()),
    ("AU45", ("eyeBlinkLeft", "eyeBlinkRight"), ()),
)
"""``(AU, blendshapes averaged in, blendshapes subtracted)``; the module docstring is its readable form."""

AU_NAMES: tuple[str, ...] = tuple(name for name, _, _ in _AU_TABLE)
"""The action units :func:`blendshapes_to_action_units` returns, in column order."""

N_ACTION_UNITS = len(AU_NAMES)


def _mapping_matrix() -> np.ndarray:
    """``(52, n_au)`` float32: column ``k`` turns a blendshape vector into action unit ``k``."""
    index = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
    matrix = np.zeros((len(BLENDSHAPE_NAMES), N_ACTION_UNITS), dtype=np.float32)
    for column, (_, added, subtracted) in enumerate(_AU_TABLE):
        for name in added:
            matrix[index[name], column] += 1.0 / len(added)
        for name in subtracted:
            matrix[index[name], column] -= 1.0
    return matrix


AU_MATRIX = _mapping_matrix()
"""``(52, n_au)`` the linear part of the mapping (before clipping to [0, 1])."""


def blendshapes_to_action_units(blendshapes: np.ndarray) -> np.ndarray:
    """Action unit intensities of each frame.

    Args:
        blendshapes: ``(frames, 52)`` MediaPipe blendshape scores in :data:`BLENDSHAPE_NAMES` order.
    Returns:
        ``(frames, n_au)`` float32 in [0, 1], columns in :data:`AU_NAMES` order.
    """
    blendshapes = np.asarray(blendshapes, dtype=np.float32)
    if blendshapes.ndim != 2 or blendshapes.shape[1] != len(BLENDSHAPE_NAMES):
        raise InputError(f"Blendshapes must have shape (frames, {len(BLENDSHAPE_NAMES)}), "
                         f"got {blendshapes.shape}.")
    return np.clip(blendshapes @ AU_MATRIX, 0.0, 1.0).astype(np.float32)
