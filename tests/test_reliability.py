"""Reliability and security as a user meets them: bad files through ``score`` and ``enroll``, partly usable
clips, profile names, no pickles, tampered profiles, limits checked before heavy work, determinism.

Bad inputs on ``track`` and the extraction messages are in test_extract.py and test_cli.py; here they go
through the commands that enroll and score, with a tiny EXAM model and an enrolled profile.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from app_testing import ROOT, app_environment
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file
from synthetic_arrays import make_clip, make_track

from exposeanyone.cli.main import main
from exposeanyone.core.config import Limits
from exposeanyone.core.errors import InputError, LimitError, ProfileError
from exposeanyone.detectors.base import PersonModel
from exposeanyone.media.audio_features import AudioFeatures
from exposeanyone.media.clip import ClipFeatures
from exposeanyone.media.decode import iter_frames, probe
from exposeanyone.media.extract import extract_clip
from exposeanyone.pipeline import enroll_clips, score_clip
from exposeanyone.profiles import MAX_NAME_BYTES, Profile, ProfileStore, validate_name
from exposeanyone.ui import actions as ui


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A tiny EXAM model, private folders, and 'Alice' enrolled from two 8 s array clips."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only add contention on a shared machine
    root = tmp_path_factory.mktemp("reliability")
    with app_environment(root):
        store = ProfileStore(root / "profiles")
        store.save(enroll_clips("Alice", [make_clip(8.0, seed=s, name=f"ref{s}.mp4") for s in (1, 2)], ["exam"]))
        yield SimpleNamespace(root=root, store=store)
    torch.set_num_threads(threads)


def run(capsys, *args) -> tuple[int, str, list[str]]:
    """The CLI in this process: exit code, stdout, stderr lines."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its content (None for folders): two equal trees mean nothing was written."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*")) if ".locks" not in p.parts}


# ------------------------------------------------------------------------------------------ bad inputs
BAD_INPUTS = [
    ("empty", "is empty", {}),
    ("random_bytes", "not a video file", {}),
    ("text_as_mp4", "not a video file", {}),
    ("image", "still image", {}),
    ("audio_only", "no video stream", {}),
    ("video_only", "no audio track", {}),
    ("no_face", "No face was found", {}),
    ("truncated", "truncated", {}),
    ("truncated_no_index", "truncated", {}),
    ("long", "s limit", {}),
    ("huge_resolution", "pixels, too large", {"EXPOSEANYONE_MAX_PIXELS": "1000000"}),
    ("missing", "does not exist", {}),
    ("folder", "is not a file", {}),
]


@pytest.mark.parametrize("kind, words, variables", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_the_same_sentence_from_score_enroll_and_app(env, bad_input, tmp_path, capsys, monkeypatch,
                                                                   kind, words, variables):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    path = {"missing": tmp_path / "missing.mp4", "folder": tmp_path}.get(kind) or bad_input(kind)
    profiles_before = tree(env.root / "profiles")
    report = tmp_path / "report.json"

    score = run(capsys, "score", path, "--profile", "Alice", "--json", report)
    enroll = run(capsys, "enroll", "--name", "Bob", path)
    with pytest.raises(InputError) as raised:
        ui.check(path, "Alice", env.store, "exam")

    for code, stdout, stderr in (score, enroll):
        assert code == 2 and stdout == ""
        assert len(stderr) == 1 and stderr[0].startswith("error: ") and words in stderr[0], stderr
    assert score[2] == enroll[2] == [f"error: {raised.value}"]  # the app shows the very same sentence
    assert not report.exists() and tree(env.root / "profiles") == profiles_before


def test_the_real_command_prints_one_line_without_library_chatter(bad_input, tmp_path):
    """MediaPipe and TFLite write to file descriptor 2 directly; the user must still see only our line."""
    environment = {**os.environ, "EXPOSEANYONE_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "exposeanyone", "score", str(bad_input("no_face")), "--detector",
                             "sync"], capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: No face was found in any frame of 'no_face.mp4': the detectors need the speaker's face visible and "
        "facing the camera."]


