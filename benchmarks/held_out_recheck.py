"""Given trials of a finished study, retrain each on 3 seeds and judge it as export does.

    python benchmarks/held_out_recheck.py --storage sqlite:///PATH --study-name NAME
        --trials N [N ...] [--seeds 3] [--first-seed 0] [--patience P]

Run it in the study's folder (its ``storage/`` holds the prepared caches). For each trial:
its validation au_fa_fr per seed relative to the study's bar, and the like-for-like
held-out check of ``python run_study.py export`` (the test mean over the seeds against the
bar's ratio applied to the reference's test figure), whichever rule would have chosen it.
docs/benchmarks.md ("Feasible on the mean plus its standard error") used it to ask what
export would have found under another feasibility rule, without rerunning the studies.
"""

from __future__ import annotations

import argparse
import dataclasses

import optuna

from kws.reference import training_data
from kws.training import train
from study.export import held_out_check, recorded_reference
from study.runner import prepare_stored, student_recipe, with_study_bar
from study.search_space import configs_from_params
from study.settings import StudySettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="the study's SQLAlchemy URL")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--trials", type=int, nargs="+", required=True, help="trial numbers")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per trial")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="offset of the first training seed from the study's (0: the trial's own seeds; "
        "6 with the default --confirm-seeds and fresh check, 3 for a study without the "
        "check: seeds the study never trained it on)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=None,
        help="retrain with this patience instead of the study's recorded one (the studies of "
        "docs/benchmarks.md that ran with a local edit of it)",
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study_name, storage=args.storage)
    settings, prepared = prepare_stored(study, StudySettings(progress=False))
    if args.patience is not None:
        settings = dataclasses.replace(settings, patience=args.patience)
    prepared = with_study_bar(study, prepared)
    data = training_data(prepared.features, prepared.reference, "cpu")
    reference = recorded_reference(study, prepared)
    for number in args.trials:
        model, recipe = configs_from_params(study.trials[number].params, student_recipe(settings))
        results = [
            train(model, dataclasses.replace(recipe, seed=recipe.seed + offset), data)
            for offset in range(args.first_seed, args.first_seed + args.seeds)
        ]
        check = held_out_check(
            model,
            recipe,
            [r.state_dict for r in results],
            [r.best_val_au_fa_fr for r in results],
            prepared,
            reference,
            True,
        )
        seeds = ", ".join(f"{r.best_val_au_fa_fr / prepared.bar:.2f}" for r in results)
        print(
            f"trial {number}: validation / bar {seeds}; test {check['test_au_fa_fr_mean']:.3e} "
            f"vs like-for-like bar {check['test_bar']:.3e}: "
            f"{'passes' if check['passes'] else 'FAILS'}",
            flush=True,
        )


if __name__ == "__main__":
    main()
