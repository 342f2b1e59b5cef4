"""Indexing and loading Speech Commands folders: the real samples and hand-made broken ones."""

from __future__ import annotations

import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from kws.audio import CLIP_SAMPLES, SAMPLE_RATE, AudioFileError
from kws.speech_commands import (
    BACKGROUND_NOISE_DIR,
    KEYWORD,
    V001_WORDS,
    Clip,
    DatasetError,
    index_speech_commands,
    load_noise,
    load_waveforms,
    which_set,
)

V002_EXTRA_WORDS = ("backward", "follow", "forward", "learn", "visual")

# Entries of the dataset's official lists (validation_list.txt / testing_list.txt, made by
# the README's hash rule at 10 % / 10 %), as committed e.g. in the public GitHub repository
# christosfranco/Signal-Processing-and-Voice-Recognition. They pin which_set to published
# facts rather than to a second copy of the same formula.
OFFICIAL_VALIDATION = (
    "cat/8b775397_nohash_0.wav",
    "cat/2643992f_nohash_1.wav",
    "cat/060cd039_nohash_2.wav",
    "go/6a27a9bf_nohash_0.wav",
    "four/dbb40d24_nohash_0.wav",
    "four/44c201dd_nohash_2.wav",
)
OFFICIAL_TESTING = (
    "cat/2aa787cf_nohash_0.wav",
    "cat/ffa76c4a_nohash_0.wav",
    "cat/24ad3ebe_nohash_1.wav",
    "go/0ea0e2f4_nohash_1.wav",
    "four/27c30960_nohash_0.wav",
    "four/1cb788bc_nohash_0.wav",
)


# --- which_set --------------------------------------------------------------------------


@pytest.mark.parametrize("name", OFFICIAL_VALIDATION)
def test_which_set_matches_official_validation_list(name: str) -> None:
    assert which_set(name, 10.0, 10.0) == "validation"


@pytest.mark.parametrize("name", OFFICIAL_TESTING)
def test_which_set_matches_official_testing_list(name: str) -> None:
    assert which_set(name, 10.0, 10.0) == "testing"


def test_which_set_keeps_a_speaker_together_and_ignores_folders() -> None:
    speakers = [f"{random.Random(seed).getrandbits(32):08x}" for seed in range(200)]
    for speaker in speakers:
        names = [f"{word}/{speaker}_nohash_{n}.wav" for word in ("bed", "sheila") for n in (0, 3)]
        names.append(f"/some/other/root/yes/{speaker}_nohash_1__from_elsewhere.wav")
        assert len({which_set(name, 10.0, 10.0) for name in names}) == 1, speaker


def test_which_set_proportions_approach_the_percentages() -> None:
    generator = random.Random(0)
    count = 20_000
    splits = [
        which_set(f"{generator.getrandbits(32):08x}_nohash_0.wav", 10, 10) for _ in range(count)
    ]
    shares = {name: splits.count(name) / count for name in ("training", "validation", "testing")}
    # Binomial std of a 10 % share over 20k draws is 0.2 %; 1 % is a 5-sigma tolerance.
    assert shares["validation"] == pytest.approx(0.10, abs=0.01)
    assert shares["testing"] == pytest.approx(0.10, abs=0.01)
    assert shares["training"] == pytest.approx(0.80, abs=0.01)


def test_which_set_with_zero_percentages_is_all_training() -> None:
    assert {which_set(name, 0, 0) for name in OFFICIAL_VALIDATION + OFFICIAL_TESTING} == {
        "training"
    }


# --- the real samples -------------------------------------------------------------------


