"""Reading and writing 1-second, 16 kHz mono clips with ``soundfile``.

``torchaudio.load`` is deliberately not used: in current torchaudio it needs FFmpeg
(torchcodec), which is often missing. ``soundfile`` (libsndfile) reads WAV everywhere;
torchaudio is used only for resampling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional

from kws.errors import UserError

SAMPLE_RATE = 16_000  # Hz, the rate every model in this project sees
CLIP_SECONDS = 1.0
CLIP_SAMPLES = 16_000  # samples in one clip at SAMPLE_RATE


class AudioFileError(UserError, ValueError):
    """A file that cannot be used as a clip; the message names the file and the problem."""


def read_audio(path: str | Path) -> tuple[torch.Tensor, int]:
    """Read any file libsndfile understands as float32 mono in [-1, 1].

    Returns:
        ``(samples, sample_rate)`` with samples of shape ``(time,)``. Several channels
        are averaged.

    Raises:
        AudioFileError: the file is missing, unreadable, not audio, has no samples or
            holds a non-finite sample.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise AudioFileError(f"{path}: not a readable audio file ({error})") from error
    if data.shape[0] == 0:
        raise AudioFileError(f"{path}: empty audio (0 samples)")
    if not np.isfinite(data).all():
        # Float WAVs can hold NaN or infinity; one such sample makes every feature and
        # then the training loss NaN, far from the file that caused it.
        raise AudioFileError(f"{path}: holds non-finite samples (NaN or infinity)")
    samples = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    return samples, int(rate)


def fit_length(samples: torch.Tensor, length: int = CLIP_SAMPLES) -> torch.Tensor:
    """Zero-pad at the end or crop the end so that ``(..., time)`` has ``length`` samples."""
    current = samples.shape[-1]
    if current >= length:
        return samples[..., :length]
    return torch.nn.functional.pad(samples, (0, length - current))


def read_resampled(path: str | Path) -> torch.Tensor:
    """Read audio of any length as mono float32 ``(time,)`` at 16 kHz (torchaudio resampling)."""
    samples, rate = read_audio(path)
    if rate != SAMPLE_RATE:
        samples = torchaudio.functional.resample(samples, rate, SAMPLE_RATE)
    return samples


def read_clip(path: str | Path) -> torch.Tensor:
    """Read one clip as the models see it: mono, 16 kHz, exactly 1 s.

    Shorter clips are zero-padded at the end and longer ones cropped, as in Speech
    Commands where some clips are shorter than 1 s.

    Returns:
        float32 tensor of shape ``(CLIP_SAMPLES,)``.
    """
    return fit_length(read_resampled(path))


def write_wav(
    path: str | Path, samples: torch.Tensor | np.ndarray, rate: int = SAMPLE_RATE
) -> None:
    """Write ``(time,)`` float samples in [-1, 1] as 16-bit PCM mono WAV (values are clipped)."""
    array = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else samples
    array = np.clip(np.asarray(array, dtype=np.float32), -1.0, 1.0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), array, rate, subtype="PCM_16", format="WAV")
