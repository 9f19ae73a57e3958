"""Regenerate the README's results section from ``benchmarks/results/*.json``.

    python benchmarks/update_readme.py

Only the text between ``<!-- results:start -->`` and ``<!-- results:end -->`` is replaced, so the
numbers in the README are always the ones the benchmark scripts last measured.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def detection_section() -> list[str]:
    data = _load("detection")
    if not data:
        return ["_No detection results yet: run `python benchmarks/detection.py`._"]
    command = "python benchmarks/detection.py --detectors " + ",".join(data["detectors"])
    if data.get("max_impostors"):
        command += f" --max-impostors {data['max_impostors']}"
    lines = [f"Dev manifest, clip level (`{command}`, {data['date']}):", "",
             "| detector | mean AUC | audio-swap (dubbing) AUC, mean per person | audio-swap AUC, pooled | "
             "identity-swap AUC | cross-session false alarms |", "|---|---|---|---|---|---|"]
    for name, result in data["detectors"].items():
        kinds = result["per_manipulation"]
        false_alarms = result["cross_session_false_alarms"]
        flagged = f"{false_alarms['flagged']}/{false_alarms['n']}" if false_alarms["n"] else "no threshold"
        lines.append(f"| {name} | {_fmt(result['mean_auc'])} | "
                     f"{_fmt(kinds.get('audio-swap', {}).get('mean_identity_auc'))} | "
                     f"{_fmt(kinds.get('audio-swap', {}).get('auc'))} | "
                     f"{_fmt(kinds.get('identity-swap', {}).get('auc'))} | {flagged} |")
    lines += kinds_table(data["detectors"])
    excluded = {poi: entry.get("excluded_audio_swaps", []) for result in data["detectors"].values()
                for poi, entry in result["per_identity"].items()}
    repeating = {poi: entry.get("genuine_repeating_reference", []) for result in data["detectors"].values()
                 for poi, entry in result["per_identity"].items()}
    if any(excluded.values()) or any(repeating.values()):
        lines += ["", "Left out as audio swaps because both clips carry the same speech (two encodes of one "
                  "recording): " + _names(excluded) + ". Genuine test clips whose speech is also in the person's "
                  "reference footage (an enrolled detector has heard it): " + _names(repeating) + "."]
    open_set = {n: r["open_set"] for n, r in data["detectors"].items() if "open_set" in r}
    if open_set:
        kinds = sorted({k for table in open_set.values() for k in table})
        lines += ["", "Detectors without enrollment, open set (every real test clip vs. each fake kind; AUC, n fakes):",
                  "", "| detector | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
        for name, table in open_set.items():
            lines.append(f"| {name} | " + " | ".join(
                f"{_fmt(table[k]['auc'])} (n={table[k]['n_fake']})" if k in table else "–" for k in kinds) + " |")
    return lines


def kinds_table(detectors: dict) -> list[str]:
    """Every fake kind with its counts: the real forgeries of enrolled persons are few, so n is shown beside
    each AUC (mean per person where the person has that kind of fake / pooled over all persons)."""
    kinds = sorted({k for result in detectors.values() for k in result["per_manipulation"]})
    if not kinds:
        return []
    counts = {k: next(r["per_manipulation"][k]["n_fake"] for r in detectors.values() if k in r["per_manipulation"])
              for k in kinds}
    lines = ["", "Per kind of fake (AUC mean per person / pooled; n fakes in the column head):", "",
             "| detector | " + " | ".join(f"{k} (n={counts[k]})" for k in kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for name, result in detectors.items():
        table = result["per_manipulation"]
        lines.append(f"| {name} | " + " | ".join(
            f"{_fmt(table[k].get('mean_identity_auc'))} / {_fmt(table[k].get('auc'))}" if k in table else "–"
            for k in kinds) + " |")
    return lines


def _names(by_poi: dict[str, list[str]]) -> str:
    listed = [f"{poi}: {', '.join(f'`{name}`' for name in names)}" for poi, names in by_poi.items() if names]
    return "; ".join(listed) if listed else "none"


def validation_section() -> list[str]:
    data = _load("validation")
    if not data:
        return []
    lines = ["", f"Design validation on reference footage only (`{data['command']}`, {data['date']}; 5-s pieces "
             "of the persons' `ref` clips and their dubbed copies; see the script's docstring). Scoring choices "
             "are made here, never on the test clips:"]
    for detector in ("fau", "exam"):
        if detector not in data:
            continue
        rows = data[detector]
        identity = all("identity_swap_pooled_auc" in row for row in rows.values())
        keys = ["mean_person_auc", "pooled_auc"] + (
            ["identity_swap_mean_person_auc", "identity_swap_pooled_auc"] if identity else [])
        header = f"| {detector} scoring variant ({data[f'{detector}_genuine_pieces']} genuine pieces) | " \
                 "dubbing AUC, mean per person | pooled |" + (" identity-swap AUC, mean per person | pooled |"
                                                             if identity else "")
        lines += ["", header, "|---" * (len(keys) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(_fmt(row[key]) for key in keys) + " |" for name, row in rows.items()]
    return lines + _corrupted_validation(data)


def trajectories_section() -> list[str]:
    data = _load("trajectories")
    if not data:
        return []
    generation = data.get("generation") or {}
    return ["", f"Generated trajectories (`{data['command']}`, {data['date']}; {data['clips']} genuine test clips of the "
            f"persons of interest, {generation.get('samples')} DDIM samples of {generation.get('steps')} steps averaged): "
            f"the generated jawOpen follows the observed one with a median correlation of "
            f"{_fmt(data['median_correlation'])} (target {data['targets']['median_correlation']}) and moves "
            f"{_fmt(data['median_jitter_ratio'], 2)} times as much from frame to frame (target "
            f"{data['targets']['jitter_ratio']})."] + _linear_trajectories()


def _linear_trajectories() -> list[str]:
    data = _load("trajectories_whisper-ridge")
    if not data:
        return []
    return [f"For comparison, the generic linear Whisper map, fitted to predict the blendshapes from the same speech "
            f"features (`{data['command']}`, {data['date']}, same clips): median correlation "
            f"{_fmt(data['median_correlation'])}, jitter {_fmt(data['median_jitter_ratio'], 2)}."]


def _corrupted_validation(data: dict) -> list[str]:
    corrupted = data.get("exam_corrupted")
    if not corrupted:
        return []
    specs = list(corrupted)
    lines = ["", "EXAM on corrupted reference pieces (tokens learnt on clean footage), dubbing AUC mean per person "
             "(pooled):", "", "| exam scoring variant | clean | " + " | ".join(specs) + " |",
             "|---" * (len(specs) + 2) + "|"]
    for name in corrupted[specs[0]]:
        cells = [data["exam"][name]] + [corrupted[spec][name] for spec in specs]
        lines.append(f"| {name} | " + " | ".join(
            f"{_fmt(cell['mean_person_auc'])} ({_fmt(cell['pooled_auc'])})" for cell in cells) + " |")
    return lines


def _robustness_cell(run: dict | None) -> str:
    if not run:
        return "–"
    interval = run.get("mean_auc_drop_interval_90")
    spread = f"; {_fmt(interval[0], 1)} to {_fmt(interval[1], 1)}" if interval else ""
    cell = f"{_fmt(run['mean_auc'])} ({_fmt(run['mean_auc_drop_points'], 1)}{spread})"
    if "clips" in run and run["scored_clips"] < run["clips"]:
        cell += f", {run['scored_clips']}/{run['clips']} clips scorable"
    return cell


def _average_drop(runs: dict, level: str) -> float | None:
    drops = [run["mean_auc_drop_points"] for spec, run in runs.items()
             if spec.endswith(f":{level}") and run["mean_auc_drop_points"] is not None
             and 2 * run.get("scored_clips", 1) >= run.get("clips", 1)]
    return sum(drops) / len(drops) if drops else None


def robustness_section() -> list[str]:
    data = _load("robustness")
    if not data:
        return []
    lines = ["", f"Robustness (negatives: {', '.join(data.get('negatives', []))}): mean AUC over persons and its drop "
             "in points against the clean run with the same settings (a negative drop is a rise), with its 90 % paired "
             "bootstrap interval where measured; where the corruption hid the face, the share of clips that could be "
             "scored at all."]
    for name, result in data["detectors"].items():
        command = result.get("command", data["command"])
        specs = list(result["corrupted"])
        levels = sorted({s.split(":")[1] for s in specs})
        corruptions = list(dict.fromkeys(s.split(":")[0] for s in specs))
        when = f", {result['date']}" if result.get("date") else ""
        note = f" ({result['note']})" if result.get("note") else ""
        lines += ["", f"{name} (`{command}`{when}){note}: clean mean AUC {_fmt(result['clean']['mean_auc'])}, "
                  f"audio-swap {_fmt(result['clean']['audio_swap_auc'])}", "",
                  "| corruption | " + " | ".join(f"level {lv}" for lv in levels) + " |",
                  "|---" * (len(levels) + 1) + "|"]
        for corruption in corruptions:
            cells = []
            for level in levels:
                run = result["corrupted"].get(f"{corruption}:{level}")
                cells.append(_robustness_cell(run))
            lines.append(f"| {corruption} | " + " | ".join(cells) + " |")
        lines.append("| **average drop** (runs with at least half the clips scorable) | "
                     + " | ".join(_fmt(_average_drop(result["corrupted"], lv), 1) for lv in levels) + " |")
    return lines


def speed_section() -> list[str]:
    lines = []
    tracking = _load("tracking")
    if tracking:
        summary = tracking["summary"]
        lines += ["", f"Tracking + features (`{tracking['command']}`): {summary['fps']} frames/s over "
                  f"{summary['clips']} clips; lowest face-detection ratio on a real clip "
                  f"{_fmt(summary['min_face_detected_ratio_real'])}; peak RSS {summary['peak_rss_mb']:.0f} MB."]
    for detector in ("exam", "fau"):
        timing = _load(f"timing_{detector}")
        if timing:
            enrollment = (f"enrollment {_fmt(timing.get('enroll_s_per_reference_s'))} s per second of reference "
                          "(tracking included); " if timing.get("enroll_60s_reference_s") else "")
            lines += ["", f"{detector} timing (`{timing['command']}`): {enrollment}scoring a 10 s clip "
                      f"{_fmt(timing.get('score_10s_clip_model_only_s'))} s for the model alone, "
                      f"{_fmt(timing.get('score_10s_clip_end_to_end_s'), 2)} s end to end with decoding and tracking "
                      f"({_fmt(timing.get('score_s_per_clip_s'))} s per second of video); "
                      f"peak RSS {timing['peak_rss_mb']:.0f} MB."]
    first = _load("first_verdict")
    if first:
        lines += ["", f"First verdict (`{first['command']}`): the app starts in {_fmt(first['startup_s'], 1)} s (models "
                  f"loaded and the example clips analysed before it serves); a visitor who opens the page and clicks "
                  f"the first example gets the verdict {_fmt(first['open_to_verdict_s'], 1)} s after opening it "
                  f"(target {_fmt(first['target_open_to_verdict_s'], 0)} s; \"{first['verdict']}\")"
                  + (f"; the app's peak memory by then {first['app_peak_rss_mb']:.0f} MB." if first.get("app_peak_rss_mb")
                     else ".")]
    cuda = _load("timing_exam_cuda")
    if cuda:
        lines += ["", f"exam on {cuda['device']} (`{cuda['command']}`, the models alone on the same two analysed "
                  f"clips, no code change): enrollment of 60 s of reference {_fmt(cuda['enroll_60s_reference_s'], 1)} s, "
                  f"scoring a 10 s clip {_fmt(cuda['score_10s_clip_model_only_s'], 2)} s; the clip's score "
                  f"{_fmt(cuda.get('clip_score'))}, as on the CPU ({_fmt(cuda.get('same_clip_score_on_cpu'))}). "
                  "Enrollment is bound by its many small Adam steps (Python, kernel launches, audio augmentation on "
                  "the CPU), not by the GPU: the same run on that machine's 16 CPU cores (`EXPOSEANYONE_DEVICE=cpu`, "
                  f"same command) took {_fmt(cuda.get('same_machine_cpu_enroll_60s_reference_s'), 1)} s." + (f" ({cuda['note'][0].upper()}{cuda['note'][1:]}.)" if cuda.get("note") else "")]
    return lines


def main() -> None:
    readme = (ROOT / "README.md").read_text()
    if START not in readme or END not in readme:
        raise SystemExit("README.md lacks the results markers")
    body = "\n".join(detection_section() + validation_section() + trajectories_section() + robustness_section() + speed_section())
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    (ROOT / "README.md").write_text(f"{head}{START}\n{body}\n{END}{tail}")
    print("README results section updated")


if __name__ == "__main__":
    main()
