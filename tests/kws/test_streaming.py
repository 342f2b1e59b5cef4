"""kws.streaming and ``run_study.py stream``: streamed probabilities against the offline model.

The reference is computed independently of the detector: each window is cut out of the
waveform here and scored by ``softmax(model(LogMel()(window)))[..., 1]``; window ends,
reuse counts and detections are worked out by hand or with numpy.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from kws.audio import fit_length
from kws.features import LogMel
from kws.model import BASE, CRNN, CRNNConfig
from kws.streaming import Detection, StreamingDetector, detect

WINDOW = 16_000  # samples: 1 s at 16 kHz
CONFIGS = {
    "base-2-layers": BASE,
    "small-1-layer": CRNNConfig(
        cnn_out_channels=3, kernel_size=(7, 5), stride=(3, 4), gru_num_layers=1, hidden_size=8
    ),
    "bidirectional-2-layers": CRNNConfig(
        cnn_out_channels=5,
        kernel_size=(9, 11),
        stride=(4, 5),
        gru_num_layers=2,
        hidden_size=12,
        bidirectional=True,
    ),
    "stride-1": CRNNConfig(cnn_out_channels=2, kernel_size=(11, 3), stride=(8, 1), hidden_size=6),
    "mean-no-bias": CRNNConfig(
        cnn_out_channels=1, kernel_size=(4, 16), stride=(8, 6), gru_num_layers=1, hidden_size=10,
        pooling="mean", bias=False,
    ),
}  # fmt: skip
CHUNKS = (1600, 1000, 2400)  # samples: 100 ms, 62.5 ms (not a multiple of the hop), 150 ms


def signal(samples: int, seed: int = 0) -> torch.Tensor:
    """Speech-like test audio: noise under a moving envelope, a tone, a stretch of silence."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 16_000
    envelope = 0.05 + 0.3 * torch.sin(2 * math.pi * 0.7 * t) ** 2
    audio = envelope * torch.randn(samples, generator=generator)
    audio += 0.2 * torch.sin(2 * math.pi * (300 + 200 * t) * t)
    audio[samples // 2 : samples // 2 + 3_000] = 0.0  # digital silence: the log clamp
    return audio


def offline(model: CRNN, windows: list[torch.Tensor]) -> torch.Tensor:
    """Keyword probability of each window on its own (batch of 1, as a clip is scored)."""
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        return torch.stack(
            [
                torch.softmax(model(LogMel()(w.unsqueeze(0)).to(dtype)).float(), dim=-1)[0, 1]
                for w in windows
            ]
        )


def window_ends(total: int, chunk: int) -> list[int]:
    """A window ends at every chunk boundary from the first that holds a whole window."""
    return [end for end in range(chunk, total + 1, chunk) if end >= WINDOW]


def stream(detector: StreamingDetector, audio: torch.Tensor, piece: int) -> list[float]:
    probabilities = []
    for begin in range(0, audio.numel(), piece):
        probabilities += detector.push(audio[begin : begin + piece])
    return probabilities


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_streamed_windows_equal_the_offline_model(name: str, chunk: int) -> None:
    torch.manual_seed(1)
    model = CRNN(CONFIGS[name]).eval()
    audio = signal(45_000)
    detector = StreamingDetector(model, chunk_ms=chunk / 16)
    # Pushed in pieces unrelated to the chunk: the detector cuts its own windows.
    streamed = torch.tensor(stream(detector, audio, piece=777))
    ends = window_ends(audio.numel(), chunk)
    expected = offline(model, [audio[end - WINDOW : end] for end in ends])
    assert len(streamed) == len(ends)
    torch.testing.assert_close(streamed, expected, rtol=0, atol=1e-5)
    starts = [detector.first_end_s + n * detector.chunk_s for n in range(len(ends))]
    assert starts == pytest.approx([end / 16_000 for end in ends])


@pytest.mark.parametrize("chunk", CHUNKS)
def test_fp16_models_stream_like_their_offline_half_model(chunk: int) -> None:
    """CPU half precision works; the detector hands the GRU the offline memory layout."""
    torch.manual_seed(2)
    for name in ("base-2-layers", "bidirectional-2-layers"):
        model = CRNN(CONFIGS[name]).eval().half()
        audio = signal(40_000, seed=3)
        streamed = torch.tensor(StreamingDetector(model, chunk_ms=chunk / 16).push(audio))
        ends = window_ends(audio.numel(), chunk)
        expected = offline(model, [audio[end - WINDOW : end] for end in ends])
        # fp16 keeps 11 significant bits: a step of 2**-11 ~ 5e-4 on activations of order 1,
        # and fp16 kernels (accumulation width and order) differ between CPUs. 2e-3 on a
        # probability near 0.5 allows a few such steps; fp32 cases above keep 1e-5.
        torch.testing.assert_close(streamed, expected, rtol=0, atol=2e-3)


def test_other_window_lengths_equal_the_offline_model() -> None:
    torch.manual_seed(4)
    model = CRNN(CONFIGS["small-1-layer"]).eval()
    audio = signal(30_000, seed=5)
    window = 12_000  # 750 ms
    streamed = torch.tensor(StreamingDetector(model, window_ms=750, chunk_ms=75).push(audio))
    ends = [end for end in range(1_200, 30_001, 1_200) if end >= window]
    expected = offline(model, [audio[end - window : end] for end in ends])
    torch.testing.assert_close(streamed, expected, rtol=0, atol=1e-5)


def test_frames_and_conv_columns_of_earlier_windows_are_reused() -> None:
    """Hand counts for a 100 ms chunk (10 hops): per window after the first, 10 new interior
    frames plus the 4 edge frames; with a time stride of 5 frames, 2 new interior columns
    plus the 2 edge columns (column 0 reads frames 0..4, the last reads 95..99)."""
    config = CRNNConfig(cnn_out_channels=2, kernel_size=(5, 5), stride=(2, 5), hidden_size=4)
    detector = StreamingDetector(CRNN(config), chunk_ms=100)
    windows = len(detector.push(signal(40_000)))
    assert windows == 16
    assert detector.frames_computed == 101 + (windows - 1) * (10 + 4)
    columns = (101 - 5) // 5 + 1  # 20
    assert detector.columns_computed == columns + (windows - 1) * (2 + 2)


def test_flush_scores_a_short_stream_as_a_zero_padded_clip_and_a_final_partial_chunk() -> None:
    torch.manual_seed(6)
    model = CRNN(CONFIGS["small-1-layer"]).eval()
    short = signal(9_600, seed=7)  # 0.6 s
    detector = StreamingDetector(model)
    assert detector.push(short) == []
    [probability] = detector.flush()
    assert probability == pytest.approx(float(offline(model, [fit_length(short)])[0]), abs=1e-5)
    assert detector.flush() == []

    audio = signal(40_000, seed=8)  # 38,400 is the last 2,400-sample boundary
    detector = StreamingDetector(model, chunk_ms=150)
    detector.push(audio)
    [last] = detector.flush()
    padded = torch.cat([audio, torch.zeros(800)])[40_800 - WINDOW :]
    assert last == pytest.approx(float(offline(model, [padded])[0]), abs=1e-5)


def constant_model(probability: float) -> CRNN:
    """A CRNN whose keyword probability is ``probability`` whatever the audio: all weights
    zero, so the pooled GRU output is 0 and the logits are the classifier's biases."""
    model = CRNN(CONFIGS["small-1-layer"]).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.classifier.bias[1] = math.log(probability / (1 - probability))
    return model


def test_a_refractory_period_keeps_one_detection_per_window() -> None:
    model = constant_model(0.7)
    audio = signal(48_000)  # 3 s: windows end at 1.0, 1.1, ..., 3.0 s
    assert detect(model, audio) == [
        Detection(1.0, pytest.approx(0.7)),
        Detection(2.0, pytest.approx(0.7)),
        Detection(3.0, pytest.approx(0.7)),
    ]
    half_second = detect(model, audio, refractory_ms=500)
    assert [d.time_s for d in half_second] == pytest.approx([1.0, 1.5, 2.0, 2.5, 3.0])
    assert detect(model, audio, threshold=0.71) == []


def test_smoothing_averages_the_last_outputs_before_the_threshold() -> None:
    torch.manual_seed(9)
    model = CRNN(CONFIGS["base-2-layers"]).eval()
    audio = signal(64_000, seed=10)
    raw = np.array(StreamingDetector(model).push(audio))
    k = 3
    smoothed = np.array([raw[max(0, n - k + 1) : n + 1].mean() for n in range(len(raw))])
    threshold = float(np.median(smoothed))
    detector = StreamingDetector(model, threshold=threshold, smooth=k, refractory_ms=0)
    detector.push(audio)
    fired = [n for n in range(len(raw)) if smoothed[n] >= threshold]
    assert [d.time_s for d in detector.detections] == pytest.approx([1.0 + 0.1 * n for n in fired])
    assert [d.probability for d in detector.detections] == pytest.approx(smoothed[fired])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"chunk_ms": 0.01}, "--chunk-ms"),
        ({"chunk_ms": 2000}, "longer than --window-ms"),
        ({"window_ms": 100}, "does not fit"),  # 11 frames, the base kernel is 20
        ({"threshold": 1.5}, "threshold"),
        ({"smooth": 0}, "smooth"),
        ({"refractory_ms": -1}, "--refractory-ms"),
    ],
)
def test_bad_settings_are_refused_by_name(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StreamingDetector(CRNN(BASE), **arguments)


def test_push_refuses_anything_but_mono_float_samples() -> None:
    detector = StreamingDetector(CRNN(BASE))
    with pytest.raises(ValueError, match="float samples"):
        detector.push(torch.zeros(2, 1600))
    with pytest.raises(ValueError, match="float samples"):
        detector.push(torch.zeros(1600, dtype=torch.int16))


# --------------------------------------------------------------------------- the command line

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_stream(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_study.py"), "stream", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture
def constant_export(tmp_path: Path, fake_export) -> Path:
    return fake_export(tmp_path / "constant", constant_model(0.7))


CONSTANT_DETECTIONS = [
    "keyword at 1.00 s (window 0.00-1.00 s), probability 0.700",
    "keyword at 2.00 s (window 1.00-2.00 s), probability 0.700",
    "keyword at 3.00 s (window 2.00-3.00 s), probability 0.700",
]


def test_cli_prints_detections_with_times_and_probabilities(
    constant_export: Path, tmp_path: Path
) -> None:
    wav = tmp_path / "three-seconds.wav"
    soundfile.write(wav, signal(48_000).numpy() * 0.5, 16_000, subtype="PCM_16")
    result = run_stream("--model", str(constant_export), "--wav", str(wav), cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert lines == [*CONSTANT_DETECTIONS, f"{wav}: 3.00 s of audio, 21 windows, 3 detections "
                     "at threshold 0.5"]  # fmt: skip


def test_cli_resamples_an_8_khz_file(constant_export: Path, tmp_path: Path) -> None:
    wav = tmp_path / "eight-khz.wav"
    soundfile.write(wav, signal(24_000).numpy() * 0.5, 8_000, subtype="PCM_16")
    result = run_stream("--model", str(constant_export), "--wav", str(wav), cwd=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines()[:3] == CONSTANT_DETECTIONS
    assert "3.00 s of audio, 21 windows" in result.stdout.decode()


def test_cli_mixes_stereo_to_mono_and_prints_the_offline_probabilities(
    tmp_path: Path, fake_export
) -> None:
    torch.manual_seed(11)
    model = CRNN(CONFIGS["small-1-layer"]).eval()
    folder = fake_export(tmp_path / "random", model)
    left, right = signal(30_000, seed=12), signal(30_000, seed=13)
    wav = tmp_path / "stereo.wav"
    soundfile.write(wav, 0.5 * torch.stack([left, right], dim=1).numpy(), 16_000, "PCM_16")
    result = run_stream(
        "--model", str(folder), "--wav", str(wav), "--chunk-ms", "62.5", "--threshold", "0",
        "--refractory-ms", "0", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    # Every window is a detection at threshold 0: its probability is printed (3 decimals).
    stereo, _ = soundfile.read(wav, dtype="float32")
    mono = torch.from_numpy(stereo.mean(axis=1))
    ends = window_ends(30_000, 1_000)
    expected = offline(model, [mono[end - WINDOW : end] for end in ends])
    lines = result.stdout.decode().splitlines()[:-1]
    assert [line.split(" s ")[0] for line in lines] == [
        f"keyword at {e / 16_000:.2f}" for e in ends
    ]
    printed = torch.tensor([float(line.rsplit(" ", 1)[1]) for line in lines])
    torch.testing.assert_close(printed, expected, rtol=0, atol=5e-4 + 1e-5)


def test_cli_reads_raw_pcm_from_stdin(constant_export: Path, tmp_path: Path) -> None:
    pcm = (signal(40_800).numpy() * 0.5 * 32767).astype("<i2").tobytes()  # 2.55 s
    result = run_stream("--model", str(constant_export), "--wav", "-", cwd=tmp_path, stdin=pcm)
    assert result.returncode == 0, result.stderr.decode()
    # The last, partial chunk is padded: windows end at 1.0, 1.1, ..., 2.6 s.
    assert result.stdout.decode().splitlines() == [
        *CONSTANT_DETECTIONS[:2],
        "stdin: 2.55 s of audio, 17 windows, 2 detections at threshold 0.5",
    ]


def write_text_as_wav(path: Path) -> None:
    path.write_text("this is not audio\n")


def write_empty_wav(path: Path) -> None:
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16_000, subtype="PCM_16")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (write_text_as_wav, "not a readable audio file"),
        (write_empty_wav, "empty audio"),
        (None, "no such file"),
    ],
    ids=["text-file", "empty-wav", "missing"],
)
def test_cli_names_a_bad_wav_file_and_exits_2(
    constant_export: Path, tmp_path: Path, make, message: str
) -> None:
    wav = tmp_path / "input.wav"
    if make is not None:
        make(wav)
    result = run_stream("--model", str(constant_export), "--wav", str(wav), cwd=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 2
    assert f"error: {wav}: {message}" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("stdin", "message"),
    [(b"", "stdin: no audio"), (b"RIFF\x24\x00\x00\x00WAVEfmt ", "WAV header")],
    ids=["empty", "wav-header"],
)
def test_cli_refuses_empty_or_wav_stdin(
    constant_export: Path, tmp_path: Path, stdin: bytes, message: str
) -> None:
    result = run_stream("--model", str(constant_export), "--wav", "-", cwd=tmp_path, stdin=stdin)
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_cli_names_a_folder_that_is_not_an_export(tmp_path: Path) -> None:
    wav = tmp_path / "input.wav"
    soundfile.write(wav, signal(16_000).numpy() * 0.5, 16_000, subtype="PCM_16")
    result = run_stream("--model", str(tmp_path / "nothing"), "--wav", str(wav), cwd=tmp_path)
    assert result.returncode == 2
    assert "nothing" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()
