"""Full learning curves of random students: a table to judge pruners on, offline.

    python benchmarks/learning_curves.py --seed 0 --students 150 [--min-score 5]
        [--out /tmp/kws-bench-search] > curves-seed0.jsonl

A pruner decides from the first epochs of a trial whether the trial could still end among
the best; whether it decided well is known only from trials it did not stop. This script
trains students drawn uniformly from the search space (those whose compression score beats
``--min-score``, the region where a study's best lives once it has found anything) for the
study's full recipe with no pruning and no early stopping, and writes one JSON line per
student: its params, score, the bar, and per training seed the validation au_fa_fr of every
epoch, the deployed (fp16 where chosen) au_fa_fr of the best epoch, and the seconds per
epoch. A student whose first seed comes within 1.2 x the bar is trained on the study's two
confirmation seeds as well. ``simulate_pruners.py`` replays pruners on the table.
The study's preparation (dataset, features, references) is read from ``--out/seedS``,
where ``bench_search.py`` leaves it, and made there when absent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from pathlib import Path
from typing import Any

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from kws.device import configure_threads
from kws.reference import training_data
from kws.training import train
from study.runner import prepare, student_recipe
from study.sampler import proposal_score
from study.search_space import configs_from_params, distributions
from study.settings import StudySettings

CONFIRM_WITHIN = 1.2  # x bar: first seeds this close are also trained on the next two seeds


def _draw(rng: random.Random) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, dist in distributions().items():
        if isinstance(dist, IntDistribution):
            params[name] = rng.randint(dist.low, dist.high)
        elif isinstance(dist, FloatDistribution) and dist.log:
            params[name] = dist.low * (dist.high / dist.low) ** rng.random()
        elif isinstance(dist, FloatDistribution):
            params[name] = rng.uniform(dist.low, dist.high)
        else:
            assert isinstance(dist, CategoricalDistribution)
            params[name] = rng.choice(dist.choices)
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the study's seed (data, teacher)")
    parser.add_argument("--students", type=int, default=150)
    parser.add_argument("--min-score", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-bench-search"))
    args = parser.parse_args()
    configure_threads()  # the cores this process may use (taskset: one per table)
    out = args.out / f"seed{args.seed}"
    settings = StudySettings(
        seed=args.seed,
        max_epochs=40,  # the curves simulate_pruners.py replays, as docs/benchmarks.md shows
        data_dir=str(out / "data"),
        feature_dir=str(out / "features"),
        model_dir=str(out / "models"),
        progress=False,
    )
    prepared = prepare(settings)
    data = training_data(prepared.features, prepared.reference, "cpu")
    recipe = dataclasses.replace(student_recipe(settings), patience=0)
    rng = random.Random(args.seed)
    drawn = 0
    while drawn < args.students:
        params = _draw(rng)
        score = proposal_score(params)
        if score <= args.min_score:
            continue
        drawn += 1
        config, training = configs_from_params(params, recipe)
        runs = []
        for offset in range(3):
            result = train(config, dataclasses.replace(training, seed=args.seed + offset), data)
            runs.append({
                "val_au_fa_fr": [report.val_au_fa_fr for report in result.history],
                "deployed_au_fa_fr": result.best_val_au_fa_fr,
                "seconds": [report.seconds for report in result.history],
            })  # fmt: skip
            if offset == 0 and result.best_val_au_fa_fr > CONFIRM_WITHIN * prepared.bar:
                break
        line = {"seed": args.seed, "params": params, "score": score, "bar": prepared.bar,
                "runs": runs}  # fmt: skip
        print(json.dumps(line), flush=True)
        first = runs[0]["deployed_au_fa_fr"] / prepared.bar
        print(f"{drawn}/{args.students} score {score:.1f} first seed {first:.2f} x bar",
              file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
