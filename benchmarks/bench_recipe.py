"""How students should be trained: epochs, learning-rate schedule and batch size, measured.

    python benchmarks/bench_recipe.py [--seed 0] [--seeds 3]

Small students keep their last epoch when trained with the course's 20-epoch recipe: they
are still improving when it stops. Each recipe below trains two small students of the
default study (bias-free, one with attention and one with mean pooling; see
bench_ceiling.py) with distillation from the study's teacher on ``--seeds`` seeds, without
early stopping. Printed per student and recipe: the validation au_fa_fr of the kept epoch
(mean and worst over seeds), the median kept epoch, and the seconds per training run (run
alone on the machine: the figures are compared with each other). The reference's recipe is
not changed: the bar stays 1.1 x BASE trained the course's way. Nothing reads the test split.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from kws.model import CRNNConfig
from kws.reference import training_data
from kws.training import train
from study.runner import prepare, student_recipe
from study.settings import StudySettings

DISTILLATION = {"temperature": 2.9, "alpha": 0.12, "learning_rate": 3.6e-3}
STUDENTS = {
    "attention": CRNNConfig(
        cnn_out_channels=1, kernel_size=(7, 12), stride=(6, 6), gru_num_layers=1, hidden_size=16,
        bias=False,
    ),
    "mean": CRNNConfig(
        cnn_out_channels=1, kernel_size=(4, 16), stride=(8, 6), gru_num_layers=1, hidden_size=10,
        pooling="mean", bias=False,
    ),
}  # fmt: skip
RECIPES = {
    "20 epochs, constant": {"epochs": 20},
    "40 epochs, constant": {"epochs": 40},
    "20 epochs, cosine": {"epochs": 20, "lr_schedule": "cosine"},
    "40 epochs, cosine": {"epochs": 40, "lr_schedule": "cosine"},
    "40 epochs, cosine, batch 256, 2x lr": {
        "epochs": 40, "lr_schedule": "cosine", "batch_size": 256, "learning_rate": 7.2e-3
    },
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the study's seed (dataset, teacher)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per recipe")
    args = parser.parse_args()
    settings = StudySettings(seed=args.seed, progress=False)
    prepared = prepare(settings)
    data = training_data(prepared.features, prepared.reference, "cpu")
    print(f"bar {prepared.bar:.3e}")
    print(f"{'student':10s} {'recipe':38s} {'val mean':>9s} {'worst':>9s} epoch  s/run")
    for name, config in STUDENTS.items():
        for label, changes in RECIPES.items():
            recipe = dataclasses.replace(
                student_recipe(settings), patience=0, **{**DISTILLATION, **changes}
            )
            values, epochs, seconds = [], [], []
            for offset in range(args.seeds):
                start = time.perf_counter()
                result = train(config, dataclasses.replace(recipe, seed=args.seed + offset), data)
                seconds.append(time.perf_counter() - start)
                values.append(result.best_val_au_fa_fr)
                epochs.append(result.best_epoch)
            print(
                f"{name:10s} {label:38s} {statistics.fmean(values):.3e} {max(values):.3e} "
                f"{statistics.median(epochs):5.0f} {statistics.fmean(seconds):6.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
