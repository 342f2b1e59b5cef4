"""Training one CRNN on cached features, with optional distillation from precomputed logits.

A study runs this a hundred times, so an epoch does no audio and no spectrogram work: the
training split's log-mel views sit in memory (fp16), a batch is an index into them, and
SpecAugment masks are drawn per batch. Teacher logits for every view are precomputed
(:mod:`kws.reference`), so the teacher never runs during training.

The trainer knows nothing of Optuna: after every epoch it calls ``on_epoch_end`` with an
:class:`EpochReport`, and whatever that raises (a pruning signal) propagates.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from kws.compression import to_fp16
from kws.config import ConfigError, config_from_dict
from kws.errors import UserError
from kws.features import SpecAugment
from kws.metrics import au_fa_fr
from kws.model import CRNN, CRNNConfig

LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and distillation settings. Defaults are the course's base recipe."""

    epochs: int = 20
    batch_size: int = 128
    learning_rate: float = 3e-4  # Adam
    weight_decay: float = 1e-5  # Adam's L2 term
    grad_clip: float = 5.0  # max gradient norm
    temperature: float = 1.0  # distillation softmax temperature T
    alpha: float = 0.0  # weight of the distillation term; 0 = plain cross-entropy
    epoch_examples: int = 0  # examples drawn per epoch; 0 = one per training clip
    patience: int = 0  # epochs without a better validation au_fa_fr before stopping; 0 = never
    # "constant", or "cosine": the learning rate decays to 0 over the recipe's epochs (per
    # step), so a student still improving at its last epoch settles instead of stopping
    # mid-descent.
    lr_schedule: str = "constant"
    fp16: bool = False  # deploy (and so validate) the half-precision model
    # Validate and keep an exponential moving average of the weights, updated every step
    # with this decay (0: the trained weights themselves): at a constant learning rate the
    # average sits nearer the minimum than the last step's weights do, which a cosine decay
    # reached only at the price of the steps at full rate (docs/benchmarks.md).
    ema_decay: float = 0.0
    freq_mask: int = 15  # SpecAugment: widest frequency mask, mel bands
    time_mask: int = 35  # SpecAugment: widest time mask, frames
    seed: int = 0

    def __post_init__(self) -> None:
        positive = ("epochs", "batch_size", "learning_rate", "temperature", "grad_clip")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(
                    f"TrainConfig.{name} must be positive, got {getattr(self, name)!r}"
                )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"TrainConfig.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                f"got {self.lr_schedule!r}"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"TrainConfig.ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"TrainConfig.alpha must be in [0, 1], got {self.alpha!r}")
        for name in ("weight_decay", "epoch_examples", "patience", "freq_mask", "time_mask"):
            if getattr(self, name) < 0:
                raise ConfigError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict (e.g. read from JSON); unknown keys are rejected by name, and a
        recipe written before a field existed gets the value it trained with
        (:data:`WRITTEN_BEFORE`)."""
        if isinstance(data, dict):
            data = {**WRITTEN_BEFORE, **data}
        return config_from_dict(cls, data)


# Fields a recipe (a checkpoint, an export, a reference cache) lacks when it was written
# before they existed, with the value it was trained with: no weight average.
WRITTEN_BEFORE: dict[str, Any] = {"ema_decay": 0.0}


BASE_RECIPE = TrainConfig()
"""The course's recipe for the base model: 20 epochs of Adam, no distillation."""


TRAINER_VERSION = 4  # bump when train() gives other weights for the same inputs (caches key on it)
_CHUNK = 1024  # about this many examples gathered and masked at once (16 MB in fp32)


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite; the run is stopped, nothing is returned."""


@dataclass(frozen=True)
class TrainingData:
    """What an epoch reads, already on the training device.

    ``views`` is ``(V, N, n_mels, frames)`` fp16: the clean training features and their
    augmented views; ``teacher_logits`` is ``(V, N, classes)`` for the same rows, or None
    (no distillation possible). ``val_features`` is ``(M, n_mels, frames)``. The first
    ``num_clips`` rows are the training clips and the rest extra examples (cut-off words):
    an epoch draws one example per clip by default, from all the rows.
    """

    views: torch.Tensor
    labels: torch.Tensor
    val_features: torch.Tensor
    val_labels: torch.Tensor
    teacher_logits: torch.Tensor | None = None
    num_clips: int = 0  # 0: every row is a clip

    def to(self, device: torch.device) -> TrainingData:
        moved = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return TrainingData(
            **{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in moved.items()}
        )


@dataclass(frozen=True)
class EpochReport:
    """One epoch's outcome, passed to ``on_epoch_end``."""

    epoch: int  # 1-based
    train_loss: float
    val_au_fa_fr: float  # of the fp32 model validated: the weights or their average (train())
    best_val_au_fa_fr: float  # best so far, this epoch included
    seconds: float  # wall time of the epoch, validation included
    train_seconds: float  # of which the training steps
    # The fp32 weights of the best epoch so far (a copy, not the live model's): what a
    # caller that stops training here (a pruner) would keep.
    best_state_dict: dict[str, torch.Tensor] = dataclasses.field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """The best epoch's fp32 weights (restored, not the last epoch's) and the history.

    ``best_val_au_fa_fr`` is the deployed model's: the half-precision model of those
    weights when the recipe deploys fp16.
    """

    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    best_val_au_fa_fr: float
    history: tuple[EpochReport, ...]
    stopped_early: bool


