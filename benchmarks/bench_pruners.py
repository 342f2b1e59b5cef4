"""Pruners compared at the same time budget on the embedded dataset, one study each.

    python benchmarks/bench_pruners.py [--budget 240] [--out /tmp/kws-bench-pruners]
        [--seed 0] [--only median+skip median successive-halving+skip]

Runs the study with each pruner (none, median, successive halving, hyperband), all with
skip-hopeless, and the default pruner without it, each for --budget seconds of trials after a shared
preparation (dataset, features and reference are built once, before any clock starts).
Prints trials trained and pruned, and the best feasible value found. The table in
docs/benchmarks.md comes from this script (run with 20-epoch students, before confirmation
seeds; the default pruner's reason is in study/pruning.py).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from optuna.trial import TrialState

from study.attributes import counts_toward_budget
from study.objective import best_feasible
from study.pruning import DEFAULT_PRUNER, PRUNERS
from study.runner import prepare, run
from study.settings import StudySettings


def _variant(token: str, parser: argparse.ArgumentParser) -> tuple[str, bool]:
    """``"median+skip"`` -> ("median", True); ``"median"`` -> ("median", False)."""
    name = token.removesuffix("+skip")
    if name not in PRUNERS:
        parser.error(f"--only: unknown pruner {name!r} (choices: {', '.join(PRUNERS)})")
    return name, token.endswith("+skip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240.0, help="seconds per study")
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-bench-pruners"))
    parser.add_argument("--seed", type=int, default=0, help="dataset, reference and sampler")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="PRUNER[+skip]",
        help="run only these variants: a pruner name, with '+skip' for skip-hopeless "
        f"(choices {', '.join(PRUNERS)}; default: each with +skip, and {DEFAULT_PRUNER})",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = StudySettings(
        trials=10_000,
        storage=f"sqlite:///{args.out / 'pruners.db'}",
        timeout=args.budget,
        seed=args.seed,
        progress=False,
    )
    prepare(base)  # caches under storage/: not part of any study's budget

    variants = [(name, True) for name in PRUNERS] + [(DEFAULT_PRUNER, False)]
    if args.only:
        variants = [_variant(token, parser) for token in args.only]
    header = ("pruner", "finished", "pruned", "feasible", "best value")
    print(f"{header[0]:28s} {header[1]:>8s} {header[2]:>6s} {header[3]:>8s} {header[4]:>10s}")
    for pruner, skip in variants:
        label = pruner + (" + skip-hopeless" if skip else "")
        settings = StudySettings(
            **{**base.to_dict(), "pruner": pruner, "skip_hopeless": skip,
               "study_name": f"bench-{label}-{time.time_ns()}"}
        )  # fmt: skip
        study = run(settings)
        trials = study.trials
        finished = [t for t in trials if counts_toward_budget(t)]
        pruned = sum(t.state == TrialState.PRUNED for t in trials)
        feasible = sum(bool(t.user_attrs.get("feasible")) for t in finished)
        best = best_feasible(study)
        summary = "-" if best is None else (
            f"#{best.number} score {best.user_attrs['score']:.2f} "
            f"au_fa_fr {best.user_attrs['au_fa_fr']:.2e}"
        )  # fmt: skip
        value = "-" if best is None else f"{best.value:.3f}"
        print(f"{label:28s} {len(finished):8d} {pruned:6d} {feasible:8d} {value:>10s}  {summary}")


if __name__ == "__main__":
    main()
