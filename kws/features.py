"""Log-mel features of the base model, SpecAugment, and the on-disk feature cache.

Features follow background.md: a torchaudio mel spectrogram at 16 kHz with n_fft 400,
window 400, hop 160 and 40 mel bands (centred frames), clamped to [1e-9, 1e9], then log.
One second (16,000 samples) gives 40 x 101.
"""

from __future__ import annotations

import math
import warnings

import torch
import torchaudio
from torch import nn

from kws.audio import CLIP_SAMPLES, SAMPLE_RATE

N_FFT = 400  # samples (25 ms)
WIN_LENGTH = 400  # samples (25 ms)
HOP_LENGTH = 160  # samples (10 ms)
N_MELS = 40
LOG_CLAMP = (1e-9, 1e9)


def num_frames(num_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Frames a centred STFT gives for ``num_samples`` samples: ``num_samples // hop + 1``."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    return num_samples // hop_length + 1


def seconds_to_frames(seconds: float) -> int:
    """Frames for ``seconds`` of 16 kHz audio (1 s -> 101, 2 s -> 201)."""
    return num_frames(round(seconds * SAMPLE_RATE))


FRAMES_PER_CLIP = num_frames(CLIP_SAMPLES)  # 101


def _has_empty_mel_band(n_mels: int) -> bool:
    """Whether some mel triangle covers no STFT bin (constant feature row).

    With 40 Hz STFT bins the lowest HTK triangles get narrower than a bin from 90 bands
    on; torchaudio only warns about it, which a study's output would bury.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        filterbank = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, n_mels, SAMPLE_RATE
        )  # (n_freqs, n_mels)
    return bool((filterbank.amax(dim=0) == 0).any())


class LogMel(nn.Module):
    """Waveform ``(..., time)`` to log-mel ``(..., n_mels, frames)``.

    One 1 s clip at 16 kHz: ``(B, 16000) -> (B, 40, 101)``.
    """

    def __init__(self, n_mels: int = N_MELS) -> None:
        super().__init__()
        if not 0 < n_mels <= N_FFT // 2 + 1 or _has_empty_mel_band(n_mels):
            raise ValueError(
                f"n_mels={n_mels} leaves mel bands that cover no STFT bin of n_fft={N_FFT}; "
                "use at most 89 bands"
            )
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=SAMPLE_RATE,
            n_fft=N_FFT,
            win_length=WIN_LENGTH,
            hop_length=HOP_LENGTH,
            n_mels=n_mels,
        )

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel(waveform).clamp(*LOG_CLAMP))


class SpecAugment(nn.Module):
    """One frequency mask (up to 15 bands) and one time mask (up to 35 frames) per example.

    Acts only in ``train()`` mode, on log-mel ``(B, n_mels, frames)``. Masked cells get
    ``log(1e-9)``, the value a zeroed power spectrogram has after the clamp-and-log step,
    so masking cached log features equals the course's masking before the log.
    """

    def __init__(self, freq_mask: int = 15, time_mask: int = 35) -> None:
        super().__init__()
        if freq_mask < 0 or time_mask < 0:
            raise ValueError(f"mask widths must be >= 0, got freq={freq_mask}, time={time_mask}")
        self.freq_mask = freq_mask
        self.time_mask = time_mask

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return features
        return self.mask_(features.clone())

    def mask_(self, features: torch.Tensor) -> torch.Tensor:
        """Mask ``features`` in place (whatever the mode) and return it.

        The trainer masks a reused buffer: a fresh tensor per chunk costs page faults that
        take longer than the masking itself.
        """
        batch, bands, frames = features.shape
        # Same draws as torchaudio's mask_along_axis_iid (width = floor(U * max), start =
        # floor(U * (size - width))), but both masks broadcast into one masked_fill: the
        # torchaudio pair costs two full copies of the batch, 10 % of a small model's step.
        band = torch.arange(bands, device=features.device).view(1, bands, 1)
        frame = torch.arange(frames, device=features.device).view(1, 1, frames)
        in_band = _random_span(batch, bands, self.freq_mask, band, features.device)
        in_frames = _random_span(batch, frames, self.time_mask, frame, features.device)
        return features.masked_fill_(in_band | in_frames, math.log(LOG_CLAMP[0]))


def _random_span(
    batch: int, size: int, max_width: int, positions: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """Per example, whether each position lies in a random span of width < ``max_width``."""
    width = torch.rand(batch, device=device) * max_width
    start = (torch.rand(batch, device=device) * (size - width)).long()
    end = start + width.long()
    shape = (batch,) + (1,) * (positions.dim() - 1)
    return (positions >= start.view(shape)) & (positions < end.view(shape))
