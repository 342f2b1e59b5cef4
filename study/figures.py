"""The study at a glance: plotly figures for the dashboard and the HTML report.

Every figure is built from the study alone (trial user attributes and the study's own
record of the reference), plus, for the FA/FR curves, the best trial's validation curve,
which needs its model and the data and so is computed by the caller
(:func:`best_trial_curve`).
"""

from __future__ import annotations

import math
import tempfile
import warnings

import numpy as np
import optuna
import optuna_dashboard
import plotly.graph_objects as go
import torch
from optuna.artifacts import FileSystemArtifactStore, download_artifact, get_all_artifact_meta
from optuna.trial import FrozenTrial, TrialState

from kws.metrics import fa_fr_curve
from kws.training import keyword_probs
from study.attributes import AU_FA_FR, AU_FA_FR_PER_EPOCH, BAR, FEASIBLE, counts_toward_budget
from study.objective import best_feasible
from study.records import load_checkpoint
from study.search_space import WARM_START

REFERENCE_HISTORY = "reference_val_history"  # study attribute: au_fa_fr per epoch
REFERENCE_CURVE = "reference_val_curve"  # study attribute: {"fa": [...], "fr": [...]}
WARM_START_NAMES = {
    "base": "BASE",
    "seed_report": "seed report",
    "best_kd_only": "best KD-only",
}
FIGURE_TITLES = {
    "tradeoff": "Trade-off: quality against compression",
    "learning_curves": "Learning curves of the best trials",
    "fa_fr": "FA/FR curves: best trial against the reference",
    "importances": "Parameter importances",
}
CURVE_POINTS = 400  # FA/FR curves are thinned to this many points for the figures


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    """Finished trials that trained (a trial skipped before training has no au_fa_fr)."""
    return [t for t in study.get_trials(deepcopy=False) if counts_toward_budget(t)]


def warm_start_label(trial: FrozenTrial) -> str | None:
    """``BASE`` / ``seed report`` / ``best KD-only`` for the enqueued configurations."""
    for key, params in WARM_START.items():
        if trial.params == params:
            return WARM_START_NAMES.get(key, key)
    return None


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (au_fa_fr, score) no other point beats on both: lower
    au_fa_fr and higher score. Sorted by au_fa_fr."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best_score = [], -math.inf
    for i in order:
        if points[i][1] > best_score:
            front.append(i)
            best_score = points[i][1]
    return front


def tradeoff_figure(study: optuna.Study) -> go.Figure:
    """Validation au_fa_fr (log x) against the compression score, one marker per trial."""
    trials = _finished(study)
    figure = go.Figure()
    for feasible, name, color in ((True, "feasible", "#1f77b4"), (False, "infeasible", "#aaaaaa")):
        group = [t for t in trials if bool(t.user_attrs.get(FEASIBLE)) == feasible]
        figure.add_trace(
            go.Scatter(
                x=[t.user_attrs[AU_FA_FR] for t in group],
                y=[t.user_attrs["score"] for t in group],
                mode="markers",
                name=name,
                marker={"color": color, "size": 7, "symbol": "circle" if feasible else "x"},
                text=[f"trial {t.number} ({t.state.name.lower()})" for t in group],
                hovertemplate="%{text}<br>au_fa_fr %{x:.3e}<br>score %{y:.2f}<extra></extra>",
            )
        )
    feasible = [t for t in trials if t.user_attrs.get(FEASIBLE) and t.state == TrialState.COMPLETE]
    points = [(t.user_attrs[AU_FA_FR], t.user_attrs["score"]) for t in feasible]
    front = [feasible[i] for i in pareto_front(points)]
    figure.add_trace(
        go.Scatter(
            x=[t.user_attrs[AU_FA_FR] for t in front],
            y=[t.user_attrs["score"] for t in front],
            mode="lines+markers",
            name="Pareto front (feasible, complete)",
            line={"color": "#d62728", "shape": "hv"},
            marker={"size": 10, "symbol": "diamond"},
        )
    )
    for trial in trials:
        label = warm_start_label(trial)
        if label is not None:
            figure.add_annotation(
                x=math.log10(trial.user_attrs[AU_FA_FR]),
                y=trial.user_attrs["score"],
                text=label,
                showarrow=True,
                arrowhead=2,
            )
    bar = study.user_attrs.get(BAR)
    if bar is not None:
        figure.add_vline(
            x=bar, line_dash="dash", line_color="#2ca02c", annotation_text="quality bar"
        )
    figure.update_layout(
        title=FIGURE_TITLES["tradeoff"],
        xaxis={"title": "validation au_fa_fr (lower is better, log scale)", "type": "log"},
        yaxis={"title": "compression score 3.5 C/10 + 3.5 S/10 (higher is better)"},
    )
    return figure


