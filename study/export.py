"""Export the best feasible trial: config.json, the deployed weights, and a held-out check.

The search selected its winner on the validation split and on its own training seeds, so
its figures are optimistic: of many students whose seeds came out well, the best is a
lucky one. The export therefore retrains the best feasible trials on K seeds the study
never trained them on (the ones after its ``--confirm-seeds`` and its fresh check's),
keeps the first whose mean
validation au_fa_fr plus its standard error still meets the bar there (the study's own
rule, :func:`study.objective.au_fa_fr_upper`), and reports that one's *test*
split au_fa_fr (mean and spread) against the reference's test figure times the bar's
ratio (1.1): that like-for-like check, not the search's validation score, is what the user
is told, and it is saved as the study's dashboard note too.

``config.json`` is plain JSON, validated field by field when read back
(:func:`read_export`); the weights (``model.pt``) load with ``torch.load(weights_only=True)``.
``model.ts.pt`` is the same model as TorchScript with its log-mel front end
(:func:`kws.deploy.write_torchscript`): it runs with torch alone, without this project.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import platform
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import optuna_dashboard
import torch
from optuna.trial import TrialState
from tqdm import tqdm

from kws.config import ConfigError
from kws.deploy import write_torchscript
from kws.device import cores_per_worker, resolve_device
from kws.errors import UserError
from kws.files import replace_folder
from kws.model import CRNN, CRNNConfig
from kws.reference import training_data
from kws.seed_pool import SeedPool, progress_bar_updater
from kws.training import TrainConfig, evaluate_au_fa_fr
from study.attributes import AU_FA_FR, AU_FA_FR_SEEDS, FEASIBLE
from study.objective import au_fa_fr_upper, deployed_compression, seeds_trained
from study.runner import Prepared, prepare_stored, student_recipe, with_study_bar
from study.search_space import configs_from_params
from study.settings import StudySettings

EXPORT_FORMAT = "kws-study export 4"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"
TORCHSCRIPT_FILE = "model.ts.pt"  # waveform or log-mel -> keyword probability, torch only


class ExportError(UserError, RuntimeError):
    """Nothing to export (no feasible trial) or an invalid exported config."""


@dataclass(frozen=True)
class Export:
    """An exported configuration, as read back from ``config.json``."""

    model: CRNNConfig
    training: TrainConfig
    settings: StudySettings
    study: dict[str, Any]
    metrics: dict[str, float]
    selection: dict[str, Any]
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


@dataclass(frozen=True)
class Candidate:
    """A feasible trial retrained on several seeds, judged on the validation split only."""

    trial: optuna.trial.FrozenTrial
    val_au_fa_fr: tuple[float, ...]  # one per seed, of the deployed model

    @property
    def val_au_fa_fr_mean(self) -> float:
        return statistics.fmean(self.val_au_fa_fr)

    @property
    def val_au_fa_fr_upper(self) -> float:
        """The mean plus its standard error: what the bar is checked against."""
        return au_fa_fr_upper(self.val_au_fa_fr)


def choose(candidates: list[Candidate], bar: float) -> tuple[Candidate, bool]:
    """The first candidate (best value first) whose seed-mean validation au_fa_fr plus its
    standard error meets ``bar``, and True; when none does, the one closest to the bar, and
    False."""
    for candidate in candidates:
        if candidate.val_au_fa_fr_upper <= bar:
            return candidate, True
    return min(candidates, key=lambda c: c.val_au_fa_fr_upper), False


@dataclass(frozen=True)
class _Retrained:
    state_dicts: list[dict[str, torch.Tensor]]
    val_au_fa_fr: tuple[float, ...]


def _retrain(
    model: CRNNConfig,
    recipe: TrainConfig,
    seed_pool: SeedPool,
    seeds: int,
    progress: str | None,
) -> _Retrained:
    """Train on the recipe's seed and the next ``seeds - 1``; validate each deployed model.
    ``progress`` names what is retrained, for a bar over the epochs (None: no bar)."""
    recipes = [dataclasses.replace(recipe, seed=recipe.seed + offset) for offset in range(seeds)]
    seed_range = f"seed {recipe.seed}" if seeds == 1 else f"seeds {recipe.seed}-{recipes[-1].seed}"
    with tqdm(
        total=seeds * recipe.epochs,
        desc=f"retraining {progress} on {seed_range}",
        unit="epoch",
        disable=progress is None,
    ) as bar:
        results = seed_pool.train(model, recipes, progress_bar_updater(bar))
        bar.total = bar.n  # early stopping ends seeds before recipe.epochs
    # best_val_au_fa_fr: of the half model where fp16 is deployed
    return _Retrained([r.state_dict for r in results], tuple(r.best_val_au_fa_fr for r in results))


def export_recipe(settings: StudySettings) -> TrainConfig:
    """The students' recipe from the first seed the study never trained a trial on: it
    trained them on ``seed`` to ``seed + confirm_seeds - 1`` and, with its fresh check, a
    would-be best on as many more, and chose on those, so only later seeds give a figure
    its choice did not flatter."""
    recipe = student_recipe(settings)
    used = seeds_trained(settings.confirm_seeds, settings.fresh_check)
    return dataclasses.replace(recipe, seed=recipe.seed + used)


def held_out_check(
    model: CRNNConfig,
    recipe: TrainConfig,
    state_dicts: list[dict[str, torch.Tensor]],
    val_au_fa_fr: Sequence[float],
    prepared: Prepared,
    reference: dict[str, float],
    confirmed: bool,
) -> dict[str, Any]:
    """Test-split au_fa_fr of the models retrained on consecutive seeds from the recipe's
    (the exported ones, whose validation figures ``val_au_fa_fr`` are recorded beside),
    judged like for like: against the bar's ratio to the reference applied to the
    reference's *test* figure.

    The bar is 1.1 x the reference's validation mean, and the test split can be easier or
    harder than validation (on seed 0 the reference scores 25 % lower there), so a student's
    test figure against the validation bar would be flattered or wronged. ``reference``
    holds the study's recorded means over the reference seeds (``val`` and ``test``); the
    test bar is ``bar / val x test``, which for the default bar is exactly 1.1 x the
    reference's test mean. ``passes`` needs both a
    confirmed candidate and a test mean at most the test bar.
    """
    test_features = prepared.features.features["testing"]
    test_labels = prepared.features.labels["testing"]
    values = []
    for state_dict in state_dicts:
        trained = CRNN(model)
        trained.load_state_dict(state_dict)
        values.append(evaluate_au_fa_fr(trained, test_features, test_labels, recipe.fp16))
    mean = statistics.fmean(values)
    ratio = prepared.bar / reference["val"]
    test_bar = ratio * reference["test"]
    return {
        "seeds": [recipe.seed + offset for offset in range(len(state_dicts))],
        "val_au_fa_fr": list(val_au_fa_fr),
        "test_au_fa_fr": values,
        "test_au_fa_fr_mean": mean,
        "test_au_fa_fr_std": statistics.pstdev(values),
        "bar": prepared.bar,
        "reference_val_au_fa_fr": reference["val"],
        "reference_test_au_fa_fr": reference["test"],
        "bar_ratio": ratio,
        "test_bar": test_bar,
        "confirmed": confirmed,
        "passes": confirmed and mean <= test_bar,
    }


def held_out_verdict(held_out: dict[str, Any]) -> str:
    """PASSES, FAILS, or NOT CONFIRMED when no candidate met the validation bar (then
    nothing may claim a pass, whatever the test figure)."""
    if not held_out["confirmed"]:
        return "NOT CONFIRMED"
    return "PASSES" if held_out["passes"] else "FAILS"


def held_out_summary(held_out: dict[str, Any]) -> str:
    """The like-for-like check in one line, as export prints it and the notes show it."""
    return (
        f"held-out test au_fa_fr over seeds {held_out['seeds']}: "
        f"{held_out['test_au_fa_fr_mean']:.3e} +- {held_out['test_au_fa_fr_std']:.1e}; "
        f"reference (BASE) test au_fa_fr {held_out['reference_test_au_fa_fr']:.3e}, "
        f"like-for-like bar {held_out['bar_ratio']:.2f} x "
        f"{held_out['reference_test_au_fa_fr']:.3e} = {held_out['test_bar']:.3e}: "
        f"{held_out_verdict(held_out)}"
    )


def export_note(document: dict[str, Any]) -> str:
    """The study's dashboard note after an export (Markdown)."""
    metrics, held_out = document["metrics"], document["held_out"]
    values = ", ".join(f"{value:.3e}" for value in held_out["test_au_fa_fr"])
    return (
        f"### Exported: trial {document['study']['trial_number']}\n\n"
        f"Score {metrics['score']:.2f} (C {metrics['compression_rate']:.2f}, "
        f"S {metrics['speedup']:.2f}); validation bar {held_out['bar']:.3e}.\n\n"
        f"| held-out (test split) | |\n|---|---|\n"
        f"| student, per seed {held_out['seeds']} | {values} |\n"
        f"| student, mean | {held_out['test_au_fa_fr_mean']:.3e} |\n"
        f"| reference (BASE), mean over its seeds | {held_out['reference_test_au_fa_fr']:.3e} |\n"
        f"| like-for-like bar | {held_out['bar_ratio']:.2f} x "
        f"{held_out['reference_test_au_fa_fr']:.3e} = {held_out['test_bar']:.3e} |\n"
        f"| verdict | **{held_out_verdict(held_out)}** |\n"
    )