def test_real_v001_sample(shared_data: Path) -> None:
    index = index_speech_commands(shared_data / "speech_commands_v0.01_sample")
    assert index.split_method == "hash"  # the sample has no official lists
    assert {clip.word for clip in index.clips} == set(V001_WORDS)
    assert len(index.clips) == 300
    keyword_clips = [clip for clip in index.clips if clip.label == 1]
    assert len(keyword_clips) == 10
    assert {clip.word for clip in keyword_clips} == {KEYWORD}
    assert len(index.noise_files) == 6
    assert all(clip.split == which_set(clip.path, 10, 10) for clip in index.clips)
    assert [clip.path for clip in index.clips] == sorted(clip.path for clip in index.clips)
    assert sum(len(index.split(name)) for name in ("training", "validation", "testing")) == 300
    assert "SOURCE.md" in index.summary()

    sample = index.clips[::60]
    waveforms = load_waveforms(sample, progress=False)
    assert waveforms.shape == (len(sample), CLIP_SAMPLES)
    assert waveforms.dtype == torch.float32
    assert torch.isfinite(waveforms).all()
    assert (waveforms.abs().amax(dim=1) > 0).all()

    noise = load_noise(index.noise_files)
    assert len(noise) == 6
    assert all(track.ndim == 1 and track.numel() > 50 * SAMPLE_RATE for track in noise)
    assert all(torch.isfinite(track).all() for track in noise)


def test_real_v002_sample_extra_words(shared_data: Path) -> None:
    root = shared_data / "speech_commands_v0.02_sample"
    everything = index_speech_commands(root)
    assert set(V002_EXTRA_WORDS) <= {clip.word for clip in everything.clips}
    assert sum(clip.label for clip in everything.clips) == 13

    v001_only = index_speech_commands(root, words=V001_WORDS)
    assert {clip.word for clip in v001_only.clips} == set(V001_WORDS)
    for word in V002_EXTRA_WORDS:
        assert any(entry.startswith(f"{word}/") for entry in v001_only.ignored)
        assert word in v001_only.summary()
    clip = next(clip for clip in everything.clips if "__from_" in clip.path.name)
    assert "__from_" not in clip.speaker and "_nohash_" not in clip.speaker


# --- hand-made folders ------------------------------------------------------------------


def _tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    time = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * math.pi * frequency * time)).astype(np.float32)


def _make_dataset(root: Path, clips: dict[str, list[str]], noise: bool = True) -> Path:
    """A small Speech Commands tree of 1 s tones written with soundfile."""
    for word, speakers in clips.items():
        for number, speaker in enumerate(speakers):
            path = root / word / f"{speaker}_nohash_{number}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, _tone(300 + 20 * number, 1.0, SAMPLE_RATE), SAMPLE_RATE)
    if noise:
        (root / BACKGROUND_NOISE_DIR).mkdir(parents=True, exist_ok=True)
        soundfile.write(root / BACKGROUND_NOISE_DIR / "hum.wav", _tone(50, 3.0, 8000), 8000)
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return _make_dataset(
        tmp_path / "sc",
        {
            "sheila": ["aaaa0001", "aaaa0002", "2aa787cf"],
            "bed": ["bbbb0001", "8b775397"],
            "cat": ["cccc0001"],
        },
    )


def _only(index_clips: tuple[Clip, ...], name: str) -> Clip:
    return next(clip for clip in index_clips if clip.path.name == name)


def test_hand_made_dataset_indexes_with_labels_and_speakers(dataset: Path) -> None:
    (dataset / "README.md").write_text("about")
    (dataset / ".DS_Store").write_bytes(b"\0")
    (dataset / "sheila" / ".DS_Store").write_bytes(b"\0")
    index = index_speech_commands(dataset)
    assert len(index.clips) == 6
    assert [clip.label for clip in index.clips if clip.word == "sheila"] == [1, 1, 1]
    assert {clip.label for clip in index.clips if clip.word != "sheila"} == {0}
    assert _only(index.clips, "2aa787cf_nohash_2.wav").speaker == "2aa787cf"
    assert _only(index.clips, "2aa787cf_nohash_2.wav").split == "testing"  # hash rule
    assert _only(index.clips, "8b775397_nohash_1.wav").split == "validation"
    summary = index.summary()
    for needle in ("README.md", ".DS_Store", "sheila/.DS_Store", "hash"):
        assert needle in summary


