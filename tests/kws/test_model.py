"""kws.model: the CRNN family against hand counts, closed forms, nn.Conv2d and invariants.

Nothing here re-uses the code's own formulas: parameter counts come from a closed form
written below, conv output sizes from running ``nn.Conv2d``, attention from the
submodules' outputs recombined in numpy.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from crnn_configs import random_config

from kws.model import BASE, CRNN, AttentionPooling, CRNNConfig

CLIP_FRAMES = 101  # 1 s of 16 kHz audio, hop 160, centred frames
TWO_SECOND_FRAMES = 201
N_MELS = 40


# --------------------------------------------------------------------------- helpers


def closed_form_params(config: CRNNConfig) -> int:
    """Parameters of Conv2d -> GRU -> pooling -> Linear, from first principles.

    conv: out * in(1) * kf * kt weights + out biases.
    GRU, per layer and direction: 3 gates x (input*h + h*h + 2 biases of h); the first
    layer's input is channels x F' with F' = floor((n_mels - kf) / sf) + 1, later layers
    read h * directions.
    attention over D = h * directions: Linear(D, D) (D*D + D) and Linear(D, 1) (D + 1);
    a mean pooling has none.
    classifier: Linear(D, classes).
    Without biases, every bias term above (but the attention's) is gone.
    """
    channels = config.cnn_out_channels
    kf, kt = config.kernel_size
    sf, _ = config.stride
    h = config.hidden_size
    directions = 2 if config.bidirectional else 1
    d = h * directions
    freq_bins = math.floor((config.n_mels - kf) / sf) + 1

    biases = 1 if config.bias else 0
    conv = channels * 1 * kf * kt + biases * channels
    gru = 0
    for layer in range(config.gru_num_layers):
        layer_input = channels * freq_bins if layer == 0 else d
        gru += directions * 3 * (layer_input * h + h * h + biases * 2 * h)
    attention = d * d + d + d + 1 if config.pooling == "attention" else 0
    classifier = d * config.num_classes + biases * config.num_classes
    return conv + gru + attention + classifier


# Seeds 8..19 happen to draw every (layers, bidirectional) combination (checked below).
RANDOM_CONFIGS = [random_config(seed) for seed in range(8, 20)]


def config_id(config: CRNNConfig) -> str:
    kf, kt = config.kernel_size
    sf, st = config.stride
    direction = "bi" if config.bidirectional else "uni"
    bias = "" if config.bias else "_nobias"
    return (
        f"c{config.cnn_out_channels}_k{kf}x{kt}_s{sf}x{st}"
        f"_l{config.gru_num_layers}_h{config.hidden_size}_{direction}_{config.pooling}{bias}"
    )


# Toy sizes in the spirit of kws_streaming's toy params: a handful of units per layer.
TOY_CONFIGS = {
    "toy": CRNNConfig(cnn_out_channels=4, hidden_size=4, gru_num_layers=1),
    "toy_bidirectional": CRNNConfig(
        cnn_out_channels=4, hidden_size=4, gru_num_layers=1, bidirectional=True
    ),
    "toy_two_layers": CRNNConfig(cnn_out_channels=4, hidden_size=4, gru_num_layers=2),
    "toy_bidirectional_two_layers": CRNNConfig(
        cnn_out_channels=4, hidden_size=4, gru_num_layers=2, bidirectional=True
    ),
    "toy_three_classes": CRNNConfig(
        cnn_out_channels=2,
        kernel_size=(11, 20),
        stride=(7, 8),
        hidden_size=6,
        gru_num_layers=1,
        num_classes=3,
    ),
    "base": BASE,
}


def seeded_model(config: CRNNConfig, seed: int = 0) -> CRNN:
    torch.manual_seed(seed)
    return CRNN(config).eval()


def features(batch: int, frames: int = CLIP_FRAMES, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, N_MELS, frames, generator=generator)


# --------------------------------------------------------------------------- size


def test_base_has_exactly_25387_parameters() -> None:
    # Hand count of the course's model:
    #   conv        8*1*5*20 + 8                    =    808
    #   F' = (40 - 5) // 2 + 1 = 18, GRU input 8 * 18 = 144
    #   GRU layer 1 3*(144*32 + 32*32 + 2*32)       = 17,088
    #   GRU layer 2 3*(32*32 + 32*32 + 2*32)        =  6,336
    #   attention   32*32 + 32 + 32 + 1             =  1,089
    #   classifier  32*2 + 2                        =     66
    #   total                                       = 25,387
    hand_count = (
        (8 * 1 * 5 * 20 + 8)
        + 3 * (144 * 32 + 32 * 32 + 2 * 32)
        + 3 * (32 * 32 + 32 * 32 + 2 * 32)
        + (32 * 32 + 32 + 32 + 1)
        + (32 * 2 + 2)
    )
    assert hand_count == 25_387
    model = CRNN(BASE)
    assert model.num_params() == 25_387
    assert sum(p.numel() for p in model.parameters()) == 25_387
    assert closed_form_params(BASE) == 25_387


def test_random_configs_cover_both_gru_depths_and_directions() -> None:
    variants = {(c.gru_num_layers, c.bidirectional) for c in RANDOM_CONFIGS}
    assert {(c.pooling, c.bias) for c in RANDOM_CONFIGS} == {
        (pooling, bias) for pooling in ("attention", "mean") for bias in (True, False)
    }
    assert variants == {(1, False), (1, True), (2, False), (2, True)}


@pytest.mark.parametrize("config", RANDOM_CONFIGS, ids=config_id)
def test_num_params_matches_closed_form_on_random_configs(config: CRNNConfig) -> None:
    model = CRNN(config)
    expected = closed_form_params(config)
    assert model.num_params() == expected
    assert sum(p.numel() for p in model.parameters()) == expected


# --------------------------------------------------------------------------- state dict


def course_state_dict_keys(config: CRNNConfig) -> list[str]:
    """The course's keys; without biases the ``bias`` ones go, with mean pooling the
    attention's."""
    keys = ["conv.0.weight", "conv.0.bias"]
    suffixes = ["", "_reverse"] if config.bidirectional else [""]
    for layer in range(config.gru_num_layers):
        for suffix in suffixes:
            keys += [
                f"gru.{name}_l{layer}{suffix}"
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ]
    if config.pooling == "attention":
        keys += [
            "attention.energy.0.weight",
            "attention.energy.0.bias",
            "attention.energy.2.weight",
            "attention.energy.2.bias",
        ]
    keys += ["classifier.weight", "classifier.bias"]
    if not config.bias:
        keys = [key for key in keys if "bias" not in key or key.startswith("attention.")]
    return keys


def test_base_state_dict_keys_and_shapes_are_the_courses() -> None:
    state = CRNN(BASE).state_dict()
    assert list(state) == [
        "conv.0.weight",
        "conv.0.bias",
        "gru.weight_ih_l0",
        "gru.weight_hh_l0",
        "gru.bias_ih_l0",
        "gru.bias_hh_l0",
        "gru.weight_ih_l1",
        "gru.weight_hh_l1",
        "gru.bias_ih_l1",
        "gru.bias_hh_l1",
        "attention.energy.0.weight",
        "attention.energy.0.bias",
        "attention.energy.2.weight",
        "attention.energy.2.bias",
        "classifier.weight",
        "classifier.bias",
    ]
    shapes = {key: tuple(value.shape) for key, value in state.items()}
    assert shapes == {
        "conv.0.weight": (8, 1, 5, 20),
        "conv.0.bias": (8,),
        "gru.weight_ih_l0": (96, 144),
        "gru.weight_hh_l0": (96, 32),
        "gru.bias_ih_l0": (96,),
        "gru.bias_hh_l0": (96,),
        "gru.weight_ih_l1": (96, 32),
        "gru.weight_hh_l1": (96, 32),
        "gru.bias_ih_l1": (96,),
        "gru.bias_hh_l1": (96,),
        "attention.energy.0.weight": (32, 32),
        "attention.energy.0.bias": (32,),
        "attention.energy.2.weight": (1, 32),
        "attention.energy.2.bias": (1,),
        "classifier.weight": (2, 32),
        "classifier.bias": (2,),
    }


@pytest.mark.parametrize("config", RANDOM_CONFIGS, ids=config_id)
def test_state_dict_keys_follow_course_naming(config: CRNNConfig) -> None:
    keys = list(CRNN(config).state_dict())
    assert keys == course_state_dict_keys(config)


def test_course_style_checkpoint_loads_strictly() -> None:
    source = seeded_model(BASE, seed=1)
    # A checkpoint as the course wrote it: a plain dict of tensors, keys as above.
    checkpoint = {key: value.clone() for key, value in source.state_dict().items()}
    target = seeded_model(BASE, seed=2)
    target.load_state_dict(checkpoint, strict=True)
    x = features(2)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x))


