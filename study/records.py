"""What every finished trial leaves for the dashboard: its checkpoint and a short note.

The checkpoint is the trial's model as deployed (fp16 where chosen) with its architecture
and recipe, as one ``torch.save`` dict that loads with ``torch.load(weights_only=True)``;
it is uploaded to Optuna's artifact store (``storage/artifacts/`` by default), where
optuna-dashboard offers it for download. A pruned trial's checkpoint holds its best epoch
so far; a trial skipped before training has none. The note (Markdown, shown on the
trial's page) says what the trial was and how it did, in one glance.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import optuna
import optuna_dashboard
import torch
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from kws.model import CRNN, CRNNConfig
from kws.training import TrainConfig
from study.attributes import (
    AU_FA_FR,
    AU_FA_FR_FRESH_SEEDS,
    AU_FA_FR_PER_EPOCH,
    AU_FA_FR_SEEDS,
    BAR,
    FEASIBLE,
    PRUNED_REASON,
)

DEFAULT_ARTIFACT_DIR = "storage/artifacts"


def artifact_store(path: str | Path = DEFAULT_ARTIFACT_DIR) -> FileSystemArtifactStore:
    """The artifact store in ``path``, created if missing (Optuna's store does not)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))


def checkpoint(
    config: CRNNConfig, recipe: TrainConfig, state_dict: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """A self-describing checkpoint of the deployed model (half precision when ``fp16``)."""
    model = CRNN(config)
    model.load_state_dict(state_dict)
    if recipe.fp16:
        model = model.half()
    return {
        "model": config.to_dict(),
        "training": recipe.to_dict(),
        "state_dict": {name: tensor.cpu() for name, tensor in model.state_dict().items()},
    }


def load_checkpoint(path: str | Path) -> CRNN:
    """The model of a checkpoint file, loaded with ``weights_only=True``, in eval mode."""
    payload = torch.load(path, weights_only=True)
    model = CRNN(CRNNConfig.from_dict(payload["model"]))
    if TrainConfig.from_dict(payload["training"]).fp16:
        model = model.half()
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def trial_note(number: int, state: str, params: dict[str, Any], attrs: dict[str, Any]) -> str:
    """The Markdown note of a finished trial, from its parameters and user attributes."""
    au_fa_fr = attrs.get(AU_FA_FR, math.nan)
    bar = attrs.get(BAR, math.nan)
    fp16 = " fp16" if params.get("fp16") else ""
    per_seed = attrs.get(AU_FA_FR_SEEDS, [])
    seeds = (
        f"; mean over {len(per_seed)} seeds: {', '.join(f'{v:.3e}' for v in per_seed)}"
        if len(per_seed) > 1
        else ""
    )
    if attrs.get(AU_FA_FR_FRESH_SEEDS):
        seeds += f" (the last {len(attrs[AU_FA_FR_FRESH_SEEDS])} its fresh check's)"
    lines = [
        f"### Trial {number}: {state.lower()}, "
        f"{'feasible' if attrs.get(FEASIBLE) else 'infeasible'}",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | {params.get('cnn_out_channels')} channels, kernel "
        f"({params.get('kernel_freq')}, {params.get('kernel_time')}), stride "
        f"({params.get('stride_freq')}, {params.get('stride_time')}), "
        f"{params.get('gru_num_layers')} GRU layer(s) of {params.get('hidden_size')}, "
        f"{params.get('pooling', 'attention')} pooling"
        f"{'' if params.get('bias', True) else ', no biases'}{fp16} |",
        f"| distillation | T = {params.get('temperature', math.nan):.2f}, "
        f"alpha = {params.get('alpha', math.nan):.2f}; "
        f"learning rate {params.get('learning_rate', math.nan):.2e} |",
        f"| size | {attrs.get('params', '?')} parameters, {attrs.get('macs', '?')} MACs, "
        f"{attrs.get('state_dict_bytes', '?')} state-dict bytes |",
        f"| score | {attrs.get('score', math.nan):.2f} "
        f"(C {attrs.get('compression_rate', math.nan):.2f}, "
        f"S {attrs.get('speedup', math.nan):.2f}) |",
        f"| validation au_fa_fr | {au_fa_fr:.3e} (bar {bar:.3e}){seeds} |",
        f"| kept epoch | {attrs.get('kept_epoch', '-')} of "
        f"{len(attrs.get(AU_FA_FR_PER_EPOCH, []))} trained |",
    ]
    if attrs.get(PRUNED_REASON):
        lines.append(f"| pruned | {attrs[PRUNED_REASON]} |")
    return "\n".join(lines) + "\n"


def save_record(
    trial: optuna.Trial,
    store: FileSystemArtifactStore,
    config: CRNNConfig,
    recipe: TrainConfig,
    state_dict: dict[str, torch.Tensor] | None,
    state: str,
) -> None:
    """Upload the trial's checkpoint (when it trained) and save its note."""
    if state_dict:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"trial-{trial.number}.pt"
            torch.save(checkpoint(config, recipe, state_dict), path)
            upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
    attrs = trial.user_attrs
    optuna_dashboard.save_note(trial, trial_note(trial.number, state, trial.params, attrs))
