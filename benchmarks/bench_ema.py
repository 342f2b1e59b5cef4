"""Students kept as the moving average of their weights against as trained, on several seeds.

    python benchmarks/bench_ema.py --root /tmp/kws-bench11/seed0 --seed 0 \\
        --trials 62 60 83 90 [--decays 0 0.99 0.997] [--seeds 4]

``--root`` is one seed's folder of ``benchmarks/bench_search.py`` (its ``studies.db``,
``data``, ``features`` and ``models``). Each named trial of its default study (a student at
the bar's edge: one of its confirmed trials or one stopped late) is retrained with the
study's recipe on ``--seeds`` seeds from ``--seed`` for every ``--decays`` value (0: the
weights as trained, the recipe before ``--ema-decay``), two seeds side by side. Printed per
student and decay: validation and test au_fa_fr of each seed as a ratio to its bar (the
study's validation bar, and the like-for-like test bar of export's check), their means,
and the epochs each seed trained. The search never sees the test split; this benchmark
reads it only to say whether a validation gain holds there too.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import optuna

from kws.model import CRNNConfig
from kws.reference import training_data
from kws.seed_pool import SeedPool
from kws.training import TrainConfig
from study.export import held_out_check, recorded_reference
from study.runner import Prepared, prepare, student_recipe
from study.search_space import configs_from_params
from study.settings import StudySettings


def _ratios(values: list[float]) -> str:
    return f"{statistics.fmean(values):.2f} [{' '.join(f'{v:.2f}' for v in values)}]"


def on_seeds(
    pool: SeedPool,
    config: CRNNConfig,
    recipes: list[TrainConfig],
    prepared: Prepared,
    reference: dict[str, float],
) -> str:
    """``config`` trained on each recipe: validation and test au_fa_fr per seed as ratios to
    the validation bar and export's like-for-like test bar, their means, and epochs."""
    results = pool.train(config, recipes)
    val_au_fa_fr = [result.best_val_au_fa_fr for result in results]
    check = held_out_check(
        config,
        recipes[0],
        [result.state_dict for result in results],
        val_au_fa_fr,
        prepared,
        reference,
        confirmed=True,
    )
    val = [value / prepared.bar for value in val_au_fa_fr]
    test = [value / check["test_bar"] for value in check["test_au_fa_fr"]]
    epochs = [len(result.history) for result in results]
    return f"val {_ratios(val)} test {_ratios(test)} epochs {epochs}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="a bench_search.py seed folder")
    parser.add_argument("--seed", type=int, required=True, help="the study's seed")
    parser.add_argument("--trials", type=int, nargs="+", required=True, help="trial numbers")
    parser.add_argument("--decays", type=float, nargs="+", default=[0.0, 0.99, 0.997])
    parser.add_argument("--seeds", type=int, default=4, help="training seeds per student")
    parser.add_argument("--study-name", default="default")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    settings = StudySettings(
        seed=args.seed,
        progress=False,
        data_dir=f"{args.root}/data",
        feature_dir=f"{args.root}/features",
        model_dir=f"{args.root}/models",
    )
    prepared = prepare(settings)
    data = training_data(prepared.features, prepared.reference, "cpu")
    study = optuna.load_study(
        study_name=args.study_name, storage=f"sqlite:///{args.root}/studies.db"
    )
    reference = recorded_reference(study, prepared)
    print(f"bar {prepared.bar:.3e}; au_fa_fr / bar per seed (test: like-for-like bar)")
    with SeedPool(data, processes=2) as pool:
        for number in args.trials:
            config, recipe = configs_from_params(
                study.trials[number].params, student_recipe(settings)
            )
            for decay in args.decays:
                recipes = [
                    dataclasses.replace(recipe, seed=args.seed + offset, ema_decay=decay)
                    for offset in range(args.seeds)
                ]
                print(
                    f"trial {number:3d} decay {decay:<6g} "
                    f"{on_seeds(pool, config, recipes, prepared, reference)}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