def recorded_reference(study: optuna.Study, prepared: Prepared) -> dict[str, float]:
    """The reference's validation and test means the study recorded when it was created
    (the bar's own), or this machine's where a study lacks them."""
    attrs = study.user_attrs
    return {
        "val": attrs.get("reference_val_au_fa_fr", prepared.reference_val_au_fa_fr),
        "test": attrs.get("reference_test_au_fa_fr", prepared.reference_test_au_fa_fr),
    }


def export_best(
    study: optuna.Study,
    out_dir: str | Path,
    here: StudySettings,
    seeds: int = 3,
    confirm: int = 5,
    log: Callable[[str], None] = print,
) -> Path:
    """Write the best confirmed feasible trial of ``study`` to ``out_dir``; returns the folder.

    The study judged each trial on its own seeds and kept the best of many such figures,
    so the top trial is likely a lucky one: on seed 1's default study the three best
    confirmed trials, at 0.80 to 0.92 x the bar on average on their seeds, came out at
    1.08 to 1.24 x on the next three (docs/benchmarks.md). The ``confirm`` best feasible
    trials are therefore retrained on ``seeds`` seeds the study never trained them on
    (:func:`export_recipe`), best value first, and the first whose mean validation
    au_fa_fr plus its standard error still meets the bar there is exported, the model of
    the first of those seeds. Only then is the test split read, for the exported one alone.

    What a trial trained on comes from the study (:func:`study.settings.replayed`); the
    device and the cache folders from ``here``, this machine's settings. The folder is
    written whole or not at all.

    Raises:
        ExportError: the study has no feasible completed trial (nothing is written).
    """
    if seeds < 1 or confirm < 1:
        raise ConfigError(f"--seeds and --confirm must be >= 1, got {seeds} and {confirm}")
    feasible = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get(FEASIBLE)
    ]
    if not feasible:
        raise ExportError(
            f"study {study.study_name!r} has no feasible completed trial: nothing to export"
        )
    feasible.sort(key=lambda t: (-t.value, t.number))
    settings, prepared = prepare_stored(study, here)
    prepared = with_study_bar(study, prepared)
    data = training_data(prepared.features, prepared.reference, resolve_device(settings.device))

    students = export_recipe(settings)
    candidates, retrained = [], {}
    with SeedPool(data, cores_per_worker()) as seed_pool:
        for trial in feasible[:confirm]:
            model, recipe = configs_from_params(trial.params, students)
            label = f"trial {trial.number}" if settings.progress else None
            retrained[trial.number] = _retrain(model, recipe, seed_pool, seeds, label)
            candidate = Candidate(trial, retrained[trial.number].val_au_fa_fr)
            candidates.append(candidate)
            upper = candidate.val_au_fa_fr_upper
            verdict = "meets" if upper <= prepared.bar else "misses"
            log(
                f"trial {trial.number} (value {trial.value:.3f}): validation au_fa_fr over "
                f"{seeds} new seeds {candidate.val_au_fa_fr_mean:.3e}, with its standard error "
                f"{upper:.3e}, {verdict} the bar {prepared.bar:.3e}"
            )
            if upper <= prepared.bar:
                break
    chosen, confirmed = choose(candidates, prepared.bar)
    trial = chosen.trial
    model, recipe = configs_from_params(trial.params, students)
    state_dicts = retrained[trial.number].state_dicts
    reference = recorded_reference(study, prepared)
    held_out = held_out_check(
        model, recipe, state_dicts, chosen.val_au_fa_fr, prepared, reference, confirmed
    )
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
            # The study's figures, on its seeds; the exported models' are in held_out.
            "val_au_fa_fr": trial.user_attrs[AU_FA_FR],  # the mean over the trial's seeds
            "val_au_fa_fr_seeds": trial.user_attrs.get(
                AU_FA_FR_SEEDS, [trial.user_attrs[AU_FA_FR]]
            ),
            "au_fa_fr_bar": prepared.bar,
            "params": compression.params,
            "macs": compression.macs,
            "state_dict_bytes": compression.state_dict_bytes,
            "compression_rate": compression.compression_rate,
            "speedup": compression.speedup,
            "score": compression.score,
        },
        "selection": {
            "confirmed": confirmed,
            "candidates": [
                {
                    "trial_number": c.trial.number,
                    "value": c.trial.value,
                    "val_au_fa_fr": list(c.val_au_fa_fr),
                    "val_au_fa_fr_mean": c.val_au_fa_fr_mean,
                    "val_au_fa_fr_upper": c.val_au_fa_fr_upper,
                }
                for c in candidates
            ],
        },
        "held_out": held_out,
        "versions": package_versions(),
    }
    deployed = CRNN(model)
    deployed.load_state_dict(state_dicts[0])
    if recipe.fp16:
        deployed = deployed.half()

    def write(folder: Path) -> None:
        torch.save(deployed.state_dict(), folder / WEIGHTS_FILE)
        write_torchscript(deployed, folder / TORCHSCRIPT_FILE)
        (folder / CONFIG_FILE).write_text(json.dumps(document, indent=2) + "\n")

    out = Path(out_dir)
    replace_folder(out, write)
    optuna_dashboard.save_note(study, export_note(document))
    return out


