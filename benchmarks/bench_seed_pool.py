"""Seeds trained side by side (kws.seed_pool) against one after another, in one run.

    python benchmarks/bench_seed_pool.py [--seed 0] [--out /tmp/kws-bench-seed-pool]
        [--pairs 3]

On the default embedded dataset (made in ``--out`` on first use; a bench_search seed folder
works), with the teacher of ``--seed``: two students of the goal region, distilled, for 20
epochs without early stopping (the same work on both sides), trained on the seeds a
study's would-be best trains on after its first (2 confirmation seeds, then 3 fresh ones;
export's retraining is 3 more). Each pair times those seeds one after another in this
process, then through a :class:`~kws.seed_pool.SeedPool` with one process per usable core
(started before the timing: a study starts it once), and checks that both gave the same
au_fa_fr. Prints each pair and the median ratio.

Then what one thread costs a single training against all of them (the rule that makes a
seed's weights the same in every process, :func:`kws.training.train`): 20 epochs of
each student and of BASE (the reference's recipe), alternating, the median of ``--pairs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from kws.device import cores_per_worker
from kws.model import BASE, CRNNConfig
from kws.reference import training_data
from kws.seed_pool import SeedPool
from kws.training import BASE_RECIPE, _train, train
from study.runner import prepare, student_recipe
from study.settings import StudySettings

# Two students of the goal region (C >= 15, S >= 15) from the seed-2 and seed-4 studies.
STUDENTS = {
    "12ch k(5,5) s(6,15) 1x6 mean": CRNNConfig(
        cnn_out_channels=12, kernel_size=(5, 5), stride=(6, 15), gru_num_layers=1,
        hidden_size=6, pooling="mean",
    ),
    "4ch k(5,20) s(4,12) 1x10": CRNNConfig(
        cnn_out_channels=4, kernel_size=(5, 20), stride=(4, 12), gru_num_layers=1,
        hidden_size=10,
    ),
}  # fmt: skip
SEED_GROUPS = (2, 3)  # confirmation, fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="dataset and teacher seed")
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-bench-seed-pool"))
    parser.add_argument("--pairs", type=int, default=3, help="alternating timings per student")
    args = parser.parse_args()
    settings = StudySettings(
        seed=args.seed,
        data_dir=str(args.out / "data"),
        feature_dir=str(args.out / "features"),
        model_dir=str(args.out / "models"),
        progress=False,
    )
    prepared = prepare(settings)
    data = training_data(prepared.features, prepared.reference, "cpu")
    recipe = dataclasses.replace(
        student_recipe(settings), epochs=20, patience=0, alpha=0.5, temperature=4.0
    )
    processes = cores_per_worker()
    print(f"{processes} processes; seeds per group {SEED_GROUPS}; recipe {recipe.epochs} epochs")
    ratios = []
    with SeedPool(data, processes) as pool:
        pool.train(next(iter(STUDENTS.values())), [recipe, recipe])  # start the workers
        for name, student in STUDENTS.items():
            for _ in range(args.pairs):
                one_by_one = side_by_side = 0.0
                for count in SEED_GROUPS:
                    recipes = [dataclasses.replace(recipe, seed=s) for s in range(1, count + 1)]
                    start = time.perf_counter()
                    here = [train(student, r, data).best_val_au_fa_fr for r in recipes]
                    one_by_one += time.perf_counter() - start
                    start = time.perf_counter()
                    pooled = [r.best_val_au_fa_fr for r in pool.train(student, recipes)]
                    side_by_side += time.perf_counter() - start
                    assert pooled == here, (name, pooled, here)
                ratios.append(one_by_one / side_by_side)
                print(
                    f"{name}: one by one {one_by_one:.1f} s, side by side {side_by_side:.1f} s: "
                    f"{ratios[-1]:.2f}x",
                    flush=True,
                )
    print(f"median {statistics.median(ratios):.2f}x faster side by side (same au_fa_fr)")
    for name, model, model_recipe in [
        *((name, student, recipe) for name, student in STUDENTS.items()),
        ("BASE", BASE, BASE_RECIPE),
    ]:
        slower = []
        for _ in range(args.pairs):
            seconds = {}
            for threads in (1, processes):
                # The trainer's body on this many threads: train() itself always takes one.
                torch.set_num_threads(threads)
                start = time.perf_counter()
                _train(model, model_recipe, data, None)
                seconds[threads] = time.perf_counter() - start
            slower.append(seconds[1] / seconds[processes])
        print(
            f"{name}: 20 epochs on 1 thread take {statistics.median(slower):.2f}x "
            f"the time on {processes}",
            flush=True,
        )


if __name__ == "__main__":
    main()
