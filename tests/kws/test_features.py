"""kws.features: log-mel against an independent numpy implementation, SpecAugment invariants.

The numpy reference below is written from the definition in background.md (torchaudio's
MelSpectrogram defaults): centred frames with reflect padding, periodic Hann window,
power spectrum, HTK mel filterbank without normalisation, clamp to [1e-9, 1e9], natural log.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kws.features import FRAMES_PER_CLIP, LogMel, SpecAugment, num_frames, seconds_to_frames

SAMPLE_RATE = 16_000
N_FFT = 400
HOP = 160
N_MELS = 40
F_MAX = SAMPLE_RATE / 2
LOG_FLOOR = math.log(1e-9)
LOG_FLOOR_F32 = float(np.float32(LOG_FLOOR))  # what a float32 tensor can hold


# --------------------------------------------------------------------------- numpy reference


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_band_edges(n_mels: int = N_MELS) -> np.ndarray:
    """n_mels + 2 frequencies (Hz) equally spaced on the HTK mel scale from 0 to 8 kHz."""
    return mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(F_MAX), n_mels + 2))


def mel_band_centres(n_mels: int = N_MELS) -> np.ndarray:
    return mel_band_edges(n_mels)[1:-1]


def reference_filterbank(n_mels: int = N_MELS) -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangles on the linear STFT bin frequencies.

    Filter m rises linearly from 0 at edge m to 1 at edge m + 1 and falls back to 0 at
    edge m + 2 (as torchaudio's melscale_fbanks, librosa-style, with norm=None).
    """
    n_bins = N_FFT // 2 + 1
    bin_hz = np.arange(n_bins) * (SAMPLE_RATE / 2) / (n_bins - 1)  # 0, 40, ..., 8000 Hz
    edges = mel_band_edges(n_mels)
    bank = np.zeros((n_bins, n_mels))
    for m in range(n_mels):
        lower, centre, upper = edges[m], edges[m + 1], edges[m + 2]
        for k, f in enumerate(bin_hz):
            if lower < f <= centre:
                bank[k, m] = (f - lower) / (centre - lower)
            elif centre < f < upper:
                bank[k, m] = (upper - f) / (upper - centre)
    return bank


def reference_mel_power(waveform: np.ndarray) -> np.ndarray:
    """(samples,) -> (n_mels, frames) mel power in float64."""
    x = np.asarray(waveform, dtype=np.float64)
    padded = np.pad(x, N_FFT // 2, mode="reflect")  # reflect excludes the edge sample
    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)  # periodic Hann
    frames = 1 + (len(padded) - N_FFT) // HOP
    spectrum = np.stack(
        [np.fft.rfft(padded[t * HOP : t * HOP + N_FFT] * window) for t in range(frames)]
    )
    power = np.abs(spectrum) ** 2  # (frames, n_fft // 2 + 1)
    return (power @ reference_filterbank()).T


def reference_log_mel(waveform: np.ndarray) -> np.ndarray:
    return np.log(np.clip(reference_mel_power(waveform), 1e-9, 1e9))


def sine(freq_hz: float, amplitude: float = 0.5, phase: float = 0.0, samples: int = 16_000):
    t = np.arange(samples) / SAMPLE_RATE
    return amplitude * np.sin(2.0 * np.pi * freq_hz * t + phase)


def log_mel(waveform: np.ndarray) -> np.ndarray:
    """kws.features.LogMel on one float32 clip, as float64 numpy."""
    x = torch.tensor(np.asarray(waveform), dtype=torch.float32)[None]
    with torch.no_grad():
        return LogMel()(x)[0].double().numpy()


# --------------------------------------------------------------------------- frame counts


def test_seconds_to_frames_of_one_and_two_seconds() -> None:
    assert seconds_to_frames(1.0) == 101
    assert seconds_to_frames(2.0) == 201
    assert FRAMES_PER_CLIP == 101


@pytest.mark.parametrize("samples", [0, -1, -16_000])
def test_num_frames_rejects_non_positive_lengths(samples: int) -> None:
    with pytest.raises(ValueError):
        num_frames(samples)


