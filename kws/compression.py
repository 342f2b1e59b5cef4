"""How small and how cheap a CRNN is, and the course's score for it, apart from the model.

Size is the course's: bytes of ``torch.save(model.state_dict())``, so serialization overhead
and the number of tensors count, and the dtype the model is given in counts (fp16 halves the
tensor bytes). Cost is MACs counted the way ``thop`` counts them, from the architecture alone:
a dtype change or dynamic quantization does not make a model cheaper here (thop counts
quantized GRU/Linear as zero, which inflated some course claims).
"""

from __future__ import annotations

import copy
import functools
import io
from dataclasses import dataclass

import torch
from torch import nn

from kws.features import seconds_to_frames
from kws.model import BASE, CRNN, CRNNConfig

GRU_ELEMENTWISE_MACS_PER_UNIT = 13
"""thop's element-wise GRU terms per hidden unit and step: in each of the 3 gates one add of
the input and hidden halves plus 2 bias adds (9), ``r * (W_hn h + b_hn)`` (1) and
``h' = (1 - z) * n + z * h`` (3)."""
GRU_BIAS_MACS_PER_UNIT = 6
"""Of those, the bias adds (2 in each gate): a GRU without biases has 13 - 6 = 7."""


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes ``torch.save(model.state_dict(), buffer)`` writes into an in-memory buffer.

    torch.save writes a zip archive whose record names start with the file name stem
    (``base.pth`` -> ``base/data/0`` ...), stored in each local header and again in the
    central directory, so on-disk sizes vary by a few hundred bytes with the file name. An
    ``io.BytesIO`` always gets the stem ``"archive"``, making the size a property of the
    model alone.
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def param_bytes(model: nn.Module) -> int:
    """Bytes of the parameter tensors alone (numel x element size): fp16 halves it."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def _gru_macs_per_step(config: CRNNConfig) -> int:
    """thop's GRU count for one time step, all layers and directions.

    Per layer and direction: three gates of ``(in + h) * h`` multiply-accumulates each plus
    13 * h element-wise terms (7 * h without biases); layers after the first read both
    directions' outputs.
    """
    directions = 2 if config.bidirectional else 1
    h = config.hidden_size
    elementwise = GRU_ELEMENTWISE_MACS_PER_UNIT - (0 if config.bias else GRU_BIAS_MACS_PER_UNIT)
    total = 0
    for layer in range(config.gru_num_layers):
        in_size = config.gru_input_size if layer == 0 else h * directions
        total += directions * (3 * (in_size + h) * h + elementwise * h)
    return total


def count_macs(config: CRNNConfig, seconds: float = 2.0) -> int:
    """MACs of one forward pass on ``seconds`` of audio, by thop's conventions.

    Computed from the config alone (no model, no forward pass), for the float architecture:
    Conv2d ``Cout * F' * T' * Cin * kf * kt`` (no bias); the GRU as in
    :func:`_gru_macs_per_step` for each of the T' steps; every Linear ``in * out`` per
    application (the attention's two at every step, the classifier once); tanh, softmax,
    the weighted sum, a mean pooling and flatten count zero. The course compares at 2 s
    (40 x 201 frames), where :data:`kws.model.BASE` gives 904,608.
    """
    steps = config.conv_frames(seconds_to_frames(seconds))
    kf, kt = config.kernel_size
    in_channels = 1  # the log-mel spectrogram is a one-channel image
    conv = config.cnn_out_channels * config.conv_frequency_bins * steps * in_channels * kf * kt
    gru = _gru_macs_per_step(config) * steps
    h = config.rnn_output_size
    # Linear(h, h) and Linear(h, 1) at each step; a mean costs nothing by thop's count
    attention = (h * h + h * 1) * steps if config.pooling == "attention" else 0
    classifier = h * config.num_classes
    return conv + gru + attention + classifier


def compression_rate(student_bytes: int, base_bytes: int) -> float:
    """C = base size / student size (state-dict bytes); > 1 means the student is smaller."""
    if student_bytes <= 0 or base_bytes <= 0:
        raise ValueError(f"sizes must be positive, got {student_bytes} and {base_bytes}")
    return base_bytes / student_bytes


def speedup(student_macs: int, base_macs: int) -> float:
    """S = base MACs / student MACs; > 1 means the student is cheaper."""
    if student_macs <= 0 or base_macs <= 0:
        raise ValueError(f"MACs must be positive, got {student_macs} and {base_macs}")
    return base_macs / student_macs


def architecture_speedup(config: CRNNConfig, seconds: float = 2.0) -> float:
    """S of the architecture ``config`` against the base model, from MACs alone: no model
    is built (a search that rejects most proposals on their speed-up needs it cheap)."""
    return speedup(count_macs(config, seconds), count_macs(BASE, seconds))


def score(compression_rate: float, speedup: float) -> float:
    """The course's points for compression: 3.5 * C / 10 + 3.5 * S / 10 (the base gets 0.7)."""
    return 3.5 * compression_rate / 10 + 3.5 * speedup / 10


@dataclass(frozen=True)
class CompressionReport:
    """Size and cost of one model and its score against the fp32 base model."""

    params: int
    param_bytes: int
    state_dict_bytes: int  # bytes, torch.save into memory
    macs: int  # at the ``seconds`` passed to :func:`measure`
    compression_rate: float
    speedup: float
    score: float


@functools.cache
def _base_state_dict_bytes() -> int:
    """State-dict bytes of the fp32 base model, built once.

    The weights' values do not change the size, so the random initialisation runs on a
    forked RNG: measuring a model must not shift the global seed stream of a training run.
    """
    with torch.random.fork_rng(devices=[]):
        return state_dict_bytes(CRNN(BASE))


def measure(model: CRNN, seconds: float = 2.0) -> CompressionReport:
    """Measure ``model`` in the dtype it is given against the fp32 base model.

    MACs come from ``model.config`` (the float architecture), so fp16 changes only the size.
    """
    size = state_dict_bytes(model)
    macs = count_macs(model.config, seconds)
    rate = compression_rate(size, _base_state_dict_bytes())
    speed = speedup(macs, count_macs(BASE, seconds))
    return CompressionReport(
        params=model.num_params(),
        param_bytes=param_bytes(model),
        state_dict_bytes=size,
        macs=macs,
        compression_rate=rate,
        speedup=speed,
        score=score(rate, speed),
    )


def to_fp16(model: CRNN) -> CRNN:
    """A half-precision copy (the deployed fp16 model); ``model`` itself stays as it is."""
    return copy.deepcopy(model).half()
