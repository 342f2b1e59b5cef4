"""TPE reseeded per trial, proposing only students that can still beat the best.

Reseeding from (seed, trial number) makes a run reproducible and keeps workers that share a
study from replaying each other's proposals. Beating the best: a student's score is known
from its architecture alone (:func:`study.objective.deployed_compression`), and a student
whose score is at most the best feasible value cannot win whatever it learns, so training
it wastes the trial. The sampler therefore proposes all parameters at once and redraws a
proposal that cannot win: first from TPE (each call draws new candidates), then, when TPE
keeps to a region that cannot win, uniformly at random. Only when none of
:data:`MAX_PROPOSALS` draws can win does a proposal reach the objective, which skips it
without training and without counting it toward ``--trials``.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

from kws.compression import CompressionReport, architecture_speedup
from kws.model import CRNNConfig
from study.objective import NO_FLOORS, Floors, best_feasible, constraint, deployed_compression
from study.search_space import configs_from_params, distributions, model_from_params

TPE_PROPOSALS = 8  # TPE draws before falling back to random ones (each costs a TPE fit)
MAX_PROPOSALS = 500  # draws in all; a random one costs its MACs, and its size if fast enough


@functools.lru_cache(maxsize=65_536)
def _compression(config: CRNNConfig, fp16: bool) -> CompressionReport:
    return deployed_compression(config, fp16)


def proposal_compression(params: dict[str, Any]) -> CompressionReport:
    """Size, MACs and score of the student that ``params`` describe."""
    model, training = configs_from_params(params)
    return _compression(model, training.fp16)


def proposal_score(params: dict[str, Any]) -> float:
    """The compression score of the student that ``params`` describe."""
    return proposal_compression(params).score


class TrialSeededTPESampler(optuna.samplers.TPESampler):
    """Multivariate TPE whose random state is reseeded from (seed, trial number) per trial,
    and which with ``beat_the_best`` proposes only students that can beat the best, and
    only students within ``floors``.

    Trial numbers are unique within a study, so workers that share a study never draw the
    same random proposals (with one seed per sampler, two workers started alike would), and
    a resumed or sequential run proposes what an uninterrupted one proposes for the same
    history. Everything else is Optuna's TPESampler.
    """

    def __init__(
        self, seed: int, beat_the_best: bool = False, floors: Floors = NO_FLOORS, **kwargs: Any
    ) -> None:
        super().__init__(seed=seed, **kwargs)
        self._base_seed = seed
        self._beat_the_best = beat_the_best
        self._floors = floors
        self._rejects = beat_the_best or floors != NO_FLOORS

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial_seed = (self._base_seed * 1_000_003 + trial.number) % 2**32
        self._rng.rng.seed(trial_seed)  # TPE's own draws
        self._random_sampler._rng.rng.seed(trial_seed)  # its random start-up trials
        super().before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        if not self._rejects:
            return super().infer_relative_search_space(study, trial)
        return distributions()  # all at once, start-up trials included: a score needs all

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not self._rejects or not search_space:
            return super().sample_relative(study, trial, search_space)
        best = best_feasible(_whole(study)) if self._beat_the_best else None
        for attempt in range(MAX_PROPOSALS):
            params = {}
            if attempt < TPE_PROPOSALS:
                params = super().sample_relative(study, trial, search_space)
            if not params:  # start-up trials (TPE proposes nothing yet), or TPE gave up
                params = {
                    name: self._random_sampler.sample_independent(study, trial, name, dist)
                    for name, dist in search_space.items()
                }
            if not self._floors.admit_speedup(architecture_speedup(model_from_params(params))):
                # The floors' cheap half, from MACs alone, before the model is built for its
                # size (about 2 ms): most random draws are too slow (95 % below S 15:
                # benchmarks/sampler_draws.py).
                continue
            compression = proposal_compression(params)
            if self._floors.admit(compression) and (best is None or compression.score > best.value):
                return params
        return params  # nothing found that can win within the floors: the objective skips it


SAMPLERS = ("tpe", "random")
STARTUP_TRIALS = 10  # random proposals before TPE models the history


def _whole(study: optuna.Study) -> optuna.Study:
    """The study itself where Optuna hands the sampler a view of it: HyperbandPruner
    passes a per-bracket view (its private ``_BracketStudy``, holding the study as
    ``_study``) that refuses ``best_trial``, while the best to beat is the whole study's."""
    return getattr(study, "_study", study)


def make_sampler(
    seed: int, beat_the_best: bool = False, name: str = "tpe", floors: Floors = NO_FLOORS
) -> TrialSeededTPESampler:
    """Multivariate, constraint-aware TPE for the study; ``"random"``: the same sampler
    kept in its random start-up phase for good, a baseline with the same reseeding and the
    same rejection of proposals that cannot win or are below ``floors``."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    with warnings.catch_warnings():
        # constraints_func is deprecated in Optuna 5 in favour of trial.set_constraint, but
        # optuna-dashboard 0.21 only shows constraints recorded through it.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return TrialSeededTPESampler(
            seed,
            beat_the_best=beat_the_best,
            floors=floors,
            multivariate=True,
            constraints_func=constraint,
            n_startup_trials=STARTUP_TRIALS if name == "tpe" else 2**62,
        )
