"""Pruners replayed on full learning curves: which finds the best student in the same time.

    python benchmarks/simulate_pruners.py curves-seed0.jsonl [curves-seed1.jsonl ...]
        [--orders 200] [--seconds 400 800]

Reads the tables of ``learning_curves.py`` and replays, for each file and each of
``--orders`` random streams of its students (drawn with replacement, so that every
budget binds), a study as the product runs it with random
proposals: a student whose score cannot beat the best confirmed one is skipped for free;
the others train epoch by epoch under the pruner and a patience of 5 epochs; one
that meets the bar on its first seed costs its two confirmation seeds as well, and becomes
the best when their mean meets it. Time is the sum of the table's measured seconds per
epoch. Printed per file and pruner, at each ``--seconds`` budget: the mean and the worst
best score over the orders, the share of orders whose best has C >= 15 and S >= 15, and
the trials trained. Replaying a table cannot show what a model-based sampler would have
proposed after each result, only what each pruner keeps or stops among the same students.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kws.model import BASE
from study.objective import deployed_compression
from study.search_space import configs_from_params

PATIENCE = 5  # the study's when the curves of docs/benchmarks.md were replayed (now 10)
BASE_SCORE = deployed_compression(BASE, fp16=False).score  # the warm-start best, 0.70
MAX_PROPOSALS = 100_000  # a study that can no longer beat its best stops proposing


@dataclass
class Student:
    score: float
    goal: bool  # C >= 15 and S >= 15
    bar: float
    runs: list[dict]  # per seed: val_au_fa_fr per epoch, deployed_au_fa_fr, seconds


@dataclass
class History:
    """What a pruner may know: the rung values so far and the finished students' curves."""

    rungs: dict[int, list[float]] = field(default_factory=dict)
    feasible_curves: list[list[float]] = field(default_factory=list)  # best-so-far / bar


# A pruner: (student, epoch, best-so-far / bar, history) -> prune?
Pruner = Callable[[Student, int, float, History], bool]