def test_summary_counts_per_class_and_split(dataset: Path) -> None:
    index = index_speech_commands(
        dataset, split="random", validation_percentage=50, testing_percentage=0
    )
    rows = {line.split()[0]: line.split()[1:] for line in index.summary().splitlines()[3:7]}
    assert rows["all"] == ["3", "3", "6"]
    assert int(rows["validation"][2]) == 3
    assert int(rows["testing"][2]) == 0


def test_eight_khz_stereo_becomes_one_second_mono_16k_with_same_pitch(dataset: Path) -> None:
    path = dataset / "sheila" / "dddd0001_nohash_0.wav"
    left, right = _tone(440, 1.0, 8000, 0.2), _tone(440, 1.0, 8000, 0.4)
    soundfile.write(path, np.stack([left, right], axis=1), 8000)
    index = index_speech_commands(dataset)
    [waveform] = load_waveforms([_only(index.clips, path.name)], progress=False)
    assert waveform.shape == (CLIP_SAMPLES,)
    spectrum = torch.fft.rfft(waveform).abs()  # 1 s at 16 kHz: bin k is k Hz
    assert int(spectrum.argmax()) == pytest.approx(440, abs=1)
    # Channels are averaged: a sine of amplitude (0.2 + 0.4) / 2 = 0.3.
    assert float(waveform[1000:15000].abs().max()) == pytest.approx(0.3, abs=0.02)


def test_noise_keeps_full_length_after_resampling(dataset: Path) -> None:
    index = index_speech_commands(dataset)
    [hum] = load_noise(index.noise_files)
    assert hum.shape == (3 * SAMPLE_RATE,)  # 3 s at 8 kHz, not cropped to 1 s


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("corrupt", bytes(random.Random(1).getrandbits(8) for _ in range(2000))),
        ("textfile", b"this is not audio at all\n"),
        ("empty", None),  # a valid WAV header with 0 samples
    ],
)
def test_unreadable_clip_raises_audio_file_error_naming_it(
    dataset: Path, name: str, content: bytes | None
) -> None:
    path = dataset / "bed" / f"{name}_nohash_0.wav"
    if content is None:
        soundfile.write(path, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    else:
        path.write_bytes(content)
    index = index_speech_commands(dataset)  # indexing reads names only
    with pytest.raises(AudioFileError, match=re.escape(path.name)) as caught:
        load_waveforms(index.clips, progress=False)
    assert type(caught.value) is AudioFileError  # propagated unchanged, not wrapped


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no_such_dataset"):
        index_speech_commands(tmp_path / "no_such_dataset")


def test_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "archive.tar.gz").write_bytes(b"\0")
    with pytest.raises(DatasetError, match=re.escape("archive.tar.gz")):
        index_speech_commands(tmp_path / "archive.tar.gz")


def test_missing_keyword_folder_lists_what_exists(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path / "sc", {"bed": ["bbbb0001"], "cat": ["cccc0001"]})
    with pytest.raises(DatasetError) as caught:
        index_speech_commands(root)
    message = str(caught.value)
    assert "sheila" in message and "bed" in message and "cat" in message


def test_word_folder_without_wavs(dataset: Path) -> None:
    (dataset / "dog").mkdir()
    (dataset / "dog" / ".DS_Store").write_bytes(b"\0")
    with pytest.raises(DatasetError, match="dog"):
        index_speech_commands(dataset)


@pytest.mark.parametrize("name", ["notes.txt", "clip.mp3", "nested"])
def test_non_wav_entry_in_word_folder_is_an_error(dataset: Path, name: str) -> None:
    entry = dataset / "cat" / name
    if name == "nested":
        entry.mkdir()
    else:
        entry.write_text("x")
    with pytest.raises(DatasetError, match=re.escape(name)):
        index_speech_commands(dataset)


