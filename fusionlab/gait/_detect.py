"""Run every available gait detector on a session, and store what they found.

The detectors live in private modules of `fusionlab.gait` (see `DETECTOR_MODULES`); they are imported lazily by
name, so a module that is not installed (or not written yet) is skipped with a note. Every class in those modules
that derives from `BaseGaitDetector` and has a ``source`` and a ``name`` is run with its default parameters.

Stored layout (docs/session-format.md, "Gait results"):

* events: ``/events/<source>`` (source = ``forceplate``, ``markers``, ``imu``, ``video``), on each stream's device
  clock; re-running a detector replaces its events (matched by ``detector``), never duplicates them;
* per-stride parameters and their summary: ``/derived/gait_<source>_<detector>`` (`store_results`).
"""

from __future__ import annotations

import datetime as _dt
import importlib
import inspect
import json
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from fusionlab import __version__
from fusionlab.exceptions import ValidationError
from fusionlab.gait._params import merge_spatial, summarise, temporal_strides
from fusionlab.gait.base import PARAMETERS, BaseGaitDetector, GaitResult, Stride
from fusionlab.model import ClockEntry, Event

__all__ = ["DETECTOR_MODULES", "SOURCES", "detect_session", "detector_strides", "find_detectors", "store_results",
           "to_session_events", "to_session_strides"]

log = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("forceplate", "markers", "imu", "video")
DETECTOR_MODULES: dict[str, tuple[str, ...]] = {
    "forceplate": ("fusionlab.gait._forceplate",),
    "markers": ("fusionlab.gait._markers",),
    "imu": ("fusionlab.gait._imu_foot", "fusionlab.gait._imu_back"),
    "video": ("fusionlab.gait._video",),
}
"""Modules searched for detectors, per source family."""


def _check_source(source: str) -> None:
    allowed = ("all", *SOURCES)
    if source not in allowed:
        msg = f"Invalid value for 'source'. Allowed values are {', '.join(allowed)}, but got {source!r} instead."
        raise ValidationError(msg)


def find_detectors(source: str = "all", notes: list[str] | None = None) -> list[type[BaseGaitDetector]]:
    """Detector classes of one source family (or all), from the modules that can be imported.

    A module that does not exist is skipped and a note is appended to ``notes``.
    """
    _check_source(source)
    out: list[type[BaseGaitDetector]] = []
    for fam in SOURCES if source == "all" else (source,):
        for mod_name in DETECTOR_MODULES[fam]:
            try:
                mod = importlib.import_module(mod_name)
            except ModuleNotFoundError as e:
                if e.name != mod_name:
                    raise
                if notes is not None:
                    notes.append(f"{fam}: detector module {mod_name} is not available (skipped)")
                continue
            except Exception as e:  # a broken detector module must not stop the others; it is reported
                log.exception("cannot import %s", mod_name)
                if notes is not None:
                    notes.append(f"{fam}: cannot import {mod_name}: {type(e).__name__}: {e} (skipped)")
                continue
            for _, cls in inspect.getmembers(mod, inspect.isclass):
                if (issubclass(cls, BaseGaitDetector) and cls is not BaseGaitDetector and cls.__module__ == mod_name
                        and cls.source and cls.name and not inspect.isabstract(cls)):
                    out.append(cls)
    return out


