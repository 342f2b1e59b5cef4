"""au_fa_fr against the course's literal O(N^2) definition, hand-computed cases, invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kws.metrics import au_fa_fr, fa_fr_curve, threshold_for_false_alarms

# np.trapz was renamed np.trapezoid in numpy 2.0 (and later removed); the integral is the same.
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


def course_au_fa_fr(probs: np.ndarray, labels: np.ndarray) -> float:
    """The course's definition, literally: one pass over all N per threshold (O(N^2))."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    n = len(probs)
    thresholds = [0.0, *sorted(probs), 1.0]
    fa, fr = [], []
    for threshold in thresholds:
        preds = probs >= threshold
        fa.append(np.sum(preds & (labels == 0)) / n)
        fr.append(np.sum(~preds & (labels == 1)) / n)
    return float(-_trapezoid(np.array(fr, dtype=np.float64), x=np.array(fa, dtype=np.float64)))


def _random_case(rng: np.random.Generator, n: int, pattern: str) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 2, size=n)
    # Scores loosely correlated with the labels so the curve is neither trivial nor random.
    scores = np.clip(rng.normal(0.3 + 0.4 * labels, 0.25), 0.0, 1.0)
    if pattern == "continuous":
        probs = scores
    elif pattern == "round1":
        probs = np.round(scores, 1)
    elif pattern == "round2":
        probs = np.round(scores, 2)
    elif pattern == "all_equal":
        probs = np.full(n, rng.choice([0.0, 0.5, 1.0]))
    elif pattern == "zeros_and_ones":
        probs = rng.choice([0.0, 1.0, 0.5, rng.random()], size=n)
    elif pattern == "single_class":
        labels = np.full(n, rng.integers(0, 2))
        probs = np.round(scores, 1)
    else:
        raise AssertionError(pattern)
    return probs, labels


