"""How far the detection test is from failing, over training seeds that stand in for CPUs.

    python benchmarks/detection_margins.py [--out /tmp/kws-margins] [--seeds 10]

Another CPU model sums floats in another order and trains another reference, so the
detection test (tests/kws/test_detection.py) must hold for any model its recipe trains.
This trains the test's reference on ``--seeds`` seeds (0, 1, ...) and, for each, builds the
test's recording and streams it at the test's threshold. Per seed it prints what the test
asserts (each keyword found once within 250 ms, the false alarms) and the margins: when
each keyword's first firing window ends relative to the word's end (the test allows 250 ms
either way), and how far under the threshold, in logits, the highest window holding no
part of a keyword stays. docs/streaming.md quotes it.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from detection_cutoffs import load_test_module  # benchmarks/ is on sys.path when run

from kws.audio import read_resampled
from kws.augment import AugmentationConfig
from kws.feature_cache import load_or_build_features
from kws.metrics import threshold_for_false_alarms
from kws.model import BASE
from kws.reference import load_or_train
from kws.speech_commands import index_speech_commands
from kws.streaming import StreamingDetector, detect
from kws.synth import ensure_embedded_dataset
from kws.training import keyword_probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("/tmp/kws-margins"),
        help="dataset, caches and recordings (default: %(default)s)",
    )
    parser.add_argument("--seeds", type=int, default=10, help="training seeds (default: 10)")
    args = parser.parse_args()  # fmt: skip
    test = load_test_module()
    torch.set_num_threads(1)
    root = ensure_embedded_dataset(args.out / "data", test.DATASET, progress=False)
    index = index_speech_commands(root)
    features = load_or_build_features(index, args.out / "features", AugmentationConfig(), False)
    print(
        "| seed | threshold | left out | found once | false alarms | first firing - word end"
        " (s) | highest keyword-free window (logits under) |"
    )
    print("|---|---|---|---|---|---|---|")  # fmt: skip
    for seed in range(args.seeds):
        recipe = dataclasses.replace(test.RECIPE, seed=seed)
        model = load_or_train(features, BASE, recipe, args.out / "models").model()
        probs = keyword_probs(model, features.features["validation"])
        threshold = threshold_for_false_alarms(
            probs, features.labels["validation"], test.MAX_FA_RATE
        )
        left_out = test.confused_words(index, probs, threshold)
        path = args.out / f"recording-{seed}.wav"
        recording = test.build_recording(index, model, threshold, left_out, path)
        audio = read_resampled(recording.path)
        ends = recording.keyword_ends_s
        detections = detect(model, audio, threshold=threshold)
        found = sum(
            sum(abs(d.time_s - end) <= test.TOLERANCE_S for d in detections) == 1 for end in ends
        )
        false = [d for d in detections if all(abs(d.time_s - e) > test.TOLERANCE_S for e in ends)]
        scorer = StreamingDetector(model, threshold=1.0)
        window_probs = [float(p) for p in scorer.push(audio) + scorer.flush()]
        window_ends = [
            scorer.first_end_s + i * scorer.chunk / 16000 for i in range(len(window_probs))
        ]
        # A keyword's clip spans at most [end - 1 s, end + 1 s) around its word's end.
        free = [
            test.logit(threshold) - test.logit(p)
            for t, p in zip(window_ends, window_probs, strict=True)
            if all(t <= end - 1.0 or t - 1.0 >= end + 1.0 for end in ends)
        ]
        firsts = []
        for end in ends:
            fired = [t for t, p in zip(window_ends, window_probs, strict=True)
                     if end - 1.0 < t <= end + 1.0 and p >= threshold]  # fmt: skip
            firsts.append(f"{fired[0] - end:+.2f}" if fired else "none")
        print(
            f"| {seed} | {threshold:.3f} | {', '.join(sorted(left_out))} | {found} of "
            f"{len(ends)} | {len(false)} | {' '.join(firsts)} | {min(free):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
