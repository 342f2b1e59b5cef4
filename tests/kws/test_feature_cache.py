from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import kws.feature_cache
from kws.augment import AugmentationConfig
from kws.feature_cache import (
    build_features,
    feature_cache_key,
    known_feature_cache_key,
    load_or_build_features,
)
from kws.features import LogMel
from kws.speech_commands import SPLITS, index_speech_commands

SMALL = AugmentationConfig(num_views=2)


@pytest.fixture(scope="module")
def cached(tiny_embedded: Path, tmp_path_factory: pytest.TempPathFactory):
    cache_dir = tmp_path_factory.mktemp("features")
    index = index_speech_commands(tiny_embedded)
    return index, cache_dir, load_or_build_features(index, cache_dir, SMALL, progress=False)


def test_shapes_dtypes_and_labels_follow_the_index(cached) -> None:
    index, _, features = cached
    for split in SPLITS:
        clips = index.split(split)
        assert features.features[split].shape == (len(clips), 40, 101)
        assert features.features[split].dtype == torch.float16
        assert features.labels[split].tolist() == [clip.label for clip in clips]
    assert features.training_views.shape == (2, len(index.split("training")), 40, 101)
    assert features.training_views.dtype == torch.float16
    cutoffs = features.cutoff_views
    assert cutoffs.shape[0] == 3 and cutoffs.shape[2:] == (40, 101)
    # 15 % of the training clips, less the few whose word could not be told from the noise.
    assert (
        0.1 * len(index.split("training"))
        <= cutoffs.shape[1]
        <= 0.15 * len(index.split("training")) + 1
    )
    assert cutoffs.dtype == torch.float16


def test_cut_off_words_are_quieter_than_whole_words(cached) -> None:
    """A cut-off word keeps 20-60 % of the word, so fewer loud frames than the clip's."""
    _, _, features = cached

    def loud_frames(spectrograms: torch.Tensor) -> torch.Tensor:
        energy = spectrograms.float().exp().sum(dim=1)  # (N, frames): mel power per frame
        return (energy >= 0.1 * energy.amax(dim=1, keepdim=True)).sum(dim=1).float()

    clean = features.features["training"]
    assert loud_frames(features.cutoff_views[0]).median() < 0.7 * loud_frames(clean).median()


def test_no_cut_off_words_when_the_share_is_zero(tiny_embedded: Path) -> None:
    index = index_speech_commands(tiny_embedded)
    features = build_features(index, AugmentationConfig(num_views=1, cutoff_share=0.0), False)
    assert features.cutoff_views.shape == (2, 0, 40, 101)


def test_clean_features_equal_log_mel_of_the_wav_read_independently(cached) -> None:
    index, _, features = cached
    clips = index.split("validation")[:8]
    samples = np.stack([soundfile.read(str(clip.path), dtype="float32")[0] for clip in clips])
    expected = LogMel()(torch.from_numpy(samples))
    # fp16 storage: about 3 significant digits on values of magnitude up to ~21.
    torch.testing.assert_close(
        features.features["validation"][:8].float(), expected, rtol=1e-3, atol=2e-2
    )


def test_views_are_augmented_not_copies(cached) -> None:
    _, _, features = cached
    clean = features.features["training"].float()
    for view in features.training_views.float():
        changed = (view - clean).abs().amax(dim=(1, 2)) > 0.1
        assert changed.float().mean() > 0.5  # time shift alone changes nearly every clip


def test_second_call_reads_the_cache_without_computing(cached, monkeypatch) -> None:
    index, cache_dir, features = cached

    def must_not_run(*args, **kwargs):
        raise AssertionError("features were recomputed although the cache file exists")

    monkeypatch.setattr(kws.feature_cache, "build_features", must_not_run)
    again = load_or_build_features(index, cache_dir, SMALL, progress=False)
    assert again.key == features.key
    assert torch.equal(again.training_views, features.training_views)
    assert sorted(p.name for p in cache_dir.iterdir()) == [f"{features.key}.pt", "keys"]


def test_builds_are_deterministic(cached) -> None:
    index, _, features = cached
    rebuilt = build_features(index, SMALL, progress=False)
    assert torch.equal(rebuilt.training_views, features.training_views)
    assert torch.equal(rebuilt.cutoff_views, features.cutoff_views)
    for split in SPLITS:
        assert torch.equal(rebuilt.features[split], features.features[split])


def test_key_depends_on_content_labels_and_recipe(tiny_embedded: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_embedded, copy)
    index = index_speech_commands(copy)
    key = feature_cache_key(index, SMALL)
    assert feature_cache_key(index_speech_commands(copy), SMALL) == key
    assert feature_cache_key(index, AugmentationConfig(num_views=3)) != key
    assert feature_cache_key(index_speech_commands(copy, keyword="bed"), SMALL) != key

    clip = index.clips[0].path
    samples, rate = soundfile.read(str(clip), dtype="int16")
    samples[100] = samples[100] + 1  # one sample, one bit
    soundfile.write(str(clip), samples, rate, subtype="PCM_16")
    assert feature_cache_key(index_speech_commands(copy), SMALL) != key


def test_a_known_key_is_reused_only_for_files_of_the_same_size_and_time(
    tiny_embedded: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_embedded, copy)
    cache = tmp_path / "cache"
    assert known_feature_cache_key(index_speech_commands(copy), SMALL, cache) == (
        feature_cache_key(index_speech_commands(copy), SMALL)
    )
    built = load_or_build_features(index_speech_commands(copy), cache, SMALL, progress=False)

    # Rewritten with another sample but the same size and time: the recorded key is used,
    # so no clip was read (the content key now differs).
    clip = index_speech_commands(copy).clips[0].path
    stat = clip.stat()
    samples, rate = soundfile.read(str(clip), dtype="int16")
    samples[100] = samples[100] + 1
    soundfile.write(str(clip), samples, rate, subtype="PCM_16")
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert clip.stat().st_size == stat.st_size
    index = index_speech_commands(copy)
    assert known_feature_cache_key(index, SMALL, cache) == built.key
    assert feature_cache_key(index, SMALL) != built.key

    # Any edit changes the time: hashed anew. So does another recipe, or a deleted cache.
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert known_feature_cache_key(index, SMALL, cache) == feature_cache_key(index, SMALL)
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    other = AugmentationConfig(num_views=3)
    assert known_feature_cache_key(index, other, cache) == feature_cache_key(index, other)
    (cache / f"{built.key}.pt").unlink()
    assert known_feature_cache_key(index, SMALL, cache) == feature_cache_key(index, SMALL)


def test_a_corrupt_clip_is_reported_by_name(tiny_embedded: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_embedded, copy)
    bad = sorted((copy / "sheila").iterdir())[0]
    bad.write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(ValueError, match=bad.name):
        load_or_build_features(index_speech_commands(copy), tmp_path / "cache", SMALL, False)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_real_speech_commands_sample_with_real_noise(shared_data: Path, tmp_path: Path) -> None:
    index = index_speech_commands(shared_data / "speech_commands_v0.01_sample")
    features = load_or_build_features(index, tmp_path, SMALL, progress=False)
    total = sum(len(features.labels[split]) for split in SPLITS)
    assert total == 300
    assert sum(int(features.labels[split].sum()) for split in SPLITS) == 10
    assert all(torch.isfinite(features.features[split]).all() for split in SPLITS)
