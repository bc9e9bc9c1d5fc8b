"""Spatiotemporal gait parameters from events: per-stride values with propagated SDs, summaries, symmetry.

Definitions (times of one side X and the contralateral side C; all on one clock):

* **stride** of X: from a foot strike FS_X(a) to the next foot strike of X, FS_X(b). Rejected when longer than
  ``max_stride_s`` (a pause, a turn, or a missed strike), when not exactly one contralateral foot strike lies
  inside it (none: a gap in the contralateral events; two or more: a missed strike of this side), or when it
  overlaps a declared gap.
* ``stride_time_s`` = b - a.
* ``step_time_s`` = a - FS_C(c), c the last contralateral foot strike before a (the step that ends at the
  stride's first strike), only when a - c is shorter than the stride itself.
* ``cadence_steps_per_min`` = 2 * 60 / stride_time_s (two steps per stride).
* ``stance_pct`` = 100 (FO_X - a) / (b - a), FO_X the first foot off of X inside the stride;
  ``swing_pct`` = 100 - stance_pct.
* ``double_support_pct`` = 100 [(FO_C - a) + (FO_X - FS_C)] / (b - a): initial double support from a to the
  first contralateral foot off after a, terminal double support from the contralateral strike inside the stride
  to FO_X (both must lie inside the stance phase).

SD propagation: events have independent timing errors ``sd_s``; for a parameter p(t_1, ..., t_m) of event times,
``SD(p)^2 = sum_i (dp/dt_i)^2 sd_i^2`` (first-order, partial derivatives computed exactly for these rational
functions by central differences). An event without an SD (annotations: NaN) gives a NaN SD.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from fusionlab.gait.base import PARAMETERS, Stride, Value
from fusionlab.model import Event

__all__ = ["SPATIAL_PARAMETERS", "merge_spatial", "summarise", "symmetry_index", "temporal_strides"]

SPATIAL_PARAMETERS: tuple[str, ...] = ("stride_length_m", "step_length_m", "step_width_m", "gait_speed_m_per_s")
"""Parameters that need positions (filled by the modality that has them)."""

MAX_STRIDE_S = 2.5
MERGE_TOLERANCE_S = 0.05
_OTHER = {"left": "right", "right": "left"}


def _propagate(fun: Callable[..., float], times: Sequence[float], sds: Sequence[float]) -> Value:
    """``Value(fun(*times), SD)`` with ``SD^2 = sum (d fun / d t_i)^2 sd_i^2`` (central differences, h = 1 us)."""
    value = float(fun(*times))
    var = 0.0
    h = 1e-6
    for i, sd in enumerate(sds):
        if not math.isfinite(sd):
            return Value(value, math.nan)
        up = list(times)
        dn = list(times)
        up[i] += h
        dn[i] -= h
        grad = (fun(*up) - fun(*dn)) / (2 * h)
        var += (grad * sd) ** 2
    return Value(value, math.sqrt(var))


def _in_gap(start: float, end: float, gaps: Iterable[tuple[float, float]]) -> bool:
    return any(g0 < end and g1 > start for g0, g1 in gaps)


def temporal_strides(events: Sequence[Event], clock: str | None = None, *, max_stride_s: float = MAX_STRIDE_S,
                     gaps: Iterable[tuple[float, float]] = ()) -> list[Stride]:
    """Per-stride temporal parameters from foot-strike and foot-off events.

    Parameters
    ----------
    events
        Events on one clock (others are ignored when ``clock`` is given). Only ``foot_strike`` and ``foot_off``
        events of side ``left`` or ``right`` are used.
    clock
        The clock of the strides; default: the clock of the first gait event.
    max_stride_s
        Longest accepted stride (s).
    gaps
        ``(start_s, end_s)`` intervals without usable signal; a stride that overlaps one is rejected.

    Returns
    -------
    list of Stride
        Sorted by start time, with the parameters of the module docstring (a parameter that cannot be computed
        for a stride is absent).
    """
    gait = [e for e in events if e.kind in ("foot_strike", "foot_off") and e.side in _OTHER]
    if clock is None:
        clock = gait[0].clock if gait else "session"
    gait = [e for e in gait if e.clock == clock]
    gaps = list(gaps)
    by: dict[tuple[str, str], list[Event]] = {}
    for e in sorted(gait, key=lambda e: e.time_s):
        by.setdefault((e.side, e.kind), []).append(e)
    strides: list[Stride] = []
    for side, other in _OTHER.items():
        fs = by.get((side, "foot_strike"), [])
        fo = by.get((side, "foot_off"), [])
        fs_c = by.get((other, "foot_strike"), [])
        fo_c = by.get((other, "foot_off"), [])
        for ea, eb in itertools.pairwise(fs):
            a, b = ea.time_s, eb.time_s
            duration = b - a
            if not 0 < duration <= max_stride_s or _in_gap(a, b, gaps):
                continue
            inside_c = [e for e in fs_c if a < e.time_s < b]
            if len(inside_c) != 1:  # none: contralateral events missing; two or more: a missed strike of this side
                continue
            sa, sb = ea.sd_s, eb.sd_s
            params: dict[str, Value] = {
                "stride_time_s": _propagate(lambda a, b: b - a, (a, b), (sa, sb)),
                "cadence_steps_per_min": _propagate(lambda a, b: 120.0 / (b - a), (a, b), (sa, sb)),
            }
            before = [e for e in fs_c if e.time_s < a]
            if before and a - before[-1].time_s < duration and not _in_gap(before[-1].time_s, a, gaps):
                c = before[-1]
                params["step_time_s"] = _propagate(lambda c, a: a - c, (c.time_s, a), (c.sd_s, sa))
            off = [e for e in fo if a < e.time_s < b]
            if off:
                o = off[0]
                params["stance_pct"] = _propagate(lambda a, b, o: 100.0 * (o - a) / (b - a), (a, b, o.time_s),
                                                  (sa, sb, o.sd_s))
                params["swing_pct"] = Value(100.0 - params["stance_pct"].value, params["stance_pct"].sd)
                off_c = [e for e in fo_c if a < e.time_s < o.time_s]
                strike_c = [e for e in inside_c if e.time_s < o.time_s]
                if off_c and strike_c and off_c[0].time_s <= strike_c[0].time_s:
                    oc, sc = off_c[0], strike_c[0]
                    params["double_support_pct"] = _propagate(
                        lambda a, b, oc, sc, o: 100.0 * ((oc - a) + (o - sc)) / (b - a),
                        (a, b, oc.time_s, sc.time_s, o.time_s), (sa, sb, oc.sd_s, sc.sd_s, o.sd_s))
            strides.append(Stride(side=side, start_s=a, end_s=b, clock=clock, params=params))
    return sorted(strides, key=lambda s: (s.start_s, s.side))


def merge_spatial(temporal: Sequence[Stride], spatial: Sequence[Stride], *,
                  tolerance_s: float = MERGE_TOLERANCE_S) -> list[Stride]:
    """Attach the parameters a detector computed per stride to the matching temporal strides.

    A spatial stride matches a temporal stride of the same side and clock whose start is within ``tolerance_s``
    (default 50 ms, about half the timing SD of the coarsest detectors); the nearest one wins. Parameters the
    temporal stride has already keep their value; the others (normally `SPATIAL_PARAMETERS`) are copied.

    Returns
    -------
    list of Stride
        New strides (the inputs are not changed).
    """
    out = []
    for t in temporal:
        params = dict(t.params)
        cands = [s for s in spatial if s.side == t.side and s.clock == t.clock
                 and abs(s.start_s - t.start_s) <= tolerance_s]
        if cands:
            best = min(cands, key=lambda s: abs(s.start_s - t.start_s))
            for k, v in best.params.items():
                params.setdefault(k, v)
        out.append(Stride(side=t.side, start_s=t.start_s, end_s=t.end_s, clock=t.clock, params=params))
    return out


def symmetry_index(left: Value, right: Value) -> Value:
    """Symmetry index (%) ``SI = 100 |L - R| / (0.5 (L + R))`` with its SD propagated from the SDs of L and R.

    0 is perfect symmetry. Near SI = 0 the first-order SD is an approximation (the absolute value has a kink).
    """
    if not (math.isfinite(left.value) and math.isfinite(right.value)) or left.value + right.value == 0:
        return Value(math.nan, math.nan)

    def si(lv: float, rv: float) -> float:
        return 100.0 * abs(lv - rv) / (0.5 * (lv + rv))

    # dSI/dL = 200 sgn(L-R) * 2R / (L+R)^2 ; dSI/dR = -200 sgn(L-R) * 2L / (L+R)^2 (exact, away from L = R)
    lv, rv = left.value, right.value
    s = 1.0 if lv >= rv else -1.0
    d_l = 400.0 * s * rv / (lv + rv) ** 2
    d_r = -400.0 * s * lv / (lv + rv) ** 2
    return Value(si(lv, rv), math.sqrt((d_l * left.sd) ** 2 + (d_r * right.sd) ** 2))


def _side_stats(values: list[Value]) -> dict[str, Any]:
    x = np.array([v.value for v in values], dtype=np.float64)
    u = np.array([v.sd for v in values], dtype=np.float64)
    n = int(x.size)
    mean = float(np.mean(x)) if n else math.nan
    sd = float(np.std(x, ddof=1)) if n >= 2 else math.nan
    cv = 100.0 * sd / abs(mean) if n >= 2 and mean != 0 else math.nan
    sem = sd / math.sqrt(n) if n >= 2 else math.nan
    meas = float(math.sqrt(np.sum(u ** 2)) / n) if n and np.all(np.isfinite(u)) else math.nan
    sd_mean = math.sqrt(sem ** 2 + (meas ** 2 if math.isfinite(meas) else 0.0)) if n >= 2 else meas
    return {"n": n, "mean": mean, "sd": sd, "cv_pct": cv, "sem": sem, "measurement_sd_of_mean": meas,
            "sd_of_mean": sd_mean}


def summarise(strides: Sequence[Stride]) -> dict[str, dict[str, Any]]:
    """Per parameter and side: n, mean, SD, CV, and the SD of the mean; left/right symmetry index.

    Returns
    -------
    dict
        ``{parameter: {"unit": str, "left": stats, "right": stats, "symmetry_index_pct": {"value", "sd"}}}``
        for every parameter present in at least one stride, with ``stats`` = ``{"n", "mean", "sd", "cv_pct",
        "sem", "measurement_sd_of_mean", "sd_of_mean"}`` (NaN where undefined: SD and CV need n >= 2).

    Notes
    -----
    * ``sd`` is the between-stride SD (ddof = 1), ``cv_pct = 100 sd / |mean|``, ``sem = sd / sqrt(n)``.
    * ``measurement_sd_of_mean = sqrt(sum_i sd_i^2) / n`` (independent per-stride measurement SDs ``sd_i``).
    * ``sd_of_mean = sqrt(sem^2 + measurement_sd_of_mean^2)``: conservative (the between-stride SD already
      contains the measurement noise, so this is an upper bound); for n = 1 it is the measurement SD alone.
    * Symmetry: `symmetry_index` of the left and right means, with their ``sd_of_mean``.
    """
    names = [p for p in PARAMETERS if any(p in s.params for s in strides)]
    names += sorted({k for s in strides for k in s.params} - set(names))
    out: dict[str, dict[str, Any]] = {}
    for p in names:
        entry: dict[str, Any] = {"unit": PARAMETERS.get(p, "")}
        for side in ("left", "right"):
            vals = [s.params[p] for s in strides if s.side == side and p in s.params
                    and math.isfinite(s.params[p].value)]
            entry[side] = _side_stats(vals)
        left, right = entry["left"], entry["right"]
        si = symmetry_index(Value(left["mean"], left["sd_of_mean"]), Value(right["mean"], right["sd_of_mean"]))
        entry["symmetry_index_pct"] = si.as_dict()
        out[p] = entry
    return out
