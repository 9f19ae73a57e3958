"""The commands that use the shipped models: track, enroll, score, profiles."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..core.config import Limits, profiles_dir
from ..core.errors import InputError
from .common import check_output, profile_store, progress_printer


def add_use_commands(commands) -> None:
    track = commands.add_parser("track", help="track the face of a video and report what is usable")
    track.add_argument("video")
    track.add_argument("--out", help="write the track as .npz")
    track.add_argument("--corrupt", help="corruptions before tracking, e.g. 'blur:3,jpeg:2'")
    track.add_argument("--json", action="store_true", help="print the summary as JSON")
    track.set_defaults(handler=run_track)

    enroll = commands.add_parser("enroll", help="personalise the detector to a person from genuine clips")
    enroll.add_argument("--name", required=True, help="the person's profile name")
    enroll.add_argument("--profiles", help=f"profiles folder (default: {profiles_dir()})")
    enroll.add_argument("--detectors", default="exam", help="comma-separated enrolling detectors (exam, ridge)")
    enroll.add_argument("--replace", action="store_true", help="overwrite a profile of that name (refused without)")
    enroll.add_argument("videos", nargs="+", metavar="REF_VIDEO")
    enroll.set_defaults(handler=run_enroll)

    score = commands.add_parser("score", help="score a clip against an enrolled person")
    score.add_argument("video")
    score.add_argument("--profile", help="the enrolled person's name (not needed for fau and sync)")
    score.add_argument("--profiles", help=f"profiles folder (default: {profiles_dir()})")
    score.add_argument("--detector", default="exam", help="exam (default), fau, sync or ridge")
    score.add_argument("--corrupt", help="corruptions before tracking, e.g. 'blur:3,video:2'")
    score.add_argument("--json", metavar="OUT", help="write the full report as JSON")
    score.set_defaults(handler=run_score)

    profiles = commands.add_parser("profiles", help="list, export, import or delete profiles")
    profiles.add_argument("action", choices=["list", "export", "import", "delete"])
    profiles.add_argument("target", nargs="?", help="profile name (export/delete) or archive (import)")
    profiles.add_argument("--out", help="archive path for export")
    profiles.add_argument("--name", help="name to install an imported profile under")
    profiles.add_argument("--profiles", help=f"profiles folder (default: {profiles_dir()})")
    profiles.set_defaults(handler=run_profiles)


def run_track(args) -> int:
    from ..media.corruptions import parse_corruption_spec
    from ..media.extract import extract_clip

    out = check_output(args.out)
    clip = extract_clip(args.video, parse_corruption_spec(args.corrupt), progress=progress_printer())
    summary = {"file": clip.name, "frames": clip.num_frames, "fps": clip.fps, "duration_s": round(clip.duration_s, 3),
               "face_detected_ratio": round(clip.track.face_detected_ratio, 4),
               "interpolated_frames": int(clip.track.interpolated.sum()),
               "speech_ratio": round(clip.audio.speech_ratio, 4), "max_faces": clip.track.max_faces,
               "corruption": clip.corruption, "denoising": clip.track.extra.get("denoising", {}),
               "sha256": clip.content_hash}
    if out:
        clip.track.save(out)
        summary["out"] = str(out)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{clip.name}: {clip.num_frames} frames at {clip.fps:g} fps ({clip.duration_s:.1f} s); "
              f"face detected in {clip.track.face_detected_ratio:.1%} of frames; speech in {clip.audio.speech_ratio:.1%}"
              + (f"; {clip.track.max_faces} faces seen" if clip.track.max_faces > 1 else "")
              + (f"; track written to {out}" if out else ""))
    return 0


def run_enroll(args) -> int:
    from ..pipeline import enroll_files

    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    profile = enroll_files(args.name, args.videos, profile_store(args), detectors, Limits.from_env(), progress_printer(),
                           replace=args.replace, how="pass --replace")
    if sys.stderr.isatty():
        print(file=sys.stderr)
    card = profile.card
    print(f"enrolled {profile.name!r}: {len(card.references)} reference clip(s), "
          f"{card.usable_reference_seconds:.1f} s usable, saved in {profile_store(args).folder(profile.name)}")
    for detector, entry in card.detectors.items():
        calibration = entry.calibration
        print(f"  {detector}: threshold {calibration.threshold:.4f} at {calibration.false_alarm_rate:.0%} "
              f"false alarms on {len(calibration.genuine_scores)} held-out genuine windows "
              f"({entry.enroll_seconds:.1f} s)")
    for warning in card.warnings:
        print(f"  warning: {warning}")
    return 0


def run_score(args) -> int:
    from ..core.storage import atomic_write_text
    from ..media.corruptions import parse_corruption_spec
    from ..pipeline import score_file

    out = check_output(args.json)
    report = score_file(args.video, args.profile, profile_store(args), args.detector, parse_corruption_spec(args.corrupt),
                        progress=progress_printer())
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if out:
        atomic_write_text(out, report.to_json_text())
    print("\n".join(report.summary_lines()))
    return 0


def run_profiles(args) -> int:
    store = profile_store(args)
    if args.action == "list":
        for name in store.names():
            print(name)
        return 0
    if not args.target:
        raise InputError(f"'profiles {args.action}' needs a {'file' if args.action == 'import' else 'profile name'}.")
    if args.action == "export":
        from ..core.storage import atomic_write_bytes

        out = check_output(args.out or f"{args.target}.zip")
        atomic_write_bytes(out, store.export_zip(args.target))
        print(f"exported {args.target!r} to {out}")
    elif args.action == "import":
        archive = Path(args.target)
        if not archive.is_file():
            raise InputError(f"'{archive}' is not a file.")
        profile = store.import_zip(archive.read_bytes(), args.name)
        print(f"imported profile {profile.name!r}")
    else:
        store.load(args.target)
        store.delete(args.target)
        print(f"deleted profile {args.target!r}")
    return 0
