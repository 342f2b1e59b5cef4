"""Running a study: prepare data and reference once, then workers run trials until N trained.

``--trials N`` is the study's total of trained trials (completed or pruned; a proposal
skipped untrained does not count): every worker (in this process, in ``--n-jobs`` worker
processes, or on other machines sharing the storage) only starts a trial while fewer than N
trials are trained or running, and a trial that finds itself past N (two workers raced for
the last place) is recorded as failed without training. A running trial holds a place
until it ends, even one about to be skipped. A rerun of the same command after Ctrl-C or a
crash continues to N.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import math
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState
from tqdm import tqdm

from kws.augment import AugmentationConfig
from kws.data import open_dataset
from kws.device import configure_threads, cores_per_worker, resolve_device
from kws.errors import UserError
from kws.feature_cache import CachedFeatures, known_feature_cache_key, load_or_build_features
from kws.files import check_writable
from kws.model import BASE
from kws.reference import TrainedModel, load_or_train_seeds, training_data
from kws.seed_pool import SeedPool
from kws.speech_commands import SpeechCommandsIndex, require_evaluable
from kws.training import BASE_RECIPE, TrainConfig, TrainingData
from study.attributes import (
    AU_FA_FR,
    AU_FA_FR_PER_EPOCH,
    AU_FA_FR_SEEDS,
    BAR,
    CONFIRMATION_EPOCHS,
    FAIL_REASON,
    FEATURE_KEY,
    PRUNED_REASON,
    REQUEUED_FROM,
    SKIPPED,
    counts_toward_budget,
    trained,
)
from study.figures import best_trial_curve, reference_attributes, save_figures, study_figures
from study.interrupt import interrupts_outside_storage
from study.objective import NO_FLOORS, Objective, best_feasible
from study.pruning import make_pruner
from study.records import artifact_store
from study.sampler import MAX_PROPOSALS, make_sampler
from study.search_space import WARM_START
from study.settings import StudySettings, changed_trial_fields, replayed
from study.storage import MAX_RETRY, make_storage, quiet_optuna, sqlite_path

METRIC_NAME = "penalized_score"
POLL_S = 2.0  # how often a waiting worker and the progress monitor look at the storage
SURPLUS = "surplus"  # user attribute of a trial failed for exceeding --trials
WORKER = "worker"  # user attribute: which process ran the trial, as host:pid
# SQLite answers "database is locked" at once to one of two connections that both want to
# write; a moment later the write goes through.
REQUEUE_ATTEMPTS = 3
FIGURES_EVERY = 10  # trained trials between two redraws of the dashboard's figures
RETRY_WINDOW_S = 30.0  # longest a stale trial's retry may take to be enqueued
MAX_FAILURES_IN_A_ROW = 10  # a worker whose trials all fail stops instead of looping
# A skipped proposal means the sampler found nothing that could beat the best in
# MAX_PROPOSALS draws; this many in a row, and the search is over.
MAX_SKIPS_IN_A_ROW = 10


class StudyFullError(RuntimeError):
    """This trial would exceed the study's ``--trials``; it is failed without training."""


@dataclass(frozen=True)
class Prepared:
    """Everything a worker needs besides the storage."""

    features: CachedFeatures
    references: tuple[TrainedModel, ...]  # BASE on the study's reference seeds
    bar: float

    @property
    def reference(self) -> TrainedModel:
        """The teacher: the reference trained on the study's own seed."""
        return self.references[0]

    @property
    def reference_val_au_fa_fr(self) -> float:
        """Mean over the reference seeds: what the bar is 1.1 x."""
        return _mean_val_au_fa_fr(self.references)

    @property
    def reference_test_au_fa_fr(self) -> float:
        return statistics.fmean(r.test_au_fa_fr for r in self.references)


class DataChangedError(UserError):
    """The study's data is not what the study was created with (another feature cache key)."""


def prepare(settings: StudySettings, feature_key: str | None = None) -> Prepared:
    """Dataset, feature cache and reference model (each loaded from its cache when present).

    ``feature_key`` is the data's identity recorded by an existing study: data that hashes
    otherwise (a folder changed in place, another dataset under the same path) is refused
    before any feature or model is made, whatever path names it.

    Raises:
        DatasetError: a held-out split cannot give a meaningful au_fa_fr.
        DataChangedError: the data differs from ``feature_key``'s.
    """
    device = resolve_device(settings.device)
    index = study_dataset(settings)
    require_evaluable(index)
    features = prepare_features(settings, feature_key, index)
    seeds = range(settings.seed, settings.seed + settings.reference_seeds)
    label = f"reference (BASE) seed {seeds[0]}" + (f"-{seeds[-1]}" if len(seeds) > 1 else "")
    references = tuple(
        load_or_train_seeds(
            features,
            BASE,
            [dataclasses.replace(BASE_RECIPE, seed=seed) for seed in seeds],
            settings.model_dir,
            device,
            cores_per_worker(),
            progress=label if settings.progress else None,
        )
    )
    bar = settings.max_au_fa_fr or 1.1 * _mean_val_au_fa_fr(references)
    return Prepared(features=features, references=references, bar=bar)


