"""Where a study lives: an SQLAlchemy URL, SQLite under storage/ by default.

SQLite is enough for one machine and a few processes (its lock timeout is raised so that
they wait for each other instead of failing); many machines share one PostgreSQL database
(see docs/distributed.md). Heartbeats let a surviving worker mark the trial of a worker
that died as failed and run its parameters again.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from kws.errors import UserError

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


class StorageError(UserError):
    """The storage URL is malformed, unreachable, in memory, or not an Optuna database."""


def shown(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return sqlalchemy.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL; None for other databases.

    Raises:
        StorageError: an in-memory SQLite database: nothing in it could be browsed, resumed
            or exported once the process ends.
    """
    if not url.startswith("sqlite:"):
        return None
    path = url.removeprefix("sqlite:").removeprefix("///")
    if path in ("", "//", ":memory:") or "mode=memory" in path:
        raise StorageError(
            f"--storage {url} is an in-memory database: every result would be lost when the "
            "run ends; give a file, e.g. sqlite:///storage/kws-study.db"
        )
    return Path(path.split("?")[0])


def make_storage(
    url: str = DEFAULT_STORAGE,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
    create: bool = True,
) -> RDBStorage:
    """An RDB storage for ``url`` with heartbeats and one retry of each stale trial.

    A running trial writes a heartbeat every ``heartbeat_interval`` seconds; once its last
    one is ``grace_period`` seconds old, the next worker that looks marks it failed and
    enqueues its parameters again. For SQLite the lock timeout is raised and, with
    ``create``, the database's folder is created; without it (commands that only read) a
    missing database file is an error instead of a new empty database.

    Raises:
        StorageError: the URL is malformed, in memory, unreachable, or not a database.
    """
    if not 0 < heartbeat_interval < grace_period:
        raise ValueError(
            "the heartbeat interval must be positive and shorter than the grace period, got "
            f"{heartbeat_interval} s and {grace_period} s"
        )
    engine_kwargs = {}
    path = sqlite_path(url)
    if path is not None:
        if not create and not path.is_file():
            raise StorageError(f"--storage {url}: no database file {path}")
        if create:
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
        ) as error:
            if not _transient(error):
                raise _storage_error(url, error) from error
            # Workers started together on an empty PostgreSQL database all create Optuna's
            # tables; the losers hit "already exists" and, a moment later, find them made.
            # SQLite answers "database is locked" at once, without its lock timeout, when
            # two connections that opened a storage both want to write.
            time.sleep(0.5 * attempt)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as error:
            raise _storage_error(url, error) from error
    try:
        return open_storage()
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
        raise _storage_error(url, error) from error


def _transient(error: Exception) -> bool:
    """A schema race or a lock, which a retry resolves; not a refused connection or a file
    that is not a database."""
    text = str(error).lower()
    refused = ("connection refused", "could not translate host", "unable to open", "readonly")
    return not any(word in text for word in refused)


def _storage_error(url: str, error: Exception) -> StorageError:
    """One line naming the URL and the cause, with what to do."""
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
    if isinstance(error, ImportError) or "psycopg" in cause:
        hint = "install the database's driver (PostgreSQL: pip install -e '.[postgres]')"
    elif isinstance(error, sqlalchemy.exc.ArgumentError | sqlalchemy.exc.NoSuchModuleError):
        hint = (
            "expected e.g. sqlite:///storage/kws-study.db or postgresql+psycopg://user:pass@host/db"
        )
    elif isinstance(error, sqlalchemy.exc.OperationalError) and sqlite_path(url) is None:
        hint = "is the database server running and reachable?"
    else:
        hint = "is it an Optuna study database, readable and writable?"
    return StorageError(f"--storage {shown(url)}: cannot open the study database ({cause}); {hint}")


def load_existing_study(url: str, name: str | None, default_name: str) -> optuna.Study:
    """An existing study, for commands that only read: nothing is created, not even the file.

    ``name`` None picks the storage's only study, else ``default_name`` when it is there.

    Raises:
        StorageError: no such database or study; the message lists the studies there.
    """
    storage = make_storage(url, create=False)
    names = sorted(study.study_name for study in storage.get_all_studies())
    if name is None:
        name = names[0] if len(names) == 1 else default_name
    if name not in names:
        held = ", ".join(repr(n) for n in names) if names else "no study"
        flag = "--study-name" if name != default_name else "the default study name"
        raise StorageError(
            f"{flag} {name!r}: no such study in --storage {shown(url)}, which holds {held}; "
            "name one with --study-name"
        )
    return optuna.load_study(study_name=name, storage=storage)


def default_study_name(data: str, keyword: str, seed: int) -> str:
    """``kws-<dataset>-<keyword>-seed<seed>``; a path is shortened to its folder name."""
    dataset = data if data in ("synthetic", "download") else Path(data).resolve().name
    return f"kws-{dataset}-{keyword}-seed{seed}"


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the study prints its own one line per trial.

    Optuna also logs a trial stopped by Ctrl-C as failed, with the KeyboardInterrupt's
    traceback, and SQLAlchemy logs the cursor it could not close when Ctrl-C lands inside
    a query: the interrupt is the user's own doing, and the command says what happened.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # SQLAlchemy's pool logs through per-class loggers without handlers of their own, so
    # their records reach Python's last-resort handler: the filter goes there.
    targets = [logging.getLogger("optuna.study._optimize"), logging.lastResort]
    for target in targets:
        if target is not None and not any(isinstance(f, _HideInterrupts) for f in target.filters):
            target.addFilter(_HideInterrupts())


class _HideInterrupts(logging.Filter):
    """Drops a log record whose exception is, or arose while handling, a KeyboardInterrupt."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        while error is not None:
            if isinstance(error, KeyboardInterrupt):
                return False
            error = error.__context__
        return True