def detect_session(session: Any, source: str = "all", *, notes: list[str] | None = None) -> list[GaitResult]:
    """Run every available detector of ``source`` on a session.

    Parameters
    ----------
    session
        A session path or an open `SessionReader`.
    source
        ``"all"``, ``"forceplate"``, ``"markers"``, ``"imu"`` or ``"video"``.
    notes
        When given, receives one line per skipped module, failed detector, and every detector warning.

    Returns
    -------
    list of GaitResult
        One per analysed stream (group) and detector. ``result.meta["algorithm"]`` and
        ``result.meta["parameters"]`` record the detector and its parameters.
    """
    from fusionlab.persist import SessionReader, open_session

    _check_source(source)
    notes = notes if notes is not None else []
    own = not isinstance(session, SessionReader)
    reader = open_session(session) if own else session
    try:
        results: list[GaitResult] = []
        for cls in find_detectors(source, notes):
            det = cls()
            try:
                det.detect(reader)
            except Exception as e:  # a detector bug must not stop the others; it is reported
                log.exception("detector %s failed", cls.__name__)
                notes.append(f"{cls.source}: {cls.__name__} failed: {type(e).__name__}: {e}")
                continue
            for res in det.results_:
                res.meta.setdefault("algorithm", cls.__name__)
                res.meta.setdefault("parameters", det.get_params())
                notes.extend(f"{res.source}/{res.detector} {', '.join(res.streams)}: {w}" for w in res.warnings)
                results.append(res)
        if source in ("all", "imu"):
            for n in reader.find_streams(modality="imu"):
                place = str((reader.stream_info(n).get("meta") or {}).get("placement", ""))
                if place in ("", "unknown"):
                    notes.append(f"imu stream {n}: placement unknown, so no gait detector analyses it (foot IMUs: "
                                 "left_foot/right_foot, lower back: lower_back; fusionlab ingest --placement)")
        if source != "all" and not results:
            present = sorted({str(reader.stream_info(n)["modality"]) for n in reader.find_streams()})
            notes.append(f"no stream the {source} detectors analyse is in this session (it holds "
                         f"{', '.join(present) if present else 'no streams'}): no {source} events")
        return results
    finally:
        if own:
            reader.close()


def detector_strides(results: Sequence[GaitResult], clocks: dict[str, ClockEntry]) -> list[Stride]:
    """Strides of one detector on the session clock: temporal parameters from the union of its events, merged
    with the per-stride parameters the detector computed itself.

    Events of all results are pooled first (a left-foot and a right-foot IMU are two results: step times and
    double support need both). Declared gaps (``result.meta["gaps_s"]``, device clock) reject strides.
    """
    events = to_session_events([e for r in results for e in r.events], clocks)
    gaps = []
    for r in results:
        entry = clocks.get(r.clock)
        for g0, g1 in r.meta.get("gaps_s", ()):
            gaps.append((entry.to_session(g0), entry.to_session(g1)) if entry else (g0, g1))
    temporal = temporal_strides(events, "session", gaps=gaps)
    spatial = to_session_strides([s for r in results for s in r.strides], clocks)
    return merge_spatial(temporal, spatial)


def to_session_events(events: Sequence[Event], clocks: dict[str, ClockEntry]) -> list[Event]:
    """Events mapped to the session clock through their clock entries (unknown clocks: unchanged)."""
    out = []
    for e in events:
        entry = clocks.get(e.clock)
        if entry is not None:
            e = Event(**{**e.__dict__, "time_s": entry.to_session(e.time_s), "clock": "session"})
        out.append(e)
    return sorted(out, key=lambda e: e.time_s)


def to_session_strides(strides: Sequence[Stride], clocks: dict[str, ClockEntry]) -> list[Stride]:
    """Strides with start and end mapped to the session clock."""
    out = []
    for s in strides:
        entry = clocks.get(s.clock)
        if entry is None:
            out.append(s)
        else:
            out.append(Stride(s.side, entry.to_session(s.start_s), entry.to_session(s.end_s), "session",
                              dict(s.params)))
    return out


def _group_name(source: str, detector: str) -> str:
    return "gait_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{source}_{detector}").strip("_")


