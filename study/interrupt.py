"""Ctrl-C that never lands inside a write to the study's storage.

Python raises ``KeyboardInterrupt`` between any two bytecodes. One raised inside
SQLAlchemy's commit of a trial's report can leave that connection's SQLite lock held, and
the write Optuna then makes to mark the trial failed waits out the lock timeout and fails:
the worker dies with Optuna's ``AssertionError: Should not reach.`` and the trial stays
running. It is rare (``benchmarks/ctrl_c_stress.py``; tests/study/test_interrupt.py
lands a Ctrl-C there on purpose).
While :func:`interrupts_outside_storage` is active, a Ctrl-C that arrives in storage code,
or in Optuna's bookkeeping between a trial's end and its recorded state, is held and raised
at the first moment the main thread has left it, checked every ``RECHECK_S`` seconds.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import types
from collections.abc import Iterator

# A storage write takes milliseconds; a Ctrl-C held for one is not felt.
RECHECK_S = 0.02

# Modules whose frames on the stack mean a write to the storage may be in flight.
_STORAGE_MODULES = ("sqlalchemy", "sqlite3", "optuna.storages", "optuna.study._tell")
# Optuna's trial loop: its own frame on top is the stretch between the objective's return
# and the trial's recorded state, which must run to its end.
_TRIAL_LOOP_MODULE = "optuna.study._optimize"


def in_storage_code(frame: types.FrameType | None) -> bool:
    """Whether the stack ending at ``frame`` is writing to (or reading from) the storage."""
    if frame is not None and frame.f_globals.get("__name__") == _TRIAL_LOOP_MODULE:
        return True
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_STORAGE_MODULES):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def interrupts_outside_storage() -> Iterator[None]:
    """Within this block (main thread only), Ctrl-C raises ``KeyboardInterrupt`` only
    outside the storage's code; see the module's docstring. Where Ctrl-C is ignored (a
    job a shell started in the background) or this is not the main thread, nothing
    changes."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored or threading.current_thread() is not threading.main_thread():
        yield
        return

    def deliver(signum: int, frame: types.FrameType | None) -> None:
        if in_storage_code(frame):
            signal.setitimer(signal.ITIMER_REAL, RECHECK_S)
            return
        raise KeyboardInterrupt

    previous_int = signal.signal(signal.SIGINT, deliver)
    previous_alarm = signal.signal(signal.SIGALRM, deliver)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGINT, previous_int)
