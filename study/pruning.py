"""Pruners by name. The default was chosen by measurement (docs/benchmarks.md)."""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial

from study.attributes import AU_FA_FR_PER_EPOCH, BAR, SCORE
from study.objective import best_feasible


def rung_value(score: float, au_fa_fr: float, bar: float) -> float:
    """``score x min(1, bar / au_fa_fr)^2``: the penalized score with quality counted twice."""
    return score * min(1.0, bar / au_fa_fr) ** 2


class QualityHalvingPruner(optuna.pruners.BasePruner):
    """Successive halving whose rungs rank trials by :func:`rung_value`, not the reported
    penalized score ``score x min(1, bar / au_fa_fr)``.

    The sampler proposes only students whose score can beat the best feasible trial, and at
    a rung nearly every trial is still above the bar, so the reported value lets a tiny
    student far from the bar outrank a larger one close to it (score 50 at 4 x the bar,
    12.5, against 16 at 1.5 x, 10.7), and the students that would have met the bar are the
    ones stopped. Ranking on quality alone (replayed on learning curves, docs/benchmarks.md)
    keeps those, but in the study it also kept every large, slow student barely better than
    BASE (score 1 at 1.2 x the bar) to the end and its confirmation seeds. Counting quality
    twice ranks both pairs the right way round (7.1 over 3.1, and 1.67 for a score-15 student
    at 3 x the bar over 0.69). In a study without floors it still took about 3 x
    successive halving's time and was not better on seeds 0 and 2; within the default
    floors (C >= 15, S >= 15) no large student trains, and it is the one that finds
    students meeting the bar there (docs/benchmarks.md), so it is the default.

    While no trial is feasible there is no best to beat, and a score says nothing about
    which student will meet the bar: ranked by :func:`rung_value`, with
    ``--min-compression 15 --min-speedup 15`` seeds 0 and 2 ended with their best at 1.12
    and 1.47 x the bar. So until a trial is feasible the rungs rank trials by au_fa_fr
    alone, since the first job is to find a student that meets the bar; that brought the
    best to 0.91 and 1.08 x on one seed (docs/benchmarks.md).

    The rungs are Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner`'s: at epoch
    ``min_resource x reduction_factor^k`` a trial goes on when its value is among the top
    ``1 / reduction_factor`` of the trials that reached that epoch (with fewer than
    ``reduction_factor`` of them, when it is the top). Each trial's value at a rung is
    computed from its user attributes (score, bar and the best of its per-epoch au_fa_fr up
    to that epoch), so the pruner keeps no state and needs no private storage API.
    """

    def __init__(self, min_resource: int, reduction_factor: int) -> None:
        if min_resource < 1 or reduction_factor < 2:
            raise ValueError(
                f"need min_resource >= 1 and reduction_factor >= 2, "
                f"got {min_resource} and {reduction_factor}"
            )
        self.min_resource = min_resource
        self.reduction_factor = reduction_factor

    def is_rung(self, epoch: int) -> bool:
        """Whether trials are compared at ``epoch`` (1-based)."""
        step = self.min_resource
        while step < epoch:
            step *= self.reduction_factor
        return step == epoch

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        epoch = len(trial.user_attrs.get(AU_FA_FR_PER_EPOCH, []))
        if not self.is_rung(epoch):
            return False
        value_at = _value_at if best_feasible(study) is not None else _quality_at
        value = value_at(trial, epoch)
        if not math.isfinite(value):
            return True
        competing = [value]
        for other in study.get_trials(deepcopy=False):
            if (
                other.number != trial.number
                and len(other.user_attrs.get(AU_FA_FR_PER_EPOCH, [])) >= epoch
            ):
                competing.append(value_at(other, epoch))
        kept = max(len(competing) // self.reduction_factor, 1)
        return value < sorted(competing, reverse=True)[kept - 1]


def _best_at(trial: FrozenTrial, epoch: int) -> float:
    """The trial's best au_fa_fr in the first ``epoch`` epochs of its first seed."""
    return min(trial.user_attrs[AU_FA_FR_PER_EPOCH][:epoch])


def _value_at(trial: FrozenTrial, epoch: int) -> float:
    """The trial's :func:`rung_value` after ``epoch`` epochs of its first seed."""
    return rung_value(trial.user_attrs[SCORE], _best_at(trial, epoch), trial.user_attrs[BAR])


def _quality_at(trial: FrozenTrial, epoch: int) -> float:
    """``-au_fa_fr`` after ``epoch`` epochs of its first seed: higher is better, like a value."""
    return -_best_at(trial, epoch)


PRUNERS: dict[str, Callable[[int], optuna.pruners.BasePruner]] = {
    "none": lambda max_epochs: optuna.pruners.NopPruner(),
    # Median: prune when the best value so far is below the median of earlier trials at the
    # same epoch; wait for 5 finished trials and 3 epochs so early noise prunes nothing.
    "median": lambda max_epochs: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
    "successive-halving": lambda max_epochs: optuna.pruners.SuccessiveHalvingPruner(
        min_resource=2, reduction_factor=3
    ),
    # The same rungs as successive-halving's (epochs 2, 6, 18 and 54), ranked on rung_value.
    "quality-halving": lambda max_epochs: QualityHalvingPruner(min_resource=2, reduction_factor=3),
    "hyperband": lambda max_epochs: optuna.pruners.HyperbandPruner(
        min_resource=2, max_resource=max_epochs, reduction_factor=3
    ),
}
# Measured (docs/benchmarks.md): with 40-epoch students and no floors, median let a
# 100-trial study run about 20 minutes; successive halving finished it in 8, and
# quality-halving took 17 to 18.5. Within the default floors (C >= 15, S >= 15) the large,
# slow students never train, and there successive halving found no feasible student on
# seed 1 while quality-halving, which ranks by au_fa_fr alone until one is feasible, did.
DEFAULT_PRUNER = "quality-halving"


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner called ``name`` for trials of at most ``max_epochs`` epochs."""
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")
    return PRUNERS[name](max_epochs)