# --------------------------------------------------------------------------- config


def test_config_is_frozen() -> None:
    config = CRNNConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden_size = 8  # type: ignore[misc]


def test_equal_configs_are_equal_and_hash_equal() -> None:
    a = CRNNConfig(kernel_size=[5, 20], stride=[2, 8])  # type: ignore[arg-type]
    assert a == BASE
    assert hash(a) == hash(BASE)
    assert a.kernel_size == (5, 20) and isinstance(a.kernel_size, tuple)
    assert isinstance(a.stride, tuple)


@pytest.mark.parametrize("config", [BASE, *RANDOM_CONFIGS[:4]], ids=config_id)
def test_config_round_trips_through_json(config: CRNNConfig) -> None:
    text = config.to_json()
    raw = json.loads(text)
    assert isinstance(raw["kernel_size"], list)  # JSON has no tuples
    restored = CRNNConfig.from_json(text)
    assert restored == config
    assert isinstance(restored.kernel_size, tuple)
    assert isinstance(restored.stride, tuple)
    assert CRNNConfig.from_dict(config.to_dict()) == config
    assert CRNNConfig.from_dict(raw) == config


def test_to_dict_lists_every_field() -> None:
    assert set(BASE.to_dict()) == {f.name for f in dataclasses.fields(CRNNConfig)}


