"""Exports of a session's results (no web framework; the login-protected download routes call these).

- `results_csv`: one CSV, one row per value: the spatiotemporal parameters of every modality (value, between-stride
  SD, SEM of the mean, number of strides, unit; both sides pooled, as on the agreement page) and every stored
  event (annotations, each detector, ``fused``) with its time and SD on the session clock.
- `session_c3d`: the markers, model outputs, analogs and events of the session's first C3D-able clock, through
  `fusionlab.adapters.c3d.write_c3d`.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CSV_COLUMNS", "results_csv", "session_c3d"]

CSV_COLUMNS = ("record", "source", "name", "value", "sd", "sem", "n", "unit", "side", "kind")
"""``record`` is ``parameter`` or ``event``. Parameters: ``source`` = ``source/detector`` (``annotation``,
``markers/zeni2008``, ...), ``name`` = parameter, ``value`` = mean over strides, ``sd`` = between-stride SD,
``sem`` = standard error of the mean (with measurement uncertainty), ``n`` = strides. Events: ``source`` =
``source/detector``, ``name`` = ``<side> <kind>``, ``value`` = time on the session clock (s), ``sd`` = its SD (s),
``side`` and ``kind`` separately."""


def _num(x: Any) -> str:
    if x is None:
        return ""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return repr(v) if math.isfinite(v) else ""


def results_csv(path: str | os.PathLike[str], *, header: dict[str, str] | None = None) -> str:
    """The session's parameters and events as CSV text (columns `CSV_COLUMNS`; floats written exactly with
    ``repr``, empty when unknown). ``header`` adds ``# key: value`` comment lines first (subject, date)."""
    from fusionlab.app._clinical import session_parameters
    from fusionlab.persist import open_session

    buf = io.StringIO()
    for k, v in (header or {}).items():
        buf.write(f"# {k}: {v}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    params = session_parameters(path)
    for source, entry in params["sources"].items():
        for name, p in entry["parameters"].items():
            w.writerow(["parameter", source, name, _num(p.get("value")), _num(p.get("sd")), _num(p.get("sem")),
                        p.get("n", ""), p.get("unit", ""), "", ""])
    with open_session(path) as r:
        events = r.events()
    for e in events:
        src = f"{e.source}/{e.detector}" if e.detector else e.source
        w.writerow(["event", src, f"{e.side} {e.kind}", _num(e.time_s), _num(e.sd_s), "", "", "s", e.side, e.kind])
    return buf.getvalue()


def session_c3d(path: str | os.PathLike[str]) -> tuple[bytes, dict[str, Any]]:
    """The session as C3D bytes (first marker clock) and the counts written.

    Raises
    ------
    FileFormatError
        If the session has no marker, model or analog stream (nothing a C3D file can hold).
    """
    from fusionlab.adapters.c3d import write_c3d

    with tempfile.TemporaryDirectory(prefix="fusionlab-export-") as tmp:
        out = Path(tmp) / "export.c3d"
        counts = write_c3d(path, out)
        return out.read_bytes(), counts
