"""The dashboard and the report on a small real study: a real optuna-dashboard server over
loopback, read through its JSON API, and the HTML report file."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import optuna
import pytest
import torch

from kws.model import BASE, CRNN, CRNNConfig
from study.attributes import AU_FA_FR, AU_FA_FR_UPPER, BAR, FEASIBLE, PRUNED_REASON
from study.figures import FIGURE_TITLES, pareto_front
from study.runner import open_study, run
from study.search_space import WARM_START
from study.settings import StudySettings

REPO_ROOT = Path(__file__).resolve().parents[2]
SKIPPED_REASON = "score cannot beat the best feasible trial"  # study.objective's skip-hopeless


@pytest.fixture(scope="module")
def small_study(settings_in, tmp_path_factory: pytest.TempPathFactory) -> StudySettings:
    """Up to 12 trained trials of the toy study and skipped ones, run once for this module.

    The bar is 0.5: au_fa_fr is at most 0.25, so every trained trial is feasible whatever
    training reaches on this CPU, and a trial's value is then its architecture's score
    alone. After the warm start, BASE is queued again: its score (0.70) cannot beat the best
    KD-only student's (7.03), so it is skipped untrained (au_fa_fr 1.0: infeasible), on
    every CPU. Every later trial beats the one before, so the sampler soon finds nothing
    better to try and the study ends early; which trials are skipped follows from the
    scores and the seeded sampler alone.
    """
    settings = dataclasses.replace(
        settings_in(tmp_path_factory.mktemp("dashboard")), trials=12, max_au_fa_fr=0.5
    )
    study = open_study(settings)
    for params in [*WARM_START.values(), WARM_START["base"]]:
        study.enqueue_trial(params)
    run(settings)
    return settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON: the dashboard's page cannot parse it")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_the_dashboard_shows_trials_feasibility_notes_figures_and_checkpoints(
    small_study: StudySettings,
) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "run_study.py"), "dashboard",
         "--storage", small_study.storage, "--port", str(port),
         "--artifact-dir", small_study.artifact_dir],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                summaries = json.loads(_get(f"{base}/api/studies"))["study_summaries"]
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.5)
        [summary] = [s for s in summaries if s["study_name"] == small_study.name]
        # Parsed as strictly as a browser's JSON.parse does: no NaN, no Infinity.
        study = json.loads(
            _get(f"{base}/api/studies/{summary['study_id']}"), parse_constant=_not_json
        )

        trials = study["trials"]
        finished = [t for t in trials if t["state"] in ("Complete", "Pruned")]
        feasibility = set()
        skipped_numbers = []
        for trial in finished:
            attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
            # The dashboard's own feasibility (constraint <= 0) agrees with ours.
            [constraint] = trial["constraints"]
            feasible = attrs[FEASIBLE] == "True"
            assert (constraint <= 0) == feasible
            # A completed trial is judged on its mean plus its standard error over seeds.
            judged = float(attrs.get(AU_FA_FR_UPPER, attrs[AU_FA_FR]))
            assert constraint == pytest.approx(judged - float(attrs[BAR]))
            feasibility.add(feasible)
            assert f"Trial {trial['number']}" in trial["note"]["body"]
            assert "au_fa_fr" in trial["note"]["body"]
            # Trained means feasible (au_fa_fr <= 0.25 < 0.5); skipped means infeasible.
            skipped = attrs.get(PRUNED_REASON) == SKIPPED_REASON
            assert feasible != skipped, (trial["number"], attrs)
            if skipped:
                skipped_numbers.append(trial["number"])
        assert len(WARM_START) in skipped_numbers  # the queued BASE
        assert 4 <= len(finished) - len(skipped_numbers) <= 12
        assert feasibility == {True, False}, "the study should hold both kinds"

        figures = {g["id"]: json.loads(g["graph_object"]) for g in study["plotly_graph_objects"]}
        assert set(figures) == set(FIGURE_TITLES)
        for figure_id, figure in figures.items():
            assert figure["layout"]["title"]["text"] == FIGURE_TITLES[figure_id]

        trained = [t for t in trials if t["artifacts"]]
        assert trained, "no checkpoint was uploaded"
        trial = trained[0]
        artifact = trial["artifacts"][0]["artifact_id"]
        data = _get(f"{base}/artifacts/{summary['study_id']}/{trial['trial_id']}/{artifact}")
        payload = torch.load(io.BytesIO(data), weights_only=True)
        model = CRNN(CRNNConfig.from_dict(payload["model"]))
        model.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
        assert model(torch.randn(2, 40, 101)).shape == (2, 2)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _report(settings: StudySettings, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_study.py"), "report",
         "--storage", settings.storage, "--study-name", settings.name,
         "--artifact-dir", settings.artifact_dir, "--out", str(out),
         "--data-dir", settings.data_dir, "--feature-dir", settings.feature_dir,
         "--model-dir", settings.model_dir, *extra],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_report_is_one_self_contained_file_with_every_figure(
    small_study: StudySettings, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    result = _report(small_study, out)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert not re.search(r"<script[^>]+src=", text), "a script is loaded from elsewhere"
    assert not re.search(r"<link[^>]+href=", text)
    assert "Plotly" in text and len(text) > 1_000_000  # the library itself, inline
    for figure_id, title in FIGURE_TITLES.items():
        assert f'id="figure-{figure_id}"' in text
        assert title in text
    study = optuna.load_study(study_name=small_study.name, storage=small_study.storage)
    best = study.best_trial
    assert f"<td>{best.number}</td>" in text
    assert "Not exported yet" in text


def test_the_report_shows_an_exports_check_and_leaves_out_one_with_a_broken_figure(
    small_study: StudySettings, tmp_path: Path, fake_export
) -> None:
    folder = fake_export(tmp_path / "export", CRNN(BASE))
    out = tmp_path / "report.html"
    result = _report(small_study, out, "--export", str(folder))
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    # The fixture's figures: reference test 3.0e-3, bar ratio 1.10, test bar 3.3e-3.
    assert "1.10 &times; 3.000e-03 = 3.300e-03" in text and "PASSES" in text

    config = folder / "config.json"
    document = json.loads(config.read_text())
    del document["held_out"]["test_bar"]
    config.write_text(json.dumps(document))
    result = _report(small_study, out, "--export", str(folder))
    assert result.returncode == 0, result.stderr
    assert "held_out.test_bar" in result.stderr and str(config) in result.stderr
    assert "Traceback" not in result.stderr
    assert "PASSES" not in out.read_text()


def test_pareto_front_of_hand_made_points() -> None:
    # (au_fa_fr, score): lower au_fa_fr and higher score are better.
    points = [(1.0, 5.0), (2.0, 6.0), (1.5, 4.0), (3.0, 6.0), (0.5, 1.0), (2.5, 8.0)]
    assert pareto_front(points) == [4, 0, 1, 5]
