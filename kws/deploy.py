"""A CRNN as one TorchScript file that runs with ``torch`` alone (no kws, no torchaudio).

``write_torchscript(model, path)`` scripts :class:`KeywordScorer`, the model behind its own
log-mel front end, and saves it; anyone with torch loads it with ``torch.jit.load(path)``
(or libtorch's ``torch::jit::load`` in C++) and gets, per 1 s clip:

- ``scorer(waveform)``: ``(B, samples)`` 16 kHz float audio -> ``(B,)`` keyword
  probabilities (softmax index 1), the log-mel features computed inside;
- ``scorer.from_features(features)``: ``(B, n_mels, frames)`` log-mel -> ``(B,)``.

torchaudio's mel spectrogram scripts into plain torch operators (``stft``, ``matmul``), so
the file needs nothing but torch. An fp16 model stays fp16 (features are cast to its
dtype, as offline); probabilities come out fp32.

The streaming detector (:mod:`kws.streaming`) is not scripted: its caches are Python
dictionaries keyed by sample positions, updated between windows. A runtime without this
project streams by calling the scorer on the last window at every chunk; that gives the
same probabilities, without reusing frames between windows.

``torch.jit`` warns that it is deprecated in favour of ``torch.export``; it is still the
format that loads from a single file with ``torch.jit.load`` and in libtorch, so the
warning is silenced here rather than shown on every export.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from torch import nn

from kws.features import LOG_CLAMP, LogMel
from kws.model import CRNN


class KeywordScorer(nn.Module):
    """Waveform or log-mel to keyword probability; scriptable."""

    def __init__(self, model: CRNN) -> None:
        super().__init__()
        self.model = model
        # The torchaudio transform itself: LogMel's forward unpacks a tuple TorchScript
        # cannot, so the clamp and log are repeated in forward with the same bounds.
        self.mel = LogMel(model.config.n_mels).mel
        self.low, self.high = LOG_CLAMP

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        features = torch.log(self.mel(waveform).clamp(self.low, self.high))
        return self.from_features(features)

    @torch.jit.export
    def from_features(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.model(features.to(self.model.classifier.weight.dtype))
        return torch.softmax(logits.float(), dim=-1)[:, 1]


def write_torchscript(model: CRNN, path: str | Path) -> Path:
    """Script a copy of ``model`` (eval mode, CPU) with its front end and save it to ``path``."""
    scorer = KeywordScorer(copy.deepcopy(model).cpu().eval())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        scripted = torch.jit.script(scorer)
        path = Path(path)
        torch.jit.save(scripted, str(path))
    return path
