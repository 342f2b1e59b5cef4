"""Where a study lives: an SQLAlchemy URL, SQLite under storage/ by default.

SQLite is enough for one machine and a few processes (its lock timeout is raised so that
they wait for each other instead of failing); many machines share one PostgreSQL database
(see docs/distributed.md). Heartbeats let a surviving worker mark the trial of a worker
that died as failed and run its parameters again.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

DEFAULT_STORAGE = "sqlite:///storage/kws-study.db"
# A heartbeat is one small UPDATE: every 10 s costs nothing next to a trial of 10-60 s.
# The grace period must outlast any pause of a healthy worker (a slow epoch, a busy
# database, a GC pause): 60 s is 6 missed beats, and a dead worker's trial is rerun
# about a minute after it died.
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
SQLITE_LOCK_TIMEOUT_S = 60
SCHEMA_RACE_ATTEMPTS = 5
MAX_RETRY = 1  # a dead worker's trial is run again once; a retry that dies is not


def make_storage(
    url: str = DEFAULT_STORAGE,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
) -> RDBStorage:
    """An RDB storage for ``url`` with heartbeats and one retry of each stale trial.

    A running trial writes a heartbeat every ``heartbeat_interval`` seconds; once its last
    one is ``grace_period`` seconds old, the next worker that looks marks it failed and
    enqueues its parameters again. For SQLite the database's folder is created, and the
    lock timeout raised.
    """
    if not 0 < heartbeat_interval < grace_period:
        raise ValueError(
            "the heartbeat interval must be positive and shorter than the grace period, got "
            f"{heartbeat_interval} s and {grace_period} s"
        )
    engine_kwargs = {}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}

    def open_storage() -> RDBStorage:
        with warnings.catch_warnings():
            # Heartbeats and their retry callback are marked experimental; they are what
            # Optuna's distributed guide recommends for crashed workers.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRY
                ),
            )

    for attempt in range(1, SCHEMA_RACE_ATTEMPTS):
        try:
            return open_storage()
        except (
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.ProgrammingError,
            sqlalchemy.exc.OperationalError,
            optuna.exceptions.StorageInternalError,
        ):
            # Workers started together on an empty PostgreSQL database all create Optuna's
            # tables; the losers hit "already exists" and, a moment later, find them made.
            # SQLite answers "database is locked" at once, without its lock timeout, when
            # two connections that opened a storage both want to write.
            time.sleep(0.5 * attempt)
    return open_storage()


def default_study_name(data: str, keyword: str, seed: int) -> str:
    """``kws-<dataset>-<keyword>-seed<seed>``; a path is shortened to its folder name."""
    dataset = data if data in ("synthetic", "download") else Path(data).resolve().name
    return f"kws-{dataset}-{keyword}-seed{seed}"


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the study prints its own one line per trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
