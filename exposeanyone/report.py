"""The score report: everything shown about one checked clip, as one JSON-ready object."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .core.jsonable import json_floats
from .detectors.registry import explanation, score_components
from .media.track import EXPRESSION_NAMES

LIMITS_NOTE = ("A score is evidence, not proof: it compares this clip with the reference footage of the enrolled "
               "person only, needs audible speech and a visible face, and can be thrown off by a very different "
               "recording set-up (camera, language, emotion) than the reference.")


@dataclass
class ScoreReport:
    """The result of checking one clip with one detector."""

    detector: str
    score: float
    threshold: float
    verdict: str
    reason: str
    fps: float
    window_starts: list[int]
    window_length: int
    window_scores: list[float | None]
    frame_scores: list[float | None]
    face_detected_ratio: float
    speech_ratio: float
    usable_seconds: float
    duration_s: float
    clip: dict
    profile: str | None = None
    calibration: dict = field(default_factory=dict)
    trajectories: dict = field(default_factory=dict)
    speech: list[int] = field(default_factory=list)
    waveform: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    extras: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def explanation(self) -> str:
        """What the detector's score means (from its entry in the detector registry)."""
        return explanation(self.detector)

    def to_json(self) -> dict:
        data = asdict(self)
        data["score"] = None if not math.isfinite(self.score) else self.score
        data["threshold"] = None if not math.isfinite(self.threshold) else self.threshold
        data["explanation"] = self.explanation
        data["limits"] = LIMITS_NOTE
        return data

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    def frames_csv(self) -> str:
        """Per-frame table: time, score, speech, and observed/generated jawOpen when present."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        observed = self.trajectories.get("observed", {}).get("jawOpen")
        generated = self.trajectories.get("generated", {}).get("jawOpen")
        writer.writerow(["frame", "time_s", "score", "speech", "observed_jawOpen", "generated_jawOpen"])
        for i, value in enumerate(self.frame_scores):
            writer.writerow([i, round(i / self.fps, 3), "" if value is None else value,
                             self.speech[i] if i < len(self.speech) else "",
                             observed[i] if observed else "", generated[i] if generated else ""])
        return buffer.getvalue()

    def component_means(self) -> dict[str, float]:
        """The mean over scored windows of each ingredient of the score the detector reported
        (:func:`~exposeanyone.detectors.registry.score_components`)."""
        means = {}
        for key in score_components(self.detector):
            values = [float(v) for v in self.extras.get(key) or [] if v is not None and math.isfinite(float(v))]
            if values:
                means[key] = sum(values) / len(values)
        return means

    def summary_lines(self) -> list[str]:
        score = "n/a" if not math.isfinite(self.score) else f"{self.score:.4f}"
        threshold = "n/a" if not math.isfinite(self.threshold) else f"{self.threshold:.4f}"
        lines = [f"verdict: {self.verdict.upper()} ({self.reason})",
                 f"score: {score}  threshold: {threshold}  detector: {self.detector}"
                 + (f"  profile: {self.profile}" if self.profile else ""),
                 f"clip: {self.clip.get('name')}, {self.duration_s:.1f} s at {self.fps:g} fps; face in "
                 f"{self.face_detected_ratio:.0%} of frames, speech in {self.speech_ratio:.0%}; "
                 f"{self.usable_seconds:.1f} s usable"]
        components = self.component_means()
        if components:
            labels = score_components(self.detector)
            lines.append("  ".join(f"{labels[key][0]}: {value:.4f}" for key, value in components.items())
                         + " (means over windows)")
        lines += [f"warning: {w}" for w in self.warnings]
        return lines


def trajectories_by_channel(curves: dict[str, np.ndarray]) -> dict[str, dict[str, list]]:
    """``{"observed": (frames, 58), ...}`` to ``{"observed": {channel: [values]}}`` (NaN as None)."""
    result = {}
    for kind, array in curves.items():
        array = np.asarray(array)
        result[kind] = {name: json_floats(array[:, i], digits=5) for i, name in enumerate(EXPRESSION_NAMES[: array.shape[1]])}
    return result
