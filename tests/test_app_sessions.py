"""A shared deployment (a Space, or EXPOSEANYONE_SHARED=1) through its API: every visitor has their own
profiles, a name is replaced only when asked, and no request reaches another session's files.

The app runs in this process on a free port with a tiny EXAM model, so an enrollment takes seconds.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from app_testing import app_environment, running_app

gradio_client = pytest.importorskip("gradio_client")
synthetic = pytest.importorskip("exposeanyone.demo.synthetic")

import httpx  # noqa: E402 - a dependency of gradio_client
from gradio_client import Client, handle_file  # noqa: E402

from exposeanyone.core.errors import InputError, LimitError  # noqa: E402
from exposeanyone.profiles import ProfileStore  # noqa: E402
from exposeanyone.ui import actions as ui  # noqa: E402
from exposeanyone.ui.session import ProfileStores, SessionFiles, shared_deployment  # noqa: E402

REFUSED = "A profile named 'Alice' exists; tick 'Replace' to overwrite it."


# ------------------------------------------------------------------------------------------ without a server
@pytest.mark.parametrize("environ, shared", [({}, False), ({"SPACE_ID": "someone/exposeanyone"}, True),
                                             ({"EXPOSEANYONE_SHARED": "1"}, True),
                                             ({"SPACE_ID": "someone/exposeanyone", "EXPOSEANYONE_SHARED": "0"}, False)])
def test_a_space_or_the_setting_makes_a_shared_deployment(environ, shared):
    assert shared_deployment(environ) is shared


def test_each_session_of_a_shared_app_has_its_own_store(tmp_path):
    disk = ProfileStore(tmp_path / "profiles")
    files = SessionFiles(tmp_path / "sessions")
    local, shared = ProfileStores(disk, files, shared=False), ProfileStores(disk, files, shared=True, max_profiles=1)
    assert local.for_session("visitor-a") is disk and local.for_session(None) is disk
    a, b = shared.for_session("visitor-a"), shared.for_session("visitor-b")
    assert a.root != b.root and a.root.parent.parent == files.root and a.root != disk.root
    assert "visitor" not in a.root.parent.name and a.root.parent == files.folder("visitor-a")  # named by a keyed hash
    assert SessionFiles(tmp_path / "sessions").path("visitor-a") != files.path("visitor-a")  # a new server draws a new key
    with pytest.raises(InputError, match="belongs to no session"):
        shared.for_session(None)
    (a.root / "Ada").mkdir(parents=True)
    (a.root / "Ada" / "profile.json").write_text("{}")
    assert shared.names("visitor-a") == ["Ada"] and shared.names("visitor-b") == []
    with pytest.raises(LimitError, match="holds 1 profiles"):
        shared.check_room(a, "Bob")
    shared.check_room(a, "Ada")  # replacing one is allowed
    files.remove("visitor-a")
    assert shared.names("visitor-a") == [] and not a.root.exists()


# ------------------------------------------------------------------------------------------ through the API
@pytest.fixture(scope="module")
def shared_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared-app")
    with app_environment(root), running_app(root, shared=True) as (_, url, store):
        yield SimpleNamespace(url=url, store=store, root=root)


def visitor(app, folder: Path) -> Client:
    """A new visitor: a client with a session of its own."""
    return Client(app.url, verbose=False, download_files=str(folder))


def enroll(client: Client, clip: Path, replace: bool = False, name: str = "Alice"):
    return client.predict(name, [handle_file(str(clip))], ["exam"], replace, api_name="/enroll")


def score(client: Client, clip: Path):
    return client.predict(handle_file(str(clip)), "Alice", "exam", "", ["jawOpen"], api_name="/score")


def references(archive: str | Path) -> list[str]:
    with zipfile.ZipFile(archive) as packed:
        return [reference["name"] for reference in json.loads(packed.read("profile.json"))["references"]]


def session_cards(app) -> dict[Path, list[str]]:
    """Every session's 'Alice' on the server: its card's reference clips."""
    return {card: [r["name"] for r in json.loads(card.read_text())["references"]]
            for card in app.root.glob("sessions/*/profiles/Alice/profile.json")}


def session_profiles(app) -> dict[str, bytes]:
    return {p.relative_to(app.root).as_posix(): p.read_bytes() for p in app.root.glob("sessions/*/profiles/**/*")
            if p.is_file() and ".locks" not in p.parts}


@pytest.fixture(scope="module")
def visitors(shared_app, clips, tmp_path_factory):
    """Two visitors who each enrolled 'Alice' from a clip of their own."""
    a = visitor(shared_app, tmp_path_factory.mktemp("visitor-a"))
    b = visitor(shared_app, tmp_path_factory.mktemp("visitor-b"))
    return SimpleNamespace(a=a, b=b, enrolled_a=enroll(a, clips["reference_a"]), enrolled_b=enroll(b, clips["reference_b"]))


def test_two_visitors_enroll_one_name_and_each_keeps_their_own(shared_app, visitors, clips, tmp_path):
    for enrolled, clip in ((visitors.enrolled_a, "reference_a.mp4"), (visitors.enrolled_b, "reference_b.mp4")):
        status, summary, *_, archive = enrolled
        assert status.startswith("### Enrolled 'Alice'"), status
        assert references(archive) == [clip]
    assert shared_app.store.names() == []  # the local app's profiles folder is never used
    assert sorted(session_cards(shared_app).values()) == [["reference_a.mp4"], ["reference_b.mp4"]]
    assert not any(client.session_hash in str(card) for card in session_cards(shared_app)
                   for client in (visitors.a, visitors.b))

    thresholds = []
    for client, enrolled in ((visitors.a, visitors.enrolled_a), (visitors.b, visitors.enrolled_b)):
        _, result, *_ = score(client, clips["check"])
        own = enrolled[1]["detectors"]["exam"]["threshold"]
        assert result["profile"] == "Alice" and result["threshold"] == pytest.approx(own, rel=1e-4)
        thresholds.append(own)
    assert thresholds[0] != pytest.approx(thresholds[1], rel=1e-4)  # so each check used its own visitor's Alice

    _, result, *_ = score(visitor(shared_app, tmp_path), clips["check"])  # a newcomer sees neither
    assert result == {"error": "No profile named 'Alice' in this session's profiles (enrolled: none yet). "
                               "Enroll the person first."}


def test_an_existing_name_is_replaced_only_when_asked(shared_app, visitors, clips):
    before = session_profiles(shared_app)
    status, summary, *_ = enroll(visitors.a, clips["check"])
    assert summary == {"error": REFUSED} and status == f"### ⚠️ {REFUSED}"
    assert session_profiles(shared_app) == before
    archive = visitors.enrolled_a[-1]
    status, *_ = visitors.a.predict(handle_file(archive), "", False, api_name="/import_profile")
    assert status == f"### ⚠️ {REFUSED}" and session_profiles(shared_app) == before

    status, *_, archive = enroll(visitors.a, clips["check"], replace=True)
    assert status.startswith("### Enrolled 'Alice'") and references(archive) == ["check.mp4"]
    assert sorted(session_cards(shared_app).values()) == [["check.mp4"], ["reference_b.mp4"]]  # b's is untouched


def test_a_crafted_request_for_another_sessions_file_is_refused(shared_app, visitors, clips, tmp_path):
    *_, downloads = score(visitors.b, clips["check"])
    reports = list(shared_app.root.glob("sessions/*/check_exam_report.json"))
    report = next(Path(p) for p in downloads if p.endswith("_report.json"))
    assert any(report.read_bytes() == r.read_bytes() for r in reports)  # b got its file through the copy handed to it

    crafted = [*reports, *session_cards(shared_app), *shared_app.root.glob("sessions/*/*.zip"),
               shared_app.root / "sessions" / visitors.b.session_hash / "check_exam_report.json",
               next(p for p in (shared_app.root / "cache").rglob("*") if p.is_file())]  # an analysed clip's track
    with httpx.Client(base_url=shared_app.url) as stranger:
        for path in crafted:
            response = stranger.get(f"gradio_api/file={path}")
            assert response.status_code in (403, 404), (path, response.status_code)
            assert not path.is_file() or path.read_bytes()[:200] not in response.content


def test_a_tampered_or_oversized_archive_is_refused_in_one_sentence(shared_app, visitors, tmp_path, monkeypatch):
    archive = Path(visitors.enrolled_b[-1])
    with zipfile.ZipFile(archive) as packed:
        members = {name: packed.read(name) for name in packed.namelist()}
    card = json.loads(members["profile.json"])
    card["detectors"]["exam"]["calibration"]["threshold"] = "very high"
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(tampered, "w") as packed:
        for name, payload in {**members, "profile.json": json.dumps(card).encode()}.items():
            packed.writestr(name, payload)
    before = session_profiles(shared_app)

    status, *_ = visitors.b.predict(handle_file(str(tampered)), "Mallory", False, api_name="/import_profile")
    assert status == ("### ⚠️ The archive has a damaged card (profile.json: a field is missing or of the wrong kind); "
                      "it was edited or damaged: enroll the person again.")
    monkeypatch.setattr(ui, "MAX_ARCHIVE_BYTES", archive.stat().st_size - 1)
    status, *_ = visitors.b.predict(handle_file(str(archive)), "Mallory", True, api_name="/import_profile")
    assert status == "### ⚠️ The uploaded file is too large to be a profile archive."
    assert session_profiles(shared_app) == before


def test_a_visitor_keeps_a_profile_by_uploading_its_archive_again(shared_app, visitors, clips, tmp_path):
    newcomer = visitor(shared_app, tmp_path)  # e.g. the same person the next day
    status, *_ = newcomer.predict(handle_file(visitors.enrolled_b[-1]), "", False, api_name="/import_profile")
    assert status == "Installed profile 'Alice'."
    _, result, *_ = score(newcomer, clips["check"])
    assert result["threshold"] == pytest.approx(visitors.enrolled_b[1]["detectors"]["exam"]["threshold"], rel=1e-4)
