"""The default search against random search and the hand-tuned students, verified by export.

    python benchmarks/bench_search.py [--seed 0 1 2 3 4] [--trials 100]
        [--out /tmp/kws-bench-search] [--variant default random hand-tuned]

``--variant random`` alone reuses the default study an earlier run left in ``--out`` (its
wall time W from its first trial's start to its last trial's end, and its export), so
random search can be measured in a later session without training the default again.

For each seed (dataset, references and sampler), after a shared preparation timed on its
own (synthesis, features and the three reference seeds, into ``--out``'s empty caches):

- **default**: the study as ``python run_study.py --trials N --seed S`` runs it (TPE);
  its wall time W sets the others' budget;
- **random**: the same study with ``--sampler random`` (the same skipping of proposals
  that cannot win, the same pruner and confirmation seeds) for W seconds of trials;
- **hand-tuned**: the warm-start trials alone (BASE, the seed report's student and the
  best KD-only student of background.md), as a user who tried them by hand would, with
  no floors (all three are below the default's C >= 15 and S >= 15).

Each is then exported as ``python run_study.py export`` does (the best trials retrained
on 3 seeds the study never trained them on, the first whose mean plus its standard error
meets the validation bar kept) and judged by the like-for-like held-out check; "best
holds" says whether the study's best trial was the one export confirmed. The verified
score is the export's score when it passes, else BASE's 0.70 (the model a user keeps when
nothing verified). Prints one line per seed
and variant, then the mean verified score per variant, the worst seed, and the ratio
default / random.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
from pathlib import Path

import optuna

from kws.compression import measure
from kws.model import BASE, CRNN
from study.export import Export, ExportError, export_best, read_export
from study.runner import finished_count, prepare, run
from study.settings import StudySettings

VARIANTS = ("default", "random", "hand-tuned")
BASE_SCORE = measure(CRNN(BASE)).score  # 0.70: what a user keeps when nothing verifies


def _verified(study: optuna.Study, settings: StudySettings, folder: Path) -> dict:
    """Export ``study`` into ``folder`` and return its figures (NaN where nothing was
    feasible: the verified score is then BASE's)."""
    try:
        export = read_export(export_best(study, folder, settings, log=lambda _: None))
    except ExportError:
        export = None
    return _figures(study, export)


def _recorded(storage: str, folder: Path) -> tuple[float, dict]:
    """The wall time in seconds of the default study an earlier run of this code left in
    ``storage``, and the figures of its export in ``folder`` (none: nothing was feasible)."""
    try:
        study = optuna.load_study(study_name="default", storage=storage)
    except KeyError as error:
        raise SystemExit(f"{storage}: no default study; run --variant default first") from error
    times = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    start = min(t.datetime_start for t in times if t.datetime_start is not None)
    wall = (max(t.datetime_complete for t in times) - start).total_seconds()
    export = read_export(folder) if folder.exists() else None
    return wall, _figures(study, export)


def _figures(study: optuna.Study, export: Export | None) -> dict:
    """The figures of a row: the export's, or NaN and BASE's score without one."""
    if export is None:
        nothing = dict.fromkeys(("score", "C", "S", "test", "test_bar"), math.nan)
        return {**nothing, "best_holds": False, "passes": False, "verified": BASE_SCORE,
                "trials": finished_count(study)}  # fmt: skip
    held_out, metrics = export.held_out, export.metrics
    best = study.best_trial  # export_best raised if there were no feasible trial
    return {
        # The study's best trial is the one export confirmed and exported.
        "best_holds": export.selection["confirmed"] and export.study["trial_number"] == best.number,
        "trials": finished_count(study),
        "score": metrics["score"],
        "C": metrics["compression_rate"],
        "S": metrics["speedup"],
        "test": held_out["test_au_fa_fr_mean"],
        "test_bar": held_out["test_bar"],
        "passes": held_out["passes"],
        "verified": metrics["score"] if held_out["passes"] else BASE_SCORE,
    }


def _print_row(seed: int, label: str, figures: dict, seconds: float, last: str) -> None:
    print(
        f"{seed:4d} {label:11s} {figures['trials']:6d} {seconds:7.0f} "
        f"{figures['score']:6.2f} {figures['C']:6.1f} {figures['S']:6.1f}  "
        f"{figures['test']:.3e}    {figures['test_bar']:.3e} "
        f"{'passes' if figures['passes'] else 'FAILS':6s} "
        f"{'yes' if figures['best_holds'] else 'no':10s} {last}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--trials", type=int, default=100, help="the default search's --trials")
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-bench-search"))
    parser.add_argument(
        "--variant",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="which to run (random runs for the default's wall time: without default, "
        "that of the default study already in --out)",
    )
    args = parser.parse_args()
    reuse_default = "random" in args.variant and "default" not in args.variant
    if reuse_default:
        args.variant.insert(0, "default")
    verified: dict[str, list[float]] = {label: [] for label in args.variant}
    print(
        "seed variant     trials  wall s  score     C      S  test au_fa_fr  test bar  check"
        "   best holds  export"
    )
    for seed in args.seed:
        out = args.out / f"seed{seed}"
        base = StudySettings(
            trials=args.trials,
            seed=seed,
            storage=f"sqlite:///{out / 'studies.db'}",
            data_dir=str(out / "data"),
            feature_dir=str(out / "features"),
            model_dir=str(out / "models"),
            artifact_dir=str(out / "artifacts"),
            progress=False,
        )
        start = time.perf_counter()
        prepare(base)
        print(f"{seed:4d} preparation {time.perf_counter() - start:21.0f}", flush=True)
        variants = {
            "default": dataclasses.replace(base, study_name="default"),
            "random": dataclasses.replace(base, study_name="random", sampler="random"),
            "hand-tuned": dataclasses.replace(base, study_name="hand-tuned"),
        }
        wall = None
        for label, settings in variants.items():
            if label not in args.variant:
                continue
            if label == "default" and reuse_default:
                wall, figures = _recorded(settings.storage, out / f"export-{label}")
                verified[label].append(figures["verified"])
                _print_row(seed, label, figures, wall, "recorded")
                continue
            if label == "random":  # the default's wall time, with trials to spare
                settings = dataclasses.replace(settings, trials=100_000, timeout=wall)
            if label == "hand-tuned":  # the three warm-start trials, nothing proposed
                # They are below the default floors, which would skip them untrained.
                settings = dataclasses.replace(
                    settings, trials=3, min_compression=0.0, min_speedup=0.0
                )
            start = time.perf_counter()
            study = run(settings)
            seconds = time.perf_counter() - start
            if label == "default":
                wall = seconds
            start = time.perf_counter()
            figures = _verified(study, settings, out / f"export-{label}")
            export_seconds = time.perf_counter() - start
            verified[label].append(figures["verified"])
            _print_row(seed, label, figures, seconds, f"export {export_seconds:.0f} s")
    for label, values in verified.items():
        print(
            f"{label:11s} verified score: mean {statistics.fmean(values):.2f}, worst "
            f"{min(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"
        )
    if "random" in verified:
        ratio = statistics.fmean(verified["default"]) / statistics.fmean(verified["random"])
        print(f"default / random: {ratio:.2f}x the mean verified score")


if __name__ == "__main__":
    main()
