"""Streaming cost on this CPU: real-time factor and per-chunk latency, with and without reuse.

    python benchmarks/bench_streaming.py [--model EXPORT_FOLDER] [--seconds 30] [--threads 1]

For BASE and the best KD-only student of background.md (random weights: the cost does not
depend on them), and for an exported model if ``--model`` is given, side by side:

- stream: :class:`kws.streaming.StreamingDetector`, fed 100 ms chunks, scoring the last
  1 s at every chunk and reusing the interior log-mel frames and conv columns;
- script: the export's TorchScript scorer (``kws.deploy.write_torchscript``) called on the
  last 1 s at every chunk, recomputing everything: what a runtime without this project does.

Real-time factor = processing seconds / audio seconds (below 1: keeps up). Latency is the
time from a chunk's arrival to its window's probability, median and p95 over the chunks
that complete a window. Both paths give the same probabilities (checked, printed).
One stream runs on one thread by default, as on a device that listens to one microphone.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from kws.deploy import write_torchscript
from kws.model import BASE, CRNN, CRNNConfig
from kws.streaming import StreamingDetector
from study.export import load_weights

# The best KD-only student of background.md: 1,789 parameters.
STUDENT = CRNNConfig(
    cnn_out_channels=2, kernel_size=(11, 20), stride=(7, 8), gru_num_layers=1, hidden_size=14
)
CHUNK = 1_600  # samples: 100 ms at 16 kHz
WINDOW = 16_000  # samples: 1 s
WARM_UP = 3 * WINDOW  # samples streamed untimed first, for both paths


def speech_like(samples: int) -> torch.Tensor:
    """Noise under a slowly moving envelope (the cost does not depend on the content)."""
    generator = torch.Generator().manual_seed(0)
    t = torch.arange(samples) / 16_000
    envelope = 0.05 + 0.3 * torch.sin(2 * math.pi * 0.7 * t) ** 2
    return envelope * torch.randn(samples, generator=generator)


def time_stream(model: CRNN, audio: torch.Tensor) -> tuple[list[float], list[float], float]:
    """Per-window latencies (s), probabilities and total seconds of the streaming detector."""
    detector = StreamingDetector(model, chunk_ms=CHUNK / 16)
    for begin in range(0, WARM_UP, CHUNK):
        detector.push(audio[begin : begin + CHUNK])
    detector.reset()
    latencies, probabilities = [], []
    total = time.perf_counter()
    for begin in range(0, audio.numel(), CHUNK):
        start = time.perf_counter()
        scored = detector.push(audio[begin : begin + CHUNK])
        if scored:
            latencies.append(time.perf_counter() - start)
            probabilities += scored
    return latencies, probabilities, time.perf_counter() - total


def time_script(scorer, audio: torch.Tensor) -> tuple[list[float], list[float], float]:
    """The same for the TorchScript scorer on the last window at every chunk, no reuse."""
    with torch.inference_mode():
        for end in range(WINDOW, WARM_UP + 1, CHUNK):
            scorer(audio[end - WINDOW : end].unsqueeze(0))
        latencies, probabilities = [], []
        total = time.perf_counter()
        for end in range(CHUNK, audio.numel() + 1, CHUNK):
            start = time.perf_counter()
            if end >= WINDOW:  # the detector's window ends: every chunk boundary from 1 s
                probabilities.append(float(scorer(audio[end - WINDOW : end].unsqueeze(0))[0]))
                latencies.append(time.perf_counter() - start)
        return latencies, probabilities, time.perf_counter() - total


def summary(name: str, latencies: list[float], seconds: float, audio_s: float) -> str:
    ms = sorted(1000 * x for x in latencies)
    p95 = ms[min(len(ms) - 1, math.ceil(0.95 * len(ms)) - 1)]
    return (
        f"{name:<16}{seconds / audio_s:>10.4f}{statistics.median(ms):>13.3f}{p95:>10.3f}"
        f"{len(ms):>9}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="an export folder, timed as well")
    parser.add_argument("--seconds", type=float, default=30.0, help="audio streamed, seconds")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {"BASE": CRNN(BASE).eval(), "student": CRNN(STUDENT).eval()}
    if args.model is not None:
        models["export"] = load_weights(args.model)
    audio = speech_like(round(args.seconds * 16_000))
    audio_s = audio.numel() / 16_000
    print(
        f"{audio_s:.1f} s of audio in {CHUNK / 16:.0f} ms chunks, 1 s window, "
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}"
    )
    print(f"{'model / path':<16}{'RTF':>10}{'median ms':>13}{'p95 ms':>10}{'windows':>9}")
    lines, medians = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for name, model in models.items():
            stream = time_stream(model, audio)
            path = write_torchscript(model, Path(folder) / f"{name}.ts.pt")
            with warnings.catch_warnings():  # deprecated, but what a torch-only runtime uses
                warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
                scorer = torch.jit.load(str(path))
            script = time_script(scorer, audio)
            difference = max(abs(a - b) for a, b in zip(stream[1], script[1], strict=True))
            print(summary(f"{name} stream", stream[0], stream[2], audio_s))
            print(summary(f"{name} script", script[0], script[2], audio_s))
            medians[name] = statistics.median(stream[0])
            speed_up = statistics.median(script[0]) / medians[name]
            lines.append(
                f"{name}: script / stream per chunk (median) {speed_up:.2f}x, RTF "
                f"{script[2] / stream[2]:.2f}x (above 1: reuse pays); probabilities differ by "
                f"at most {difference:.1e}"
            )
    lines += [
        f"{name} streams {medians['BASE'] / medians[name]:.1f}x faster than BASE per chunk"
        for name in medians
        if name != "BASE"
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
