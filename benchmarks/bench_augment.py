"""SpecAugment's strength for students, measured on several seeds.

    python benchmarks/bench_augment.py [--seed 0] [--seeds 4] [--masks 15,35 8,20 0,0]

The students' recipe masks as the course masks the base model (up to 15 of 40 mel bands
and 35 of 101 frames per clip), a strength chosen for a model of 25,000 weights; the
students within the floors (C >= 15, S >= 15) hold 500 to 1,500. Each student below (one
per kind the search keeps near the bar: mean pooling with one and two GRU layers,
attention with one) trains with the study's recipe (``student_recipe``: its epochs,
patience and weight average) and one fixed distillation setting, fp16, on ``--seeds``
seeds from ``--seed``, two side by side, for every ``--masks`` value (widest frequency
mask, widest time mask). Printed per student and masks: validation and test au_fa_fr of
each seed as a ratio to its bar (the study's validation bar, and export's like-for-like
test bar), their means, and the epochs each seed trained. The reference's recipe is not
changed. The search never sees the test split; this benchmark reads it only to say
whether a validation gain holds there too.
"""

from __future__ import annotations

import argparse
import dataclasses

from bench_ema import on_seeds

from kws.model import CRNNConfig
from kws.reference import training_data
from kws.seed_pool import SeedPool
from study.runner import prepare, student_recipe
from study.settings import StudySettings

DISTILLATION = {"temperature": 2.9, "alpha": 0.12, "learning_rate": 3.6e-3, "fp16": True}
STUDENTS = {
    "mean, 1 GRU (C 30.7, S 34.7)": CRNNConfig(
        cnn_out_channels=1, kernel_size=(4, 16), stride=(8, 6), gru_num_layers=1, hidden_size=10,
        pooling="mean", bias=False,
    ),
    "mean, 2 GRU (C 22.5, S 22.2)": CRNNConfig(
        cnn_out_channels=2, kernel_size=(5, 12), stride=(6, 8), gru_num_layers=2, hidden_size=8,
        pooling="mean", bias=False,
    ),
    "mean, 1 GRU (C 20.5, S 16.3)": CRNNConfig(
        cnn_out_channels=2, kernel_size=(5, 12), stride=(5, 8), gru_num_layers=1, hidden_size=14,
        pooling="mean", bias=False,
    ),
    "attention (C 16.8, S 17.0)": CRNNConfig(
        cnn_out_channels=2, kernel_size=(5, 10), stride=(4, 8), gru_num_layers=1, hidden_size=12,
        bias=False,
    ),
}  # fmt: skip


def _masks(text: str) -> tuple[int, int]:
    freq, time = text.split(",")
    return int(freq), int(time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the study's seed (dataset, teacher)")
    parser.add_argument("--seeds", type=int, default=4, help="training seeds per student")
    parser.add_argument(
        "--masks",
        type=_masks,
        nargs="+",
        default=[(15, 35), (8, 20), (0, 0)],
        help="FREQ,TIME: widest frequency mask (mel bands) and time mask (frames)",
    )
    args = parser.parse_args()
    settings = StudySettings(seed=args.seed, progress=False)
    prepared = prepare(settings)
    data = training_data(prepared.features, prepared.reference, "cpu")
    reference = {"val": prepared.reference_val_au_fa_fr, "test": prepared.reference_test_au_fa_fr}
    recipe = dataclasses.replace(student_recipe(settings), **DISTILLATION)
    print(f"bar {prepared.bar:.3e}; au_fa_fr / bar per seed (test: like-for-like bar)")
    with SeedPool(data, processes=2) as pool:
        for name, config in STUDENTS.items():
            for freq_mask, time_mask in args.masks:
                recipes = [
                    dataclasses.replace(
                        recipe, seed=args.seed + offset, freq_mask=freq_mask, time_mask=time_mask
                    )
                    for offset in range(args.seeds)
                ]
                print(
                    f"{name:30s} masks {freq_mask:2d},{time_mask:2d} "
                    f"{on_seeds(pool, config, recipes, prepared, reference)}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
