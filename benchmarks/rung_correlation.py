"""Does a student's early au_fa_fr predict its best? Read from a finished study, no training.

    python benchmarks/rung_correlation.py --storage sqlite:///PATH --study-name NAME
        [--epoch 2] [--min-epochs 18]

A pruner that stops trials at epoch ``--epoch`` (successive halving's first rung is 2)
bets that the validation au_fa_fr there ranks trials as their best does. Among the trials
that trained at least ``--min-epochs`` epochs (their best is near what they reach), prints
each trial's score, its best au_fa_fr up to ``--epoch`` and overall, and the Spearman rank
correlation of the two (1: the early figure ranks them perfectly; 0: not at all).
"""

from __future__ import annotations

import argparse
import statistics

import optuna


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    for rank, index in enumerate(order):
        ranks[index] = float(rank)
    return ranks


def spearman(first: list[float], second: list[float]) -> float:
    """Rank correlation (no ties expected among au_fa_fr values)."""
    return statistics.correlation(_ranks(first), _ranks(second))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="the study's SQLAlchemy URL")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--epoch", type=int, default=2, help="the early epoch (a pruner's rung)")
    parser.add_argument("--min-epochs", type=int, default=18, help="trials that trained this long")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=args.study_name, storage=args.storage)
    rows = []
    for trial in study.trials:
        history = trial.user_attrs.get("au_fa_fr_per_epoch") or []
        if len(history) >= args.min_epochs:
            rows.append((trial.number, trial.user_attrs["score"], min(history[: args.epoch]),
                         min(history), len(history)))  # fmt: skip
    print(f"bar {study.user_attrs['au_fa_fr_bar']:.3e}; {len(rows)} trials of >= {args.min_epochs}")
    print(f"trial  score  best@{args.epoch}   best      epochs")
    for number, score, early, best, epochs in sorted(rows, key=lambda row: row[2]):
        print(f"{number:5d} {score:6.1f}  {early:.2e}  {best:.2e}  {epochs:3d}")
    early = [row[2] for row in rows]
    best = [row[3] for row in rows]
    print(f"Spearman rank correlation, best@{args.epoch} vs best: {spearman(early, best):.2f}")


if __name__ == "__main__":
    main()
