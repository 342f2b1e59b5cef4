"""Epoch time of a distilled ~2k-parameter student: this trainer vs a course-style epoch and
vs the compute floor, measured side by side on the same data, model and batch size.

    python benchmarks/bench_training.py [--data PATH] [--out /tmp/kws-bench-training]
    python benchmarks/bench_training.py --model base --data PATH   # the reference's epoch

- naive: what the course notebooks do every epoch: a Dataset that reads each WAV file and
  augments it per item, a DataLoader with a class-balanced sampler, a mel spectrogram per
  batch, SpecAugment, and a teacher forward per batch for the distillation targets.
- kws: :func:`kws.training.train` for one epoch on the cached features and precomputed
  teacher logits; its training steps and its validation are timed apart.
- floor: a bare loop of forward, loss, backward and Adam step on batches already in memory.

All three draw the same number of examples (the training split's size) in batches of 128.
With ``--model base`` the model is BASE trained as the reference is (the base recipe, no
distillation), against the floor only: the naive epoch is the students' comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from kws.audio import read_clip
from kws.augment import AugmentationConfig, augment
from kws.feature_cache import load_or_build_features
from kws.features import LogMel, SpecAugment
from kws.model import BASE, CRNN, CRNNConfig
from kws.reference import load_or_train, training_data
from kws.speech_commands import Clip, index_speech_commands, load_noise
from kws.synth import EmbeddedDatasetConfig, ensure_embedded_dataset
from kws.training import BASE_RECIPE, TrainConfig, distillation_loss, train

# The best KD-only student of background.md: 1,789 parameters.
STUDENT = CRNNConfig(
    cnn_out_channels=2, kernel_size=(11, 20), stride=(7, 8), gru_num_layers=1, hidden_size=14
)
BATCH = 128


class WavDataset(Dataset):
    """Course style: one WAV read and one augmentation per item, every epoch."""

    def __init__(self, clips: tuple[Clip, ...], noises: list[torch.Tensor]) -> None:
        self.clips, self.noises = clips, noises
        self.generator = torch.Generator().manual_seed(0)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        clip = self.clips[item]
        waveform = read_clip(clip.path).unsqueeze(0)
        return augment(waveform, self.noises, AugmentationConfig(), self.generator)[0], clip.label


def naive_epoch(clips, noises, teacher: CRNN, student: CRNN, optimizer) -> None:
    labels = torch.tensor([clip.label for clip in clips])
    weights = (1.0 / torch.bincount(labels).double())[labels]
    sampler = WeightedRandomSampler(weights, len(clips), generator=torch.Generator().manual_seed(0))
    loader = DataLoader(WavDataset(clips, noises), batch_size=BATCH, sampler=sampler)
    log_mel, spec_augment = LogMel(), SpecAugment().train()
    for waveforms, targets in loader:
        features = log_mel(waveforms)
        with torch.no_grad():
            teacher_logits = teacher(features)
        loss = distillation_loss(student(spec_augment(features)), targets, teacher_logits, 5.0, 0.5)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 5.0)
        optimizer.step()


def floor_epoch(batches: list[tuple[torch.Tensor, torch.Tensor]], student: CRNN, optimizer) -> None:
    for features, targets in batches:
        loss = F.cross_entropy(student(features), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def timed(fn, repeats: int) -> float:
    """Best of ``repeats`` runs, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="Speech Commands folder")
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-bench-training"))
    parser.add_argument("--repeats", type=int, default=7, help="kws/floor epoch pairs")
    parser.add_argument(
        "--model", choices=("student", "base"), default="student", help="what is trained"
    )
    args = parser.parse_args()
    model = STUDENT if args.model == "student" else BASE

    root = args.data or ensure_embedded_dataset(args.out / "data", EmbeddedDatasetConfig(), False)
    index = index_speech_commands(root)
    features = load_or_build_features(index, args.out / "features", AugmentationConfig(), False)
    teacher = load_or_train(features, BASE, TrainConfig(epochs=2), args.out / "models")
    data = training_data(features, teacher, torch.device("cpu"))
    clips = index.split("training")
    examples = len(clips)
    print(f"{examples} training clips, {args.model} {CRNN(model).num_params()} parameters, "
          f"batch {BATCH}, {torch.get_num_threads()} threads")  # fmt: skip

    if args.model == "student":
        recipe = TrainConfig(epochs=1, alpha=0.5, temperature=5.0, epoch_examples=examples)
    else:
        recipe = dataclasses.replace(BASE_RECIPE, epochs=1, epoch_examples=examples)
    assert recipe.batch_size == BATCH, "the floor's batches must be the trainer's"
    noises = load_noise(index.noise_files)
    student = CRNN(model)
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-4, fused=True)  # as kws.training
    naive_seconds = math.nan
    if args.model == "student":
        naive_seconds = timed(
            lambda: naive_epoch(clips, noises, teacher.model(), student, optimizer), 1
        )

    generator = torch.Generator().manual_seed(0)
    batches = [
        (torch.randn(min(BATCH, examples - i), 40, 101, generator=generator),
         torch.randint(2, (min(BATCH, examples - i),), generator=generator))
        for i in range(0, examples, BATCH)
    ]  # fmt: skip
    # kws and floor epochs alternate, so that a burst of other load on the machine hits
    # both sides of a pair; the ratio is the median over pairs.
    reports, floors = [], []
    for _ in range(args.repeats):
        reports.append(train(model, recipe, data).history[0])
        floors.append(timed(lambda: floor_epoch(batches, student, optimizer), 1))
    ratios = sorted(r.train_seconds / f for r, f in zip(reports, floors, strict=True))
    kws_seconds = min(report.seconds for report in reports)
    kws_train_seconds = min(report.train_seconds for report in reports)
    floor_seconds = min(floors)

    validation_seconds = kws_seconds - kws_train_seconds
    if args.model == "student":
        print(f"naive epoch: {naive_seconds:.2f} s (no validation)")
    print(f"kws epoch:   {kws_seconds:.2f} s, of which training steps {kws_train_seconds:.2f} s "
          f"and validation of {len(data.val_labels)} clips {validation_seconds:.2f} s")  # fmt: skip
    print(f"floor epoch: {floor_seconds:.2f} s")
    if args.model == "student":
        print(f"kws epoch is {naive_seconds / kws_seconds:.1f}x faster than naive (target >= 10x)")
    print(f"kws training steps take {statistics.median(ratios):.2f}x the floor, median of "
          f"{len(ratios)} alternating pairs from {ratios[0]:.2f}x to {ratios[-1]:.2f}x "
          f"(target <= 1.2x); the whole epoch {kws_seconds / floor_seconds:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
