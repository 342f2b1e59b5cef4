from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from kws.device import configure_threads, resolve_device


def test_auto_is_cuda_exactly_when_cuda_is_available() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_unknown_device_is_rejected_by_name() -> None:
    with pytest.raises(ValueError, match="tpu"):
        resolve_device("tpu")


def test_threads_are_split_between_workers() -> None:
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) >= configure_threads(2) >= 1
        assert configure_threads(10_000) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_threads_follow_the_cpu_affinity_not_the_machine() -> None:
    # Pinned to one core (as `taskset -c 0` does), a worker must not start two threads.
    code = (
        "import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]});"
        "from kws.device import configure_threads; print(configure_threads(1))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
