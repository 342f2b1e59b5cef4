"""The default pruner: Optuna's successive halving, ranked on each trial's au_fa_fr."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
import pytest

from study.attributes import AU_FA_FR_PER_EPOCH
from study.pruning import DEFAULT_PRUNER, QualityHalvingPruner, make_pruner
from study.storage import make_storage

EPOCHS = 40


def learning_curves(count: int, seed: int) -> list[list[float]]:
    """Noisy, mostly falling au_fa_fr curves, different in level and slope per trial."""
    rng = random.Random(seed)
    curves = []
    for _ in range(count):
        start, floor, rate = rng.uniform(0.02, 0.2), rng.uniform(1e-3, 2e-2), rng.uniform(0.05, 0.4)
        curves.append(
            [
                (floor + (start - floor) * (1 - rate) ** epoch) * rng.uniform(0.8, 1.25)
                for epoch in range(EPOCHS)
            ]
        )
    return curves


def epochs_trained(
    path: Path, pruner: optuna.pruners.BasePruner, curves: list[list[float]], reported: str
) -> list[int]:
    """Runs one trial per curve on a real SQLite study; returns each trial's epochs.

    ``reported`` is what the trial reports each epoch: ``"quality"`` (the negated best
    au_fa_fr so far, for Optuna's own pruner) or ``"noise"`` (a value unrelated to it).
    """
    study = optuna.create_study(
        storage=make_storage(f"sqlite:///{path}"), direction="maximize", pruner=pruner
    )
    rng = random.Random(0)
    trained: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        curve = curves[trial.number]
        history: list[float] = []
        for epoch, au_fa_fr in enumerate(curve, start=1):
            history.append(au_fa_fr)
            trial.set_user_attr(AU_FA_FR_PER_EPOCH, history)
            trial.report(-min(history) if reported == "quality" else rng.random(), epoch)
            if trial.should_prune():
                trained.append(epoch)
                raise optuna.TrialPruned()
        trained.append(len(curve))
        return -min(history)

    study.optimize(objective, n_trials=len(curves))
    return trained


def test_it_prunes_exactly_where_optuna_successive_halving_does_on_au_fa_fr(
    tmp_path: Path,
) -> None:
    curves = learning_curves(40, seed=3)
    ours = epochs_trained(
        tmp_path / "ours.db", QualityHalvingPruner(4, 3), curves, reported="noise"
    )
    optunas = epochs_trained(
        tmp_path / "optuna.db",
        optuna.pruners.SuccessiveHalvingPruner(min_resource=4, reduction_factor=3),
        curves,
        reported="quality",
    )
    assert ours == optunas
    # The rungs at 4, 12 and 36 epochs all pruned some trials, and some trials went on.
    assert {4, 12, 36, EPOCHS} <= set(ours), ours


def test_the_rung_keeps_the_lowest_au_fa_fr_whatever_the_trials_report(tmp_path: Path) -> None:
    # The default pruner on three trials reporting noise. At the first rung (epoch 4) the
    # first trial is alone and goes on; the second, at the bar, beats it; the third, at twice
    # the bar, is not the best of three and stops there. Ranked by the penalized score, a
    # tiny student at twice the bar would go on whenever its score is twice the other's.
    bar = 0.01
    curves = [[3 * bar] * 10, [bar] * 10, [2 * bar] * 10]
    trained = epochs_trained(tmp_path / "s.db", make_pruner(DEFAULT_PRUNER, 10), curves, "noise")
    assert trained == [10, 10, 4]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="reduction_factor >= 2"):
        QualityHalvingPruner(4, 1)
