"""Do cut-off words in training stop false alarms in a stream? Side by side, one run.

    python benchmarks/detection_cutoffs.py [--out /tmp/kws-detection]

Builds the detection test's dataset, reference and recording (tests/kws/test_detection.py:
held-out keywords, confusers and other words at known times over noise, the threshold
chosen on validation, words the reference confuses on whole clips left out), once with
cut-off words in the augmentation (the default, ``cutoff_share`` 0.15) and once without,
and streams two recordings: the test's (5 keywords, 4 confusers, 4 other words) and a
longer one (8, 4, 12). Prints keywords found within 250 ms and the false alarms. Trains on
one thread, as the test does; about 2 minutes per reference. docs/streaming.md quotes it.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

from kws.audio import read_resampled
from kws.augment import AugmentationConfig
from kws.feature_cache import load_or_build_features
from kws.metrics import threshold_for_false_alarms
from kws.reference import load_or_train
from kws.speech_commands import index_speech_commands
from kws.streaming import detect
from kws.synth import ensure_embedded_dataset
from kws.training import keyword_probs

TEST_FILE = Path(__file__).resolve().parents[1] / "tests" / "kws" / "test_detection.py"
RECORDINGS = {"test's (5, 4, 4)": (5, 4, 4), "longer (8, 4, 12)": (8, 4, 12)}


def load_test_module():
    """The detection test's module, for its dataset, recipe and recording builder."""
    spec = importlib.util.spec_from_file_location("test_detection", TEST_FILE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-detection"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    test = load_test_module()
    index = index_speech_commands(ensure_embedded_dataset(args.out / "data", test.DATASET, False))
    print("| cut-off words | recording | threshold | left out | keywords found | false alarms |")
    print("|---|---|---|---|---|---|")
    for share in (AugmentationConfig.cutoff_share, 0.0):
        augmentation = AugmentationConfig(cutoff_share=share)
        features = load_or_build_features(index, args.out / "features", augmentation, False)
        model = load_or_train(features, test.BASE, test.RECIPE, args.out / "models").model()
        probs = keyword_probs(model, features.features["validation"])
        labels = features.labels["validation"]
        threshold = threshold_for_false_alarms(probs, labels, test.MAX_FA_RATE)
        left_out = test.confused_words(index, probs, threshold)
        for name, counts in RECORDINGS.items():
            test.KEYWORDS, test.CONFUSER_CLIPS, test.OTHER_CLIPS = counts
            recording = test.build_recording(index, args.out / "recording.wav", left_out)
            detections = detect(model, read_resampled(recording.path), threshold=threshold)
            ends = recording.keyword_ends_s
            found = sum(
                any(abs(d.time_s - end) <= test.TOLERANCE_S for d in detections) for end in ends
            )
            false = [
                f"{d.time_s:.1f} s ({d.probability:.3f})"
                for d in detections
                if all(abs(d.time_s - end) > test.TOLERANCE_S for end in ends)
            ]
            print(f"| {share:.0%} | {name} | {threshold:.3f} | {', '.join(sorted(left_out))} "
                  f"| {found} of {len(ends)} | {', '.join(false) or 'none'} |")  # fmt: skip


if __name__ == "__main__":
    main()
