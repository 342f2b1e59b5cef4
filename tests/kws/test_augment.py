from __future__ import annotations

import numpy as np
import pytest
import torch

from kws.augment import (
    AugmentationConfig,
    augment,
    can_cut_off,
    cut_off,
    mix_at_snr,
    time_shift,
    word_spans,
)


def test_time_shift_matches_a_zero_filled_roll() -> None:
    rng = np.random.default_rng(0)
    waveforms = torch.from_numpy(rng.standard_normal((5, 50)).astype(np.float32))
    shifts = torch.tensor([0, 3, -4, 49, -50])
    shifted = time_shift(waveforms, shifts)
    for row, shift in enumerate(shifts.tolist()):
        expected = np.zeros(50, dtype=np.float32)
        source = waveforms[row].numpy()
        if shift >= 0:
            expected[shift:] = source[: 50 - shift]
        else:
            expected[:shift] = source[-shift:]
        np.testing.assert_array_equal(shifted[row].numpy(), expected)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 25.0])
def test_mix_at_snr_gives_the_requested_power_ratio(snr_db: float) -> None:
    generator = torch.Generator().manual_seed(1)
    clean = torch.randn(3, 16_000, generator=generator, dtype=torch.float64) * 0.2
    noise = torch.randn(3, 16_000, generator=generator, dtype=torch.float64) * 0.05
    mixed = mix_at_snr(clean, noise, torch.full((3,), snr_db, dtype=torch.float64))
    added = mixed - clean
    measured = 10 * torch.log10(clean.pow(2).mean(-1) / added.pow(2).mean(-1))
    torch.testing.assert_close(measured, torch.full((3,), snr_db, dtype=torch.float64))


def test_silent_clip_stays_silent_when_noise_is_mixed() -> None:
    mixed = mix_at_snr(torch.zeros(1, 100), torch.ones(1, 100), torch.tensor([10.0]))
    assert torch.count_nonzero(mixed) == 0


def test_augment_uses_each_treatment_about_a_quarter_of_the_time() -> None:
    """Constant clips make each treatment recognisable by its effect."""
    config = AugmentationConfig(max_shift_ms=0.0, gain=(0.25, 0.9))
    clips = torch.full((2000, 400), 0.5)
    noise = [torch.sin(torch.arange(5000) * 0.3)]
    out = augment(clips, noise, config, torch.Generator().manual_seed(0))
    spread = out.std(dim=-1)
    level = out.mean(dim=-1)
    untouched = (spread == 0) & (level == 0.5)
    gained = (spread == 0) & (level < 0.5)
    gaussian = (spread > 0.005) & (spread < 0.015)  # std 0.01 added
    mixed = spread > 0.02  # the sine at 0..20 dB below a 0.5 DC level: std >= 0.035
    counts = [int(mask.sum()) for mask in (untouched, gained, gaussian, mixed)]
    assert sum(counts) == 2000
    assert all(400 < count < 600 for count in counts), counts
    assert out.abs().max() <= 1.0


def test_augment_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    clips = torch.randn(16, 16_000) * 0.1
    noise = [torch.randn(40_000) * 0.1]
    config = AugmentationConfig()
    first = augment(clips.clone(), noise, config, torch.Generator().manual_seed(3))
    again = augment(clips.clone(), noise, config, torch.Generator().manual_seed(3))
    other = augment(clips.clone(), noise, config, torch.Generator().manual_seed(4))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.equal(first, other)


def test_augment_shift_moves_a_click_by_at_most_the_maximum() -> None:
    clips = torch.zeros(200, 16_000)
    clips[:, 8000] = 0.9
    config = AugmentationConfig(max_shift_ms=100.0, noise_std=0.0, gain=(1.0, 1.0))
    out = augment(clips, [], config, torch.Generator().manual_seed(0))  # no noise files
    positions = out.abs().argmax(dim=-1) - 8000
    assert positions.abs().max() <= 1600  # 100 ms at 16 kHz
    assert positions.unique().numel() > 50


def test_a_short_noise_recording_is_looped() -> None:
    config = AugmentationConfig(max_shift_ms=0.0)
    out = augment(torch.zeros(64, 16_000) + 0.1, [torch.ones(100)], config, torch.Generator())
    assert out.shape == (64, 16_000)


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_views", -1), ("max_shift_ms", -1.0), ("noise_std", -0.1), ("gain", (1.0, 0.5)),
     ("snr_db", (20.0, 0.0)), ("cutoff_share", 1.5), ("cutoff_share", -0.1),
     ("cutoff_visible", (0.0, 0.5)), ("cutoff_visible", (0.6, 0.2)),
     ("cutoff_visible", (0.2, 1.0))],
)  # fmt: skip
def test_augmentation_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        AugmentationConfig(**{field: value})


def bursts(starts: list[int], length: int = 4800) -> torch.Tensor:
    """Rows of 16,000 samples: a 0.5-amplitude tone of ``length`` samples at each start,
    over noise 46 dB below it (a "word" in a quiet clip)."""
    generator = torch.Generator().manual_seed(0)
    rows = 0.0025 * torch.randn(len(starts), 16_000, generator=generator)
    tone = 0.5 * torch.sin(torch.arange(length) * 0.2)
    for row, start in enumerate(starts):
        rows[row, start : start + length] += tone
    return rows


def test_word_spans_find_a_tone_burst_to_the_10_ms_frame() -> None:
    starts, ends = word_spans(bursts([0, 3200, 8000, 11_200]))
    torch.testing.assert_close(starts, torch.tensor([0, 3200, 8000, 11_200]), rtol=0, atol=160)
    torch.testing.assert_close(ends, starts + 4800, rtol=0, atol=160)


def test_only_clips_with_a_word_short_of_the_whole_clip_can_be_cut_off() -> None:
    generator = torch.Generator().manual_seed(1)
    silent = torch.zeros(1, 16_000)
    noise = 0.3 * torch.randn(1, 16_000, generator=generator)  # no word: loud everywhere
    assert can_cut_off(torch.cat([bursts([4000]), silent, noise])).tolist() == [True, False, False]


def test_cut_off_leaves_20_to_60_percent_of_the_word_at_one_edge() -> None:
    """Measured on the output samples, independently of word_spans: where the tone is."""
    clips = bursts([5600] * 400)
    out = cut_off(clips, (0.2, 0.6), torch.Generator().manual_seed(0))
    tone = out.abs() > 0.05  # the noise stays under 0.05 (20 sigma)
    visible = tone.sum(dim=-1).float() / 4800
    assert visible.min() >= 0.2 - 0.05 and visible.max() <= 0.6 + 0.05, visible
    at_end = tone[:, -40:].any(dim=-1)  # the word runs into the window's end
    at_start = tone[:, :40].any(dim=-1)
    assert bool((at_end ^ at_start).all())
    assert 150 < int(at_end.sum()) < 250  # either edge about half the time


def test_cut_off_takes_a_bound_per_row() -> None:
    """Keyword rows get a lower ceiling than other words (keyword_cutoff_visible)."""
    clips = bursts([5600] * 400)
    highs = torch.tensor([0.3] * 200 + [0.9] * 200)
    out = cut_off(clips, (0.2, highs), torch.Generator().manual_seed(0))
    visible = (out.abs() > 0.05).sum(dim=-1).float() / 4800
    assert visible[:200].max() <= 0.3 + 0.05
    assert visible[200:].max() > 0.8
