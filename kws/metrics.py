"""The course's quality metric, au_fa_fr: area under the false-reject vs false-alarm curve.

Every predicted keyword probability (plus 0 and 1) is a threshold; a clip is predicted
positive when its probability is >= the threshold. FA and FR are both divided by the TOTAL
number of clips N, not per class, because that is how the course defines them, and the
pass bar (1.1 x the base's au_fa_fr) is only meaningful on the same scale. Lower is better.

The course's own implementation loops over all N + 2 thresholds (O(N^2)); this one sorts once
and reads counts from cumulative sums (O(N log N)) and reproduces it, ties included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


def _as_float64(values: ArrayLike, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().to(torch.float64).numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    return array


def _validated(probs: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities as float64 and labels as bool (True = keyword), after checking both."""
    p = _as_float64(probs, "probs")
    y = _as_float64(labels, "labels")
    if len(p) != len(y):
        raise ValueError(f"probs and labels differ in length: {len(p)} vs {len(y)}")
    if len(p) == 0:
        raise ValueError("probs and labels are empty")
    if np.isnan(p).any():
        raise ValueError("probs contain NaN")
    # Outside [0, 1] the course's threshold list [0] + sorted(probs) + [1] would not be
    # increasing, and the trapezoids would no longer trace one curve.
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(f"probs must lie in [0, 1], got range [{p.min()}, {p.max()}]")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return p, y == 1.0


def fa_fr_curve(probs: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """FA and FR (fractions of ALL clips, float64) at each distinct threshold, increasing.

    The thresholds are the distinct values of ``[0] + sorted(probs) + [1]``. The course's
    definition repeats a threshold once per tied probability; a repeat yields the same
    (FA, FR) point again, a zero-width trapezoid, so keeping distinct thresholds leaves the
    area unchanged. FA falls and FR rises along the returned arrays.
    """
    p, positive = _validated(probs, labels)
    n = len(p)
    order = np.argsort(p, kind="stable")
    sorted_p = p[order]
    # Cumulative counts with a leading 0: entry k = positives among the k smallest probs.
    positives_below = np.concatenate(([0], np.cumsum(positive[order])))
    thresholds = np.unique(np.concatenate(([0.0], sorted_p, [1.0])))
    # Clips strictly below t are predicted negative (positive means prob >= t).
    below = np.searchsorted(sorted_p, thresholds, side="left")
    false_rejects = positives_below[below]
    negatives_below = below - false_rejects
    false_alarms = (n - int(positive.sum())) - negatives_below
    # Integer counts / N: bit-identical to the per-threshold counting of the O(N^2) version.
    return false_alarms / n, false_rejects / n


def au_fa_fr(probs: ArrayLike, labels: ArrayLike) -> float:
    """Area under FR as a function of FA, by the trapezoid rule (lower is better).

    Equals the course's ``-np.trapz(FR, x=FA)`` over thresholds ``[0] + sorted(probs) + [1]``:
    the points run from high FA to low FA, so the signed integral is negated. It is 0 when
    some threshold separates the classes and at most (#positives x #negatives) / N^2, reached
    when every keyword clip scores below every other clip and no other clip scores exactly 1
    (a clip at 1 is positive at every threshold, 1 included).
    """
    fa, fr = fa_fr_curve(probs, labels)
    # Written out rather than np.trapz/np.trapezoid, whose name depends on the numpy version.
    return float(np.sum((fa[:-1] - fa[1:]) * (fr[:-1] + fr[1:]) / 2.0))


def threshold_for_false_alarms(
    probs: ArrayLike, labels: ArrayLike, max_fa_rate: float = 0.0
) -> float:
    """The lowest threshold at which at most ``max_fa_rate`` of the NEGATIVE clips reach it.

    A deployed detector needs one threshold, chosen on validation clips (never the test
    split): the keyword probability that the negatives may reach at most this often. With
    ``max_fa_rate=0`` it is just above (the next float64 after) the highest negative's
    probability, so no validation negative is a detection (a clip is positive when its
    probability is >= the threshold, as in :func:`fa_fr_curve`). Unlike FA there, the rate
    here is per negative clip: it is the false-alarm rate a listener would hear.

    Raises:
        ValueError: no negatives, ``max_fa_rate`` outside [0, 1], or the allowed false alarms
            would need a threshold above 1 (negatives at probability 1).
    """
    p, positive = _validated(probs, labels)
    if not 0.0 <= max_fa_rate <= 1.0:
        raise ValueError(f"max_fa_rate must be in [0, 1], got {max_fa_rate}")
    negatives = np.sort(p[~positive])[::-1]  # highest first
    if len(negatives) == 0:
        raise ValueError("labels hold no negative clip to count false alarms on")
    allowed = int(np.floor(max_fa_rate * len(negatives)))  # negatives that may reach it
    if allowed >= len(negatives):
        return 0.0
    # Any threshold <= negatives[allowed] admits allowed + 1 of them; the next float does not.
    threshold = float(np.nextafter(negatives[allowed], np.inf))
    if threshold > 1.0:
        raise ValueError(
            f"{allowed + 1} negatives score 1.0: no threshold in [0, 1] keeps false alarms to "
            f"{max_fa_rate}"
        )
    return threshold
