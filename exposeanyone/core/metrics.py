"""Detection metrics without scikit-learn: ROC AUC, ROC curves, thresholds at a false-alarm rate.

Conventions shared by every function here:

- A score is **higher for more likely fake**; a clip is flagged as fake when ``score > threshold``.
- **NaN scores are excluded** (a clip the detector could not score has no rank), and :func:`auc_summary`
  reports how many were excluded so that a report can say so. ``nan_policy="raise"`` refuses them instead.
  Infinite scores are kept: they still order.
- An AUC needs both classes: with no finite real or no finite fake score it is NaN, never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

NanPolicy = Literal["omit", "raise"]


def finite_scores(scores, nan_policy: NanPolicy = "omit") -> np.ndarray:
    """``scores`` as a 1-D float array without its NaN entries (or an error under ``"raise"``)."""
    if nan_policy not in ("omit", "raise"):
        raise ValueError(f"unknown nan_policy {nan_policy!r}; use 'omit' or 'raise'")
    values = np.asarray(scores, dtype=float).reshape(-1)
    nan = np.isnan(values)
    if nan.any() and nan_policy == "raise":
        raise ValueError(f"{int(nan.sum())} of {len(values)} scores are NaN")
    return values[~nan]


def roc_auc(scores_real, scores_fake, nan_policy: NanPolicy = "omit") -> float:
    """Probability that a fake outscores a real clip, ties counting one half (Mann-Whitney U / n_r n_f).

    Args:
        scores_real: ``(n_real,)`` scores of genuine clips.
        scores_fake: ``(n_fake,)`` scores of fake clips.
        nan_policy: ``"omit"`` drops NaN scores, ``"raise"`` refuses them.
    Returns:
        The AUC in [0, 1]; NaN when either class has no finite score.
    """
    real = np.sort(finite_scores(scores_real, nan_policy))
    fake = finite_scores(scores_fake, nan_policy)
    if len(real) == 0 or len(fake) == 0:
        return float("nan")
    below = np.searchsorted(real, fake, side="left")
    tied = np.searchsorted(real, fake, side="right") - below
    return float((below.sum() + 0.5 * tied.sum()) / (len(real) * len(fake)))


def roc_curve(scores_real, scores_fake, nan_policy: NanPolicy = "omit"
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve through every distinct score.

    A clip is flagged when ``score >= threshold`` at each point of the curve; the first threshold is
    ``+inf`` (nothing flagged), the last is the lowest score (everything flagged). The trapezoidal area
    under ``(fpr, tpr)`` equals :func:`roc_auc`.

    Returns:
        ``(fpr, tpr, thresholds)``, each ``(points,)``, thresholds decreasing.
    """
    real = finite_scores(scores_real, nan_policy)
    fake = finite_scores(scores_fake, nan_policy)
    if len(real) == 0 or len(fake) == 0:
        raise ValueError("a ROC curve needs at least one finite real and one finite fake score")
    thresholds = np.unique(np.concatenate([real, fake]))[::-1]
    real_sorted, fake_sorted = np.sort(real), np.sort(fake)
    flagged_real = len(real) - np.searchsorted(real_sorted, thresholds, side="left")
    flagged_fake = len(fake) - np.searchsorted(fake_sorted, thresholds, side="left")
    fpr = np.concatenate([[0.0], flagged_real / len(real)])
    tpr = np.concatenate([[0.0], flagged_fake / len(fake)])
    return fpr, tpr, np.concatenate([[np.inf], thresholds])


def threshold_at_false_alarm_rate(genuine_scores, rate: float, method: str = "linear") -> float:
    """The ``1 - rate`` empirical quantile of genuine scores: the threshold meant to flag ``rate`` of them.

    ``method`` is :func:`numpy.quantile`'s interpolation. The default ``"linear"`` is numpy's usual
    percentile (as in ``research/baselines.md``); on few scores it can flag up to ``1 / n`` more than
    ``rate`` of the very scores it was computed from. ``"higher"`` always picks an observed score and
    flags at most ``rate`` of them (a conservative threshold). NaN scores are ignored.
    """
    if not 0.0 < rate < 1.0:
        raise ValueError(f"false-alarm rate must be in (0, 1), got {rate}")
    genuine = finite_scores(genuine_scores)
    if len(genuine) == 0:
        raise ValueError("a threshold needs at least one finite genuine score")
    return float(np.quantile(genuine, 1.0 - rate, method=method))


def false_alarm_rate(genuine_scores, threshold: float) -> float:
    """Share of genuine scores flagged as fake (``score > threshold``); NaN scores are ignored.

    Returns NaN when there is no finite genuine score.
    """
    genuine = finite_scores(genuine_scores)
    return float(np.mean(genuine > threshold)) if len(genuine) else float("nan")


def auc_confidence_interval(scores_real, scores_fake, n: int = 1000, seed: int = 0,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`roc_auc`, resampling real and fake scores separately.

    Stratified resampling keeps both classes in every replicate, so each replicate has an AUC.
    NaN scores are dropped first; with no finite score in a class the interval is ``(nan, nan)``.

    Returns:
        ``(low, high)`` bounds of the central ``level`` interval.
    """
    real = finite_scores(scores_real)
    fake = finite_scores(scores_fake)
    if len(real) == 0 or len(fake) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    replicates = np.array([
        roc_auc(rng.choice(real, len(real)), rng.choice(fake, len(fake))) for _ in range(n)
    ])
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class AucSummary:
    """An AUC with its bootstrap interval and the counts behind it, ready for a report."""

    auc: float
    ci_low: float
    ci_high: float
    n_real: int
    """Finite real scores used."""
    n_fake: int
    """Finite fake scores used."""
    n_real_nan: int
    """Real scores excluded because they were NaN."""
    n_fake_nan: int
    """Fake scores excluded because they were NaN."""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def auc_summary(scores_real, scores_fake, n_bootstrap: int = 1000, seed: int = 0,
                level: float = 0.95) -> AucSummary:
    """:func:`roc_auc` and :func:`auc_confidence_interval`, with how many NaN scores were excluded."""
    real = np.asarray(scores_real, dtype=float).reshape(-1)
    fake = np.asarray(scores_fake, dtype=float).reshape(-1)
    low, high = auc_confidence_interval(real, fake, n=n_bootstrap, seed=seed, level=level)
    real_nan, fake_nan = int(np.isnan(real).sum()), int(np.isnan(fake).sum())
    return AucSummary(auc=roc_auc(real, fake), ci_low=low, ci_high=high,
                      n_real=len(real) - real_nan, n_fake=len(fake) - fake_nan,
                      n_real_nan=real_nan, n_fake_nan=fake_nan)
