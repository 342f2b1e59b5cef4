"""What makes the study's winner trustworthy, on real tiny studies in real SQLite files:
the held-out check compares like with like, a lucky first seed cannot make the best trial,
and proposals that cannot win neither train nor take a trial's place."""

from __future__ import annotations

import dataclasses
import re
import statistics
import subprocess
import sys
from pathlib import Path

import optuna
import optuna_dashboard
import pytest
from optuna.trial import TrialState

from kws.errors import UserError
from kws.reference import training_data
from kws.training import train
from study.attributes import (
    AU_FA_FR,
    AU_FA_FR_FRESH_SEEDS,
    AU_FA_FR_SEEDS,
    AU_FA_FR_UPPER,
    CONFIRMATION_EPOCHS,
    FEASIBLE,
    SKIPPED,
)
from study.export import export_best, read_export
from study.objective import best_feasible
from study.runner import (
    finished_count,
    open_study,
    prepare,
    run,
    running_status,
    student_recipe,
)
from study.sampler import proposal_score
from study.search_space import WARM_START, configs_from_params
from study.settings import StudySettings

REPO_ROOT = Path(__file__).resolve().parents[2]


def _export_cli(settings: StudySettings, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_study.py"), "export", "--storage",
         settings.storage, "--study-name", settings.name, "--out", str(out), "--seeds", "2",
         "--data-dir", settings.data_dir, "--feature-dir", settings.feature_dir,
         "--model-dir", settings.model_dir, "--device", "cpu"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_held_out_check_judges_the_test_figure_against_the_references_test_figure(
    settings: StudySettings, tmp_path: Path
) -> None:
    # A bar of 0.5 makes every trained student feasible and puts its test figure far under
    # the validation bar; the study's recorded reference figures then decide the verdict.
    lenient = dataclasses.replace(settings, trials=2, max_au_fa_fr=0.5, device="cpu")
    study = run(lenient)
    first = read_export(export_best(study, tmp_path / "first", lenient, seeds=2))
    student_test = first.held_out["test_au_fa_fr_mean"]
    assert first.held_out["confirmed"] and student_test < first.held_out["bar"]
    reference_val = study.user_attrs["reference_val_au_fa_fr"]
    ratio = 0.5 / reference_val  # the bar's ratio to the reference on validation
    assert first.held_out["bar_ratio"] == pytest.approx(ratio)
    assert first.held_out["reference_test_au_fa_fr"] == study.user_attrs["reference_test_au_fa_fr"]

    # A reference that scores so well on test that ratio x its figure is 10 % under the
    # student's: the student fails, though it is far under the validation bar.
    study.set_user_attr("reference_test_au_fa_fr", 0.9 * student_test / ratio)
    result = _export_cli(lenient, tmp_path / "fails")
    assert result.returncode == 0, result.stderr
    failed = read_export(tmp_path / "fails")
    assert failed.held_out["test_au_fa_fr_mean"] == pytest.approx(student_test)
    assert failed.held_out["test_bar"] == pytest.approx(0.9 * student_test)
    assert failed.held_out["passes"] is False
    assert "FAILS" in result.stdout and "PASSES" not in result.stdout
    assert f"{failed.held_out['test_bar']:.3e}" in result.stdout
    note = optuna_dashboard_note(lenient)
    assert "FAILS" in note and f"{failed.held_out['reference_test_au_fa_fr']:.3e}" in note

    # 10 % over it: the same student passes.
    study.set_user_attr("reference_test_au_fa_fr", 1.1 * student_test / ratio)
    result = _export_cli(lenient, tmp_path / "passes")
    assert read_export(tmp_path / "passes").held_out["passes"] is True
    assert "PASSES" in result.stdout


def optuna_dashboard_note(settings: StudySettings) -> str:
    """The study's note, read back by optuna-dashboard's own reader."""
    study = optuna.load_study(study_name=settings.name, storage=settings.storage)
    return optuna_dashboard.get_note(study)


def test_no_line_says_passes_when_no_candidate_is_confirmed(
    settings: StudySettings, tmp_path: Path
) -> None:
    lenient = dataclasses.replace(settings, trials=1, max_au_fa_fr=0.5, device="cpu")
    study = run(lenient)
    # Lower the bar under every retrained mean after the search: nothing confirms. The
    # reference's test figure is raised so far that the test bar (1e-9 / val x test = 1.0)
    # lies above any au_fa_fr: only the missing confirmation can withhold the pass.
    study.set_user_attr("au_fa_fr_bar", 1e-9)
    study.set_user_attr(
        "reference_test_au_fa_fr", study.user_attrs["reference_val_au_fa_fr"] / 1e-9
    )
    result = _export_cli(lenient, tmp_path / "export")
    assert result.returncode == 0, result.stderr
    export = read_export(tmp_path / "export")
    assert export.held_out["confirmed"] is False and export.held_out["passes"] is False
    assert export.held_out["test_au_fa_fr_mean"] <= export.held_out["test_bar"]
    assert "PASSES" not in result.stdout + result.stderr
    assert "NOT CONFIRMED" in result.stdout


def _lucky_first_seed(settings: StudySettings) -> tuple[dict, list[float]]:
    """A warm-start student whose first seed scores better than its second by > 10 %, and
    its validation au_fa_fr on both, trained as a trial trains."""
    prepared = prepare(settings)
    data = training_data(prepared.features, prepared.reference, "cpu")
    for params in WARM_START.values():
        model, recipe = configs_from_params(params, student_recipe(settings))
        values = [
            train(
                model, dataclasses.replace(recipe, seed=recipe.seed + offset), data
            ).best_val_au_fa_fr
            for offset in range(2)
        ]
        if values[1] > 1.1 * values[0]:
            return params, values
    pytest.fail(f"no warm-start student had a lucky first seed: {values}")


def test_a_lucky_first_seed_does_not_make_the_best_trial(settings: StudySettings) -> None:
    settings = dataclasses.replace(settings, device="cpu", confirm_seeds=2)
    params, (first, second) = _lucky_first_seed(settings)
    bar = (first + statistics.fmean([first, second])) / 2  # met on seed 0, missed on average
    study = open_study(settings)
    study.enqueue_trial(params)
    study = run(dataclasses.replace(settings, trials=1, max_au_fa_fr=bar))
    [trial] = study.get_trials(states=(TrialState.COMPLETE,))
    seeds = trial.user_attrs[AU_FA_FR_SEEDS]
    assert len(seeds) == 2 and seeds[0] <= bar < statistics.fmean(seeds)
    assert trial.user_attrs[AU_FA_FR] == pytest.approx(statistics.fmean(seeds))
    assert trial.user_attrs[FEASIBLE] is False
    assert best_feasible(study) is None
    assert trial.value < proposal_score(trial.params)  # penalized by the mean's miss
    # The second seed's epochs were recorded as it trained (2 of 2: patience never stopped
    # it), and the progress bar's line for the trial says where the confirmation was.
    assert trial.user_attrs[CONFIRMATION_EPOCHS] == [settings.max_epochs]
    assert running_status(trial, settings) == "trial 0 confirming: seed 2/2, epoch 2/2"


@pytest.mark.parametrize(
    ("epochs", "expected"),
    [
        ([12], "trial 4 confirming: seed 2/3, epoch 12/80"),
        ([12, 10], "trial 4 confirming: seeds 2-3/3, epochs 12, 10/80"),
        # Past the 2 confirmation seeds' entries come the fresh check's seeds.
        ([80, 75, 5, 4], "trial 4 on fresh seeds: seeds 1-2/3, epochs 5, 4/80"),
    ],
)
def test_the_progress_line_names_every_seed_training_side_by_side(
    epochs: list[int], expected: str
) -> None:
    # Confirmation seeds train two at a time on two cores: both are named, with their epochs.
    trial = optuna.trial.create_trial(
        state=TrialState.RUNNING, user_attrs={CONFIRMATION_EPOCHS: epochs}
    )
    trial.number = 4
    settings = StudySettings(confirm_seeds=3, max_epochs=80)
    assert running_status(trial, settings) == expected


def test_a_mean_that_meets_the_bar_only_without_its_spread_is_not_feasible(
    settings: StudySettings,
) -> None:
    settings = dataclasses.replace(settings, device="cpu", confirm_seeds=2)
    params, (first, second) = _lucky_first_seed(settings)
    # On two seeds the mean plus its standard error (stdev / sqrt(2)) is the worse seed:
    # a bar between the mean and that is met on average, not with confidence.
    bar = (statistics.fmean([first, second]) + second) / 2
    study = open_study(settings)
    study.enqueue_trial(params)
    study = run(dataclasses.replace(settings, trials=1, max_au_fa_fr=bar))
    [trial] = study.get_trials(states=(TrialState.COMPLETE,))
    seeds = trial.user_attrs[AU_FA_FR_SEEDS]
    assert statistics.fmean(seeds) <= bar < max(seeds)
    assert trial.user_attrs[AU_FA_FR_UPPER] == pytest.approx(max(seeds))
    assert trial.user_attrs[FEASIBLE] is False
    assert best_feasible(study) is None
    assert trial.value < proposal_score(trial.params)


def test_a_would_be_best_that_misses_the_bar_on_fresh_seeds_does_not_count(
    settings: StudySettings,
) -> None:
    # One confirmation seed: the student's seed 0 is its confirmation, seed 1 its fresh one.
    settings = dataclasses.replace(settings, device="cpu", confirm_seeds=1, fresh_check=True)
    params, (first, second) = _lucky_first_seed(settings)
    bar = (first + second) / 2  # met on the seed that chose it, missed on the next
    study = open_study(settings)
    study.enqueue_trial(params)
    study = run(dataclasses.replace(settings, trials=1, max_au_fa_fr=bar))
    [trial] = study.get_trials(states=(TrialState.COMPLETE,))
    seeds = trial.user_attrs[AU_FA_FR_SEEDS]
    assert len(seeds) == 2 and seeds[0] <= bar < seeds[1]
    assert trial.user_attrs[AU_FA_FR_FRESH_SEEDS] == seeds[1:]
    assert trial.user_attrs[AU_FA_FR_UPPER] == seeds[1]  # the worse of the two figures
    assert trial.user_attrs[FEASIBLE] is False
    assert best_feasible(study) is None
    assert trial.value < proposal_score(trial.params)  # TPE sees the fresh seed's miss
    assert running_status(trial, settings) == "trial 0 on fresh seeds: seed 1/1, epoch 2/2"


def test_the_fresh_check_trains_only_would_be_bests(settings: StudySettings) -> None:
    lenient = dataclasses.replace(
        settings, trials=2, max_au_fa_fr=0.5, confirm_seeds=1, fresh_check=True,
        skip_hopeless=False,
    )  # fmt: skip
    study = open_study(lenient)
    study.enqueue_trial(WARM_START["base"])  # feasible: the best, of score 0.70
    study.enqueue_trial(WARM_START["base"])  # as feasible, but it cannot beat that
    study = run(lenient)
    first, second = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(first.user_attrs[AU_FA_FR_FRESH_SEEDS]) == 1 and first.user_attrs[FEASIBLE]
    assert AU_FA_FR_FRESH_SEEDS not in second.user_attrs and second.user_attrs[FEASIBLE]
    assert len(second.user_attrs[AU_FA_FR_SEEDS]) == 1
    assert best_feasible(study).number == first.number


def test_skipped_proposals_do_not_count_toward_trials(settings: StudySettings) -> None:
    lenient = dataclasses.replace(settings, trials=3, max_au_fa_fr=0.5, confirm_seeds=1)
    study = open_study(lenient)
    study.enqueue_trial(WARM_START["base"])  # feasible: the best, of score 0.70
    study.enqueue_trial(WARM_START["base"])  # the same score cannot beat it: skipped
    study = run(lenient)
    skipped = [t for t in study.trials if t.user_attrs.get(SKIPPED)]
    trained = [t for t in study.trials if t.user_attrs.get("au_fa_fr_per_epoch")]
    assert [t.number for t in skipped] == [1]
    assert skipped[0].state == TrialState.PRUNED
    assert len(trained) == lenient.trials == finished_count(study)
    assert len(study.trials) == lenient.trials + 1
    # Every proposal after the first beat the best feasible value of its time.
    for trial in trained[1:]:
        earlier = [t for t in trained if t.number < trial.number and t.user_attrs[FEASIBLE]]
        assert proposal_score(trial.params) > max(t.value for t in earlier)


def test_students_below_the_floors_are_skipped_untrained_and_not_counted(
    settings: StudySettings,
) -> None:
    floored = dataclasses.replace(settings, trials=3, min_compression=15.0, min_speedup=15.0)
    study = run(floored)  # the warm start (BASE: C 1, S 1, and two hand-tuned) is below
    skipped = [t for t in study.trials if t.user_attrs.get(SKIPPED)]
    assert [t.number for t in skipped] == list(range(len(WARM_START)))
    assert all("below the floors C >= 15 and S >= 15" in t.user_attrs["pruning_reason"]
               for t in skipped)  # fmt: skip
    trained = [t for t in study.trials if t.user_attrs.get("au_fa_fr_per_epoch")]
    assert len(trained) == floored.trials == finished_count(study)
    for trial in trained:
        assert trial.user_attrs["compression_rate"] >= 15
        assert trial.user_attrs["speedup"] >= 15
    # The floors are what the study's trials are: a continuation with others is refused.
    with pytest.raises(UserError, match=re.escape("--min-speedup 15.0 -> 10.0")):
        run(dataclasses.replace(floored, min_speedup=10.0))


def test_the_sampler_finds_the_best_to_beat_under_every_pruner(settings: StudySettings) -> None:
    # Hyperband hands the sampler a per-bracket view of the study, not the study itself.
    for pruner in ("hyperband", "median", "quality-halving"):
        study = run(dataclasses.replace(settings, study_name=pruner, pruner=pruner))
        failed = [t.user_attrs.get("fail_reason") for t in study.trials
                  if t.state == TrialState.FAIL]  # fmt: skip
        assert not failed, (pruner, failed)
        assert finished_count(study) == settings.trials
