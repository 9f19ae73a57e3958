"""Enroll a person and score a clip: the library's front door, used by the CLI, the app and the evaluation.

Data flows one way: files become :class:`ClipFeatures` once (cached), detectors turn them into scores,
calibration turns scores into a verdict, and a :class:`ScoreReport` carries everything to the user.
"""
from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .calibration import calibrate, cross_validated_scores, verdict
from .core.config import Limits
from .core.errors import InputError, LimitError, ProfileError
from .core.jsonable import json_floats
from .core.progress import ProgressFn, no_progress
from .detectors.base import Calibration, Detector, PersonModel
from .detectors.registry import load_detector, profile_fingerprint
from .media.clip import ClipFeatures
from .media.corruptions import CorruptionSpec
from .media.extract import extract_clip
from .profiles import DetectorEntry, Profile, ProfileCard, ProfileStore, ReferenceEntry, validate_name
from .report import ScoreReport, trajectories_by_channel

MIN_REFERENCE_USABLE_S = 4.0
"""Less face-and-speech than one 4 s window in the reference cannot personalise anything."""
SHORT_REFERENCE_S = 20.0
"""Below this much usable reference, the card and the app warn that verdicts are less reliable."""
ONE_RECORDING_WARNING = ("All the reference footage is one clip, so the threshold knows one recording only: genuine "
                         "footage from another camera, room or microphone may score above it; add clips from other "
                         "recordings.")
"""Said when a person is enrolled from a single clip. On avdata, where each person of interest's reference is one
recording, 3 of 14 genuine clips from their other recordings scored above the EXAM threshold (target 10 %;
``python benchmarks/detection.py --detectors exam --max-impostors 40``), where the threshold is set to flag 5 % of
the held-out reference windows."""


def without_trajectories(detector: Detector) -> Detector:
    """A shallow copy that skips the generated trajectory (only plots need it): for calibration and evaluation."""
    if getattr(detector, "generation_steps", 0):
        detector = copy.copy(detector)
        detector.generation_steps = 0
    if hasattr(detector, "exam"):
        detector = copy.copy(detector)
        detector.exam = without_trajectories(detector.exam)
    return detector


def usable_seconds(clip: ClipFeatures) -> float:
    return float(clip.usable.sum() / clip.fps)


def enroll_clips(name: str, clips: Sequence[ClipFeatures], detectors: Sequence[str] = ("exam",),
                 progress: ProgressFn = no_progress) -> Profile:
    """Personalise and calibrate each enrolling detector on the reference clips of one person (in memory)."""
    name = validate_name(name)
    usable = sum(usable_seconds(c) for c in clips)
    if usable < MIN_REFERENCE_USABLE_S:
        raise InputError(f"The reference footage has only {usable:.1f} s with both a visible face and speech; "
                         f"at least {MIN_REFERENCE_USABLE_S:.0f} s is needed (20 s or more is better).")
    warnings = []
    if usable < SHORT_REFERENCE_S:
        warnings.append(f"Only {usable:.0f} s of usable reference (face and speech): the calibration is rough "
                        f"and verdicts are less reliable; {SHORT_REFERENCE_S:.0f} s or more is recommended.")
    warnings += [grainy for grainy in map(_grainy_warning, clips) if grainy]
    if len(clips) == 1:
        warnings.append(ONE_RECORDING_WARNING)
    card = ProfileCard(created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), warnings=warnings,
                       references=[_reference_entry(c) for c in clips], usable_reference_seconds=round(usable, 2))
    models = {}
    enrolling = [d for d in detectors if load_detector(d).requires_enrollment]
    for i, name_of_detector in enumerate(enrolling):
        detector = load_detector(name_of_detector)
        share = 1.0 / max(1, len(enrolling))

        def step(fraction: float, message: str, i=i, label=name_of_detector) -> None:
            progress((i + fraction) * share, f"{label}: {message}")

        started = time.perf_counter()
        quick = without_trajectories(detector)
        genuine = cross_validated_scores(quick, clips, lambda f, m: step(0.66 * f, m))
        person = quick.enroll(clips, lambda f, m: step(0.66 + 0.34 * f, m))
        calibration = calibrate(genuine)
        if not calibration.reliable:
            warnings.append(f"{name_of_detector}: only {len(calibration.genuine_scores)} held-out genuine windows "
                            "for calibration; the threshold is rough.")
        models[name_of_detector] = person
        card.detectors[name_of_detector] = DetectorEntry(
            calibration=calibration, fingerprint=profile_fingerprint(name_of_detector),
            enroll_seconds=round(time.perf_counter() - started, 2))
    progress(1.0, "enrollment done")
    return Profile(name=name, card=card, models=models)


