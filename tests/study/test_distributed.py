"""Many workers on one study: a real PostgreSQL server (.ci/postgres.sh), and SQLite.

Workers are real ``python run_study.py`` processes. A crash is a SIGKILL delivered while the
worker holds a RUNNING trial: the worker is frozen with SIGSTOP first, so the test knows
which trial it was running when it died.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from study.attributes import FINISHED, counts_toward_budget
from study.runner import WORKER, prepare
from study.settings import StudySettings
from study.storage import make_storage


def _trials(settings: StudySettings) -> list[FrozenTrial]:
    # SQLite answers "database is locked" at once, without waiting, when two connections
    # both want to write (opening a storage writes); try again.
    for _ in range(20):
        try:
            storage = make_storage(settings.storage)
            return optuna.load_study(study_name=settings.name, storage=storage).get_trials()
        except (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError):
            time.sleep(0.5)
    storage = make_storage(settings.storage)
    return optuna.load_study(study_name=settings.name, storage=storage).get_trials()


def _start(cli_args: Callable[[StudySettings], list[str]], settings: StudySettings, count: int):
    return [
        subprocess.Popen(cli_args(settings), stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]


def _wait(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr


def _params(trial: FrozenTrial) -> str:
    return json.dumps(trial.params, sort_keys=True)


def _check_exactly_n_without_duplicates(settings: StudySettings) -> list[FrozenTrial]:
    trials = _trials(settings)
    finished = [t for t in trials if counts_toward_budget(t)]
    assert len(finished) == settings.trials
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers)
    # A parameter set is trained by one finished trial only; a retry of a dead worker's
    # trial shares its parameters with that FAILED trial, never with a finished one.
    param_sets = [_params(t) for t in finished]
    assert len(set(param_sets)) == len(param_sets), "a parameter set was trained twice"
    return trials


def _wait_until_stopped(pid: int) -> None:
    """SIGSTOP is asynchronous: wait until every thread of ``pid`` is stopped ("T")."""
    tasks = Path(f"/proc/{pid}/task")
    while True:
        states = [
            (task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in tasks.iterdir()
        ]
        if all(state in "tT" for state in states):
            return
        time.sleep(0.001)


def _kill_mid_trial(
    settings: StudySettings, process: subprocess.Popen, deadline_s: float = 300
) -> FrozenTrial:
    """SIGKILL ``process`` while it holds a RUNNING trial; return that trial."""
    worker = f"{os.uname().nodename}:{process.pid}"
    deadline = time.monotonic() + deadline_s
    # A frozen worker may hold SQLite's write lock: look with a short lock timeout, and
    # let it go on when the file is locked.
    quick = {"connect_args": {"timeout": 0.2}} if settings.storage.startswith("sqlite") else {}
    while time.monotonic() < deadline:
        assert process.poll() is None, "the worker ended before it could be killed mid-trial"
        os.kill(process.pid, signal.SIGSTOP)  # frozen: what the storage shows stays true
        _wait_until_stopped(process.pid)
        try:
            storage = optuna.storages.RDBStorage(settings.storage, engine_kwargs=quick)
            trials = optuna.load_study(study_name=settings.name, storage=storage).get_trials()
        except (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError):
            trials = []
        mine = [t for t in trials if t.user_attrs.get(WORKER) == worker]
        # In the middle of a trial: all its parameters are drawn (the objective records
        # the score right after), its result is not yet in.
        running = [t for t in mine if t.state == TrialState.RUNNING and "score" in t.user_attrs]
        if running:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            return running[0]
        os.kill(process.pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError(f"worker {worker} never held a running trial")


def _crash_test(
    settings: StudySettings, cli_args: Callable[[StudySettings], list[str]], workers: int
) -> None:
    prepare(settings)  # the caches exist before the workers start
    processes = _start(cli_args, settings, workers)
    victim, survivors = processes[0], processes[1:]
    # Let a few trials complete first, so there is something that must not be lost.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if sum(t.state == TrialState.COMPLETE for t in _trials(settings)) >= 2:
                break
        except KeyError:  # the study is not created yet
            pass
        time.sleep(0.2)
    killed = _kill_mid_trial(settings, victim)
    completed_before = {t.number: t for t in _trials(settings) if t.state == TrialState.COMPLETE}
    assert completed_before
    _wait(survivors)

    trials = _check_exactly_n_without_duplicates(settings)
    by_number = {t.number: t for t in trials}
    # The dead worker's trial was failed after the grace period ...
    assert by_number[killed.number].state == TrialState.FAIL
    # ... and rerun once, with the same parameters, by a surviving worker.
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1
    [retry] = retries
    assert retry.state in FINISHED
    assert retry.params == killed.params == by_number[killed.number].params
    assert retry.user_attrs[WORKER] != killed.user_attrs[WORKER]
    # No completed trial was lost or altered.
    for number, before in completed_before.items():
        after = by_number[number]
        assert after.state == TrialState.COMPLETE
        assert (after.value, after.params, after.user_attrs) == (
            before.value,
            before.params,
            before.user_attrs,
        )


@pytest.fixture
def fast_heartbeat(settings: StudySettings) -> StudySettings:
    """Heartbeats every second and a 4 s grace period, so a crash is noticed quickly; every
    trial trains 5 epochs, so that a worker spends its time inside trials."""
    return dataclasses.replace(
        settings,
        heartbeat_interval=1,
        grace_period=4,
        pruner="none",
        skip_hopeless=False,
        max_epochs=5,
    )


def test_three_workers_on_postgres_reach_exactly_n(
    fast_heartbeat: StudySettings, postgres_url: str, cli_args
) -> None:
    settings = dataclasses.replace(fast_heartbeat, trials=9, storage=postgres_url)
    prepare(settings)
    # All three start on an empty database: they race to create Optuna's tables, then the
    # study; exactly one creates the study and enqueues the warm start.
    _wait(_start(cli_args, settings, 3))
    trials = _check_exactly_n_without_duplicates(settings)
    workers = {t.user_attrs[WORKER] for t in trials if t.state in FINISHED}
    assert len(workers) >= 2, "the trials were not shared between the workers"
    assert sum("fixed_params" in t.system_attrs for t in trials) == 3  # warm start, once


def test_a_worker_killed_mid_trial_on_postgres_is_retried_and_nothing_is_lost(
    fast_heartbeat: StudySettings, postgres_url: str, cli_args
) -> None:
    settings = dataclasses.replace(fast_heartbeat, trials=8, storage=postgres_url)
    _crash_test(settings, cli_args, workers=3)


def test_a_worker_killed_mid_trial_on_sqlite_is_retried_and_nothing_is_lost(
    fast_heartbeat: StudySettings, cli_args
) -> None:
    _crash_test(dataclasses.replace(fast_heartbeat, trials=8), cli_args, workers=2)
