"""Fixtures of the study tests: a small study on the toy embedded dataset, its command line."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy

from study.settings import StudySettings

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def caches(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Feature and reference caches shared by every study test (the reference trains once)."""
    return tmp_path_factory.mktemp("study-caches")


@pytest.fixture(scope="session")
def settings_in(tiny_embedded: Path, caches: Path) -> Callable[[Path], StudySettings]:
    """Small-study settings whose database and artifacts live in a given folder."""

    def make(folder: Path) -> StudySettings:
        return StudySettings(
            trials=5,
            storage=f"sqlite:///{folder / 'study.db'}",
            data=str(tiny_embedded),
            max_epochs=2,
            confirm_seeds=2,  # the default 3 costs a third more training per feasible trial
            fresh_check=False,  # twice that again per new best; tests of its own turn it on
            # The toy dataset's study, with BASE and the hand-tuned students (below the
            # default floors) among its trials, pruned as on its reported value: what these
            # tests assert on. The default floors and pruner have tests of their own.
            min_compression=0.0,
            min_speedup=0.0,
            pruner="successive-halving",
            data_dir=str(caches / "data"),
            feature_dir=str(caches / "features"),
            model_dir=str(caches / "models"),
            artifact_dir=str(folder / "artifacts"),
            progress=False,
        )

    return make


@pytest.fixture
def settings(settings_in: Callable[[Path], StudySettings], tmp_path: Path) -> StudySettings:
    return settings_in(tmp_path)


@pytest.fixture
def cli_args() -> Callable[[StudySettings], list[str]]:
    """The ``python run_study.py ...`` command that runs ``settings``' study."""

    def args(settings: StudySettings) -> list[str]:
        return [
            sys.executable, str(REPO_ROOT / "run_study.py"),
            "--trials", str(settings.trials), "--storage", settings.storage,
            "--study-name", settings.name, "--seed", str(settings.seed),
            "--data", settings.data, "--max-epochs", str(settings.max_epochs),
            "--patience", str(settings.patience), "--ema-decay", str(settings.ema_decay),
            "--freq-mask", str(settings.freq_mask), "--time-mask", str(settings.time_mask),
            "--min-compression", str(settings.min_compression),
            "--min-speedup", str(settings.min_speedup),
            "--num-clips", str(settings.num_clips), "--num-speakers", str(settings.num_speakers),
            "--data-dir", settings.data_dir, "--feature-dir", settings.feature_dir,
            "--model-dir", settings.model_dir, "--pruner", settings.pruner,
            "--reference-seeds", str(settings.reference_seeds),
            "--confirm-seeds", str(settings.confirm_seeds),
            "--artifact-dir", settings.artifact_dir,
            "--heartbeat-interval", str(settings.heartbeat_interval),
            "--grace-period", str(settings.grace_period), "--no-progress",
            "--skip-hopeless" if settings.skip_hopeless else "--no-skip-hopeless",
            "--fresh-check" if settings.fresh_check else "--no-fresh-check",
        ]  # fmt: skip

    return args


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database on the PostgreSQL server that .ci/postgres.sh started.

    Empty, so that workers started together also race to create Optuna's tables, as on a
    user's first run. Without a server the tests skip with the reason, except under CI
    (``CI`` set), where they fail: CI must never pass without having run them.
    """
    url = os.environ.get("KWS_TEST_POSTGRES_URL")
    if not url:
        message = "no PostgreSQL server: run through .ci/postgres.sh (sets KWS_TEST_POSTGRES_URL)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = sqlalchemy.make_url(url)
    name = f"kws_{uuid.uuid4().hex}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