def _is_number(value: object) -> bool:
    # JSON's true and false read as Python bools, which are ints; NaN reads as a float.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list_of(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, list) and bool(value) and all(map(check, value))


# JSON kind -> its check, for the figures below.
_KINDS: dict[str, Callable[[object], bool]] = {
    "a number": _is_number,
    "an integer": _is_integer,
    "true or false": lambda value: isinstance(value, bool),
    "a list": lambda value: isinstance(value, list),
    "a non-empty list of numbers": _is_list_of(_is_number),
    "a non-empty list of integers": _is_list_of(_is_integer),
}
_HELD_OUT_NUMBERS = (
    "test_au_fa_fr_mean", "test_au_fa_fr_std", "bar", "reference_val_au_fa_fr",
    "reference_test_au_fa_fr", "bar_ratio", "test_bar",
)  # fmt: skip
# The figures every export holds (export, report, train --config and the dashboard note
# print them), with the JSON kind each must have: a hand-edited config.json is refused
# naming the field, rather than met by a KeyError after minutes of retraining.
_FIGURES: dict[str, dict[str, str]] = {
    "study": {"trial_number": "an integer"},
    "metrics": {"compression_rate": "a number", "speedup": "a number", "score": "a number"},
    "selection": {"confirmed": "true or false", "candidates": "a list"},
    "held_out": {
        "seeds": "a non-empty list of integers",
        "val_au_fa_fr": "a non-empty list of numbers",
        "test_au_fa_fr": "a non-empty list of numbers",
        **dict.fromkeys(_HELD_OUT_NUMBERS, "a number"),
        "confirmed": "true or false",
        "passes": "true or false",
    },
}


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
    written = document.get("format") if isinstance(document, dict) else None
    if isinstance(written, str) and written.startswith("kws-study") and written != EXPORT_FORMAT:
        raise ExportError(
            f"{path}: {written!r} was written by an older kws-study ({EXPORT_FORMAT!r} "
            "expected): run export again"
        )
    if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
        raise ExportError(f"{path}: not a kws-study export (format {EXPORT_FORMAT!r} expected)")
    sections = (
        "model", "training", "settings", "study", "metrics", "selection", "held_out", "versions"
    )  # fmt: skip
    for key in sections:
        if not isinstance(document.get(key), dict):
            raise ExportError(f"{path}: field {key!r} is missing or not an object")
    for section, fields in _FIGURES.items():
        for name, kind in fields.items():
            if not _KINDS[kind](document[section].get(name)):
                raise ExportError(f"{path}: {section}.{name} is missing or not {kind}")
    configs = {}
    for key, cls in (("model", CRNNConfig), ("training", TrainConfig), ("settings", StudySettings)):
        try:
            configs[key] = cls.from_dict(document[key])
        except ConfigError as error:
            raise ExportError(f"{path}: {key}: {error}") from error
    return Export(
        **configs,
        study=document["study"],
        metrics=document["metrics"],
        selection=document["selection"],
        held_out=document["held_out"],
        versions=document["versions"],
    )


