"""Shared fixtures: the real Speech Commands samples beside the checkout, toy configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KWS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` with the real v0.01/v0.02 samples; skips (with the reason) if absent."""
    if not (SHARED_DATA / "speech_commands_v0.01_sample").is_dir():
        pytest.skip(
            f"real Speech Commands samples not found at {SHARED_DATA} (set KWS_SHARED_DATA)"
        )
    return SHARED_DATA
