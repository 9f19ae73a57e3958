"""What the app does, without Gradio: enroll, check, explain, export.

The Gradio layer (``app.py``) only wires components to these functions and turns :class:`InputError`
into a status message. Everything here returns plain data, Markdown text, plotly figures or file paths,
so it is tested without a browser or a server.
"""
from __future__ import annotations

import math
import re
import threading
from pathlib import Path
from typing import Mapping, Sequence

from ..core.config import Limits
from ..core.errors import InputError
from ..core.jsonable import is_finite, json_float
from ..core.progress import ProgressFn, no_progress
from ..detectors import registry
from ..detectors.base import MIN_GENUINE_WINDOWS
from ..media.corruptions import CORRUPTIONS, parse_corruption_spec
from ..media.track import EXPRESSION_NAMES
from ..pipeline import SHORT_REFERENCE_S, enroll_files, score_file
from ..profiles import MAX_ARCHIVE_BYTES, Profile, ProfileStore
from ..report import LIMITS_NOTE, ScoreReport
from .session import REPLACE_HOW, cancellable

CHANNEL_GROUPS: dict[str, tuple[str, ...]] = {
    "Mouth and jaw": ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
                      "mouthStretchLeft", "mouthStretchRight", "mouthLowerDownLeft", "mouthUpperUpLeft",
                      "mouthRollLower", "mouthPressLeft"),
    "Brows": ("browInnerUp", "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight"),
    "Eyes": ("eyeBlinkLeft", "eyeBlinkRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight"),
    "Head pose": ("headPitch", "headYaw", "headRoll", "headX", "headY", "headZ"),
    "Cheeks and nose": ("cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight"),
}
"""Expression channels grouped by face region, the most telling ones first."""
CHANNELS_SHOWN = 3
"""Channels drawn when a group is picked (more make each row too small to read)."""
MIN_REFERENCE_FACE_RATIO = 0.8
"""A reference clip with the face found in fewer frames than this is probably not clean footage."""
PAPERS = {
    "ExposeAnyone (arXiv 2601.02359)": "https://arxiv.org/abs/2601.02359",
    "FauForensics (arXiv 2505.08294)": "https://arxiv.org/abs/2505.08294",
}


# ------------------------------------------------------------------------------------- detectors
def available_detectors() -> list[str]:
    """The detectors the app offers whose weights are installed here, best first (see the registry)."""
    return registry.available_detectors()


def enrolling_detectors() -> list[str]:
    """The installed detectors that learn a person (the others need no enrollment)."""
    return [name for name in available_detectors() if registry.spec(name).requires_enrollment]


def detectors_info(names: Sequence[str]) -> str:
    """One line naming what each detector is, e.g. under a detector picker."""
    return "; ".join(f"{name}: {registry.spec(name).summary}" for name in names) + "."


def not_installed(name: str) -> str:
    """Why a detector the app would show is absent, and how to make its weights."""
    entry = registry.spec(name)
    return (f"The {entry.label} model is not installed ({entry.shipped_as}), so there is no second opinion; "
            f"train it with `exposeanyone {entry.train_command}`.")


def default_channels(group: str) -> list[str]:
    """The first channels of a group, drawn when the group is picked."""
    return list(CHANNEL_GROUPS.get(group, CHANNEL_GROUPS["Mouth and jaw"])[:CHANNELS_SHOWN])


def all_channels() -> list[str]:
    """Every expression channel, grouped ones first, for the channel picker."""
    grouped = [name for names in CHANNEL_GROUPS.values() for name in names]
    return grouped + [name for name in EXPRESSION_NAMES if name not in grouped and not name.startswith("_")]


# ------------------------------------------------------------------------------------- corruptions
def corruption_spec(levels: Mapping[str, int | float | None]) -> str:
    """``{"blur": 3, "jpeg": 0, ...}`` to the spec string ``"blur:3"`` (level 0 or None = off)."""
    parts = []
    for name in CORRUPTIONS:
        level = levels.get(name)
        if level is not None and int(level) > 0:
            parts.append(f"{name}:{int(level)}")
    spec = ",".join(parts)
    parse_corruption_spec(spec)  # refuse a bad level here, not after the clip was uploaded
    return spec


def corruption_label(name: str) -> str:
    """A slider label: the corruption and its DeeperForensics code."""
    code = CORRUPTIONS[name].code
    return f"{name} ({code})" if code else name