def study_dataset(settings: StudySettings) -> SpeechCommandsIndex:
    """The index of the study's clips (the embedded dataset is made on first use)."""
    return open_dataset(
        settings.data,
        settings.data_dir,
        settings.keyword,
        embedded=settings.embedded(),
        progress=settings.progress,
    )


def prepare_features(
    settings: StudySettings,
    feature_key: str | None = None,
    index: SpeechCommandsIndex | None = None,
) -> CachedFeatures:
    """The study's feature cache, built unless cached: what ``run_study.py prepare`` makes,
    and the first step of :func:`prepare` (see it for ``feature_key``). ``index`` is
    :func:`study_dataset`'s when the caller has it already."""
    index = index or study_dataset(settings)
    augmentation = AugmentationConfig(seed=settings.seed)
    key = known_feature_cache_key(index, augmentation, settings.feature_dir, settings.progress)
    if feature_key is not None and key != feature_key:
        raise DataChangedError(
            f"--data {settings.data}: these clips differ from those study '{settings.name}' "
            f"was created with (feature cache key {feature_key} -> {key}), so its trials "
            "would not be comparable; restore the data, or start a new study with --study-name"
        )
    return load_or_build_features(index, settings.feature_dir, augmentation, settings.progress, key)


def prepare_stored(study: optuna.Study, here: StudySettings) -> tuple[StudySettings, Prepared]:
    """A stored study's settings on this machine (:func:`study.settings.replayed`) and its
    preparation, refused when the data no longer hashes to the study's feature cache key."""
    settings = replayed(study.user_attrs["settings"], here, study.study_name)
    return settings, prepare(settings, study.user_attrs.get(FEATURE_KEY))


def _mean_val_au_fa_fr(references: tuple[TrainedModel, ...]) -> float:
    return statistics.fmean(r.val_au_fa_fr for r in references)


def student_recipe(settings: StudySettings) -> TrainConfig:
    """What every trial shares: the base recipe with the study's epochs, patience, weight
    average, SpecAugment masks and seed."""
    return dataclasses.replace(
        BASE_RECIPE,
        epochs=settings.max_epochs,
        patience=settings.patience,
        ema_decay=settings.ema_decay,
        freq_mask=settings.freq_mask,
        time_mask=settings.time_mask,
        seed=settings.seed,
    )


def open_study(settings: StudySettings) -> optuna.Study:
    """Create the study or load it, with the study's sampler and pruner."""
    return _create_study(settings, load_if_exists=True)


def _create_study(settings: StudySettings, load_if_exists: bool) -> optuna.Study:
    storage = make_storage(settings.storage, settings.heartbeat_interval, settings.grace_period)
    return optuna.create_study(
        storage=storage,
        study_name=settings.name,
        direction="maximize",
        sampler=make_sampler(
            settings.seed, settings.skip_hopeless, settings.sampler, settings.floors()
        ),
        pruner=make_pruner(settings.pruner, settings.max_epochs),
        load_if_exists=load_if_exists,
    )


def create_or_load(settings: StudySettings) -> tuple[optuna.Study, bool]:
    """The study, and whether this call created it.

    Creation is one INSERT under the database's unique study name, so when many workers
    start at once exactly one of them learns that it created the study: that one enqueues
    the warm start (``enqueue_trial(skip_if_exists=True)`` from every worker would race).
    """
    try:
        return _create_study(settings, load_if_exists=False), True
    except optuna.exceptions.DuplicatedStudyError:
        return open_study(settings), False


