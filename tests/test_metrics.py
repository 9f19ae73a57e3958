import numpy as np
import pytest

from exposeanyone.core.metrics import (
    auc_confidence_interval,
    auc_summary,
    false_alarm_rate,
    roc_auc,
    roc_curve,
    threshold_at_false_alarm_rate,
)


def test_auc_perfect_reversed_and_chance():
    assert roc_auc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert roc_auc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert roc_auc([1.0, 1.0], [1.0]) == 0.5


def test_auc_hand_computed_with_ties():
    # pairs (fake, real): 2>1, 2=2, 2<3 ; 3>1, 3>2, 3=3  -> (1 + .5 + 0 + 1 + 1 + .5) / 6
    assert roc_auc([1, 2, 3], [2, 3]) == pytest.approx(4.0 / 6.0)


def test_auc_matches_pairwise_definition_on_random_scores():
    rng = np.random.default_rng(3)
    real = rng.integers(0, 6, 40).astype(float)  # many ties
    fake = rng.integers(2, 8, 30).astype(float)
    pairwise = np.mean((fake[:, None] > real[None]) + 0.5 * (fake[:, None] == real[None]))
    assert roc_auc(real, fake) == pytest.approx(pairwise)


def test_auc_nan_policy():
    assert roc_auc([0.1, np.nan], [0.3, np.nan]) == 1.0
    with pytest.raises(ValueError):
        roc_auc([0.1, np.nan], [0.3], nan_policy="raise")
    assert np.isnan(roc_auc([np.nan], [0.3]))
    assert np.isnan(roc_auc([0.1], []))


def test_auc_keeps_infinite_scores():
    assert roc_auc([0.0, -np.inf], [np.inf, 1.0]) == 1.0


def test_auc_summary_reports_excluded_counts():
    summary = auc_summary([0.1, 0.2, np.nan], [0.5, np.nan, np.nan, 0.6], n_bootstrap=50)
    assert summary.auc == 1.0
    assert (summary.n_real, summary.n_fake, summary.n_real_nan, summary.n_fake_nan) == (2, 2, 1, 2)
    assert summary.to_dict()["n_fake_nan"] == 2


def test_roc_curve_hand_computed():
    fpr, tpr, thresholds = roc_curve([0.1, 0.4], [0.35, 0.8])
    np.testing.assert_array_equal(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 0.5, 1, 1])


def test_roc_curve_area_equals_auc():
    rng = np.random.default_rng(0)
    real = np.round(rng.normal(0, 1, 50), 1)
    fake = np.round(rng.normal(0.7, 1, 35), 1)
    fpr, tpr, _ = roc_curve(real, fake)
    area = np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
    assert area == pytest.approx(roc_auc(real, fake))


def test_threshold_linear_interpolation_hand_computed():
    genuine = np.arange(1.0, 21.0)  # 1..20
    # 0.95 quantile, linear: position 0.95 * 19 = 18.05 -> 19 + 0.05 * (20 - 19)
    assert threshold_at_false_alarm_rate(genuine, 0.05) == pytest.approx(19.05)
    assert false_alarm_rate(genuine, 19.05) == pytest.approx(0.05)


def test_threshold_higher_method_never_exceeds_rate_in_sample():
    rng = np.random.default_rng(1)
    for n in (5, 10, 13, 37):
        genuine = rng.normal(size=n)
        threshold = threshold_at_false_alarm_rate(genuine, 0.05, method="higher")
        assert false_alarm_rate(genuine, threshold) <= 0.05
    small = np.arange(10.0)
    linear = threshold_at_false_alarm_rate(small, 0.05)
    assert false_alarm_rate(small, linear) == pytest.approx(0.1)  # the documented 1/n overshoot


def test_threshold_ignores_nan_and_rejects_bad_input():
    assert threshold_at_false_alarm_rate([1.0, 2.0, np.nan], 0.5) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        threshold_at_false_alarm_rate([1.0, 2.0], 0.0)
    with pytest.raises(ValueError):
        threshold_at_false_alarm_rate([np.nan], 0.05)


def test_false_alarm_rate_is_strictly_above_threshold():
    assert false_alarm_rate([1.0, 2.0, 3.0, np.nan], 2.0) == pytest.approx(1 / 3)
    assert np.isnan(false_alarm_rate([np.nan], 0.0))


def test_bootstrap_interval_brackets_auc_and_is_deterministic():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(0, 1, 30), rng.normal(1, 1, 30)
    low, high = auc_confidence_interval(real, fake, n=300, seed=5)
    assert low < roc_auc(real, fake) < high
    assert (low, high) == auc_confidence_interval(real, fake, n=300, seed=5)
    assert auc_confidence_interval(real, fake, n=300, seed=6) != (low, high)
    narrow = auc_confidence_interval(np.tile(real, 10), np.tile(fake, 10), n=300, seed=5)
    assert narrow[1] - narrow[0] < high - low


def test_against_sklearn_when_available():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    real, fake = np.round(rng.normal(0, 1, 60), 1), np.round(rng.normal(0.5, 1, 40), 1)
    labels = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    scores = np.r_[real, fake]
    assert roc_auc(real, fake) == pytest.approx(metrics.roc_auc_score(labels, scores))
    fpr, tpr, _ = roc_curve(real, fake)
    sk_fpr, sk_tpr, _ = metrics.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