def _reference_entry(clip: ClipFeatures) -> ReferenceEntry:
    return ReferenceEntry(name=clip.name, sha256=clip.content_hash, duration_s=round(clip.duration_s, 2),
                          usable_s=round(usable_seconds(clip), 2),
                          face_detected_ratio=round(clip.track.face_detected_ratio, 3),
                          speech_ratio=round(clip.audio.speech_ratio, 3))


def enroll_files(name: str, videos: Sequence[str | Path], store: ProfileStore,
                 detectors: Sequence[str] = ("exam",), limits: Limits | None = None,
                 progress: ProgressFn = no_progress, replace: bool = False,
                 how: str = "pass replace=True") -> Profile:
    """Analyse reference videos, enroll the person and save the profile (nothing is saved on failure).

    A profile of that name is replaced only with ``replace=True``; otherwise it is refused
    (:class:`~exposeanyone.profiles.ProfileExists`, one sentence ending with ``how`` to overwrite it) before any
    video is analysed, and again when saving, should one have appeared meanwhile.
    """
    name = validate_name(name)
    store.refuse_reserved(name)
    if not replace:
        store.refuse_existing(name, how)
    limits = limits or Limits.from_env()
    if not videos:
        raise InputError("Give at least one reference video of the person speaking.")
    if len(videos) > limits.max_reference_clips:
        raise LimitError(f"{len(videos)} reference clips given; at most {limits.max_reference_clips} are accepted.")
    for detector in detectors:
        load_detector(detector)  # an unknown detector or missing weights is said before minutes of tracking
    clips = []
    for i, video in enumerate(videos):
        clips.append(extract_clip(video, limits=limits, progress=lambda f, m, i=i: progress(
            0.3 * (i + f) / len(videos), f"reference {i + 1}/{len(videos)}: {m}")))
    profile = enroll_clips(name, clips, detectors, lambda f, m: progress(0.3 + 0.7 * f, m))
    store.save(profile, replace=replace, how=how)
    return profile


def check_profile(profile: Profile, detector_name: str) -> PersonModel:
    """The profile's model for this detector, refusing one made with other base weights."""
    person = profile.models.get(detector_name)
    if person is None:
        raise ProfileError(f"The profile {profile.name!r} was not enrolled for the {detector_name!r} detector; "
                           f"enroll again with it (it has: {', '.join(profile.models) or 'nothing'}).")
    entry = profile.card.detectors.get(detector_name)
    expected = (entry.fingerprint if entry is not None else None) or ""
    if expected != profile_fingerprint(detector_name):
        raise ProfileError(f"The profile {profile.name!r} was made with a different {detector_name} base model or "
                           "score than the one installed: enroll the person again.")
    return person


