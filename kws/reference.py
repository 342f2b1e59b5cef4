"""Models trained once per dataset and recipe, cached: the reference and the teacher.

The reference is ``BASE`` trained with the base recipe; its validation au_fa_fr sets the
study's quality bar. The teacher (the reference itself, or a larger CRNN) provides the
distillation targets: its logits on every cached training view are computed once here and
stored beside its weights, so a trial never runs the teacher.

Cache files are ``<cache_dir>/<config, recipe and trainer version hash>-<feature key>.pt``,
written atomically and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from kws.feature_cache import CachedFeatures
from kws.files import load_cache, save_atomically
from kws.metrics import fa_fr_curve
from kws.model import BASE, CRNN, CRNNConfig
from kws.seed_pool import SeedPool, progress_bar_updater
from kws.training import (
    BASE_RECIPE,
    TRAINER_VERSION,
    WRITTEN_BEFORE,
    TrainConfig,
    TrainingData,
    TrainResult,
    keyword_probs,
    predict_logits,
)

TEACHER_64 = CRNNConfig(hidden_size=64)
"""A larger teacher option: BASE with hidden size 64."""


@dataclass(frozen=True)
class TrainedModel:
    """A cached model with its metrics and its logits on every training view.

    ``view_logits`` is ``(V, N_train + M, classes)`` float32 in the order of
    :func:`training_views` (the clean features first); ``val_curve`` / ``test_curve`` are
    the FA/FR curves (``(2, points)`` float64) of the deployed model.
    """

    config: CRNNConfig
    recipe: TrainConfig
    state_dict: dict[str, torch.Tensor]
    val_au_fa_fr: float
    test_au_fa_fr: float
    best_epoch: int
    val_history: tuple[float, ...]  # validation au_fa_fr per epoch
    val_curve: torch.Tensor
    test_curve: torch.Tensor
    view_logits: torch.Tensor

    def model(self) -> CRNN:
        model = CRNN(self.config)
        model.load_state_dict(self.state_dict)
        return model.eval()


def training_views(features: CachedFeatures) -> torch.Tensor:
    """``(1 + V, N_train + M, n_mels, frames)`` fp16: the clean training features, then the
    views; in each, the training clips followed by that view's M cut-off words.

    One tensor, so that an epoch gathers its batches with one index: written in place into
    a single allocation, the size of the training views (0.9 GB at 64,721 clips), not
    concatenated twice."""
    clean = features.features["training"]
    clips, cutoffs = len(clean), features.cutoff_views.shape[1]
    views = clean.new_empty((1 + len(features.training_views), clips + cutoffs, *clean.shape[1:]))
    views[0, :clips] = clean
    views[1:, :clips] = features.training_views
    views[:, clips:] = features.cutoff_views
    return views


def training_labels(features: CachedFeatures) -> torch.Tensor:
    """``(N_train + M,)`` int64 labels of :func:`training_views`' rows: cut-offs are 0."""
    cutoffs = torch.zeros(features.cutoff_views.shape[1], dtype=torch.int64)
    return torch.cat([features.labels["training"], cutoffs])


def training_data(
    features: CachedFeatures, teacher: TrainedModel | None, device: torch.device
) -> TrainingData:
    """The tensors :func:`kws.training.train` needs, with the teacher's logits if any."""
    return TrainingData(
        views=training_views(features),
        labels=training_labels(features),
        val_features=features.features["validation"],
        val_labels=features.labels["validation"],
        teacher_logits=teacher.view_logits if teacher is not None else None,
        num_clips=len(features.labels["training"]),
    ).to(device)


