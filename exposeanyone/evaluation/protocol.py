"""The evaluation protocol: enroll each person of interest, score genuine clips and negatives, report AUCs.

For every identity with ``ref`` rows (a person of interest, POI): enroll on its references, score its
``test`` rows, and score derived negatives, deterministically:

- ``identity-swap``: every real test clip of every *other* identity, scored against this person;
- ``audio-swap``: each of the POI's real test clips with the audio of the POI's next real test clip
  (manifest order, cyclic), trimmed or looped to length — a dubbing fake. A pair whose two clips carry
  the same speech (two encodes of one recording; :func:`shares_speech`) is no dubbing and is left out,
  listed in ``per_identity[poi]["excluded_audio_swaps"]``.

Genuine test clips whose speech is also in the POI's reference footage are listed in
``per_identity[poi]["genuine_repeating_reference"]``: an enrolled detector has heard them, so their
scores say less than the others'.

``mean_auc`` is the mean over POIs of the AUC of their genuine clips against all their negatives;
``per_manipulation`` pools every POI's genuine clips against each kind of negative. Detectors that need
no enrollment are also scored open-set: every real test clip against every fake kind.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..calibration import FALSE_ALARM_RATE
from ..core.metrics import roc_auc
from ..core.progress import ProgressFn, no_progress
from ..media.clip import ClipFeatures
from ..media.corruptions import CorruptionSpec
from .manifest import ManifestRow

NEGATIVE_KINDS = ("identity-swap", "audio-swap")


@dataclass(frozen=True)
class Scored:
    """One scored clip of the protocol."""

    file: str
    kind: str
    """``genuine`` or the negative's manipulation."""
    score: float
    session: str = ""


def clip_loader(corrupt: CorruptionSpec | None = None) -> Callable[[ManifestRow, bool], ClipFeatures]:
    """``load(row, is_test)`` for :func:`evaluate`, memoised; only test clips are corrupted."""
    from ..media.extract import extract_clip

    cache: dict = {}

    def load(row: ManifestRow, is_test: bool) -> ClipFeatures:
        key = (row.path, is_test)
        if key not in cache:
            cache[key] = extract_clip(row.path, corrupt if is_test else None, require_face=False)
        return cache[key]
    return load


def _auc(genuine: Sequence[float], negatives: Sequence[float]) -> float | None:
    genuine = [s for s in genuine if np.isfinite(s)]
    negatives = [s for s in negatives if np.isfinite(s)]
    if not genuine or not negatives:
        return None
    return round(float(roc_auc(genuine, negatives)), 4)


SAME_SPEECH_CORRELATION = 0.95
"""Loudness envelopes this correlated are one recording: on avdata, two encodes of the same speech
correlate at 0.97-1.0, while different recordings of a person stay below 0.8."""


