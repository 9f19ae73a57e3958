"""Robustness of the detectors to the seven DeeperForensics-1.0 corruptions at levels 1, 3 and 5.

    python benchmarks/robustness.py [--avdata DIR] [--detectors exam] [--levels 3,5]
                                    [--negatives audio-swap] [--max-impostors 0]

Each corrupted run re-tracks every scored test clip (references stay clean: enrollment uses genuine
footage, once per person for all runs) and reruns the evaluation protocol; the AUC drop is against a
clean run with the same settings. By default only dubbing (audio-swap) negatives are scored — the
column that measures the method — so a run re-tracks only the persons' own test clips and the whole
sweep fits in about half an hour on a 2-core CPU. Writes ``benchmarks/results/robustness.json``.
"""
from __future__ import annotations

import argparse

import numpy as np

from common import print_table, require_avdata, write_result
from exposeanyone.corruptions import CORRUPTIONS
from exposeanyone.evaluation import clip_loader, evaluate
from exposeanyone.manifest import read_manifest

DEEPERFORENSICS = [name for name, spec in CORRUPTIONS.items() if spec.code]


def headline(result: dict) -> dict:
    """The AUCs, and how many clips could be scored at all (a corruption that hides the face leaves few)."""
    kinds = result["per_manipulation"]
    scores = [s["score"] for scored in result["scores"].values() for s in scored]
    return {"mean_auc": result["mean_auc"], "seconds": result["seconds"],
            "scored_clips": int(np.isfinite(scores).sum()), "clips": len(scores),
            "audio_swap_auc": kinds.get("audio-swap", {}).get("mean_identity_auc"),
            "identity_swap_auc": kinds.get("identity-swap", {}).get("auc")}


def drop(clean: dict, corrupted: dict, key: str) -> float | None:
    if clean[key] is None or corrupted[key] is None:
        return None
    return round(100 * (clean[key] - corrupted[key]), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avdata")
    parser.add_argument("--detectors", default="exam")
    parser.add_argument("--levels", default="3,5")
    parser.add_argument("--negatives", default="audio-swap")
    parser.add_argument("--corruptions", default=",".join(DEEPERFORENSICS))
    parser.add_argument("--max-impostors", type=int, default=40)
    args = parser.parse_args()
    rows = read_manifest(require_avdata(args.avdata) / "MANIFEST.tsv")
    levels = [int(v) for v in args.levels.split(",")]
    negatives = args.negatives.split(",")
    payload = {"max_impostors": args.max_impostors, "negatives": negatives, "detectors": {}}
    for detector in args.detectors.split(","):
        profiles: dict = {}

        def run(spec=None):
            return headline(evaluate(rows, clip_loader(spec), detector, negatives, args.max_impostors,
                                     profiles=profiles, open_set=False))
        clean = run()
        runs = {}
        for name in args.corruptions.split(","):
            for level in levels:
                spec = f"{name}:{level}"
                result = run(spec)
                result.update(mean_auc_drop_points=drop(clean, result, "mean_auc"),
                              audio_swap_drop_points=drop(clean, result, "audio_swap_auc"))
                runs[spec] = result
                print(f"{detector} {spec}: {result}", flush=True)
                payload["detectors"][detector] = {"clean": clean, "corrupted": runs,
                                                  "average_drop_by_level": _average_drops(runs, levels)}
                write_result("robustness", payload)
        print_table(["corruption", *[f"level {lv} AUC (drop)" for lv in levels]],
                    [[name, *[f"{runs[f'{name}:{lv}']['mean_auc']} ({runs[f'{name}:{lv}']['mean_auc_drop_points']})"
                              for lv in levels]] for name in args.corruptions.split(",")])


def _average_drops(runs: dict, levels: list[int]) -> dict:
    averages = {}
    for level in levels:
        drops = [r["mean_auc_drop_points"] for spec, r in runs.items()
                 if spec.endswith(f":{level}") and r["mean_auc_drop_points"] is not None
                 and 2 * r["scored_clips"] >= r["clips"]]  # an AUC over a handful of scorable clips is no measure
        averages[str(level)] = round(sum(drops) / len(drops), 2) if drops else None
    return averages


if __name__ == "__main__":
    main()
