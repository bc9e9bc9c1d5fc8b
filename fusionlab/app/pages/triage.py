"""Triage: one row per patient, what needs attention first (real changes beyond the MDC, findings outside the
normative range or profile thresholds, conflicts, data-quality warnings), one click to the evidence."""

from __future__ import annotations

from typing import Any

import dash
from dash import dash_table, html

from fusionlab.app import ids
from fusionlab.app._clinical import folder_triage
from fusionlab.app._profiles import PatientStore, load_profiles
from fusionlab.app.app import get_context

dash.register_page(__name__, path="/triage", name="Triage", title="fusionlab - triage", order=3)


def triage_table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the triage table (markdown cells with links to the evidence)."""
    profiles = load_profiles()
    out = []
    for r in rows:
        real = [c.describe() for c in r["changes"] if c.status == "real"]
        out.append({
            "subject": r["subject"] + (" (DEMO data)" if r.get("demo") else ""),
            "score": r["score"], "profile": profiles[r["profile"]]["name"], "latest": r["latest_date"],
            "changes": "\n".join(f"- {t}" for t in real) or "none beyond the MDC",
            "outside": "\n".join(f"- {t}" for t in r["outside"]) or "none",
            "quality": "\n".join(f"- {t}" for t in r["warnings"][:4])
                       + (f"\n- {r['n_conflicts']} conflict(s)" if r["n_conflicts"] else "") or "none",
            "evidence": f"[timeline](/patient/{r['pid']}) · [session](/session/{r['latest_sid']}) · "
                        f"[agreement](/agreement/{r['latest_sid']})",
        })
    return out


def layout(**_query: str) -> Any:
    """The page."""
    c = get_context()
    rows = c.index.scan()
    store = PatientStore(c.data_dir)
    tri = folder_triage(rows, c.index.path_of, store.profile_of, c.index.key, c.params)
    return html.Div([
        html.H2("Triage"),
        html.P("One row per patient, most urgent first. Score: 30 per real worsening (x2 on a parameter that leads "
               "the patient's profile), 20 per finding outside the norm or a profile threshold, 10 per conflict, "
               "5 per data-quality warning, 3 per other real change. A change is real only beyond its MDC95.",
               className="muted"),
        dash_table.DataTable(
            id=ids.TRIAGE_TABLE, data=triage_table_rows(tri), page_size=50, style_as_list_view=True,
            columns=[{"id": k, "name": n, "presentation": "markdown"} if k in
                     ("changes", "outside", "quality", "evidence") else {"id": k, "name": n}
                     for k, n in (("subject", "patient"), ("score", "attention"), ("profile", "profile"),
                                  ("latest", "latest session"), ("changes", "changed since previous (beyond MDC)"),
                                  ("outside", "outside norm / thresholds"), ("quality", "data quality"),
                                  ("evidence", "evidence"))],
            markdown_options={"link_target": "_self"},
            style_cell={"textAlign": "left", "fontFamily": "inherit", "whiteSpace": "normal", "fontSize": "13px",
                        "verticalAlign": "top"}),
    ])