def test_from_dict_rejects_unknown_keys_naming_them() -> None:
    data = {**BASE.to_dict(), "hiden_size": 8, "activation": "relu"}
    with pytest.raises(ValueError, match=r"activation.*hiden_size"):
        CRNNConfig.from_dict(data)


def test_from_dict_refuses_missing_keys_by_name() -> None:
    # A missing key would silently take today's default and describe another model.
    with pytest.raises(ValueError, match=r"missing field.*cnn_out_channels"):
        CRNNConfig.from_dict({"hidden_size": 9})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cnn_out_channels", 0),
        ("cnn_out_channels", -2),
        ("hidden_size", 0),
        ("hidden_size", -1),
        ("hidden_size", 32.0),
        ("gru_num_layers", 0),
        ("n_mels", 0),
        ("kernel_size", (5, 20, 3)),
        ("kernel_size", (5,)),
        ("kernel_size", 5),
        ("kernel_size", (0, 20)),
        ("stride", (2, 8, 1)),
        ("stride", (2, 0)),
        ("hidden_size", True),
        ("cnn_out_channels", True),
        ("gru_num_layers", False),
        ("kernel_size", (True, 20)),
        ("stride", (2, True)),
        ("bidirectional", 1),
        ("dropout", 1.0),
        ("dropout", -0.1),
        ("num_classes", 1),
        ("num_classes", 0),
    ],
)
def test_invalid_config_raises_value_error_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        CRNNConfig(**{field: value})


@pytest.mark.parametrize("kf", [41, 60])
def test_frequency_kernel_larger_than_n_mels_is_rejected_by_config(kf: int) -> None:
    with pytest.raises(ValueError, match=r"kernel_size[\s\S]*n_mels"):
        CRNNConfig(kernel_size=(kf, 20))


def test_frequency_kernel_equal_to_n_mels_is_allowed() -> None:
    config = CRNNConfig(kernel_size=(40, 20))
    model = CRNN(config).eval()
    with torch.no_grad():
        assert model(features(2)).shape == (2, 2)


