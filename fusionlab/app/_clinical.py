"""Clinical views as pure functions: per-session parameters by modality, minimal detectable change, a patient's
timeline and the triage list (no Dash, no Flask; unit-tested without a browser).

Minimal detectable change (docs/app.md)
---------------------------------------
Every session value is a mean over strides with its standard error ``SEM`` (`fusionlab.gait.summarise`:
``sd_of_mean = sqrt((SD_between_strides / sqrt(n))^2 + measurement_sd_of_mean^2)``). For a change between two
sessions A and B::

    SEM_pooled = sqrt((SEM_A^2 + SEM_B^2) / 2)
    MDC95      = 1.96 * sqrt(2) * SEM_pooled  ( = 1.96 * sqrt(SEM_A^2 + SEM_B^2) )

A change is marked real only when ``|B - A| > MDC95``. With equal SEMs this is the textbook
``MDC95 = 1.96 * sqrt(2) * SEM`` (Haley & Fragala-Pinkham 2006, Phys Ther 86:735); the SEM here is the measurement's
own uncertainty in that session (within-subject, between-stride SD of the mean), not a population test-retest SEM.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "SOURCE_PREFERENCE",
    "Change",
    "ParameterCache",
    "TimelinePoint",
    "classify_change",
    "combine_sides",
    "folder_triage",
    "kinematics_figure",
    "mdc95",
    "parameter_label",
    "patient_groups",
    "patient_id",
    "patient_report",
    "patient_triage_input",
    "preferred_values",
    "session_parameters",
    "session_values",
    "timeline",
    "timeline_figure",
    "triage_rows",
]

Z95 = 1.96
MIN_STRIDES_FOR_MDC = 3
"""Fewer strides than this in either session: the SEM lacks the between-stride variability (with one stride it is
the measurement SD alone), so a change is classified "unknown", never "real"."""
SOURCE_PREFERENCE = ("markers/zeni2008", "markers/oconnor2007", "imu", "forceplate", "video", "annotation")
"""Which modality gives a session's value when several do (prefix match on ``source/detector``): the validated
marker detector first (README validation table), the lab's own annotations last (they are not a routine
measurement)."""

DIRECTIONS: dict[str, Literal["higher", "lower", "none"]] = {
    "gait_speed_m_per_s": "higher", "stride_length_m": "higher", "step_length_m": "higher",
    "cadence_steps_per_min": "none", "stride_time_s": "none", "step_time_s": "none", "stance_pct": "none",
    "swing_pct": "none", "double_support_pct": "lower", "step_width_m": "none",
}
"""Which direction is better, for wording a real change (symmetry indexes and CVs: lower is better)."""


# ---------------------------------------------------------------------------------------------------- parameters
def combine_sides(entry: Mapping[str, Any]) -> dict[str, float | int | None]:
    """One value for both sides from a `summarise` entry: the stride-count-weighted mean of the side means.

    ``SEM = sqrt(sum_s (n_s * SEM_s)^2) / sum_s n_s`` (independent sides), where ``SEM_s`` is the side's
    ``sd_of_mean``; the between-stride SD and CV pool both sides' strides (``sd`` = root-mean-square of the side
    SDs, weighted by ``n - 1``).
    """
    sides = [entry[s] for s in ("left", "right") if entry.get(s) and entry[s]["n"]
             and _finite(entry[s]["mean"])]
    if not sides:
        return {"value": None, "sem": None, "n": 0, "sd": None, "cv_pct": None}
    n = sum(s["n"] for s in sides)
    value = sum(s["n"] * s["mean"] for s in sides) / n
    sems = [s["sd_of_mean"] for s in sides]
    sem = math.sqrt(sum((s["n"] * e) ** 2 for s, e in zip(sides, sems, strict=True))) / n \
        if all(_finite(e) for e in sems) else None
    dof = [(s["n"] - 1, s["sd"]) for s in sides if s["n"] >= 2 and _finite(s["sd"])]
    sd = math.sqrt(sum(d * v ** 2 for d, v in dof) / sum(d for d, _ in dof)) if dof else None
    cv = 100.0 * sd / abs(value) if sd is not None and value else None
    return {"value": value, "sem": sem, "n": n, "sd": sd, "cv_pct": cv}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def session_parameters(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Spatiotemporal parameters of one session per modality, from the stored gait results and the annotations.

    Returns
    -------
    dict
        ``{"sources": {"source/detector": {"parameters": {name: combine_sides(...) + unit + symmetry},
        "strides": [Stride, ...] (session clock), "n_strides": int}}, "leg_length_m": float | None,
        "warnings": [...]}``. Extra parameters: ``<name>_si_pct`` (left/right symmetry index, %) and
        ``stride_time_cv_pct`` (between-stride variability).
    """
    from fusionlab.gait._detect import read_derived, to_session_strides
    from fusionlab.gait._params import summarise, temporal_strides
    from fusionlab.persist import open_session

    out: dict[str, Any] = {"sources": {}, "leg_length_m": None, "warnings": []}
    with open_session(path) as r:
        clocks = r.clocks()
        annotations = r.events(source="annotation")
        legs = []
        for src in r.sources():
            sp = (src.metadata or {}).get("subject_parameters", {}) or {}
            legs += [float(sp[k]) for k in ("LLegLength_m", "RLegLength_m") if _finite(sp.get(k))]
            if not legs and _finite(sp.get("height_m")):
                legs.append(0.53 * float(sp["height_m"]))  # leg length ~ 0.53 x stature (Winter's proportions)
        has_derived = any(n.startswith("gait_") for n in r.derived_names())
    out["leg_length_m"] = float(np.mean(legs)) if legs else None
    groups: dict[str, list[Any]] = {}
    if annotations:
        ann = temporal_strides(annotations, "session")
        if ann:
            groups["annotation"] = ann
    if has_derived:
        for g in read_derived(path).values():
            attrs = g["attrs"]
            key = f"{attrs.get('source', '?')}/{str(attrs.get('detector', '')).split(' ')[0]}".rstrip("/")
            try:
                strides = to_session_strides(g["strides"], clocks)
            except (KeyError, ValueError) as e:
                out["warnings"].append(f"{key}: strides not on the session clock ({type(e).__name__})")
                continue
            if strides:
                groups[key] = strides
    for key, strides in groups.items():
        summary = summarise(strides)
        params: dict[str, Any] = {}
        for name, entry in summary.items():
            params[name] = {**combine_sides(entry), "unit": entry["unit"]}
            si = entry["symmetry_index_pct"]
            if si["value"] is not None and _finite(si["value"]):
                params[f"{name}_si_pct"] = {"value": si["value"], "sem": si["sd"], "n": params[name]["n"],
                                            "unit": "%"}
        st = params.get("stride_time_s")
        if st and st["cv_pct"] is not None and st["n"] >= 3:
            # SE of a CV ~ CV / sqrt(2 n) (normal data, small CV; McKay 1932 approximation)
            params["stride_time_cv_pct"] = {"value": st["cv_pct"], "sem": st["cv_pct"] / math.sqrt(2 * st["n"]),
                                            "n": st["n"], "unit": "%"}
        out["sources"][key] = {"parameters": params, "strides": strides, "n_strides": len(strides)}
    return out


