"""Trials per minute with 1 and 2 worker processes on one machine, same study settings.

    python benchmarks/bench_workers.py [--budget 180] [--storage URL] [--out DIR]

Runs the default study for --budget seconds with ``--n-jobs 1``, then with ``--n-jobs 2``
(each worker gets cores / workers threads), each in a new study of the given storage
(default: SQLite under --out; pass a postgresql+psycopg:// URL to measure PostgreSQL).
Dataset, features and reference are prepared once, before any clock starts. Prints the
finished trials per minute of each and their ratio. docs/benchmarks.md quotes it.
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
        rates[workers] = finished_count(study) / minutes
        print(
            f"{workers} worker(s): {finished_count(study)} finished trials in {minutes:.1f} min, "
            f"{rates[workers]:.1f} trials/min"
        )
    print(f"2 workers finish {rates[2] / rates[1]:.2f}x the trials per minute of 1")


if __name__ == "__main__":
    main()
