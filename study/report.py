"""One self-contained HTML file that shows a study: figures, top trials, held-out result.

plotly's JavaScript is embedded once, inline, so the file opens offline and can be mailed
or archived alone. The figures are those of the dashboard (:mod:`study.figures`).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState

from study.attributes import AU_FA_FR, BAR, FEASIBLE
from study.export import Export, held_out_verdict
from study.figures import FIGURE_TITLES, warm_start_label

TOP_TRIALS = 15

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td.left, th.left { text-align: left; }
.pass { color: #2ca02c; font-weight: bold; } .fail { color: #d62728; font-weight: bold; }
"""


def _summary(study: optuna.Study) -> str:
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    bar = study.user_attrs.get(BAR)
    reference = study.user_attrs.get("reference_val_au_fa_fr")
    rows = [
        ("study", html.escape(study.study_name)),
        ("trials", f"{counts[TrialState.COMPLETE]} complete, {counts[TrialState.PRUNED]} "
                   f"pruned, {counts[TrialState.FAIL]} failed"),
        ("reference validation au_fa_fr", "-" if reference is None else f"{reference:.3e}"),
        ("quality bar (au_fa_fr at most)", "-" if bar is None else f"{bar:.3e}"),
    ]  # fmt: skip
    body = "".join(f"<tr><th class='left'>{k}</th><td class='left'>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _top_trials(study: optuna.Study) -> str:
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get(FEASIBLE)
    ]
    complete.sort(key=lambda t: -(t.value or 0.0))
    head = (
        "<tr><th>trial</th><th class='left'>architecture</th><th>params</th><th>MACs</th>"
        "<th>bytes</th><th>C</th><th>S</th><th>score</th><th>val au_fa_fr</th>"
        "<th>kept epoch</th><th class='left'>note</th></tr>"
    )
    rows = []
    for trial in complete[:TOP_TRIALS]:
        p, a = trial.params, trial.user_attrs
        arch = (
            f"{p['cnn_out_channels']}ch k({p['kernel_freq']},{p['kernel_time']}) "
            f"s({p['stride_freq']},{p['stride_time']}) {p['gru_num_layers']}x{p['hidden_size']}"
            f"{' fp16' if p['fp16'] else ''}"
        )
        rows.append(
            f"<tr><td>{trial.number}</td><td class='left'>{arch}</td><td>{a['params']:,}</td>"
            f"<td>{a['macs']:,}</td><td>{a['state_dict_bytes']:,}</td>"
            f"<td>{a['compression_rate']:.2f}</td><td>{a['speedup']:.2f}</td>"
            f"<td>{a['score']:.2f}</td><td>{a[AU_FA_FR]:.3e}</td>"
            f"<td>{a.get('kept_epoch', '-')}</td>"
            f"<td class='left'>{warm_start_label(trial) or ''}</td></tr>"
        )
    if not rows:
        return "<p>No feasible complete trial yet.</p>"
    return f"<table>{head}{''.join(rows)}</table>"


def _held_out(export: Export | None) -> str:
    if export is None:
        return "<p>Not exported yet: <code>python run_study.py export</code> retrains the " \
               "winner on several seeds and measures it on the test split.</p>"  # fmt: skip
    held = export.held_out
    verdict = held_out_verdict(held)
    values = ", ".join(f"{v:.3e}" for v in held["test_au_fa_fr"])
    return (
        f"<p>Exported trial {export.study['trial_number']} (score "
        f"{export.metrics['score']:.2f}): test au_fa_fr over seeds {held['seeds']}: "
        f"{values}; mean {held['test_au_fa_fr_mean']:.3e} &plusmn; "
        f"{held['test_au_fa_fr_std']:.1e}. The reference's (BASE) test au_fa_fr, mean over "
        f"its seeds, is {held['reference_test_au_fa_fr']:.3e}, so the like-for-like bar is "
        f"{held['bar_ratio']:.2f} &times; {held['reference_test_au_fa_fr']:.3e} = "
        f"{held['test_bar']:.3e} (the validation bar is {held['bar']:.3e}): "
        f"<span class='{'pass' if held['passes'] else 'fail'}'>{verdict}</span>.</p>"
    )


def write_report(
    study: optuna.Study,
    figures: dict[str, go.Figure],
    out: str | Path,
    export: Export | None = None,
) -> Path:
    """Write the report of ``study`` to ``out``: summary, ``figures``, top trials and the
    export's held-out check, if it was exported."""
    parts = []
    for index, (figure_id, figure) in enumerate(figures.items()):
        parts.append(f"<h2>{html.escape(FIGURE_TITLES.get(figure_id, figure_id))}</h2>")
        parts.append(
            figure.to_html(
                full_html=False,
                include_plotlyjs=index == 0,  # the whole library, inline, once
                div_id=f"figure-{figure_id}",
            )
        )
    document = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>kws-study: {html.escape(study.study_name)}</title><style>{_STYLE}</style></head>
<body>
<h1>kws-study report: {html.escape(study.study_name)}</h1>
{_summary(study)}
<h2>Held-out check</h2>
{_held_out(export)}
<h2>Best feasible trials</h2>
{_top_trials(study)}
{"".join(parts)}
<script type="application/json" id="figure-ids">{json.dumps(list(figures))}</script>
</body></html>
"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(document)
    return out
