"""Crashes while a profile is written: whatever moment a process dies, the profile reads back whole, old or new.

Two experiments on a profile that already exists:

* real enrollments (``enroll_files`` on a cached clip, calibration, ``ProfileStore.save``) in a subprocess
  killed with SIGKILL after seeded random delays, half of them aimed at the save itself;
* a crash (``os._exit``, no clean-up) before each file-system step of ``ProfileStore.save``, and of the
  write of an analysis-cache entry, in turn.

The enrolling detector is a stand-in registered in the worker: its "enrollment" is a large tensor whose
value says which enrollment wrote it, so a trial costs milliseconds and a mixed-up profile shows.
This file is also the worker: ``python tests/test_fault_injection.py enroll|crash-points ...``.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

TOKENS_SHAPE = (512, 4096)
"""8 MB of weights, so that writing and syncing them takes long enough for kills to land inside."""
KILL_TRIALS = 24
CRASH_EXIT = 137
NAME = "Ada Lovelace"


# ----------------------------------------------------------------------------------------- the worker
class VersionDetector:
    """An enrolling detector whose person model is ``TOKENS_SHAPE`` filled with its version number."""

    name = "versioned"
    requires_enrollment = True

    def __init__(self, version: int) -> None:
        self.version = version

    def enroll(self, clips, progress=None):
        from exposeanyone.detectors.base import PersonModel

        return PersonModel(self.name, {"tokens": np.full(TOKENS_SHAPE, self.version, np.float32)},
                           {"version": self.version})

    def score(self, clip, person=None):
        from exposeanyone.detectors.base import DetectorOutput

        starts = np.arange(0, max(1, clip.num_frames - 25), 25)
        scores = 1.0 + 0.01 * np.arange(len(starts), dtype=float)
        return DetectorOutput(self.name, float(scores.mean()), starts, 25, scores, np.full(clip.num_frames, 1.0))


def register(version: int) -> None:
    from exposeanyone import pipeline

    real = pipeline.load_detector
    pipeline.load_detector = lambda name: VersionDetector(version) if name == VersionDetector.name else real(name)


def enroll_worker(root: str, version: int, video: str) -> None:
    """Wait for 'go' on stdin, enroll ``NAME`` from ``video`` (twice) and report the save's timing."""
    from exposeanyone.pipeline import enroll_files
    from exposeanyone.profiles import ProfileStore

    register(version)
    store = ProfileStore(root)
    real_save = store.save
    timing = {}

    def timed_save(profile, **options):
        timing["save_start"] = time.monotonic() - timing["go"]
        print("saving", flush=True)
        real_save(profile, **options)
        timing["save_end"] = time.monotonic() - timing["go"]

    store.save = timed_save
    print("ready", flush=True)
    sys.stdin.readline()
    timing["go"] = time.monotonic()
    enroll_files(NAME, [video, video], store, [VersionDetector.name], replace=True)
    timing.pop("go")
    print(json.dumps(timing), flush=True)


def crash_points_worker(kind: str, root: str) -> None:
    """For each file-system step of writing version 2 over version 1, fork a child that dies just before
    that step; print which version reads back after each crash."""
    import pathlib
    import shutil

    from exposeanyone import profiles

    write, read = WRITERS[kind](Path(root))
    steps: list[str] = []
    crash_at = {"step": None}

    def hooked(owner, attribute):
        original = getattr(owner, attribute)

        def step(*args, **kwargs):
            if crash_at["step"] == len(steps):
                os._exit(CRASH_EXIT)  # like SIGKILL: no finally blocks, no clean-up
            steps.append(attribute)
            return original(*args, **kwargs)

        setattr(owner, attribute, step)

    for owner, attribute in ((os, "replace"), (os, "fsync"), (os, "mkdir"), (os, "open"), (os, "fchmod"),
                             (shutil, "rmtree"), (profiles, "save_file"), (pathlib.Path, "write_text")):
        hooked(owner, attribute)
    write(1)
    steps.clear()
    write(2)
    names = list(steps)
    results = []
    for k in range(len(names) + 1):
        write(1)
        steps.clear()
        crash_at["step"] = k
        child = os.fork()
        if child == 0:
            write(2)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        crash_at["step"] = None
        results.append({"step": k, "before": names[k] if k < len(names) else "no crash",
                        "exit": os.waitstatus_to_exitcode(status), "loaded": read()})
    print(json.dumps({"steps": len(names), "results": results}), flush=True)


def profile_writer(root: Path):
    from exposeanyone.profiles import ProfileStore

    store = ProfileStore(root)
    return (lambda version: store.save(versioned_profile(version))), (lambda: read_version(store))


def cache_writer(root: Path):
    """An entry of the analysis cache, written as ``extract_clip`` writes it."""
    from synthetic_arrays import make_clip

    from exposeanyone.media.extract import _load_cached, _save_cached

    path = root / "clips" / "ab" / "entry.npz"
    clips = {version: make_clip(2.0, seed=version) for version in (1, 2)}

    def read() -> int | str:
        cached = _load_cached(path, "clip.mp4")
        if cached is None:
            return "unreadable"
        version = int(cached.content_hash.removeprefix("hash"))
        same = np.array_equal(cached.track.blendshapes, clips[version].track.blendshapes)
        return version if same else f"mixed: arrays of another version under {cached.content_hash}"

    return (lambda version: _save_cached(path, clips[version])), read


