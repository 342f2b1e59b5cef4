"""Size, MACs and score: hand counts, thop, torch's FlopCounterMode, the course's figures."""

from __future__ import annotations

import io
import warnings
import zipfile

import pytest
import torch
from crnn_configs import random_config
from torch.utils.flop_counter import FlopCounterMode

from kws import compression
from kws.compression import (
    CompressionReport,
    architecture_speedup,
    compression_rate,
    count_macs,
    measure,
    param_bytes,
    score,
    speedup,
    state_dict_bytes,
    to_fp16,
)
from kws.features import seconds_to_frames
from kws.model import BASE, CRNN, POOLINGS, CRNNConfig

with warnings.catch_warnings():
    # thop 0.1.1 imports distutils' LooseVersion at import time (deprecated, not our concern).
    warnings.simplefilter("ignore", DeprecationWarning)
    thop = pytest.importorskip("thop")

MIB = 2**20


# The bidirectional base is added by hand: it is the case where a second GRU layer reads
# both directions' outputs (input 2 * hidden), and these seeds do not happen to draw it.
CONFIGS = [BASE, CRNNConfig(bidirectional=True), *(random_config(seed) for seed in range(12))]
CONFIG_IDS = ["base", "base_bidirectional", *(f"random{seed}" for seed in range(12))]


def test_configs_cover_every_gru_variant() -> None:
    # thop and FlopCounterMode must be compared on bidirectional and multi-layer GRUs too.
    variants = {(c.bidirectional, c.gru_num_layers) for c in CONFIGS}
    assert variants == {(False, 1), (False, 2), (True, 1), (True, 2)}
    assert {(c.pooling, c.bias) for c in CONFIGS} == {
        (pooling, bias) for pooling in POOLINGS for bias in (True, False)
    }


def test_base_parameter_count() -> None:
    assert CRNN(BASE).num_params() == 25_387


def test_base_macs_hand_count() -> None:
    # 2 s -> 201 frames; conv output F' = (40 - 5) // 2 + 1 = 18, T' = (201 - 20) // 8 + 1 = 23.
    #   conv        8 * 18 * 23 * 1 * 5 * 20                                  = 331,200
    #   GRU layer 0 per step 3 * (144 + 32) * 32 + 13 * 32 = 16,896 + 416     =  17,312
    #   GRU layer 1 per step 3 * (32 + 32) * 32 + 13 * 32  =  6,144 + 416     =   6,560
    #   GRU         (17,312 + 6,560) * 23                                     = 549,056
    #   attention   (32 * 32 + 32 * 1) * 23                                   =  24,288
    #   classifier  32 * 2                                                    =      64
    #   total                                                                 = 904,608
    assert seconds_to_frames(2.0) == 201
    assert count_macs(BASE) == 331_200 + 549_056 + 24_288 + 64 == 904_608
    # 1 s -> 101 frames, T' = 11: 8*18*11*100 + 23,872*11 + 1,056*11 + 64.
    assert count_macs(BASE, seconds=1.0) == 158_400 + 262_592 + 11_616 + 64


def test_published_students_speedups() -> None:
    # background.md's table: parameter counts and S = 904,608 / MACs of three hand-tuned
    # students, reproduced from their architectures alone.
    best_kd = CRNNConfig(
        cnn_out_channels=2, kernel_size=(11, 20), stride=(7, 8), gru_num_layers=1, hidden_size=14
    )
    searched = CRNNConfig(
        cnn_out_channels=3, kernel_size=(5, 13), stride=(4, 8), gru_num_layers=2, hidden_size=9
    )
    seed_report = CRNNConfig(cnn_out_channels=4, stride=(4, 12), gru_num_layers=1, hidden_size=24)
    assert CRNN(best_kd).num_params() == 1_789
    assert CRNN(searched).num_params() == 1_884
    base_macs = count_macs(BASE)
    assert round(speedup(count_macs(best_kd), base_macs), 2) == 10.92
    assert round(speedup(count_macs(searched), base_macs), 2) == 10.65
    assert round(speedup(count_macs(seed_report), base_macs), 1) == 6.4
    # The same from the architecture alone, as the search reads it before building a model.
    assert round(architecture_speedup(best_kd), 2) == 10.92
    assert round(architecture_speedup(searched), 2) == 10.65
    assert round(architecture_speedup(seed_report), 1) == 6.4
    assert architecture_speedup(BASE) == 1.0


def _input(config: CRNNConfig, seconds: float = 2.0) -> torch.Tensor:
    return torch.randn(1, config.n_mels, seconds_to_frames(seconds))


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_count_macs_equals_thop(config: CRNNConfig) -> None:
    # thop/rnn_hooks.py count_gru: the first layer reads input_size, later layers read
    # hidden_size * 2 when bidirectional, and each direction is a full cell
    # (_count_gru_cell = 3 * (in + h) * h + 13 * h with bias) -- the same convention as
    # count_macs, so thop agrees on bidirectional and two-layer GRUs alike.
    model = CRNN(config).eval()
    with torch.no_grad():
        thop_macs, thop_params = thop.profile(model, inputs=(_input(config),), verbose=False)
    assert count_macs(config) == int(thop_macs)
    assert model.num_params() == int(thop_params)


