"""Robustness of the detectors to the seven DeeperForensics-1.0 corruptions at levels 1, 3 and 5.

    python benchmarks/robustness.py [--avdata DIR] [--detectors exam] [--levels 3,5]
                                    [--negatives audio-swap] [--max-impostors 0]

Each corrupted run re-tracks every scored test clip (references stay clean: enrollment uses genuine
footage, once per person for all runs) and reruns the evaluation protocol; the AUC drop is against a
clean run with the same settings, with a 90 % paired bootstrap interval (each person's genuine clips and
negatives resampled, the same draws for the clean and the corrupted run): on a few dozen clips, a drop of a
few points can be chance. By default only dubbing (audio-swap) negatives are scored — the column that
measures the method — so a run re-tracks only the persons' own test clips and the whole sweep fits in about
half an hour on a 2-core CPU. Writes ``benchmarks/results/robustness.json``, keeping the entries of
detectors not run this time.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import RESULTS_DIR, command_line, print_table, require_avdata, write_result

from exposeanyone.core.metrics import roc_auc
from exposeanyone.evaluation.manifest import read_manifest
from exposeanyone.evaluation.protocol import clip_loader, evaluate
from exposeanyone.media.corruptions import CORRUPTIONS, parse_corruption_spec

DEEPERFORENSICS = [name for name, spec in CORRUPTIONS.items() if spec.code]


def headline(result: dict) -> dict:
    """The AUCs, and how many clips could be scored at all (a corruption that hides the face leaves few)."""
    kinds = result["per_manipulation"]
    scores = [s["score"] for scored in result["scores"].values() for s in scored]
    return {"mean_auc": result["mean_auc"], "seconds": result["seconds"],
            "scored_clips": int(np.isfinite(scores).sum()), "clips": len(scores),
            "audio_swap_auc": kinds.get("audio-swap", {}).get("mean_identity_auc"),
            "identity_swap_auc": kinds.get("identity-swap", {}).get("auc")}


def drop_interval(clean: dict, corrupted: dict, draws: int = 2000, seed: int = 0) -> list[float] | None:
    """90 % paired bootstrap interval of the mean-AUC drop (points) between two runs of the same clips."""
    rng = np.random.default_rng(seed)
    per_person = []
    for poi, scored in clean["scores"].items():
        pairs = list(zip(scored, corrupted["scores"][poi]))
        if len(pairs) != len(scored) or any(a["file"] != b["file"] for a, b in pairs):
            raise ValueError(f"the two runs scored different clips for {poi}")
        both = np.array([[a["score"], b["score"]] for a, b in pairs])
        genuine = np.array([a["kind"] == "genuine" for a in scored])
        if genuine.any() and (~genuine).any():
            per_person.append((both[genuine], both[~genuine]))
    if not per_person:
        return None
    drops = []
    for _ in range(draws):
        aucs = np.zeros(2)
        for genuine, negatives in per_person:
            g, n = (rows[rng.integers(0, len(rows), len(rows))] for rows in (genuine, negatives))
            aucs += [roc_auc(g[:, run], n[:, run]) for run in (0, 1)]
        drops.append(100 * (aucs[0] - aucs[1]) / len(per_person))
    return [round(float(v), 2) for v in np.nanpercentile(drops, [5, 95])]


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
    previous = RESULTS_DIR / "robustness.json"
    measured = json.loads(previous.read_text())["detectors"] if previous.is_file() else {}
    payload = {"max_impostors": args.max_impostors, "negatives": negatives, "detectors": measured}
    for detector in args.detectors.split(","):
        profiles: dict = {}

        def run(spec=None):
            return evaluate(rows, clip_loader(spec), detector, negatives, args.max_impostors,
                            profiles=profiles, open_set=False)
        clean_run = run()
        clean = headline(clean_run)
        runs = {}
        for name in args.corruptions.split(","):
            for level in levels:
                spec = f"{name}:{level}"
                corrupted_run = run(parse_corruption_spec(spec))
                result = headline(corrupted_run)
                result.update(mean_auc_drop_points=drop(clean, result, "mean_auc"),
                              mean_auc_drop_interval_90=drop_interval(clean_run, corrupted_run),
                              audio_swap_drop_points=drop(clean, result, "audio_swap_auc"))
                runs[spec] = result
                print(f"{detector} {spec}: {result}", flush=True)
                payload["detectors"][detector] = {"command": command_line(), "date": time.strftime("%Y-%m-%d"),
                                                  "clean": clean, "corrupted": runs,
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
