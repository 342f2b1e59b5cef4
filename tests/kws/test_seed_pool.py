"""A pool trains seeds side by side and gives what training them here one by one gives."""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import os
import signal
import subprocess
import sys
import threading

import pytest
import torch
from tqdm import tqdm

from kws.model import CRNNConfig
from kws.reference import training_data
from kws.seed_pool import SeedPool, WorkerDiedError, progress_bar_updater
from kws.training import NonFiniteLossError, TrainConfig, TrainingData, train

TOY = CRNNConfig(
    cnn_out_channels=2, kernel_size=(5, 10), stride=(4, 8), gru_num_layers=1, hidden_size=4
)
FAST = TrainConfig(epochs=4, batch_size=32, learning_rate=3e-3, epoch_examples=256)
RECIPES = [
    dataclasses.replace(FAST, seed=0),
    dataclasses.replace(FAST, seed=1, fp16=True),
    dataclasses.replace(FAST, seed=2, patience=1, learning_rate=2e-2),
]


@pytest.fixture(scope="module")
def data(tiny_features) -> TrainingData:
    return training_data(tiny_features, None, torch.device("cpu"))


def test_seeds_trained_in_workers_are_those_trained_here(data: TrainingData) -> None:
    # Here on this process's threads (2 on a 2-core machine), there on one each.
    expected = [train(TOY, recipe, data) for recipe in RECIPES]
    with SeedPool(data, processes=2) as pool:
        results = pool.train(TOY, RECIPES)
    assert len(results) == len(RECIPES)
    for got, want in zip(results, expected, strict=True):
        assert got.best_val_au_fa_fr == want.best_val_au_fa_fr
        assert [r.val_au_fa_fr for r in got.history] == [r.val_au_fa_fr for r in want.history]
        assert got.state_dict.keys() == want.state_dict.keys()
        for name, tensor in want.state_dict.items():
            assert torch.equal(got.state_dict[name], tensor), name
    # Other seeds, other students: the comparison above is not of one result three times.
    first, second = (r.state_dict["classifier.weight"] for r in expected[:2])
    assert not torch.equal(first, second)


def test_the_bar_counts_each_epoch_once_and_shows_every_seeds_best() -> None:
    with tqdm(total=8, file=io.StringIO()) as bar:
        update = progress_bar_updater(bar)
        for report in [(1, 1, 0.5), (0, 1, 0.4), (0, 2, 0.3), (1, 2, 0.45), (0, 2, 0.3)]:
            update(*report)  # seed 0's last epoch comes twice: from the queue, then the result
        assert bar.n == 4
        assert bar.postfix == "best val au_fa_fr 3.00e-01, 4.50e-01"


def test_every_seeds_epochs_are_reported_in_order(data: TrainingData) -> None:
    seen: list[tuple[int, int, float]] = []
    with SeedPool(data, processes=2) as pool:
        results = pool.train(TOY, RECIPES, lambda *reported: seen.append(reported))
    for index, result in enumerate(results):
        epochs = [epoch for i, epoch, _ in seen if i == index]
        # Each epoch once, in order; the last may be reported twice (from the queue and
        # from the result).
        assert sorted(set(epochs)) == list(range(1, len(result.history) + 1))
        assert epochs == sorted(epochs)
        # With each epoch, the seed's best validation figure so far, as its history has it.
        best = {epoch: value for i, epoch, value in seen if i == index}
        assert best == {r.epoch: r.best_val_au_fa_fr for r in result.history}
    assert {index for index, _, _ in seen} == {0, 1, 2}


def test_a_seeds_error_reaches_the_caller_and_the_pool_goes_on(data: TrainingData) -> None:
    views = data.views.clone()
    views[:, :, 0, 0] = float("nan")
    poisoned = dataclasses.replace(data, views=views)
    with SeedPool(poisoned, processes=2) as pool:
        with pytest.raises(NonFiniteLossError, match="epoch 1"):
            pool.train(TOY, RECIPES[:2])
        assert not multiprocessing.active_children()  # the other seed was stopped
    with SeedPool(data, processes=2) as pool:
        pool.train(TOY, RECIPES[:2])
        pool.close()
        # Started again on the next call.
        assert len(pool.train(TOY, RECIPES[:2])) == 2


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_stops_the_workers_at_once(data: TrainingData) -> None:
    long = [dataclasses.replace(FAST, epochs=10_000, seed=s) for s in (0, 1)]
    pool = SeedPool(data, processes=2)
    pool.train(TOY, RECIPES[:2])  # the workers are up: the Ctrl-C lands mid-training
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            pool.train(TOY, long)
    finally:
        timer.cancel()
        pool.close(now=True)
    assert not multiprocessing.active_children()


def test_a_worker_killed_mid_training_is_an_error_not_a_hang(data: TrainingData) -> None:
    long = [dataclasses.replace(FAST, epochs=10_000, seed=s) for s in (0, 1)]
    with SeedPool(data, processes=2) as pool:
        pool.train(TOY, RECIPES[:2])  # the workers are up
        [victim, _] = multiprocessing.active_children()
        timer = threading.Timer(1.0, os.kill, (victim.pid, signal.SIGKILL))
        timer.start()
        try:
            with pytest.raises(WorkerDiedError, match=f"pid {victim.pid}"):
                pool.train(TOY, long)
        finally:
            timer.cancel()
    assert not multiprocessing.active_children()


def test_one_process_trains_here(data: TrainingData) -> None:
    with SeedPool(data, processes=1) as pool:
        results = pool.train(TOY, RECIPES[:2])
    assert not multiprocessing.active_children()
    assert results[0].best_val_au_fa_fr == train(TOY, RECIPES[0], data).best_val_au_fa_fr


STDIN_SCRIPT = """
import torch
from kws.model import CRNNConfig
from kws.seed_pool import SeedPool
from kws.training import TrainConfig, TrainingData

data = TrainingData(
    views=torch.randn(2, 64, 40, 101).half(), labels=torch.arange(64) % 2,
    val_features=torch.randn(32, 40, 101).half(), val_labels=torch.arange(32) % 2,
)
config = CRNNConfig(
    cnn_out_channels=2, kernel_size=(5, 10), stride=(4, 8), gru_num_layers=1, hidden_size=4
)
recipes = [TrainConfig(epochs=1, batch_size=32, epoch_examples=64, seed=s) for s in (0, 1)]
with SeedPool(data, processes=2) as pool:
    print(len(pool.train(config, recipes)), "seeds trained")
"""


def test_a_main_script_read_from_stdin_trains_its_seeds_here_not_in_workers_that_cannot_start(
    tmp_path,
) -> None:
    # A spawned worker runs the main script again from its path, here '<stdin>': each
    # failed at start and the pool started new ones forever (the script hung).
    result = subprocess.run(
        [sys.executable, "-"], input=STDIN_SCRIPT, cwd=tmp_path, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 seeds trained" in result.stdout
    assert "run it from a file" in result.stderr and "Traceback" not in result.stderr
