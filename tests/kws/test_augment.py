from __future__ import annotations

import numpy as np
import pytest
import torch

from kws.augment import AugmentationConfig, augment, mix_at_snr, time_shift


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
     ("snr_db", (20.0, 0.0))],
)  # fmt: skip
def test_augmentation_config_rejects_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        AugmentationConfig(**{field: value})
