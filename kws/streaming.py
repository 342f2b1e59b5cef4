"""Streaming keyword detection: any CRNN, fed audio in chunks, scored on a sliding window.

Every ``chunk`` of audio (default 100 ms) the detector scores the last ``window`` (default
1 s) exactly as the offline model scores that window cut out on its own:
``softmax(model(LogMel()(window)))[..., 1]``, to float rounding (tests hold it to 1e-5).
The offline window is a fresh clip, so the work that can be carried from one window to the
next is only what does not depend on where the window starts:

- **Reused: interior log-mel frames.** The offline front end centres its frames (reflect
  padding of 200 samples at both ends of the window), so frame ``i`` covers window samples
  ``[160 i - 200, 160 i + 200)``. A frame wholly inside the window (1 s: frames 2..98 of
  0..100) is a function of those 400 samples alone. The last window on each frame grid
  (start modulo the 160-sample hop) is kept, and a later window on the same grid copies the
  interior frames they share as one slice. When the chunk is a multiple of the hop every
  window shares the grid of the one before and only ``chunk / 160`` new interior frames
  are computed; other chunks (e.g. 1000 samples) cycle through a few grids and reuse the
  frames of the window a few chunks back.
- **Recomputed: edge frames.** The first two and last two frames of a window read the
  window's reflect padding, so they are recomputed for every window.
- **Reused: interior conv columns.** Conv output column ``j`` reads frames
  ``[j st, j st + kt)``; when all of them are interior frames it is copied from the last
  window on the same conv grid (the window moved by a multiple of ``160 st`` samples).
  Other columns are recomputed.
- **Recomputed: GRU, pooling and classifier, for every window.** The offline model runs
  its GRU from a zero state over exactly the window's conv columns and pools over all of
  them; carrying the GRU state across windows would score a different (unbounded) input
  and change the output, so exactness rules it out. These run over at most a dozen
  columns per window with the project's CRNNs.

The first window ends at the first chunk boundary at or after one window of audio, so a
stream shorter than one window gives nothing until :meth:`StreamingDetector.flush` pads
it with silence. Probabilities are smoothed by a moving average over the last ``smooth``
of them, and a smoothed probability at or above ``threshold`` is a detection unless one
was made less than ``refractory`` ago (default: one window, the time an utterance stays in
view), so one utterance gives one detection.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from kws.audio import SAMPLE_RATE
from kws.config import ConfigError
from kws.features import HOP_LENGTH, LOG_CLAMP, N_FFT, LogMel, num_frames
from kws.model import CRNN

PAD = N_FFT // 2  # samples of reflect padding at each end of a window (centred frames)


@dataclass(frozen=True)
class Detection:
    """One keyword detection."""

    time_s: float  # end of the window that fired, seconds from the start of the stream
    probability: float  # the (smoothed) keyword probability that reached the threshold


def ms_to_samples(ms: float, name: str) -> int:
    """Samples of 16 kHz audio in ``ms`` milliseconds; must be a whole positive number."""
    samples = ms * SAMPLE_RATE / 1000
    if not samples >= 1 or samples != round(samples):
        raise ConfigError(
            f"--{name.replace('_', '-')} {ms} ms is not a whole positive number of 16 kHz samples"
        )
    return round(samples)


class StreamingDetector:
    """Scores a stream of 16 kHz mono float samples with ``model``, one window per chunk.

    ``push`` returns one keyword probability per window completed by the samples pushed;
    the ``n``-th probability since the start (0-based) is of the window ending at
    ``first_end_s + n * chunk_s`` seconds. Detections accumulate in ``detections``.

    The model is put in eval mode and runs on the device its parameters are on, in their
    dtype (an fp16 model gets fp16 features, as offline); the front end runs in fp32.
    ``frames_computed`` and ``columns_computed`` count the log-mel frames and conv columns
    computed since the start (the rest were reused), to check and measure the reuse.
    """

    def __init__(
        self,
        model: CRNN,
        window_ms: float = 1000.0,
        chunk_ms: float = 100.0,
        threshold: float = 0.5,
        smooth: int = 1,
        refractory_ms: float | None = None,
    ) -> None:
        self.window = ms_to_samples(window_ms, "window_ms")
        self.chunk = ms_to_samples(chunk_ms, "chunk_ms")
        if self.chunk > self.window:
            raise ConfigError(f"--chunk-ms {chunk_ms} is longer than --window-ms {window_ms}")
        if self.window <= PAD:
            raise ConfigError(f"--window-ms {window_ms} is too short for {N_FFT}-sample frames")
        self.frames = num_frames(self.window)
        config = model.config
        self.columns = config.conv_frames(self.frames)  # rejects a kernel longer than the window
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"--threshold must be in [0, 1], got {threshold}")
        if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
            raise ConfigError(f"--smooth must be a positive integer, got {smooth!r}")
        refractory_ms = window_ms if refractory_ms is None else refractory_ms
        if not refractory_ms >= 0:
            raise ConfigError(f"--refractory-ms must be >= 0, got {refractory_ms}")
        self.threshold = threshold
        self.refractory = refractory_ms * SAMPLE_RATE / 1000  # samples
        self.model = model.eval()
        parameter = next(model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        mel = LogMel(config.n_mels).mel.to(self.device)
        self._hann = mel.spectrogram.window  # (N_FFT,)
        self._filterbank = mel.mel_scale.fb  # (N_FFT // 2 + 1, n_mels)
        self._kernel, self._stride = config.kernel_size[1], config.stride[1]  # time, frames
        # Frame i covers window samples [HOP i - PAD, HOP i + PAD): interior frames avoid the
        # reflect padding; a conv column is interior when all its kt frames are.
        interior = [
            i for i in range(self.frames) if 0 <= HOP_LENGTH * i - PAD <= self.window - N_FFT
        ]
        self._interior_frames = range(interior[0], interior[-1] + 1) if interior else range(0)
        interior_columns = [
            j
            for j in range(self.columns)
            if j * self._stride in self._interior_frames
            and j * self._stride + self._kernel - 1 in self._interior_frames
        ]
        self._interior_columns = (
            range(interior_columns[0], interior_columns[-1] + 1) if interior_columns else range(0)
        )
        self._smoothing: deque[float] = deque(maxlen=smooth)
        self.first_end_s = math.ceil(self.window / self.chunk) * self.chunk / SAMPLE_RATE
        self.chunk_s = self.chunk / SAMPLE_RATE
        self.reset()

    def reset(self) -> None:
        """Forget the stream: caches, buffered audio, smoothing and detections."""
        self._buffer = torch.zeros(0, device=self.device)
        self._buffer_start = 0  # absolute sample index of _buffer[0]
        self._received = 0  # samples pushed since the start
        self._covered = 0  # end of the last scored window, samples
        self._next_end = math.ceil(self.window / self.chunk) * self.chunk  # samples
        # Per grid (window start modulo a hop, or modulo a conv column's hops): the last
        # window on it, as (start sample, log-mel (n_mels, frames) or conv (C F', T')).
        self._frame_windows: dict[int, tuple[int, torch.Tensor]] = {}
        self._column_windows: dict[int, tuple[int, torch.Tensor]] = {}
        self._smoothing.clear()
        self.frames_computed = 0
        self.columns_computed = 0
        self._last_detection: int | None = None  # window end, samples
        self.detections: list[Detection] = []

    def push(self, samples: torch.Tensor) -> list[float]:
        """Append ``(time,)`` float samples; the probabilities of the windows they complete."""
        if samples.dim() != 1 or not samples.is_floating_point():
            raise ValueError(
                f"push takes (time,) float samples, got {tuple(samples.shape)} {samples.dtype}"
            )
        self._buffer = torch.cat([self._buffer, samples.to(self.device, torch.float32)])
        self._received += samples.numel()
        probabilities = []
        with torch.inference_mode():
            while self._next_end <= self._received:
                start = self._next_end - self.window
                offset = start - self._buffer_start
                window = self._buffer[offset : offset + self.window]
                probability = self._score(window, start)
                probabilities.append(probability)
                self._decide(probability, self._next_end)
                self._covered = self._next_end
                self._next_end += self.chunk
        # Keep from the next window's first sample (or all, if it has not arrived yet).
        keep_from = min(self._next_end - self.window, self._received)
        if keep_from > self._buffer_start:
            self._buffer = self._buffer[keep_from - self._buffer_start :]
            self._buffer_start = keep_from
        return probabilities

    def flush(self) -> list[float]:
        """End of stream: pad with silence up to the next window end if any audio is unscored.

        A stream shorter than a window thus gets one window (zero-padded at the end, as
        clips are), and a final partial chunk is scored.
        """
        if self._received <= self._covered:
            return []
        return self.push(torch.zeros(self._next_end - self._received, device=self.device))

    def _decide(self, probability: float, end: int) -> None:
        self._smoothing.append(probability)
        smoothed = sum(self._smoothing) / len(self._smoothing)
        if smoothed < self.threshold:
            return
        if self._last_detection is not None and end - self._last_detection < self.refractory:
            return
        self._last_detection = end
        self.detections.append(Detection(end / SAMPLE_RATE, smoothed))

    def _score(self, window: torch.Tensor, start: int) -> float:
        """Keyword probability of ``window`` (``(self.window,)`` samples from ``start``)."""
        features = self._features(window, start).to(self.dtype)  # (n_mels, frames)
        columns = self._conv_columns(features, start)  # (C F', T')
        # (1, T', C F') as a transposed view, the memory layout the offline model hands its
        # GRU: fp16 GRUs on the CPU round differently on a contiguous copy (by ~5e-4).
        hidden, _ = self.model.gru(columns.unsqueeze(0).transpose(1, 2))
        logits = self.model.classifier(self.model.pool(hidden))  # (1, classes)
        return float(torch.softmax(logits.float(), dim=-1)[0, 1])

    def _features(self, window: torch.Tensor, start: int) -> torch.Tensor:
        """Log-mel ``(n_mels, frames)`` of the window: interior frames of an earlier window
        on the same frame grid, the rest new."""
        reused, previous = self._reusable(
            self._frame_windows, start, HOP_LENGTH, self._interior_frames
        )
        features = torch.empty((self._filterbank.shape[1], self.frames), device=self.device)
        if reused:
            first, last, shift = reused
            features[:, first:last] = previous[:, first + shift : last + shift]
        missing = self._outside(reused, self.frames)
        if missing:
            padded = F.pad(window.view(1, 1, -1), (PAD, PAD), mode="reflect").view(-1)
            rows = padded.unfold(0, N_FFT, HOP_LENGTH)[missing]  # (K, N_FFT)
            features[:, missing] = self._log_mel(rows).T
            self.frames_computed += len(missing)
        self._frame_windows[start % HOP_LENGTH] = (start, features)
        return features

    def _reusable(
        self,
        cache: dict[int, tuple[int, torch.Tensor]],
        start: int,
        step: int,
        interior: range,
    ) -> tuple[tuple[int, int, int] | None, torch.Tensor]:
        """What a window starting at ``start`` can copy from the last window on its grid.

        ``cache`` maps a grid (start modulo ``step`` samples, one frame or conv column) to
        that grid's last window start and its tensor ``(..., positions)``. Position ``i``
        here is position ``i + shift`` there, ``shift`` = (start - its start) / step, and
        both must lie in ``interior``, which reads no padding. Returns ``(first, last,
        shift)`` for positions ``[first, last)``, or None, with the earlier tensor. Entries
        of windows that end before this one starts are dropped: windows only move on.
        """
        for key in [k for k, (begin, _) in cache.items() if begin + self.window <= start]:
            del cache[key]
        earlier = cache.get(start % step)
        if earlier is None:
            return None, torch.empty(0)
        shift = (start - earlier[0]) // step
        first, last = interior.start, interior.stop - shift
        return ((first, last, shift) if last > first else None), earlier[1]

    @staticmethod
    def _outside(reused: tuple[int, int, int] | None, count: int) -> list[int]:
        """Positions ``0 .. count - 1`` not in the reused range."""
        if reused is None:
            return list(range(count))
        first, last, _ = reused
        return [*range(first), *range(last, count)]

    def _log_mel(self, rows: torch.Tensor) -> torch.Tensor:
        """``(K, N_FFT)`` frames of samples to ``(K, n_mels)``, as torchaudio computes them."""
        spectrum = torch.stft(
            rows,
            n_fft=N_FFT,
            hop_length=HOP_LENGTH,
            win_length=N_FFT,
            window=self._hann,
            center=False,
            return_complex=True,
        )  # (K, N_FFT // 2 + 1, 1): one frame per row
        power = spectrum.abs().pow(2.0).squeeze(-1)
        return torch.log((power @ self._filterbank).clamp(*LOG_CLAMP))

    def _conv_columns(self, features: torch.Tensor, start: int) -> torch.Tensor:
        """Conv output ``(C F', T')`` of the window: interior columns of an earlier window on
        the same column grid, the rest new."""
        step = HOP_LENGTH * self._stride
        reused, previous = self._reusable(self._column_windows, start, step, self._interior_columns)
        missing = self._outside(reused, self.columns)
        patches = features.unfold(1, self._kernel, self._stride)[:, missing]  # (F, K, kt)
        conv = self.model.conv[0](patches.permute(1, 0, 2).unsqueeze(1))  # (K, C, F', 1)
        new = conv.reshape(len(missing), -1).T  # (C F', K), the model's flatten order
        self.columns_computed += len(missing)
        if reused is None:
            columns = new.contiguous()  # (C F', T') in memory: _score relies on the layout
        else:
            first, last, shift = reused
            columns = torch.empty((new.shape[0], self.columns), dtype=new.dtype, device=new.device)
            columns[:, first:last] = previous[:, first + shift : last + shift]
            columns[:, missing] = new
        self._column_windows[start % step] = (start, columns)
        return columns


def detect(
    model: CRNN,
    waveform: torch.Tensor,
    window_ms: float = 1000.0,
    chunk_ms: float = 100.0,
    threshold: float = 0.5,
    smooth: int = 1,
    refractory_ms: float | None = None,
) -> list[Detection]:
    """Detections in a whole ``(time,)`` 16 kHz waveform, streamed chunk by chunk."""
    detector = StreamingDetector(model, window_ms, chunk_ms, threshold, smooth, refractory_ms)
    for begin in range(0, waveform.numel(), detector.chunk):
        detector.push(waveform[begin : begin + detector.chunk])
    detector.flush()
    return detector.detections
