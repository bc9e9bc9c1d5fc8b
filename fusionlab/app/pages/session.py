"""One session: every modality on one time axis (linked zoom), fused signals with their 95 % band, events lanes,
conflict windows and the list of conflicts (click one: zoom to it and read why). When the session has a pose
video whose file is found, the video frame with its landmarks follows the mouse over the plots (``assets/cursor.js``
reports the time under it) and a clicked conflict shows its first frame.

A recording in progress (``fusionlab record --lsl``, `fusionlab.app._live`) shows its streams up to the last
flush and re-reads them every `LIVE_REFRESH_MS` (a ``dcc.Interval``, enabled only while the live file exists);
once merged the same URL shows the session."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, ctx, dash_table, dcc, html

from fusionlab.app import ids
from fusionlab.app._audit import audit
from fusionlab.app._auth import current_user_name, current_user_role
from fusionlab.app._data import conflict_rows, default_traces, list_traces, session_update
from fusionlab.app._live import LIVE_REFRESH_MS, live_status, live_update, open_any
from fusionlab.app._video import cursor_time
from fusionlab.app._users import can
from fusionlab.app.app import export_url, frame_url, get_context

dash.register_page(__name__, path_template="/session/<sid>", name="Session", title="fusionlab - session", order=1)

_TRIGGERS = {ids.SESSION_GRAPH: "zoom", ids.SESSION_TRACES: "traces", ids.SESSION_CONFLICTS: "conflict"}
_CONFLICT_COLUMNS = [{"id": k, "name": n} for k, n in (("start_s", "start (s)"), ("end_s", "end (s)"),
                                                      ("quantity", "quantity"), ("modality", "modality"),
                                                      ("severity", "severity"))]


def layout(sid: str | None = None, **_query: str) -> Any:
    """The page of session ``sid`` (an opaque id); records the view in the audit log."""
    from fusionlab.app._data import _read_fusion_or_empty, figure_for_view
    c = get_context()
    path = c.index.view_path_of(sid) if sid else None
    if path is None:
        return html.Div([html.H2("Session not found"), dcc.Link("back to the sessions", href="/")])
    audit(c.data_dir, current_user_name(), "view_session", sid)
    with open_any(path) as r:
        options = list_traces(r)
        chosen = default_traces(r)
        subject, date = r.subject or "(no subject)", r.session_date or "(no date)"
    live = live_status(path)
    fusion = _read_fusion_or_empty(path) if path.exists() else {}
    fig = figure_for_view(path, chosen, None, max_points=c.max_points, zoom_max_points=c.zoom_max_points,
                          cache=c.figures, overviews=c.overviews, sid=sid)
    conflicts = conflict_rows(fusion)
    graph = dcc.Loading(dcc.Graph(id=ids.SESSION_GRAPH, figure=fig,
                                  config={"displaylogo": False, "scrollZoom": True,
                                          "modeBarButtonsToRemove": ["toImage"]}),
                        delay_show=300)
    poses = c.frames.poses(path) if not live["live"] else []
    if poses:
        t_first = float(poses[0].session_time_s[0])
        video = html.Aside([
            dcc.Store(id=ids.SESSION_CURSOR_STORE, data=None),  # only here: no cursor traffic without a video
            html.Img(id=ids.SESSION_VIDEO_IMG, src=frame_url(sid, t_first), alt="video frame with pose landmarks"),
            html.Div(c.frames.caption(path, t_first), id=ids.SESSION_VIDEO_CAPTION, className="muted caption"),
            html.Div("The frame follows the mouse over the plots; a clicked conflict shows its first frame.",
                     className="muted caption"),
        ], id=ids.SESSION_VIDEO_PANEL, className="video-panel")
        body = html.Div([html.Div(graph, className="graph-col"), video], className="session-body")
    else:
        body = graph
    return html.Div([
        dcc.Store(id=ids.SESSION_KEY_STORE, data={"sid": sid}),
        dcc.Store(id=ids.SESSION_VIEW_STORE, data={"window": None}),
        # always in the layout (an Input of a callback), polling only while the recording is in progress
        dcc.Interval(id=ids.SESSION_LIVE_POLL, interval=LIVE_REFRESH_MS, disabled=not live["live"]),
        html.Div([html.H2(f"{subject} - {date}" + (f" ({live['status']})" if live["live"] else "")),
                  dcc.Link("all sessions", href="/"), *([] if live["live"] else _export_links(sid))],
                 className="toolbar"),
        html.P(live["text"] if live["live"] else None, id=ids.SESSION_LIVE_STATUS, className="muted",
               role="status"),
        dcc.Dropdown(id=ids.SESSION_TRACES, options=options, value=chosen, multi=True,
                     placeholder="streams and channels to show"),
        body,
        html.H3(f"Conflicts ({len(conflicts)})"),
        # the table is always in the layout (hidden when empty): it is an Input of the page's callback
        html.Div(dash_table.DataTable(id=ids.SESSION_CONFLICTS, columns=_CONFLICT_COLUMNS,
                                      data=[{**row, "id": row["index"]} for row in conflicts], page_size=20,
                                      style_as_list_view=True,
                                      style_cell={"textAlign": "left", "fontFamily": "inherit"},
                                      style_data_conditional=[{"if": {"filter_query": '{severity} = "high"'},
                                                               "color": "#b00020"}]),
                 style=None if conflicts else {"display": "none"}),
        None if conflicts else html.P("No conflicts stored (run 'fusionlab fuse' on the session).",
                                      className="muted"),
        html.Div(id=ids.SESSION_EXPLANATION, className="explanation"),
    ])


@callback(Output(ids.SESSION_GRAPH, "figure"), Output(ids.SESSION_EXPLANATION, "children"),
          Output(ids.SESSION_VIEW_STORE, "data"),
          Input(ids.SESSION_GRAPH, "relayoutData"), Input(ids.SESSION_TRACES, "value"),
          Input(ids.SESSION_CONFLICTS, "active_cell"),
          State(ids.SESSION_KEY_STORE, "data"), State(ids.SESSION_VIEW_STORE, "data"), prevent_initial_call=True)
def _update(relayout: Any, traces: list[str] | None, cell: dict[str, Any] | None, key: dict[str, str],
            view: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    c = get_context()
    path = c.index.view_path_of(key.get("sid", "")) if key else None
    if path is None:
        raise dash.exceptions.PreventUpdate
    up = session_update(path, trigger=_TRIGGERS[ctx.triggered_id], relayout=relayout, traces=traces,
                        conflict_index=None if not cell else cell.get("row_id"), view=view, cache=c.figures,
                        max_points=c.max_points, zoom_max_points=c.zoom_max_points, overviews=c.overviews,
                        sid=key.get("sid"))
    return tuple(dash.no_update if v is None else v for v in (up.figure, up.explanation, up.view))


@callback(Output(ids.SESSION_GRAPH, "figure", allow_duplicate=True), Output(ids.SESSION_LIVE_STATUS, "children"),
          Output(ids.SESSION_LIVE_POLL, "disabled"),
          Input(ids.SESSION_LIVE_POLL, "n_intervals"), State(ids.SESSION_TRACES, "value"),
          State(ids.SESSION_VIEW_STORE, "data"), State(ids.SESSION_KEY_STORE, "data"), prevent_initial_call=True)
def _live_refresh(_n: int, traces: list[str] | None, view: dict[str, Any] | None,
                  key: dict[str, str]) -> tuple[Any, Any, bool]:
    c = get_context()
    path = c.index.view_path_of(key.get("sid", "")) if key else None
    if path is None:
        return dash.no_update, "The recording is gone.", True
    up = live_update(path, traces=traces, view=view, cache=c.figures, max_points=c.max_points,
                     zoom_max_points=c.zoom_max_points)
    return (dash.no_update if up.figure is None else up.figure), up.text, not up.live


def _export_links(sid: str) -> list[Any]:
    """Download links (plain links: the browser downloads, the route checks the role and writes the audit record)."""
    if not can(current_user_role(), "export"):
        return []
    return [html.A("export results (CSV)", href=export_url(sid, "results.csv"), id="export-csv", download=""),
            html.A("export C3D", href=export_url(sid, "session.c3d"), id="export-c3d", download="")]


_VIDEO_TRIGGERS = {ids.SESSION_CURSOR_STORE: "cursor", ids.SESSION_VIEW_STORE: "view"}


@callback(Output(ids.SESSION_VIDEO_IMG, "src"), Output(ids.SESSION_VIDEO_CAPTION, "children"),
          Input(ids.SESSION_CURSOR_STORE, "data"), Input(ids.SESSION_VIEW_STORE, "data"),
          State(ids.SESSION_KEY_STORE, "data"), prevent_initial_call=True)
def _video_frame(cursor: Any, view: Any, key: dict[str, str]) -> tuple[str, Any]:
    t = cursor_time(_VIDEO_TRIGGERS.get(ctx.triggered_id), cursor, view)
    c = get_context()
    sid = key.get("sid", "") if key else ""
    path = c.index.path_of(sid) if sid else None
    if t is None or path is None:
        raise dash.exceptions.PreventUpdate
    caption = c.frames.caption(path, t)
    if caption is None:
        raise dash.exceptions.PreventUpdate
    return frame_url(sid, t), caption
