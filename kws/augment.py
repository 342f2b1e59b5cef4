"""Waveform augmentation of training clips, applied once per cached view (not per batch).

Each augmented view of a clip gets a random time shift, then one of four treatments chosen
uniformly, as in the course recipe: none; Gaussian noise; a gain change; or a random window
of a random background-noise recording mixed in at a random SNR. Results are clamped to
[-1, 1] like a 16-bit recording.

Cut-off words (:func:`cut_off`) are extra negatives for streaming. A detector sliding a 1 s
window over speech sees every word cut by the window's edges, which whole-word training
clips never show: a reference trained on them alone fired at 0.95 on a window holding only
"shil..." of "shiloh" (docs/streaming.md). So each view also gets a share of clips moved
until only 20-90 % of the spoken word is left inside the window, keyword clips included
with at most 60 % left: "shei..." is not yet "sheila", and the keyword should fire once it
is (nearly) whole.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from kws.audio import SAMPLE_RATE
from kws.config import ConfigError


@dataclass(frozen=True)
class AugmentationConfig:
    """How the training split's augmented views are made; part of the feature-cache key."""

    num_views: int = 4  # augmented copies of the training split, besides the clean one
    max_shift_ms: float = 100.0  # time shift, uniform in [-max, +max], zero-filled
    noise_std: float = 0.01  # Gaussian noise, in full-scale units
    gain: tuple[float, float] = (0.25, 1.0)  # amplitude factor, uniform
    snr_db: tuple[float, float] = (0.0, 20.0)  # background-noise mixing, uniform in dB
    # Cut-off words added to every view (the clean one too), as a share of the training
    # clips, all labelled non-keyword; 0 turns them off.
    cutoff_share: float = 0.15
    cutoff_visible: tuple[float, float] = (0.2, 0.9)  # share of the word left in the window
    # ... but at most this much of a keyword: most of "sheila" may already be "sheila".
    keyword_cutoff_visible: float = 0.6
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("gain", "snr_db", "cutoff_visible"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.num_views < 0:
            raise ConfigError(f"AugmentationConfig.num_views must be >= 0, got {self.num_views}")
        if not 0.0 <= self.cutoff_share <= 1.0:
            raise ConfigError(
                f"AugmentationConfig.cutoff_share must be in [0, 1], got {self.cutoff_share}"
            )
        if not 0.0 < self.cutoff_visible[0] <= self.cutoff_visible[1] < 1.0:
            raise ConfigError(
                "AugmentationConfig.cutoff_visible must be (low, high) with 0 < low <= high < 1,"
                f" got {self.cutoff_visible}"
            )
        if not self.cutoff_visible[0] <= self.keyword_cutoff_visible <= self.cutoff_visible[1]:
            raise ConfigError(
                "AugmentationConfig.keyword_cutoff_visible must lie within cutoff_visible "
                f"{self.cutoff_visible}, got {self.keyword_cutoff_visible}"
            )
        if self.max_shift_ms < 0 or self.noise_std < 0:
            raise ConfigError(
                f"max_shift_ms ({self.max_shift_ms}) and noise_std ({self.noise_std}) must be >= 0"
            )
        for name in ("gain", "snr_db"):
            low, high = getattr(self, name)
            if low > high:
                raise ConfigError(
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
    batch = waveforms.shape[0]
    max_shift = int(config.max_shift_ms * SAMPLE_RATE / 1000)
    shifts = torch.randint(-max_shift, max_shift + 1, (batch,), generator=generator)
    return treat(time_shift(waveforms, shifts), noises, config, generator)


def treat(
    waveforms: torch.Tensor,
    noises: list[torch.Tensor],
    config: AugmentationConfig,
    generator: torch.Generator,
) -> torch.Tensor:
    """One of the four treatments per row of ``(B, time)``, chosen uniformly; a new tensor."""
    batch, length = waveforms.shape
    out = waveforms.clone()
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


WORD_FRAME = 160  # samples: 10 ms frames for finding the word in a clip
WORD_PEAK_LEVEL = 0.1  # a word frame's RMS is within 20 dB of the loudest frame's
WORD_FLOOR_LEVEL = 3.0  # ... and about 10 dB above the noise floor (10th-percentile frame)


def word_spans(waveforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First and one-past-last sample ``(B,)``, ``(B,)`` of the spoken word in each row.

    The word is the run from the first to the last 10 ms frame loud enough by both levels
    above. In noise at a low SNR no frame may be, or noise frames may be, so a span can be
    empty or cover most of the clip; :func:`can_cut_off` tells such rows apart.
    """
    batch, length = waveforms.shape
    frames = waveforms[:, : length // WORD_FRAME * WORD_FRAME].reshape(batch, -1, WORD_FRAME)
    rms = frames.pow(2).mean(dim=-1).sqrt()  # (B, frames)
    level = torch.maximum(
        WORD_PEAK_LEVEL * rms.amax(dim=-1, keepdim=True),
        WORD_FLOOR_LEVEL * rms.quantile(0.1, dim=-1, keepdim=True),
    ).clamp_min(1e-12)
    loud = rms >= level
    positions = torch.arange(loud.shape[1]).expand_as(loud)
    first = torch.where(loud, positions, loud.shape[1]).amin(dim=-1)
    last = torch.where(loud, positions, -1).amax(dim=-1)
    return first * WORD_FRAME, (last + 1) * WORD_FRAME


def cut_off(
    waveforms: torch.Tensor,
    visible: tuple[float, float | torch.Tensor],
    generator: torch.Generator,
) -> torch.Tensor:
    """Each row of ``(B, time)`` moved so the window's edge cuts its word; ``(B, time)``.

    A share uniform in ``visible`` (``(low, high)``; ``high`` may be a ``(B,)`` tensor, one
    bound per row) of the word stays inside: its start at the window's
    end (the word is still being spoken) or, with probability 1/2, its end at the window's
    start (the word has nearly left). Pick rows with :func:`can_cut_off` first: in the
    others no word was found apart from the noise (see :func:`word_spans`).
    """
    batch, length = waveforms.shape
    starts, ends = word_spans(waveforms)
    low, high = visible
    share = low + (high - low) * torch.rand(batch, generator=generator)
    kept = (share * (ends - starts)).long()  # samples of the word left in the window
    keep_start = torch.rand(batch, generator=generator) < 0.5
    # keep_start: the word's first `kept` samples end the window; else its last begin it.
    shifts = torch.where(keep_start, length - (starts + kept), -(ends - kept))
    return time_shift(waveforms, shifts)


def can_cut_off(waveforms: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: the row's word was found, taking at most 80 % of the clip."""
    starts, ends = word_spans(waveforms)
    return (ends > starts) & ((ends - starts) <= 0.8 * waveforms.shape[-1])
