"""Fuzz the readers of user files for minutes: ``python tests/fuzz/run_fuzz.py --minutes 3``.

Runs hypothesis in batches (a fresh random seed per batch, derived from ``--seed``) until each target's
time is up, keeps going after a failure, and writes every distinct failing input to ``--out``. Prints,
per target, the examples run and the distinct failures (exception type and where it was raised).
Exit code 1 when anything failed.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent.parent)]

from fuzz_targets import TARGETS, Target  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

BATCH_EXAMPLES = {"container": 10, "track": 100, "profile": 100, "archive": 100}
"""Examples per hypothesis run: small enough that the time budget is kept to within one batch."""


def leaf_errors(error: BaseException) -> list[BaseException]:
    """The single failures inside hypothesis's group of distinct failures."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_errors(inner)]
    return [error]


def failure_key(error: BaseException) -> str:
    """Exception type and the innermost frame inside the project, to tell distinct bugs apart."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "exposeanyone" in f.filename
              or "fuzz_targets" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(error).__name__} at {where}"


def save_failure(error: BaseException, folder: Path, target: str, index: int) -> Path:
    """The failure's message, traceback and hypothesis's note of the falsifying example."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{target}-{index:03d}.txt"
    notes = "\n".join(getattr(error, "__notes__", []))
    path.write_text("".join(traceback.format_exception(type(error), error, error.__traceback__)) + "\n" + notes)
    return path


def fuzz(target: Target, seconds: float, rng: random.Random, out: Path) -> dict:
    """Fuzz one target for ``seconds``; returns its counts and distinct failures."""
    stats = {"examples": 0, "batches": 0, "failures": {}}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        @seed(rng.getrandbits(64))
        @settings(max_examples=BATCH_EXAMPLES[target.name], database=None, deadline=None, derandomize=False,
                  suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
                  print_blob=False)
        @given(target.strategy())
        def run(example):
            stats["examples"] += 1
            target.check(example)

        stats["batches"] += 1
        try:
            run()
        except Exception as group:  # findings: record each distinct one and keep fuzzing
            for error in leaf_errors(group):
                key = failure_key(error)
                if key not in stats["failures"]:
                    path = save_failure(error, out, target.name, len(stats["failures"]))
                    stats["failures"][key] = str(path)
                    print(f"  [{target.name}] FAILURE {key}: {str(error)[:120]}\n    details: {path}", flush=True)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="time per target")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated: {', '.join(TARGETS)}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch seeds (same seed, same inputs)")
    parser.add_argument("--out", default=None, help="folder for failing inputs (default: a temporary folder)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = set(names) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")

    work = Path(tempfile.mkdtemp(prefix="exposeanyone-fuzz-"))
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ["EXPOSEANYONE_CACHE_DIR"] = str(work / "cache")  # never the user's own folders
    os.environ["EXPOSEANYONE_PROFILES_DIR"] = str(work / "profiles")
    out = Path(args.out) if args.out else work / "failures"
    rng = random.Random(args.seed)
    results = {}
    for name in names:
        target = TARGETS[name]()
        target.setup(work / name)
        print(f"fuzzing {name} for {args.minutes:g} min", flush=True)
        started = time.monotonic()
        results[name] = fuzz(target, 60 * args.minutes, rng, out)
        results[name].update(seconds=time.monotonic() - started, outcomes=target.outcomes)

    print("\ntarget      examples  batches  seconds  distinct failures")
    for name, stats in results.items():
        print(f"{name:<10} {stats['examples']:>9} {stats['batches']:>8} {stats['seconds']:>8.0f}  "
              f"{len(stats['failures'])}")
        for key, path in stats["failures"].items():
            print(f"    {key}\n      details: {path}")
        for outcome, count in stats["outcomes"].most_common(8):
            print(f"    {count:>7}  {outcome}")
    return 1 if any(stats["failures"] for stats in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
