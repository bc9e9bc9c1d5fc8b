"""A patient's timeline: parameters across sessions with their 95 % intervals, changes marked real only beyond the
minimal detectable change, kinematic curves against the speed-matched normative bands, and the clinical profile
(chosen per patient by a clinician or an admin)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html

from fusionlab.app import ids
from fusionlab.app._audit import audit
from fusionlab.app._auth import current_user_name, current_user_role
from fusionlab.app._clinical import (
    kinematics_figure,
    patient_groups,
    patient_id,
    patient_report,
    timeline_figure,
)
from fusionlab.app._norms import NORMATIVE_ATTRIBUTION, variable_label
from fusionlab.app._profiles import PatientStore, load_profiles
from fusionlab.app._users import can
from fusionlab.app.app import get_context

dash.register_page(__name__, path_template="/patient/<pid>", name="Patient", title="fusionlab - patient", order=4)

MAX_OTHER_PARAMETERS = 6


def _find(pid: str) -> tuple[str, list[Any]] | None:
    c = get_context()
    for subject, rows in patient_groups(c.index.scan()).items():
        if patient_id(subject, c.index.key) == pid:
            return subject, rows
    return None


def _body(subject: str, rows: list[Any], profile_id: str, variable: str | None = None) -> list[Any]:
    c = get_context()
    profile = load_profiles()[profile_id]
    rep = patient_report([(r, c.index.path_of(r["id"])) for r in rows], profile, c.params)
    points = rep["points"]
    names = list(dict.fromkeys(n for p in points for n in p.values))
    shown = [n for n in profile["lead"] if n in names]
    shown += [n for n in names if n not in shown and not n.endswith("_si_pct")][:MAX_OTHER_PARAMETERS]
    units = {n: next(p.values[n].get("unit", "") for p in points if n in p.values) for n in shown}
    graphs = [dcc.Graph(figure=timeline_figure(points, n, units[n]), config={"displaylogo": False})
              for n in shown]
    changes = [html.Li(ch.describe(units.get(n, ""))) for p in points for n, ch in p.changes.items()
               if ch.status == "real"]
    latest = points[-1] if points else None
    kin = rep["kinematics"].get(latest.sid, {}) if latest else {}
    variables = list(next(iter(kin.get("variables", {}).values()), {}))
    variable = variable if variable in variables else (variables[0] if variables else None)
    findings = rep["findings"].get(latest.sid, []) if latest else []
    return [
        html.H3(f"Profile: {profile['name']}"),
        html.Ul([html.Li([f["text"], html.Br(), html.Small(f"source: {f['source']}", className="muted")])
                 for f in findings]) if findings else html.P("No profile threshold crossed in the latest session.",
                                                             className="muted"),
        html.H3("Real changes (beyond MDC95 = 1.96 x sqrt(2) x SEM)"),
        html.Ul(changes) if changes else html.P("No change beyond the minimal detectable change.",
                                                className="muted"),
        html.Div(graphs),
        html.H3("Kinematics of the latest session against the normative band"),
        html.P(kin.get("note", ""), className="muted"),
        html.Ul([html.Li(t) for t in kin.get("outside", [])]),
        html.P("Gait Profile Score: " + ", ".join(f"{s} {v:.1f} deg" for s, v in kin.get("gps_deg", {}).items()))
        if kin.get("gps_deg") else None,
        dcc.Dropdown(id=ids.PATIENT_VARIABLE, options=[{"label": variable_label(v), "value": v} for v in variables],
                     value=variable, clearable=False) if variables else None,
        dcc.Graph(id=ids.PATIENT_KINEMATICS, figure=kinematics_figure(kin, variable)) if variable else None,
        html.P(NORMATIVE_ATTRIBUTION, className="muted"),
        html.H3("Sessions"),
        html.Ul([html.Li([f"{r['date']}: ", dcc.Link("session", href=f"/session/{r['id']}"), " · ",
                          dcc.Link("agreement", href=f"/agreement/{r['id']}")]) for r in rows]),
    ]


def layout(pid: str | None = None, **_query: str) -> Any:
    """The timeline page of patient ``pid`` (opaque id)."""
    found = _find(pid) if pid else None
    if found is None:
        return html.Div([html.H2("Patient not found"), dcc.Link("back to triage", href="/triage")])
    subject, rows = found
    c = get_context()
    audit(c.data_dir, current_user_name(), "view_patient", pid)
    profile_id = PatientStore(c.data_dir).profile_of(subject)
    editable = can(current_user_role(), "set_profile")
    demo = subject.upper().startswith("DEMO")
    return html.Div([
        dcc.Store(id=ids.PATIENT_KEY_STORE, data={"pid": pid}),
        html.Div([html.H2(f"{subject}" + (" - DEMO DATA" if demo else "")), dcc.Link("triage", href="/triage")],
                 className="toolbar"),
        html.P("Demo patient built from public sample recordings, with simulated changes (docs/app.md).",
               className="demo-banner") if demo else None,
        html.Div([html.Label("clinical profile "), dcc.Dropdown(
            id=ids.PATIENT_PROFILE, options=[{"label": p["name"], "value": k} for k, p in load_profiles().items()],
            value=profile_id, clearable=False, disabled=not editable),
            html.Span("" if editable else "read-only for your role", id=ids.PATIENT_PROFILE_STATUS,
                      className="muted")]),
        html.Div(_body(subject, rows, profile_id), id="patient-body"),
    ])


@callback(Output("patient-body", "children"), Output(ids.PATIENT_PROFILE_STATUS, "children"),
          Input(ids.PATIENT_PROFILE, "value"), State(ids.PATIENT_KEY_STORE, "data"), prevent_initial_call=True)
def _set_profile(profile: str, key: dict[str, str] | None) -> tuple[Any, str]:
    found = _find(key.get("pid", "")) if key else None
    if found is None or not profile:
        raise dash.exceptions.PreventUpdate
    subject, rows = found
    c = get_context()
    try:
        PatientStore(c.data_dir).set_profile(subject, profile, user=current_user_name(), role=current_user_role())
    except PermissionError as e:
        return dash.no_update, str(e)
    audit(c.data_dir, current_user_name(), "set_profile", key["pid"])
    return _body(subject, rows, profile), f"profile saved: {load_profiles()[profile]['name']}"


@callback(Output(ids.PATIENT_KINEMATICS, "figure"), Input(ids.PATIENT_VARIABLE, "value"),
          State(ids.PATIENT_KEY_STORE, "data"), prevent_initial_call=True)
def _variable(variable: str, key: dict[str, str] | None) -> Any:
    found = _find(key.get("pid", "")) if key else None
    if found is None or not variable:
        raise dash.exceptions.PreventUpdate
    _subject, rows = found
    c = get_context()
    return kinematics_figure(c.params.kinematics(c.index.path_of(rows[-1]["id"])), variable)
