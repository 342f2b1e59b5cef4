"""Export the best feasible trial: config.json, the deployed weights, and a held-out check.

The search selected its winner on the validation split, so the validation figure is
optimistic. The export therefore retrains the winning configuration on K seeds and
reports the *test* split's au_fa_fr (mean and spread, pass or fail against the bar):
that, not the search's validation score, is what the user is told.

``config.json`` is plain JSON, validated field by field when read back
(:func:`read_export`); the weights load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import statistics
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import torch

from kws.device import resolve_device
from kws.model import CRNN, CRNNConfig
from kws.reference import training_data
from kws.training import TrainConfig, evaluate_au_fa_fr, train
from study.objective import AU_FA_FR, best_feasible, deployed_compression
from study.runner import Prepared, prepare, student_recipe
from study.search_space import configs_from_params
from study.settings import StudySettings

EXPORT_FORMAT = "kws-study export 1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"


class ExportError(RuntimeError):
    """Nothing to export (no feasible trial) or an invalid exported config."""


@dataclass(frozen=True)
class Export:
    """An exported configuration, as read back from ``config.json``."""

    model: CRNNConfig
    training: TrainConfig
    settings: StudySettings
    study: dict[str, Any]
    metrics: dict[str, float]
    held_out: dict[str, Any]
    versions: dict[str, str]


def package_versions() -> dict[str, str]:
    names = ("kws-study", "torch", "torchaudio", "optuna", "optuna-dashboard", "numpy")
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["torch"] = torch.__version__  # with its build tag (+cpu, +cu130)
    return versions


def held_out_check(
    model: CRNNConfig, recipe: TrainConfig, prepared: Prepared, seeds: int, device: torch.device
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Retrain on ``seeds`` seeds (the recipe's first) and evaluate each on the test split.

    Returns the summary and the first seed's fp32 weights, which reproduce the trial's model.
    """
    data = training_data(prepared.features, prepared.reference, device)
    test_features = prepared.features.features["testing"]
    test_labels = prepared.features.labels["testing"]
    values, first_state = [], {}
    for offset in range(seeds):
        result = train(model, dataclasses.replace(recipe, seed=recipe.seed + offset), data)
        trained = CRNN(model)
        trained.load_state_dict(result.state_dict)
        values.append(evaluate_au_fa_fr(trained, test_features, test_labels, recipe.fp16))
        if offset == 0:
            first_state = result.state_dict
    mean = statistics.fmean(values)
    summary = {
        "seeds": [recipe.seed + offset for offset in range(seeds)],
        "test_au_fa_fr": values,
        "test_au_fa_fr_mean": mean,
        "test_au_fa_fr_std": statistics.pstdev(values),
        "bar": prepared.bar,
        "passes": mean <= prepared.bar,
    }
    return summary, first_state


def export_best(
    study: optuna.Study, out_dir: str | Path, seeds: int = 3, device: str = "auto"
) -> Path:
    """Write the best feasible trial of ``study`` to ``out_dir``; returns the folder.

    Raises:
        ExportError: the study has no feasible completed trial (nothing is written).
    """
    trial = best_feasible(study)
    if trial is None:
        raise ExportError(
            f"study {study.study_name!r} has no feasible completed trial: nothing to export"
        )
    settings = StudySettings.from_dict({**study.user_attrs["settings"], "progress": False})

    model, recipe = configs_from_params(trial.params, student_recipe(settings))
    prepared = prepare(settings)
    held_out, state_dict = held_out_check(model, recipe, prepared, seeds, resolve_device(device))
    compression = deployed_compression(model, recipe.fp16)
    document = {
        "format": EXPORT_FORMAT,
        "study": {
            "name": study.study_name,
            "storage": settings.storage,
            "trial_number": trial.number,
            "trial_id": trial._trial_id,
        },
        "model": model.to_dict(),
        "training": recipe.to_dict(),
        "settings": settings.to_dict(),
        "metrics": {
            "val_au_fa_fr": trial.user_attrs[AU_FA_FR],
            "au_fa_fr_bar": prepared.bar,
            "params": compression.params,
            "macs": compression.macs,
            "state_dict_bytes": compression.state_dict_bytes,
            "compression_rate": compression.compression_rate,
            "speedup": compression.speedup,
            "score": compression.score,
        },
        "held_out": held_out,
        "versions": package_versions(),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    deployed = CRNN(model)
    deployed.load_state_dict(state_dict)
    if recipe.fp16:
        deployed = deployed.half()
    torch.save(deployed.state_dict(), out / WEIGHTS_FILE)
    (out / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n")
    return out


def read_export(path: str | Path) -> Export:
    """Read and validate an exported ``config.json`` (or the folder holding it).

    Raises:
        ExportError: not JSON, another format, or a missing or invalid field (named).
    """
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_FILE
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ExportError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: not a kws-study export (format {EXPORT_FORMAT!r} expected)")
    sections = ("model", "training", "settings", "study", "metrics", "held_out", "versions")
    for key in sections:
        if not isinstance(document.get(key), dict):
            raise ExportError(f"{path}: field {key!r} is missing or not an object")
    try:
        return Export(
            model=CRNNConfig.from_dict(document["model"]),
            training=TrainConfig.from_dict(document["training"]),
            settings=StudySettings.from_dict(document["settings"]),
            study=document["study"],
            metrics=document["metrics"],
            held_out=document["held_out"],
            versions=document["versions"],
        )
    except (TypeError, ValueError) as error:
        raise ExportError(f"{path}: invalid value: {error}") from error


def load_weights(folder: str | Path) -> CRNN:
    """The exported model (fp16 where chosen), its weights loaded with weights_only=True."""
    export = read_export(folder)
    model = CRNN(export.model)
    if export.training.fp16:
        model = model.half()
    model.load_state_dict(torch.load(Path(folder) / WEIGHTS_FILE, weights_only=True))
    return model.eval()
