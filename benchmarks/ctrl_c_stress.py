"""How often does a Ctrl-C at a random moment kill a worker instead of stopping it?

    python benchmarks/ctrl_c_stress.py --runs 25 [--hold]

Each run starts a plain Optuna study on SQLite (heartbeats on, as the study's storage
has them) whose objective writes to the storage in a loop, sends it SIGINT after a random
3-5 s, and sorts the outcome: a clean ``KeyboardInterrupt`` with the trial FAILED, or a
worker that died another way (Optuna's ``AssertionError: Should not reach.`` after
"database is locked") or hung. ``--hold`` runs the study inside
:func:`study.interrupt.interrupts_outside_storage`.
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Past the worker's 3 s lock timeout and Optuna's own retries: a worker still running is stuck.
STOP_TIMEOUT_S = 60

WORKER = """
import contextlib, signal, sys, warnings
import optuna
from optuna.storages import RDBStorage
from study.interrupt import interrupts_outside_storage
warnings.simplefilter("ignore")
optuna.logging.set_verbosity(optuna.logging.ERROR)
storage = RDBStorage(sys.argv[1], engine_kwargs={"connect_args": {"timeout": 3}},
                     heartbeat_interval=1, grace_period=10)
study = optuna.create_study(storage=storage, study_name="stress")

def objective(trial):
    for step in range(10**6):
        trial.set_user_attr(f"a{step % 10}", step)
        trial.report(step, step)
    return 0.0

hold = interrupts_outside_storage() if sys.argv[2] == "hold" else contextlib.nullcontext()
try:
    with hold:
        study.optimize(objective, n_trials=1)
except KeyboardInterrupt:
    sys.exit(130)
"""


def one_run(folder: Path, hold: bool, rng: random.Random) -> str:
    database = folder / f"stress-{time.monotonic_ns()}.db"
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER, f"sqlite:///{database}", "hold" if hold else "plain"],
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(3 + 2 * rng.random())
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return f"hung: still running {STOP_TIMEOUT_S} s after Ctrl-C (killed)"
    with sqlite3.connect(database) as connection:
        states = [row[0] for row in connection.execute("SELECT state FROM trials")]
    if process.returncode == 130 and states == ["FAIL"]:
        return "clean stop, trial FAIL"
    last_line = (stderr.strip().splitlines() or [""])[-1]
    return f"died (exit {process.returncode}, trial {states}): {last_line}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="interrupted runs")
    parser.add_argument("--hold", action="store_true", help="inside interrupts_outside_storage")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random delays")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    outcomes: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            outcomes[one_run(Path(folder), args.hold, rng)] += 1
    for outcome, count in outcomes.most_common():
        print(f"{count:4d}  {outcome}")


if __name__ == "__main__":
    main()
