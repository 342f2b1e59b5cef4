"""Where a study lives: an SQLAlchemy URL, SQLite under storage/ by default.

SQLite is enough for one machine and a few processes (its lock timeout is raised so that
they wait for each other instead of failing); many machines share one PostgreSQL database
(see docs/distributed.md). Heartbeats let a surviving worker mark the trial of a worker
that died as failed and run its parameters again.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

DEFAULT_STORAGE = "sqlite:///storage/kws-study.db"
HEARTBEAT_INTERVAL_S = 10  # a running trial writes a heartbeat this often
GRACE_PERIOD_S = 60  # a trial whose last heartbeat is older than this is failed (and retried)
SQLITE_LOCK_TIMEOUT_S = 60


def make_storage(url: str = DEFAULT_STORAGE) -> RDBStorage:
    """An RDB storage for ``url`` with heartbeats and retry of stale trials.

    For SQLite the database's folder is created, and the lock timeout raised.
    """
    engine_kwargs = {}
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    with warnings.catch_warnings():
        # Heartbeats and their retry callback are marked experimental; they are what
        # Optuna's distributed guide recommends for crashed workers.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_INTERVAL_S,
            grace_period=GRACE_PERIOD_S,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
        )


def default_study_name(data: str, keyword: str, seed: int) -> str:
    """``kws-<dataset>-<keyword>-seed<seed>``; a path is shortened to its folder name."""
    dataset = data if data in ("synthetic", "download") else Path(data).resolve().name
    return f"kws-{dataset}-{keyword}-seed{seed}"


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the study prints its own one line per trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
