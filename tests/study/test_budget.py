"""The ``--trials`` budget between workers that race: which trial holds which place.

These build the race's outcomes directly in a real SQLite study (no training): a dead
worker's retry enqueued while another worker created a new trial, and a stale trial failed
whose retry is not enqueued yet.
"""

from __future__ import annotations

import datetime

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from study.runner import RETRY_WINDOW_S, SURPLUS, StudyFullError, _budget_guard, awaiting_retry
from study.storage import make_storage

DISTRIBUTIONS = {"x": IntDistribution(0, 100)}


def _study(tmp_path) -> optuna.Study:
    storage = make_storage(f"sqlite:///{tmp_path / 'study.db'}")
    return optuna.create_study(study_name="budget", storage=storage)


def _complete(study: optuna.Study, x: int) -> None:
    """A trial that trained (one epoch recorded), so it counts toward --trials."""
    study.add_trial(
        optuna.create_trial(
            value=float(x),
            params={"x": x},
            distributions=DISTRIBUTIONS,
            user_attrs={"au_fa_fr_per_epoch": [0.01]},
        )
    )


def _new_trial(study: optuna.Study, tmp_path) -> optuna.Trial:
    """A new trial created the way ``study.ask`` does when it found no waiting trial."""
    storage = make_storage(f"sqlite:///{tmp_path / 'study.db'}")
    return optuna.Trial(study, storage.create_new_trial(storage.get_study_id_from_name("budget")))


# study.ask() pops the retry as a worker's optimize() would; the warning is about ask().
@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_a_waiting_retry_keeps_its_place_against_a_later_new_trial(tmp_path) -> None:
    study = _study(tmp_path)
    for x in range(3):
        _complete(study, x)
    # The dead worker's retry was enqueued (number 3) just before another worker, which had
    # looked for waiting trials a moment earlier, created a new one (number 4).
    study.enqueue_trial({"x": 50})
    late = _new_trial(study, tmp_path)
    guarded = _budget_guard(lambda trial: 1.0, trials=4)
    with pytest.raises(StudyFullError):
        guarded(late)
    assert late.user_attrs[SURPLUS] is True
    # The retry itself still fits.
    assert guarded(study.ask()) == 1.0


def test_a_new_trial_still_runs_when_a_waiting_one_has_a_larger_number(tmp_path) -> None:
    study = _study(tmp_path)
    for x in range(3):
        _complete(study, x)
    first = _new_trial(study, tmp_path)
    study.enqueue_trial({"x": 50})
    assert _budget_guard(lambda trial: 2.0, trials=4)(first) == 2.0


def _failed(number: int, seconds_ago: float, **attrs) -> optuna.trial.FrozenTrial:
    trial = optuna.create_trial(
        state=TrialState.FAIL,
        params={"x": number},
        distributions=DISTRIBUTIONS,
        user_attrs=attrs.get("user_attrs", {}),
        system_attrs=attrs.get("system_attrs", {}),
    )
    trial.number = number
    trial.datetime_complete = datetime.datetime.now() - datetime.timedelta(seconds=seconds_ago)
    return trial


def test_a_stale_trial_holds_its_place_until_its_retry_is_enqueued() -> None:
    stale = _failed(5, seconds_ago=1)
    assert awaiting_retry([stale]) == 1
    retry = optuna.create_trial(
        state=TrialState.WAITING,
        params={"x": 5},
        distributions=DISTRIBUTIONS,
        system_attrs={"failed_trial": 5, "retry_history": [5]},
    )
    assert awaiting_retry([stale, retry]) == 0


@pytest.mark.parametrize(
    "trial",
    [
        _failed(5, seconds_ago=1, user_attrs={"fail_reason": "ValueError: nan"}),
        _failed(5, seconds_ago=1, system_attrs={"failed_trial": 2, "retry_history": [2]}),
        _failed(5, seconds_ago=RETRY_WINDOW_S + 1),
    ],
    ids=["failed by its own worker", "a retry is not retried again", "its retry never came"],
)
def test_failures_that_get_no_retry_hold_no_place(trial) -> None:
    assert awaiting_retry([trial]) == 0
