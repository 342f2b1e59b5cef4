"""The highest compression score anywhere in the search space, and what studies reached.

    python benchmarks/max_score.py [--baseline-mean 45.58] [--studies 'GLOB' ...]

A student's score 0.35 (C + S) is known from its architecture alone, so the space's highest
score is found without training: MACs and state-dict bytes both grow with the number of
convolution channels, GRU layers and hidden units, so the smallest of each is taken (and
checked: one more of any lowers the top student's score, printed), and every kernel,
stride, pooling, bias and fp16 choice is tried. ``--baseline-mean``: a search's verified
mean score (random search's in docs/benchmarks.md), to print the score that 3 x it needs.
``--studies``: SQLite files of finished studies (bench_search.py's ``seedS/studies.db``);
per file, the highest score among trained students whose first seed met the bar at some
epoch, and among confirmed feasible ones. Nothing here trains or reads the test split.
"""

from __future__ import annotations

import argparse
import glob
import itertools
from typing import Any

import optuna

from kws.compression import architecture_speedup
from study.attributes import AU_FA_FR_PER_EPOCH, BAR, FEASIBLE, FINISHED, SCORE, trained
from study.sampler import proposal_compression
from study.search_space import IntRange, fitted_space, model_from_params

SMALLEST = ("cnn_out_channels", "gru_num_layers", "hidden_size")  # more of any costs bytes and MACs
FASTEST_KEPT = 200  # architectures by speed-up whose size is then measured (a build each)


def _values(name: str) -> range:
    declared = fitted_space()[name]
    assert isinstance(declared, IntRange)
    return range(declared.low, declared.high + 1)


def highest_scoring() -> dict[str, Any]:
    """The params of the search space's highest-scoring student (training settings at
    their lowest: they change neither size nor MACs)."""
    space = fitted_space()
    fixed = {name: _values(name).start for name in SMALLEST}
    fixed |= {"temperature": 1.0, "alpha": 0.0, "learning_rate": 1e-3}
    geometry = ("kernel_freq", "kernel_time", "stride_freq", "stride_time")
    draws = []
    for values in itertools.product(
        *(_values(name) for name in geometry),
        space["pooling"].choices,  # type: ignore[union-attr]
    ):
        params = fixed | dict(zip(geometry, values[:-1], strict=True)) | {"pooling": values[-1]}
        draws.append(params | {"bias": False, "fp16": True})
    draws.sort(key=lambda p: architecture_speedup(model_from_params(p)), reverse=True)
    candidates = [
        params | {"bias": bias, "fp16": fp16}
        for params in draws[:FASTEST_KEPT]
        for bias, fp16 in itertools.product((True, False), (True, False))
    ]
    return max(candidates, key=lambda p: proposal_compression(p).score)


def _describe(params: dict[str, Any]) -> str:
    report = proposal_compression(params)
    return f"score {report.score:.2f} (C {report.compression_rate:.1f}, S {report.speedup:.1f})"


def _studies_frontier(path: str) -> str:
    best_one_seed = best_confirmed = 0.0
    storage = f"sqlite:///{path}"
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for trial in study.get_trials(deepcopy=False, states=FINISHED):
            if not trained(trial):
                continue
            attrs = trial.user_attrs
            if min(attrs[AU_FA_FR_PER_EPOCH]) <= attrs[BAR]:
                best_one_seed = max(best_one_seed, attrs[SCORE])
            if attrs.get(FEASIBLE):
                best_confirmed = max(best_confirmed, attrs[SCORE])
    return (
        f"{path}: highest score trained with its first seed under the bar {best_one_seed:.2f}, "
        f"confirmed feasible {best_confirmed:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline-mean", type=float, help="a search's verified mean score, to compare 3 x it"
    )
    parser.add_argument(
        "--studies", nargs="*", default=[], help="glob patterns of finished studies' SQLite files"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    top = highest_scoring()
    training = ("temperature", "alpha", "learning_rate")
    architecture = {name: value for name, value in top.items() if name not in training}
    print(f"highest in the search space: {_describe(top)}: {architecture}")
    for name in SMALLEST:
        more = top | {name: top[name] + 1}
        print(f"  with {name} {more[name]}: {_describe(more)}")
    if args.baseline_mean is not None:
        needed = 3 * args.baseline_mean
        best = proposal_compression(top).score
        print(
            f"3 x the baseline's mean {args.baseline_mean:g} = {needed:.2f}: "
            f"{'above' if needed > best else 'within'} the space's highest score"
        )
    for pattern in args.studies:
        for path in sorted(glob.glob(pattern)):
            print(_studies_frontier(path))


if __name__ == "__main__":
    main()
