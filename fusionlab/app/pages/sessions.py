"""Patients and sessions: every session of the data folder, searchable and sortable (re-scanned on each load)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, dash_table, dcc, html

from fusionlab.app import ids
from fusionlab.app._data import SessionRow, filter_rows, sort_rows
from fusionlab.app.app import get_context

dash.register_page(__name__, path="/", name="Sessions", title="fusionlab - sessions", order=0)

_COLUMNS = [
    {"id": "subject", "name": "subject"},
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
             "open": f"[open](/session/{r['id']}) · [agreement](/agreement/{r['id']})"}
            for r in rows]
    tips = [{"n_warnings": {"value": "\n".join(f"- {w}" for w in r["warnings"]) or "none", "type": "markdown"}}
            for r in rows]
    return data, tips


def layout(**_query: str) -> Any:
    """The page (query parameters are ignored: nothing about patients goes into URLs)."""
    rows = get_context().index.scan()
    data, tips = _table_rows(rows)
    return html.Div([
        html.H2("Patients and sessions"),
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
    rows = get_context().index.scan()
    rows = filter_rows(rows, query)
    if sort_by:
        rows = sort_rows(rows, sort_by[0]["column_id"], descending=sort_by[0]["direction"] == "desc")
    data, tips = _table_rows(rows)
    return data, tips, f"{len(rows)} session(s)"
