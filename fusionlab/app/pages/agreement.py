"""Agreement between modalities in one session: each modality's value with its 95 % interval, which modality
disagrees and by how much, Bland-Altman plots for modality pairs, and each detector's measured validation."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dash_table, dcc, html

from fusionlab.app import ids
from fusionlab.app._agreement import (
    bland_altman,
    bland_altman_figure,
    disagreement,
    modality_pairs,
    modality_table,
    validation_for,
)
from fusionlab.app._audit import audit
from fusionlab.app._auth import current_user_name
from fusionlab.app._clinical import parameter_label
from fusionlab.app.app import get_context

dash.register_page(__name__, path_template="/agreement/<sid>", name="Agreement", title="fusionlab - agreement",
                   order=2)


def _fmt(x: Any, nd: int = 4) -> str:
    return "" if x is None else f"{x:.{nd}g}"


def _plots(sources: dict[str, Any], parameter: str) -> list[Any]:
    unit = next((s["parameters"][parameter]["unit"] for s in sources.values() if parameter in s["parameters"]), "")
    out = []
    for a, b in modality_pairs(sources, parameter):
        ba = bland_altman(sources[a]["strides"], sources[b]["strides"], parameter)
        if ba["n"] < 2:
            out.append(html.P(f"{a} vs {b}: {ba['n']} paired stride(s), too few for limits of agreement.",
                              className="muted"))
            continue
        out.append(dcc.Graph(figure=bland_altman_figure(ba, a, b, unit), config={"displaylogo": False}))
        out.append(html.P(f"bias {_fmt(ba['bias'])} {unit}, 95 % limits {_fmt(ba['loa_low'])} .. "
                          f"{_fmt(ba['loa_high'])} {unit}, ICC(2,1) {_fmt(ba['icc_a1'], 3) or 'n/a'}",
                          className="muted"))
    return out or [html.P("No two modalities measured this parameter stride by stride.", className="muted")]


def layout(sid: str | None = None, **_query: str) -> Any:
    """The agreement page of session ``sid`` (opaque id)."""
    c = get_context()
    path = c.index.path_of(sid) if sid else None
    if path is None:
        return html.Div([html.H2("Session not found"), dcc.Link("back to the sessions", href="/")])
    audit(c.data_dir, current_user_name(), "view_agreement", sid)
    params = c.params.parameters(path)
    sources = params["sources"]
    rows = modality_table(sources)
    table = [{"parameter": parameter_label(r["parameter"]), "modality": r["modality"], "value": _fmt(r["value"]),
              "ci": "" if r["ci_low"] is None else f"{_fmt(r['ci_low'])} .. {_fmt(r['ci_high'])}",
              "n": r["n"], "unit": r["unit"]} for r in rows]
    dis = [d for d in disagreement(sources) if d["disagrees"]]
    names = sorted({r["parameter"] for r in rows})
    first = "stride_time_s" if "stride_time_s" in names else (names[0] if names else None)
    validation = []
    for key in sources:
        v = validation_for(key)
        if v is None:
            continue
        figs = "; ".join(f"{f['kind']}: precision {_fmt(f['precision'], 2) or 'n/a'}, recall "
                         f"{_fmt(f['recall'], 2) or 'n/a'}, median error {_fmt(f['median_abs_error_ms'], 3) or 'n/a'}"
                         f"{' ms' if f['median_abs_error_ms'] is not None else ''}"
                         for f in v["figures"])
        validation.append(html.Li([html.B(f"{key}: "), f"{v['name']}. Against {v['reference']}: {figs or '-'}. "
                                   f"{('Stride time: ' + v['stride_time'] + '. ') if v['stride_time'] else ''}"
                                   f"{v['caveat']}"]))
    return html.Div([
        dcc.Store(id=ids.AGREEMENT_KEY_STORE, data={"sid": sid}),
        html.Div([html.H2("Agreement between modalities"), dcc.Link("session view", href=f"/session/{sid}")],
                 className="toolbar"),
        html.P("Each modality's value is the mean over its strides, both sides pooled, with its 95 % interval "
               "(mean ± 1.96 SEM).", className="muted"),
        dash_table.DataTable(columns=[{"id": k, "name": n} for k, n in (
            ("parameter", "parameter"), ("modality", "modality"), ("value", "value"), ("ci", "95 % interval"),
            ("unit", "unit"), ("n", "strides"))], data=table, page_size=40, style_as_list_view=True,
            style_cell={"textAlign": "left", "fontFamily": "inherit"}),
        html.H3("Which modality disagrees"),
        html.Ul([html.Li(f"{parameter_label(d['parameter'])}: {d['modality']} differs from the other "
                         f"{d['n_modalities'] - 1} by {_fmt(d['difference'])} ({d['z']:+.1f} combined SD)")
                 for d in dis]) if dis else html.P("No modality differs from the others by more than 1.96 combined "
                                                   "SD.", className="muted"),
        html.H3("Bland-Altman, stride by stride"),
        dcc.Dropdown(id=ids.AGREEMENT_PARAMETER, options=[{"label": parameter_label(n), "value": n}
                                                          for n in names], value=first, clearable=False),
        html.Div(_plots(sources, first) if first else [], id=ids.AGREEMENT_PLOTS),
        html.H3("Validation behind each modality (measured, README.md)"),
        html.Ul(validation) if validation else html.P("No validation figures for these detectors.",
                                                      className="muted"),
    ])


@callback(Output(ids.AGREEMENT_PLOTS, "children"), Input(ids.AGREEMENT_PARAMETER, "value"),
          State(ids.AGREEMENT_KEY_STORE, "data"), prevent_initial_call=True)
def _update(parameter: str | None, key: dict[str, str] | None) -> Any:
    c = get_context()
    path = c.index.path_of(key.get("sid", "")) if key else None
    if path is None or not parameter:
        raise dash.exceptions.PreventUpdate
    return _plots(c.params.parameters(path)["sources"], parameter)