WRITERS = {"profile": profile_writer, "cache": cache_writer}


def versioned_profile(version: int):
    from exposeanyone.detectors.base import PersonModel
    from exposeanyone.profiles import Profile

    person = PersonModel(VersionDetector.name, {"tokens": np.full((64, 64), version, np.float32)}, {"version": version})
    card = {"detectors": {VersionDetector.name: {"calibration": {
        "threshold": float(version), "false_alarm_rate": 0.05, "genuine_scores": [1.0], "method": "test"}}}}
    return Profile(name=NAME, card=card, models={VersionDetector.name: person})


def read_version(store) -> int | str:
    """The version of the profile on disk, or why it is not one whole version."""
    from exposeanyone.core.errors import ProfileError

    try:
        profile = store.load(NAME)
    except ProfileError as error:
        return f"unreadable: {error}"
    person = profile.models[VersionDetector.name]
    values = np.unique(person.tensors["tokens"])
    card_version = person.info.get("version")
    if len(values) != 1 or values[0] != card_version:
        return f"mixed: tokens {values[:4]} with a card of version {card_version}"
    return int(card_version)


# ----------------------------------------------------------------------------------------- the tests
def worker_env(root: Path) -> dict[str, str]:
    return {**os.environ, "EXPOSEANYONE_CACHE_DIR": str(root / "cache"), "GLOG_minloglevel": "2"}


def start_enrollment(root: Path, version: int, video: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, __file__, "enroll", str(root / "profiles"), str(version), str(video)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=worker_env(root))
    assert process.stdout.readline() == "ready\n"
    return process


def enroll_to_the_end(root: Path, version: int, video: Path) -> dict:
    process = start_enrollment(root, version, video)
    out, _ = process.communicate("go\n", timeout=120)
    assert process.returncode == 0, out
    marker, timing = out.splitlines()
    assert marker == "saving"
    return json.loads(timing)


def test_enrollment_killed_at_random_moments_leaves_the_old_or_the_new_profile(tmp_path, talking_clip, monkeypatch):
    from exposeanyone.media.extract import extract_clip
    from exposeanyone.profiles import ProfileStore

    monkeypatch.setenv("EXPOSEANYONE_CACHE_DIR", str(tmp_path / "cache"))
    extract_clip(talking_clip)  # the workers find the analysis cached and spend their time enrolling
    store = ProfileStore(tmp_path / "profiles")
    timing = enroll_to_the_end(tmp_path, 1, talking_clip)
    assert read_version(store) == 1
    span, save_start, save_end = timing["save_end"], timing["save_start"], timing["save_end"]
    assert 0 < save_start < save_end

    rng = random.Random(20250101)
    old, outcomes, died_while_saving = 1, [], 0
    for trial in range(KILL_TRIALS):
        new = trial + 2
        aimed = trial % 2 == 1  # every other kill is timed from the start of the save, not of the enrollment
        delay = rng.uniform(0.0, save_end - save_start) if aimed else rng.uniform(0.0, 1.3 * span)
        process = start_enrollment(tmp_path, new, talking_clip)
        process.stdin.write("go\n")
        process.stdin.flush()
        if aimed:
            assert process.stdout.readline() == "saving\n"
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        process.stdin.close()
        process.stdout.close()
        died_while_saving += (store.root / f".{NAME}.staging-{process.pid}").exists()
        loaded = read_version(store)
        outcomes.append(("save+" if aimed else "start+", round(delay, 3), process.returncode, loaded))
        assert loaded in (old, new), f"trial {trial}: after a kill at {delay:.3f} s the profile is {loaded}"
        old = loaded

    print(f"save window {save_start:.3f}-{save_end:.3f} s; {died_while_saving} kills inside the save; "
          f"(delay, exit, version after): {outcomes}")
    kept_old = sum(loaded != trial + 2 for trial, (*_, loaded) in enumerate(outcomes))
    assert kept_old >= 1, f"every kill came after the swap: {outcomes}"
    assert died_while_saving >= 3, f"too few kills landed inside the save: {outcomes}"
    enroll_to_the_end(tmp_path, 99, talking_clip)  # the lock died with the killed processes
    assert read_version(store) == 99
    assert sorted(p.name for p in store.root.iterdir()) == [".locks", NAME]  # killed saves' leftovers are gone


@pytest.mark.parametrize("kind, min_steps", [("profile", 10), ("cache", 4)])
def test_a_crash_before_any_step_of_a_write_leaves_the_old_or_the_new_version(tmp_path, kind, min_steps):
    result = subprocess.run([sys.executable, __file__, "crash-points", kind, str(tmp_path / kind)],
                            capture_output=True, text=True, env=worker_env(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    results = report["results"]
    assert report["steps"] >= min_steps and len(results) == report["steps"] + 1
    for result in results[:-1]:
        assert result["exit"] == CRASH_EXIT and result["loaded"] in (1, 2), result
    assert results[-1] == {"step": report["steps"], "before": "no crash", "exit": 0, "loaded": 2}
    loaded = [r["loaded"] for r in results]
    assert loaded[0] == 1 and 2 in loaded  # both sides of the swap were crashed on


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "enroll":
        enroll_worker(arguments[0], int(arguments[1]), arguments[2])
    elif command == "crash-points":
        crash_points_worker(arguments[0], arguments[1])
    else:
        raise SystemExit(f"unknown worker command {command!r}")
