"""kws-study command line: thin wrapper over ``kws`` (and, later, ``study``).

    python run_study.py prepare [--data synthetic|download|PATH] [--keyword sheila] ...

``prepare`` makes the dataset (the embedded synthetic one by default), prints clips per
class and split, and builds the log-mel feature cache a study trains from.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from kws.augment import AugmentationConfig
from kws.data import SYNTHETIC, open_dataset
from kws.feature_cache import load_or_build_features
from kws.speech_commands import KEYWORD, SPLIT_METHODS, DatasetError
from kws.synth import EmbeddedDatasetConfig


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        default=SYNTHETIC,
        metavar="synthetic|download|PATH",
        help="clips to use: 'synthetic' = the embedded dataset spoken by espeak-ng, made "
        "locally on first use (default, no network); 'download' = the official Speech "
        "Commands v0.01 archive (1.4 GB, checksum-verified, resumable); or PATH = a "
        "folder in the Speech Commands layout (v0.01 or v0.02)",
    )
    parser.add_argument(
        "--keyword",
        default=KEYWORD,
        help="word folder whose clips are positives (default: %(default)s)",
    )
    parser.add_argument(
        "--split",
        default="auto",
        choices=SPLIT_METHODS,
        help="train/validation/test split: 'auto' = the dataset's validation_list.txt and "
        "testing_list.txt when present, else the dataset's hash-of-speaker rule; 'random' "
        "splits by clip and leaks speakers between splits (default: %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        default="storage/data",
        help="where generated and downloaded datasets are kept (default: %(default)s)",
    )
    parser.add_argument(
        "--feature-dir",
        default="storage/features",
        help="where the log-mel feature cache is kept (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the embedded dataset and of the training augmentation (default: %(default)s)",
    )
    parser.add_argument(
        "--num-clips",
        type=int,
        default=EmbeddedDatasetConfig.num_clips,
        help="clips in the embedded dataset (default: %(default)s; ignored for other --data)",
    )
    parser.add_argument(
        "--views",
        type=int,
        default=AugmentationConfig.num_views,
        help="augmented copies of the training split in the feature cache (default: %(default)s)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _prepare(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    embedded = EmbeddedDatasetConfig(num_clips=args.num_clips, seed=args.seed)
    index = open_dataset(
        args.data, args.data_dir, args.keyword, args.split, embedded, not args.no_progress
    )
    print(index.summary())
    augmentation = AugmentationConfig(num_views=args.views, seed=args.seed)
    features = load_or_build_features(index, args.feature_dir, augmentation, not args.no_progress)
    print(
        f"feature cache {args.feature_dir}/{features.key}.pt: "
        f"{features.num_bytes() / 2**20:.1f} MiB, {features.training_views.shape[0]} augmented "
        f"training views; ready in {time.perf_counter() - start:.1f} s"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_study.py",
        description="Search the smallest, fastest keyword-spotting CRNN that meets a quality bar.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    prepare = commands.add_parser(
        "prepare",
        help="make the dataset and its feature cache, and print clips per class and split",
        description="Make the dataset (embedded by default) and build its log-mel feature cache.",
    )
    _add_data_arguments(prepare)
    prepare.set_defaults(run=_prepare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (DatasetError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
