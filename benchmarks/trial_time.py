"""Where a finished study's training time went, and what its confirmation seeds said.

    python benchmarks/trial_time.py --storage sqlite:///PATH --study-name NAME

Read from the study, no training. Prints the seconds of training per outcome (trials
stopped at each epoch by the pruner, trials that completed, the confirmation seeds of
those that met the bar on their first seed, BASE's warm-start trial apart) and the seconds
the skipped proposals took (the sampler's draws, no training), then for each
confirmed trial its au_fa_fr on every seed relative to the bar (1.00: on the bar) and
where its first seed ranks among them: the pruner and the confirmation rule select on the
first seed, so a first seed that is the best of the trial's seeds more often than one
time in ``seeds`` is selection at work, not chance. Each confirmed trial's line ends with
the spread of its seeds (standard deviation of the ratios) and the student's GRU layers and
pooling: a search that keeps to students whose seeds spread widely is rewarded for luck.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter

import optuna
from optuna.trial import TrialState

from study.attributes import (
    AU_FA_FR_PER_EPOCH,
    AU_FA_FR_SEEDS,
    BAR,
    SKIPPED,
    counts_toward_budget,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="the study's SQLAlchemy URL")
    parser.add_argument("--study-name", required=True)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study_name, storage=args.storage)
    seconds: Counter[str] = Counter()
    trials: Counter[str] = Counter()
    confirmed = []
    for trial in study.trials:
        if not counts_toward_budget(trial):
            continue
        attrs = trial.user_attrs
        first_seed = sum(attrs["seconds_per_epoch"])
        base = " (BASE, trial 0)" if trial.number == 0 else ""
        if trial.state == TrialState.PRUNED:
            outcome = f"stopped at epoch {len(attrs[AU_FA_FR_PER_EPOCH]):2d}"
        else:
            outcome = "completed" + base
        seconds[outcome] += first_seed
        trials[outcome] += 1
        if len(attrs.get(AU_FA_FR_SEEDS) or []) > 1:
            seconds["confirmation seeds" + base] += attrs["train_seconds"] - first_seed
            trials["confirmation seeds" + base] += 1
            if not base:
                confirmed.append(trial)
    print(f"{'outcome':36s} {'trials':>6s} {'seconds':>8s}")
    for outcome in sorted(seconds):
        print(f"{outcome:36s} {trials[outcome]:6d} {seconds[outcome]:8.0f}")
    counted = sum(count for outcome, count in trials.items() if "confirmation" not in outcome)
    print(f"{'all training':36s} {counted:6d} {sum(seconds.values()):8.0f}")
    # Their whole duration: the sampler's draws that found nothing to train, no training.
    skipped = [t for t in study.trials if t.user_attrs.get(SKIPPED) and t.datetime_complete]
    skipped_seconds = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in skipped)
    print(f"{'skipped proposals (not training)':36s} {len(skipped):6d} {skipped_seconds:8.0f}")
    print("\nconfirmed trials: au_fa_fr / bar per seed, and the first seed's rank (1: lowest)")
    ranks: Counter[int] = Counter()
    for trial in confirmed:
        per_seed = [value / trial.user_attrs[BAR] for value in trial.user_attrs[AU_FA_FR_SEEDS]]
        rank = sorted(per_seed).index(per_seed[0]) + 1
        ranks[rank] += 1
        mean = sum(per_seed) / len(per_seed)
        figures = " ".join(f"{value:.2f}" for value in per_seed)
        student = f"{trial.params['gru_num_layers']} GRU layer(s), {trial.params['pooling']}"
        print(
            f"trial {trial.number:3d}: {figures}  mean {mean:.2f}  first seed's rank {rank}  "
            f"spread {statistics.stdev(per_seed):.2f}  {student}"
        )
    print("first seed's rank:", ", ".join(f"{rank}: {ranks[rank]}" for rank in sorted(ranks)))


if __name__ == "__main__":
    main()
