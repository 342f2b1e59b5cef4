"""Waveform augmentation of training clips, applied once per cached view (not per batch).

Each augmented view of a clip gets a random time shift, then one of four treatments chosen
uniformly, as in the course recipe: none; Gaussian noise; a gain change; or a random window
of a random background-noise recording mixed in at a random SNR. Results are clamped to
[-1, 1] like a 16-bit recording.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from kws.audio import SAMPLE_RATE


@dataclass(frozen=True)
class AugmentationConfig:
    """How the training split's augmented views are made; part of the feature-cache key."""

    num_views: int = 4  # augmented copies of the training split, besides the clean one
    max_shift_ms: float = 100.0  # time shift, uniform in [-max, +max], zero-filled
    noise_std: float = 0.01  # Gaussian noise, in full-scale units
    gain: tuple[float, float] = (0.25, 1.0)  # amplitude factor, uniform
    snr_db: tuple[float, float] = (0.0, 20.0)  # background-noise mixing, uniform in dB
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", tuple(float(v) for v in self.gain))
        object.__setattr__(self, "snr_db", tuple(float(v) for v in self.snr_db))
        if self.num_views < 0:
            raise ValueError(f"AugmentationConfig.num_views must be >= 0, got {self.num_views}")
        if self.max_shift_ms < 0 or self.noise_std < 0:
            raise ValueError(
                f"max_shift_ms ({self.max_shift_ms}) and noise_std ({self.noise_std}) must be >= 0"
            )
        for name in ("gain", "snr_db"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(
                    f"AugmentationConfig.{name} must be (low, high), got {(low, high)}"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def time_shift(waveforms: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift each row of ``(B, time)`` by ``shifts[b]`` samples (positive = later), zero-filled."""
    length = waveforms.shape[-1]
    source = torch.arange(length).unsqueeze(0) - shifts.unsqueeze(1)  # (B, time)
    valid = (source >= 0) & (source < length)
    shifted = torch.gather(waveforms, 1, source.clamp(0, length - 1))
    return torch.where(valid, shifted, torch.zeros_like(shifted))


def mix_at_snr(clean: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
    """``clean + a * noise`` with ``a`` chosen per row so that power(clean)/power(a noise) = SNR.

    Shapes: ``(B, time)``, ``(B, time)``, ``(B,)``. A silent clip stays silent: its power
    is 0, so no finite amount of noise gives the SNR, and none is added.
    """
    clean_power = clean.pow(2).mean(dim=-1)
    noise_power = noise.pow(2).mean(dim=-1).clamp_min(1e-12)
    scale = torch.sqrt(clean_power / (noise_power * 10 ** (snr_db / 10)))
    return clean + scale.unsqueeze(-1) * noise


def augment(
    waveforms: torch.Tensor,
    noises: list[torch.Tensor],
    config: AugmentationConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """One augmented view of ``(B, time)`` clips; deterministic for the generator's state."""
    batch, length = waveforms.shape
    max_shift = int(config.max_shift_ms * SAMPLE_RATE / 1000)
    shifts = torch.randint(-max_shift, max_shift + 1, (batch,), generator=generator)
    out = time_shift(waveforms, shifts)
    choice = torch.randint(0, 4 if noises else 3, (batch,), generator=generator)  # 0 = none

    gaussian = choice == 1
    out[gaussian] += config.noise_std * torch.randn(
        int(gaussian.sum()), length, generator=generator
    )

    gained = choice == 2
    low, high = config.gain
    factors = low + (high - low) * torch.rand(int(gained.sum()), 1, generator=generator)
    out[gained] *= factors

    mixed = torch.nonzero(choice == 3).flatten()
    if len(mixed):
        windows = torch.stack([_noise_window(noises, length, generator) for _ in mixed])
        low, high = config.snr_db
        snr = low + (high - low) * torch.rand(len(mixed), generator=generator)
        out[mixed] = mix_at_snr(out[mixed], windows, snr)
    return out.clamp(-1.0, 1.0)


def _noise_window(
    noises: list[torch.Tensor], length: int, generator: torch.Generator
) -> torch.Tensor:
    """A random ``length``-sample window of a random recording (looped if shorter)."""
    noise = noises[int(torch.randint(len(noises), (1,), generator=generator))]
    if len(noise) < length:
        noise = noise.repeat(length // len(noise) + 1)
    start = int(torch.randint(len(noise) - length + 1, (1,), generator=generator))
    return noise[start : start + length]
