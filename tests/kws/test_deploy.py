"""kws.deploy: the TorchScript file, loaded by a Python that imports torch and nothing else.

The file is run in a subprocess (``python -I -c``, from an empty folder) that imports only
torch and checks that neither kws, study nor torchaudio got imported; its probabilities
are compared with the in-package model's on the same inputs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kws.deploy import write_torchscript
from kws.features import LogMel
from kws.model import BASE, CRNN, CRNNConfig

TORCH_ONLY = """
import sys
import torch
scorer = torch.jit.load(sys.argv[1])
waveforms, features = torch.load(sys.argv[2])
with torch.no_grad():
    outputs = (scorer(waveforms), scorer.from_features(features))
torch.save(outputs, sys.argv[3])
imported = sorted(n for n in ("kws", "study", "torchaudio") if n in sys.modules)
print("imported:", imported)
"""


def run_torch_only(scripted: Path, waveforms: torch.Tensor, tmp_path: Path) -> tuple:
    inputs, outputs = tmp_path / "inputs.pt", tmp_path / "outputs.pt"
    features = LogMel()(waveforms)
    torch.save((waveforms, features), inputs)
    result = subprocess.run(
        [sys.executable, "-I", "-c", TORCH_ONLY, str(scripted), str(inputs), str(outputs)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "imported: []" in result.stdout
    return torch.load(outputs), features


def reference(model: CRNN, features: torch.Tensor) -> torch.Tensor:
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        return torch.softmax(model(features.to(dtype)).float(), dim=-1)[:, 1]


@pytest.mark.parametrize(
    ("config", "fp16"),
    [
        (BASE, False),
        (BASE, True),
        (
            CRNNConfig(
                cnn_out_channels=3,
                kernel_size=(7, 9),
                stride=(3, 6),
                gru_num_layers=1,
                hidden_size=10,
                bidirectional=True,
            ),
            False,
        ),
        (
            CRNNConfig(
                cnn_out_channels=1,
                kernel_size=(4, 16),
                stride=(8, 6),
                gru_num_layers=1,
                hidden_size=10,
                pooling="mean",
                bias=False,
            ),
            True,
        ),
    ],
    ids=["base", "base-fp16", "small-bidirectional", "mean-no-bias-fp16"],
)
def test_the_torchscript_file_runs_with_torch_alone_and_scores_like_the_model(
    config: CRNNConfig, fp16: bool, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = CRNN(config)  # left in train mode: the file must hold the eval-mode model
    if fp16:
        model = model.half()
    path = write_torchscript(model, tmp_path / "model.ts.pt")
    assert model.training, "write_torchscript must not change the caller's model"
    waveforms = 0.3 * torch.randn(4, 16_000)
    (from_waveforms, from_features), features = run_torch_only(path, waveforms, tmp_path)
    expected = reference(model.eval(), features)
    assert from_waveforms.dtype == from_features.dtype == torch.float32
    # On probabilities near 0.5. fp32: summation order only. fp16 keeps 11 significant bits
    # (a step of 2**-11 ~ 5e-4 on activations of order 1), and scripted and eager fp16
    # kernels may accumulate differently on other CPUs: 2e-3 allows a few such steps.
    atol = 2e-3 if fp16 else 1e-5
    torch.testing.assert_close(from_features, expected, rtol=0, atol=atol)
    torch.testing.assert_close(from_waveforms, expected, rtol=0, atol=atol)
