"""Patients and sessions: every session of the data folder, searchable and sortable (re-scanned on each load);
clinicians and admins upload recordings into a new or an existing session (ingested by a background job whose
progress the page polls)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dash_table, dcc, html

from fusionlab.app import ids
from fusionlab.app._auth import current_user_name, current_user_role
from fusionlab.app._data import SessionRow, filter_rows, sort_rows
from fusionlab.app._upload import Job
from fusionlab.app._users import can
from fusionlab.app.app import get_context

dash.register_page(__name__, path="/", name="Sessions", title="fusionlab - sessions", order=0)

_COLUMNS = [
    {"id": "subject", "name": "subject"},
    {"id": "status", "name": "status"},
    {"id": "date", "name": "date"},
    {"id": "modalities", "name": "modalities"},
    {"id": "n_streams", "name": "streams", "type": "numeric"},
    {"id": "duration_s", "name": "duration (s)", "type": "numeric"},
    {"id": "n_events", "name": "events", "type": "numeric"},
    {"id": "n_conflicts", "name": "conflicts", "type": "numeric"},
    {"id": "n_warnings", "name": "data-quality warnings", "type": "numeric"},
    {"id": "open", "name": "", "presentation": "markdown"},
]


def _table_rows(rows: list[SessionRow]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data = [{**{k: v for k, v in r.items() if k != "warnings"},
             "status": _status(r),
             "open": f"[open](/session/{r['id']})" if r.get("status") else
                     f"[open](/session/{r['id']}) · [agreement](/agreement/{r['id']})"}
            for r in rows]
    tips = [{"n_warnings": {"value": "\n".join(f"- {w}" for w in r["warnings"]) or "none", "type": "markdown"}}
            for r in rows]
    return data, tips


def _status(r: SessionRow) -> str:
    """``"recording (last flush 14:02:31)"`` for a recording in progress, else empty."""
    if not r.get("status"):
        return ""
    import datetime as dt

    when = r.get("last_flush") or ""
    try:
        local = dt.datetime.fromisoformat(when).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return r["status"]
    return f"{r['status']} (last flush {local})"


_ACCEPT = ".c3d,.csv,.tsv,.txt,.mot,.xdf,.mat,.mp4,.m4v,.mov,.avi,.mkv,.webm"


def _upload_panel(rows: list[SessionRow], max_bytes: int) -> Any:
    options = [html.Option("a new session", value="new")]
    options += [html.Option(f"{r['subject'] or '(no subject)'} - {r['date'] or '(no date)'} ({r['modalities']})",
                            value=r["id"]) for r in rows]
    return html.Details([
        html.Summary("Upload a recording (C3D, IMU, force plates, video)"),
        html.Div([
            # Dash has no file input that does not go through base64: assets/upload.js opens the browser's file picker
            html.Button("Choose file ...", id=ids.UPLOAD_FILE, type="button", **{"data-accept": _ACCEPT}),
            html.Label(["into ", html.Select(options, id=ids.UPLOAD_TARGET)]),
            html.Label(["subject (new session) ", dcc.Input(id=ids.UPLOAD_SUBJECT, type="text", placeholder="S042",
                                                           maxLength=64)]),
            html.Label(["date ", dcc.Input(id=ids.UPLOAD_DATE, type="text", placeholder="YYYY-MM-DD", maxLength=10)]),
            dcc.Checklist(id=ids.UPLOAD_PROCESS, options=[{"label": " detect events and fuse afterwards",
                                                           "value": "process"}], value=[], inline=True),
            html.Button("Upload", id=ids.UPLOAD_BUTTON, **{"data-max-bytes": str(max_bytes)}),
        ], className="toolbar upload-form"),
        html.P(f"At most {max_bytes / 1e6:.0f} MB per file; the type is checked from the content. The file is kept "
               "in the data folder's private area; the session changes only if the whole ingest succeeds.",
               className="muted"),
    ], className="upload-panel")


def _job_line(j: Job) -> Any:
    pct = f"{100 * j.progress:.0f} %"
    state = {"queued": "queued", "running": f"{j.stage} ({pct})", "done": "done", "failed": "failed"}[j.state]
    parts: list[Any] = [html.B(j.filename), f" ({j.fmt}) -> {'new session' if j.new_session else 'session'}: ",
                        html.Span(state, className=f"job-{j.state}")]
    if j.message:
        parts.append(f" - {j.message}")
    if j.state == "done":
        parts += [" ", dcc.Link("open", href=f"/session/{j.session}")]
    if j.warnings:
        parts.append(html.Ul([html.Li(w) for w in j.warnings[:10]], className="muted"))
    return html.Li(parts, className="job", **{"data-state": j.state})


def layout(**_query: str) -> Any:
    """The page (query parameters are ignored: nothing about patients goes into URLs)."""
    c = get_context()
    rows = c.index.scan(live=True)
    if c.overviews is not None:  # the first view of a new or changed session finds its overview ready
        c.overviews.prebuild_in_background(c.index.session_paths(), c.max_points)
    data, tips = _table_rows(rows)
    may_upload = can(current_user_role(), "upload")
    return html.Div([
        html.H2("Patients and sessions"),
        _upload_panel([r for r in rows if not r["status"]], c.upload_max_bytes) if may_upload else None,
        html.Div(id=ids.UPLOAD_STATUS, className="muted", role="status"),
        html.Ul(id=ids.UPLOAD_JOBS, className="jobs"),
        dcc.Interval(id=ids.UPLOAD_POLL, interval=1000),
        dcc.Store(id=ids.UPLOAD_SEEN_STORE, data=[]),
        html.Div([
            dcc.Input(id=ids.SESSIONS_SEARCH, type="search", debounce=True, className="search",
                      placeholder="search subject, date, modality, warning ..."),
            html.Span(f"{len(rows)} session(s)", id=ids.SESSIONS_COUNT, className="muted"),
        ], className="toolbar"),
        dash_table.DataTable(
            id=ids.SESSIONS_TABLE, columns=_COLUMNS, data=data, tooltip_data=tips, tooltip_duration=None,
            sort_action="custom", sort_mode="single", sort_by=[{"column_id": "date", "direction": "desc"}],
            markdown_options={"link_target": "_self"}, page_size=50, style_as_list_view=True,
            style_cell={"textAlign": "left", "padding": "4px 8px", "fontFamily": "inherit", "fontSize": "14px"},
            style_header={"fontWeight": "600"},
            style_data_conditional=[
                {"if": {"filter_query": "{n_conflicts} > 0", "column_id": "n_conflicts"}, "color": "#b00020",
                 "fontWeight": "600"},
                {"if": {"filter_query": "{n_warnings} > 0", "column_id": "n_warnings"}, "color": "#9a6700"},
            ]),
    ])


@callback(Output(ids.SESSIONS_TABLE, "data"), Output(ids.SESSIONS_TABLE, "tooltip_data"),
          Output(ids.SESSIONS_COUNT, "children"),
          Input(ids.SESSIONS_SEARCH, "value"), Input(ids.SESSIONS_TABLE, "sort_by"), prevent_initial_call=True)
def _update(query: str | None, sort_by: list[dict[str, str]] | None) -> tuple[Any, Any, str]:
    return _table_view(query, sort_by)


def _table_view(query: str | None, sort_by: list[dict[str, str]] | None) -> tuple[Any, Any, str]:
    rows = get_context().index.scan(live=True)
    rows = filter_rows(rows, query)
    if sort_by:
        rows = sort_rows(rows, sort_by[0]["column_id"], descending=sort_by[0]["direction"] == "desc")
    data, tips = _table_rows(rows)
    return data, tips, f"{len(rows)} session(s)"


@callback(Output(ids.UPLOAD_JOBS, "children"), Output(ids.UPLOAD_SEEN_STORE, "data"),
          Output(ids.SESSIONS_TABLE, "data", allow_duplicate=True),
          Output(ids.SESSIONS_TABLE, "tooltip_data", allow_duplicate=True),
          Output(ids.SESSIONS_COUNT, "children", allow_duplicate=True),
          Input(ids.UPLOAD_POLL, "n_intervals"), State(ids.UPLOAD_SEEN_STORE, "data"),
          State(ids.SESSIONS_SEARCH, "value"), State(ids.SESSIONS_TABLE, "sort_by"), prevent_initial_call=True)
def _poll_jobs(_n: int, seen: list[str] | None, query: str | None, sort_by: Any) -> tuple[Any, ...]:
    jobs = get_context().jobs.for_user(current_user_name())[:20]
    finished = sorted(j.id for j in jobs if j.state == "done")
    lines = [_job_line(j) for j in jobs]
    if finished == sorted(seen or []):
        return lines, dash.no_update, dash.no_update, dash.no_update, dash.no_update
    data, tips, count = _table_view(query, sort_by)  # a job finished: the new or changed session shows in the list
    return lines, finished, data, tips, count
