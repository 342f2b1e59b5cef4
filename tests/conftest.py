"""Shared fixtures: the real Speech Commands samples beside the checkout, toy configs."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
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


TINY_EMBEDDED = None  # set lazily: importing kws.synth pulls in torch


@pytest.fixture(scope="session")
def tiny_embedded_config():
    """A toy embedded dataset: seconds to make, every layout feature present."""
    from kws.synth import EmbeddedDatasetConfig

    return EmbeddedDatasetConfig(
        num_clips=160, keyword_share=0.2, confuser_share=0.2, num_speakers=12, noise_seconds=3.0
    )


@pytest.fixture(scope="session")
def tiny_embedded(tmp_path_factory, tiny_embedded_config) -> Path:
    """The toy embedded dataset on disk (generated once per test session)."""
    from kws.synth import generate_embedded_dataset

    root = tmp_path_factory.mktemp("embedded") / "tiny"
    return generate_embedded_dataset(root, tiny_embedded_config, progress=False)


@pytest.fixture(scope="session")
def tiny_features(tiny_embedded, tmp_path_factory):
    """Features of the toy embedded dataset with one augmented view."""
    from kws.augment import AugmentationConfig
    from kws.feature_cache import load_or_build_features
    from kws.speech_commands import index_speech_commands

    cache_dir = tmp_path_factory.mktemp("tiny-features")
    index = index_speech_commands(tiny_embedded)
    return load_or_build_features(index, cache_dir, AugmentationConfig(num_views=1), False)


@pytest.fixture(scope="session")
def export_document():
    """``export_document(model_config)``: a complete config.json document in the format
    ``study.export.read_export`` accepts, with plausible figures, for a model no study made."""
    from kws.training import TrainConfig
    from study.export import EXPORT_FORMAT
    from study.settings import StudySettings

    def document(model_config) -> dict:
        return {
            "format": EXPORT_FORMAT,
            "model": model_config.to_dict(),
            "training": TrainConfig().to_dict(),
            "settings": StudySettings().to_dict(),
            "study": {"trial_number": 0},
            "metrics": {"compression_rate": 1.0, "speedup": 1.0, "score": 0.7},
            "selection": {"confirmed": True, "candidates": []},
            "held_out": {
                "seeds": [3, 4, 5],
                "val_au_fa_fr": [4.0e-3, 4.1e-3, 3.9e-3],
                "test_au_fa_fr": [3.1e-3, 3.3e-3, 3.2e-3],
                "test_au_fa_fr_mean": 3.2e-3,
                "test_au_fa_fr_std": 8.2e-5,
                "bar": 4.4e-3,
                "reference_val_au_fa_fr": 4.0e-3,
                "reference_test_au_fa_fr": 3.0e-3,
                "bar_ratio": 1.1,
                "test_bar": 3.3e-3,
                "confirmed": True,
                "passes": True,
            },
            "versions": {},
        }

    return document


@pytest.fixture(scope="session")
def fake_export(export_document):
    """``fake_export(folder, model)``: an export folder in the documented format (read back
    by ``study.export.read_export``) for a model that no study made, for the CLI's tests."""
    import json

    import torch

    from study.export import CONFIG_FILE, WEIGHTS_FILE, load_weights

    def write(folder: Path, model) -> Path:
        folder.mkdir()
        (folder / CONFIG_FILE).write_text(json.dumps(export_document(model.config)))
        torch.save(model.state_dict(), folder / WEIGHTS_FILE)
        assert load_weights(folder).config == model.config
        return folder

    return write


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Python's own SIGINT handler, as in a terminal: a shell that starts jobs in the
    background (a CI runner may) makes them ignore SIGINT, and a Ctrl-C then does nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