def shares_speech(a: ClipFeatures, b: ClipFeatures, threshold: float = SAME_SPEECH_CORRELATION) -> bool:
    """Whether the shorter clip's speech appears in the longer one: the 100 Hz loudness envelopes
    (mean log-mel) correlate at ``threshold`` or more at some lag with the shorter one fully inside."""
    short, long = sorted((np.asarray(c.audio.mel, np.float64).mean(axis=1) for c in (a, b)), key=len)
    n = len(short)
    if n < 2 or short.std() == 0:
        return False
    short = (short - short.mean()) / short.std()
    sums = np.concatenate([[0.0], np.cumsum(long)])
    squares = np.concatenate([[0.0], np.cumsum(long ** 2)])
    means = (sums[n:] - sums[:-n]) / n
    stds = np.sqrt(np.maximum((squares[n:] - squares[:-n]) / n - means ** 2, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.correlate(long, short, "valid") / (n * stds)
    return bool(np.nanmax(np.where(stds > 1e-9, correlation, np.nan), initial=-1.0) >= threshold)


def audio_swapped(real_clips: Sequence[ClipFeatures], excluded: list | None = None) -> list[ClipFeatures]:
    """Each clip with the next clip's audio (cyclic); empty when there are fewer than two. Pairs that
    share their speech (:func:`shares_speech`) are skipped and, if given, appended to ``excluded`` as
    ``"face+audio"`` names."""
    if len(real_clips) < 2:
        return []
    swapped = []
    for i, clip in enumerate(real_clips):
        donor = real_clips[(i + 1) % len(real_clips)]
        if shares_speech(clip, donor):
            if excluded is not None:
                excluded.append(f"{clip.name}+audio:{donor.name}")
            continue
        swapped.append(clip.with_audio_of(donor))
    return swapped


def evaluate(rows: Sequence[ManifestRow], load: Callable[[ManifestRow, bool], ClipFeatures], detector_name: str,
             negatives: Sequence[str] = NEGATIVE_KINDS, max_impostors: int = 0,
             progress: ProgressFn = no_progress, profiles: dict | None = None, open_set: bool = True) -> dict:
    """Run the protocol for one detector.

    Args:
        rows: the manifest (``pretrain`` rows are ignored).
        load: ``load(row, is_test)`` returns the row's analysed clip (test clips may be corrupted).
        max_impostors: score at most this many identity-swap clips per POI (0: all), taken evenly
            over the manifest order so every other identity stays represented.
        profiles: a dict reused across runs: enrollment (on clean references) happens once per POI.
        open_set: for detectors without enrollment, also score every test clip against each fake kind
            (``result["open_set"]``); a corruption sweep skips it, since it re-tracks every test clip.
    """
    from ..pipeline import enroll_clips, load_detector, score_clip, without_trajectories

    detector = without_trajectories(load_detector(detector_name))
    pois = sorted({r.identity for r in rows if r.split == "ref"})
    tests = [r for r in rows if r.split == "test"]
    started = time.perf_counter()
    per_identity, scored_by_poi, false_alarms = {}, {}, []
    unenrolled_scores: dict[tuple[str, str], float] = {}
    for p, poi in enumerate(pois):
        def step(fraction, message, p=p):
            progress((p + fraction) / max(1, len(pois)), f"{poi}: {message}")

        profile = None
        if detector.requires_enrollment:
            profiles = {} if profiles is None else profiles
            if (poi, detector_name) not in profiles:
                refs = [load(r, False) for r in rows if r.split == "ref" and r.identity == poi]
                profiles[poi, detector_name] = enroll_clips(poi, refs, [detector_name], lambda f, m: step(0.5 * f, m))
            profile = profiles[poi, detector_name]
        threshold = _threshold(detector, detector_name, profile)

        def score(clip: ClipFeatures) -> float:
            if profile is not None:
                return score_clip(clip, profile, detector_name, detector=detector).score
            # without a profile a clip scores the same for every person: an impostor is scored once, not per person
            key = (clip.name, clip.content_hash)
            if key not in unenrolled_scores:
                unenrolled_scores[key] = score_clip(clip, None, detector_name, detector=detector).score
            return unenrolled_scores[key]

        own = [r for r in tests if r.identity == poi]
        own_real = [r for r in own if r.is_real]
        real_clips = [load(r, True) for r in own_real]
        scored = [Scored(str(r.path.name), "genuine", score(c), r.session) for r, c in zip(own_real, real_clips)]
        scored += [Scored(r.path.name, r.manipulation, score(load(r, True))) for r in own if not r.is_real]
        excluded: list[str] = []
        if "audio-swap" in negatives:
            scored += [Scored(c.name, "audio-swap", score(c)) for c in audio_swapped(real_clips, excluded)]
        if "identity-swap" in negatives:
            impostors = [r for r in tests if r.is_real and r.identity != poi]
            if max_impostors and len(impostors) > max_impostors:
                impostors = [impostors[i] for i in np.linspace(0, len(impostors) - 1, max_impostors).astype(int)]
            for k, row in enumerate(impostors):
                step(0.5 + 0.5 * k / len(impostors), f"identity swap {k + 1}/{len(impostors)}")
                scored.append(Scored(row.path.name, "identity-swap", score(load(row, True))))
        genuine = [s.score for s in scored if s.kind == "genuine"]
        negative_scores = [s.score for s in scored if s.kind != "genuine"]
        ref_sessions = {r.session for r in rows if r.split == "ref" and r.identity == poi}
        cross = [s for s in scored if s.kind == "genuine" and s.session and s.session not in ref_sessions]
        false_alarms += [{"identity": poi, "file": s.file, "session": s.session, "score": s.score,
                          "threshold": threshold, "flagged": bool(s.score > threshold)} for s in cross
                         if np.isfinite(threshold)]
        per_identity[poi] = {"auc": _auc(genuine, negative_scores), "n_real": len(genuine),
                             "n_fake": len(negative_scores),
                             "auc_by_kind": {k: _auc(genuine, [s.score for s in scored if s.kind == k])
                                             for k in sorted({s.kind for s in scored} - {"genuine"})},
                             "threshold": threshold,
                             "genuine_flagged": int(sum(g > threshold for g in genuine)),
                             "excluded_audio_swaps": excluded,
                             "genuine_repeating_reference": _repeating_reference(rows, poi, own_real, real_clips, load)}
        scored_by_poi[poi] = scored
    result = {"detector": detector_name, "mean_auc": _mean([v["auc"] for v in per_identity.values()]),
              "per_identity": per_identity, "per_manipulation": _per_manipulation(scored_by_poi),
              "cross_session_false_alarms": {
                  "flagged": sum(f["flagged"] for f in false_alarms), "n": len(false_alarms),
                  "rate": round(sum(f["flagged"] for f in false_alarms) / len(false_alarms), 4) if false_alarms else None,
                  "target_false_alarm_rate": FALSE_ALARM_RATE, "clips": false_alarms},
              "scores": {poi: [s.__dict__ for s in scored] for poi, scored in scored_by_poi.items()}}
    if open_set and not detector.requires_enrollment:
        result["open_set"] = _open_set(tests, load, lambda c: score_clip(c, None, detector_name, detector=detector).score)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _repeating_reference(rows: Sequence[ManifestRow], poi: str, own_real: Sequence[ManifestRow],
                         real_clips: Sequence[ClipFeatures], load) -> list[str]:
    """Names of the POI's genuine test clips whose speech is in its reference footage."""
    refs = [load(r, False) for r in rows if r.split == "ref" and r.identity == poi]
    return [row.path.name for row, clip in zip(own_real, real_clips) if any(shares_speech(clip, ref) for ref in refs)]


def _threshold(detector, name: str, profile) -> float:
    """The threshold verdicts would use: the person's calibration, else the detector's own, else NaN."""
    from ..pipeline import _calibration_for

    return float(_calibration_for(detector, name, profile).threshold)


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None]
    return round(float(np.mean(finite)), 4) if finite else None


def _per_manipulation(scored_by_poi: dict[str, list[Scored]]) -> dict:
    kinds = sorted({s.kind for scored in scored_by_poi.values() for s in scored} - {"genuine"})
    genuine = [s.score for scored in scored_by_poi.values() for s in scored if s.kind == "genuine"]
    table = {}
    for kind in kinds:
        fakes = [s.score for scored in scored_by_poi.values() for s in scored if s.kind == kind]
        per_poi = [_auc([s.score for s in scored if s.kind == "genuine"], [s.score for s in scored if s.kind == kind])
                   for scored in scored_by_poi.values()]
        table[kind] = {"auc": _auc(genuine, fakes), "mean_identity_auc": _mean(per_poi), "n_fake": len(fakes),
                       "n_real": len(genuine)}
    return table


def _open_set(tests: Sequence[ManifestRow], load, score: Callable[[ClipFeatures], float]) -> dict:
    """Identity-agnostic detectors: every real test clip against each fake kind and against dubbing."""
    real_rows = [r for r in tests if r.is_real]
    real = {r.path.name: score(load(r, True)) for r in real_rows}
    by_identity: dict[str, list[ClipFeatures]] = {}
    for r in real_rows:
        by_identity.setdefault(r.identity, []).append(load(r, True))
    kinds: dict[str, list[float]] = {}
    for r in tests:
        if not r.is_real:
            kinds.setdefault(r.manipulation, []).append(score(load(r, True)))
    kinds["audio-swap"] = [score(c) for clips in by_identity.values() for c in audio_swapped(clips)]
    return {kind: {"auc": _auc(list(real.values()), fakes), "n_real": len(real), "n_fake": len(fakes)}
            for kind, fakes in sorted(kinds.items())}
