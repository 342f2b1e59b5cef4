from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import kws.seed_pool
from kws.metrics import au_fa_fr
from kws.model import BASE, CRNNConfig
from kws.reference import (
    load_or_train,
    load_or_train_seeds,
    model_cache_path,
    training_labels,
    training_views,
)
from kws.training import BASE_RECIPE, TrainConfig, keyword_probs, predict_logits

TOY = CRNNConfig(
    cnn_out_channels=2, kernel_size=(5, 10), stride=(4, 8), gru_num_layers=1, hidden_size=4
)
RECIPE = TrainConfig(epochs=2, batch_size=32, learning_rate=3e-3, epoch_examples=256)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def trained(tiny_features, cache_dir: Path):
    return load_or_train(tiny_features, TOY, RECIPE, cache_dir)


def test_second_request_loads_the_cache_instead_of_training(
    tiny_features, cache_dir: Path, trained, monkeypatch
) -> None:
    def must_not_train(*args, **kwargs):
        raise AssertionError("trained again although the cache file exists")

    monkeypatch.setattr(kws.seed_pool, "train", must_not_train)
    again = load_or_train(tiny_features, TOY, RECIPE, cache_dir)
    assert model_cache_path(cache_dir, TOY, RECIPE, tiny_features).is_file()
    assert again.val_au_fa_fr == trained.val_au_fa_fr
    assert again.test_au_fa_fr == trained.test_au_fa_fr
    assert torch.equal(again.view_logits, trained.view_logits)
    for name, tensor in trained.state_dict.items():
        assert torch.equal(again.state_dict[name], tensor)


def test_view_logits_are_the_models_logits_on_every_view(tiny_features, trained) -> None:
    views = training_views(tiny_features)
    assert trained.view_logits.shape == (views.shape[0], views.shape[1], 2)
    model = trained.model()
    for view, logits in zip(views, trained.view_logits, strict=True):
        torch.testing.assert_close(predict_logits(model, view), logits)


def test_training_rows_are_the_clips_then_the_cut_off_words_labelled_0(tiny_features) -> None:
    views = training_views(tiny_features)
    clips = len(tiny_features.labels["training"])
    cutoffs = tiny_features.cutoff_views.shape[1]
    assert cutoffs > 0
    assert views.shape[:2] == (2, clips + cutoffs)
    assert torch.equal(views[0, :clips], tiny_features.features["training"])
    assert torch.equal(views[1, :clips], tiny_features.training_views[0])
    assert torch.equal(views[:, clips:], tiny_features.cutoff_views)
    labels = training_labels(tiny_features)
    assert torch.equal(labels[:clips], tiny_features.labels["training"])
    assert labels[clips:].tolist() == [0] * cutoffs


def test_metrics_are_those_of_the_restored_model(tiny_features, trained) -> None:
    model = trained.model()
    for split, value in (("validation", trained.val_au_fa_fr), ("testing", trained.test_au_fa_fr)):
        probs = keyword_probs(model, tiny_features.features[split])
        assert au_fa_fr(probs, tiny_features.labels[split]) == pytest.approx(value, abs=1e-12)
    assert trained.val_curve.shape[0] == 2
    assert len(trained.val_history) == RECIPE.epochs


def test_cache_key_separates_configs_and_recipes(tiny_features, cache_dir: Path) -> None:
    paths = {
        model_cache_path(cache_dir, TOY, RECIPE, tiny_features),
        model_cache_path(cache_dir, CRNNConfig(hidden_size=64), RECIPE, tiny_features),
        model_cache_path(cache_dir, TOY, TrainConfig(epochs=3), tiny_features),
    }
    assert len(paths) == 3


def test_a_reference_cached_before_the_weight_average_existed_is_still_found(
    tiny_features, cache_dir: Path
) -> None:
    # BASE trained with the base recipe was cached under this digest by the code before
    # TrainConfig.ema_decay existed (TRAINER_VERSION 4): adding a field must not retrain it.
    path = model_cache_path(cache_dir, BASE, BASE_RECIPE, tiny_features)
    assert path.name == f"661e2b393cde-{tiny_features.key}.pt"
    averaged = dataclasses.replace(BASE_RECIPE, ema_decay=0.99)
    assert model_cache_path(cache_dir, BASE, averaged, tiny_features) != path


def test_teachers_are_not_distilled(tiny_features, cache_dir: Path) -> None:
    with pytest.raises(ValueError, match="alpha"):
        load_or_train(tiny_features, TOY, TrainConfig(alpha=0.5), cache_dir)


def test_seeds_trained_side_by_side_are_those_trained_alone(
    tiny_features, tmp_path: Path, trained
) -> None:
    other = dataclasses.replace(RECIPE, seed=RECIPE.seed + 1)
    both = load_or_train_seeds(tiny_features, TOY, [RECIPE, other], tmp_path, "cpu", processes=2)
    alone = load_or_train(tiny_features, TOY, other, tmp_path / "alone")
    for got, want in ((both[0], trained), (both[1], alone)):
        assert got.recipe == want.recipe
        assert got.val_au_fa_fr == want.val_au_fa_fr
        assert got.test_au_fa_fr == want.test_au_fa_fr
        assert torch.equal(got.view_logits, want.view_logits)
    assert not torch.equal(both[0].view_logits, both[1].view_logits)  # two seeds, two models
    assert all(model_cache_path(tmp_path, TOY, r, tiny_features).is_file() for r in (RECIPE, other))
