"""How close did a finished study come to the goal region? Read from the study, no training.

    python benchmarks/goal_region.py --storage sqlite:///PATH --study-name NAME
        [--min-compression 15] [--min-speedup 15]

Among the trained trials whose student has C >= ``--min-compression`` and S >=
``--min-speedup`` (the goal of the search issue), prints how many there are and how many
trained to the end, and for each group its best au_fa_fr relative to the study's bar
(1.00: exactly on the bar): the recorded au_fa_fr (a mean when confirmed) for those that
completed, the best epoch's for those stopped at a rung.
"""

from __future__ import annotations

import argparse

import optuna
from optuna.trial import TrialState

from study.attributes import AU_FA_FR, BAR, counts_toward_budget


def goal_trials(
    study: optuna.Study, min_compression: float, min_speedup: float
) -> list[optuna.trial.FrozenTrial]:
    """The trained trials whose students have C >= ``min_compression`` and S >= ``min_speedup``."""
    return [
        t
        for t in study.trials
        if counts_toward_budget(t)
        and t.user_attrs["compression_rate"] >= min_compression
        and t.user_attrs["speedup"] >= min_speedup
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="the study's SQLAlchemy URL")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--min-compression", type=float, default=15.0, help="C of the goal")
    parser.add_argument("--min-speedup", type=float, default=15.0, help="S of the goal")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study_name, storage=args.storage)
    bar = study.user_attrs[BAR]
    trained = [t for t in study.trials if counts_toward_budget(t)]
    goal = goal_trials(study, args.min_compression, args.min_speedup)
    complete = sorted(t.user_attrs[AU_FA_FR] / bar for t in goal if t.state == TrialState.COMPLETE)
    pruned = sorted(
        min(t.user_attrs["au_fa_fr_per_epoch"]) / bar for t in goal if t.state == TrialState.PRUNED
    )
    print(f"{len(trained)} trained, {len(goal)} in the goal region, {len(complete)} complete")
    print("au_fa_fr / bar, complete (best first):", " ".join(f"{r:.2f}" for r in complete[:5]))
    print("au_fa_fr / bar, pruned (best epoch):  ", " ".join(f"{r:.2f}" for r in pruned[:5]))


if __name__ == "__main__":
    main()
