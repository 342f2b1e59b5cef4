"""Which words does the reference take for the keyword? Per word, on the held-out test split.

    python benchmarks/confusions.py [--num-clips N] [--seed S] [--max-fa-rate 0.05 0.01]

Uses the default embedded dataset and the study's caches (``storage/``; built if missing,
as ``run_study.py prepare`` does) and the cached reference (BASE, base recipe). For each
threshold, chosen on the validation split as the lowest that at most that share of its
negative clips reach (:func:`kws.metrics.threshold_for_false_alarms`, the rule the
detection test uses), it prints the share of each word's test clips at or above it: the
keyword's recall, and how often each confuser and ordinary word would be a false alarm.
docs/streaming.md quotes it.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch

from kws.augment import AugmentationConfig
from kws.feature_cache import load_or_build_features
from kws.metrics import threshold_for_false_alarms
from kws.reference import load_or_train
from kws.speech_commands import index_speech_commands
from kws.synth import CONFUSERS, EmbeddedDatasetConfig, ensure_embedded_dataset
from kws.training import keyword_probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-clips", type=int, default=EmbeddedDatasetConfig.num_clips)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-fa-rate", type=float, nargs="+", default=[0.05, 0.01])
    args = parser.parse_args()

    config = EmbeddedDatasetConfig(num_clips=args.num_clips, seed=args.seed)
    index = index_speech_commands(ensure_embedded_dataset("storage/data", config))
    features = load_or_build_features(index, augmentation=AugmentationConfig(seed=args.seed))
    reference = load_or_train(features)
    model = reference.model()
    val_probs = keyword_probs(model, features.features["validation"])
    test_probs = keyword_probs(model, features.features["testing"]).tolist()
    keywords = {clip.word for clip in index.clips if clip.label == 1}
    by_word: dict[str, list[float]] = defaultdict(list)
    for clip, prob in zip(index.split("testing"), test_probs, strict=True):
        by_word[clip.word].append(prob)
    print(f"reference: validation au_fa_fr {reference.val_au_fa_fr:.3e}, "
          f"test {reference.test_au_fa_fr:.3e}")  # fmt: skip
    for rate in args.max_fa_rate:
        threshold = threshold_for_false_alarms(val_probs, features.labels["validation"], rate)
        print(f"\nthreshold {threshold:.3f} (at most {rate:.0%} of validation negatives reach it)")
        print("| word | kind | test clips | at or above the threshold |\n|---|---|---|---|")
        for word in sorted(by_word, key=lambda w: -sum(p >= threshold for p in by_word[w])):
            probs = torch.tensor(by_word[word])
            kind = "keyword" if word in keywords else "confuser" if word in CONFUSERS else "word"
            share = float((probs >= threshold).float().mean())
            print(f"| {word} | {kind} | {len(probs)} | {share:.0%} |")


if __name__ == "__main__":
    main()