PATTERNS = ["continuous", "round1", "round2", "all_equal", "zeros_and_ones", "single_class"]


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("seed", range(25))
def test_matches_course_definition(pattern: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n in (1, 2, 3, 5, 17, 200):
        probs, labels = _random_case(rng, n, pattern)
        assert au_fa_fr(probs, labels) == pytest.approx(course_au_fa_fr(probs, labels), abs=1e-12)


def test_hand_computed_four_clips() -> None:
    # probs (0.1, 0.4, 0.35, 0.8), labels (0, 0, 1, 1), N = 4. Thresholds and (FA, FR):
    #   0    -> all positive               (2/4, 0)
    #   0.1  -> all positive               (2/4, 0)
    #   0.35 -> 0.1 negative               (1/4, 0)    the negative 0.4 is still an alarm
    #   0.4  -> 0.1, 0.35 negative         (1/4, 1/4)  the keyword 0.35 is rejected
    #   0.8  -> only 0.8 positive          (0, 1/4)
    #   1    -> all negative               (0, 2/4)
    # Only FA in [0, 1/4] has FR > 0 under it: area = 1/4 * 1/4 = 1/16.
    probs, labels = [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]
    assert au_fa_fr(probs, labels) == 1 / 16
    fa, fr = fa_fr_curve(probs, labels)
    np.testing.assert_array_equal(fa, [0.5, 0.5, 0.25, 0.25, 0.0, 0.0])
    np.testing.assert_array_equal(fr, [0.0, 0.0, 0.0, 0.25, 0.25, 0.5])


def test_hand_computed_tie_gives_a_diagonal() -> None:
    # probs (0.5, 0.5), labels (0, 1): thresholds 0, 0.5, 0.5, 1 give (1/2, 0) three times,
    # then (0, 1/2). The tie moves FA and FR together: one trapezoid of width 1/2 and mean
    # height 1/4. The curve keeps the distinct thresholds 0, 0.5, 1 only.
    assert au_fa_fr([0.5, 0.5], [0, 1]) == 1 / 8
    fa, fr = fa_fr_curve([0.5, 0.5], [0, 1])
    np.testing.assert_array_equal(fa, [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(fr, [0.0, 0.0, 0.5])


def test_probability_one_is_positive_at_every_threshold() -> None:
    # ">= threshold" with a last threshold of 1: a negative scored exactly 1 is an alarm even
    # at t = 1, so the curve stops at FA = 1/N instead of 0. probs (1, 0.2), labels (0, 1):
    # t = 0 and 0.2 -> (1/2, 0); t = 1 -> (1/2, 1/2). The only step is vertical: area 0.
    assert au_fa_fr([1.0, 0.2], [0, 1]) == 0.0
    fa, fr = fa_fr_curve([1.0, 0.2], [0, 1])
    np.testing.assert_array_equal(fa, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(fr, [0.0, 0.0, 0.5])


def test_perfect_separation_is_zero() -> None:
    labels = np.array([0] * 7 + [1] * 3)
    probs = np.concatenate([np.linspace(0.0, 0.4, 7), np.linspace(0.6, 1.0, 3)])
    assert au_fa_fr(probs, labels) == 0.0


def test_inverted_perfect_classifier_reaches_the_maximum() -> None:
    # Every keyword clip below every other clip: FR climbs to P/N while FA stays at M/N, then
    # FA falls to 0 at FR = P/N, so the area is the whole rectangle (P/N) * (M/N).
    # Probabilities inside (0, 1): a negative at exactly 1 would stay an alarm at t = 1.
    labels = np.array([0] * 7 + [1] * 3)
    probs = np.concatenate([np.linspace(0.05, 0.4, 7), np.linspace(0.6, 0.95, 3)])
    assert au_fa_fr(1.0 - probs, labels) == pytest.approx(3 * 7 / 10**2, abs=1e-15)


def test_single_class_is_zero() -> None:
    probs = np.array([0.0, 0.3, 0.3, 1.0])
    assert au_fa_fr(probs, np.zeros(4)) == 0.0
    assert au_fa_fr(probs, np.ones(4)) == 0.0


def test_invariant_to_clip_order() -> None:
    rng = np.random.default_rng(0)
    probs, labels = _random_case(rng, 500, "round2")
    permutation = rng.permutation(500)
    assert au_fa_fr(probs[permutation], labels[permutation]) == pytest.approx(
        au_fa_fr(probs, labels), abs=1e-15
    )


def test_curve_is_monotone_and_spans_the_class_shares() -> None:
    rng = np.random.default_rng(1)
    probs, labels = _random_case(rng, 300, "round1")
    fa, fr = fa_fr_curve(probs, labels)
    assert fa.dtype == fr.dtype == np.float64
    assert np.all(np.diff(fa) <= 0) and np.all(np.diff(fr) >= 0)
    assert fa[0] == np.mean(labels == 0) and fr[0] == 0.0  # threshold 0: everything positive
    # Threshold 1: only clips scored exactly 1 stay positive.
    assert fa[-1] == np.mean((labels == 0) & (probs == 1.0))
    assert fr[-1] == np.mean((labels == 1) & (probs < 1.0))


def test_accepts_tensors_lists_and_arrays_alike() -> None:
    probs, labels = [0.2, 0.9, 0.4, 0.7, 0.4], [0, 1, 1, 0, 0]
    expected = course_au_fa_fr(np.array(probs), np.array(labels))
    assert au_fa_fr(probs, labels) == pytest.approx(expected, abs=1e-12)
    assert au_fa_fr(np.array(probs), np.array(labels, dtype=bool)) == pytest.approx(
        expected, abs=1e-12
    )
    # float32 tensors: compare with the definition on the same float32-rounded values.
    probs_t = torch.tensor(probs, dtype=torch.float32)
    assert au_fa_fr(probs_t, torch.tensor(labels)) == pytest.approx(
        course_au_fa_fr(probs_t.double().numpy(), np.array(labels)), abs=1e-12
    )


@pytest.mark.parametrize(
    ("probs", "labels", "message"),
    [
        ([0.1, 0.2], [0, 1, 1], "differ in length"),
        ([], [], "empty"),
        ([0.1, 0.2], [0, 2], "labels must be 0 or 1"),
        ([0.1, 0.2], [0, 0.5], "labels must be 0 or 1"),
        ([0.1, float("nan")], [0, 1], "NaN"),
        ([0.1, 1.5], [0, 1], r"\[0, 1\]"),
        ([-0.1, 0.5], [0, 1], r"\[0, 1\]"),
        ([[0.1, 0.2]], [[0, 1]], "1-D"),
    ],
)
def test_rejects_invalid_input(probs: list, labels: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        au_fa_fr(probs, labels)


def test_threshold_for_false_alarms_by_hand() -> None:
    probs = [0.9, 0.2, 0.7, 0.4, 0.4, 0.95, 0.1]
    labels = [1, 0, 0, 0, 0, 1, 0]  # negatives, highest first: 0.7, 0.4, 0.4, 0.2, 0.1
    zero = threshold_for_false_alarms(probs, labels)
    assert 0.7 < zero < 0.7 + 1e-15
    assert threshold_for_false_alarms(probs, labels, max_fa_rate=0.2) == np.nextafter(0.4, 1)
    # 0.4 (2 of 5 negatives) would admit both tied clips: 0.6 of them, over 0.5.
    assert threshold_for_false_alarms(probs, labels, max_fa_rate=0.5) == np.nextafter(0.4, 1)
    assert threshold_for_false_alarms(probs, labels, max_fa_rate=0.6) == np.nextafter(0.2, 1)
    assert threshold_for_false_alarms(probs, labels, max_fa_rate=1.0) == 0.0
    # The rule's promise, checked by counting: no more than the allowed negatives reach it.
    negatives = np.array([0.7, 0.4, 0.4, 0.2, 0.1])
    for rate in (0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0):
        threshold = threshold_for_false_alarms(probs, labels, max_fa_rate=rate)
        assert np.sum(negatives >= threshold) <= rate * len(negatives)
        if threshold > 0.0:  # and it is the lowest such: one float lower admits too many
            assert np.sum(negatives >= np.nextafter(threshold, 0)) > rate * len(negatives)


@pytest.mark.parametrize(
    ("probs", "labels", "rate", "message"),
    [
        ([0.3, 0.8], [1, 1], 0.0, "no negative"),
        ([0.3, 1.0], [1, 0], 0.0, "score 1.0"),
        ([0.3, 0.2], [1, 0], 1.5, "max_fa_rate"),
    ],
)
def test_threshold_for_false_alarms_refuses_what_it_cannot_meet(
    probs: list[float], labels: list[int], rate: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        threshold_for_false_alarms(probs, labels, max_fa_rate=rate)