def test_silent_clip_is_inconclusive_to_score_and_refused_for_enrollment(env, bad_input, tmp_path, capsys):
    report = tmp_path / "report.json"
    code, stdout, stderr = run(capsys, "score", bad_input("silent"), "--profile", "Alice", "--json", report)
    assert code == 0 and stderr == []
    result = json.loads(report.read_text())
    assert result["verdict"] == "inconclusive" and result["speech_ratio"] == 0.0
    assert "0.0 s had both a visible face and speech" in result["reason"]
    assert stdout.startswith("verdict: INCONCLUSIVE (only 0.0 s")

    code, stdout, stderr = run(capsys, "enroll", "--name", "Quiet", bad_input("silent"))
    assert code == 2 and len(stderr) == 1 and "only 0.0 s with both a visible face and speech" in stderr[0]
    assert not env.store.exists("Quiet")


def test_unknown_profile_is_named_before_any_analysis(env, talking_clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("exposeanyone.pipeline.extract_clip", _heavy_work)
    code, _, stderr = run(capsys, "score", talking_clip, "--profile", "Nobody", "--json", tmp_path / "r.json")
    assert code == 2 and len(stderr) == 1
    assert "No profile named 'Nobody'" in stderr[0] and "enrolled: Alice" in stderr[0] and "Enroll" in stderr[0]
    assert not (env.root / "profiles" / "Nobody").exists() and not (tmp_path / "r.json").exists()


def _heavy_work(*args, **kwargs):
    raise AssertionError("heavy work started before the cheap checks")


# ------------------------------------------------------------------------------------------ partly usable
def partly_usable_clip(frames: int, face: slice, speech: slice, seed: int = 3) -> ClipFeatures:
    """An analysed clip with a face only in ``face`` frames and speech only in ``speech`` frames."""
    valid = np.zeros(frames, bool)
    valid[face] = True
    talking = np.zeros(frames, bool)
    talking[speech] = True
    source = make_clip(frames / 25, seed=seed)
    audio = AudioFeatures(mel=source.audio.mel, speech=talking,
                          energy_db=np.where(talking, -20.0, -80.0).astype(np.float32))
    return ClipFeatures(track=make_track(frames, seed, valid=valid), audio=audio, name="partly.mp4")


def test_a_partly_usable_clip_is_scored_on_its_usable_windows(env):
    # 12 s: a face in the first 40 % of the frames, speech in 20 %, inside the face part
    clip = partly_usable_clip(300, face=slice(0, 120), speech=slice(20, 80))
    report = score_clip(clip, env.store.load("Alice"), "exam")
    assert report.face_detected_ratio == pytest.approx(0.4) and report.speech_ratio == pytest.approx(0.2)
    assert report.usable_seconds == pytest.approx(2.4)
    scored = [s is not None for s in report.window_scores]
    assert any(scored) and not all(scored)
    starts = np.asarray(report.window_starts)
    assert not any(np.asarray(scored)[starts >= 120])  # no window without a face is scored
    usable_scores = [s for s in report.window_scores if s is not None]
    assert report.score == pytest.approx(np.mean(usable_scores), rel=1e-4)  # the report rounds window scores
    assert report.verdict in {"real", "fake"} and "threshold" in report.reason
    assert all(v is None for v in report.frame_scores[220:])


@pytest.mark.parametrize("speech, usable", [(slice(150, 210), "0.0 s"), (slice(62, 122), "1.5 s")])
def test_too_little_usable_footage_is_inconclusive_with_the_reason(env, speech, usable):
    clip = partly_usable_clip(250, face=slice(0, 100), speech=speech)  # 10 s: face 40 %, speech 24 %
    report = score_clip(clip, env.store.load("Alice"), "exam")
    assert report.verdict == "inconclusive"
    assert report.reason.startswith(f"only {usable} had both a visible face and speech")
    assert "at least 2 s" in report.reason
    assert "inconclusive" in report.summary_lines()[0].lower()


# ------------------------------------------------------------------------------------------ names
HOSTILE_NAMES = ["../outside", "a/../../b", "..", ".", "..\\outside", "/etc/passwd", "C:\\x", "a\x00b", "x" * 65,
                 "\U0001F600" * 64, "right\u202eleft", "zero\u200bwidth", "\ud800", "line\nbreak", " ", ".hidden",
                 "sub/dir", "~/x", "\x7f"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_refused_in_one_sentence(name):
    with pytest.raises(ProfileError) as raised:
        validate_name(name)
    assert "\n" not in str(raised.value) and len(str(raised.value)) > 20


def test_unicode_names_are_normalised_and_bounded_in_bytes(tmp_path):
    store = ProfileStore(tmp_path)
    composed, decomposed = "\u00c9mile", "E\u0301mile"
    store.save(small_profile(decomposed))
    assert store.names() == [composed] and store.load(composed).name == composed
    longest = "\U0001F600" * (MAX_NAME_BYTES // 4)  # four bytes each: 64 of them would not fit a file name
    store.save(small_profile(longest))
    assert store.load(longest).name == longest
    with pytest.raises(ProfileError, match="bytes"):
        validate_name(longest + "\U0001F600")


def small_profile(name: str, value: float = 1.0) -> Profile:
    person = PersonModel("exam", {"adapter_tokens": np.full((2, 4), value, np.float32)}, {"version": value})
    return Profile(name=name, card={"detectors": {"exam": {"calibration": {
        "threshold": 1.0, "false_alarm_rate": 0.05, "genuine_scores": [0.9], "method": "test"}}}},
        models={"exam": person})


NAME_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=80),
    st.lists(st.sampled_from(["..", ".", "/", "\\", "a", "\u00e9", "\x00", " ", "\U0001F600", "\u202e", "~", ":",
                              "\u0301", "\n"]), max_size=70).map("".join))
"""Any text, lone surrogates included, and strings built from the pieces of path tricks."""


def test_no_name_writes_outside_the_profiles_folder(tmp_path):
    outer = tmp_path / "outer"
    (outer / "keep").mkdir(parents=True)
    (outer / "keep" / "sentinel.txt").write_text("must not change")
    (outer / "victim").mkdir()
    root = outer / "profiles"
    root.mkdir()
    (root / "Eve").symlink_to(outer / "victim", target_is_directory=True)  # a planted link out of the folder
    store = ProfileStore(root)
    outside_before = {p: c for p, c in tree(outer).items() if not p.startswith("profiles/")}

    @settings(max_examples=60, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(NAME_TEXT)
    def save_load_delete(name):
        try:
            cleaned = validate_name(name)
        except ProfileError as error:
            assert "\n" not in str(error)
            return
        try:
            folder = store.save(small_profile(cleaned))
        except ProfileError:
            assert cleaned == "Eve"  # only the planted link may refuse a valid name
            return
        assert folder.parent == root.resolve() and len(folder.name.encode()) <= MAX_NAME_BYTES
        assert store.load(name).name == cleaned
        store.delete(name)
        assert not store.exists(cleaned)

    save_load_delete()
    for name in HOSTILE_NAMES + ["Eve"]:
        for action in (lambda: store.save(small_profile(name)), lambda: store.load(name),
                       lambda: store.delete(name), lambda: store.export_zip(name)):
            with pytest.raises(ProfileError):
                action()
    archive = zip_of({"profile.json": json.dumps({"format_version": 1, "name": "../../keep/evil"}).encode()})
    with pytest.raises(ProfileError):
        store.import_zip(archive)
    with pytest.raises(ProfileError):
        store.import_zip(archive, name="Eve")
    assert {p: c for p, c in tree(outer).items() if not p.startswith("profiles/")} == outside_before
    assert list((outer / "victim").iterdir()) == []


def zip_of(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_cli_refuses_hostile_names_without_writing(env, talking_clip, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("exposeanyone.pipeline.extract_clip", _heavy_work)
    before = tree(env.root)
    archive = tmp_path / "profile.zip"
    archive.write_bytes(env.store.export_zip("Alice"))
    for args in (["enroll", "--name", "../escape", talking_clip], ["enroll", "--name", "a/b", talking_clip],
                 ["profiles", "import", archive, "--name", "../../escape"], ["profiles", "delete", "../Alice"],
                 ["profiles", "export", "..", "--out", tmp_path / "x.zip"]):
        code, stdout, stderr = run(capsys, *args)
        assert code == 2 and len(stderr) == 1 and stderr[0].startswith("error: The name"), (args, stderr)
    assert tree(env.root) == before and not (tmp_path / "x.zip").exists()


# ------------------------------------------------------------------------------------------ no pickles
UNSAFE_MODULES = {"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}


def unsafe_loading(source: str, filename: str = "<source>") -> list[str]:
    """Every place in ``source`` that could unpickle: pickle-like imports, ``torch.load`` without
    ``weights_only=True``, ``np.load`` without ``allow_pickle=False``, any ``allow_pickle=True``."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(m.split(".")[0] in UNSAFE_MODULES for m in modules):
                problems.append(f"{where}: imports {modules}")
            if isinstance(node, ast.ImportFrom) and node.module in {"torch", "numpy"} and \
                    any(alias.name == "load" for alias in node.names):
                problems.append(f"{where}: imports {node.module}.load under another name")
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        keywords = {k.arg: k.value for k in node.keywords}

        def constant(key):
            return keywords[key].value if isinstance(keywords.get(key), ast.Constant) else None

        if constant("allow_pickle") is True:
            problems.append(f"{where}: allow_pickle=True")
        if called.split(".")[-1] == "load" and called.split(".")[0] == "torch" and constant("weights_only") is not True:
            problems.append(f"{where}: {called}() without weights_only=True")
        if called in {"np.load", "numpy.load"} and constant("allow_pickle") is not False:
            problems.append(f"{where}: {called}() without allow_pickle=False")
        if called.split(".")[-1] in {"read_pickle", "unsafe_load"} or called in {"yaml.load", "yaml.load_all"}:
            problems.append(f"{where}: {called}()")
    return problems


def test_the_scanner_finds_unsafe_loading():
    # the calls are assembled so that a plain grep of this repository does not mistake the sample for real use
    torch_load, pickle_flag = "torch." + "load(", "allow_" + "pickle=True"
    bad = (f"import pickle\nfrom joblib import load\nimport torch, numpy as np\n{torch_load}'m.pt')\n"
           f"{torch_load}'m.pt', weights_only=False)\nnp.load('a.npy')\nnp.load('a.npz', {pickle_flag})\n"
           "from torch import load\n")
    assert len(unsafe_loading(bad)) == 8
    good = "import torch, numpy as np\ntorch.load('m.pt', weights_only=True)\nnp.load('a.npz', allow_pickle=False)\n"
    assert unsafe_loading(good) == []


def test_no_source_file_can_unpickle():
    sources = sorted(p for folder in ("exposeanyone", "scripts", "benchmarks", "examples")
                     for p in (ROOT / folder).rglob("*.py")) + sorted(ROOT.glob("*.py"))
    assert len(sources) > 20 and ROOT / "app.py" in sources
    problems = [p for path in sources for p in unsafe_loading(path.read_text(encoding="utf-8"), str(path))]
    assert problems == []
    assert not [path for path in sources if "allow_pickle=True" in path.read_text(encoding="utf-8")]


# ------------------------------------------------------------------------------------------ tampered profiles
def edit_card(folder: Path, change) -> None:
    card = json.loads((folder / "profile.json").read_text())
    change(card)
    (folder / "profile.json").write_text(json.dumps(card))


TAMPERING = {
    "wrong_shape": (lambda f: save_file({"adapter_tokens": np.zeros((3, 5), np.float32)}, str(f / "exam.safetensors")),
                    "adapter tokens are missing or damaged"),
    "nan": (lambda f: save_file({"adapter_tokens": np.full((2, 32), np.nan, np.float32)}, str(f / "exam.safetensors")),
            "NaN or infinite"),
    "other_base_model": (lambda f: edit_card(f, lambda c: c["detectors"]["exam"].update(base_model_sha256="0" * 64)),
                         "different exam base model or score"),
    "older_score": (lambda f: edit_card(f, lambda c: c["detectors"]["exam"].update(
        base_model_sha256=c["detectors"]["exam"]["base_model_sha256"].split("/")[0])), "different exam base model or score"),
    "other_backbone": (lambda f: edit_card(f, lambda c: c["detectors"]["exam"]["info"].update(backbone="0" * 16)),
                       "another EXAM model"),
    "threshold_text": (lambda f: edit_card(f, lambda c: c["detectors"]["exam"]["calibration"].update(threshold="low")),
                       "damaged card"),
    "detectors_list": (lambda f: edit_card(f, lambda c: c.update(detectors=["exam"])), "damaged card"),
    "no_weights": (lambda f: (f / "exam.safetensors").unlink(), "lacks the weights"),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampered_profile_is_refused_with_a_clear_sentence(env, talking_clip, tmp_path, capsys, how):
    tamper, words = TAMPERING[how]
    alice = env.store.load("Alice")
    env.store.save(Profile(name=f"Alice-{how}", card=alice.card, models=alice.models))
    tamper(env.store.folder(f"Alice-{how}"))
    code, stdout, stderr = run(capsys, "score", talking_clip, "--profile", f"Alice-{how}", "--json",
                               tmp_path / "r.json")
    assert code == 2 and len(stderr) == 1 and words in stderr[0], stderr
    assert "enroll" in stderr[0].lower() and not (tmp_path / "r.json").exists()


def test_enrolling_an_existing_name_is_refused_before_any_work_unless_replace_is_asked(env, talking_clip, capsys,
                                                                                       monkeypatch):
    def no_tracking(*args, **kwargs):
        raise AssertionError("the clip was analysed before the name was checked")

    monkeypatch.setattr("exposeanyone.pipeline.extract_clip", no_tracking)
    before = tree(env.root / "profiles")
    code, stdout, stderr = run(capsys, "enroll", "--name", "Alice", talking_clip)
    assert code == 2 and stdout == "" and stderr == ["error: A profile named 'Alice' exists; pass --replace to "
                                                     "overwrite it."], stderr
    with pytest.raises(ProfileError, match=r"^A profile named 'Alice' exists; tick 'Replace' to overwrite it\.$"):
        ui.enroll("Alice", [talking_clip], env.store, ["exam"])
    with pytest.raises(ProfileError, match="exists; pass replace=True"):
        env.store.import_zip(env.store.export_zip("Alice"), replace=False)
    assert tree(env.root / "profiles") == before
    with pytest.raises(AssertionError, match="analysed"):  # asked to replace, it goes on to the work
        run(capsys, "enroll", "--name", "Alice", "--replace", talking_clip)


def test_a_card_naming_another_folder_stays_in_its_own(tmp_path):
    store = ProfileStore(tmp_path / "profiles")
    store.save(small_profile("Mallory"))
    edit_card(store.folder("Mallory"), lambda c: c.update(name="../../escape"))
    loaded = store.load("Mallory")
    assert loaded.name == "Mallory"
    store.save(loaded)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profiles"]


# ------------------------------------------------------------------------------------------ limits
@pytest.mark.parametrize("variable, field, value", [
    ("EXPOSEANYONE_MAX_FILE_MB", "max_file_mb", 12.5), ("EXPOSEANYONE_MAX_DURATION_S", "max_duration_s", 30.0),
    ("EXPOSEANYONE_MAX_SIDE_PX", "max_side_px", 320), ("EXPOSEANYONE_MAX_PIXELS", "max_pixels", 640 * 480),
    ("EXPOSEANYONE_MAX_REFERENCE_CLIPS", "max_reference_clips", 3)])
def test_every_limit_is_set_by_its_environment_variable(monkeypatch, variable, field, value):
    assert getattr(Limits.from_env(), field) == getattr(Limits(), field)
    monkeypatch.setenv(variable, str(value))
    assert getattr(Limits.from_env(), field) == value


@pytest.mark.parametrize("value", ["lots", "-5", "0", "nan", "inf"])
def test_a_bad_limit_setting_is_one_sentence(talking_clip, capsys, monkeypatch, value):
    monkeypatch.setenv("EXPOSEANYONE_MAX_DURATION_S", value)
    code, _, stderr = run(capsys, "track", talking_clip)
    assert code == 2 and stderr == [f"error: The environment variable EXPOSEANYONE_MAX_DURATION_S={value!r} is not "
                                    "a positive number: fix it or unset it."]


@pytest.mark.parametrize("variable, value, words", [
    ("EXPOSEANYONE_MAX_FILE_MB", "0.01", "MB limit"), ("EXPOSEANYONE_MAX_DURATION_S", "1", "s limit"),
    ("EXPOSEANYONE_MAX_PIXELS", "10000", "too large to analyse")])
def test_limits_are_enforced_before_any_decoding(talking_clip, tmp_path, capsys, monkeypatch, variable, value, words):
    monkeypatch.setenv("EXPOSEANYONE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr("exposeanyone.media.extract.iter_frames", _heavy_work)
    monkeypatch.setattr("exposeanyone.media.extract.read_audio", _heavy_work)
    code, _, stderr = run(capsys, "score", talking_clip, "--detector", "sync")
    assert code == 2 and len(stderr) == 1 and words in stderr[0]
    with pytest.raises(LimitError, match=words):
        extract_clip(talking_clip)


def test_reference_clip_count_and_detectors_are_checked_before_analysis(env, talking_clip, capsys, monkeypatch):
    monkeypatch.setattr("exposeanyone.pipeline.extract_clip", _heavy_work)
    monkeypatch.setenv("EXPOSEANYONE_MAX_REFERENCE_CLIPS", "2")
    code, _, stderr = run(capsys, "enroll", "--name", "Carol", talking_clip, talking_clip, talking_clip)
    assert code == 2 and stderr == ["error: 3 reference clips given; at most 2 are accepted."]
    code, _, stderr = run(capsys, "enroll", "--name", "Carol", "--detectors", "bogus", talking_clip)
    assert code == 2 and len(stderr) == 1 and "Unknown detector 'bogus'" in stderr[0]
    assert not env.store.exists("Carol")


def test_frames_above_the_side_limit_are_downscaled_while_decoding(talking_clip):
    info = probe(talking_clip)
    frame = next(iter(iter_frames(info, max_side=128)))
    assert frame.shape == (128, 128, 3) and (info.width, info.height) == (256, 256)


# ------------------------------------------------------------------------------------------ determinism
def test_same_input_same_output_even_after_a_damaged_cache(env, talking_clip_factory):
    video = talking_clip_factory(".mp4", seconds=3.0, seed=7)
    cached_before = set((env.root / "cache" / "clips").rglob("*.npz"))
    first = extract_clip(video)
    (entry,) = set((env.root / "cache" / "clips").rglob("*.npz")) - cached_before
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])  # a crash mid-write without atomic writes
    second = extract_clip(video)  # the damaged entry is analysed again, not trusted
    for a, b in ((first.track.to_arrays(), second.track.to_arrays()),
                 (vars(first.audio), vars(second.audio))):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.load(entry, allow_pickle=False).close()  # rewritten whole
    alice = env.store.load("Alice")
    reports = [score_clip(clip, alice, "exam").to_json_text() for clip in (first, second, first)]
    assert reports[0] == reports[1] == reports[2]
    assert json.loads(reports[0])["score"] is not None
