"""Do cut-off words in training stop false alarms in a stream? Side by side, one run.

    python benchmarks/detection_cutoffs.py [--out /tmp/kws-detection] [--seeds 3]

Trains the detection test's reference (tests/kws/test_detection.py: its dataset, recipe
and threshold rule, on one thread) with cut-off words in the augmentation (the default,
``cutoff_share`` 0.15) and without, on ``--seeds`` training seeds each. For each model,
every held-out (test-split) clip is scored two ways at the threshold chosen on validation:

- *clip*: the clip on its own, as au_fa_fr scores it;
- *stream*: the clip between 1 s of background noise before and after, streamed in 100 ms
  chunks; it counts as detected when any window's probability reaches the threshold.
  Windows that cut the word at either edge are among them, and only a stream has those.

It prints the share of clips detected per kind (keyword, confusers, other words), the mean
over the seeds and each seed's; for the negatives, stream minus clip is what streaming
adds. Then, with the seed-0 models (the test's), it streams the test's recording and a
longer one (8 keywords, 4 confusers, 12 other words) and prints the keywords found within
250 ms and the false alarms. docs/streaming.md quotes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import statistics
import sys
from pathlib import Path

import torch

from kws.audio import SAMPLE_RATE, read_clip, read_resampled
from kws.augment import AugmentationConfig
from kws.feature_cache import load_or_build_features
from kws.metrics import threshold_for_false_alarms
from kws.reference import load_or_train
from kws.speech_commands import index_speech_commands, load_noise
from kws.streaming import StreamingDetector, detect
from kws.synth import CONFUSERS, ensure_embedded_dataset
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


def kind(clip) -> str:
    return "keyword" if clip.label == 1 else "confuser" if clip.word in CONFUSERS else "word"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-detection"))
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per variant")
    args = parser.parse_args()
    torch.set_num_threads(1)
    test = load_test_module()
    index = index_speech_commands(ensure_embedded_dataset(args.out / "data", test.DATASET, False))
    noise = torch.cat([n / n.pow(2).mean().sqrt() for n in load_noise(index.noise_files)])
    clips = index.split("testing")
    rows, recordings = [], []
    for share in (AugmentationConfig.cutoff_share, 0.0):
        augmentation = AugmentationConfig(cutoff_share=share)
        features = load_or_build_features(index, args.out / "features", augmentation, False)
        rates: dict[str, list[tuple[float, float]]] = {}  # kind -> (clip, stream) per seed
        for seed in range(args.seeds):
            recipe = dataclasses.replace(test.RECIPE, seed=seed)
            model = load_or_train(features, test.BASE, recipe, args.out / "models").model()
            probs = keyword_probs(model, features.features["validation"])
            labels = features.labels["validation"]
            threshold = threshold_for_false_alarms(probs, labels, test.MAX_FA_RATE)
            clip_probs = keyword_probs(model, features.features["testing"]).tolist()
            detected: dict[str, list[tuple[bool, bool]]] = {}
            detector = StreamingDetector(model)
            for n, (clip, clip_prob) in enumerate(zip(clips, clip_probs, strict=True)):
                background = test.BACKGROUND_RMS * noise.roll(-n * 4_000)[: 3 * SAMPLE_RATE]
                background[SAMPLE_RATE : 2 * SAMPLE_RATE] += read_clip(clip.path)
                detector.reset()
                stream_prob = max(detector.push(background))
                detected.setdefault(kind(clip), []).append(
                    (clip_prob >= threshold, stream_prob >= threshold)
                )
            for group, hits in detected.items():
                clip_share = sum(c for c, _ in hits) / len(hits)
                stream_share = sum(s for _, s in hits) / len(hits)
                rates.setdefault(group, []).append((clip_share, stream_share))
            if seed == 0:
                left_out = test.confused_words(index, probs, threshold)
                recordings += recording_rows(
                    test, index, model, threshold, left_out, share, args.out / "recording.wav"
                )
        for group, per_seed in sorted(rates.items()):
            clip_mean = statistics.fmean(c for c, _ in per_seed)
            stream_mean = statistics.fmean(s for _, s in per_seed)
            streams = ", ".join(f"{s:.0%}" for _, s in per_seed)
            rows.append(
                f"| {share:.0%} | {group} | {len(detected[group])} | {clip_mean:.1%} "
                f"| {stream_mean:.1%} ({streams}) |"
            )
    print("| cut-off words | held-out clips | count | as a clip | in a stream (per seed) |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("| cut-off words | recording | threshold | left out | keywords found | false alarms |")
    print("|---|---|---|---|---|---|")
    print("\n".join(recordings))


def recording_rows(
    test, index, model, threshold: float, left_out: set[str], share: float, path: Path
) -> list[str]:
    """One table row per recording: keywords found within 250 ms, and the false alarms."""
    rows = []
    for name, counts in RECORDINGS.items():
        test.KEYWORDS, test.CONFUSER_CLIPS, test.OTHER_CLIPS = counts
        recording = test.build_recording(index, model, threshold, left_out, path)
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
        rows.append(
            f"| {share:.0%} | {name} | {threshold:.3f} | {', '.join(sorted(left_out))} "
            f"| {found} of {len(ends)} | {', '.join(false) or 'none'} |"
        )
    return rows


if __name__ == "__main__":
    main()