def flop_counter_flops(config: CRNNConfig, frames: int) -> int:
    """What FlopCounterMode reports for one clip on CPU, found by experiment.

    It has formulas for aten.convolution, aten.mm and aten.addmm only, each 2 x the
    multiply-accumulates of the product (a bias folded into addmm is free). On CPU nn.GRU
    decomposes into matmuls: per layer and direction one input projection (T' x in) @
    (in x 3h) and per step one (1 x h) @ (h x 3h); its sigmoid/tanh/gate arithmetic is not
    counted. So this is thop's count without the 13 * h element-wise GRU terms, doubled.
    """
    steps = (frames - config.kernel_size[1]) // config.stride[1] + 1
    freq_bins = (config.n_mels - config.kernel_size[0]) // config.stride[0] + 1
    h = config.hidden_size
    directions = 2 if config.bidirectional else 1
    kf, kt = config.kernel_size
    conv = config.cnn_out_channels * freq_bins * steps * kf * kt
    gru = 0
    for layer in range(config.gru_num_layers):
        in_size = config.cnn_out_channels * freq_bins if layer == 0 else h * directions
        gru += directions * steps * (in_size * 3 * h + h * 3 * h)
    out = h * directions
    attention = steps * (out * out + out) if config.pooling == "attention" else 0
    return 2 * (conv + gru + attention + out * config.num_classes)


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_flop_counter_counts_twice_the_matmul_macs(config: CRNNConfig) -> None:
    model = CRNN(config).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(_input(config))
    frames = seconds_to_frames(2.0)
    assert counter.get_total_flops() == flop_counter_flops(config, frames)
    directions = 2 if config.bidirectional else 1
    steps = config.conv_frames(frames)
    per_unit = 13 if config.bias else 7  # thop's _count_gru_cell: 6 of the 13 are bias adds
    elementwise = per_unit * config.hidden_size * steps * config.gru_num_layers * directions
    assert counter.get_total_flops() == 2 * (count_macs(config) - elementwise)


def test_base_state_dict_size_near_course_figure() -> None:
    # The course quotes 0.1035 MiB (108,528 bytes); this torch writes 106,867 bytes into
    # memory. The 101,548 tensor bytes (25,387 x 4) are the same in both; the rest is the zip
    # archive, whose layout depends on the torch version (extra metadata records, 64-byte
    # alignment padding) and on the file name stem in every record name, hence a band.
    size = state_dict_bytes(CRNN(BASE))
    assert size == pytest.approx(0.1035 * MIB, rel=0.03)
    assert param_bytes(CRNN(BASE)) == 25_387 * 4


def test_state_dict_bytes_do_not_depend_on_weight_values() -> None:
    # What lets measure() cache the base size from one randomly initialised model.
    torch.manual_seed(0)
    first = CRNN(BASE)
    torch.manual_seed(1)
    assert state_dict_bytes(first) == state_dict_bytes(CRNN(BASE))


def _data_record_bytes(model: torch.nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    archive = zipfile.ZipFile(buffer)
    return sum(i.file_size for i in archive.infolist() if "/data/" in i.filename)


@pytest.mark.parametrize("config", CONFIGS[:5], ids=CONFIG_IDS[:5])
def test_fp16_halves_the_tensor_bytes(config: CRNNConfig) -> None:
    model = CRNN(config)
    half = to_fp16(model)
    assert param_bytes(half) * 2 == param_bytes(model)  # exact
    # Exact: the archive stores each tensor uncompressed as one data/ record.
    assert _data_record_bytes(model) == param_bytes(model)
    assert _data_record_bytes(half) == param_bytes(half)
    # Not exact: every record's payload is padded to a 64-byte boundary, and the offsets
    # shift when the tensors shrink; the pickle also names FloatStorage vs HalfStorage
    # (1 byte). BASE: 106,867 - 56,115 = 50,752 = 50,774 / 2 - 22.
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    records = len(zipfile.ZipFile(buffer).infolist())
    saved = state_dict_bytes(model) - state_dict_bytes(half)
    assert abs(saved - param_bytes(model) // 2) <= 64 * records


def test_to_fp16_copies() -> None:
    model = CRNN(BASE)
    half = to_fp16(model)
    assert half is not model and isinstance(half, CRNN)
    assert all(p.dtype == torch.float16 for p in half.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_score_and_ratios() -> None:
    assert score(1.0, 1.0) == pytest.approx(0.7)
    assert score(10.0, 12.0) == pytest.approx(3.5 + 4.2)
    assert compression_rate(1_000, 10_000) == 10.0
    assert speedup(90_000, 900_000) == 10.0
    with pytest.raises(ValueError, match="positive"):
        compression_rate(0, 10_000)
    with pytest.raises(ValueError, match="positive"):
        speedup(90_000, -1)


def test_measure_base_scores_one_on_both_axes() -> None:
    report = measure(CRNN(BASE))
    assert isinstance(report, CompressionReport)
    assert (report.params, report.param_bytes, report.macs) == (25_387, 101_548, 904_608)
    assert report.state_dict_bytes == state_dict_bytes(CRNN(BASE))
    assert report.compression_rate == report.speedup == 1.0
    assert report.score == pytest.approx(0.7)


def test_measure_counts_the_dtype_not_the_macs() -> None:
    base_bytes = state_dict_bytes(CRNN(BASE))
    report = measure(to_fp16(CRNN(BASE)))
    assert report.param_bytes == 50_774
    assert report.macs == 904_608 and report.speedup == 1.0
    # background.md says fp16 alone gives "about 1.95x"; this torch's archive gives ~1.90x.
    assert report.compression_rate == base_bytes / report.state_dict_bytes
    assert 1.85 < report.compression_rate < 2.0


def test_measure_leaves_the_global_rng_alone() -> None:
    model = CRNN(BASE)
    compression._base_state_dict_bytes.cache_clear()  # the next call builds the base model
    torch.manual_seed(123)
    measure(model)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(3), after)
