"""Trials per minute with 1 and 2 worker processes on one machine, same study settings.

    python benchmarks/bench_workers.py [--budget 180] [--storage URL] [--out DIR]

Runs the study (no pruner, no skipping: every trial trains until early stopping, so the
count measures throughput, not search luck) for --budget seconds with ``--n-jobs 1``, then
with ``--n-jobs 2``
(each worker gets cores / workers threads), each in a new study of the given storage
(default: SQLite under --out; pass a postgresql+psycopg:// URL to measure PostgreSQL).
Dataset, features and reference are prepared once, before any clock starts. Prints the
finished trials and trained epochs per minute of each, and the ratio of epochs
per minute (trials differ in size, epochs less so). docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from study.runner import finished_count, prepare, run
from study.settings import StudySettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=180.0, help="seconds per run")
    parser.add_argument("--storage", default=None, help="SQLAlchemy URL (default: SQLite)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-bench-workers"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = StudySettings(
        trials=10_000,
        storage=args.storage or f"sqlite:///{args.out / 'workers.db'}",
        timeout=args.budget,
        seed=args.seed,
        progress=False,
        # Every trial trains until early stopping: throughput, not search luck (pruning and
        # skipping depend on what the workers happened to find first).
        pruner="none",
        skip_hopeless=False,
    )
    prepare(base)  # caches under storage/: not part of any run's budget

    rates = {}
    for workers in (1, 2):
        settings = dataclasses.replace(
            base, n_jobs=workers, study_name=f"bench-workers-{workers}-{time.time_ns()}"
        )
        start = time.perf_counter()
        study = run(settings)
        minutes = (time.perf_counter() - start) / 60
        epochs = sum(len(t.user_attrs.get("au_fa_fr_per_epoch", [])) for t in study.get_trials())
        rates[workers] = epochs / minutes
        print(
            f"{workers} worker(s): {finished_count(study)} finished trials, {epochs} epochs in "
            f"{minutes:.1f} min: {finished_count(study) / minutes:.1f} trials/min, "
            f"{rates[workers]:.0f} epochs/min"
        )
    print(f"2 workers train {rates[2] / rates[1]:.2f}x the epochs per minute of 1")


if __name__ == "__main__":
    main()