def score_clip(clip: ClipFeatures, profile: Profile | None = None, detector_name: str = "exam",
               settings: dict | None = None, detector: Detector | None = None) -> ScoreReport:
    """Score one analysed clip and turn the score into a verdict with its reasons.

    ``detector`` overrides the shipped one of that name (e.g. :func:`without_trajectories` in evaluation).
    """
    detector = detector or load_detector(detector_name)
    person = None
    if detector.requires_enrollment:
        if profile is None:
            raise InputError(f"The {detector_name!r} detector compares with an enrolled person: choose a profile.")
        person = check_profile(profile, detector_name)
    output = detector.score(clip, person)
    calibration = _calibration_for(detector, detector_name, profile)
    usable = usable_seconds(clip)
    label, reason = verdict(output.score, calibration.threshold, usable, clip.track.face_detected_ratio,
                            float(clip.audio.speech.sum() / clip.fps),
                            "the person's" if detector.requires_enrollment else "the detector's")
    return ScoreReport(
        detector=detector_name, score=float(output.score), threshold=float(calibration.threshold), verdict=label,
        reason=reason, fps=clip.fps, window_starts=[int(s) for s in output.window_starts],
        window_length=int(output.window_length), window_scores=json_floats(output.window_scores, digits=5),
        frame_scores=json_floats(output.frame_scores, digits=5), face_detected_ratio=round(clip.track.face_detected_ratio, 4),
        speech_ratio=round(clip.audio.speech_ratio, 4), usable_seconds=round(usable, 2),
        duration_s=round(clip.duration_s, 3),
        clip={"name": clip.name, "sha256": clip.content_hash, "corruption": clip.corruption,
              "frames": clip.num_frames},
        profile=profile.name if profile else None,
        calibration={"threshold": calibration.threshold, "false_alarm_rate": calibration.false_alarm_rate,
                     "method": calibration.method, "genuine_scores": calibration.genuine_scores,
                     "score_percentile": calibration.percentile(output.score)},
        trajectories=trajectories_by_channel(output.trajectories), speech=clip.audio.speech.astype(int).tolist(),
        waveform=[round(float(v), 4) for v in clip.waveform_envelope],
        warnings=_clip_warnings(clip, profile) + list(output.warnings),
        extras=output.extras, settings=dict(settings or {}))


def _calibration_for(detector: Detector, name: str, profile: Profile | None) -> Calibration:
    if detector.requires_enrollment and profile is not None:
        calibration = profile.card.calibration(name)
        if calibration is not None:  # a copy: the report must not share the card's list of scores
            return replace(calibration, genuine_scores=list(calibration.genuine_scores))
    default = getattr(detector, "default_calibration", None)
    if callable(default):
        return default()
    return Calibration(threshold=float("nan"), false_alarm_rate=float("nan"), genuine_scores=[], method="none")


def _grainy_warning(clip: ClipFeatures) -> str | None:
    """What the blur of a grainy clip before tracking (:mod:`~exposeanyone.media.denoise`) means, or None."""
    denoising = clip.track.extra.get("denoising", {})
    if not denoising.get("blur_px"):
        return None
    return (f"'{clip.name}' is grainy (noise of about {denoising['noise_grey_levels']:.0f} grey levels of 255); its "
            f"frames were smoothed (blur of {denoising['blur_px']:.2g} px) before tracking the face, so its "
            "expressions, and the scores, are less certain than on clean footage.")


def _clip_warnings(clip: ClipFeatures, profile: Profile | None) -> list[str]:
    warnings = []
    if clip.track.max_faces > 1:
        warnings.append(f"More than one face appeared ({clip.track.multi_face_frames} frames); the largest, "
                        "steadiest face was followed throughout.")
    if grainy := _grainy_warning(clip):
        warnings.append(grainy)
    if clip.audio.speech_ratio < 0.2:
        warnings.append(f"Speech is audible in only {clip.audio.speech_ratio:.0%} of the clip.")
    if profile is not None:
        warnings += [f"profile: {w}" for w in profile.card.warnings]
    return warnings


def score_file(video: str | Path, profile_name: str | None, store: ProfileStore, detector_name: str = "exam",
               corrupt: CorruptionSpec | None = None, limits: Limits | None = None,
               progress: ProgressFn = no_progress) -> ScoreReport:
    """Analyse a video (optionally corrupted first) and score it against an enrolled person."""
    detector = load_detector(detector_name)
    profile = store.load(profile_name) if profile_name and detector.requires_enrollment else None
    if profile is not None:
        check_profile(profile, detector_name)
    clip = extract_clip(video, corrupt, limits=limits, progress=lambda f, m: progress(0.9 * f, m))
    progress(0.9, f"scoring with {detector_name}")
    report = score_clip(clip, profile, detector_name, settings={"corrupt": str(corrupt or ""), "detector": detector_name})
    progress(1.0, "done")
    return report


def genuine_score_array(report: ScoreReport) -> np.ndarray:
    return np.asarray(report.calibration.get("genuine_scores", []), dtype=float)
