"""The size ceiling: what attention and biases cost small students, in bytes and in quality.

    python benchmarks/bench_ceiling.py [--seed 0] [--seeds 3] [--epochs 40]

``torch.save`` writes about 250 bytes per tensor whatever it holds, so a student of a few
hundred weights pays more for its tensors' count than for their values. For two small
students of the default study (the exported one of docs/benchmarks.md and a smaller one),
each of the four choices of pooling (attention, mean) and biases (with, without) is trained
with distillation from the study's teacher on ``--seeds`` seeds for ``--epochs`` epochs
(no early stopping). Printed per variant: state-dict bytes and C in fp16, S, and the
validation au_fa_fr (mean over seeds) of the best epoch within the first 20 epochs and
within all of them, with the median epoch it came at. Nothing here reads the test split.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

from kws.compression import measure, to_fp16
from kws.model import CRNN, POOLINGS, CRNNConfig
from kws.reference import training_data
from kws.training import TrainConfig, train
from study.runner import prepare, student_recipe
from study.settings import StudySettings

STUDENTS = {
    # The 100-trial study's export (docs/benchmarks.md): 1,560 parameters with attention.
    "exported": (
        CRNNConfig(
            cnn_out_channels=1, kernel_size=(7, 12), stride=(6, 6), gru_num_layers=1, hidden_size=16
        ),
        {"temperature": 2.9, "alpha": 0.12, "learning_rate": 3.6e-3},
    ),
    # The same study's one-seed winner: 718 parameters with attention.
    "small": (
        CRNNConfig(
            cnn_out_channels=1, kernel_size=(4, 16), stride=(8, 6), gru_num_layers=1, hidden_size=10
        ),
        {"temperature": 2.9, "alpha": 0.12, "learning_rate": 3.6e-3},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="the study's seed (dataset, teacher)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per variant")
    parser.add_argument("--epochs", type=int, default=40, help="epochs per training run")
    args = parser.parse_args()
    settings = StudySettings(seed=args.seed, progress=False)
    prepared = prepare(settings)
    data = training_data(prepared.features, prepared.reference, "cpu")
    print(f"bar {prepared.bar:.3e} (1.1 x the reference's validation mean)")
    print("student   pooling   bias  bytes(fp16)   C      S    val@20     val@all  epoch")
    for name, (architecture, distillation) in STUDENTS.items():
        for pooling in POOLINGS:
            for bias in (True, False):
                config = dataclasses.replace(architecture, pooling=pooling, bias=bias)
                report = measure(to_fp16(CRNN(config)))
                recipe: TrainConfig = dataclasses.replace(
                    student_recipe(settings), epochs=args.epochs, patience=0, **distillation
                )
                first_20, overall, epochs = [], [], []
                for offset in range(args.seeds):
                    seeded = dataclasses.replace(recipe, seed=args.seed + offset)
                    history = [r.val_au_fa_fr for r in train(config, seeded, data).history]
                    first_20.append(min(history[:20]))
                    overall.append(min(history))
                    epochs.append(history.index(min(history)) + 1)
                print(
                    f"{name:9s} {pooling:9s} {bias!s:5s} {report.state_dict_bytes:8d}  "
                    f"{report.compression_rate:6.1f} {report.speedup:6.1f} "
                    f"{statistics.fmean(first_20):.3e}  {statistics.fmean(overall):.3e}  "
                    f"{statistics.median(epochs):4.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
