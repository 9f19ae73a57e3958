"""The command line as a user meets it: exit codes, one-line errors, nothing written on failure."""
import json
import os
import subprocess
import sys

import pytest

from exposeanyone.cli.main import main


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "exposeanyone", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPOSEANYONE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("EXPOSEANYONE_PROFILES_DIR", str(tmp_path / "profiles"))


def test_track_prints_the_summary_and_writes_the_track(talking_clip, tmp_path, capsys):
    out = tmp_path / "track.npz"
    assert main(["track", str(talking_clip), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 100 and summary["fps"] == 25
    assert summary["face_detected_ratio"] >= 0.95 and 0 < summary["speech_ratio"] <= 1
    from exposeanyone.media.track import Track

    assert Track.load(out).num_frames == 100


@pytest.mark.parametrize("kind", ["random_bytes", "audio_only", "video_only", "no_face", "truncated"])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(bad_input, kind, tmp_path):
    out = tmp_path / "track.npz"
    result = run_cli("track", bad_input(kind), "--out", out)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert not out.exists()


def test_missing_file_and_missing_profile(tmp_path, talking_clip):
    result = run_cli("track", tmp_path / "missing.mp4")
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = run_cli("score", talking_clip, "--profile", "Nobody", "--json", tmp_path / "r.json")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert not (tmp_path / "r.json").exists()


def test_unsafe_profile_name_is_refused(talking_clip, tmp_path):
    result = run_cli("enroll", "--name", "../escape", talking_clip)
    assert result.returncode == 2 and "'..'" in result.stderr
    assert not (tmp_path / "escape").exists()


def test_bad_corruption_spec_is_refused(talking_clip):
    result = run_cli("track", talking_clip, "--corrupt", "blur:9")
    assert result.returncode == 2 and "level" in result.stderr


def test_sync_detector_scores_without_enrollment(talking_clip, tmp_path):
    out = tmp_path / "report.json"
    result = run_cli("score", talking_clip, "--detector", "sync", "--json", out)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    for key in ("score", "threshold", "verdict", "fps", "window_scores", "frame_scores", "face_detected_ratio",
                "speech_ratio", "trajectories", "detector"):
        assert key in report
    assert report["detector"] == "sync" and len(report["frame_scores"]) == 100
    assert "verdict:" in result.stdout


def test_grainy_video_is_smoothed_and_the_report_says_so(talking_clip, tmp_path):
    out = tmp_path / "report.json"
    result = run_cli("score", talking_clip, "--detector", "sync", "--corrupt", "noise:3", "--json", out)
    assert result.returncode == 0, result.stderr
    warnings = json.loads(out.read_text())["warnings"]
    assert any("grainy" in w and "smoothed" in w for w in warnings), warnings


def test_pretrain_takes_the_identity_balance_and_refuses_one_out_of_range(talking_clip, tmp_path):
    folder = tmp_path / "people"
    for person in ("ada", "bo"):
        (folder / person).mkdir(parents=True)
        (folder / person / "talk.mp4").symlink_to(talking_clip)
    out = tmp_path / "base"
    result = run_cli("pretrain", "--folder", folder, "--out", out, "--identity-balance", "1.5", "--steps", "2")
    assert result.returncode == 2 and "between 0 and 1" in result.stderr and not out.exists()
    assert main(["pretrain", "--folder", str(folder), "--out", str(out), "--identity-balance", "0",
                 "--steps", "2", "--batch-size", "2"]) == 0
    log = json.loads((out / "training_log.json").read_text())
    assert log["hyperparameters"]["identity_balance"] == 0.0
