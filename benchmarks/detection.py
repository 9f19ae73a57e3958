"""Detection benchmark on the avdata dev manifest: all detectors side by side, clean.

    python benchmarks/detection.py [--avdata DIR] [--detectors exam,fau,sync,ridge] [--max-impostors 40]

Runs the evaluation protocol of ``exposeanyone eval`` (see exposeanyone/evaluation/protocol.py) on the
manifest's persons of interest and writes ``benchmarks/results/detection.json``. The corpus is small
(8 persons of interest with 8-30 s of reference each): read differences of a few points as noise.
``--max-impostors N`` scores at most N other people's clips per person (evenly spread over the manifest) as
identity swaps; every genuine, dubbed and real-forgery clip is still scored.
"""
from __future__ import annotations

import argparse
import json

from common import RESULTS_DIR, print_table, require_avdata, write_result

from exposeanyone.evaluation.manifest import read_manifest
from exposeanyone.evaluation.protocol import clip_loader, evaluate


def summary_row(name: str, result: dict) -> list:
    kinds = result["per_manipulation"]
    false_alarms = result["cross_session_false_alarms"]
    return [name, result["mean_auc"], kinds.get("audio-swap", {}).get("mean_identity_auc"),
            kinds.get("audio-swap", {}).get("auc"), kinds.get("identity-swap", {}).get("auc"),
            f"{false_alarms['flagged']}/{false_alarms['n']}", result["seconds"]]


HEADERS = ["detector", "mean AUC", "audio-swap AUC (mean/POI)", "audio-swap AUC (pooled)",
           "identity-swap AUC", "cross-session FA", "seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--avdata")
    parser.add_argument("--detectors", default="exam,fau,sync,ridge")
    parser.add_argument("--max-impostors", type=int, default=0, help="identity-swap clips per person (0: all)")
    args = parser.parse_args()
    rows = read_manifest(require_avdata(args.avdata) / "MANIFEST.tsv")
    load = clip_loader()
    previous = RESULTS_DIR / "detection.json"
    # detectors measured by an earlier invocation on the same manifest are kept, each with its own command
    results = json.loads(previous.read_text())["detectors"] if previous.is_file() else {}
    for name in args.detectors.split(","):
        results[name] = evaluate(rows, load, name, max_impostors=args.max_impostors)
        results[name]["command"] = f"python benchmarks/detection.py --detectors {name} --max-impostors {args.max_impostors}"
        print(f"{name}: mean AUC {results[name]['mean_auc']}", flush=True)
    write_result("detection", {"max_impostors": args.max_impostors, "detectors": results})
    print_table(HEADERS, [summary_row(n, r) for n, r in results.items()])
    for name, result in results.items():
        if "open_set" in result:
            print(f"{name} open-set (all real test clips vs each fake kind): "
                  + ", ".join(f"{k} {v['auc']} (n={v['n_fake']})" for k, v in result["open_set"].items()))


if __name__ == "__main__":
    main()