@pytest.mark.parametrize("samples", [8_000, 12_345, 16_000, 16_159, 16_160, 32_000])
def test_num_frames_matches_the_frames_logmel_produces(samples: int) -> None:
    # A centred STFT pads n_fft // 2 on both sides: 1 + (samples + 2 * 200 - 400) // 160.
    by_definition = 1 + (samples + 2 * (N_FFT // 2) - N_FFT) // HOP
    assert num_frames(samples) == by_definition
    with torch.no_grad():
        out = LogMel()(torch.zeros(1, samples))
    assert out.shape == (1, N_MELS, by_definition)


def test_logmel_maps_a_batch_of_clips_to_40_by_101() -> None:
    with torch.no_grad():
        out = LogMel()(torch.randn(3, 16_000) * 0.1)
    assert out.shape == (3, 40, 101)
    assert out.dtype == torch.float32


def test_logmel_maps_two_seconds_to_201_frames() -> None:
    with torch.no_grad():
        out = LogMel()(torch.randn(2, 32_000) * 0.1)
    assert out.shape == (2, 40, seconds_to_frames(2.0))


# --------------------------------------------------------------------------- values


def test_reference_filterbank_is_a_set_of_single_peaked_triangles() -> None:
    # Sanity of the reference itself: 40 non-empty filters, each rising then falling,
    # everything in [0, 1].
    bank = reference_filterbank()
    assert bank.shape == (201, 40)
    assert bank.min() >= 0.0 and bank.max() <= 1.0
    assert (bank.max(axis=0) > 0.5).all()
    for m in range(40):
        column = bank[:, m]
        peak = int(column.argmax())
        assert np.all(np.diff(column[: peak + 1]) >= 0)
        assert np.all(np.diff(column[peak:]) <= 0)


_RNG = np.random.default_rng(1234)
SIGNALS = {
    "uniform_noise": _RNG.uniform(-1.0, 1.0, 16_000),
    "quiet_gaussian_noise": 0.01 * _RNG.standard_normal(16_000),
    "sine_1khz": sine(1000.0),
    "sine_440_5hz_phase": sine(440.5, amplitude=0.3, phase=0.3),
    "two_seconds_sine_plus_noise": sine(300.0, samples=32_000) + 0.2 * _RNG.standard_normal(32_000),
}


@pytest.mark.parametrize("name", list(SIGNALS))
def test_logmel_equals_independent_numpy_log_mel(name: str) -> None:
    waveform = SIGNALS[name].astype(np.float32)
    expected_power = reference_mel_power(waveform)
    expected = np.log(np.clip(expected_power, 1e-9, 1e9))
    got = log_mel(waveform)
    assert got.shape == expected.shape

    # Tolerance: LogMel runs in float32, so its power carries a round-off of a few float32
    # eps relative to the clip's peak power (FFT errors spread across bins). A log
    # difference is only meaningful well above that floor, so logs are compared where the
    # reference power is within 60 dB of the peak (> 1e-6 x peak): the observed error there
    # is <= 3e-5 on these signals, and we allow 1e-3. Everywhere else (including the
    # clamped cells) the powers must agree to 1e-5 x peak (observed <= 2.6e-6 x peak), which
    # still catches a wrong filter, window, scale or padding: those move powers by far more.
    peak = expected_power.max()
    loud = expected_power > 1e-6 * peak
    assert loud.mean() > 0.05  # the comparison is not vacuous
    np.testing.assert_allclose(got[loud], expected[loud], atol=1e-3, rtol=0.0)
    got_power = np.exp(got)
    got_power[got <= LOG_FLOOR + 1e-4] = 0.0  # clamped cells: power below 1e-9
    np.testing.assert_allclose(got_power, expected_power, atol=1e-5 * peak, rtol=0.0)


def test_logmel_values_clamp_at_both_ends() -> None:
    # A loud clip (|x| up to 1e4) drives the mel power past 1e9: the log saturates there.
    loud = SIGNALS["uniform_noise"] * 1e4
    got = log_mel(loud.astype(np.float32))
    expected_power = reference_mel_power(loud)
    assert (expected_power > 1e9).any()
    assert got.max() == pytest.approx(math.log(1e9), abs=1e-4)
    saturated = expected_power > 1.01e9
    np.testing.assert_allclose(got[saturated], math.log(1e9), atol=1e-4)


def test_silence_gives_log_of_the_floor_everywhere() -> None:
    with torch.no_grad():
        out = LogMel()(torch.zeros(2, 16_000))
    assert out.shape == (2, 40, 101)
    np.testing.assert_allclose(out.double().numpy(), LOG_FLOOR, atol=1e-5, rtol=0.0)


def test_mel_band_centres_follow_the_htk_formula() -> None:
    centres = mel_band_centres()
    mels = 2595.0 * np.log10(1.0 + centres / 700.0)
    step = hz_to_mel(8000.0) / 41
    np.testing.assert_allclose(mels, step * np.arange(1, 41), rtol=1e-12)


@pytest.mark.parametrize("freq_hz", [250.0, 1000.0, 3000.0])
def test_sine_peaks_in_the_band_whose_centre_is_nearest(freq_hz: float) -> None:
    got = log_mel(sine(freq_hz).astype(np.float32))
    energy_per_band = np.exp(got).mean(axis=1)
    nearest = int(np.argmin(np.abs(mel_band_centres() - freq_hz)))
    assert int(np.argmax(energy_per_band)) == nearest
    # The same holds frame by frame away from the padded edges.
    assert (got[:, 2:-2].argmax(axis=0) == nearest).all()


def test_one_khz_sine_peaks_in_band_13() -> None:
    # Hand check: mel(1000) = 999.99; band step = mel(8000) / 41 = 2840.02 / 41 = 69.27,
    # so 1 kHz sits 14.44 steps up, nearest centre is step 14, i.e. band index 13.
    got = log_mel(sine(1000.0).astype(np.float32))
    assert int(np.argmax(got.mean(axis=1))) == 13


def test_each_clip_alone_equals_its_batch_row() -> None:
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(4, 16_000, generator=generator) * 0.2
    logmel = LogMel()
    with torch.no_grad():
        batched = logmel(batch)
        for i in range(len(batch)):
            torch.testing.assert_close(logmel(batch[i : i + 1])[0], batched[i])
            torch.testing.assert_close(logmel(batch[i]), batched[i])  # unbatched (time,)


def test_logmel_of_a_louder_clip_shifts_by_the_log_of_the_gain() -> None:
    # Power scales with amplitude squared: x2 amplitude adds log(4) where nothing clamps.
    clip = SIGNALS["quiet_gaussian_noise"].astype(np.float32)
    base = log_mel(clip)
    louder = log_mel(2.0 * clip)
    np.testing.assert_allclose(louder - base, math.log(4.0), atol=1e-4)


@pytest.mark.parametrize("n_mels", [202, 256, 1000])
def test_too_many_mel_bands_for_n_fft_raise_naming_n_mels(n_mels: int) -> None:
    with pytest.raises(ValueError, match="n_mels"):
        LogMel(n_mels=n_mels)


def test_reference_filterbank_first_has_an_empty_band_at_90_mels() -> None:
    # With 40 Hz STFT bins, the lowest HTK triangles get narrower than a bin from 90 bands
    # on: some triangle then covers no bin centre and its mel row is all log(1e-9).
    assert (reference_filterbank(89).max(axis=0) > 0).all()
    assert (reference_filterbank(90).max(axis=0) == 0).any()


@pytest.mark.filterwarnings("ignore:At least one mel filterbank has all zero values")
@pytest.mark.parametrize("n_mels", [90, 128, 201])
def test_band_counts_that_leave_an_empty_mel_filter_raise_naming_n_mels(n_mels: int) -> None:
    with pytest.raises(ValueError, match="n_mels"):
        LogMel(n_mels=n_mels)


@pytest.mark.parametrize("n_mels", [20, 64, 89])
def test_other_band_counts_give_that_many_rows(n_mels: int) -> None:
    with torch.no_grad():
        out = LogMel(n_mels=n_mels)(torch.randn(1, 16_000) * 0.1)
    assert out.shape == (1, n_mels, 101)


# --------------------------------------------------------------------------- SpecAugment


def test_specaugment_is_the_identity_in_eval_mode() -> None:
    augment = SpecAugment().eval()
    x = torch.randn(8, 40, 101)
    out = augment(x)
    assert torch.equal(out, x)


@pytest.mark.parametrize(("freq_mask", "time_mask"), [(-1, 35), (15, -1), (-3, -3)])
def test_negative_mask_widths_raise(freq_mask: int, time_mask: int) -> None:
    with pytest.raises(ValueError):
        SpecAugment(freq_mask=freq_mask, time_mask=time_mask)


def test_zero_mask_widths_leave_features_unchanged_in_train_mode() -> None:
    augment = SpecAugment(freq_mask=0, time_mask=0).train()
    x = torch.randn(4, 40, 101)
    assert torch.equal(augment(x), x)


def _contiguous_run(flags: np.ndarray) -> tuple[int, int]:
    """(start, width) of the single run of True in ``flags``; fails if there are several."""
    indices = np.flatnonzero(flags)
    if len(indices) == 0:
        return -1, 0
    assert np.all(np.diff(indices) == 1), f"mask is not contiguous: {indices}"
    return int(indices[0]), len(indices)


def _masks(out: torch.Tensor) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Per example ((band start, band width), (span start, span width)); checks the layout."""
    values = out.double().numpy()
    masked = values == LOG_FLOOR_F32  # math.log(1e-9), rounded to float32
    result = []
    for example, cells in zip(values, masked, strict=True):
        # Unmasked cells keep their value (1.0); masked ones hold exactly log(1e-9).
        np.testing.assert_array_equal(example[~cells], 1.0)
        bands = cells.all(axis=1)  # mel bins masked over all frames
        frames = cells.all(axis=0)  # frames masked over all bins
        # Every masked cell belongs to a fully masked band or a fully masked frame span.
        np.testing.assert_array_equal(cells, bands[:, None] | frames[None, :])
        result.append((_contiguous_run(bands), _contiguous_run(frames)))
    return result


def test_specaugment_masks_one_band_and_one_span_per_example() -> None:
    torch.manual_seed(0)
    augment = SpecAugment().train()
    x = torch.ones(64, 40, 101)
    out = augment(x)
    assert out.shape == x.shape
    assert torch.equal(x, torch.ones(64, 40, 101))  # the input is not modified in place
    masks = _masks(out)
    band_widths = [band[1] for band, _ in masks]
    span_widths = [span[1] for _, span in masks]
    assert max(band_widths) < 15
    assert max(span_widths) < 35
    # iid: the examples of one batch get different masks.
    assert len({band for band, _ in masks}) > 10
    assert len({span for _, span in masks}) > 10
    assert any(width > 0 for width in band_widths)
    assert any(width > 0 for width in span_widths)


def test_specaugment_mask_widths_cover_their_range() -> None:
    # Widths are drawn uniformly from {0, ..., max - 1}: over many examples both ends occur.
    torch.manual_seed(1)
    out = SpecAugment().train()(torch.ones(1024, 40, 101))
    masks = _masks(out)
    band_widths = {band[1] for band, _ in masks}
    span_widths = {span[1] for _, span in masks}
    assert band_widths == set(range(15))
    assert min(span_widths) <= 1 and max(span_widths) == 34
    assert all(0 <= width < 35 for width in span_widths)


def test_specaugment_draws_new_masks_on_each_call() -> None:
    torch.manual_seed(2)
    augment = SpecAugment().train()
    x = torch.ones(16, 40, 101)
    assert not torch.equal(augment(x), augment(x))


def test_mask_in_place_masks_its_argument_like_forward() -> None:
    # The trainer masks a reused buffer with mask_; forward masks a copy. Same draws, same
    # cells, and mask_ acts even in eval mode (the caller decides).
    augment = SpecAugment().eval()
    buffer = torch.ones(32, 40, 101)
    torch.manual_seed(3)
    returned = augment.mask_(buffer)
    torch.manual_seed(3)
    expected = augment.train()(torch.ones(32, 40, 101))
    assert returned.data_ptr() == buffer.data_ptr()
    assert torch.equal(buffer, expected)
    assert len(_masks(buffer)) == 32
