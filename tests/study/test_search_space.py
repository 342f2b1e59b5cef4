from __future__ import annotations

import optuna
import pytest

from kws.model import BASE, CRNN
from study.search_space import (
    SEARCH_SPACE,
    WARM_START,
    FloatRange,
    IntRange,
    configs_from_params,
    fitted_space,
    params_from_configs,
    suggest,
)


def test_every_sampled_configuration_builds_a_model_that_fits_the_input() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(300):
        trial = study.ask()
        model, training = suggest(trial)
        CRNN(model)  # raises if the kernel does not fit 40 x 101
        assert 0.0 <= training.alpha <= 1.0
        study.tell(trial, 0.0)


def test_trial_params_are_exactly_the_declared_space() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    suggest(trial)
    assert set(trial.params) == set(SEARCH_SPACE)
    for name, declared in SEARCH_SPACE.items():
        value = trial.params[name]
        if isinstance(declared, IntRange | FloatRange):
            assert declared.low <= value <= declared.high


def test_ranges_match_the_issue() -> None:
    assert SEARCH_SPACE["cnn_out_channels"] == IntRange(1, 16)
    assert SEARCH_SPACE["hidden_size"] == IntRange(4, 48)
    assert SEARCH_SPACE["temperature"] == FloatRange(1.0, 20.0, log=True)
    assert SEARCH_SPACE["learning_rate"] == FloatRange(1e-4, 1e-2, log=True)


def test_kernel_ranges_shrink_to_a_small_input() -> None:
    space = fitted_space(n_mels=8, frames=12)
    assert space["kernel_freq"] == IntRange(3, 8)
    assert space["kernel_time"] == IntRange(5, 12)
    assert fitted_space() == SEARCH_SPACE  # the real input needs no clipping


def test_params_and_configs_round_trip() -> None:
    for params in WARM_START.values():
        assert params_from_configs(*configs_from_params(params)) == params
    model, training = configs_from_params(WARM_START["base"])
    assert model == BASE
    assert training.alpha == 0.0


def test_missing_params_are_named() -> None:
    params = dict(WARM_START["base"])
    del params["hidden_size"]
    with pytest.raises(ValueError, match="hidden_size"):
        configs_from_params(params)