def model_cache_path(
    cache_dir: str | Path, config: CRNNConfig, recipe: TrainConfig, features: CachedFeatures
) -> Path:
    # A field at the value recipes were trained with before it existed is left out of the
    # key, so that the models cached before it was added are found, not trained again.
    recipe_fields = {
        name: value
        for name, value in recipe.to_dict().items()
        if name not in WRITTEN_BEFORE or value != WRITTEN_BEFORE[name]
    }
    recipe_json = json.dumps(
        {"model": config.to_dict(), "recipe": recipe_fields, "trainer": TRAINER_VERSION},
        sort_keys=True,
    )
    digest = hashlib.sha256(recipe_json.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{digest}-{features.key}.pt"


def load_or_train(
    features: CachedFeatures,
    config: CRNNConfig = BASE,
    recipe: TrainConfig = BASE_RECIPE,
    cache_dir: str | Path = "storage/models",
    device: torch.device | str = "cpu",
    progress: str | None = None,
) -> TrainedModel:
    """The model trained on ``features`` with ``recipe``: from the cache, else trained now.

    No distillation (the recipe's ``alpha`` must be 0): these are the models others
    distill from. Test metrics are computed here once and only reported, never selected on.
    ``progress`` names a bar over the epochs (None: no bar); at real size an epoch takes
    seconds to minutes.
    """
    [trained] = load_or_train_seeds(features, config, [recipe], cache_dir, device, 1, progress)
    return trained


def load_or_train_seeds(
    features: CachedFeatures,
    config: CRNNConfig,
    recipes: Sequence[TrainConfig],
    cache_dir: str | Path,
    device: torch.device | str,
    processes: int,
    progress: str | None = None,
) -> list[TrainedModel]:
    """:func:`load_or_train` for each recipe (the reference's seeds), those not cached
    trained up to ``processes`` at a time (:class:`kws.seed_pool.SeedPool`); one bar over
    all their epochs."""
    for recipe in recipes:
        if recipe.alpha != 0.0:
            raise ValueError(
                f"reference and teacher models train without distillation, got alpha={recipe.alpha}"
            )
    paths = [model_cache_path(cache_dir, config, recipe, features) for recipe in recipes]
    missing = [i for i, path in enumerate(paths) if not path.is_file()]
    trained = {i: _load(path) for i, path in enumerate(paths) if i not in missing}
    if missing:
        data = training_data(features, None, torch.device(device))
        total = sum(recipes[i].epochs for i in missing)
        with (
            tqdm(total=total, desc=progress, unit="epoch", disable=progress is None) as bar,
            SeedPool(data, processes) as pool,
        ):
            results = pool.train(config, [recipes[i] for i in missing], progress_bar_updater(bar))
        for i, result in zip(missing, results, strict=True):
            trained[i] = _evaluated(features, data, config, recipes[i], result)
            _save(trained[i], paths[i])
    return [trained[i] for i in range(len(recipes))]


def _evaluated(
    features: CachedFeatures,
    data: TrainingData,
    config: CRNNConfig,
    recipe: TrainConfig,
    result: TrainResult,
) -> TrainedModel:
    """The trained model's logits on every training view and its FA/FR curves."""
    model = CRNN(config).to(data.views.device)
    model.load_state_dict(result.state_dict)
    model.eval()
    view_logits = torch.stack([predict_logits(model, view).cpu() for view in data.views])
    model = model.cpu()
    curves = {}
    for split in ("validation", "testing"):
        probs = keyword_probs(model, features.features[split], recipe.fp16)
        fa, fr = fa_fr_curve(probs, features.labels[split])
        curves[split] = torch.from_numpy(np.stack([fa, fr]))
    return TrainedModel(
        config=config,
        recipe=recipe,
        state_dict=result.state_dict,
        val_au_fa_fr=result.best_val_au_fa_fr,
        test_au_fa_fr=_area(curves["testing"]),
        best_epoch=result.best_epoch,
        val_history=tuple(report.val_au_fa_fr for report in result.history),
        val_curve=curves["validation"],
        test_curve=curves["testing"],
        view_logits=view_logits,
    )


def _area(curve: torch.Tensor) -> float:
    """au_fa_fr from an FA/FR curve: the trapezoid area under FR(FA), taken positive."""
    fa, fr = curve.numpy()
    return float(-np.trapezoid(fr, x=fa))


def _save(trained: TrainedModel, path: Path) -> None:
    payload = {
        "config": trained.config.to_json(),
        "recipe": json.dumps(trained.recipe.to_dict()),
        "state_dict": trained.state_dict,
        "val_au_fa_fr": trained.val_au_fa_fr,
        "test_au_fa_fr": trained.test_au_fa_fr,
        "best_epoch": trained.best_epoch,
        "val_history": list(trained.val_history),
        "val_curve": trained.val_curve,
        "test_curve": trained.test_curve,
        "view_logits": trained.view_logits,
    }
    save_atomically(payload, path)


def _load(path: Path) -> TrainedModel:
    payload = load_cache(path)
    return TrainedModel(
        config=CRNNConfig.from_json(payload["config"]),
        recipe=TrainConfig.from_dict(json.loads(payload["recipe"])),
        state_dict=payload["state_dict"],
        val_au_fa_fr=payload["val_au_fa_fr"],
        test_au_fa_fr=payload["test_au_fa_fr"],
        best_epoch=payload["best_epoch"],
        val_history=tuple(payload["val_history"]),
        val_curve=payload["val_curve"],
        test_curve=payload["test_curve"],
        view_logits=payload["view_logits"],
    )
