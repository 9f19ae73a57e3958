"""The score report: everything shown about one checked clip, as one JSON-ready object."""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .core.jsonable import json_floats
from .media.track import EXPRESSION_NAMES

EXPLANATIONS = {
    "exam": ("The score multiplies two ratios of the EXAM model's reconstruction errors. Identity: its error with "
             "the person's adapter divided by its error without it (below 1: this person's way of talking explains "
             "the face better than a generic talker's). Timing: its error on the lips with the clip's own sound "
             "divided by its error with the sound moved by 1.4-2 s (below 1: the face follows its own sound). "
             "Above the threshold: the face is explained worse than on the person's genuine footage."),
    "fau": ("The score is how much more the FauForensics model believes face and voice do not belong together "
            "with the clip's own sound than with the same sound moved by 1-2.6 s (a difference of log-odds, "
            "averaged over 1-second windows; each sound taken at its best alignment within 2 frames, so a "
            "small constant offset does not count against a clip). Genuine speech scores well below 0: its own "
            "sound fits it best. At or above 0 the face fits its own sound no better than sound it did not make. "
            "No enrollment."),
    "combined": ("The score averages EXAM's and FauForensics' window scores, each measured in spreads of that "
                 "detector's scores on the person's own reference footage (0: as genuine as the reference)."),
    "sync": "The score is minus the best correlation between mouth opening and loudness (a lip-sync check).",
    "ridge": ("The score is a personal linear audio-to-expression model's error divided by a generic one's "
              "(a simple baseline of the EXAM idea)."),
}
SCORE_COMPONENTS = {
    "identity_ratio": ("identity ratio", "error with the person's tokens ÷ without them; below 1: their way of "
                                         "talking explains the face"),
    "timing_ratio": ("timing ratio", "lip error with the clip's own sound ÷ with the sound moved 1.4-2 s; below 1: "
                                     "the face follows its own sound"),
    "fake_probability": ("fake probability, own sound", "the model's raw belief that face and voice do not belong "
                                                        "together; it shifts with camera and person, hence the score "
                                                        "compares it with moved sound"),
}
"""Per-window ingredients a detector may put in ``extras``: key -> (label, what it means)."""
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
        return EXPLANATIONS.get(self.detector, "")

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
        """The mean over scored windows of each :data:`SCORE_COMPONENTS` entry the detector reported."""
        means = {}
        for key in SCORE_COMPONENTS:
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
            lines.append("  ".join(f"{SCORE_COMPONENTS[key][0]}: {value:.4f}" for key, value in components.items())
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
