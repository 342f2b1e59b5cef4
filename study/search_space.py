"""The search space: the one declared object that the objective, export and docs read.

Every trial samples a student architecture (with its pooling and whether its layers have
biases: both set the number of tensors, which dominates a small student's size), its
distillation settings, fp16 and the learning rate. Parameter names equal the config fields
they set (kernel and stride pairs are split into ``_freq`` / ``_time``), so a trial's
params map to configs with no table.
Ranges are clipped to the input geometry (mel bands, frames), so a configuration whose
kernel does not fit cannot be sampled; for the 40 x 101 log-mel input the declared ranges
all fit, so the distributions stay fixed and multivariate TPE sees one joint space.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from kws.config import ConfigError
from kws.features import FRAMES_PER_CLIP, N_MELS
from kws.model import BASE, POOLINGS, CRNNConfig
from kws.training import BASE_RECIPE, TrainConfig


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    choices: tuple[bool, ...] | tuple[str, ...]


SEARCH_SPACE: dict[str, IntRange | FloatRange | Choice] = {
    "cnn_out_channels": IntRange(1, 16),
    "kernel_freq": IntRange(3, 11),  # mel bands
    "kernel_time": IntRange(5, 25),  # frames (10 ms)
    "stride_freq": IntRange(1, 8),
    "stride_time": IntRange(4, 16),
    "gru_num_layers": IntRange(1, 2),
    "hidden_size": IntRange(4, 48),
    "pooling": Choice(POOLINGS),  # the base model's attention first
    "bias": Choice((True, False)),
    "temperature": FloatRange(1.0, 20.0, log=True),
    "alpha": FloatRange(0.0, 1.0),
    "fp16": Choice((False, True)),
    "learning_rate": FloatRange(1e-4, 1e-2, log=True),
}
"""Name -> range. Integer ranges are inclusive."""


def fitted_space(
    n_mels: int = N_MELS, frames: int = FRAMES_PER_CLIP
) -> dict[str, IntRange | FloatRange | Choice]:
    """SEARCH_SPACE with kernel ranges clipped to an input of ``n_mels`` x ``frames``."""
    space = dict(SEARCH_SPACE)
    for name, limit in (("kernel_freq", n_mels), ("kernel_time", frames)):
        declared = SEARCH_SPACE[name]
        assert isinstance(declared, IntRange)
        space[name] = IntRange(min(declared.low, limit), min(declared.high, limit))
    return space


def distributions() -> dict[str, BaseDistribution]:
    """The fitted space as the Optuna distributions :func:`suggest` asks for (a sampler
    that proposes all parameters at once must use exactly these)."""
    space: dict[str, BaseDistribution] = {}
    for name, declared in fitted_space().items():
        if isinstance(declared, IntRange):
            space[name] = IntDistribution(declared.low, declared.high)
        elif isinstance(declared, FloatRange):
            space[name] = FloatDistribution(declared.low, declared.high, log=declared.log)
        else:
            space[name] = CategoricalDistribution(declared.choices)
    return space


def suggest(
    trial: optuna.Trial, recipe: TrainConfig = BASE_RECIPE
) -> tuple[CRNNConfig, TrainConfig]:
    """Sample one configuration; the only place that calls ``trial.suggest_*``.

    ``recipe`` supplies what is not searched (epochs, batch size, patience, seed).
    """
    params: dict[str, Any] = {}
    for name, declared in fitted_space().items():
        if isinstance(declared, IntRange):
            params[name] = trial.suggest_int(name, declared.low, declared.high)
        elif isinstance(declared, FloatRange):
            params[name] = trial.suggest_float(name, declared.low, declared.high, log=declared.log)
        else:
            params[name] = trial.suggest_categorical(name, declared.choices)
    return configs_from_params(params, recipe)


def configs_from_params(
    params: dict[str, Any], recipe: TrainConfig = BASE_RECIPE
) -> tuple[CRNNConfig, TrainConfig]:
    """A trial's params (or an exported copy of them) as the configs they stand for."""
    model = model_from_params(params)
    training = TrainConfig.from_dict(
        {
            **recipe.to_dict(),
            "temperature": float(params["temperature"]),
            "alpha": float(params["alpha"]),
            "fp16": bool(params["fp16"]),
            "learning_rate": float(params["learning_rate"]),
        }
    )
    return model, training


def model_from_params(params: dict[str, Any]) -> CRNNConfig:
    """The student architecture of a trial's params alone (its training config costs a
    validation, and a sampler reads the architectures of hundreds of draws)."""
    missing = sorted(set(SEARCH_SPACE) - set(params))
    if missing:
        raise ConfigError(
            f"trial parameters lack {', '.join(missing)}: the study was made by an older "
            "kws-study with another search space; start a new study with --study-name"
        )
    return CRNNConfig(
        cnn_out_channels=int(params["cnn_out_channels"]),
        kernel_size=(int(params["kernel_freq"]), int(params["kernel_time"])),
        stride=(int(params["stride_freq"]), int(params["stride_time"])),
        gru_num_layers=int(params["gru_num_layers"]),
        hidden_size=int(params["hidden_size"]),
        pooling=str(params["pooling"]),
        bias=bool(params["bias"]),
    )


def params_from_configs(model: CRNNConfig, training: TrainConfig) -> dict[str, Any]:
    """The inverse of :func:`configs_from_params`, for enqueueing known configurations."""
    return {
        "cnn_out_channels": model.cnn_out_channels,
        "kernel_freq": model.kernel_size[0],
        "kernel_time": model.kernel_size[1],
        "stride_freq": model.stride[0],
        "stride_time": model.stride[1],
        "gru_num_layers": model.gru_num_layers,
        "hidden_size": model.hidden_size,
        "pooling": model.pooling,
        "bias": model.bias,
        "temperature": training.temperature,
        "alpha": training.alpha,
        "fp16": training.fp16,
        "learning_rate": training.learning_rate,
    }


WARM_START: dict[str, dict[str, Any]] = {
    "base": params_from_configs(BASE, BASE_RECIPE),
    # The seed report: hidden 24, 4 channels, 1 GRU layer, stride (4, 12), fp16, with
    # distillation (its T and alpha are not reported; T = 5, alpha = 0.5 assumed).
    "seed report": params_from_configs(
        CRNNConfig(cnn_out_channels=4, stride=(4, 12), gru_num_layers=1, hidden_size=24),
        TrainConfig(temperature=5.0, alpha=0.5, fp16=True),
    ),
    # The best KD-only solution of background.md: 1,789 parameters, T = 5, alpha = 0.1.
    "best KD-only": params_from_configs(
        CRNNConfig(
            cnn_out_channels=2,
            kernel_size=(11, 20),
            stride=(7, 8),
            gru_num_layers=1,
            hidden_size=14,
        ),
        TrainConfig(temperature=5.0, alpha=0.1),
    ),
}
"""Configurations people reached by hand, enqueued first so the study starts where they stopped."""
