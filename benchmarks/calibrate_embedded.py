"""Calibrate the embedded dataset: is the quality bar stable, and is there a real trade-off?

    python benchmarks/calibrate_embedded.py [--num-clips N] [--validation-percentage P] ...

Generates the embedded dataset with the given knobs into a scratch folder, trains the
reference (BASE, base recipe) on 3 seeds, then a few distilled students of known MACs,
and prints validation and test au_fa_fr with each student's pass/fail against 1.1 x the
reference's mean validation au_fa_fr. The numbers in docs/embedded-dataset.md come from it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from kws.augment import AugmentationConfig
from kws.compression import count_macs
from kws.feature_cache import load_or_build_features
from kws.model import BASE, CRNN, CRNNConfig
from kws.reference import load_or_train, training_data
from kws.speech_commands import index_speech_commands
from kws.synth import EmbeddedDatasetConfig, ensure_embedded_dataset
from kws.training import TrainConfig, evaluate_au_fa_fr, train

STUDENTS = {
    # a well-chosen student at 1/5.2 of BASE's MACs: the seed report's with stride 3 in frequency
    "4ch s(3,12) h24": CRNNConfig(
        cnn_out_channels=4, stride=(3, 12), gru_num_layers=1, hidden_size=24
    ),
    # the seed report's hand-tuned student (1/6.4 of BASE's MACs)
    "seed report": CRNNConfig(cnn_out_channels=4, stride=(4, 12), gru_num_layers=1, hidden_size=24),
    # the best KD-only student of background.md (1/10.9)
    "best KD-only": CRNNConfig(
        cnn_out_channels=2, kernel_size=(11, 20), stride=(7, 8), gru_num_layers=1, hidden_size=14
    ),
    # tiny students, below 1/30 of BASE's MACs
    "tiny 1ch h8": CRNNConfig(
        cnn_out_channels=1, kernel_size=(11, 20), stride=(8, 16), gru_num_layers=1, hidden_size=8
    ),
    "tiny 2ch h6": CRNNConfig(
        cnn_out_channels=2, kernel_size=(7, 20), stride=(6, 16), gru_num_layers=1, hidden_size=6
    ),
    "tiny 1ch h4": CRNNConfig(
        cnn_out_channels=1, kernel_size=(5, 10), stride=(4, 10), gru_num_layers=1, hidden_size=4
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = EmbeddedDatasetConfig()
    parser.add_argument("--num-clips", type=int, default=defaults.num_clips)
    parser.add_argument("--num-speakers", type=int, default=defaults.num_speakers)
    parser.add_argument(
        "--validation-percentage", type=float, default=defaults.validation_percentage
    )
    parser.add_argument("--testing-percentage", type=float, default=defaults.testing_percentage)
    parser.add_argument("--keyword-share", type=float, default=defaults.keyword_share)
    parser.add_argument("--confuser-share", type=float, default=defaults.confuser_share)
    parser.add_argument("--snr-low", type=float, default=defaults.snr_db[0])
    parser.add_argument(
        "--cutoff-share",
        type=float,
        default=AugmentationConfig.cutoff_share,
        help="cut-off words per training view, as a share of the training clips",
    )
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--student-lr", type=float, default=3e-3)
    parser.add_argument("--temperature", type=float, default=5.0)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-calibration"))
    args = parser.parse_args()
    torch.set_num_threads(2)

    config = EmbeddedDatasetConfig(
        num_clips=args.num_clips,
        num_speakers=args.num_speakers,
        validation_percentage=args.validation_percentage,
        testing_percentage=args.testing_percentage,
        keyword_share=args.keyword_share,
        confuser_share=args.confuser_share,
        snr_db=(args.snr_low, defaults.snr_db[1]),
    )
    start = time.perf_counter()
    index = index_speech_commands(ensure_embedded_dataset(args.out / "data", config, False))
    augmentation = AugmentationConfig(cutoff_share=args.cutoff_share)
    features = load_or_build_features(index, args.out / "features", augmentation, False)
    sizes = {split: len(labels) for split, labels in features.labels.items()}
    positives = {split: int(labels.sum()) for split, labels in features.labels.items()}
    print(f"dataset {config.key()}: clips {sizes}, keyword clips {positives}, "
          f"ready in {time.perf_counter() - start:.0f} s")  # fmt: skip

    references = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        recipe = TrainConfig(epochs=args.epochs, seed=seed)
        reference = load_or_train(features, BASE, recipe, args.out / "models")
        references.append(reference)
        print(f"reference seed {seed}: val {reference.val_au_fa_fr:.3e}  test "
              f"{reference.test_au_fa_fr:.3e}  best epoch {reference.best_epoch}  "
              f"{time.perf_counter() - start:.0f} s")  # fmt: skip
    vals = [r.val_au_fa_fr for r in references]
    mean = statistics.mean(vals)
    print(f"reference val mean {mean:.3e}, spread {min(vals) / mean - 1:+.0%} .. "
          f"{max(vals) / mean - 1:+.0%}; bar = 1.1 x mean = {1.1 * mean:.3e}")  # fmt: skip

    bar = 1.1 * mean
    data = training_data(features, references[0], torch.device("cpu"))
    base_macs = count_macs(BASE)
    for name, student in STUDENTS.items():
        start = time.perf_counter()
        recipe = TrainConfig(
            epochs=args.epochs,
            learning_rate=args.student_lr,
            temperature=args.temperature,
            alpha=args.alpha,
            fp16=True,
        )
        result = train(student, recipe, data)
        model = CRNN(student)
        model.load_state_dict(result.state_dict)
        test = evaluate_au_fa_fr(
            model, features.features["testing"], features.labels["testing"], True
        )
        verdict = "PASS" if result.best_val_au_fa_fr <= bar else "fail"
        print(f"{name:14s} MACs 1/{base_macs / count_macs(student):5.1f}: val "
              f"{result.best_val_au_fa_fr:.3e} test {test:.3e} {verdict}  "
              f"{time.perf_counter() - start:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
