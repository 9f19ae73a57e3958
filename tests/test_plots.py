"""The app's figures and the Gradio-free report helpers, on reports built from numbers."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from exposeanyone.media.track import EXPRESSION_NAMES
from exposeanyone.report import ScoreReport
from exposeanyone.ui import actions as ui
from exposeanyone.ui import plots, session

FPS = 25


def make_report(frames: int = 150, threshold: float = 1.0, detector: str = "exam", high: slice = slice(75, 125),
                trajectories: bool = True, extras: dict | None = None) -> ScoreReport:
    rng = np.random.default_rng(0)
    frame_scores = np.full(frames, 0.8)
    frame_scores[high] = 1.4
    frame_scores[:10] = np.nan
    starts = list(range(0, frames - 100 + 1, 25))
    window_scores = [float(np.nanmean(frame_scores[s:s + 100])) for s in starts]
    curves = {}
    if trajectories:
        observed = rng.random((frames, 58))
        curves = {"observed": {n: observed[:, i].round(4).tolist() for i, n in enumerate(EXPRESSION_NAMES)},
                  "generated": {n: (observed[:, i] * 0.9).round(4).tolist() for i, n in enumerate(EXPRESSION_NAMES)}}
    score = float(np.mean(window_scores))
    return ScoreReport(
        detector=detector, score=score, threshold=threshold, verdict="fake" if score > threshold else "real",
        reason="test", fps=FPS, window_starts=starts, window_length=100, window_scores=window_scores,
        frame_scores=[None if math.isnan(v) else float(v) for v in frame_scores], face_detected_ratio=0.97,
        speech_ratio=0.8, usable_seconds=5.2, duration_s=frames / FPS, clip={"name": "some clip.mp4", "frames": frames},
        profile="alice", calibration={"threshold": threshold, "false_alarm_rate": 0.05, "method": "test",
                                      "genuine_scores": rng.normal(0.8, 0.1, 40).round(4).tolist(),
                                      "score_percentile": 97.5},
        trajectories=curves, speech=[int(i % 50 < 35) for i in range(frames)],
        waveform=rng.random(frames).round(3).tolist(), warnings=["a warning"], extras=extras or {},
        settings={"corrupt": "blur:3", "detector": detector})


def trace_names(figure) -> list[str]:
    return [trace.name for trace in figure.data]


def test_genuine_distribution_shows_histogram_threshold_and_score():
    report = make_report()
    figure = plots.genuine_distribution_figure(report)
    histogram = [t for t in figure.data if t.type == "histogram"]
    assert len(histogram) == 1 and len(histogram[0].x) == 40
    lines = {round(shape.x0, 6) for shape in figure.layout.shapes}
    assert lines == {round(report.threshold, 6), round(report.score, 6)}


def test_genuine_distribution_without_calibration_says_so():
    report = make_report(threshold=float("nan"))
    report.calibration = {}
    figure = plots.genuine_distribution_figure(report)
    assert not figure.data
    assert "no genuine-score distribution" in figure.layout.annotations[0].text


def test_frame_score_figure_shades_the_segments_it_is_given():
    report = make_report()
    segments = ui.suspicious_segments(report)
    assert segments == [(3.0, 5.0)]  # frames 75..124 at 25 fps
    figure = plots.frame_score_figure(report, segments)
    rectangles = [s for s in figure.layout.shapes if s.type == "rect"]
    assert [(r.x0, r.x1) for r in rectangles] == segments
    curve = next(t for t in figure.data if t.name == "per-frame score")
    assert len(curve.x) == 150 and curve.x[-1] == pytest.approx(149 / FPS)
    assert curve.y[0] is None and curve.y[80] == pytest.approx(1.4)
    assert any(s.type == "line" and s.y0 == pytest.approx(1.0) for s in figure.layout.shapes)  # threshold


def test_frame_score_figure_without_scores_explains():
    report = make_report()
    report.frame_scores = [None] * 150
    figure = plots.frame_score_figure(report)
    assert "enough visible face and speech" in figure.layout.annotations[0].text


def test_trajectory_figure_has_one_row_per_channel_plus_audio():
    report = make_report()
    figure = plots.trajectory_figure(report, ["jawOpen", "headYaw", "notAChannel"])
    titles = [a.text for a in figure.layout.annotations]
    assert titles[:2] == ["jawOpen", "headYaw"] and "audio" in titles[2]
    observed = [t for t in figure.data if t.name == "observed"]
    generated = [t for t in figure.data if t.name == "generated"]
    assert len(observed) == len(generated) == 2
    assert observed[0].y[5] == pytest.approx(report.trajectories["observed"]["jawOpen"][5])
    assert generated[1].y[5] == pytest.approx(report.trajectories["generated"]["headYaw"][5])
    assert sum(t.showlegend is not False for t in observed) == 1  # one legend entry, not one per row
    speech = next(t for t in figure.data if t.name == "speech detected")
    assert speech.y[0] > 0 and speech.y[40] == 0  # frames 35..49 of every 50 are silent


def test_trajectory_figure_for_a_detector_without_trajectories():
    report = make_report(detector="sync", trajectories=False)
    figure = plots.trajectory_figure(report, ["jawOpen"])
    assert not figure.data and "does not model expressions" in figure.layout.annotations[0].text


def test_av_consistency_figure_reads_the_fau_extras():
    consistency = list(np.linspace(0.2, 0.9, 150))
    report = make_report(detector="fau", trajectories=False, threshold=0.5, extras={"av_consistency": consistency})
    figure = plots.av_consistency_figure(report)
    assert list(figure.data[0].y) == pytest.approx(consistency)
    assert plots.av_consistency_figure(make_report()).layout.annotations[0].text.startswith("No FauForensics")


def test_figures_serialise_to_json_without_nan():
    report = make_report()
    for figure in (plots.genuine_distribution_figure(report), plots.frame_score_figure(report),
                   plots.trajectory_figure(report, ui.default_channels("Head pose"))):
        text = figure.to_json()
        assert "NaN" not in text
        assert json.loads(text)["layout"]["font"]["family"].startswith("DejaVu Sans")


def test_report_summary_and_markdown_explain_every_number():
    report = make_report(extras={"identity_ratio": [0.97, None, 0.99], "timing_ratio": [0.8, 0.9, None]})
    summary = ui.report_summary(report)
    assert summary["verdict"] == report.verdict and summary["threshold"] == 1.0
    assert summary["windows_scored"] == 3 and summary["suspicious_segments_s"] == [(3.0, 5.0)]
    text = ui.report_markdown(report)
    for row in text.splitlines():
        if row.startswith("| ") and not row.startswith("| |"):
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert len(cells) == 3 and len(cells[2].split()) >= 5, row  # a value and a sentence about it
    assert "What it does not prove" in text and "a warning" in text and "blur:3" in text
    assert "| identity ratio | 0.980 |" in text and "| timing ratio | 0.850 |" in text
    assert "identity ratio: 0.9800  timing ratio: 0.8500 (means over windows)" in report.summary_lines()
    assert "identity ratio" not in "\n".join(make_report().summary_lines())
    fau = ui.report_markdown(make_report(detector="fau", extras={"audio_offset": {"frames": -4, "milliseconds": -160,
                                                                                  "margin": 1.2, "noticeable": True}}))
    assert "| audio offset | -160 ms |" in fau


def test_suspicious_segments_ignore_blips_and_missing_threshold():
    report = make_report(high=slice(60, 63))  # 3 frames = 0.12 s
    assert ui.suspicious_segments(report) == []
    assert ui.suspicious_segments(make_report(threshold=float("nan"))) == []


def test_corruption_spec_from_slider_levels():
    assert ui.corruption_spec({"jpeg": 2, "blur": 3, "noise": 0, "audio-noise": None}) == "blur:3,jpeg:2"
    assert ui.corruption_spec({}) == ""
    with pytest.raises(ui.InputError):
        ui.corruption_spec({"blur": 7})


def test_write_report_files(tmp_path):
    report = make_report()
    json_path, csv_path = ui.write_report_files(report, tmp_path)
    data = json.loads(json_path.read_text())
    assert data["verdict"] == report.verdict and data["settings"]["corrupt"] == "blur:3"
    rows = csv_path.read_text().splitlines()
    assert rows[0].startswith("frame,time_s,score") and len(rows) == 151
    assert json_path.name == "some_clip_exam_blur-3_report.json"


def test_cancel_flags_stop_only_their_session():
    flags = session.CancelFlags()
    mine, other = flags.start("a"), flags.start("b")
    reports = []
    progress = session.cancellable(lambda f, m: reports.append(f), mine)
    progress(0.1, "x")
    assert flags.cancel("a") and not other.is_set()
    with pytest.raises(session.Cancelled):
        progress(0.2, "y")
    assert reports == [0.1]
    flags.finish("a")
    assert not flags.cancel("a")


def test_cancel_while_queued_stops_the_enrollment_when_it_starts():
    flags = session.CancelFlags()
    waiting = flags.start("a")
    assert flags.start("a") is waiting  # a second click before the work started keeps the flag
    assert flags.cancel("a")
    with pytest.raises(session.Cancelled):
        session.cancellable(lambda f, m: None, flags.flag("a"))(0.0, "starting")
    assert not flags.start("a").is_set()  # the next enrollment starts afresh


def test_session_files_are_separate_and_removed(tmp_path):
    files = session.SessionFiles(tmp_path)
    a, b = files.folder("abc"), files.folder("../x y")
    assert a != b and a.parent == tmp_path and b.parent == tmp_path
    (a / "f.txt").write_text("1")
    files.remove("abc")
    assert not a.exists() and b.exists()
    with pytest.raises(ui.InputError, match="session has ended"):
        files.folder("abc")  # late work for a closed tab leaves nothing behind
    assert not a.exists() and files.folder("../x y") == b
    a.mkdir()  # work that began before the tab closed wrote into the folder again
    assert files.discard_if_ended("abc") and not a.exists()
    assert not files.discard_if_ended("../x y") and b.exists()
