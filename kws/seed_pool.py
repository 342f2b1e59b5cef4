"""Training one student on several seeds at once: one process per core, one thread each.

A student is judged on the mean of several seeds (the study's confirmation and fresh seeds,
export's retraining, the reference's seeds), and these trainings are independent.
:func:`kws.training.train` runs on one thread (a student is too small for a second to pay
much: on one, its epochs take 1.13-1.18 x the time they take on two), so the other cores
would sit idle while a seed trains; single-threaded processes train as many seeds in the
time of one. A would-be best's 2 confirmation and 3 fresh seeds train 1.61 x faster on two
cores than one after another (AMD EPYC, ``benchmarks/bench_seed_pool.py``).

The numbers do not depend on where a seed trained: on one thread it gives the same weights
in this process or in a worker (tested), so a study run with a pool finds what it finds
without one.

Workers are started with ``spawn`` (a forked child of a process that ran torch can hang in
its thread pool) once, at the first use, and receive the training tensors once, through
shared memory. They ignore Ctrl-C: the parent stops them, then raises it. A worker that
dies mid-training (killed for memory) raises :class:`WorkerDiedError` instead of leaving
the caller waiting for its seed.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from multiprocessing.pool import Pool
from typing import Any

import torch
import torch.multiprocessing
from tqdm import tqdm

from kws.model import CRNNConfig
from kws.training import EpochReport, TrainConfig, TrainingData, TrainResult, train

POLL_S = 0.2  # how often the parent passes on the workers' epochs while it waits
_STARTED = 0  # the call number of a worker's "started, with this pid" message

# (seed index, epoch, the seed's best validation au_fa_fr so far): called in the parent as
# each seed ends an epoch, in no fixed order across seeds.
EpochProgress = Callable[[int, int, float], None]

# The worker process's training tensors and the queue its epochs go back by; set once by
# _start_worker.
_worker_data: TrainingData | None = None
_worker_epochs: Any = None


def _start_worker(data: TrainingData, epochs: Any) -> None:
    global _worker_data, _worker_epochs
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _worker_data, _worker_epochs = data, epochs
    epochs.put((_STARTED, os.getpid(), 0, 0.0))


def _train_seed(call: int, index: int, config: CRNNConfig, recipe: TrainConfig) -> TrainResult:
    assert _worker_data is not None, "a pool worker trains only after _start_worker"

    def report(epoch: EpochReport) -> None:
        _worker_epochs.put((call, index, epoch.epoch, epoch.best_val_au_fa_fr))

    return train(config, recipe, _worker_data, report)


class SeedPool:
    """Trains ``CRNN(config)`` on ``data`` once per recipe, up to ``processes`` at a time.

    With ``processes`` 1, or data on a GPU (one device, whose kernels already run in
    parallel), every recipe trains in this process, one after another. Use as a context
    manager, or call :meth:`close`, so the worker processes end with the caller.
    """

    def __init__(self, data: TrainingData, processes: int) -> None:
        self.data = data
        self.processes = processes if data.views.device.type == "cpu" else 1
        self._pool: Pool | None = None
        self._epochs: Any = None
        self._calls = 0  # an epoch queued by an earlier call's seed is not this call's
        self._workers: set[int] = set()  # their pids

    def train(
        self,
        config: CRNNConfig,
        recipes: Sequence[TrainConfig],
        on_epoch: EpochProgress | None = None,
    ) -> list[TrainResult]:
        """One :class:`TrainResult` per recipe, in their order.

        Raises:
            NonFiniteLossError: one of the seeds' loss became NaN or infinite (the other
                seeds are stopped).
            WorkerDiedError: a worker process ended mid-training (killed: out of memory).
        """
        pool = None if self.processes == 1 or len(recipes) == 1 else self._started()
        if pool is None:
            return [
                train(config, recipe, self.data, _for_seed(on_epoch, index))
                for index, recipe in enumerate(recipes)
            ]
        self._calls += 1
        pending = [
            pool.apply_async(_train_seed, (self._calls, index, config, recipe))
            for index, recipe in enumerate(recipes)
        ]
        try:
            while not all(result.ready() for result in pending):
                self._pass_on_epochs(on_epoch)
                # The pool would start another worker and wait forever for the lost seed.
                dead = [pid for pid in self._workers if not _alive(pid)]
                if dead:
                    raise WorkerDiedError(
                        f"a worker process training seeds (pid {dead[0]}) ended mid-training; "
                        "killed for lack of memory? Each trains on shared tensors, but holds "
                        "its own model and batches"
                    )
            results = [result.get() for result in pending]
        except BaseException:
            # Ctrl-C or a seed's error: the other seeds' work is not wanted.
            self.close(now=True)
            raise
        if on_epoch is not None:  # the last epochs may still be in the queue
            for index, result in enumerate(results):
                last = result.history[-1]
                on_epoch(index, last.epoch, last.best_val_au_fa_fr)
        return results

    def _started(self) -> Pool | None:
        """The worker processes, started at the first call; None when they cannot start or
        cannot share the tensors (then every seed trains here, after a warning)."""
        if self._pool is None and not _spawn_can_start():
            warnings.warn(
                "seeds train one at a time: worker processes cannot start, since each would "
                f"run the main script again from {sys.modules['__main__'].__file__!r}, which "
                "is not a file (a script read from stdin by 'python -'); run it from a file "
                f"to train {self.processes} at a time",
                stacklevel=3,
            )
            self.processes = 1
        if self._pool is None and self.processes > 1:
            context = torch.multiprocessing.get_context("spawn")
            self._epochs = context.Queue()
            try:
                self._pool = context.Pool(
                    self.processes, initializer=_start_worker, initargs=(self.data, self._epochs)
                )
            except (RuntimeError, OSError) as error:
                # Sharing the tensors takes their size in /dev/shm, which a container may
                # keep small (Docker: 64 MB unless --shm-size).
                warnings.warn(
                    f"seeds train one at a time: the training tensors could not be shared "
                    f"with worker processes ({error}); a larger /dev/shm lets them train "
                    f"{self.processes} at a time",
                    stacklevel=3,
                )
                self._epochs.close()
                self._epochs, self.processes = None, 1
        return self._pool

    def _pass_on_epochs(self, on_epoch: EpochProgress | None) -> None:
        """Wait up to :data:`POLL_S` for the workers' epochs and pass them on."""
        with contextlib.suppress(queue.Empty):
            call, index, epoch, best_val_au_fa_fr = self._epochs.get(timeout=POLL_S)
            if call == _STARTED:
                self._workers.add(index)
            elif on_epoch is not None and call == self._calls:
                on_epoch(index, epoch, best_val_au_fa_fr)

    def close(self, now: bool = False) -> None:
        """End the worker processes: after their work, or ``now``, mid-training."""
        if self._pool is None:
            return
        if now:
            self._pool.terminate()
        else:
            self._pool.close()
        self._pool.join()
        self._epochs.close()
        self._pool = self._epochs = None
        self._workers = set()

    def __enter__(self) -> SeedPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close(now=exc_info[0] is not None)