def corruption_info(name: str) -> str:
    """One sentence under a slider: what the corruption does and its parameter at levels 1-5."""
    corruption = CORRUPTIONS[name]
    what = corruption.description.split(":")[0].split(" (")[0].rstrip(".")
    values = ", ".join(f"{v:g}" for v in corruption.params)
    return f"{what}; {corruption.unit} {values} at levels 1-5."


# ------------------------------------------------------------------------------------- enroll
def enroll(name: str, videos: Sequence[str | Path], store: ProfileStore, detectors: Sequence[str] | None = None,
           progress: ProgressFn = no_progress, cancel: threading.Event | None = None,
           limits: Limits | None = None, replace: bool = False) -> Profile:
    """Enroll a person from uploaded reference clips (see :func:`exposeanyone.pipeline.enroll_files`).

    A profile of that name is replaced only with ``replace=True`` (the ready example person never); otherwise
    it is refused in one sentence before any clip is analysed (the app runs one enrollment at a time, so
    none can slip in meanwhile).
    """
    detectors = list(detectors or enrolling_detectors()[:1])
    if not detectors:
        best = min((entry for entry in registry.REGISTRY.values()
                    if entry.requires_enrollment and entry.app_rank is not None), key=lambda entry: entry.app_rank)
        raise InputError(f"No detector that learns a person is installed: restore {best.shipped_as} "
                         f"(or train it with `exposeanyone {best.train_command}`).")
    videos = [str(v) for v in videos or [] if v]
    return enroll_files(name, videos, store, detectors, limits, cancellable(progress, cancel), replace=replace,
                        how=REPLACE_HOW)


def enrollment_summary(profile: Profile) -> dict:
    """What the enrollment found: usable footage, calibration, and whether to trust it (JSON-ready)."""
    card = profile.card
    warnings = list(card.warnings)
    for reference in card.references:
        if reference.face_detected_ratio is not None and reference.face_detected_ratio < MIN_REFERENCE_FACE_RATIO:
            warnings.append(f"The face was found in only {reference.face_detected_ratio:.0%} of the frames of "
                            f"'{reference.name}': reference footage should show the face all the time.")
    detectors = {}
    for detector, entry in card.detectors.items():
        calibration = entry.calibration
        genuine = calibration.genuine_scores if calibration is not None else []
        detectors[detector] = {"threshold": json_float(calibration.threshold if calibration else None),
                               "false_alarm_rate": json_float(calibration.false_alarm_rate if calibration else None),
                               "genuine_windows": len(genuine), "reliable": len(genuine) >= MIN_GENUINE_WINDOWS,
                               "enroll_seconds": entry.enroll_seconds}
    usable = float(card.usable_reference_seconds or 0.0)
    return {"name": profile.name, "created": card.created, "usable_reference_seconds": usable,
            "references": [reference.to_json() for reference in card.references], "detectors": detectors,
            "warnings": warnings,
            "trusted": not warnings and usable >= SHORT_REFERENCE_S and all(d["reliable"] for d in detectors.values())}


def enrollment_status(summary: dict) -> str:
    """One line saying the enrollment is done and how far to trust it."""
    trust = "good" if summary["trusted"] else "limited, see the warnings"
    return (f"### Enrolled '{summary['name']}'\n{summary['usable_reference_seconds']:.1f} s of usable reference; "
            f"trust: {trust}. The profile's summary is below.")