@pytest.mark.parametrize("kt", [102, 120])
def test_time_kernel_longer_than_a_clip_is_rejected_by_the_model(kt: int) -> None:
    config = CRNNConfig(kernel_size=(5, kt))  # fine as a config: frames are not known yet
    with pytest.raises(ValueError, match=rf"kernel[\s\S]*{kt}[\s\S]*{CLIP_FRAMES} frames"):
        CRNN(config)


def test_time_kernel_of_exactly_one_clip_is_allowed() -> None:
    model = CRNN(CRNNConfig(kernel_size=(5, CLIP_FRAMES), stride=(2, 8))).eval()
    with torch.no_grad():
        assert model(features(1)).shape == (1, 2)


def test_min_frames_sets_the_longest_time_kernel_allowed() -> None:
    config = CRNNConfig(kernel_size=(5, 150))
    with pytest.raises(ValueError, match=r"150[\s\S]*101 frames"):
        CRNN(config)
    model = CRNN(config, min_frames=TWO_SECOND_FRAMES).eval()
    with torch.no_grad():
        assert model(features(2, TWO_SECOND_FRAMES)).shape == (2, 2)


def test_single_layer_gru_has_no_dropout() -> None:
    assert CRNN(CRNNConfig(gru_num_layers=1, dropout=0.1)).gru.dropout == 0.0
    assert CRNN(CRNNConfig(gru_num_layers=2, dropout=0.1)).gru.dropout == pytest.approx(0.1)


# --------------------------------------------------------------------------- conv geometry


@pytest.mark.parametrize("config", [BASE, *RANDOM_CONFIGS], ids=config_id)
def test_conv_geometry_matches_what_conv2d_produces(config: CRNNConfig) -> None:
    conv = torch.nn.Conv2d(1, config.cnn_out_channels, config.kernel_size, stride=config.stride)
    for frames in (CLIP_FRAMES, TWO_SECOND_FRAMES):
        out = conv(torch.zeros(1, 1, N_MELS, frames))
        _, channels, freq_bins, time_steps = out.shape
        assert config.conv_frequency_bins == freq_bins
        assert config.conv_frames(frames) == time_steps
        assert config.gru_input_size == channels * freq_bins
    # ... and the model's own conv block feeds the GRU exactly that many features.
    model = CRNN(config)
    flat = model.conv(torch.zeros(1, 1, N_MELS, CLIP_FRAMES))
    assert flat.shape == (1, model.gru.input_size, config.conv_frames(CLIP_FRAMES))


def test_base_conv_geometry_by_hand() -> None:
    # (40 - 5) // 2 + 1 = 18 bins; (101 - 20) // 8 + 1 = 11 and (201 - 20) // 8 + 1 = 23 steps.
    assert BASE.conv_frequency_bins == 18
    assert BASE.gru_input_size == 144
    assert BASE.conv_frames(CLIP_FRAMES) == 11
    assert BASE.conv_frames(TWO_SECOND_FRAMES) == 23


def test_conv_frames_rejects_input_shorter_than_time_kernel() -> None:
    with pytest.raises(ValueError, match=r"20[\s\S]*19 frames"):
        BASE.conv_frames(19)


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("name", list(TOY_CONFIGS))
@pytest.mark.parametrize("frames", [CLIP_FRAMES, TWO_SECOND_FRAMES])
def test_forward_maps_features_to_logits(name: str, frames: int) -> None:
    config = TOY_CONFIGS[name]
    model = seeded_model(config)
    with torch.no_grad():
        out = model(features(3, frames))
    assert out.shape == (3, config.num_classes)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["base", "toy_bidirectional_two_layers"])
@pytest.mark.parametrize("frames", [CLIP_FRAMES, TWO_SECOND_FRAMES])
def test_each_clip_alone_equals_its_batch_row_in_eval(name: str, frames: int) -> None:
    model = seeded_model(TOY_CONFIGS[name])
    x = features(5, frames, seed=3)
    with torch.no_grad():
        batched = model(x)
        for i in range(len(x)):
            alone = model(x[i : i + 1])
            # fp32 logits below 1 (a step of at most 6e-8): a batch of 1 and one of 5 may
            # take other kernels and summation orders on other CPUs; 1e-5 is ~170 steps.
            torch.testing.assert_close(alone[0], batched[i], atol=1e-5, rtol=0.0)