def _spawn_can_start() -> bool:
    """Whether ``spawn`` workers can prepare themselves: each imports the main module by
    name, or runs it from its path, so a main script that is not a file ('python -' gives
    the path '<stdin>') makes every worker fail at start, and the pool start new ones
    forever."""
    main = sys.modules["__main__"]
    if getattr(main.__spec__, "name", None) is not None:  # python -m, or an interpreter
        return True
    path = getattr(main, "__file__", None)
    return path is None or os.path.isfile(path)  # None: interactive, nothing to run


class WorkerDiedError(RuntimeError):
    """A process of the pool ended while it trained a seed; the seeds' results are lost."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    return True


def _for_seed(on_epoch: EpochProgress | None, index: int) -> Callable[[EpochReport], None] | None:
    if on_epoch is None:
        return None
    return lambda report: on_epoch(index, report.epoch, report.best_val_au_fa_fr)


def progress_bar_updater(bar: tqdm) -> EpochProgress:
    """An :data:`EpochProgress` that advances ``bar`` by each seed's new epochs (a seed's
    last epoch can be reported twice) and shows every seed's best validation au_fa_fr."""
    epochs: dict[int, int] = {}
    best: dict[int, float] = {}

    def update(index: int, epoch: int, best_val_au_fa_fr: float) -> None:
        best[index] = best_val_au_fa_fr
        bar.set_postfix_str(
            "best val au_fa_fr " + ", ".join(f"{best[i]:.2e}" for i in sorted(best)),
            refresh=False,
        )
        bar.update(epoch - epochs.get(index, 0))
        epochs[index] = epoch

    return update
