from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

import kws.synth
from kws.speech_commands import KEYWORD, V001_WORDS, index_speech_commands
from kws.synth import (
    CONFUSERS,
    NOISE_KINDS,
    EmbeddedDatasetConfig,
    ensure_embedded_dataset,
    generate_embedded_dataset,
)


def _digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_layout_is_speech_commands_v001(tiny_embedded: Path) -> None:
    folders = {p.name for p in tiny_embedded.iterdir() if p.is_dir()}
    assert KEYWORD in folders
    assert folders - {"_background_noise_"} <= set(V001_WORDS) | set(CONFUSERS)
    names = [p.name for p in tiny_embedded.glob("*/*_nohash_*.wav")]
    assert len(names) == 160
    assert all(len(name.split("_nohash_")[0]) == 8 for name in names)  # 8-hex speaker ids


def test_clips_are_1s_16khz_mono_16bit_pcm_and_not_silent(tiny_embedded: Path) -> None:
    for path in sorted(tiny_embedded.glob("*/*_nohash_*.wav"))[:40]:
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (
            16_000, 1, 16_000, "PCM_16",
        )  # fmt: skip
        samples, _ = soundfile.read(str(path))
        assert np.abs(samples).max() > 0.01


def test_background_noise_has_every_kind_at_the_requested_length(
    tiny_embedded: Path, tiny_embedded_config: EmbeddedDatasetConfig
) -> None:
    files = sorted((tiny_embedded / "_background_noise_").glob("*.wav"))
    assert [f.stem for f in files] == sorted(NOISE_KINDS)
    for path in files:
        samples, rate = soundfile.read(str(path))
        assert rate == 16_000
        assert len(samples) == int(tiny_embedded_config.noise_seconds * 16_000)
        assert samples.std() > 0.01


def test_spectra_of_coloured_noises_fall_with_frequency_as_designed(tiny_embedded: Path) -> None:
    """Power per octave: flat for pink, +3 dB/octave for white, -3 dB/octave for brown."""

    def octave_slope_db(name: str) -> float:
        samples, _ = soundfile.read(str(tiny_embedded / "_background_noise_" / f"{name}.wav"))
        power = np.abs(np.fft.rfft(samples)) ** 2
        freqs = np.fft.rfftfreq(len(samples), 1 / 16_000)
        low = power[(freqs >= 250) & (freqs < 500)].sum()
        high = power[(freqs >= 2000) & (freqs < 4000)].sum()
        return 10 * np.log10(high / low) / 3  # three octaves apart

    assert octave_slope_db("white_noise") == pytest.approx(3.0, abs=0.5)
    assert octave_slope_db("pink_noise") == pytest.approx(0.0, abs=0.5)
    assert octave_slope_db("brown_noise") == pytest.approx(-3.0, abs=0.5)


def test_mains_hum_peaks_at_50_or_60_hz(tiny_embedded: Path) -> None:
    samples, _ = soundfile.read(str(tiny_embedded / "_background_noise_" / "mains_hum.wav"))
    freqs = np.fft.rfftfreq(len(samples), 1 / 16_000)
    assert freqs[np.abs(np.fft.rfft(samples)).argmax()] == pytest.approx(50, abs=1) or freqs[
        np.abs(np.fft.rfft(samples)).argmax()
    ] == pytest.approx(60, abs=1)


def test_splits_are_by_speaker_and_read_back_by_the_loader(tiny_embedded: Path) -> None:
    index = index_speech_commands(tiny_embedded)
    assert index.split_method == "official"
    speakers = {
        split: {clip.speaker for clip in index.split(split)}
        for split in ("training", "validation", "testing")
    }
    assert all(speakers.values())
    assert not speakers["training"] & speakers["validation"]
    assert not speakers["training"] & speakers["testing"]
    assert not speakers["validation"] & speakers["testing"]
    assert sum(clip.label for clip in index.clips) == len(list((tiny_embedded / KEYWORD).iterdir()))