def test_words_restrict_and_must_exist(dataset: Path) -> None:
    index = index_speech_commands(dataset, words=["sheila", "bed"])
    assert {clip.word for clip in index.clips} == {"sheila", "bed"}
    assert "cat/: not in the requested words" in index.ignored
    with pytest.raises(DatasetError, match="zebra"):
        index_speech_commands(dataset, words=["sheila", "zebra"])
    with pytest.raises(ValueError, match="sheila"):
        index_speech_commands(dataset, words=["bed", "cat"])


def test_background_noise_folder_may_be_empty_or_missing(tmp_path: Path) -> None:
    missing = _make_dataset(tmp_path / "a", {"sheila": ["aaaa0001"]}, noise=False)
    assert index_speech_commands(missing).noise_files == ()
    empty = _make_dataset(tmp_path / "b", {"sheila": ["aaaa0001"]}, noise=False)
    (empty / BACKGROUND_NOISE_DIR).mkdir()
    assert index_speech_commands(empty).noise_files == ()


def test_official_lists_are_honoured(dataset: Path) -> None:
    # 2aa787cf is in the published testing list; listing it here as validation proves the
    # lists override the hash rule.
    (dataset / "validation_list.txt").write_text("sheila/2aa787cf_nohash_2.wav\n")
    (dataset / "testing_list.txt").write_text(
        "bed/bbbb0001_nohash_0.wav\ncat/cccc0001_nohash_0.wav\n"
    )
    index = index_speech_commands(dataset)
    assert index.split_method == "official"
    assert [clip.path.name for clip in index.split("validation")] == ["2aa787cf_nohash_2.wav"]
    assert {clip.word for clip in index.split("testing")} == {"bed", "cat"}
    assert len(index.split("training")) == 3
    hashed = index_speech_commands(dataset, split="hash")
    assert hashed.split_method == "hash"
    assert _only(hashed.clips, "2aa787cf_nohash_2.wav").split == "testing"
    assert any(entry.startswith("validation_list.txt") for entry in hashed.ignored)


def test_official_list_naming_a_missing_file(dataset: Path) -> None:
    (dataset / "validation_list.txt").write_text("bed/ffff9999_nohash_0.wav\n")
    (dataset / "testing_list.txt").write_text("")
    with pytest.raises(DatasetError, match=re.escape("bed/ffff9999_nohash_0.wav")):
        index_speech_commands(dataset)


def test_official_split_requires_both_lists(dataset: Path) -> None:
    (dataset / "validation_list.txt").write_text("bed/bbbb0001_nohash_0.wav\n")
    with pytest.raises(DatasetError, match=re.escape("testing_list.txt")):
        index_speech_commands(dataset, split="official")
    auto = index_speech_commands(dataset)  # one list alone is not the official split
    assert auto.split_method == "hash"
    assert any(entry.startswith("validation_list.txt") for entry in auto.ignored)


def test_random_split_is_seeded_and_sized(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path / "sc", {"sheila": [f"{n:08x}" for n in range(40)]}, noise=False)
    first = index_speech_commands(root, split="random", seed=3)
    again = index_speech_commands(root, split="random", seed=3)
    other = index_speech_commands(root, split="random", seed=4)
    assert first.split_method == "random"
    assert first.clips == again.clips
    assert first.clips != other.clips
    assert (len(first.split("validation")), len(first.split("testing"))) == (4, 4)


def test_bad_arguments(dataset: Path) -> None:
    with pytest.raises(ValueError, match="split method"):
        index_speech_commands(dataset, split="speaker")
    with pytest.raises(ValueError, match="training"):
        index_speech_commands(dataset, validation_percentage=60, testing_percentage=40)
    with pytest.raises(ValueError, match="unknown split"):
        index_speech_commands(dataset).split("train")