def test_eval_forward_is_deterministic_despite_dropout() -> None:
    model = seeded_model(BASE)
    x = features(4)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", list(TOY_CONFIGS))
def test_output_depends_on_the_input(name: str) -> None:
    model = seeded_model(TOY_CONFIGS[name])
    with torch.no_grad():
        a = model(features(4, seed=10))
        b = model(features(4, seed=11))
    assert (a - b).abs().max() > 1e-4
    # Different clips within one batch get different logits too.
    assert (a[0] - a[1]).abs().max() > 1e-5


def test_gradient_reaches_every_parameter() -> None:
    model = seeded_model(BASE).train()
    loss = model(features(4)).logsumexp(dim=1).sum()
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


# --------------------------------------------------------------------------- attention


def _softmax(values: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("name", ["base", "toy_bidirectional_two_layers"])
def test_attention_is_a_softmax_over_time_weighted_mean_of_gru_outputs(name: str) -> None:
    model = seeded_model(TOY_CONFIGS[name])
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        model.gru.register_forward_hook(lambda m, i, o: captured.__setitem__("gru", o[0])),
        model.attention.energy.register_forward_hook(
            lambda m, i, o: captured.__setitem__("energy", o)
        ),
        model.attention.register_forward_hook(lambda m, i, o: captured.__setitem__("pool", o)),
    ]
    try:
        with torch.no_grad():
            model(features(3, TWO_SECOND_FRAMES))
    finally:
        for hook in hooks:
            hook.remove()
    sequence = captured["gru"].double().numpy()  # (B, T, D)
    energy = captured["energy"].double().numpy()  # (B, T, 1)
    pooled = captured["pool"].double().numpy()  # (B, D)
    batch, steps, width = sequence.shape
    assert steps == TOY_CONFIGS[name].conv_frames(TWO_SECOND_FRAMES)
    assert energy.shape == (batch, steps, 1)
    assert pooled.shape == (batch, width)

    weights = _softmax(energy[..., 0], axis=1)  # over time
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(pooled, np.einsum("bt,btd->bd", weights, sequence), atol=1e-6)
    # A convex combination over time stays inside each feature's range over time.
    assert np.all(pooled >= sequence.min(axis=1) - 1e-6)
    assert np.all(pooled <= sequence.max(axis=1) + 1e-6)


def test_attention_of_a_constant_sequence_is_that_constant() -> None:
    # For arbitrary energies, pooling a constant sequence returns it iff the attention
    # weights sum to 1 over time (a softmax over features, or no normalisation, fails).
    torch.manual_seed(0)
    pooling = AttentionPooling(6)
    step = torch.randn(2, 1, 6)
    for steps in (1, 7, 30):
        with torch.no_grad():
            out = pooling(step.expand(2, steps, 6).contiguous())
        torch.testing.assert_close(out, step[:, 0], atol=1e-6, rtol=1e-6)


def test_attention_is_invariant_to_the_order_of_time_steps() -> None:
    torch.manual_seed(0)
    pooling = AttentionPooling(5)
    x = torch.randn(3, 9, 5)
    permutation = torch.randperm(9)
    with torch.no_grad():
        torch.testing.assert_close(pooling(x[:, permutation]), pooling(x), atol=1e-6, rtol=1e-6)


# --------------------------------------------------------------------------- fp16


def test_half_model_runs_on_cpu_close_to_fp32() -> None:
    model = seeded_model(BASE, seed=0)
    half = seeded_model(BASE, seed=123)
    half.load_state_dict(model.state_dict())
    half = half.half().eval()
    x = features(8, seed=5)
    with torch.no_grad():
        reference = model(x)
        out = half(x.half())
    assert out.dtype == torch.float16
    assert out.shape == reference.shape
    torch.testing.assert_close(out.float(), reference, atol=1e-2, rtol=0.0)
    # The fp16 model is not trivially equal: it really computed in half precision.
    assert all(p.dtype == torch.float16 for p in half.parameters())
