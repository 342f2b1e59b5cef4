"""The study end to end on the toy embedded dataset, with small budgets and real SQLite."""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from kws.training import BASE_RECIPE
from study.attributes import (
    AU_FA_FR,
    AU_FA_FR_FRESH_SEEDS,
    AU_FA_FR_SEEDS,
    BAR,
    REQUEUED_FROM,
    counts_toward_budget,
)
from study.export import TORCHSCRIPT_FILE, ExportError, export_best, load_weights, read_export
from study.runner import (
    WORKER,
    check_continuation,
    open_study,
    prepare,
    requeue_interrupted,
    run,
    student_recipe,
)
from study.search_space import WARM_START
from study.settings import StudySettings, changed_trial_fields
from study.storage import make_storage

REPO_ROOT = Path(__file__).resolve().parents[2]
ATTRS = ("compression_rate", "speedup", "params", "macs", "state_dict_bytes",
         "au_fa_fr_per_epoch", "kept_epoch", "seconds_per_epoch", "feasible")  # fmt: skip


def _trials(settings: StudySettings) -> list[optuna.trial.FrozenTrial]:
    storage = make_storage(settings.storage)
    return optuna.load_study(study_name=settings.name, storage=storage).trials


def _judged(trial: optuna.trial.FrozenTrial) -> float:
    """What a trial's feasibility is judged on, written out: the mean of its seeds plus the
    mean's standard error (sample stdev / sqrt(n)); a one-seed trial's own figure."""
    seeds = trial.user_attrs.get(AU_FA_FR_SEEDS, [trial.user_attrs[AU_FA_FR]])
    mean = sum(seeds) / len(seeds)
    if len(seeds) == 1:
        return mean
    variance = sum((x - mean) ** 2 for x in seeds) / (len(seeds) - 1)
    return mean + math.sqrt(variance / len(seeds))


