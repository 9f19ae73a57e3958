"""Do EXAM's "generated" trajectories look like speech? Measured on the dev manifest's genuine test clips.

    python benchmarks/trajectories.py [--avdata DIR] [--detector exam]
    python benchmarks/trajectories.py --on-reference [--exam-model DIR] [--generation-samples 4] [--generation-steps 25]

Each person of interest is enrolled from their ``ref`` rows; every genuine ``test`` clip of theirs is then
scored with trajectories, and the generated jawOpen is compared with the observed one over the frames
where both are known: their Pearson correlation, and the ratio of their mean absolute frame-to-frame
change (1: as smooth as the real mouth; far above 1: zigzag). Targets (issue 16): median correlation
>= 0.5, jitter ratio between 0.7 and 1.5. Writes ``benchmarks/results/trajectories.json``
(``trajectories_<detector>.json`` for another detector: ``--detector whisper-ridge`` measures the generic
linear map's predicted jawOpen the same way, the bar a personalised diffusion model should clear).

``--on-reference`` measures on the persons' own ``ref`` clips instead (the tokens were fitted on them, so
the figures flatter the model) and writes ``trajectories_trial.json``: that is where the generation
settings are chosen, never on the test clips.
"""
from __future__ import annotations

import argparse

import numpy as np
from common import print_table, require_avdata, write_result

from exposeanyone.evaluation.manifest import read_manifest
from exposeanyone.evaluation.protocol import clip_loader
from exposeanyone.media.track import BLENDSHAPE_NAMES
from exposeanyone.pipeline import load_detector

JAW = BLENDSHAPE_NAMES.index("jawOpen")


def trajectory_figures(generated: np.ndarray, observed: np.ndarray) -> tuple[float, float] | None:
    """``(correlation, jitter ratio)`` of two ``(frames,)`` curves over the frames where both are known."""
    known = np.isfinite(generated) & np.isfinite(observed)
    steps = known[1:] & known[:-1]
    if known.sum() < 25 or steps.sum() < 24 or np.std(observed[known]) == 0 or np.std(generated[known]) == 0:
        return None
    correlation = float(np.corrcoef(generated[known], observed[known])[0, 1])
    jitter = np.abs(np.diff(generated))[steps].mean() / max(np.abs(np.diff(observed))[steps].mean(), 1e-9)
    return correlation, float(jitter)


def exam_with(args):
    """The shipped EXAM detector, or one with another base model or generation settings."""
    from exposeanyone.core.assets import exam_base_dir
    from exposeanyone.detectors.exam.detector import ExamDetector

    settings = {k: v for k, v in (("generation_samples", args.generation_samples),
                                  ("generation_steps", args.generation_steps)) if v}
    return ExamDetector.from_pretrained(args.exam_model or exam_base_dir(), **settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avdata")
    parser.add_argument("--detector", default="exam")
    parser.add_argument("--on-reference", action="store_true", help="measure on the ref clips (to choose settings)")
    parser.add_argument("--exam-model", help="an EXAM base model folder instead of the shipped one")
    parser.add_argument("--generation-samples", type=int, help="DDIM samples averaged (EXAM)")
    parser.add_argument("--generation-steps", type=int, help="DDIM steps (EXAM)")
    args = parser.parse_args()
    rows = read_manifest(require_avdata(args.avdata) / "MANIFEST.tsv")
    load = clip_loader()
    detector = exam_with(args) if args.detector == "exam" else load_detector(args.detector)
    measured = "ref" if args.on_reference else "test"
    clips = []
    for poi in sorted({r.identity for r in rows if r.split == "ref"}):
        references = [load(r, False) for r in rows if r.split == "ref" and r.identity == poi]
        person = detector.enroll(references)  # no calibration: only the trajectories are wanted
        for row in rows:
            if row.split == measured and row.identity == poi and row.is_real:
                output = detector.score(load(row, True), person)
                figures = trajectory_figures(output.trajectories["generated"][:, JAW],
                                             output.trajectories["observed"][:, JAW])
                if figures:
                    clips.append({"person": poi, "file": row.path.name, "correlation": round(figures[0], 4),
                                  "jitter_ratio": round(figures[1], 4)})
                    print(poi, row.path.name, figures, flush=True)
    correlations = [c["correlation"] for c in clips]
    jitters = [c["jitter_ratio"] for c in clips]
    summary = {"detector": args.detector, "clips": len(clips), "measured_on": measured,
               "generation": {"samples": getattr(detector, "generation_samples", None),
                              "steps": getattr(detector, "generation_steps", None)},
               "median_correlation": round(float(np.median(correlations)), 3) if clips else None,
               "median_jitter_ratio": round(float(np.median(jitters)), 3) if clips else None,
               "targets": {"median_correlation": ">= 0.5", "jitter_ratio": "0.7-1.5"}}
    trial = args.on_reference or args.exam_model or args.generation_samples or args.generation_steps
    name = "trajectories" if args.detector == "exam" else f"trajectories_{args.detector}"
    write_result(f"{name}_trial" if trial else name, {**summary, "per_clip": clips})
    print_table(["detector", "clips", "median r (jawOpen)", "median jitter ratio"],
                [[args.detector, len(clips), summary["median_correlation"], summary["median_jitter_ratio"]]])


if __name__ == "__main__":
    main()
