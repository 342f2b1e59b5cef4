"""TPE reseeded per trial: reproducible, and never replaying another worker's proposals."""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import FrozenTrial

from study.objective import constraint


class TrialSeededTPESampler(optuna.samplers.TPESampler):
    """Multivariate TPE whose random state is reseeded from (seed, trial number) per trial.

    Trial numbers are unique within a study, so workers that share a study never draw the
    same random proposals (with one seed per sampler, two workers started alike would), and
    a resumed or sequential run proposes what an uninterrupted one proposes for the same
    history. Everything else is Optuna's TPESampler.
    """

    def __init__(self, seed: int, **kwargs) -> None:
        super().__init__(seed=seed, **kwargs)
        self._base_seed = seed

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial_seed = (self._base_seed * 1_000_003 + trial.number) % 2**32
        self._rng.rng.seed(trial_seed)  # TPE's own draws
        self._random_sampler._rng.rng.seed(trial_seed)  # its random start-up trials
        super().before_trial(study, trial)


def make_sampler(seed: int) -> TrialSeededTPESampler:
    """Multivariate, constraint-aware TPE for the study."""
    with warnings.catch_warnings():
        # constraints_func is deprecated in Optuna 5 in favour of trial.set_constraint, but
        # optuna-dashboard 0.21 only shows constraints recorded through it.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return TrialSeededTPESampler(
            seed, multivariate=True, constraints_func=constraint, n_startup_trials=10
        )
