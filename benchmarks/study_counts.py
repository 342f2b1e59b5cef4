"""How many trials of finished studies completed, were confirmed and were feasible.

    python benchmarks/study_counts.py --storage sqlite:///PATH --study-name NAME [NAME ...]

A completed trial is *confirmed* when it met the bar on its first seed and so was trained on
the study's ``--confirm-seeds``, and *feasible* when their mean plus its standard error met
it too. docs/benchmarks.md used it to ask why export had nothing to fall back on: a search
that makes few feasible students leaves export one or two candidates.
"""

from __future__ import annotations

import argparse

import optuna
from optuna.trial import TrialState

from study.attributes import AU_FA_FR_SEEDS, FEASIBLE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="the studies' SQLAlchemy URL")
    parser.add_argument("--study-name", nargs="+", required=True, help="studies in it")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in args.study_name:
        study = optuna.load_study(study_name=name, storage=args.storage)
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        confirmed = [t for t in complete if len(t.user_attrs.get(AU_FA_FR_SEEDS, [])) > 1]
        feasible = [t for t in complete if t.user_attrs.get(FEASIBLE)]
        print(
            f"{name}: {len(study.trials)} trials, {len(complete)} complete, "
            f"{len(confirmed)} confirmed, {len(feasible)} feasible"
        )


if __name__ == "__main__":
    main()