def enrollment_markdown(summary: dict) -> str:
    """The enrollment summary as Markdown, every number with its meaning."""
    lines = [f"### Profile '{summary['name']}'",
             "**Trust: " + ("good**: enough clean reference footage." if summary["trusted"] else
                            "limited**: read the warnings below before relying on verdicts."), ""]
    lines += ["| | value | what it means |", "|---|---|---|",
              f"| usable reference | {summary['usable_reference_seconds']:.1f} s | seconds with both a visible face "
              f"and speech, the only footage the model learns from ({SHORT_REFERENCE_S:.0f} s or more is "
              "recommended) |"]
    for detector, facts in summary["detectors"].items():
        threshold = "n/a" if facts["threshold"] is None else f"{facts['threshold']:.3f}"
        rate = facts["false_alarm_rate"] or 0.0
        lines += [f"| {detector} threshold | {threshold} | clips scoring above it are called fake; "
                  f"{rate:.0%} of this person's own held-out genuine windows do |",
                  f"| {detector} calibration windows | {facts['genuine_windows']} | held-out genuine 4 s windows "
                  f"the threshold was set on ({MIN_GENUINE_WINDOWS} or more make it reliable) |"]
    if summary["references"]:
        lines += ["", "| reference clip | length | usable | face found | speech |", "|---|---|---|---|---|"]
        for ref in summary["references"]:
            lines.append(f"| {ref['name']} | {ref['duration_s']:.1f} s | {ref['usable_s']:.1f} s | "
                         f"{ref['face_detected_ratio']:.0%} of frames | {ref['speech_ratio']:.0%} of frames |")
    if summary["warnings"]:
        lines += ["", "**Warnings**", *[f"- {w}" for w in summary["warnings"]]]
    return "\n".join(lines)


def profile_overview(store: ProfileStore, name: str | None) -> tuple[dict, str]:
    """Summary and Markdown of an enrolled profile, or an empty summary when none is chosen."""
    if not name:
        return {}, "No profile chosen. Enroll a person, or pick one from the list."
    summary = enrollment_summary(store.load(name))
    return summary, enrollment_markdown(summary)


def export_profile(store: ProfileStore, name: str | None, folder: Path) -> Path:
    """The profile as a zip in ``folder``, for download."""
    if not name:
        raise InputError("Pick a profile to download.")
    data = store.export_zip(name)
    path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.exposeanyone-profile.zip"
    path.write_bytes(data)
    return path


def import_profile(store: ProfileStore, archive: str | Path | None, name: str | None = None,
                   replace: bool = False) -> Profile:
    """Install an uploaded profile archive, under ``name`` when given; a profile of that name is replaced
    only with ``replace=True``."""
    if not archive:
        raise InputError("Upload a profile archive (.zip) first.")
    path = Path(archive)
    if path.stat().st_size > MAX_ARCHIVE_BYTES:
        raise InputError("The uploaded file is too large to be a profile archive.")
    return store.import_zip(path.read_bytes(), (name or "").strip() or None, replace=replace, how=REPLACE_HOW)


# ------------------------------------------------------------------------------------- check
def check(video: str | Path | None, profile_name: str | None, store: ProfileStore, detector: str = "exam",
          corrupt: str = "", progress: ProgressFn = no_progress, limits: Limits | None = None) -> ScoreReport:
    """Score an uploaded clip against a profile, optionally corrupted first."""
    if not video:
        raise InputError("Upload a clip to check (or pick one of the examples).")
    spec = parse_corruption_spec(corrupt or None)
    report = score_file(video, profile_name or None, store, detector, spec or None, limits, progress)
    report.settings.update(profile=report.profile, corrupt=str(spec))
    return report


