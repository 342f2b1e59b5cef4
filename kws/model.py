"""The CRNN family: one class, many sizes, from a frozen JSON-round-tripping config.

The base model of the course (background.md) and every student of the search are
``CRNN(config)`` with different ``CRNNConfig`` values:

    log-mel (B, n_mels, T) -> Conv2d(1 -> C, kernel (kf, kt), stride (sf, st), no padding)
    -> flatten (B, T', C * F') -> GRU(layers, hidden) -> pooling over time
    -> Linear(hidden, n_classes)

The pooling is the course's additive attention, or a plain mean over time; every layer has
biases (the course's) or none. Both choices exist for size: ``torch.save`` writes about
250 bytes per tensor whatever it holds, so a student of a few hundred weights pays more for
its attention's and biases' eight tensors than for its weights (docs/benchmarks.md,
"The size ceiling").
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from kws.config import ConfigError, config_from_dict
from kws.features import FRAMES_PER_CLIP, N_MELS

POOLINGS = ("attention", "mean")
"""Pooling over time: the course's additive attention, or the mean of the GRU outputs."""


@dataclass(frozen=True)
class CRNNConfig:
    """Architecture of one CRNN. Kernel and stride are (frequency, time) pairs."""

    cnn_out_channels: int = 8
    kernel_size: tuple[int, int] = (5, 20)
    stride: tuple[int, int] = (2, 8)
    gru_num_layers: int = 2
    hidden_size: int = 32
    bidirectional: bool = False
    n_mels: int = N_MELS
    num_classes: int = 2
    dropout: float = 0.1  # between GRU layers; only active with gru_num_layers > 1
    pooling: str = "attention"  # one of POOLINGS
    bias: bool = True  # biases in the convolution, the GRU and the classifier

    def __post_init__(self) -> None:
        # JSON has no tuples: accept lists and store tuples so equality and hashing work.
        for name in ("kernel_size", "stride"):
            value = getattr(self, name)
            if not (isinstance(value, list | tuple) and len(value) == 2):
                raise ConfigError(
                    f"CRNNConfig.{name} must be a (frequency, time) pair, got {value!r}"
                )
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
                raise ConfigError(f"CRNNConfig.{name} must hold positive integers, got {value!r}")
            object.__setattr__(self, name, (int(value[0]), int(value[1])))
        for name in ("cnn_out_channels", "gru_num_layers", "hidden_size", "n_mels", "num_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"CRNNConfig.{name} must be a positive integer, got {value!r}")
        if self.num_classes < 2:
            raise ConfigError(f"CRNNConfig.num_classes must be >= 2, got {self.num_classes}")
        for name in ("bidirectional", "bias"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"CRNNConfig.{name} must be a bool, got {getattr(self, name)!r}")
        if self.pooling not in POOLINGS:
            raise ConfigError(
                f"CRNNConfig.pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"CRNNConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.kernel_size[0] > self.n_mels:
            raise ConfigError(
                f"CRNNConfig.kernel_size frequency {self.kernel_size[0]} does not fit "
                f"n_mels={self.n_mels} mel bands"
            )

    @property
    def conv_frequency_bins(self) -> int:
        """F': frequency bins after the convolution (no padding)."""
        return (self.n_mels - self.kernel_size[0]) // self.stride[0] + 1

    @property
    def gru_input_size(self) -> int:
        """Features per time step fed to the GRU: channels x F'."""
        return self.cnn_out_channels * self.conv_frequency_bins

    @property
    def rnn_output_size(self) -> int:
        return self.hidden_size * (2 if self.bidirectional else 1)

    def conv_frames(self, frames: int) -> int:
        """T': time steps after the convolution for an input of ``frames`` frames."""
        if frames < self.kernel_size[1]:
            raise ConfigError(
                f"time kernel {self.kernel_size[1]} does not fit an input of {frames} frames"
            )
        return (frames - self.kernel_size[1]) // self.stride[1] + 1

    def to_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CRNNConfig:
        """Build from a dict (e.g. read from JSON); unknown keys are rejected by name."""
        return config_from_dict(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CRNNConfig:
        return cls.from_dict(json.loads(text))


BASE = CRNNConfig()
"""The course's reference model: 25,387 parameters, 904,608 MACs on 2 s of input."""


class AttentionPooling(nn.Module):
    """Additive attention over time: softmax over t of w2 . tanh(W1 h_t + b1) + b2.

    ``(B, T, H) -> (B, H)``. The layers sit in ``energy`` (Linear, Tanh, Linear) exactly as
    in the course's model, so state-dict keys (``attention.energy.0.weight`` ...) and hence
    checkpoints and ``torch.save`` sizes match it.
    """

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.energy = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.Tanh(), nn.Linear(hidden_size, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.energy(x), dim=-2)  # (B, T, 1), sums to 1 over T
        return (weights * x).sum(dim=-2)  # (B, H)


class CRNN(nn.Module):
    """Conv -> GRU -> pooling -> linear, built from a :class:`CRNNConfig`.

    ``forward`` maps log-mel features ``(B, n_mels, frames)`` to logits ``(B, num_classes)``.
    With attention pooling the module holds ``attention``; with mean pooling it has none.
    """

    def __init__(self, config: CRNNConfig, min_frames: int = FRAMES_PER_CLIP) -> None:
        super().__init__()
        config.conv_frames(min_frames)  # rejects a time kernel longer than one clip
        self.config = config
        # Sequential(Conv2d, Flatten) mirrors the course's model: keys ``conv.0.*``.
        self.conv = nn.Sequential(
            nn.Conv2d(
                1,
                config.cnn_out_channels,
                config.kernel_size,
                stride=config.stride,
                bias=config.bias,
            ),
            nn.Flatten(start_dim=1, end_dim=2),
        )
        self.gru = nn.GRU(
            input_size=config.gru_input_size,
            hidden_size=config.hidden_size,
            num_layers=config.gru_num_layers,
            batch_first=True,
            dropout=config.dropout if config.gru_num_layers > 1 else 0.0,
            bidirectional=config.bidirectional,
            bias=config.bias,
        )
        if config.pooling == "attention":
            self.attention = AttentionPooling(config.rnn_output_size)
        self.classifier = nn.Linear(config.rnn_output_size, config.num_classes, bias=config.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.conv(features.unsqueeze(1))  # (B, 1, F, T) -> (B, C * F', T')
        x = x.transpose(1, 2)  # (B, T', C * F')
        x, _ = self.gru(x)  # (B, T', hidden * directions)
        return self.classifier(self.pool(x))  # (B, num_classes)

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """GRU outputs ``(B, T', H)`` to one vector ``(B, H)`` per clip."""
        if hasattr(self, "attention"):  # TorchScript resolves this when scripting
            return self.attention(hidden)
        return hidden.mean(dim=-2)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
