"""The study at real size: wall time and peak RSS of each phase, each in a fresh process.

    python benchmarks/bench_real_size.py --num-clips 64721 --num-speakers 1881 \
        [--trials 100] [--reference-seeds 3] [--max-epochs 40] [--out /tmp/kws-real]

Runs, one after another and each as its own process so that each peak is its own:
synthesis of the embedded dataset, its feature cache, the reference seeds, and the study's
trials (``run_study.py`` with the same flags, the references then cached). A phase whose
output is cached already (a rerun on the same --out) reports its load instead, so delete
--out to measure from empty. Peak RSS is the process's maximum resident set (``wait4``'s
``ru_maxrss``, which covers the process and the children it waited for, such as the
espeak-ng workers). Every phase runs the product's own code with its default recipes;
``--reference-seeds``, ``--max-epochs`` and ``--trials`` are the study's own flags, for a
memory figure at a size whose full run would take hours.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from kws.device import DEVICES
from study.runner import prepare, prepare_features, study_dataset
from study.settings import StudySettings

REPO_ROOT = Path(__file__).resolve().parents[1]
PHASES = ("synthesis", "features", "references", "trials")


def _settings(args: argparse.Namespace) -> StudySettings:
    return StudySettings(
        trials=args.trials,
        storage=f"sqlite:///{args.out / 'study.db'}",
        num_clips=args.num_clips,
        num_speakers=args.num_speakers,
        seed=args.seed,
        max_epochs=args.max_epochs,
        reference_seeds=args.reference_seeds,
        device=args.device,
        data_dir=str(args.out / "data"),
        feature_dir=str(args.out / "features"),
        model_dir=str(args.out / "models"),
        artifact_dir=str(args.out / "artifacts"),
    )


def _study_command(settings: StudySettings) -> list[str]:
    return [
        sys.executable, str(REPO_ROOT / "run_study.py"),
        "--trials", str(settings.trials), "--storage", settings.storage,
        "--num-clips", str(settings.num_clips), "--num-speakers", str(settings.num_speakers),
        "--seed", str(settings.seed), "--max-epochs", str(settings.max_epochs),
        "--reference-seeds", str(settings.reference_seeds), "--device", settings.device,
        "--data-dir", settings.data_dir, "--feature-dir", settings.feature_dir,
        "--model-dir", settings.model_dir, "--artifact-dir", settings.artifact_dir,
    ]  # fmt: skip


def _run_phase(phase: str, settings: StudySettings) -> None:
    """The phase itself, in this process (the child that the parent measures)."""
    if phase == "synthesis":
        study_dataset(settings)
    elif phase == "features":
        prepare_features(settings)
    elif phase == "references":
        prepare(settings)
    else:
        sys.exit(subprocess.run(_study_command(settings)).returncode)


def _measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS in GB of ``command`` run to completion."""
    start = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {child.returncode}")
    return seconds, usage.ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-clips", type=int, default=64_721)
    parser.add_argument("--num-speakers", type=int, default=1_881)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--max-epochs", type=int, default=StudySettings.max_epochs)
    parser.add_argument("--reference-seeds", type=int, default=StudySettings.reference_seeds)
    parser.add_argument("--device", default=StudySettings.device, choices=DEVICES)
    parser.add_argument("--out", type=Path, default=Path("/tmp/kws-real"))
    parser.add_argument(
        "--phases", default=",".join(PHASES), help="comma-separated, in order (default: all)"
    )
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)  # child's entry
    args = parser.parse_args()
    settings = _settings(args)
    if args.phase is not None:
        _run_phase(args.phase, settings)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for phase in args.phases.split(","):
        if phase not in PHASES:
            parser.error(f"--phases: unknown phase {phase!r}; choose from {', '.join(PHASES)}")
        command = [sys.executable, __file__, *sys.argv[1:], "--phase", phase]
        seconds, peak_gb = _measure(command)
        rows.append((phase, seconds, peak_gb))
        print(f"{phase}: {seconds:.0f} s, peak RSS {peak_gb:.2f} GB", flush=True)
    print(f"\n{args.num_clips} clips, {args.num_speakers} speakers, seed {args.seed}, "
          f"{os.cpu_count()} cores, --device {args.device}")  # fmt: skip
    print("| phase | wall time | peak RSS |\n|---|---|---|")
    for phase, seconds, peak_gb in rows:
        print(f"| {phase} | {seconds / 60:.1f} min | {peak_gb:.2f} GB |")


if __name__ == "__main__":
    main()