def _finished(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The trials that count toward --trials: finished and trained."""
    return [t for t in trials if counts_toward_budget(t)]


def test_warm_start_runs_first_and_the_study_ends_with_exactly_n(settings) -> None:
    study = run(settings)
    trials = study.trials
    assert len(_finished(trials)) == settings.trials
    assert [t.params for t in trials[:3]] == list(WARM_START.values())
    for trial in _finished(trials):
        assert all(name in trial.user_attrs for name in ATTRS)
        # The constraint is recorded for completed and pruned trials alike.
        assert trial.system_attrs["constraints"] == [
            pytest.approx(_judged(trial) - trial.user_attrs[BAR])
        ]
    assert study.metric_names == ["penalized_score"]


def test_best_trial_is_never_infeasible(settings) -> None:
    # A bar between the trials' au_fa_fr values makes some feasible and some not.
    settings = dataclasses.replace(settings, skip_hopeless=False)  # every trial trains
    first = run(settings)
    values = sorted(t.user_attrs[AU_FA_FR] for t in _finished(first.trials))
    bar = (values[1] + values[-1]) / 2
    mixed = dataclasses.replace(settings, study_name="mixed", max_au_fa_fr=bar)
    study = run(mixed)
    feasible = [t for t in study.trials if t.state == TrialState.COMPLETE
                and _judged(t) <= bar]  # fmt: skip
    if feasible:
        assert _judged(study.best_trial) <= bar
        assert study.best_trial.value == max(t.value for t in feasible)
    infeasible_values = [t.value for t in study.trials if t.state == TrialState.COMPLETE
                         and _judged(t) > bar]  # fmt: skip
    assert infeasible_values, "the bar made no trial infeasible: the test proves nothing"


def test_a_trial_that_raises_is_failed_and_the_study_goes_on(settings) -> None:
    study = open_study(settings)
    # Logits divided by a temperature of 1e-300 overflow: the loss is NaN at once.
    bad = {**WARM_START["best KD-only"], "temperature": 1e-300, "alpha": 0.5}
    study.enqueue_trial(bad)
    finished = run(settings)
    failed = [t for t in finished.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1
    assert "NonFiniteLossError" in failed[0].user_attrs["fail_reason"]
    assert len(_finished(finished.trials)) == settings.trials


def test_resume_after_an_interrupt_reaches_exactly_n(settings, cli_args) -> None:
    # Every trial trains 5 epochs, so that the interrupt lands well before the study is done.
    settings = dataclasses.replace(settings, trials=10, max_epochs=5, skip_hopeless=False)
    # A shell that starts jobs in the background (a CI runner may) makes them ignore SIGINT,
    # and a Python that starts so never raises KeyboardInterrupt: restore the default.
    process = subprocess.Popen(
        cli_args(settings),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    database = settings.storage.removeprefix("sqlite:///")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # wait for 2 finished trials, then Ctrl-C
        time.sleep(0.5)
        if os.path.exists(database) and _count_finished(database) >= 2:
            break
    process.send_signal(signal.SIGINT)
    # A Ctrl-C that lands inside a storage write is held until the write is done
    # (study.interrupt; tests/study/test_interrupt.py lands one there on purpose).
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    assert "rerun the same command" in stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    interrupted = _trials(settings)
    assert not [t for t in interrupted if t.state == TrialState.RUNNING]
    assert 2 <= len(_finished(interrupted)) < 10
    stopped = [t for t in interrupted if t.state == TrialState.FAIL]
    assert len(stopped) <= 1  # the trial that was training, unless Ctrl-C fell between two

    resumed = run(settings)
    assert len(_finished(resumed.trials)) == 10
    assert not [t for t in resumed.trials if t.state == TrialState.RUNNING]
    for trial in stopped:  # its parameters ran again, before anything new was proposed
        reruns = [t for t in resumed.trials if t.user_attrs.get(REQUEUED_FROM) == trial.number]
        assert len(reruns) == 1, (trial.number, trial.user_attrs, stderr)
        [rerun] = reruns
        assert trial.params.items() <= rerun.params.items()  # all, unless cut during sampling
        assert rerun.state in (TrialState.COMPLETE, TrialState.PRUNED)


def test_the_interrupted_trial_is_queued_again_once_and_only_this_workers(tmp_path) -> None:
    study = optuna.create_study(storage=make_storage(f"sqlite:///{tmp_path / 'study.db'}"))

    def interrupted(worker: str | None) -> optuna.trial.FrozenTrial:
        """A trial that Ctrl-C stopped, annotated with ``worker`` (None: before it was)."""

        def objective(trial: optuna.Trial) -> float:
            trial.suggest_int("x", 0, 10**6)
            if worker is not None:
                trial.set_user_attr(WORKER, worker)
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            study.optimize(objective, n_trials=1)
        return study.trials[-1]

    def reruns(trial: optuna.trial.FrozenTrial) -> list[optuna.trial.FrozenTrial]:
        return [t for t in study.trials if t.user_attrs.get(REQUEUED_FROM) == trial.number]

    before = datetime.datetime.now()
    others = interrupted("other:1")
    requeue_interrupted(study, "me:1", before)
    mine = interrupted("me:1")
    requeue_interrupted(study, "me:1", before)
    requeue_interrupted(study, "me:1", before)  # a second call queues nothing more
    since = datetime.datetime.now()
    unannotated = interrupted(None)  # stopped between its creation and its worker attribute
    requeue_interrupted(study, "me:1", since)
    earlier = interrupted(None)
    requeue_interrupted(study, "me:1", datetime.datetime.now())  # it began before this call
    # Running the queue shows what it held: the parameters each rerun gets.
    study.optimize(lambda trial: float(trial.suggest_int("x", 0, 10**6)), n_trials=2)
    assert not reruns(others) and not reruns(earlier)  # another worker's; an older one
    assert [t.params for t in reruns(mine)] == [mine.params]
    assert [t.params for t in reruns(unannotated)] == [unannotated.params]


def _count_finished(database: str) -> int:
    try:
        with sqlite3.connect(database, timeout=1) as connection:
            return connection.execute(
                "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED')"
            ).fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet, or locked for a moment
        return 0


def test_two_processes_on_one_sqlite_file_share_the_count(settings, cli_args) -> None:
    settings = dataclasses.replace(settings, trials=7)
    run(dataclasses.replace(settings, trials=1))  # caches and study exist before the race
    processes = [subprocess.Popen(cli_args(settings), stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]  # fmt: skip
    for process in processes:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    trials = _trials(settings)
    finished = _finished(trials)
    assert len(finished) == 7
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    param_sets = [json.dumps(t.params, sort_keys=True) for t in finished]
    assert len(set(param_sets)) == len(param_sets), "a parameter set was trained twice"
    numbers = [t.number for t in trials]
    assert len(set(numbers)) == len(numbers)


def test_infeasible_trials_are_never_exported(settings, tmp_path: Path) -> None:
    impossible = dataclasses.replace(settings, trials=3, max_au_fa_fr=1e-12)
    study = run(impossible)
    out = tmp_path / "export"
    with pytest.raises(ExportError, match="no feasible"):
        export_best(study, out, impossible, seeds=1)
    assert not out.exists()
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_study.py"), "export", "--storage",
         impossible.storage, "--study-name", impossible.name, "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "no feasible" in result.stderr
    assert not out.exists()


def test_export_round_trips_and_the_config_retrains_the_same_model(settings, tmp_path) -> None:
    # All feasible; on the CPU, where the export and `train` below retrain.
    lenient = dataclasses.replace(
        settings, trials=3, max_au_fa_fr=1.0, device="cpu", fresh_check=True
    )
    study = run(lenient)
    folder = export_best(study, tmp_path / "export", lenient, seeds=2)
    export = read_export(folder)
    best = study.best_trial
    assert export.study["trial_number"] == best.number
    assert export.metrics["val_au_fa_fr"] == best.user_attrs[AU_FA_FR]
    # The study trained the best trial on seeds 0 and 1 (--confirm-seeds 2), then, as it
    # would become the best, on 2 and 3 (its fresh check); export retrains it on seeds it
    # never saw, and config.json's recipe starts there.
    assert len(best.user_attrs[AU_FA_FR_SEEDS]) == 2 * lenient.confirm_seeds == 4
    assert best.user_attrs[AU_FA_FR_FRESH_SEEDS] == best.user_attrs[AU_FA_FR_SEEDS][2:]
    assert export.held_out["seeds"] == [4, 5]
    assert export.training.seed == 4
    # All feasible under a bar of 1.0: the best trial confirms at once.
    assert export.selection["confirmed"] is True
    [candidate] = export.selection["candidates"]
    assert candidate["trial_number"] == best.number
    assert candidate["val_au_fa_fr"] == export.held_out["val_au_fa_fr"]
    assert len(export.held_out["val_au_fa_fr"]) == len(export.held_out["test_au_fa_fr"]) == 2
    reference = study.user_attrs
    test_bar = 1.0 / reference["reference_val_au_fa_fr"] * reference["reference_test_au_fa_fr"]
    assert export.held_out["test_bar"] == pytest.approx(test_bar)
    assert export.held_out["passes"] == (export.held_out["test_au_fa_fr_mean"] <= test_bar)
    assert export.versions["torch"] == torch.__version__
    state = torch.load(folder / "model.pt", weights_only=True)
    expected_dtype = torch.float16 if export.training.fp16 else torch.float32
    assert all(t.dtype == expected_dtype for t in state.values())
    assert load_weights(folder).config == export.model
    scorer = torch.jit.load(str(folder / TORCHSCRIPT_FILE))  # the same model, torch alone
    features = torch.randn(3, 40, 101)
    with torch.no_grad():
        logits = load_weights(folder)(features.to(expected_dtype)).float()
        scored = scorer.from_features(features)
    torch.testing.assert_close(scored, torch.softmax(logits, dim=-1)[:, 1], rtol=0, atol=1e-5)

    retrained = subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_study.py"), "train", "--config",
         str(folder / "config.json"), "--out", str(tmp_path / "retrained"), "--no-progress",
         "--device", "cpu", "--data-dir", lenient.data_dir, "--feature-dir",
         lenient.feature_dir, "--model-dir", lenient.model_dir],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert retrained.returncode == 0, retrained.stderr
    val = f"validation au_fa_fr {export.held_out['val_au_fa_fr'][0]:.3e}"
    assert val in retrained.stdout  # same seed, same data: the exported model again
    again = torch.load(tmp_path / "retrained" / "model.pt", weights_only=True)
    for name, tensor in state.items():
        assert torch.equal(again[name], tensor)


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda d: d.pop("model"), "model"),
        (lambda d: d.update(selection=[]), "selection"),
        (lambda d: d.update(format="something else"), "format"),
        (lambda d: d["model"].update(hidden_size=0), "hidden_size"),
        (lambda d: d["training"].update(learning_rate_typo=1.0), "learning_rate_typo"),
    ],
)
def test_a_tampered_config_is_rejected_naming_the_field(
    mutation, message: str, tmp_path: Path, export_document
) -> None:
    from study.search_space import configs_from_params

    model, training = configs_from_params(WARM_START["base"])
    document = export_document(model) | {"training": training.to_dict()}
    assert read_export(_write(tmp_path / "ok.json", document)).model == model
    mutation(document)
    with pytest.raises(ExportError, match=message):
        read_export(_write(tmp_path / "bad.json", document))


def _write(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_every_worker_judges_trials_against_the_study_bar(settings) -> None:
    # A worker on another machine may compute a slightly different reference; the bar the
    # study was created with wins. Here the study's bar is changed behind the runner's back.
    study = run(dataclasses.replace(settings, trials=3))
    bar = study.user_attrs[BAR]
    study.set_user_attr(BAR, bar * 2)
    with pytest.warns(UserWarning, match="using the study's"):
        study = run(dataclasses.replace(settings, trials=5))
    later = [t for t in study.trials if t.number >= 3 and t.state != TrialState.FAIL]
    assert later
    assert all(t.user_attrs[BAR] == bar * 2 for t in later)


def test_the_bar_is_1_1_x_the_mean_reference_over_its_seeds(settings) -> None:
    prepared = prepare(settings)
    seeds = [reference.recipe.seed for reference in prepared.references]
    assert seeds == [settings.seed, settings.seed + 1, settings.seed + 2]
    values = [reference.val_au_fa_fr for reference in prepared.references]
    assert len(set(values)) == 3, "three seeds gave one model: the mean proves nothing"
    assert prepared.bar == pytest.approx(1.1 * sum(values) / 3, rel=1e-12)
    assert prepared.reference is prepared.references[0]  # the teacher: the study's own seed

    single = prepare(dataclasses.replace(settings, reference_seeds=1))
    assert single.bar == pytest.approx(1.1 * values[0], rel=1e-12)

    study = run(dataclasses.replace(settings, trials=1))
    assert study.user_attrs[BAR] == pytest.approx(prepared.bar, rel=1e-12)
    assert study.user_attrs["reference_val_au_fa_fr_seeds"] == pytest.approx(values)


def test_continuing_a_study_with_other_trial_settings_is_refused_before_any_work(
    settings: StudySettings, cli_args, tmp_path: Path
) -> None:
    created = dataclasses.replace(
        settings,
        data_dir=str(tmp_path / "data"),
        feature_dir=str(tmp_path / "features"),
        model_dir=str(tmp_path / "models"),
    )
    study = optuna.create_study(study_name=created.name, storage=make_storage(created.storage))
    study.set_user_attr("settings", created.to_dict())
    # Budget, pruner and paths may change between runs of one study.
    check_continuation(
        dataclasses.replace(created, trials=50, pruner="none", n_jobs=2, sampler="random")
    )

    changed = dataclasses.replace(
        created, max_epochs=created.max_epochs + 1, patience=4, reference_seeds=1, confirm_seeds=3
    )
    result = subprocess.run(cli_args(changed), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert f"--max-epochs {created.max_epochs} -> {created.max_epochs + 1}" in result.stderr
    assert f"--patience {created.patience} -> 4" in result.stderr
    assert "--reference-seeds 3 -> 1" in result.stderr
    assert f"--confirm-seeds {created.confirm_seeds} -> 3" in result.stderr
    assert "--study-name" in result.stderr and "Traceback" not in result.stderr
    # Refused before preparing anything: no dataset, features or reference were made.
    assert not any((tmp_path / name).exists() for name in ("data", "features", "models"))


def test_a_study_recorded_before_ema_decay_existed_kept_the_trained_weights(
    settings: StudySettings,
) -> None:
    recorded = {k: v for k, v in settings.to_dict().items() if k != "ema_decay"}
    assert changed_trial_fields(recorded, dataclasses.replace(settings, ema_decay=0.0)) == []
    assert changed_trial_fields(recorded, dataclasses.replace(settings, ema_decay=0.99)) == [
        "--ema-decay 0.0 -> 0.99"
    ]


def test_a_study_recorded_before_the_students_masks_existed_masked_as_the_course(
    settings: StudySettings,
) -> None:
    recorded = {k: v for k, v in settings.to_dict().items() if k not in ("freq_mask", "time_mask")}
    course = dataclasses.replace(settings, freq_mask=15, time_mask=35)
    assert changed_trial_fields(recorded, course) == []
    unmasked = dataclasses.replace(settings, freq_mask=0, time_mask=0)
    assert changed_trial_fields(recorded, unmasked) == [
        "--freq-mask 15 -> 0",
        "--time-mask 35 -> 0",
    ]
    # The recipe every trial and export trains with carries the study's masks.
    recipe = student_recipe(dataclasses.replace(settings, freq_mask=3, time_mask=7))
    assert (recipe.freq_mask, recipe.time_mask) == (3, 7)
    assert (BASE_RECIPE.freq_mask, BASE_RECIPE.time_mask) == (15, 35)  # the reference's


def test_a_study_recorded_before_patience_existed_ran_with_5(settings: StudySettings) -> None:
    # Such a study stopped its students after 5 epochs without improvement: it continues
    # with --patience 5, and today's default (10) would train its trials otherwise.
    recorded = {k: v for k, v in settings.to_dict().items() if k != "patience"}
    assert changed_trial_fields(recorded, dataclasses.replace(settings, patience=5)) == []
    assert changed_trial_fields(recorded, dataclasses.replace(settings, patience=10)) == [
        "--patience 5 -> 10"
    ]
