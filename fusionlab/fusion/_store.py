"""Fusion results in the session file: ``/derived/fusion_<name>`` and fused events in ``/events/fused``.

Layout (see docs/session-format.md)::

    /derived/fusion_<name>/            attrs: algorithm, parameters (JSON), inputs (JSON), warnings (JSON),
                                              fusionlab_version, created_at, clock = "session"
        conflicts                      (n,) JSON strings, one `Conflict.as_dict` each
        signals/<signal>/              attrs: channels, units, frame, inputs, noise (JSON), meta (JSON)
            time                       (T,) session-clock seconds
            mean, var                  (T, K) float64; var = posterior variance of mean

A re-run replaces the group and the fused events of the same detector in one atomic transaction; raw streams are
never touched.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fusionlab import __version__
from fusionlab.fusion.base import Conflict, FusedSignal, FusionResult

__all__ = ["read_fusion", "store_fusion"]

PREFIX = "fusion_"


def _json(obj: Any) -> str:
    from fusionlab.persist import _json as persist_json

    return persist_json(obj)


def _write_result(f: h5py.File, res: FusionResult) -> str:
    from fusionlab.persist import _read_events_group, _write_events, add_events

    name = PREFIX + res.name
    derived = f["derived"]
    if name in derived:
        del derived[name]
    g = derived.create_group(name)
    a = g.attrs
    a["algorithm"] = res.algorithm
    a["parameters"] = _json(res.parameters)
    a["inputs"] = _json(list(res.inputs))
    a["warnings"] = _json(list(res.warnings))
    a["clock"] = "session"
    a["fusionlab_version"] = __version__
    a["created_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    g.create_dataset("conflicts", data=np.array([_json(c.as_dict()) for c in res.conflicts], dtype=object),
                     dtype=h5py.string_dtype())
    sg = g.create_group("signals")
    for s in res.signals:
        h = sg.create_group(s.name)
        kw: dict[str, Any] = {"compression": "gzip", "compression_opts": 1} if s.mean.size > 1024 else {}
        h.create_dataset("time", data=s.times, **kw)
        h.create_dataset("mean", data=s.mean, **kw)
        h.create_dataset("var", data=s.var, **kw)
        h.attrs["channels"] = _json(list(s.channels))
        h.attrs["units"] = _json(list(s.units))
        h.attrs["frame"] = s.frame
        h.attrs["inputs"] = _json(list(s.inputs))
        h.attrs["noise"] = _json(s.noise)
        h.attrs["meta"] = _json(s.meta)
    detectors = {e.detector for e in res.events}
    if res.events:
        for det in detectors:
            add_events(f, [e for e in res.events if e.detector == det], replace_detector=det)
    elif "fused" in f["events"]:
        old = _read_events_group(f["events"]["fused"], "fused")
        _write_events(f["events"], "fused", [e for e in old if not e.detector.startswith(res.name)])
    return name


def store_fusion(session_path: str | os.PathLike[str] | Path, results: Sequence[FusionResult]) -> list[str]:
    """Write fusion results into the session (one atomic transaction). Returns the derived group names."""
    from fusionlab.persist import transaction

    with transaction(session_path) as f:
        return [_write_result(f, r) for r in results]


def _loads(v: Any) -> Any:
    return json.loads(v.decode() if isinstance(v, bytes) else v)


def read_fusion(session_path: str | os.PathLike[str] | Path) -> dict[str, FusionResult]:
    """Every stored fusion result of a session, by name (fused events are read with `SessionReader.events`)."""
    from fusionlab.persist import open_session

    out: dict[str, FusionResult] = {}
    with open_session(session_path) as reader:
        f = reader._f
        for gname in f["derived"]:
            if not gname.startswith(PREFIX):
                continue
            g = f["derived"][gname]
            a = g.attrs
            conflicts = []
            for c in g["conflicts"][()]:
                d = _loads(c)
                conflicts.append(Conflict(d["start_s"], d["end_s"], d["quantity"], d["modality"], d["severity"],
                                          d.get("score") if d.get("score") is not None else float("nan"),
                                          d.get("evidence", {})))
            signals = []
            for sname in g["signals"]:
                h = g["signals"][sname]
                signals.append(FusedSignal(sname, h["time"][()], h["mean"][()], h["var"][()],
                                           tuple(_loads(h.attrs["channels"])), tuple(_loads(h.attrs["units"])),
                                           str(h.attrs["frame"]), tuple(_loads(h.attrs["inputs"])),
                                           _loads(h.attrs["noise"]), _loads(h.attrs["meta"])))
            name = gname[len(PREFIX):]
            out[name] = FusionResult(name=name, algorithm=str(a["algorithm"]), parameters=_loads(a["parameters"]),
                                     inputs=tuple(_loads(a["inputs"])), signals=signals, conflicts=conflicts,
                                     warnings=list(_loads(a["warnings"])))
    return out
