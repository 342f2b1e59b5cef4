"""The embedded dataset's size as study flags: one cache for prepare and the study, and a
study that refuses to continue at another size."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from kws.errors import UserError
from study.attributes import FEATURE_KEY
from study.runner import check_continuation
from study.settings import StudySettings
from study.storage import load_existing_study, make_storage

REPO_ROOT = Path(__file__).resolve().parents[2]
# Small enough to make in seconds, big enough that every split holds the keyword.
SIZE = ("--num-clips", "400", "--num-speakers", "20")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_study.py"), *args, "--no-progress"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_prepare_makes_the_cache_the_study_trains_on(tmp_path: Path) -> None:
    prepared = _run("prepare", *SIZE, cwd=tmp_path)
    assert prepared.returncode == 0, prepared.stderr
    (cache,) = (tmp_path / "storage" / "features").glob("*.pt")
    built_at = cache.stat().st_mtime_ns

    study = _run(*SIZE, "--trials", "1", "--max-epochs", "1",
                 "--reference-seeds", "1", "--confirm-seeds", "1", cwd=tmp_path)  # fmt: skip
    assert study.returncode == 0, study.stderr
    assert list((tmp_path / "storage" / "features").glob("*.pt")) == [cache]
    assert cache.stat().st_mtime_ns == built_at  # read, not rebuilt
    assert len(list((tmp_path / "storage" / "data").glob("embedded-*"))) == 1
    storage = f"sqlite:///{tmp_path / 'storage' / 'kws-study.db'}"
    stored = load_existing_study(storage, None, StudySettings().name)
    assert stored.user_attrs[FEATURE_KEY] == cache.stem
    assert stored.user_attrs["settings"]["num_clips"] == 400

    other = _run("prepare", "--num-clips", "420", "--num-speakers", "20", cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert len(list((tmp_path / "storage" / "features").glob("*.pt"))) == 2


def test_another_size_is_refused_on_continuation_before_any_work(
    settings: StudySettings, cli_args, tmp_path: Path
) -> None:
    created = dataclasses.replace(
        settings,
        data="synthetic",
        num_clips=300,
        num_speakers=12,
        data_dir=str(tmp_path / "data"),
        feature_dir=str(tmp_path / "features"),
        model_dir=str(tmp_path / "models"),
    )
    study = optuna.create_study(study_name=created.name, storage=make_storage(created.storage))
    study.set_user_attr("settings", created.to_dict())
    check_continuation(created)

    bigger = dataclasses.replace(created, num_clips=400, num_speakers=20)
    result = subprocess.run(cli_args(bigger), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "--num-clips 300 -> 400" in result.stderr
    assert "--num-speakers 12 -> 20" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((tmp_path / name).exists() for name in ("data", "features", "models"))


def test_a_study_recorded_before_the_size_flags_ran_at_the_default_size(
    settings: StudySettings, tmp_path: Path
) -> None:
    created = dataclasses.replace(settings, data="synthetic")
    recorded = created.to_dict()
    del recorded["num_clips"], recorded["num_speakers"]
    study = optuna.create_study(study_name=created.name, storage=make_storage(created.storage))
    study.set_user_attr("settings", recorded)
    check_continuation(created)  # the default size: the same data

    with pytest.raises(UserError, match="--num-clips 10000 -> 64721") as refused:
        check_continuation(dataclasses.replace(created, num_clips=64_721))
    assert "--study-name" in str(refused.value)
