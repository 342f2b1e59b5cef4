"""Choosing the device and the CPU thread count."""

from __future__ import annotations

import os

import torch

from kws.config import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU. ``cuda`` without a GPU is an error."""
    if name not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu or auto"
        )
    return torch.device(name)


def configure_threads(workers: int = 1) -> int:
    """Split the CPU cores between ``workers`` processes; returns this process's threads.

    Small CRNNs gain little from intra-op threads, and two processes each on one core beat
    one process on two, so every worker gets ``cores // workers`` (at least 1). Cores are
    those this process may run on (``taskset``, cgroup cpusets), not all the machine's.
    """
    threads = cores_per_worker(workers)
    torch.set_num_threads(threads)
    return threads


def cores_per_worker(workers: int = 1) -> int:
    """The usable cores split evenly between ``workers`` processes, at least 1 each."""
    return max(1, usable_cores() // max(1, workers))


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS has one."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
