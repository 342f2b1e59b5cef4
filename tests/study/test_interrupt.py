"""Ctrl-C inside a storage commit: held until the write is done, then raised."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from study.interrupt import interrupts_outside_storage
from study.storage import make_storage

# Python's own SIGINT handler, as in a terminal (see tests/conftest.py).
pytestmark = pytest.mark.usefixtures("ctrl_c_raises")


def test_ctrl_c_inside_a_commit_waits_for_the_write_then_fails_the_trial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=make_storage(url), study_name="interrupted")
    sent: list[float] = []

    def ctrl_c_once(*_: object) -> None:
        """Runs inside SQLAlchemy's commit, before SQLite's: a Ctrl-C landing there."""
        if not sent:
            sent.append(time.monotonic())
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.05)  # Python code inside the commit, where the handler runs

    def objective(trial: optuna.Trial) -> float:
        sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", ctrl_c_once)
        try:
            trial.set_user_attr("written", True)
        finally:
            sqlalchemy.event.remove(sqlalchemy.engine.Engine, "commit", ctrl_c_once)
        time.sleep(5)  # training, where the held Ctrl-C is raised
        return 1.0

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), interrupts_outside_storage():
        study.optimize(objective, n_trials=1)
    assert sent, "the commit hook never ran: the test proves nothing"
    # Without the hold, the trial's failed state waits out SQLite's 60 s lock timeout on
    # the lock the interrupted commit left held: this bound is what fails then.
    assert time.monotonic() - started < 4, "the trial's last write waited on a lock"
    # A second connection reads the trial as failed, with the interrupted write in it: no
    # lock was left behind and the write was not cut in half.
    (trial,) = optuna.load_study(study_name="interrupted", storage=make_storage(url)).trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs == {"written": True}


def test_an_ignored_ctrl_c_stays_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with interrupts_outside_storage():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.raise_signal(signal.SIGINT)
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