def preferred_values(sources: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One value per parameter: from the first modality of `SOURCE_PREFERENCE` that has it (``source`` says which)."""
    def rank(key: str) -> int:
        return next((i for i, p in enumerate(SOURCE_PREFERENCE) if key.startswith(p)), len(SOURCE_PREFERENCE))

    out: dict[str, dict[str, Any]] = {}
    for key in sorted(sources, key=lambda k: (rank(k), k)):
        for name, v in sources[key]["parameters"].items():
            if name not in out and v.get("value") is not None:
                out[name] = {**v, "source": key}
    return out


# ---------------------------------------------------------------------------------------------------- MDC
def mdc95(sem_a: float | None, sem_b: float | None = None) -> float:
    """Minimal detectable change at 95 % between two measurements with standard errors ``sem_a`` and ``sem_b``.

    ``MDC95 = 1.96 * sqrt(2) * SEM`` with ``SEM = sqrt((sem_a^2 + sem_b^2) / 2)``; one SEM given: both equal.
    NaN when an SEM is missing or not finite.
    """
    sem_b = sem_a if sem_b is None else sem_b
    if not (_finite(sem_a) and _finite(sem_b)):
        return math.nan
    sem = math.sqrt((sem_a ** 2 + sem_b ** 2) / 2.0)  # type: ignore[operator]
    return Z95 * math.sqrt(2.0) * sem


@dataclass(frozen=True)
class Change:
    """A change of one parameter between two sessions."""

    parameter: str
    previous: float
    current: float
    difference: float
    mdc95: float
    status: Literal["real", "within_mdc", "unknown"]
    """real: |difference| > MDC95; within_mdc: not distinguishable from measurement noise; unknown: no SEM."""
    direction: Literal["better", "worse", "changed", ""] = ""

    @property
    def ratio(self) -> float:
        """|difference| / MDC95 (> 1 means real)."""
        return abs(self.difference) / self.mdc95 if self.mdc95 and math.isfinite(self.mdc95) else math.nan

    def describe(self, unit: str = "") -> str:
        """A one-line summary, e.g. ``gait speed 1.20 -> 1.05 m/s (-0.15; MDC95 0.06): real, worse``."""
        name = parameter_label(self.parameter)
        u = f" {unit}" if unit else ""
        head = f"{name} {self.previous:.3g} -> {self.current:.3g}{u} ({self.difference:+.3g}; MDC95 "
        head += f"{self.mdc95:.2g})" if math.isfinite(self.mdc95) else "n/a)"
        tail = {"real": f"real change{', ' + self.direction if self.direction else ''}",
                "within_mdc": "within the MDC (not a detectable change)", "unknown": "no uncertainty: cannot tell"}
        return f"{head}: {tail[self.status]}"


_SUFFIXES = ("_m_per_s", "_steps_per_min", "_pct", "_deg", "_s", "_m")


def parameter_label(parameter: str) -> str:
    """Plain name of a parameter key (``gait_speed_m_per_s`` -> ``gait speed``, ``step_time_s_si_pct`` ->
    ``step time symmetry index``)."""
    si = parameter.endswith("_si_pct")
    base = parameter[: -len("_si_pct")] if si else parameter
    for suf in _SUFFIXES:
        if base.endswith(suf):
            base = base[: -len(suf)]
            break
    return base.replace("_", " ") + (" symmetry index" if si else "")


def _better(parameter: str) -> str:
    if parameter.endswith(("_si_pct", "_cv_pct")):
        return "lower"
    return DIRECTIONS.get(parameter, "none")


def classify_change(parameter: str, previous: Mapping[str, Any], current: Mapping[str, Any]) -> Change | None:
    """Compare two session values (``{"value", "sem"}``); None when either value is missing."""
    a, b = previous.get("value"), current.get("value")
    if not (_finite(a) and _finite(b)):
        return None
    diff = float(b) - float(a)
    sem_a, sem_b = previous.get("sem"), current.get("sem")
    mdc = mdc95(sem_a, sem_b) if _finite(sem_a) and _finite(sem_b) else math.nan
    if min(int(previous.get("n") or 0), int(current.get("n") or 0)) < MIN_STRIDES_FOR_MDC and \
            previous.get("n") is not None and current.get("n") is not None:
        return Change(parameter, float(a), float(b), diff, mdc, "unknown")
    if not math.isfinite(mdc):
        return Change(parameter, float(a), float(b), diff, mdc, "unknown")
    if abs(diff) <= mdc:
        return Change(parameter, float(a), float(b), diff, mdc, "within_mdc")
    better = _better(parameter)
    direction = "changed" if better == "none" else (
        "better" if (diff > 0) == (better == "higher") else "worse")
    return Change(parameter, float(a), float(b), diff, mdc, "real", direction)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------- patients
def patient_id(subject: str, key: bytes) -> str:
    """Opaque id of a patient (keyed hash of the pseudonym, like `fusionlab.app._data.session_id`): no pseudonym in
    URLs or access logs."""
    from fusionlab.app._data import session_id

    return session_id("patient:" + subject, key)


def patient_groups(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Session rows grouped by subject pseudonym, each group ordered by session date (then id); no subject: left
    out."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("subject"):
            groups.setdefault(r["subject"], []).append(r)
    return {s: sorted(g, key=lambda r: (r.get("date") or "", r["id"])) for s, g in sorted(groups.items())}


@dataclass
class TimelinePoint:
    """One session of a patient's timeline."""

    sid: str
    date: str
    values: dict[str, dict[str, Any]]
    changes: dict[str, Change] = field(default_factory=dict)  # vs the previous session with that parameter


def timeline(sessions: Sequence[tuple[str, str, Mapping[str, dict[str, Any]]]]) -> list[TimelinePoint]:
    """A patient's parameters across sessions: ``sessions`` = ``[(sid, date, preferred_values), ...]`` in any
    order; returned by date, each with its changes since the previous session that has the parameter."""
    points = [TimelinePoint(sid, date, dict(values)) for sid, date, values in
              sorted(sessions, key=lambda s: (s[1] or "", s[0]))]
    last: dict[str, dict[str, Any]] = {}
    for p in points:
        for name, v in p.values.items():
            if name in last:
                c = classify_change(name, last[name], v)
                if c is not None:
                    p.changes[name] = c
            if v.get("value") is not None:
                last[name] = v
    return points


# ---------------------------------------------------------------------------------------------------- triage
SEVERITY_WEIGHT = {"real_worse": 30, "outside_norm": 20, "conflict": 10, "quality": 5, "real_other": 3}


def triage_rows(patients: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per patient, sorted by what needs attention first.

    Each input item: ``{"pid", "subject", "profile", "latest_sid", "latest_date", "n_sessions",
    "changes": [Change], "outside": [str], "warnings": [str], "n_conflicts": int, "lead": [parameter]}``.
    Score: 30 per real worsening (x2 when the parameter leads the patient's profile), 20 per finding outside the
    normative range or profile threshold, 10 per conflict (at most 3 counted), 5 per data-quality warning (at most
    4), 3 per other real change. Ties: more recent session first, then pseudonym.
    """
    rows = []
    for p in patients:
        lead = set(p.get("lead", ()))
        real = [c for c in p.get("changes", []) if c.status == "real"]
        worse = [c for c in real if c.direction == "worse"]
        score = sum(SEVERITY_WEIGHT["real_worse"] * (2 if c.parameter in lead else 1) for c in worse)
        score += SEVERITY_WEIGHT["real_other"] * (len(real) - len(worse))
        score += SEVERITY_WEIGHT["outside_norm"] * len(p.get("outside", []))
        score += SEVERITY_WEIGHT["conflict"] * min(3, int(p.get("n_conflicts", 0)))
        score += SEVERITY_WEIGHT["quality"] * min(4, len(p.get("warnings", [])))
        rows.append({**p, "score": score, "n_real_changes": len(real), "n_worse": len(worse)})
    rows.sort(key=lambda r: r["subject"])
    rows.sort(key=lambda r: r.get("latest_date") or "", reverse=True)
    rows.sort(key=lambda r: -r["score"])  # stable sorts: score, then the most recent session, then pseudonym
    return rows


# ---------------------------------------------------------------------------------------------------- reports
class ParameterCache:
    """`session_parameters` and `fusionlab.app._norms.session_kinematics` per file, cached by modification time."""

    def __init__(self) -> None:
        self._d: dict[tuple[str, int, int, str], Any] = {}

    def _get(self, path: Any, what: str, fun: Any) -> Any:
        st = Path(path).stat()
        key = (str(path), st.st_mtime_ns, st.st_size, what)
        if key not in self._d:
            if len(self._d) > 512:
                self._d.clear()
            self._d[key] = fun()
        return self._d[key]

    def parameters(self, path: Any) -> dict[str, Any]:
        """`session_parameters` of a file."""
        return self._get(path, "params", lambda: session_parameters(path))

    def kinematics(self, path: Any) -> dict[str, Any]:
        """`session_kinematics` of a file, speed-matched with its preferred gait speed and leg length."""
        from fusionlab.app._norms import session_kinematics

        def build() -> dict[str, Any]:
            sp = self.parameters(path)
            speed = preferred_values(sp["sources"]).get("gait_speed_m_per_s", {}).get("value")
            return session_kinematics(path, speed, sp["leg_length_m"])

        return self._get(path, "kinematics", build)


def session_values(params: Mapping[str, Any], kinematics: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """A session's preferred values plus the Gait Profile Score (mean of the sides, deg; no SEM: it is not
    propagated yet, so its changes are classified "unknown")."""
    values = preferred_values(params["sources"])
    gps = [v for v in (kinematics or {}).get("gps_deg", {}).values() if _finite(v)]
    if gps:
        values["gait_profile_score_deg"] = {"value": float(np.mean(gps)), "sem": None, "n": len(gps),
                                            "unit": "deg", "source": "model angles vs Schwartz 2008"}
    return values


def patient_report(sessions: Sequence[tuple[Mapping[str, Any], Any]], profile: Mapping[str, Any],
                   cache: ParameterCache) -> dict[str, Any]:
    """Everything the timeline and the triage need for one patient.

    ``sessions``: ``[(SessionRow, path)]``. Returns ``{"points": [TimelinePoint], "kinematics": {sid: ...},
    "findings": {sid: [threshold findings]}, "latest": SessionRow, "changes": [Change] (latest vs previous),
    "outside": [str] (latest session), "warnings": [str] (latest), "n_conflicts": int (latest)}``.
    """
    from fusionlab.app._profiles import evaluate_thresholds

    rows = sorted(sessions, key=lambda s: (s[0].get("date") or "", s[0]["id"]))
    kin: dict[str, Any] = {}
    entries = []
    for row, path in rows:
        params = cache.parameters(path)
        k = cache.kinematics(path)
        kin[row["id"]] = k
        entries.append((row["id"], row.get("date") or "", session_values(params, k)))
    points = timeline(entries)
    findings = {p.sid: evaluate_thresholds(profile, p.values) for p in points}
    latest_row = rows[-1][0] if rows else None
    latest = points[-1] if points else None
    outside = []
    if latest is not None:
        outside = [f["text"] for f in findings[latest.sid]]
        if profile.get("kinematics"):
            outside += kin[latest.sid].get("outside", [])
    return {"points": points, "kinematics": kin, "findings": findings, "latest": latest_row,
            "changes": list(latest.changes.values()) if latest else [], "outside": outside,
            "warnings": list(latest_row.get("warnings", [])) if latest_row else [],
            "n_conflicts": int(latest_row.get("n_conflicts", 0)) if latest_row else 0}


def timeline_figure(points: Sequence[TimelinePoint], parameter: str, unit: str = "") -> dict[str, Any]:
    """Plotly figure dict of one parameter across sessions: values with 95 % error bars (1.96 SEM); a real change
    (beyond MDC95) is drawn as a filled red/green marker, a change within the MDC as a hollow grey one."""
    xs, ys, es, colors, texts = [], [], [], [], []
    for p in points:
        v = p.values.get(parameter)
        if not v or v.get("value") is None:
            continue
        c = p.changes.get(parameter)
        xs.append(p.date)
        ys.append(v["value"])
        es.append(Z95 * v["sem"] if _finite(v.get("sem")) else 0.0)
        colors.append("#555555" if c is None or c.status != "real" else
                      {"better": "#2ca02c", "worse": "#d62728"}.get(c.direction, "#1f77b4"))
        texts.append(c.describe(unit) if c else "first session")
    return {"data": [{"type": "scatter", "mode": "lines+markers", "x": xs, "y": ys, "text": texts,
                      "error_y": {"type": "data", "array": es, "visible": True},
                      "marker": {"size": 11, "color": colors}, "line": {"color": "#bbbbbb"},
                      "hovertemplate": "%{x}: %{y:.3g} " + unit + "<br>%{text}<extra></extra>"}],
            "layout": {"height": 260, "margin": {"l": 60, "r": 20, "t": 36, "b": 40}, "showlegend": False,
                       "title": {"text": f"{parameter.replace('_', ' ')} [{unit}]", "font": {"size": 13}},
                       "xaxis": {"type": "category", "title": {"text": "session date"}}}}


def kinematics_figure(kin: Mapping[str, Any], variable: str) -> dict[str, Any]:
    """Plotly figure dict: a session's left and right cycle curves of one variable over the normative mean ± 1 SD
    and ± 2 SD bands (deg)."""
    from fusionlab.app._norms import NORMATIVE_ATTRIBUTION, variable_label

    pct = kin.get("percent_cycle", [])
    data: list[dict[str, Any]] = []
    first = next((v[variable] for v in kin.get("variables", {}).values() if variable in v), None)
    if first is not None:
        m, s = np.asarray(first["mean"]), np.asarray(first["sd"])
        for k, alpha in ((2, 0.12), (1, 0.22)):
            data.append({"type": "scatter", "mode": "lines", "x": pct, "y": (m - k * s).tolist(),
                         "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip"})
            data.append({"type": "scatter", "mode": "lines", "x": pct, "y": (m + k * s).tolist(),
                         "line": {"width": 0}, "fill": "tonexty", "fillcolor": f"rgba(120,120,120,{alpha})",
                         "name": f"norm ± {k} SD", "hoverinfo": "skip"})
        data.append({"type": "scatter", "mode": "lines", "x": pct, "y": m.tolist(), "name": "norm mean",
                     "line": {"color": "#777", "dash": "dot"}})
    for side, color in (("left", "#1f77b4"), ("right", "#d62728")):
        v = kin.get("variables", {}).get(side, {}).get(variable)
        if v:
            data.append({"type": "scatter", "mode": "lines", "x": pct, "y": v["curve"], "name": side,
                         "line": {"color": color, "width": 2}})
    return {"data": data, "layout": {
        "height": 280, "margin": {"l": 55, "r": 20, "t": 36, "b": 60},
        "title": {"text": f"{variable_label(variable)} (deg), speed class {kin.get('speed_class', '?')}",
                  "font": {"size": 13}},
        "xaxis": {"title": {"text": "% gait cycle"}}, "legend": {"orientation": "h", "y": -0.3},
        "annotations": [{"text": NORMATIVE_ATTRIBUTION, "xref": "paper", "yref": "paper", "x": 0, "y": -0.45,
                         "showarrow": False, "font": {"size": 9}, "xanchor": "left"}]}}


def patient_triage_input(subject: str, pid: str, profile_id: str, report: Mapping[str, Any],
                         n_sessions: int) -> dict[str, Any]:
    """The `triage_rows` input of one patient from its `patient_report`."""
    from fusionlab.app._profiles import load_profiles

    latest = report["latest"] or {}
    return {"pid": pid, "subject": subject, "profile": profile_id, "latest_sid": latest.get("id"),
            "latest_date": latest.get("date") or "", "n_sessions": n_sessions, "changes": report["changes"],
            "outside": report["outside"], "warnings": report["warnings"], "n_conflicts": report["n_conflicts"],
            "lead": load_profiles()[profile_id]["lead"], "demo": subject.upper().startswith("DEMO")}


def folder_triage(rows: Sequence[Mapping[str, Any]], path_of: Any, profile_of: Any, key: bytes,
                  cache: ParameterCache) -> list[dict[str, Any]]:
    """Triage rows of every patient of a session index (``path_of(sid)``, ``profile_of(subject)``)."""
    from fusionlab.app._profiles import load_profiles

    items = []
    for subject, group in patient_groups(rows).items():
        prof = profile_of(subject)
        rep = patient_report([(r, path_of(r["id"])) for r in group], load_profiles()[prof], cache)
        items.append(patient_triage_input(subject, patient_id(subject, key), prof, rep, len(group)))
    return triage_rows(items)