def finished_count(study: optuna.Study) -> int:
    """Trials that count toward ``--trials``: finished and trained (not skipped)."""
    return sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def _budget_guard(
    objective: Callable[[optuna.Trial], float], trials: int
) -> Callable[[optuna.Trial], float]:
    """Fail (without training) a trial that would be past ``trials``; record any failure."""

    def guarded(trial: optuna.Trial) -> float:
        try:
            trial.set_user_attr(WORKER, worker_id())
        except (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError) as error:
            trial.set_user_attr(FAIL_REASON, f"{type(error).__name__}: {error}")
            raise
        # A waiting trial with a smaller number (a dead worker's retry, enqueued while this
        # trial was being created) is popped before any new trial, so it holds its place.
        earlier = [
            t
            for t in trial.study.get_trials(deepcopy=False)
            if t.number < trial.number
            and (counts_toward_budget(t) or t.state in (TrialState.RUNNING, TrialState.WAITING))
        ]
        if len(earlier) >= trials:
            trial.set_user_attr(FAIL_REASON, f"the study already has {trials} trials")
            trial.set_user_attr(SURPLUS, True)
            raise StudyFullError(f"the study already has {trials} trials")
        try:
            return objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as error:
            trial.set_user_attr(FAIL_REASON, f"{type(error).__name__}: {error}")
            raise

    return guarded


def run_worker(
    settings: StudySettings,
    prepared: Prepared,
    between_trials: Callable[[int], None] | None = None,
) -> None:
    """Run trials until the study holds ``settings.trials`` trained ones (or time is up).

    ``between_trials(finished)`` is called after each trial, in this thread, while no trial
    trains: work there cannot change a trial's numbers (see :func:`run`).
    """
    quiet_optuna()
    device = resolve_device(settings.device)
    study = open_study(settings)
    data: TrainingData = training_data(prepared.features, prepared.reference, device)
    # This worker's cores train a trial's confirmation and fresh seeds side by side.
    with SeedPool(data, cores_per_worker(settings.n_jobs)) as seed_pool:
        objective = _budget_guard(
            Objective(
                data,
                prepared.bar,
                student_recipe(settings),
                settings.skip_hopeless,
                artifact_store(settings.artifact_dir),
                settings.confirm_seeds,
                settings.floors(),
                settings.fresh_check,
                seed_pool,
            ),
            settings.trials,
        )
        with interrupts_outside_storage():
            _run_trials(study, objective, settings, between_trials)


def _run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    settings: StudySettings,
    between_trials: Callable[[int], None] | None,
) -> None:
    """:func:`run_worker`'s loop: one trial per ``optimize`` call, so that the budget, the
    deadline and the stop rules are checked between trials."""
    deadline = None if settings.timeout is None else time.monotonic() + settings.timeout
    failures_in_a_row = skips_in_a_row = 0
    while True:
        trials = study.get_trials(deepcopy=False)
        finished = sum(counts_toward_budget(t) for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials) + awaiting_retry(trials)
        if finished >= settings.trials:
            return
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        if finished + running >= settings.trials:
            # Others are running the last trials: wait for them, and fail those whose worker
            # died (stale heartbeat), which enqueues their parameters again for us to run.
            optuna.storages.fail_stale_trials(study)
            time.sleep(POLL_S)
            continue
        ended: list[optuna.trial.FrozenTrial] = []
        started = datetime.datetime.now()
        try:
            study.optimize(
                objective,
                n_trials=1,
                timeout=remaining,
                catch=(Exception,),
                callbacks=[functools.partial(_record, ended)],
            )
        except KeyboardInterrupt:
            requeue_interrupted(study, worker_id(), started)
            raise
        except optuna.exceptions.UpdateFinishedTrialError as error:
            # Another worker missed this trial's heartbeats for the grace period (a starved
            # or stalled process), failed it and queued its retry: this result is dropped.
            print(f"warning: {error} (another worker took it as stale); going on", file=sys.stderr)
        if between_trials is not None:
            between_trials(finished_count(study))
        if not ended or ended[-1].user_attrs.get(SURPLUS):
            continue
        last = ended[-1]
        skips_in_a_row = skips_in_a_row + 1 if last.user_attrs.get(SKIPPED) else 0
        if skips_in_a_row >= MAX_SKIPS_IN_A_ROW:
            floors = settings.floors()
            within = "" if floors == NO_FLOORS else f" within {floors.describe()}"
            print(
                f"{skips_in_a_row} proposals in a row could not beat the best feasible trial"
                f"{within} (the sampler found none that could in {MAX_PROPOSALS} draws "
                f"each): the search stops at {finished} trained trials",
                file=sys.stderr,
            )
            return
        failures_in_a_row = failures_in_a_row + 1 if last.state == TrialState.FAIL else 0
        if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            reason = last.user_attrs.get(FAIL_REASON, "see the study's failed trials")
            raise UserError(f"{failures_in_a_row} trials in a row failed; the last: {reason}")