def distillation_loss(
    student_logits: torch.Tensor,
    targets: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, targets)``.

    Shapes: logits ``(B, classes)``, targets ``(B,)``. ``_T`` is a softmax at temperature
    T; the T^2 factor keeps the soft term's gradients on the scale of the hard term's
    (Hinton et al., 2015). KL is averaged over the batch, like the cross-entropy.
    """
    hard = F.cross_entropy(student_logits, targets)
    if alpha == 0.0:
        return hard
    if teacher_logits is None:
        raise ValueError("alpha > 0 needs teacher logits")
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.log_softmax(teacher_logits / temperature, dim=-1),
        log_target=True,
        reduction="batchmean",
    )
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


@torch.no_grad()
def predict_logits(model: CRNN, features: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits ``(N, classes)`` in float32 for features ``(N, n_mels, frames)`` (any dtype).

    Runs in eval mode, in the model's own dtype and device, and restores the mode.
    """
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    outputs = [
        model(features[start : start + batch_size].to(parameter.device, parameter.dtype)).float()
        for start in range(0, len(features), batch_size)
    ]
    model.train(was_training)
    return torch.cat(outputs)


def keyword_probs(model: CRNN, features: torch.Tensor, fp16: bool = False) -> torch.Tensor:
    """Probability of the keyword class (index 1) per clip, of the fp16 model if asked."""
    deployed = to_fp16(model) if fp16 else model
    return torch.softmax(predict_logits(deployed, features), dim=-1)[:, 1]


def evaluate_au_fa_fr(
    model: CRNN, features: torch.Tensor, labels: torch.Tensor, fp16: bool = False
) -> float:
    """au_fa_fr of the deployed model (half precision when ``fp16``) on one split."""
    return au_fa_fr(keyword_probs(model, features, fp16).cpu(), labels.cpu())


@torch.no_grad()
def _update_average(averaged: CRNN, model: CRNN, decay: float) -> None:
    """``averaged <- decay * averaged + (1 - decay) * model``, parameter by parameter."""
    for average, current in zip(averaged.parameters(), model.parameters(), strict=True):
        average.lerp_(current, 1.0 - decay)


