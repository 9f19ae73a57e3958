"""Many at once: saves of one name never interleave, readers never see half a save, and eight app clients
enrolling and scoring different people each get their own result while the server's memory stays bounded.

This file is also the app server for the last test: ``python tests/test_concurrency.py serve ROOT``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

NAME = "Grace Hopper"
TENSOR_SHAPE = (256, 1024)
"""1 MB per save, so that a save is slow enough for readers and other writers to run into it."""
CLIENTS = 8


def versioned(version: int, writer: int = 0):
    from exposeanyone.detectors.base import PersonModel
    from exposeanyone.profiles import Profile

    person = PersonModel("exam", {"adapter_tokens": np.full(TENSOR_SHAPE, version, np.float32)},
                         {"version": version, "writer": writer})
    card = {"detectors": {"exam": {"calibration": {"threshold": float(version), "false_alarm_rate": 0.05,
                                                   "genuine_scores": [float(version)], "method": "test"}}}}
    return Profile(name=NAME, card=card, models={"exam": person})


def whole_version(profile) -> int:
    """The profile's version, asserting that card, info and weights all come from the same save."""
    person = profile.models["exam"]
    values = np.unique(person.tensors["adapter_tokens"])
    version = person.info["version"]
    assert len(values) == 1 and values[0] == version, f"weights {values[:3]} under info of version {version}"
    assert profile.calibration("exam")["threshold"] == version, "a card of another save"
    return int(version)


SAVER = """
import sys
sys.path.insert(0, sys.argv[3])
from test_concurrency import versioned
from exposeanyone.profiles import ProfileStore
store, writer = ProfileStore(sys.argv[1]), int(sys.argv[2])
for i in range(12):
    store.save(versioned(1000 * writer + i, writer))
"""


def test_concurrent_saves_of_one_name_never_interleave_and_readers_see_whole_profiles(tmp_path):
    from exposeanyone.profiles import ProfileStore

    store = ProfileStore(tmp_path)
    store.save(versioned(0))
    writers = [subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path), str(w), str(Path(__file__).parent)])
               for w in (1, 2, 3)]
    seen, errors = set(), []
    stop = threading.Event()

    def in_process_writer():
        for i in range(12):
            store.save(versioned(4000 + i, 4))

    def reader():
        while not stop.is_set():
            try:
                seen.add(whole_version(store.load(NAME)))
            except Exception as error:  # noqa: BLE001 - every failure is a finding here
                errors.append(repr(error))

    threads = [threading.Thread(target=reader) for _ in range(2)] + [threading.Thread(target=in_process_writer)]
    for thread in threads:
        thread.start()
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    threads[-1].join()
    stop.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(seen) >= 4  # the readers really overlapped with the writers
    final = whole_version(store.load(NAME))
    assert final % 1000 == 11  # the last save of one writer, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks", NAME]


# ----------------------------------------------------------------------------------------- the app
def serve(root: Path, max_file_mb: str) -> None:
    """Run the app with a tiny EXAM model on a free port, print its URL, serve until stdin closes."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ["EXPOSEANYONE_MAX_FILE_MB"] = max_file_mb
    from app_testing import app_environment, running_app

    with app_environment(root), running_app(root) as (demo, url, store):
        print(url, flush=True)
        sys.stdin.read()


@pytest.fixture(scope="module")
def people(tmp_path_factory) -> dict[str, Path]:
    """Eight people and a warm-up one, each with a 4.5 s clip of their own (seeded speech and head motion)."""
    from exposeanyone.demo.synthetic import make_talking_clip

    folder = tmp_path_factory.mktemp("people")
    names = [f"Person {i}" for i in range(CLIENTS)] + ["Warm Up"]
    return {name: make_talking_clip(folder / f"person_{i}.mp4", 4.5, seed=100 + i) for i, name in enumerate(names)}


@pytest.fixture(scope="module")
def server(tmp_path_factory, people):
    """``(url, process, root)`` of the app served by a subprocess (so its memory is its own), after one
    enrollment and one check have loaded the models."""
    root = tmp_path_factory.mktemp("concurrent-app")
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GLOG_minloglevel": "2"}
    process = subprocess.Popen([sys.executable, __file__, "serve", str(root), "2"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=environment)
    url = process.stdout.readline().strip()
    assert url.startswith("http"), "the app did not start"
    enroll_and_score(url, "Warm Up", people["Warm Up"], root / "warm-up")
    yield url, process, root
    process.stdin.close()
    process.wait(timeout=60)


def enroll_and_score(url: str, person: str, clip: Path, downloads: Path) -> tuple[dict, dict, dict]:
    """One client's session: the enrollment summary, the score summary and the downloaded JSON report."""
    import json

    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, download_files=str(downloads))
    # the clip twice: enough reference for the calibration halves, and it is analysed only once
    enrolled = client.predict(person, [handle_file(str(clip)), handle_file(str(clip))], ["exam"], api_name="/enroll")
    scored = client.predict(handle_file(str(clip)), person, "exam", "", ["jawOpen"], api_name="/score")
    report = json.loads(Path(next(p for p in scored[5] if p.endswith(".json"))).read_text()) if scored[5] else {}
    return enrolled[1], scored[1], report


@pytest.mark.slow
def test_eight_clients_enroll_and_score_different_people_at_once(server, people, tmp_path):
    psutil = pytest.importorskip("psutil")
    pytest.importorskip("gradio_client")
    from exposeanyone.core.assets import file_sha256

    url, process, root = server
    app = psutil.Process(process.pid)
    rss_before = app.memory_info().rss
    started = time.monotonic()
    clients = [person for person in people if person != "Warm Up"]
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = {person: pool.submit(enroll_and_score, url, person, people[person],
                                       tmp_path / person.replace(" ", "_")) for person in clients}
        results = {person: future.result(timeout=900) for person, future in futures.items()}
    elapsed = time.monotonic() - started
    rss_after = app.memory_info().rss

    for person, (enrolled, scored, report) in results.items():
        assert "error" not in enrolled and "error" not in scored, (person, enrolled, scored)
        assert enrolled["name"] == person and len(enrolled["references"]) == 2
        assert enrolled["references"][0]["sha256"] == file_sha256(people[person])
        assert scored["profile"] == person and scored["verdict"] in {"real", "fake", "inconclusive"}
        assert scored["threshold"] == pytest.approx(enrolled["detectors"]["exam"]["threshold"])  # their own profile
        assert report["clip"]["sha256"] == file_sha256(people[person]) and report["profile"] == person
    assert len({scored["score"] for _, scored, _ in results.values()}) == CLIENTS  # nobody got another's result
    profiles = sorted(p.name for p in (root / "profiles").iterdir() if not p.name.startswith("."))
    assert profiles == sorted(people)
    growth_mb = (rss_after - rss_before) / 2**20
    print(f"{CLIENTS} clients in {elapsed:.0f} s; app RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MB")
    assert growth_mb < 400 and rss_after < 2.5 * 2**30


def test_an_upload_over_the_size_limit_is_refused(server, tmp_path):
    pytest.importorskip("gradio_client")
    from gradio_client import Client, handle_file

    url, _, root = server
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(3 * 10**6))  # the server runs with EXPOSEANYONE_MAX_FILE_MB=2
    client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
    with pytest.raises(Exception, match="(?i)size|large|exceed"):
        client.predict(handle_file(str(big)), None, "sync", "", ["jawOpen"], api_name="/score")


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command != "serve":
        raise SystemExit(f"unknown command {command!r}")
    serve(Path(arguments[0]), arguments[1])
