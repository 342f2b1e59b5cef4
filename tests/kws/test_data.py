from __future__ import annotations

from pathlib import Path

import pytest

from kws.data import open_dataset
from kws.speech_commands import DatasetError
from kws.synth import EmbeddedDatasetConfig


def test_synthetic_is_generated_once_under_data_dir(tmp_path: Path) -> None:
    config = EmbeddedDatasetConfig(num_clips=30, num_speakers=5, noise_seconds=1.0)
    index = open_dataset("synthetic", tmp_path, embedded=config, progress=False)
    assert index.root == tmp_path / f"embedded-{config.key()}"
    assert len(index.clips) == 30
    assert index.split_method == "official"
    assert len(index.noise_files) == 5
    again = open_dataset("synthetic", tmp_path, embedded=config, progress=False)
    assert again.clips == index.clips


def test_a_path_is_indexed_as_speech_commands(shared_data: Path) -> None:
    index = open_dataset(str(shared_data / "speech_commands_v0.02_sample"), keyword="marvin")
    assert index.keyword == "marvin"
    assert {clip.word for clip in index.clips if clip.label == 1} == {"marvin"}


def test_a_missing_path_is_named_in_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError, match="nowhere"):
        open_dataset(str(missing))