def load_weights(folder: str | Path) -> CRNN:
    """The exported model (fp16 where chosen), its weights loaded with weights_only=True.

    Raises:
        ExportError: config.json is invalid, or model.pt is not the state dict of its model
            (not a torch file, not a dict of tensors, another architecture, or a pickle
            that ``weights_only`` refuses to run); the message names the file.
    """
    export = read_export(folder)
    model = CRNN(export.model)
    if export.training.fp16:
        model = model.half()
    path = Path(folder) / WEIGHTS_FILE
    try:
        with warnings.catch_warnings():  # torch warns of the pickle protocol of odd files
            warnings.simplefilter("ignore", UserWarning)
            state_dict = torch.load(path, weights_only=True)
    except pickle.UnpicklingError as error:  # torch's message suggests weights_only=False
        raise ExportError(
            f"{path}: refused: not a torch file, or it holds objects other than tensors "
            "(only a state dict saved by export is loaded, never code)"
        ) from error
    except (OSError, RuntimeError, EOFError) as error:
        raise ExportError(f"{path}: not a readable torch file ({error})") from error
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise ExportError(f"{path}: not a state dict (a dict of named tensors)")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as error:
        reason = " ".join(str(error).split())[:300]
        raise ExportError(f"{path}: does not fit the model of {CONFIG_FILE} ({reason})") from error
    return model.eval()
