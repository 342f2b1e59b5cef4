"""Pruners by name. The default was chosen by measurement (docs/benchmarks.md)."""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial

from study.attributes import AU_FA_FR_PER_EPOCH


class QualityHalvingPruner(optuna.pruners.BasePruner):
    """Successive halving whose rungs rank trials by their best validation au_fa_fr so far.

    The sampler proposes only students whose score can beat the best feasible trial, so
    among the trials that train, which one becomes the best is decided by quality alone.
    Ranking rungs by the reported penalized score ``score x min(1, bar / au_fa_fr)``
    instead lets a tiny student far from the bar outrank a larger one close to it. Replayed
    on full learning curves and measured in the study (docs/benchmarks.md), ranking by
    quality keeps more of the students that end up meeting the bar.

    The rungs are Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner`'s: at epoch
    ``min_resource x reduction_factor^k`` a trial goes on when its best au_fa_fr so far is
    among the lowest ``1 / reduction_factor`` of the trials that reached that epoch (with
    fewer than ``reduction_factor`` of them, when it is the lowest). Each trial's value at a
    rung is read from its per-epoch au_fa_fr (the objective's ``au_fa_fr_per_epoch``
    user attribute), so the pruner keeps no state of its own and needs no private storage.
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
        history = trial.user_attrs.get(AU_FA_FR_PER_EPOCH, [])
        epoch = len(history)
        if not self.is_rung(epoch):
            return False
        value = min(history)
        if not math.isfinite(value):
            return True
        competing = [value]
        for other in study.get_trials(deepcopy=False):
            other_history = other.user_attrs.get(AU_FA_FR_PER_EPOCH, [])
            if other.number != trial.number and len(other_history) >= epoch:
                competing.append(min(other_history[:epoch]))
        kept = max(len(competing) // self.reduction_factor, 1)
        return value > sorted(competing)[kept - 1]


PRUNERS: dict[str, Callable[[int], optuna.pruners.BasePruner]] = {
    "none": lambda max_epochs: optuna.pruners.NopPruner(),
    # Median: prune when the best value so far is below the median of earlier trials at the
    # same epoch; wait for 5 finished trials and 3 epochs so early noise prunes nothing.
    "median": lambda max_epochs: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
    "successive-halving": lambda max_epochs: optuna.pruners.SuccessiveHalvingPruner(
        min_resource=2, reduction_factor=3
    ),
    # Rungs at 4, 12 and 36 epochs: in the replay, a first rung at 4 found the best students
    # over both tables; at 2 the first seeds' noise decides too much.
    "quality-halving": lambda max_epochs: QualityHalvingPruner(min_resource=4, reduction_factor=3),
    "hyperband": lambda max_epochs: optuna.pruners.HyperbandPruner(
        min_resource=2, max_resource=max_epochs, reduction_factor=3
    ),
}
# Measured (docs/benchmarks.md): with 40-epoch students, median let a 100-trial study run
# about 20 minutes; successive halving (rungs at 2, 6 and 18 epochs) finished it in 8 and
# never came out empty in the pruner comparison.
DEFAULT_PRUNER = "quality-halving"


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner called ``name`` for trials of at most ``max_epochs`` epochs."""
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")
    return PRUNERS[name](max_epochs)
