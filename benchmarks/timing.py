"""Speed and memory of the user-facing operations on this machine.

    python benchmarks/timing.py [--avdata DIR] [--detector exam]

- enrollment of 60 s of reference footage (tracking excluded and included);
- scoring a 10 s clip end to end (decoding, tracking and the speech encoder included, no cache; the models,
  the speech encoder among them, already loaded, as in the app);
- peak resident memory of the process.
Writes ``benchmarks/results/timing.json``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
from common import peak_rss_mb, print_table, require_avdata, write_result

from exposeanyone.evaluation.manifest import read_manifest
from exposeanyone.media.extract import extract_clip
from exposeanyone.pipeline import enroll_clips, load_detector, score_clip

REFERENCE_SECONDS = 60.0
SCORED_SECONDS = 10.0


def pick(rows, seconds):
    """The first genuine pre-training clip of at least ``seconds`` (never an evaluation clip)."""
    return next(r for r in rows if r.split == "pretrain" and r.duration_s >= seconds)


def excerpt(source: Path, seconds: float, folder: Path) -> Path:
    """The first ``seconds`` of ``source`` re-encoded as its own file, so timing covers exactly that long."""
    out = folder / f"excerpt_{seconds:g}s.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-t", str(seconds),
                    "-c:v", "libx264", "-c:a", "aac", str(out)], check=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avdata")
    parser.add_argument("--detector", default="exam")
    args = parser.parse_args()
    rows = read_manifest(require_avdata(args.avdata) / "MANIFEST.tsv")
    scratch = Path(tempfile.mkdtemp(prefix="exposeanyone-timing-"))
    os.environ["EXPOSEANYONE_CACHE_DIR"] = str(scratch / "cache")
    load_detector(args.detector)
    reference_row = pick(rows, REFERENCE_SECONDS)
    start = time.perf_counter()
    reference = extract_clip(reference_row.path).slice(0, int(REFERENCE_SECONDS * 25))
    tracking_s = time.perf_counter() - start
    start = time.perf_counter()
    profile = enroll_clips("timing", [reference], [args.detector])
    enroll_s = time.perf_counter() - start
    scored_row = next(r for r in rows if r.split == "pretrain" and r.path != reference_row.path
                      and r.duration_s >= SCORED_SECONDS)
    scored_file = excerpt(scored_row.path, SCORED_SECONDS, scratch)
    start = time.perf_counter()
    clip = extract_clip(scored_file)
    analyse_s = time.perf_counter() - start
    start = time.perf_counter()
    score_clip(clip, profile, args.detector)
    score_s = time.perf_counter() - start
    end_to_end = analyse_s + score_s
    result = {"detector": args.detector,
              "enroll_60s_reference_s": round(enroll_s, 2),
              "enroll_60s_reference_with_tracking_s": round(enroll_s + tracking_s, 2),
              "enroll_s_per_reference_s": round((enroll_s + tracking_s) / REFERENCE_SECONDS, 3),
              "score_10s_clip_model_only_s": round(score_s, 3),
              "score_10s_clip_end_to_end_s": round(end_to_end, 2),
              "score_s_per_clip_s": round(end_to_end / SCORED_SECONDS, 3),
              "peak_rss_mb": round(peak_rss_mb(), 1),
              "targets": {"enroll_60s_reference_with_tracking_s": 60.0, "score_10s_clip_end_to_end_s": 5.0,
                          "peak_rss_mb": 1536}}
    write_result(f"timing_{args.detector}", result)
    print_table(list(result)[1:-1], [[result[k] for k in list(result)[1:-1]]])


if __name__ == "__main__":
    main()