def train(
    config: CRNNConfig,
    recipe: TrainConfig,
    data: TrainingData,
    on_epoch_end: Callable[[EpochReport], None] | None = None,
) -> TrainResult:
    """Train ``CRNN(config)`` on ``data`` (on its device) and return the best epoch.

    Each epoch draws ``recipe.epoch_examples`` examples (default: as many as there are
    training clips, as in the course) with class-balanced probabilities (the base recipe's
    weighted sampler), each from a uniformly chosen view; SpecAugment masks every batch.
    The fp32 model is validated after every epoch, the best weights are kept, and training
    stops after ``recipe.patience`` epochs without improvement. With ``recipe.ema_decay``
    the model validated and kept is the moving average of the weights after every step,
    with the decay warmed up as ``min(ema_decay, (1 + step) / (10 + step))`` so that the
    first epochs' average is not mostly the initial weights (the pruner judges epoch 2).
    With ``recipe.fp16`` the kept weights are then validated once more as the deployed
    half-precision model, and that is the result's ``best_val_au_fa_fr``: half inference on
    a CPU is about 7x slower than fp32, so doing it every epoch would double the cost of an
    fp16 trial, while the half model's au_fa_fr differs little from the fp32 one's (the
    study records both).

    Training runs on one intra-op thread: how many threads split a sum changes the weights
    in their last bits (BASE's au_fa_fr moves in the 7th digit), so on one thread a seed
    trains to the same weights in any process on any core count, and the cores serve to
    train several seeds or trials side by side (:mod:`kws.seed_pool`, ``--n-jobs``). On
    one thread against two, a student's epochs take 1.13-1.18 x the time and BASE's 1.35 x
    (AMD EPYC, ``benchmarks/bench_seed_pool.py``), which two seeds side by side repay.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(config, recipe, data, on_epoch_end)
    finally:
        torch.set_num_threads(threads)


def _train(
    config: CRNNConfig,
    recipe: TrainConfig,
    data: TrainingData,
    on_epoch_end: Callable[[EpochReport], None] | None,
) -> TrainResult:
    device = data.views.device
    torch.manual_seed(recipe.seed)  # weights and SpecAugment masks
    sampler = torch.Generator(device="cpu").manual_seed(recipe.seed)
    model = CRNN(config).to(device)
    # fused: one kernel for all parameters instead of a handful of ops per tensor, which
    # for a model of a few thousand weights is most of the optimizer's cost.
    optimizer = torch.optim.Adam(
        model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay, fused=True
    )
    spec_augment = SpecAugment(recipe.freq_mask, recipe.time_mask).train()
    num_views, num_rows = data.views.shape[:2]
    epoch_examples = recipe.epoch_examples or data.num_clips or num_rows
    chunk_size = recipe.batch_size * max(1, _CHUNK // recipe.batch_size)  # whole batches
    class_counts = torch.bincount(data.labels.cpu(), minlength=config.num_classes).clamp_min(1)
    weights = (1.0 / class_counts.double())[data.labels.cpu()]
    # Every chunk is gathered and masked into the same two buffers: allocating fresh
    # tensors of this size costs page faults that take longer than the work done in them.
    flat_views = data.views.flatten(0, 1)  # (V * N, n_mels, frames); row v * N + n
    gathered = flat_views.new_empty((chunk_size, *flat_views.shape[1:]))
    features = torch.empty(gathered.shape, device=device)

    averaged = copy.deepcopy(model) if recipe.ema_decay else model
    steps_per_epoch = math.ceil(epoch_examples / recipe.batch_size)
    total_steps, step = recipe.epochs * steps_per_epoch, 0

    best_state: dict[str, torch.Tensor] = {}
    best_epoch, best_value, history = 0, math.inf, []
    for epoch in range(1, recipe.epochs + 1):
        start = time.perf_counter()
        rows = torch.multinomial(weights, epoch_examples, replacement=True, generator=sampler)
        views = torch.randint(num_views, (epoch_examples,), generator=sampler)
        flat_rows = (views * num_rows + rows).to(device)
        rows = rows.to(device)
        model.train()
        loss_sum = 0.0
        for chunk in range(0, epoch_examples, chunk_size):
            # Gather, convert and mask a chunk of batches at once: per-batch indexing and
            # masking cost more than the forward pass of a model of a few thousand weights.
            index = flat_rows[chunk : chunk + chunk_size]
            size = len(index)
            torch.index_select(flat_views, 0, index, out=gathered[:size])
            chunk_features = spec_augment.mask_(features[:size].copy_(gathered[:size]))
            targets = data.labels[rows[chunk : chunk + chunk_size]]
            teacher = (
                None if data.teacher_logits is None else data.teacher_logits.flatten(0, 1)[index]
            )
            for first in range(0, size, recipe.batch_size):
                batch = slice(first, first + recipe.batch_size)
                loss = distillation_loss(
                    model(chunk_features[batch]),
                    targets[batch],
                    None if teacher is None else teacher[batch],
                    recipe.temperature,
                    recipe.alpha,
                )
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    batch_index = (chunk + first) // recipe.batch_size
                    raise NonFiniteLossError(
                        f"loss is {loss_value} at epoch {epoch}, batch {batch_index}"
                        f" (learning rate {recipe.learning_rate})"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
                if recipe.lr_schedule == "cosine":
                    decay = 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
                    optimizer.param_groups[0]["lr"] = recipe.learning_rate * decay
                optimizer.step()
                step += 1
                if recipe.ema_decay:
                    _update_average(
                        averaged, model, min(recipe.ema_decay, (1 + step) / (10 + step))
                    )
                loss_sum += loss_value * min(recipe.batch_size, size - first)

        train_seconds = time.perf_counter() - start
        value = evaluate_au_fa_fr(averaged, data.val_features, data.val_labels)
        if value < best_value:
            best_epoch, best_value = epoch, value
            best_state = copy.deepcopy(averaged.state_dict())
        report = EpochReport(
            epoch=epoch,
            train_loss=loss_sum / epoch_examples,
            val_au_fa_fr=value,
            best_val_au_fa_fr=best_value,
            seconds=time.perf_counter() - start,
            train_seconds=train_seconds,
            best_state_dict=best_state,
        )
        history.append(report)
        if on_epoch_end is not None:
            on_epoch_end(report)
        if recipe.patience and epoch - best_epoch >= recipe.patience:
            break
    if recipe.fp16:
        averaged.load_state_dict(best_state)
        best_value = evaluate_au_fa_fr(averaged, data.val_features, data.val_labels, fp16=True)
    return TrainResult(
        state_dict={name: tensor.cpu() for name, tensor in best_state.items()},
        best_epoch=best_epoch,
        best_val_au_fa_fr=best_value,
        history=tuple(history),
        stopped_early=len(history) < recipe.epochs,
    )
