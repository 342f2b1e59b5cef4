"""Random CRNN architectures for the model and compression tests (importable by both: the
``tests`` folder is on pytest's ``pythonpath``)."""

from __future__ import annotations

import random

from kws.model import POOLINGS, CRNNConfig


def random_config(seed: int) -> CRNNConfig:
    """A config drawn from the ranges the search explores; every kernel fits 40 mel bands x
    101 frames (1 s) and 201 (2 s). Pooling and bias are drawn last, so the other fields
    are what they were before those choices existed."""
    rng = random.Random(seed)
    fields = {
        "cnn_out_channels": rng.randint(1, 16),
        "kernel_size": (rng.randint(3, 11), rng.randint(5, 25)),
        "stride": (rng.randint(1, 8), rng.randint(4, 16)),
        "gru_num_layers": rng.randint(1, 2),
        "hidden_size": rng.randint(4, 48),
        "bidirectional": rng.random() < 0.5,
    }
    return CRNNConfig(**fields, pooling=rng.choice(POOLINGS), bias=rng.random() < 0.5)
