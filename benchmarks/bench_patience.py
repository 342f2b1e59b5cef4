"""Does early stopping end goal-region students too early? Retrained from a finished study.

    python benchmarks/bench_patience.py --storage sqlite:///PATH --study-name NAME
        [--seed 0] [--students 6] [--seeds 3] [--min-compression 15] [--min-speedup 15]

Run it in the study's folder (its ``storage/`` holds the prepared caches). It takes the
``--students`` trained trials of the study whose students have C >= ``--min-compression``
and S >= ``--min-speedup`` and came closest to the bar (the best epoch's validation
au_fa_fr, complete or stopped at a rung), and retrains each with its own distillation
settings on ``--seeds`` seeds under each stopping rule of ``RULES``: patience 5 or 10, or
none, for the study's 40 epochs or for 80. Printed per student and rule: the mean and worst
validation au_fa_fr over seeds relative to the study's bar (1.00: on it), the median kept
epoch and the seconds per run. Nothing reads the test split.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import optuna
from goal_region import goal_trials  # benchmarks/ is on sys.path when run
from optuna.trial import TrialState

from kws.reference import training_data
from kws.training import train
from study.attributes import AU_FA_FR_PER_EPOCH
from study.runner import prepare, student_recipe
from study.search_space import configs_from_params
from study.settings import StudySettings

# label: (epochs, patience); patience 0 trains every epoch.
RULES = {
    "40 epochs, patience 5": (40, 5),
    "40 epochs, patience 10": (40, 10),
    "40 epochs, no early stop": (40, 0),
    "80 epochs, patience 10": (80, 10),
    "80 epochs, no early stop": (80, 0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="the study's SQLAlchemy URL")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--seed", type=int, default=0, help="the study's seed (dataset, teacher)")
    parser.add_argument("--students", type=int, default=6, help="goal-region students to retrain")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per rule")
    parser.add_argument("--min-compression", type=float, default=15.0, help="C of the goal")
    parser.add_argument("--min-speedup", type=float, default=15.0, help="S of the goal")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study_name, storage=args.storage)
    goal = goal_trials(study, args.min_compression, args.min_speedup)
    goal.sort(key=lambda t: min(t.user_attrs[AU_FA_FR_PER_EPOCH]))
    settings = StudySettings(seed=args.seed, progress=False)
    prepared = prepare(settings)
    data = training_data(prepared.features, prepared.reference, "cpu")
    print(
        f"bar {prepared.bar:.3e}; {len(goal)} goal-region trials, "
        f"retraining the best {args.students}"
    )
    print(
        f"{'trial':>5s} {'state':8s} {'C':>5s} {'S':>5s} {'rule':24s} "
        f"{'mean/bar':>8s} {'worst/bar':>9s} epoch  s/run"
    )
    for trial in goal[: args.students]:
        model, recipe = configs_from_params(trial.params, student_recipe(settings))
        state = "complete" if trial.state == TrialState.COMPLETE else "pruned"
        for label, (max_epochs, patience) in RULES.items():
            values, epochs, seconds = [], [], []
            for offset in range(args.seeds):
                start = time.perf_counter()
                result = train(
                    model,
                    dataclasses.replace(
                        recipe, epochs=max_epochs, patience=patience, seed=args.seed + offset
                    ),
                    data,
                )
                seconds.append(time.perf_counter() - start)
                values.append(result.best_val_au_fa_fr / prepared.bar)
                epochs.append(result.best_epoch)
            print(
                f"{trial.number:5d} {state:8s} {trial.user_attrs['compression_rate']:5.1f} "
                f"{trial.user_attrs['speedup']:5.1f} {label:24s} {statistics.fmean(values):8.2f} "
                f"{max(values):9.2f} {statistics.median(epochs):5.0f} "
                f"{statistics.fmean(seconds):6.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
