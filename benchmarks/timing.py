"""Speed and memory of the user-facing operations on this machine.

    python benchmarks/timing.py [--avdata DIR] [--detector exam] [--save-analysis DIR | --analysis DIR]

- enrollment of 60 s of reference footage (tracking excluded and included);
- scoring a 10 s clip end to end (decoding, tracking and the speech encoder included, no cache; the models,
  the speech encoder among them, already loaded, as in the app);
- peak resident memory of the process.
Writes ``benchmarks/results/timing_<detector>.json``.

``--save-analysis DIR`` also writes the two analysed clips (tracks and audio features, ``.npz``);
``--analysis DIR`` times the models alone on them, without avdata, MediaPipe or the speech encoder: how the
CUDA figures were taken on a machine that has a GPU but not the analysis stack
(``benchmarks/results/timing_<detector>_<device>.json``; tracking and end-to-end figures are then null).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from common import peak_rss_mb, print_table, require_avdata, write_result

from exposeanyone.core.config import torch_device
from exposeanyone.core.memory import keep_resident_memory_low
from exposeanyone.media.clip import ClipFeatures
from exposeanyone.pipeline import enroll_clips, load_detector, score_clip

REFERENCE_SECONDS = 60.0
SCORED_SECONDS = 10.0


def pick(rows, seconds):
    """The first genuine pre-training clip of at least ``seconds`` (never an evaluation clip)."""
    return next(r for r in rows if r.split == "pretrain" and r.duration_s >= seconds)


def excerpt(source: Path, seconds: float, folder: Path) -> Path:
    """The first ``seconds`` of ``source`` re-encoded as its own file, so timing covers exactly that long."""
    import imageio_ffmpeg

    out = folder / f"excerpt_{seconds:g}s.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-t", str(seconds),
                    "-c:v", "libx264", "-c:a", "aac", str(out)], check=True)
    return out


def save_analysis(clip: ClipFeatures, path: Path) -> None:
    np.savez(path, **clip.to_arrays())


def load_analysis(path: Path) -> ClipFeatures:
    with np.load(path, allow_pickle=False) as data:
        return ClipFeatures.from_arrays(data, path.stem)


def analyse(avdata: Path, scratch: Path) -> tuple[ClipFeatures, ClipFeatures, float, float]:
    """The 60-s reference and the 10-s clip, analysed without cache, with the seconds each analysis took."""
    from exposeanyone.evaluation.manifest import read_manifest
    from exposeanyone.media.extract import extract_clip

    rows = read_manifest(avdata / "MANIFEST.tsv")
    reference_row = pick(rows, REFERENCE_SECONDS)
    start = time.perf_counter()
    reference = extract_clip(reference_row.path).slice(0, int(REFERENCE_SECONDS * 25))
    tracking_s = time.perf_counter() - start
    scored_row = next(r for r in rows if r.split == "pretrain" and r.path != reference_row.path
                      and r.duration_s >= SCORED_SECONDS)
    scored_file = excerpt(scored_row.path, SCORED_SECONDS, scratch)
    start = time.perf_counter()
    clip = extract_clip(scored_file)
    return reference, clip, tracking_s, time.perf_counter() - start


def device_name() -> str:
    device = torch_device()
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name()})"
    return device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avdata")
    parser.add_argument("--detector", default="exam")
    parser.add_argument("--save-analysis", metavar="DIR", help="also write the two analysed clips here")
    parser.add_argument("--analysis", metavar="DIR", help="time the models alone on clips saved by --save-analysis")
    args = parser.parse_args()
    keep_resident_memory_low()  # as the app and the CLI do at start-up
    scratch = Path(tempfile.mkdtemp(prefix="exposeanyone-timing-"))
    os.environ["EXPOSEANYONE_CACHE_DIR"] = str(scratch / "cache")
    load_detector(args.detector)
    if args.analysis:
        reference, clip = (load_analysis(Path(args.analysis) / f"{n}.npz") for n in ("reference", "scored"))
        tracking_s = analyse_s = None
    else:
        reference, clip, tracking_s, analyse_s = analyse(require_avdata(args.avdata), scratch)
    if args.save_analysis:
        Path(args.save_analysis).mkdir(parents=True, exist_ok=True)
        for name, value in (("reference", reference), ("scored", clip)):
            save_analysis(value, Path(args.save_analysis) / f"{name}.npz")
    start = time.perf_counter()
    profile = enroll_clips("timing", [reference], [args.detector])
    enroll_s = time.perf_counter() - start
    start = time.perf_counter()
    report = score_clip(clip, profile, args.detector)
    score_s = time.perf_counter() - start
    analysed = tracking_s is not None
    result = {"detector": args.detector, "device": device_name(),
              "enroll_60s_reference_s": round(enroll_s, 2),
              "enroll_60s_reference_with_tracking_s": round(enroll_s + tracking_s, 2) if analysed else None,
              "enroll_s_per_reference_s": round((enroll_s + tracking_s) / REFERENCE_SECONDS, 3) if analysed else None,
              "score_10s_clip_model_only_s": round(score_s, 3),
              "score_10s_clip_end_to_end_s": round(analyse_s + score_s, 2) if analysed else None,
              "score_s_per_clip_s": round((analyse_s + score_s) / SCORED_SECONDS, 3) if analysed else None,
              "peak_rss_mb": round(peak_rss_mb(), 1),
              "clip_score": round(report.score, 4), "clip_threshold": round(report.threshold, 4),
              "targets": {"enroll_60s_reference_with_tracking_s": 60.0, "score_10s_clip_end_to_end_s": 5.0,
                          "peak_rss_mb": 1536}}
    device = torch_device().split(":")[0]
    write_result(f"timing_{args.detector}" + ("" if device == "cpu" else f"_{device}"), result)
    columns = [k for k in result if k not in ("detector", "targets")]
    print_table(columns, [[result[k] for k in columns]])


if __name__ == "__main__":
    main()