def suspicious_segments(report: ScoreReport, min_seconds: float = 0.2) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` stretches whose per-frame score is above the threshold, at least ``min_seconds``."""
    if not is_finite(report.threshold):
        return []
    segments, start = [], None
    scores = list(report.frame_scores) + [None]
    for index, value in enumerate(scores):
        above = value is not None and value > report.threshold
        if above and start is None:
            start = index
        elif not above and start is not None:
            if (index - start) / report.fps >= min_seconds:
                segments.append((round(start / report.fps, 3), round(index / report.fps, 3)))
            start = None
    return segments


def report_summary(report: ScoreReport) -> dict:
    """The headline numbers of a report (JSON-ready), as the API returns them."""
    scored = sum(v is not None for v in report.window_scores)
    return {"verdict": report.verdict, "reason": report.reason, "score": json_float(report.score),
            "threshold": json_float(report.threshold), "detector": report.detector, "profile": report.profile,
            "score_percentile": json_float(report.calibration.get("score_percentile")),
            "false_alarm_rate": json_float(report.calibration.get("false_alarm_rate")),
            "genuine_windows": len(report.calibration.get("genuine_scores", [])),
            "windows_scored": scored, "windows_total": len(report.window_scores),
            "usable_seconds": report.usable_seconds, "duration_s": report.duration_s,
            "face_detected_ratio": report.face_detected_ratio, "speech_ratio": report.speech_ratio,
            "corruption": report.settings.get("corrupt", ""), "suspicious_segments_s": suspicious_segments(report),
            "warnings": list(report.warnings)}


VERDICT_HEADLINES = {
    "real": "Consistent with the person's genuine footage",
    "fake": "Unlike the person's genuine footage: likely manipulated",
    "inconclusive": "not enough evidence either way",
}


def report_markdown(report: ScoreReport) -> str:
    """The verdict, every number with one sentence on what it means, and what the verdict does not prove."""
    summary = report_summary(report)
    headline = VERDICT_HEADLINES.get(report.verdict, report.verdict)
    lines = [f"## {report.verdict.upper()}: {headline}", f"Because {report.reason}.", "",
             "| | value | what it means |", "|---|---|---|",
             f"| score | {_text(summary['score'])} | " + (
                 f"how unlike {report.profile}'s genuine footage this clip is ({report.detector} detector)"
                 if report.profile else f"how suspicious the {report.detector} detector finds this clip")
             + "; higher means more likely fake |"]
    if summary["threshold"] is not None:
        rate = summary["false_alarm_rate"]
        rate_text = f"{rate:.0%} of" if rate is not None and math.isfinite(rate) else "a few of"
        lines.append(f"| threshold | {_text(summary['threshold'])} | scores above it are called fake; "
                     f"{rate_text} the person's own held-out genuine windows score above it |")
    if summary["score_percentile"] is not None:
        lines.append(f"| genuine windows scoring lower | {summary['score_percentile']:.0f}% | share of the "
                     f"person's {summary['genuine_windows']} held-out genuine reference windows that scored "
                     "below this clip |")
    lines += _component_rows(report)
    lines += [f"| windows scored | {summary['windows_scored']} of {summary['windows_total']} | sliding windows "
              "with enough visible face and speech to be scored; the score is their mean |",
              f"| usable footage | {report.usable_seconds:.1f} s of {report.duration_s:.1f} s | seconds with both "
              "a visible face and detected speech |",
              f"| face found | {report.face_detected_ratio:.0%} | share of frames where the face tracker found "
              "the face |",
              f"| speech | {report.speech_ratio:.0%} | share of frames where speech was detected in the audio |"]
    if summary["suspicious_segments_s"]:
        spans = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in summary["suspicious_segments_s"])
        lines.append(f"| suspicious stretches | {spans} | where the per-frame score is above the threshold "
                     "(shaded red in the score chart) |")
    if summary["corruption"]:
        lines.append(f"| corruption applied | {summary['corruption']} | the clip was degraded this way before "
                     "analysis, to test how the verdict holds |")
    if report.warnings:
        lines += ["", "**Warnings**", *[f"- {w}" for w in report.warnings]]
    lines += ["", f"**What the score means.** {report.explanation}", "",
              f"**What it does not prove.** {LIMITS_NOTE}"]
    return "\n".join(lines)


def _component_rows(report: ScoreReport) -> list[str]:
    """One table row per ingredient of the score the detector reports (mean over scored windows), and
    the audio offset when the detector estimated one."""
    components = registry.score_components(report.detector)
    rows = [f"| {components[key][0]} | {_text(value)} | {components[key][1]} (mean over windows) |"
            for key, value in report.component_means().items()]
    offset = report.extras.get("audio_offset")
    if offset:
        rows.append(f"| audio offset | {offset['milliseconds']:+d} ms | where the sound fits the face best "
                    "(positive: the sound comes after the face); a constant offset from re-encoding is common and "
                    "is flagged from 120 ms |")
    return rows


def write_report_files(report: ScoreReport, folder: Path) -> tuple[Path, Path]:
    """The full report as JSON and the per-frame curve as CSV in ``folder``: ``(json_path, csv_path)``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(report.clip.get("name") or "clip").stem) or "clip"
    suffix = f"_{report.detector}" + (f"_{re.sub(r'[^A-Za-z0-9]+', '-', report.settings['corrupt'])}"
                                      if report.settings.get("corrupt") else "")
    json_path = folder / f"{stem}{suffix}_report.json"
    csv_path = folder / f"{stem}{suffix}_frames.csv"
    json_path.write_text(report.to_json_text(), encoding="utf-8")
    csv_path.write_text(report.frames_csv(), encoding="utf-8")
    return json_path, csv_path


# ------------------------------------------------------------------------------------- helpers
def _text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