def learning_curves_figure(study: optuna.Study, top: int = 5) -> go.Figure:
    """Validation au_fa_fr per epoch of the ``top`` best feasible trials and the reference."""
    best = sorted(
        (
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get(FEASIBLE)
        ),
        key=lambda t: -(t.value or 0.0),
    )[:top]
    figure = go.Figure()
    reference = study.user_attrs.get(REFERENCE_HISTORY)
    if reference:
        figure.add_trace(
            go.Scatter(
                x=list(range(1, len(reference) + 1)),
                y=reference,
                name="reference (BASE)",
                line={"color": "black", "width": 3},
            )
        )
    for trial in best:
        history = trial.user_attrs.get(AU_FA_FR_PER_EPOCH, [])
        figure.add_trace(
            go.Scatter(
                x=list(range(1, len(history) + 1)),
                y=history,
                name=f"trial {trial.number} (score {trial.user_attrs['score']:.2f})",
            )
        )
    bar = study.user_attrs.get(BAR)
    if bar is not None:
        figure.add_hline(y=bar, line_dash="dash", line_color="#2ca02c", annotation_text="bar")
    figure.update_layout(
        title=FIGURE_TITLES["learning_curves"],
        xaxis={"title": "epoch"},
        yaxis={"title": "validation au_fa_fr (fp32 model, log scale)", "type": "log"},
    )
    return figure


def _thin(fa: list[float], fr: list[float]) -> tuple[list[float], list[float]]:
    step = max(1, len(fa) // CURVE_POINTS)
    return fa[::step] + fa[-1:], fr[::step] + fr[-1:]


def fa_fr_figure(
    reference: dict[str, list[float]] | None, best: dict[str, list[float]] | None, label: str
) -> go.Figure:
    """False rejects against false alarms (both as fractions of all clips, the au_fa_fr
    convention) for the reference and the best trial."""
    figure = go.Figure()
    for curve, name in ((reference, "reference (BASE)"), (best, label)):
        if curve:
            fa, fr = _thin(curve["fa"], curve["fr"])
            figure.add_trace(go.Scatter(x=fa, y=fr, name=name, mode="lines"))
    figure.update_layout(
        title=FIGURE_TITLES["fa_fr"],
        xaxis={"title": "false alarms / all validation clips (log scale)", "type": "log"},
        yaxis={"title": "false rejects / all validation clips"},
    )
    return figure


def importance_figure(study: optuna.Study) -> go.Figure:
    """Optuna's fANOVA importances of the parameters for the study's objective."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        figure = go.Figure()
        figure.add_annotation(text="needs two complete trials", showarrow=False)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            figure = optuna.visualization.plot_param_importances(study)
    figure.update_layout(
        title=FIGURE_TITLES["importances"],
        xaxis={"title": "importance for the penalized score (fANOVA, sums to 1)"},
    )
    return figure


def best_trial_curve(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    store: FileSystemArtifactStore,
    features: torch.Tensor,
    labels: torch.Tensor,
) -> tuple[dict[str, list[float]], str] | None:
    """The best feasible trial's validation FA/FR curve, from its uploaded checkpoint, and
    its label; None before there is one."""
    best = best_feasible(study)
    if best is None:
        return None
    metas = get_all_artifact_meta(best, storage=storage)
    if not metas:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/checkpoint.pt"
        download_artifact(artifact_store=store, file_path=path, artifact_id=metas[-1].artifact_id)
        model = load_checkpoint(path)
    fa, fr = fa_fr_curve(keyword_probs(model, features), labels)
    curve = {"fa": np.asarray(fa).tolist(), "fr": np.asarray(fr).tolist()}
    return curve, f"trial {best.number} (score {best.user_attrs['score']:.2f})"


def study_figures(
    study: optuna.Study, best_curve: tuple[dict[str, list[float]], str] | None
) -> dict[str, go.Figure]:
    """Every study-level figure, by id."""
    curve, label = best_curve if best_curve is not None else (None, "best trial")
    return {
        "tradeoff": tradeoff_figure(study),
        "learning_curves": learning_curves_figure(study),
        "fa_fr": fa_fr_figure(study.user_attrs.get(REFERENCE_CURVE), curve, label),
        "importances": importance_figure(study),
    }


def save_figures(study: optuna.Study, figures: dict[str, go.Figure]) -> None:
    """Store the figures in the study for optuna-dashboard, replacing earlier versions."""
    for figure_id, figure in figures.items():
        optuna_dashboard.save_plotly_graph_object(study, figure, graph_object_id=figure_id)


def reference_attributes(val_history: tuple[float, ...], val_curve: torch.Tensor) -> dict:
    """The reference's learning curve and FA/FR curve, as JSON-able study attributes."""
    fa, fr = _thin(val_curve[0].tolist(), val_curve[1].tolist())
    return {REFERENCE_HISTORY: list(val_history), REFERENCE_CURVE: {"fa": fa, "fr": fr}}
