"""quality-halving: Optuna's successive halving, ranked on quality counted twice."""

from __future__ import annotations

import random
from pathlib import Path

import optuna
import pytest

from study.attributes import AU_FA_FR_PER_EPOCH, BAR, SCORE
from study.pruning import QualityHalvingPruner, make_pruner
from study.storage import make_storage

EPOCHS = 40
BAR_VALUE = 0.01


def students(count: int, seed: int) -> list[tuple[float, list[float]]]:
    """(score, au_fa_fr per epoch): noisy, mostly falling curves, different in level and
    slope per student, some ending below the bar."""
    rng = random.Random(seed)
    drawn = []
    for _ in range(count):
        start, floor, rate = rng.uniform(0.02, 0.2), rng.uniform(5e-3, 2e-2), rng.uniform(0.05, 0.4)
        curve = [
            (floor + (start - floor) * (1 - rate) ** epoch) * rng.uniform(0.8, 1.25)
            for epoch in range(EPOCHS)
        ]
        drawn.append((rng.uniform(1, 50), curve))
    return drawn


def epochs_trained(
    path: Path,
    pruner: optuna.pruners.BasePruner,
    drawn: list[tuple[float, list[float]]],
    reported: str,
    constrained: bool = False,
) -> list[int]:
    """Runs one trial per student on a real SQLite study; returns each trial's epochs.

    ``reported`` is what a trial reports each epoch: ``"rung value"`` (score x min(1, bar /
    best au_fa_fr so far)^2, written out here, for Optuna's own pruner) or ``"noise"`` (a
    value unrelated to it, for ours). ``constrained``: a completed trial records the
    constraint ``au_fa_fr - bar <= 0`` (otherwise every completed trial counts as feasible).
    """
    study = optuna.create_study(
        storage=make_storage(f"sqlite:///{path}"), direction="maximize", pruner=pruner
    )
    rng = random.Random(0)
    trained: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        score, curve = drawn[trial.number]
        trial.set_user_attr(SCORE, score)
        trial.set_user_attr(BAR, BAR_VALUE)
        history: list[float] = []
        for epoch, au_fa_fr in enumerate(curve, start=1):
            history.append(au_fa_fr)
            trial.set_user_attr(AU_FA_FR_PER_EPOCH, history)
            quality = min(1.0, BAR_VALUE / min(history))
            trial.report(
                score * quality * quality if reported == "rung value" else rng.random(), epoch
            )
            if trial.should_prune():
                trained.append(epoch)
                raise optuna.TrialPruned()
        trained.append(len(curve))
        if constrained:
            trial.set_constraint("au_fa_fr", min(history) - BAR_VALUE)
        return score

    study.optimize(objective, n_trials=len(drawn))
    return trained


def test_it_prunes_exactly_where_optuna_successive_halving_does_on_the_rung_value(
    tmp_path: Path,
) -> None:
    drawn = students(40, seed=3)
    ours = epochs_trained(tmp_path / "ours.db", QualityHalvingPruner(2, 3), drawn, "noise")
    optunas = epochs_trained(
        tmp_path / "optuna.db",
        optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=3),
        drawn,
        "rung value",
    )
    assert ours == optunas
    # The rungs at 2, 6 and 18 epochs all pruned some trials, and some trials went on.
    assert {2, 6, 18, EPOCHS} <= set(ours), ours


def test_a_student_near_the_bar_outlasts_a_tinier_one_far_from_it(tmp_path: Path) -> None:
    # quality-halving, trials reporting noise. At the first rung (epoch 2) the first
    # trial (score 1, at the bar: 1) is alone and goes on; the second (score 16 at 1.5 x the
    # bar: 7.1) beats it; the third (score 50 at 4 x the bar: 3.1) is not the best of three
    # and stops, though its penalized score (12.5) beats the second's (10.7).
    drawn = [(1.0, [BAR_VALUE] * 5), (16.0, [1.5 * BAR_VALUE] * 5), (50.0, [4 * BAR_VALUE] * 5)]
    trained = epochs_trained(tmp_path / "s.db", make_pruner("quality-halving", 5), drawn, "noise")
    assert trained == [5, 5, 2]


def test_while_no_trial_is_feasible_the_rungs_rank_on_quality_alone(tmp_path: Path) -> None:
    # quality-halving, trials reporting noise, one rung (epoch 2), completed trials
    # constrained. Trial 0 (score 40 at 2 x the bar) is alone and completes, infeasible.
    # Trial 1 (score 16 at 1.5 x: rung value 7.1 against 10) goes on, since with no feasible
    # trial only quality counts. Trial 2 (score 1 at the bar) is the best quality and
    # completes, feasible. From then on the rung value counts: trial 3 (score 50 at 1.2 x:
    # 34.7, the top) goes on, though its quality is not the best of four.
    drawn = [
        (40.0, [2 * BAR_VALUE] * 5),
        (16.0, [1.5 * BAR_VALUE] * 5),
        (1.0, [BAR_VALUE] * 5),
        (50.0, [1.2 * BAR_VALUE] * 5),
    ]
    pruner = make_pruner("quality-halving", 5)
    trained = epochs_trained(tmp_path / "s.db", pruner, drawn, "noise", constrained=True)
    assert trained == [5, 5, 5, 5]
    # Without constraints trial 0 counts as feasible at once, so the rung value ranks
    # trials 1 and 2 (7.1 and 1 against 10) and both stop at the rung.
    unconstrained = epochs_trained(tmp_path / "u.db", pruner, drawn, "noise")
    assert unconstrained == [5, 2, 2, 5]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="reduction_factor >= 2"):
        QualityHalvingPruner(2, 1)
