"""The command line, run as a user runs it: a subprocess in a scratch working directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_study.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_explains_every_prepare_flag(tmp_path: Path) -> None:
    result = _run("prepare", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for flag in ("--data", "--keyword", "--data-dir", "--feature-dir", "--seed",
                 "--num-clips", "--num-speakers", "--no-progress"):  # fmt: skip
        assert flag in result.stdout


def test_prepare_on_real_samples_prints_the_split_summary(
    shared_data: Path, tmp_path: Path
) -> None:
    data = shared_data / "speech_commands_v0.01_sample"
    result = _run("prepare", "--data", str(data), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "split method: hash" in result.stdout
    assert "feature cache storage/features/" in result.stdout
    assert len(list((tmp_path / "storage" / "features").glob("*.pt"))) == 1


def test_prepare_synthetic_makes_the_embedded_dataset(tmp_path: Path) -> None:
    result = _run("prepare", "--num-clips", "400", "--num-speakers", "20", "--no-progress",
                  cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "split method: official" in result.stdout
    assert len(list((tmp_path / "storage" / "data").glob("embedded-*/sheila/*.wav"))) > 0


def test_bad_data_path_exits_2_naming_it(tmp_path: Path) -> None:
    result = _run("prepare", "--data", str(tmp_path / "missing-folder"), cwd=tmp_path)
    assert result.returncode == 2
    assert "missing-folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_explains_every_study_flag_and_command(tmp_path: Path) -> None:
    result = _run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for flag in ("--trials", "--storage", "--study-name", "--data", "--keyword", "--max-epochs",
                 "--timeout", "--n-jobs", "--seed", "--device", "--max-au-fa-fr", "--pruner",
                 "--skip-hopeless", "--no-skip-hopeless", "--heartbeat-interval", "--num-clips",
                 "--num-speakers",
                 "--grace-period", "--artifact-dir", "--min-compression",
                 "--min-speedup", "--patience", "--ema-decay", "--freq-mask",
                 "--time-mask"):  # fmt: skip
        assert flag in result.stdout
    for command in ("prepare", "export", "train", "stream", "dashboard", "report"):
        assert command in result.stdout
    dashboard = _run("dashboard", "--help", cwd=tmp_path)
    assert "127.0.0.1" in dashboard.stdout and "--port" in dashboard.stdout


def test_a_negative_floor_exits_2_naming_the_flag(tmp_path: Path) -> None:
    result = _run("--min-speedup", "-1", "--no-progress", cwd=tmp_path)
    assert result.returncode == 2
    assert "--min-speedup must be >= 0, got -1" in result.stderr
    result = _run("--patience", "-1", "--no-progress", cwd=tmp_path)
    assert result.returncode == 2
    assert "--patience must be >= 0" in result.stderr and "Traceback" not in result.stderr
    result = _run("--ema-decay", "1", "--no-progress", cwd=tmp_path)
    assert result.returncode == 2
    assert "--ema-decay must be in [0, 1), got 1.0" in result.stderr
    assert "Traceback" not in result.stderr
    result = _run("--time-mask", "-2", "--no-progress", cwd=tmp_path)
    assert result.returncode == 2
    assert "--time-mask must be >= 0 (0: no mask), got -2" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "storage").exists()  # refused before any file is made


def test_options_before_a_command_are_refused(tmp_path: Path) -> None:
    # argparse would give export its own --seed default (0): seed 0's study, silently.
    for args in (("--seed", "1", "export"), ("--study-name", "export", "export", "--seeds", "2")):
        result = _run(*args, cwd=tmp_path)
        assert result.returncode == 2
        assert "options go after the command: python run_study.py export" in result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "storage").exists()
    assert "A command's options go after it" in _run("--help", cwd=tmp_path).stdout