def successive_halving(min_resource: int, eta: int = 3, quality: bool = False) -> Pruner:
    """Optuna's SuccessiveHalvingPruner on the penalized score (the study's reported value)
    or, with ``quality``, on bar / au_fa_fr alone."""

    def prune(student: Student, epoch: int, ratio: float, history: History) -> bool:
        rung, step = 0, min_resource
        while step < epoch:
            rung, step = rung + 1, step * eta
        if step != epoch:
            return False
        value = 1 / ratio if quality else student.score * min(1.0, 1 / ratio)
        competing = [*history.rungs.setdefault(rung, []), value]
        history.rungs[rung].append(value)
        index = max(len(competing) // eta - 1, 0)
        return value < sorted(competing)[-(index + 1)]

    return prune


def envelope(epochs: tuple[int, ...], margin: float, startup: int, fallback: Pruner) -> Pruner:
    """Prune at ``epochs`` a curve above ``margin`` x the worst curve that ended feasible;
    ``fallback`` decides until ``startup`` feasible curves are known."""

    def prune(student: Student, epoch: int, ratio: float, history: History) -> bool:
        if len(history.feasible_curves) < startup:
            return fallback(student, epoch, ratio, history)
        if epoch not in epochs:
            return False
        worst = max(curve[epoch - 1] for curve in history.feasible_curves)
        return ratio > margin * worst

    return prune


def never(student: Student, epoch: int, ratio: float, history: History) -> bool:
    return False


def _quality(min_resource: int) -> Pruner:
    return successive_halving(min_resource, quality=True)


PRUNERS: dict[str, Callable[[], Pruner]] = {
    "none": lambda: never,
    "SH 2 (default)": lambda: successive_halving(2),
    "SH 2 on quality": lambda: successive_halving(2, quality=True),
    "SH 4": lambda: successive_halving(4),
    "SH 4 on quality": lambda: successive_halving(4, quality=True),
    "SH 6": lambda: successive_halving(6),
    "SH 6 on quality": lambda: successive_halving(6, quality=True),
    "SH 2, eta 2, on quality": lambda: successive_halving(2, eta=2, quality=True),
    "envelope 6,10,18 x1.0": lambda: envelope((6, 10, 18), 1.0, 3, _quality(6)),
    "envelope 4,8,16 x1.0": lambda: envelope((4, 8, 16), 1.0, 3, _quality(4)),
    "envelope 6,10,18 x0.9": lambda: envelope((6, 10, 18), 0.9, 3, _quality(6)),
}


def _trained(
    run: dict, student: Student, pruner: Pruner | None, history: History
) -> tuple[int, float]:
    """Epochs trained and the kept (deployed) au_fa_fr of one seed's run."""
    curve, best, best_epoch = run["val_au_fa_fr"], float("inf"), 0
    for epoch, value in enumerate(curve, start=1):
        if value < best:
            best, best_epoch = value, epoch
        if pruner is not None and pruner(student, epoch, best / student.bar, history):
            return epoch, float("inf")  # pruned: never the best
        if epoch - best_epoch >= PATIENCE:
            break
    # fp16 students are judged on the half model's figure at the kept epoch; the table has it
    # for the best epoch of the full curve, so the kept epoch's is scaled by that ratio.
    scale = run["deployed_au_fa_fr"] / min(curve)
    return epoch, best * scale


def replay(students: list[Student], make: Callable[[], Pruner], seconds: list[float],
           rng: random.Random) -> list[tuple[float, bool, int]]:  # fmt: skip
    """One study over a random stream of ``students``: (best score, goal met, trials) at
    each budget."""
    pruner, history = make(), History()
    best, best_goal, trials, spent = BASE_SCORE, False, 0, 0.0
    results: list[tuple[float, bool, int]] = []
    budgets = sorted(seconds)
    for _ in range(MAX_PROPOSALS):
        student = rng.choice(students)
        if student.score <= best:
            continue
        first = student.runs[0]
        epochs, kept = _trained(first, student, pruner, history)
        cost = sum(first["seconds"][:epochs])
        feasible = False
        if kept <= student.bar:
            curve = first["val_au_fa_fr"]
            history.feasible_curves.append(
                [min(curve[: e + 1]) / student.bar for e in range(len(curve))]
            )
            confirm = [_trained(run, student, None, history) for run in student.runs[1:3]]
            runs = zip(student.runs[1:3], confirm, strict=True)
            cost += sum(sum(run["seconds"][:epochs]) for run, (epochs, _) in runs)
            feasible = statistics.fmean([kept, *(k for _, k in confirm)]) <= student.bar
        while budgets and spent + cost > budgets[0]:
            results.append((best, best_goal, trials))
            budgets.pop(0)
        if not budgets:
            break
        spent += cost
        trials += 1
        if feasible:
            best, best_goal = student.score, student.goal
    results.extend((best, best_goal, trials) for _ in budgets)
    return results


def _load(path: Path) -> list[Student]:
    students = []
    for line in path.read_text().splitlines():
        row = json.loads(line)
        config, training = configs_from_params(row["params"])
        compression = deployed_compression(config, training.fp16)
        goal = compression.compression_rate >= 15 and compression.speedup >= 15
        students.append(Student(row["score"], goal, row["bar"], row["runs"]))
    return students


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", type=Path, nargs="+")
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--seconds", type=float, nargs="+", default=[400.0, 800.0])
    args = parser.parse_args()
    for path in args.tables:
        students = _load(path)
        confirmed = sum(
            len(s.runs) == 3 and statistics.fmean(r["deployed_au_fa_fr"] for r in s.runs) <= s.bar
            for s in students
        )
        print(f"\n{path}: {len(students)} students, {confirmed} feasible on 3 full seeds, "
              f"{sum(s.goal for s in students)} with C, S >= 15")  # fmt: skip
        for name, make in PRUNERS.items():
            rng = random.Random(0)
            runs = [replay(students, make, args.seconds, rng) for _ in range(args.orders)]
            cells = []
            for b, budget in enumerate(args.seconds):
                scores = [run[b][0] for run in runs]
                goal = statistics.fmean(run[b][1] for run in runs)
                trials = statistics.fmean(run[b][2] for run in runs)
                cells.append(
                    f"{budget:5.0f} s: mean {statistics.fmean(scores):6.2f} "
                    f"worst {min(scores):5.2f} goal {goal:4.0%} trials {trials:5.1f}"
                )
            print(f"  {name:26s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
