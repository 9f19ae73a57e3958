"""The app through its API (gradio_client): enroll, score, corruptions, profiles, bad uploads.

The app runs in this process on a free port with a tiny EXAM model, so an enrollment takes seconds.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from app_testing import app_environment, running_app
from media_factory import make_bad_input

gradio_client = pytest.importorskip("gradio_client")
synthetic = pytest.importorskip("exposeanyone.demo.synthetic")

from gradio_client import Client, handle_file  # noqa: E402

from exposeanyone.ui import actions as ui  # noqa: E402
from exposeanyone.ui import session  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    with app_environment(root), running_app(root) as (demo, url, store):
        yield url, store, root


@pytest.fixture(scope="module")
def client(served):
    url, _, root = served
    return Client(url, verbose=False, download_files=str(root / "downloads"))


@pytest.fixture(scope="module")
def enrolled(client, clips):
    """Alice, enrolled through ``/enroll`` from two uploaded clips."""
    return client.predict("Alice", [handle_file(str(clips["reference_a"])), handle_file(str(clips["reference_b"]))],
                          ["exam"], api_name="/enroll")


def score(client, video: Path, profile: str | None = "Alice", detector: str = "exam", corrupt: str = ""):
    return client.predict(handle_file(str(video)), profile, detector, corrupt,
                          ["jawOpen", "headYaw"], api_name="/score")


def test_api_names_enroll_and_score(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/enroll", "/score", "/import_profile"} <= set(endpoints)
    assert [p["parameter_name"] for p in endpoints["/score"]["parameters"]][:4] == [
        "video", "profile_name", "detector", "corrupt"]


def test_readme_snippet(served, enrolled, clips):
    url, _, _ = served
    # -- as in the README
    client = Client(url)
    status, summary, *_ = client.predict("Alice", [handle_file(str(clips["reference_a"])),
                                                   handle_file(str(clips["reference_b"]))],
                                         ["exam"], replace=True, api_name="/enroll")
    verdict_text, result, *_ = client.predict(handle_file(str(clips["check"])), "Alice", "exam", "blur:3",
                                              api_name="/score")
    # --
    assert summary["name"] == "Alice"
    assert result["verdict"] in {"real", "fake", "inconclusive"} and result["corruption"] == "blur:3"
    assert isinstance(result["score"], float) and isinstance(result["threshold"], float)


def test_an_existing_name_is_replaced_only_when_asked(client, enrolled, served, clips, tmp_path):
    refused = "A profile named 'Alice' exists; tick 'Replace' to overwrite it."
    _, store, _ = served
    card = store.folder("Alice") / "profile.json"
    before = card.read_bytes()
    status, summary, *_ = client.predict("Alice", [handle_file(str(clips["check"]))], ["exam"], api_name="/enroll")
    assert summary == {"error": refused} and status == f"### ⚠️ {refused}"
    archive = enrolled[-1]
    status, *_ = client.predict(handle_file(archive), "Alice", api_name="/import_profile")
    assert status == f"### ⚠️ {refused}" and card.read_bytes() == before
    status, *_ = client.predict(handle_file(archive), "Alice", True, api_name="/import_profile")
    assert status == "Installed profile 'Alice'." and store.load("Alice").calibration("exam")["threshold"] == \
        pytest.approx(enrolled[1]["detectors"]["exam"]["threshold"], rel=1e-4)


def test_enroll_returns_a_summary_and_a_profile_archive(enrolled, served):
    status, summary, _, _, profile_text, archive = enrolled
    _, store, _ = served
    assert "Alice" in store.names()
    assert summary["name"] == "Alice" and len(summary["references"]) == 2
    assert 0 < summary["usable_reference_seconds"] <= 12.0
    exam = summary["detectors"]["exam"]
    assert exam["threshold"] is not None and exam["genuine_windows"] > 0
    assert not summary["trusted"]  # 12 s of reference is below the recommended 20 s
    assert any("usable reference" in w for w in summary["warnings"])
    assert status.startswith("### Enrolled 'Alice'") and "trust: limited" in status
    assert "### Profile 'Alice'" in profile_text and "usable reference" in profile_text
    with zipfile.ZipFile(archive) as packed:
        assert set(packed.namelist()) == {"profile.json", "exam.safetensors"}


def test_score_returns_verdict_plots_and_downloads(client, enrolled, clips):
    status, summary, genuine, frames, trajectories, downloads = score(client, clips["check"])
    assert summary["verdict"] in {"real", "fake", "inconclusive"} and summary["profile"] == "Alice"
    assert summary["score"] is not None and summary["threshold"] is not None
    assert summary["windows_scored"] >= 1 and summary["corruption"] == ""
    assert status.startswith(f"## {summary['verdict'].upper()}") and "What it does not prove" in status
    traces = json.loads(trajectories["plot"])["data"]
    assert {t["name"] for t in traces} >= {"observed", "generated", "speech detected"}
    assert sum(t["name"] == "observed" for t in traces) == 2  # jawOpen and headYaw
    genuine_histogram = [t for t in json.loads(genuine["plot"])["data"] if t["type"] == "histogram"]
    assert len(genuine_histogram[0]["x"]) == summary["genuine_windows"]
    assert any(t["name"] == "per-frame score" for t in json.loads(frames["plot"])["data"])
    names = sorted(Path(p).name for p in downloads)
    assert names == ["check_exam_frames.csv", "check_exam_report.json"]
    report = json.loads(next(Path(p) for p in downloads if p.endswith(".json")).read_text())
    assert report["verdict"] == summary["verdict"] and report["settings"]["detector"] == "exam"
    assert report["profile"] == "Alice" and len(report["frame_scores"]) == 125


def test_a_corruption_changes_the_analysis_and_is_recorded(client, enrolled, clips):
    clean = score(client, clips["check"])[1]
    blurred_status, blurred, _, _, trajectories, downloads = score(client, clips["check"], corrupt="blur:5,noise:3")
    assert blurred["corruption"] == "noise:3,blur:5"  # canonical order
    assert "noise:3,blur:5" in blurred_status
    assert blurred["score"] != pytest.approx(clean["score"], rel=1e-6, abs=1e-9)
    assert any("blur-5" in Path(p).name for p in downloads)


def test_fau_follow_up_reads_this_sessions_report(served, clips, tmp_path):
    url, _, _ = served
    client = Client(url, verbose=False, download_files=str(tmp_path))  # a session of its own
    text, figure = client.predict(handle_file(str(clips["check"])), api_name="/fau")
    assert text == "Check a clip first."  # no report in this session yet
    score(client, clips["check"], profile=None, detector="sync", corrupt="blur:1")
    text, figure = client.predict(handle_file(str(clips["check"])), api_name="/fau")
    traces = json.loads(figure["plot"])["data"]
    assert "fau detector" in text and traces[0]["name"] == "audio-visual consistency"
    assert "| corruption applied | blur:1 |" in text  # the follow-up analysed what the report did
    assert len(traces[0]["y"]) == 125


def test_detectors_without_enrollment_need_no_profile(client, clips):
    status, summary, _, _, trajectories, _ = score(client, clips["check"], profile=None, detector="sync")
    assert summary["detector"] == "sync" and summary["profile"] is None
    assert "does not model expressions" in json.dumps(trajectories)


@pytest.mark.parametrize("kind", ["text_as_mp4", "video_only", "audio_only", "no_face", "long", "empty", "truncated"])
def test_bad_uploads_give_a_readable_message_and_the_app_keeps_working(client, clips, tmp_path, kind):
    bad = Path(make_bad_input(kind, tmp_path))
    status, summary, genuine, *_ = score(client, bad, profile=None, detector="sync")
    assert status.startswith("### ⚠️ ") and set(summary) == {"error"}
    message = summary["error"]
    assert message in status and "Traceback" not in status and len(message) > 20
    assert message.rstrip().endswith((".", ")"))  # one sentence, not a dump
    status, summary, *_ = score(client, clips["check"], profile=None, detector="sync")
    assert summary["verdict"] in {"real", "fake", "inconclusive"}


def test_enroll_errors_are_sentences(client, clips):
    status, summary, *_ = client.predict("", [handle_file(str(clips["reference_a"]))], ["exam"], api_name="/enroll")
    assert status.startswith("### ⚠️ ") and "name" in summary["error"]
    status, summary, *_ = client.predict("Bob", [], ["exam"], api_name="/enroll")
    assert "at least one reference video" in summary["error"]


def test_unknown_profile_is_reported(client, clips):
    status, summary, *_ = score(client, clips["check"], profile="Nobody")
    assert "No profile named 'Nobody'" in summary["error"]


def test_profile_archive_installs_under_a_new_name(client, enrolled, served, tmp_path):
    archive = enrolled[-1]
    status, choices, _ = client.predict(handle_file(archive), "Alice copy", api_name="/import_profile")
    _, store, _ = served
    assert "Alice copy" in store.names() and status == "Installed profile 'Alice copy'."
    loaded = store.load("Alice copy")
    assert loaded.calibration("exam") == store.load("Alice").calibration("exam")
    not_a_zip = tmp_path / "holiday.zip"
    not_a_zip.write_text("these are not the profiles you are looking for")
    status, *_ = client.predict(handle_file(str(not_a_zip)), "", api_name="/import_profile")
    assert status == "### ⚠️ That file is not a profile archive (not a zip)."


def test_cancel_stops_enrollment_and_saves_nothing(clips, tmp_path):
    from exposeanyone.profiles import ProfileStore

    with app_environment(tmp_path):
        store = ProfileStore(tmp_path / "profiles")
        flags = session.CancelFlags()
        flag = flags.start("session")
        seen = []

        def progress(fraction, message):
            seen.append(message)
            if len(seen) == 3:
                flags.cancel("session")

        with pytest.raises(session.Cancelled, match="cancelled; nothing was saved"):
            ui.enroll("Carol", [clips["reference_a"]], store, ["exam"], progress, flag)
        assert store.names() == [] and len(seen) == 3


def test_annotated_copy_has_the_strip_the_cursor_and_the_sound(clips, tmp_path):
    import av
    import numpy as np

    from exposeanyone.profiles import ProfileStore
    from exposeanyone.ui.annotate import VERDICT_COLOURS, annotate_video

    with app_environment(tmp_path):
        report = ui.check(clips["check"], None, ProfileStore(tmp_path / "profiles"), "sync")
        out = annotate_video(clips["check"], report, tmp_path / "annotated.mp4")
    with av.open(str(out)) as container:
        assert container.streams.audio and container.streams.audio[0].codec_context.name == "aac"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == len(report.frame_scores) == 125
    height, width = frames[0].shape[:2]
    assert max(height, width) >= 480 and height > width  # upscaled from 256 px, strip added below
    picture_height = width  # the synthetic clip is square
    banner = frames[0][picture_height - 8, width // 2]  # the verdict banner's colour at the foot of the picture
    assert np.abs(banner.astype(int) - VERDICT_COLOURS[report.verdict]).max() < 40

    def cursor_column(frame):
        strip = frame[picture_height + 4:].astype(int)
        return int(np.argmax((strip >= 245).all(axis=2).sum(axis=0)))  # the white cursor, full strip height

    columns = [cursor_column(frames[i]) for i in (0, 62, 124)]
    assert columns[0] < 10 and abs(columns[1] - width / 2) < 15 and columns[2] > width - 12