def json_safe(obj: Any) -> Any:
    """Replace NaN and infinities by None (JSON null), recursively, so the output is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _json(obj: Any) -> str:
    return json.dumps(json_safe(obj), default=str, allow_nan=False)


def store_results(session_path: str | os.PathLike[str], results: Sequence[GaitResult], *,
                  ran: Sequence[tuple[str, str]] = ()) -> list[str]:
    """Write detector results into a session, atomically (one `transaction`); raw streams are never touched.

    Parameters
    ----------
    session_path
        Session file.
    results
        Results of `detect_session`.
    ran
        ``(source, detector)`` pairs that ran but found nothing: their old events and derived groups are removed
        too (so a re-run never leaves stale output).

    Returns
    -------
    list of str
        Names of the derived groups written.

    Notes
    -----
    Events go to ``/events/<source>``, replacing every event of the same ``detector`` (`add_events` with
    ``replace_detector``). Per detector, ``/derived/gait_<source>_<detector>`` (detector id with non-alphanumeric
    characters replaced by ``_``) holds the strides of all its results (see docs/session-format.md).
    """
    from fusionlab.persist import _read_events_group, _write_events, add_events, transaction

    groups: dict[tuple[str, str], list[GaitResult]] = {}
    for res in results:
        groups.setdefault((res.source, res.detector), []).append(res)
    for key in ran:
        groups.setdefault(tuple(key), [])  # type: ignore[arg-type]
    from fusionlab.persist import open_session

    with open_session(session_path) as reader:
        clocks = reader.clocks()
    written = []
    with transaction(session_path) as f:
        for (source, detector), group in groups.items():
            events = [e for r in group for e in r.events]
            if any(e.source == "annotation" for e in events):
                msg = f"{source}/{detector}: a detector may not store events with source 'annotation'."
                raise ValidationError(msg)
            if events:
                add_events(f, events, replace_detector=detector)
            elif source in f["events"]:
                old = _read_events_group(f["events"][source], source)
                _write_events(f["events"], source, [e for e in old if e.detector != detector])
            name = _group_name(source, detector)
            if name in f["derived"]:
                del f["derived"][name]
            if not group:
                continue
            _write_derived(f["derived"].create_group(name), source, detector, group, clocks)
            written.append(name)
    return written


def _write_derived(g: h5py.Group, source: str, detector: str, group: Sequence[GaitResult],
                   clocks: dict[str, ClockEntry]) -> None:
    strides = detector_strides(group, clocks)
    str_dt = h5py.string_dtype()
    g.create_dataset("side", data=np.array([s.side for s in strides], dtype=object), dtype=str_dt)
    g.create_dataset("clock", data=np.array([s.clock for s in strides], dtype=object), dtype=str_dt)
    g.create_dataset("start_s", data=np.array([s.start_s for s in strides], dtype=np.float64))
    g.create_dataset("end_s", data=np.array([s.end_s for s in strides], dtype=np.float64))
    names = [p for p in PARAMETERS if any(p in s.params for s in strides)]
    for p in names:
        g.create_dataset(p, data=np.array([s.params[p].value if p in s.params else math.nan for s in strides]))
        g.create_dataset(f"{p}_sd", data=np.array([s.params[p].sd if p in s.params else math.nan
                                                   for s in strides]))
    a = g.attrs
    a["source"] = source
    a["detector"] = detector
    a["algorithm"] = str(group[0].meta.get("algorithm", detector))
    a["parameters"] = _json(group[0].meta.get("parameters", {}))
    a["parameter_names"] = _json(names)
    a["units"] = _json({p: PARAMETERS[p] for p in names})
    a["results"] = _json([{"streams": list(r.streams), "clock": r.clock, "n_events": len(r.events),
                           "warnings": list(r.warnings),
                           "meta": {k: v for k, v in r.meta.items() if k not in ("algorithm", "parameters")}}
                          for r in group])
    a["input_streams"] = _json(sorted({s for r in group for s in r.streams}))
    a["summary"] = _json(summarise(strides))
    a["stride_clock"] = "session"
    a["fusionlab_version"] = __version__
    a["created_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def read_derived(session_path: str | os.PathLike[str] | Path) -> dict[str, dict[str, Any]]:
    """The stored gait groups of a session: ``{group: {"attrs": {...}, "strides": [Stride, ...]}}``."""
    from fusionlab.gait.base import Value
    from fusionlab.persist import attrs_to_dict

    out: dict[str, dict[str, Any]] = {}
    with h5py.File(session_path, "r") as f:
        for name in f["derived"]:
            if not name.startswith("gait_"):
                continue
            g = f["derived"][name]
            attrs = attrs_to_dict(g.attrs)
            names = json.loads(attrs["parameter_names"])
            cols = {k: g[k][()] for k in g}
            strides = []
            for i in range(cols["start_s"].shape[0]):
                side = cols["side"][i]
                clock = cols["clock"][i]
                params = {p: Value(float(cols[p][i]), float(cols[f"{p}_sd"][i])) for p in names
                          if math.isfinite(cols[p][i])}
                strides.append(Stride(_text(side), float(cols["start_s"][i]), float(cols["end_s"][i]), _text(clock),
                                      params))
            out[name] = {"attrs": attrs, "strides": strides}
    return out


__all__ += ["read_derived"]