def test_same_config_gives_byte_identical_files(
    tmp_path: Path, tiny_embedded: Path, tiny_embedded_config: EmbeddedDatasetConfig
) -> None:
    again = generate_embedded_dataset(tmp_path / "again", tiny_embedded_config, progress=False)
    assert _digests(again) == _digests(tiny_embedded)


def test_clips_spoken_beside_the_babble_and_any_process_count_give_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 410 clips and 12 babble words: the last batch of 400 holds clips and babble, and is
    # spoken first; the clips are written in order whichever process finishes first.
    config = EmbeddedDatasetConfig(num_clips=410, num_speakers=6, noise_seconds=1.0)
    monkeypatch.setattr(kws.synth, "usable_cores", lambda: 1)
    two = generate_embedded_dataset(tmp_path / "two", config, progress=False)
    monkeypatch.setattr(kws.synth, "usable_cores", lambda: 5)
    five = generate_embedded_dataset(tmp_path / "five", config, progress=False)
    assert _digests(two) == _digests(five)
    assert len(index_speech_commands(two).clips) == 410


def test_another_seed_gives_other_speakers_and_audio(tmp_path: Path) -> None:
    config = EmbeddedDatasetConfig(num_clips=20, num_speakers=4, noise_seconds=1.0)
    first = generate_embedded_dataset(tmp_path / "a", config, progress=False)
    other_seed = EmbeddedDatasetConfig(num_clips=20, num_speakers=4, noise_seconds=1.0, seed=1)
    second = generate_embedded_dataset(tmp_path / "b", other_seed, progress=False)
    assert set(_digests(first).values()).isdisjoint(_digests(second).values())


def test_ensure_reuses_a_complete_dataset_and_replaces_a_partial_one(tmp_path: Path) -> None:
    config = EmbeddedDatasetConfig(num_clips=10, num_speakers=3, noise_seconds=1.0)
    root = ensure_embedded_dataset(tmp_path, config, progress=False)
    assert root.name == f"embedded-{config.key()}"
    marker = json.loads((root / "embedded_dataset.json").read_text())
    assert EmbeddedDatasetConfig(**marker["config"]) == config  # JSON round trip
    sentinel = root / "bed" / "sentinel.txt"
    sentinel.parent.mkdir(exist_ok=True)
    sentinel.write_text("kept")
    assert ensure_embedded_dataset(tmp_path, config, progress=False) == root
    assert sentinel.read_text() == "kept"  # not regenerated

    (root / "embedded_dataset.json").unlink()  # as if interrupted before completion
    assert ensure_embedded_dataset(tmp_path, config, progress=False) == root
    assert not sentinel.exists()
    assert (root / "embedded_dataset.json").is_file()


def test_generate_refuses_to_overwrite(tiny_embedded: Path) -> None:
    with pytest.raises(FileExistsError, match=str(tiny_embedded)):
        generate_embedded_dataset(tiny_embedded, EmbeddedDatasetConfig(num_clips=5))


def test_config_key_changes_with_every_knob() -> None:
    base = EmbeddedDatasetConfig()
    variants = [
        EmbeddedDatasetConfig(num_clips=8001),
        EmbeddedDatasetConfig(keyword_share=0.2),
        EmbeddedDatasetConfig(confuser_share=0.1),
        EmbeddedDatasetConfig(snr_db=(5.0, 30.0)),
        EmbeddedDatasetConfig(seed=1),
    ]
    keys = {base.key(), *(variant.key() for variant in variants)}
    assert len(keys) == 1 + len(variants)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_clips": 0}, "num_clips"),
        ({"num_speakers": 2}, "num_speakers"),
        ({"keyword_share": 0.7, "confuser_share": 0.5}, "keyword_share"),
        ({"validation_percentage": 60.0, "testing_percentage": 50.0}, "validation_percentage"),
        ({"snr_db": (30.0, 0.0)}, "snr_db"),
        ({"gain_db": (0.0, -10.0)}, "gain_db"),
        ({"noise_seconds": 0.5}, "noise_seconds"),
    ],
)
def test_config_rejects_bad_knobs_by_name(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        EmbeddedDatasetConfig(**kwargs)