def worker_id() -> str:
    """Which process runs a trial, as host:pid (its ``worker`` user attribute)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def requeue_interrupted(study: optuna.Study, worker: str, since: datetime.datetime) -> None:
    """Queue again the parameters of the trial that Ctrl-C stopped in ``worker``.

    Optuna has already marked it failed (a finished trial cannot be annotated), so the new
    waiting trial records which one it reruns; the next run (or another worker) pops it
    before proposing anything new, so a warm-start configuration is never lost. A Ctrl-C
    that lands between the trial's creation and its ``worker`` attribute leaves a failed
    trial without one: one started ``since`` this worker's trial began is taken as its own.
    Called after the interrupt has left Optuna's own write, where a second write could meet
    the database's lock: the write is tried again, and a failure is reported, not raised
    over the interrupt.
    """
    trials = study.get_trials(deepcopy=False)
    requeued = {t.user_attrs[REQUEUED_FROM] for t in trials if REQUEUED_FROM in t.user_attrs}
    mine = [
        t
        for t in trials
        if t.state == TrialState.FAIL
        and FAIL_REASON not in t.user_attrs
        and t.number not in requeued
        and (
            t.user_attrs.get(WORKER) == worker
            or (
                WORKER not in t.user_attrs
                and t.datetime_start is not None
                and t.datetime_start >= since
            )
        )
    ]
    if not mine:
        return
    interrupted = mine[-1]
    for attempt in range(1, REQUEUE_ATTEMPTS + 1):
        try:
            study.enqueue_trial(interrupted.params, user_attrs={REQUEUED_FROM: interrupted.number})
            return
        except (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError) as error:
            if attempt == REQUEUE_ATTEMPTS:
                warnings.warn(
                    f"trial {interrupted.number} was interrupted and could not be queued again "
                    f"({error.__class__.__name__}); its parameters: {interrupted.params}",
                    stacklevel=2,
                )
                return
            time.sleep(0.5 * attempt)


def awaiting_retry(trials: list[optuna.trial.FrozenTrial]) -> int:
    """How many dead workers' trials were just failed and will be enqueued again.

    Optuna fails a stale trial and enqueues its retry in two steps; in between, the trial
    still holds its place in the budget, or a new trial would take it and the retry would
    be left waiting. A failure of our own has a ``fail_reason``; one left without a retry
    for longer than :data:`RETRY_WINDOW_S` (its worker died in between) stops counting.
    """
    # Optuna stores each machine's local time: a clock or time-zone difference between
    # machines only moves a failure out of the window, back to Optuna's own behaviour.
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    retried |= {t.user_attrs[REQUEUED_FROM] for t in trials if REQUEUED_FROM in t.user_attrs}
    now = datetime.datetime.now()
    return sum(
        t.state == TrialState.FAIL
        and FAIL_REASON not in t.user_attrs
        and t.number not in retried
        and len(t.system_attrs.get("retry_history", ())) < MAX_RETRY
        and t.datetime_complete is not None
        and abs((now - t.datetime_complete).total_seconds()) < RETRY_WINDOW_S
        for t in trials
    )


def _record(
    ended: list[optuna.trial.FrozenTrial], _: optuna.Study, trial: optuna.trial.FrozenTrial
) -> None:
    ended.append(trial)


def _worker_process(settings: StudySettings, prepared: Prepared) -> None:
    configure_threads(settings.n_jobs)
    # Ctrl-C: Optuna has already marked the running trial failed; the parent reports.
    with contextlib.suppress(KeyboardInterrupt):
        run_worker(settings, prepared)


def describe(trial: optuna.trial.FrozenTrial) -> str:
    """One concise line per finished trial."""
    attrs, params = trial.user_attrs, trial.params
    head = f"trial {trial.number:3d} {trial.state.name:8s}"
    if trial.state == TrialState.FAIL:
        return f"{head} {attrs.get(FAIL_REASON, 'failed')}"
    arch = (
        f"{params.get('cnn_out_channels')}ch k({params.get('kernel_freq')},"
        f"{params.get('kernel_time')}) s({params.get('stride_freq')},{params.get('stride_time')})"
        f" {params.get('gru_num_layers')}x{params.get('hidden_size')}"
        f" {params.get('pooling', 'attention')}{'' if params.get('bias', True) else ' no-bias'}"
        f"{' fp16' if params.get('fp16') else ''}"
    )
    quality = f"{attrs.get(AU_FA_FR, float('nan')):.2e}" if trained(trial) else "not measured"
    seeds = len(attrs.get(AU_FA_FR_SEEDS, ()))
    if seeds > 1:
        quality += f" (mean of {seeds} seeds)"
    feasible = "feasible" if attrs.get("feasible") else "infeasible"
    value = "-" if trial.value is None else f"{trial.value:.3f}"
    epochs = len(attrs.get(AU_FA_FR_PER_EPOCH, []))
    line = (
        f"{head} value {value} score {attrs.get('score', float('nan')):.2f} "
        f"(C {attrs.get('compression_rate', float('nan')):.1f}, "
        f"S {attrs.get('speedup', float('nan')):.1f}) au_fa_fr {quality} {feasible} | "
        f"{arch} | {epochs} epochs"
    )
    if trial.state == TrialState.PRUNED and attrs.get(PRUNED_REASON):
        line += f" | {attrs[PRUNED_REASON]}"
    return line


def running_status(trial: optuna.trial.FrozenTrial, settings: StudySettings) -> str:
    """Where a running trial is: its epoch, or every confirmation (or fresh) seed started,
    with the epoch each is at (at real size one trial can take minutes)."""
    confirming = trial.user_attrs.get(CONFIRMATION_EPOCHS)
    if confirming:
        # Entry i is seed i + 2 of the confirmation (its first seed trained before any);
        # the fresh check's seeds follow them and count from 1.
        first, stage = 2, "confirming"
        if len(confirming) >= settings.confirm_seeds:
            confirming, first, stage = confirming[settings.confirm_seeds - 1 :], 1, "on fresh seeds"
        last = first + len(confirming) - 1
        seeds = f"seed {first}" if last == first else f"seeds {first}-{last}"
        epochs = ", ".join(str(epoch) for epoch in confirming)
        return (
            f"trial {trial.number} {stage}: {seeds}/{settings.confirm_seeds}, "
            f"epoch{'s' if len(confirming) > 1 else ''} {epochs}/{settings.max_epochs}"
        )
    epochs = len(trial.user_attrs.get(AU_FA_FR_PER_EPOCH, ()))
    return f"trial {trial.number}: epoch {epochs}/{settings.max_epochs}"


def figure_refresher(
    study: optuna.Study, settings: StudySettings, prepared: Prepared
) -> Callable[[], None]:
    """A function that recomputes the study's figures and saves them for the dashboard.

    A failure to draw is reported and the study goes on: figures are not worth a run.
    """
    storage = make_storage(settings.storage, settings.heartbeat_interval, settings.grace_period)
    store = artifact_store(settings.artifact_dir)
    features = prepared.features

    def refresh() -> None:
        try:
            best = best_trial_curve(
                study,
                storage,
                store,
                features.features["validation"],
                features.labels["validation"],
            )
            save_figures(study, study_figures(study, best))
        except Exception as error:
            warnings.warn(f"the study's figures were not refreshed: {error!r}", stacklevel=1)

    return refresh


def _monitor(
    study: optuna.Study,
    settings: StudySettings,
    stop: threading.Event,
    refresh: Callable[[], None] | None,
) -> None:
    """Progress bar over trained trials, one log line per trial that ends, and, when
    ``refresh`` is given, the figures redrawn every ``FIGURES_EVERY`` trained trials."""
    seen: set[int] = set()
    drawn_at = 0
    with tqdm(
        total=settings.trials, desc="trials", unit="trial", disable=not settings.progress
    ) as bar:
        while True:
            done = stop.is_set()
            trials = study.get_trials(deepcopy=False)
            for trial in trials:
                if trial.state.is_finished() and trial.number not in seen:
                    seen.add(trial.number)
                    tqdm.write(describe(trial))
            bar.n = min(settings.trials, sum(counts_toward_budget(t) for t in trials))
            best = best_feasible(study)
            bar.set_postfix_str(
                "; ".join([
                    "no feasible trial yet" if best is None else f"best feasible {best.value:.3f}",
                    *(running_status(t, settings) for t in trials if t.state == TrialState.RUNNING),
                ])
            )  # fmt: skip
            if refresh is not None and bar.n - drawn_at >= FIGURES_EVERY and not done:
                refresh()
                drawn_at = bar.n
            if done:
                return
            stop.wait(POLL_S)


def with_study_bar(study: optuna.Study, prepared: Prepared) -> Prepared:
    """``prepared`` with the bar the study was created with.

    Every worker trains (or loads) its own reference, and on another machine (another CPU,
    a GPU, another thread count) its au_fa_fr can differ in the last digits; one study
    must judge every trial against one bar, so the first worker's is kept.
    """
    bar = study.user_attrs.get(BAR, prepared.bar)
    if not math.isclose(bar, prepared.bar, rel_tol=1e-9):
        warnings.warn(
            f"this machine's reference gives the bar {prepared.bar:.4e}; using the study's "
            f"{bar:.4e}",
            stacklevel=2,
        )
    return dataclasses.replace(prepared, bar=bar)


def check_continuation(settings: StudySettings) -> dict[str, Any]:
    """Refuse to continue an existing study with other :data:`TRIAL_FIELDS` values; return
    the study's user attributes ({} for a new study).

    Checked before any preparation, so a mistyped flag costs nothing. A new SQLite file is
    not created here: a run refused later leaves no empty database behind.
    """
    path = sqlite_path(settings.storage)
    if path is not None and not path.is_file():
        return {}
    storage = make_storage(settings.storage, settings.heartbeat_interval, settings.grace_period)
    try:
        recorded = optuna.load_study(study_name=settings.name, storage=storage).user_attrs
    except KeyError:  # a new study
        return {}
    changes = changed_trial_fields(recorded.get("settings", {}), settings)
    if changes:
        raise UserError(
            f"study '{settings.name}' in {settings.storage} was created with other settings "
            f"({'; '.join(changes)}): its trials would not be comparable. Rerun with the "
            "study's values, or start a new study with --study-name"
        )
    return recorded


def check_outputs(settings: StudySettings) -> None:
    """The artifact folder and the SQLite database's folder take a write, before any work:
    a read-only one would otherwise fail every trial after it trained."""
    check_writable(settings.artifact_dir, "--artifact-dir")
    path = sqlite_path(settings.storage)
    if path is not None:
        check_writable(path.parent, f"--storage {settings.storage}: folder")


def run(settings: StudySettings) -> optuna.Study:
    """Prepare, open the study, enqueue the warm start, run the workers, return the study."""
    quiet_optuna()
    resolve_device(settings.device)  # a missing GPU is refused before any file is made
    recorded = check_continuation(settings)
    check_outputs(settings)
    configure_threads(settings.n_jobs)
    prepared = prepare(settings, recorded.get(FEATURE_KEY))
    study, created = create_or_load(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([METRIC_NAME])
    if created or BAR not in study.user_attrs:
        study.set_user_attr("settings", settings.to_dict())
        study.set_user_attr(BAR, prepared.bar)
        study.set_user_attr(FEATURE_KEY, prepared.features.key)
        study.set_user_attr("reference_val_au_fa_fr", prepared.reference_val_au_fa_fr)
        study.set_user_attr("reference_test_au_fa_fr", prepared.reference_test_au_fa_fr)
        for split in ("val", "test"):
            values = [getattr(r, f"{split}_au_fa_fr") for r in prepared.references]
            study.set_user_attr(f"reference_{split}_au_fa_fr_seeds", values)
        reference = prepared.reference
        for key, value in reference_attributes(reference.val_history, reference.val_curve).items():
            study.set_user_attr(key, value)
    if FEATURE_KEY not in study.user_attrs:  # a study made before the data had an identity
        study.set_user_attr(FEATURE_KEY, prepared.features.key)
    prepared = with_study_bar(study, prepared)
    if created:
        for params in WARM_START.values():
            study.enqueue_trial(params)

    stop = threading.Event()
    refresh = figure_refresher(study, settings, prepared)
    # Drawing runs torch (the best trial's FA/FR curve). Beside a training trial in this
    # process it would share torch's thread pool, change how the trial's sums are split and
    # so its numbers: with one worker here, the figures are drawn between trials instead.
    in_process = settings.n_jobs == 1
    monitor = threading.Thread(
        target=_monitor, args=(study, settings, stop, None if in_process else refresh), daemon=True
    )
    monitor.start()
    drawn_at = [0]

    def between_trials(finished: int) -> None:
        if finished - drawn_at[0] >= FIGURES_EVERY:
            refresh()
            drawn_at[0] = finished

    try:
        if in_process:
            run_worker(settings, prepared, between_trials)
        else:
            context = multiprocessing.get_context("spawn")
            workers = [
                context.Process(target=_worker_process, args=(settings, prepared))
                for _ in range(settings.n_jobs)
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
    finally:
        stop.set()
        monitor.join()
    refresh()  # not in the finally: after Ctrl-C the user wants out, not plots
    return study
