"""The evaluation protocol: enroll each person of interest, score genuine clips and negatives, report AUCs.

For every identity with ``ref`` rows (a person of interest, POI): enroll on its references, score its
``test`` rows, and score derived negatives, deterministically:

- ``identity-swap``: every real test clip of every *other* identity, scored against this person;
- ``audio-swap``: each of the POI's real test clips with the audio of the POI's next real test clip
  (manifest order, cyclic), trimmed or looped to length — a dubbing fake.

``mean_auc`` is the mean over POIs of the AUC of their genuine clips against all their negatives;
``per_manipulation`` pools every POI's genuine clips against each kind of negative. Detectors that need
no enrollment are also scored open-set: every real test clip against every fake kind.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .calibration import FALSE_ALARM_RATE
from .clip import ClipFeatures
from .detectors.base import ProgressFn, no_progress
from .manifest import ManifestRow
from .metrics import roc_auc

NEGATIVE_KINDS = ("identity-swap", "audio-swap")


@dataclass(frozen=True)
class Scored:
    """One scored clip of the protocol."""

    file: str
    kind: str
    """``genuine`` or the negative's manipulation."""
    score: float
    session: str = ""


def clip_loader(corrupt: str | None = None) -> Callable[[ManifestRow, bool], ClipFeatures]:
    """``load(row, is_test)`` for :func:`evaluate`, memoised; only test clips are corrupted."""
    from .extract import extract_clip

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


def audio_swapped(real_clips: Sequence[ClipFeatures]) -> list[ClipFeatures]:
    """Each clip with the next clip's audio (cyclic); empty when there are fewer than two."""
    if len(real_clips) < 2:
        return []
    return [clip.with_audio_of(real_clips[(i + 1) % len(real_clips)]) for i, clip in enumerate(real_clips)]


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
    from .pipeline import enroll_clips, load_detector, score_clip, without_trajectories

    detector = without_trajectories(load_detector(detector_name))
    pois = sorted({r.identity for r in rows if r.split == "ref"})
    tests = [r for r in rows if r.split == "test"]
    started = time.perf_counter()
    per_identity, scored_by_poi, false_alarms = {}, {}, []
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
            return score_clip(clip, profile, detector_name, detector=detector).score

        own = [r for r in tests if r.identity == poi]
        own_real = [r for r in own if r.is_real]
        real_clips = [load(r, True) for r in own_real]
        scored = [Scored(str(r.path.name), "genuine", score(c), r.session) for r, c in zip(own_real, real_clips)]
        scored += [Scored(r.path.name, r.manipulation, score(load(r, True))) for r in own if not r.is_real]
        if "audio-swap" in negatives:
            scored += [Scored(c.name, "audio-swap", score(c)) for c in audio_swapped(real_clips)]
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
                             "genuine_flagged": int(sum(g > threshold for g in genuine))}
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


def _threshold(detector, name: str, profile) -> float:
    """The threshold verdicts would use: the person's calibration, else the detector's own, else NaN."""
    from .pipeline import _calibration_for

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
