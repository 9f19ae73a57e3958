"""Plotly figures of a :class:`ScoreReport`: they draw what the report holds and compute nothing.

Every figure puts time in seconds on the x axis, so the charts of one clip line up with each other and
with the annotated video. Anything derived (suspicious segments, the channels to show) is passed in.
"""
from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core.jsonable import is_finite
from ..report import ScoreReport

FONT_FAMILY = "DejaVu Sans, Liberation Sans, sans-serif"
"""Fonts present offline on the machines the app runs on (no web fonts)."""
OBSERVED_COLOUR = "#1f77b4"
GENERATED_COLOUR = "#ff7f0e"
SCORE_COLOUR = "#2c3e50"
THRESHOLD_COLOUR = "#d62728"
GENUINE_COLOUR = "#2ca02c"
SPEECH_COLOUR = "rgba(44, 160, 44, 0.18)"
SUSPICIOUS_COLOUR = "rgba(214, 39, 40, 0.15)"
WAVEFORM_COLOUR = "#7f7f7f"
ROW_HEIGHT_PX = 150


def _layout(figure: go.Figure, title: str, height: int, subplot_titles: bool = False) -> go.Figure:
    """Shared look; with ``subplot_titles`` the legend moves up a line so it does not cover the first title."""
    top = 90 if subplot_titles else 60
    plot_height = max(1, height - top - 50)
    figure.update_layout(title={"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
                         height=height, margin={"l": 70, "r": 20, "t": top, "b": 50},
                         font={"family": FONT_FAMILY, "size": 12}, template="plotly_white",
                         legend={"orientation": "h", "yanchor": "bottom", "xanchor": "right", "x": 1.0,
                                 "y": 1.0 + (28 if subplot_titles else 0) / plot_height},
                         hovermode="x unified")
    return figure


def _times(count: int, fps: float) -> list[float]:
    return [round(i / fps, 3) for i in range(count)]


def message_figure(message: str, title: str = "") -> go.Figure:
    """An empty chart that says why there is nothing to draw."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                          font={"size": 14})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return _layout(figure, title, 260)


def genuine_distribution_figure(report: ScoreReport) -> go.Figure:
    """Histogram of the person's held-out genuine scores, with their threshold and this clip's score."""
    genuine = [v for v in report.calibration.get("genuine_scores", []) if is_finite(v)]
    title = "This clip's score among the person's genuine scores"
    if not genuine and not is_finite(report.threshold):
        return message_figure(f"The '{report.detector}' detector has no genuine-score distribution "
                              "(it was not calibrated on an enrolled person).", title)
    figure = go.Figure()
    if genuine:
        figure.add_trace(go.Histogram(x=genuine, name="genuine reference windows (held out)",
                                      marker_color=GENUINE_COLOUR, opacity=0.7, nbinsx=min(40, max(8, len(genuine)))))
    if is_finite(report.threshold):
        figure.add_vline(x=report.threshold, line={"color": THRESHOLD_COLOUR, "dash": "dash", "width": 2},
                         annotation_text=f"threshold {report.threshold:.3f}", annotation_position="bottom left")
    if is_finite(report.score):
        figure.add_vline(x=report.score, line={"color": SCORE_COLOUR, "width": 3},
                         annotation_text=f"this clip {report.score:.3f}", annotation_position="top right")
    figure.update_xaxes(title_text="score (higher = more likely fake)")
    figure.update_yaxes(title_text="reference windows")
    figure.update_layout(hovermode="closest", bargap=0.05)
    return _layout(figure, title, 330)


def frame_score_figure(report: ScoreReport, suspicious: Sequence[tuple[float, float]] = ()) -> go.Figure:
    """The per-frame score curve with window scores, the threshold and shaded suspicious segments.

    Args:
        suspicious: ``(start_s, end_s)`` stretches to shade (e.g. where frames score above the threshold).
    """
    title = "Score over time (above the red line = unlike the person's genuine footage)"
    if not any(is_finite(v) for v in report.frame_scores):
        return message_figure("No part of this clip had enough visible face and speech to be scored.", title)
    figure = go.Figure()
    for start_s, end_s in suspicious:
        figure.add_vrect(x0=start_s, x1=end_s, fillcolor=SUSPICIOUS_COLOUR, line_width=0, layer="below")
    if suspicious:  # a legend entry for the shading, which vrects do not get
        figure.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="suspicious (above threshold)",
                                    marker={"symbol": "square", "size": 12, "color": SUSPICIOUS_COLOUR}))
    figure.add_trace(go.Scatter(x=_times(len(report.frame_scores), report.fps), y=report.frame_scores,
                                mode="lines", name="per-frame score", line={"color": SCORE_COLOUR, "width": 2}))
    centres = [(start + report.window_length / 2) / report.fps for start in report.window_starts]
    figure.add_trace(go.Scatter(x=centres, y=report.window_scores, mode="markers", name="window score (4 s)",
                                marker={"color": SCORE_COLOUR, "size": 7, "symbol": "circle-open"}))
    if is_finite(report.threshold):
        figure.add_hline(y=report.threshold, line={"color": THRESHOLD_COLOUR, "dash": "dash", "width": 2},
                         annotation_text="person's threshold", annotation_position="top left")
    figure.update_xaxes(title_text="time (s)", range=[0, report.duration_s])
    figure.update_yaxes(title_text="score")
    return _layout(figure, title, 330)


def trajectory_figure(report: ScoreReport, channels: Sequence[str]) -> go.Figure:
    """Observed vs generated expression channels, one row each, over the audio envelope and speech mask."""
    title = "What the face did (observed) vs what the person's model expects from the audio (generated)"
    observed = report.trajectories.get("observed", {})
    generated = report.trajectories.get("generated", {})
    shown = [c for c in channels if c in observed or c in generated]
    if not shown:
        return message_figure(f"The '{report.detector}' detector does not model expressions; "
                              "choose the exam detector to see trajectories." if not observed
                              else "Choose at least one expression channel.", title)
    rows = len(shown) + 1
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.25 / rows,
                           subplot_titles=[*shown, "audio: loudness and detected speech"])
    frames = max(len(next(iter(observed.values()), [])), len(report.speech), len(report.waveform))
    times = _times(frames, report.fps)
    for row, channel in enumerate(shown, start=1):
        if channel in observed:
            figure.add_trace(go.Scatter(x=times, y=observed[channel], mode="lines", name="observed",
                                        legendgroup="observed", showlegend=row == 1,
                                        line={"color": OBSERVED_COLOUR, "width": 2}), row=row, col=1)
        if channel in generated:
            figure.add_trace(go.Scatter(x=times, y=generated[channel], mode="lines", name="generated",
                                        legendgroup="generated", showlegend=row == 1,
                                        line={"color": GENERATED_COLOUR, "width": 2, "dash": "dash"}), row=row, col=1)
    _add_audio_row(figure, report, rows)
    figure.update_xaxes(title_text="time (s)", row=rows, col=1)
    return _layout(figure, title, 120 + ROW_HEIGHT_PX * rows, subplot_titles=True)


def _add_audio_row(figure: go.Figure, report: ScoreReport, row: int) -> None:
    peak = max([v for v in report.waveform if v is not None] + [1e-6])
    if report.speech:
        figure.add_trace(go.Scatter(x=_times(len(report.speech), report.fps),
                                    y=[peak if s else 0 for s in report.speech], mode="lines", name="speech detected",
                                    line={"width": 0, "shape": "hv"}, fill="tozeroy", fillcolor=SPEECH_COLOUR),
                         row=row, col=1)
    if report.waveform:
        figure.add_trace(go.Scatter(x=_times(len(report.waveform), report.fps), y=report.waveform, mode="lines",
                                    name="audio peak level", line={"color": WAVEFORM_COLOUR, "width": 1}),
                         row=row, col=1)
    figure.update_yaxes(title_text="level", row=row, col=1)


def av_consistency_figure(report: ScoreReport) -> go.Figure:
    """FauForensics: each frame's audio-visual match and the windows' timing score."""
    title = "FauForensics: does each face frame match its own sound?"
    consistency = report.extras.get("av_consistency")
    if report.detector != "fau" or not consistency:
        return message_figure("No FauForensics result for this clip (the model is not installed or the clip "
                              "had no usable 1 s window).", title)
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                           subplot_titles=["audio-visual consistency per frame (1 = face matches its sound)",
                                           "score per frame: fake evidence with its own sound minus with sound "
                                           "moved 1-2.6 s (below 0: own sound fits better)"])
    figure.add_trace(go.Scatter(x=_times(len(consistency), report.fps), y=consistency, mode="lines",
                                name="audio-visual consistency", line={"color": OBSERVED_COLOUR, "width": 2}),
                     row=1, col=1)
    figure.add_trace(go.Scatter(x=_times(len(report.frame_scores), report.fps), y=report.frame_scores,
                                mode="lines", name="score", line={"color": SCORE_COLOUR, "width": 2}),
                     row=2, col=1)
    if is_finite(report.threshold):
        figure.add_hline(y=report.threshold, line={"color": THRESHOLD_COLOUR, "dash": "dash"}, row=2, col=1)
    figure.update_yaxes(range=[0, 1.02], row=1, col=1)
    figure.update_yaxes(title_text="logit difference", row=2, col=1)
    figure.update_xaxes(title_text="time (s)", row=2, col=1)
    return _layout(figure, title, 490, subplot_titles=True)
