"""The highest compression score anywhere in the search space, and what studies reached.

    python benchmarks/max_score.py [--baseline-mean 45.58] [--studies 'GLOB' ...]

A student's score 0.35 (C + S) is known from its architecture alone, so the space's highest
score is found without training. Bytes and MACs both grow with every convolution channel,
GRU layer and hidden unit (more weights, more multiply-adds), so the fewest of each is
taken (one more of any, printed, lowers the top student's score); every kernel, stride,
pooling, bias and fp16 choice is scored (C does not depend on the time stride, checked at
its two ends). ``--baseline-mean``: a search's verified mean score (random search's in
docs/benchmarks.md), to print the score that 3 x it needs. ``--studies``: SQLite files of
finished studies (bench_search.py's ``seedS/studies.db``); per file, the highest score
among all trained students, among those whose first seed met the bar at some epoch, and
among completed ones confirmed feasible. Nothing here trains or reads the test split.
"""

from __future__ import annotations

import argparse
import glob
import itertools
from typing import Any

import optuna
from optuna.trial import TrialState

from kws.compression import architecture_speedup, score
from study.attributes import AU_FA_FR_PER_EPOCH, BAR, FEASIBLE, FINISHED, SCORE, trained
from study.sampler import proposal_compression
from study.search_space import Choice, IntRange, fitted_space, model_from_params

SMALLEST = ("cnn_out_channels", "gru_num_layers", "hidden_size")  # more of any costs bytes and MACs
# Neither size nor MACs depend on these; any value in their ranges.
TRAINING = {"temperature": 1.0, "alpha": 0.0, "learning_rate": 1e-3}


def _values(name: str) -> range:
    declared = fitted_space()[name]
    assert isinstance(declared, IntRange)
    return range(declared.low, declared.high + 1)


def _choices(name: str) -> tuple[bool, ...] | tuple[str, ...]:
    declared = fitted_space()[name]
    assert isinstance(declared, Choice)
    return declared.choices


def highest_scoring() -> tuple[dict[str, Any], int]:
    """The params of the search space's highest-scoring student, and how many students
    were scored."""
    fixed = {name: _values(name).start for name in SMALLEST} | TRAINING
    strides = _values("stride_time")
    best: tuple[float, dict[str, Any]] = (-1.0, {})
    scored = 0
    for kernel_freq, kernel_time, stride_freq, pooling, bias, fp16 in itertools.product(
        _values("kernel_freq"), _values("kernel_time"), _values("stride_freq"),
        _choices("pooling"), _choices("bias"), _choices("fp16"),
    ):  # fmt: skip
        params = fixed | {
            "kernel_freq": kernel_freq, "kernel_time": kernel_time, "stride_freq": stride_freq,
            "pooling": pooling, "bias": bias, "fp16": fp16,
        }  # fmt: skip
        rate = proposal_compression(params | {"stride_time": strides.start}).compression_rate
        at_the_other_end = proposal_compression(params | {"stride_time": strides[-1]})
        assert at_the_other_end.compression_rate == rate, "C depends on the time stride"
        for stride_time in strides:
            student = params | {"stride_time": stride_time}
            scored += 1
            value = score(rate, architecture_speedup(model_from_params(student)))
            if value > best[0]:
                best = (value, student)
    assert proposal_compression(best[1]).score == best[0]
    return best[1], scored


def _describe(params: dict[str, Any]) -> str:
    report = proposal_compression(params)
    return f"score {report.score:.2f} (C {report.compression_rate:.1f}, S {report.speedup:.1f})"


def _studies_frontier(path: str) -> str:
    best_trained = best_one_seed = best_confirmed = 0.0
    storage = f"sqlite:///{path}"
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for trial in study.get_trials(deepcopy=False, states=FINISHED):
            if not trained(trial):
                continue
            attrs = trial.user_attrs
            best_trained = max(best_trained, attrs[SCORE])
            if min(attrs[AU_FA_FR_PER_EPOCH]) <= attrs[BAR]:
                best_one_seed = max(best_one_seed, attrs[SCORE])
            # A pruned trial keeps its first seed's FEASIBLE: only completed ones were confirmed.
            if trial.state == TrialState.COMPLETE and attrs.get(FEASIBLE):
                best_confirmed = max(best_confirmed, attrs[SCORE])
    return (
        f"{path}: highest score trained {best_trained:.2f}, with its first seed under the bar "
        f"{best_one_seed:.2f}, confirmed feasible {best_confirmed:.2f}"
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

    top, scored = highest_scoring()
    architecture = {name: value for name, value in top.items() if name not in TRAINING}
    print(f"highest of {scored} students in the search space: {_describe(top)}: {architecture}")
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
