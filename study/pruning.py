"""Pruners by name. The default was chosen by measurement (docs/benchmarks.md)."""

from __future__ import annotations

from collections.abc import Callable

import optuna

PRUNERS: dict[str, Callable[[int], optuna.pruners.BasePruner]] = {
    "none": lambda max_epochs: optuna.pruners.NopPruner(),
    # Median: prune when the best value so far is below the median of earlier trials at the
    # same epoch; wait for 5 finished trials and 3 epochs so early noise prunes nothing.
    "median": lambda max_epochs: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3),
    "successive-halving": lambda max_epochs: optuna.pruners.SuccessiveHalvingPruner(
        min_resource=2, reduction_factor=3
    ),
    "hyperband": lambda max_epochs: optuna.pruners.HyperbandPruner(
        min_resource=2, max_resource=max_epochs, reduction_factor=3
    ),
}
# Measured (docs/benchmarks.md): with 40-epoch students, median let a 100-trial study run
# about 20 minutes; successive halving (rungs at 2, 6 and 18 epochs) finished it in 8 and
# never came out empty in the pruner comparison.
DEFAULT_PRUNER = "successive-halving"


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner called ``name`` for trials of at most ``max_epochs`` epochs."""
    if name not in PRUNERS:
        raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")
    return PRUNERS[name](max_epochs)
