"""Tracking + features on every clip of the avdata manifest: face detection ratio, speed, peak memory.

    python benchmarks/tracking.py [--avdata DIR] [--limit N]

Each clip is analysed afresh (the cache is refreshed, not read), so the timing includes decoding,
MediaPipe tracking, mouth crops and audio features. Writes ``benchmarks/results/tracking.json``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from common import peak_rss_mb, print_table, require_avdata, write_result

from exposeanyone.evaluation.manifest import read_manifest
from exposeanyone.media.extract import extract_clip

DETECTION_TARGET = 0.95
SPEED_TARGET_FPS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avdata")
    parser.add_argument("--limit", type=int, default=0, help="only the first N clips (0: all)")
    args = parser.parse_args()
    rows = read_manifest(require_avdata(args.avdata) / "MANIFEST.tsv")
    rows = rows[: args.limit] if args.limit else rows
    per_clip, frames, seconds = [], 0, 0.0
    for i, row in enumerate(rows):
        start = time.perf_counter()
        clip = extract_clip(row.path, refresh_cache=True, require_face=False)
        elapsed = time.perf_counter() - start
        frames += clip.num_frames
        seconds += elapsed
        per_clip.append({"file": str(row.path.relative_to(row.path.parents[2])), "label": row.label,
                         "frames": clip.num_frames, "face_detected_ratio": round(clip.track.face_detected_ratio, 4),
                         "speech_ratio": round(clip.audio.speech_ratio, 4), "max_faces": clip.track.max_faces,
                         "seconds": round(elapsed, 3)})
        print(f"[{i + 1}/{len(rows)}] {row.path.name}: {clip.num_frames} frames, "
              f"face {clip.track.face_detected_ratio:.1%}, {clip.num_frames / elapsed:.0f} fps", flush=True)
    real = [c for c in per_clip if c["label"] == "real"]
    below = [c["file"] for c in real if c["face_detected_ratio"] < DETECTION_TARGET]
    summary = {"clips": len(per_clip), "frames": frames, "fps": round(frames / seconds, 1),
               "min_face_detected_ratio_real": min(c["face_detected_ratio"] for c in real) if real else None,
               "mean_face_detected_ratio": round(float(np.mean([c["face_detected_ratio"] for c in per_clip])), 4),
               "real_clips_below_target": below, "peak_rss_mb": round(peak_rss_mb(), 1),
               "targets": {"face_detected_ratio": DETECTION_TARGET, "fps": SPEED_TARGET_FPS}}
    write_result("tracking", {"summary": summary, "clips": per_clip})
    print_table(["clips", "frames", "fps (tracking+features)", "min face ratio (real)", "peak RSS MB"],
                [[summary["clips"], frames, summary["fps"], summary["min_face_detected_ratio_real"],
                  summary["peak_rss_mb"]]])


if __name__ == "__main__":
    main()
