"""Agreement of detected gait events and parameters with a reference (annotations, another modality, a stream).

Event matching (`match_events`)
    For each side and kind separately, a detected event and a reference event match when they are within
    ``tolerance_s`` (default 0.1 s); pairs are taken one-to-one, smallest absolute difference first (greedy on the
    sorted list of candidate pairs). Reference events without a match are misses (false negatives).
Precision only where the reference looked
    Reference event lists rarely cover a whole recording (C3D annotations mark a few strides; a force plate sees
    one contact; reference systems mark walking bouts only). Per side, the reference's *covered spans* are the
    runs of its events of that side (all kinds) with no gap longer than 2.5 s (the longest accepted stride),
    each widened by the tolerance, ``[first - tolerance, last + tolerance]``; a detected event outside them is
    neither a true nor a false positive.
    ``precision = matched / detected inside the span``, ``recall = matched / reference events``.
Timing error
    Signed error = detected - reference (s); reported: median and 95th percentile of the absolute error, and
    the mean signed error (bias), per kind and over both kinds.
Parameter agreement (`agreement`)
    Strides of the compared source and of the reference are paired by side and start time (within the matching
    tolerance, one-to-one). For each parameter with at least two pairs: bias = mean(d), d = compared - reference;
    95 % limits of agreement ``bias ± 1.96 SD(d)`` (Bland & Altman 1986); ICC(2,1) absolute agreement (`icc_a1`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fusionlab.gait.base import PARAMETERS, Stride
from fusionlab.model import Event

__all__ = [
    "KINDS",
    "EventMatch",
    "agreement",
    "covered_spans",
    "event_metrics",
    "icc_a1",
    "limits_of_agreement",
    "match_events",
    "match_strides",
]

KINDS: tuple[str, ...] = ("foot_strike", "foot_off")
SIDES: tuple[str, ...] = ("left", "right")
TOLERANCE_S = 0.1
MAX_GAP_S = 2.5  # a reference with no event of one side for longer than this did not look there


@dataclass
class EventMatch:
    """Result of matching one list of detected events to one reference list (one session or pooled)."""

    pairs: list[tuple[Event, Event]] = field(default_factory=list)  # (detected, reference)
    missed: list[Event] = field(default_factory=list)  # reference events without a match
    extra: list[Event] = field(default_factory=list)  # detected events inside the span without a match
    outside: list[Event] = field(default_factory=list)  # detected events outside the reference's span
    # detected events of a kind the reference does not give at all (e.g. foot-offs against a reference of
    # foot strikes only): not compared, neither matched nor extra
    unreferenced: list[Event] = field(default_factory=list)

    def extend(self, other: EventMatch) -> None:
        """Pool another match (another session) into this one."""
        self.pairs += other.pairs
        self.missed += other.missed
        self.extra += other.extra
        self.outside += other.outside
        self.unreferenced += other.unreferenced


def _gait(events: Sequence[Event]) -> list[Event]:
    return [e for e in events if e.kind in KINDS and e.side in SIDES]


def _greedy_pairs(a: Sequence[float], b: Sequence[float], tolerance_s: float) -> list[tuple[int, int]]:
    """One-to-one pairs (i, j) with ``|a_i - b_j| <= tolerance_s``, smallest difference first."""
    cands = sorted((abs(x - y), i, j) for i, x in enumerate(a) for j, y in enumerate(b) if abs(x - y) <= tolerance_s)
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for _, i, j in cands:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j))
    return out


def covered_spans(times: Sequence[float], tolerance_s: float, max_gap_s: float = MAX_GAP_S
                  ) -> list[tuple[float, float]]:
    """Intervals a reference covers: runs of its event times with no gap over ``max_gap_s``, widened by the
    tolerance on both sides."""
    ts = sorted(times)
    spans: list[tuple[float, float]] = []
    for t in ts:
        if spans and t - (spans[-1][1] - tolerance_s) <= max_gap_s:
            spans[-1] = (spans[-1][0], t + tolerance_s)
        else:
            spans.append((t - tolerance_s, t + tolerance_s))
    return spans


def match_events(detected: Sequence[Event], reference: Sequence[Event], *,
                 tolerance_s: float = TOLERANCE_S) -> EventMatch:
    """Match detected to reference events (same side and kind, one-to-one, nearest within ``tolerance_s``).

    Both lists must be on the same clock (normally the session clock). See the module docstring.
    """
    det, ref = _gait(detected), _gait(reference)
    out = EventMatch()
    ref_kinds = {e.kind for e in ref}
    if ref_kinds:
        out.unreferenced = [e for e in det if e.kind not in ref_kinds]
        det = [e for e in det if e.kind in ref_kinds]
    for side in SIDES:
        spans = covered_spans([e.time_s for e in ref if e.side == side], tolerance_s)

        def covered(e: Event, spans: list[tuple[float, float]] = spans) -> bool:
            return any(a <= e.time_s <= b for a, b in spans)

        for kind in KINDS:
            d = sorted((e for e in det if e.side == side and e.kind == kind), key=lambda e: e.time_s)
            r = sorted((e for e in ref if e.side == side and e.kind == kind), key=lambda e: e.time_s)
            inside = [e for e in d if covered(e)]
            out.outside += [e for e in d if not covered(e)]
            pairs = _greedy_pairs([e.time_s for e in inside], [e.time_s for e in r], tolerance_s)
            out.pairs += [(inside[i], r[j]) for i, j in pairs]
            out.missed += [e for j, e in enumerate(r) if j not in {p[1] for p in pairs}]
            out.extra += [e for i, e in enumerate(inside) if i not in {p[0] for p in pairs}]
    return out


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def event_metrics(match: EventMatch) -> dict[str, dict[str, Any]]:
    """Precision, recall and timing error per kind (``"foot_strike"``, ``"foot_off"``) and ``"all"``.

    A kind the detector never gives while it gives the other (no detected event of that kind at all, e.g.
    foot-offs of a lower-back IMU) has ``"detected_kind": False`` and null precision and recall, and is left out
    of ``"all"``. A detector that found no event at all has recall 0 for both kinds. A kind the reference never
    gives (``"reference_kind": False``; e.g. a reference of foot strikes only) is not compared: its detected events
    are in ``match.unreferenced``, not counted as extra, so its precision is null and ``"all"`` is unaffected.

    Returns
    -------
    dict
        ``{kind: {"n_reference", "n_detected", "n_matched", "precision", "recall", "median_abs_error_s",
        "p95_abs_error_s", "mean_error_s", "detected_kind", "reference_kind"}}``; None (JSON null) where undefined
        (no events).
    """
    given = {d.kind for d, _ in match.pairs} | {e.kind for e in match.extra} | {e.kind for e in match.outside}
    given = given or set(KINDS)  # a detector that found nothing at all missed everything
    referenced = {r.kind for _, r in match.pairs} | {e.kind for e in match.missed}
    out: dict[str, dict[str, Any]] = {}
    for kind in (*KINDS, "all"):
        def keep(e: Event, kind: str = kind) -> bool:
            return e.kind in given if kind == "all" else e.kind == kind

        pairs = [(d, r) for d, r in match.pairs if keep(r)]
        n_missed = sum(keep(e) for e in match.missed)
        n_extra = sum(keep(e) for e in match.extra)
        err = np.array([d.time_s - r.time_s for d, r in pairs], dtype=np.float64)
        n_ref = len(pairs) + n_missed
        n_det = len(pairs) + n_extra
        detected_kind = bool(given) if kind == "all" else kind in given
        out[kind] = {
            "n_reference": n_ref,
            "n_detected": n_det,
            "n_matched": len(pairs),
            "precision": _num(len(pairs) / n_det) if n_det else None,
            "recall": _num(len(pairs) / n_ref) if n_ref and detected_kind else None,
            "median_abs_error_s": _num(float(np.median(np.abs(err)))) if err.size else None,
            "p95_abs_error_s": _num(float(np.percentile(np.abs(err), 95))) if err.size else None,
            "mean_error_s": _num(float(np.mean(err))) if err.size else None,
            "detected_kind": detected_kind,
            "reference_kind": bool(referenced) if kind == "all" else kind in referenced,
        }
    return out


def match_strides(strides: Sequence[Stride], reference: Sequence[Stride], *,
                  tolerance_s: float = TOLERANCE_S) -> list[tuple[Stride, Stride]]:
    """Pairs (compared, reference) of strides of the same side whose starts are within ``tolerance_s``."""
    out = []
    for side in SIDES:
        a = [s for s in strides if s.side == side]
        b = [s for s in reference if s.side == side]
        out += [(a[i], b[j]) for i, j in _greedy_pairs([s.start_s for s in a], [s.start_s for s in b], tolerance_s)]
    return out


ICC_MIN_PAIRS = 5  # fewer paired strides: no ICC reported (see `agreement`)


def icc_a1(ratings: ArrayLike) -> float:
    """ICC(2,1): two-way random effects, absolute agreement, single measurement (McGraw & Wong ICC(A,1)).

    Parameters
    ----------
    ratings
        ``(n, k)`` array: n targets (strides) rated by k raters (methods); no NaN.

    Returns
    -------
    float
        NaN when n < 2 or the denominator is 0.

    Notes
    -----
    Shrout & Fleiss (1979), case 2; McGraw & Wong (1996), ICC(A,1). With grand mean ``m``, row (target) means
    ``r_i`` and column (rater) means ``c_j``::

        MSR = k * sum_i (r_i - m)^2 / (n - 1)                          # between targets
        MSC = n * sum_j (c_j - m)^2 / (k - 1)                          # between raters
        MSE = sum_ij (x_ij - r_i - c_j + m)^2 / ((n - 1)(k - 1))        # residual
        ICC(2,1) = (MSR - MSE) / (MSR + (k - 1) MSE + k (MSC - MSE) / n)

    On Shrout & Fleiss's Table 2 (6 targets, 4 judges) this gives 0.29.
    """
    x = np.asarray(ratings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2 or not np.all(np.isfinite(x)):
        return math.nan
    n, k = x.shape
    m = x.mean()
    r = x.mean(axis=1)
    c = x.mean(axis=0)
    msr = k * np.sum((r - m) ** 2) / (n - 1)
    msc = n * np.sum((c - m) ** 2) / (k - 1)
    mse = np.sum((x - r[:, None] - c[None, :] + m) ** 2) / ((n - 1) * (k - 1))
    den = msr + (k - 1) * mse + k * (msc - mse) / n
    return float((msr - mse) / den) if den != 0 else math.nan


def limits_of_agreement(compared: ArrayLike, reference: ArrayLike) -> dict[str, float | None]:
    """Bland-Altman bias and 95 % limits of agreement of ``compared - reference``.

    ``bias = mean(d)``, ``sd = SD(d)`` (ddof = 1), ``loa = bias ± 1.96 sd``.
    """
    d = np.asarray(compared, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    n = d.size
    bias = float(np.mean(d)) if n else math.nan
    sd = float(np.std(d, ddof=1)) if n >= 2 else math.nan
    return {"n": n, "bias": _num(bias), "sd_difference": _num(sd), "loa_low": _num(bias - 1.96 * sd),
            "loa_high": _num(bias + 1.96 * sd)}


def agreement(pairs: Sequence[tuple[Stride, Stride]]) -> dict[str, dict[str, Any]]:
    """Per-parameter agreement over paired strides: n, means, bias, 95 % limits of agreement, ICC(2,1).

    Only parameters present (finite) in both strides of a pair count; parameters with fewer than 2 pairs are
    reported with n and null statistics; the ICC is null below ``ICC_MIN_PAIRS`` pairs (with 2-4 pairs its estimate
    is noise: -4.96 from 2 pairs on a shared walk; Koo & Li 2016 recommend at least 30).
    """
    names = [p for p in PARAMETERS if any(p in a.params and p in b.params for a, b in pairs)]
    out: dict[str, dict[str, Any]] = {}
    for p in names:
        xy = [(a.params[p].value, b.params[p].value) for a, b in pairs if p in a.params and p in b.params
              and math.isfinite(a.params[p].value) and math.isfinite(b.params[p].value)]
        arr = np.array(xy, dtype=np.float64).reshape(-1, 2)
        entry: dict[str, Any] = {"unit": PARAMETERS[p],
                                 "mean_compared": _num(float(arr[:, 0].mean())) if len(arr) else None,
                                 "mean_reference": _num(float(arr[:, 1].mean())) if len(arr) else None}
        entry.update(limits_of_agreement(arr[:, 0], arr[:, 1]))
        entry["icc_a1"] = _num(icc_a1(arr)) if len(arr) >= ICC_MIN_PAIRS else None
        out[p] = entry
    return out


# ---------------------------------------------------------------------------------------------------- sessions
def _reference_keys(reference: str, keys: Sequence[tuple[str, str]], streams: dict[tuple[str, str], set[str]]
                    ) -> list[tuple[str, str]]:
    """Which detector outputs form the reference: a family (its first detector), ``family/detector``, a stream."""
    if "/" in reference:
        fam, det = reference.split("/", 1)
        return [k for k in keys if k == (fam, det)]
    fam_keys = [k for k in keys if k[0] == reference]
    if fam_keys:
        return fam_keys[:1]
    return [k for k in keys if reference in streams[k]]


def _swapped_kind_note(det: Sequence[Event], ref: Sequence[Event], m: EventMatch, tolerance_s: float) -> str | None:
    """A note when the reference's events of one kind match the detector's events of the *other* kind far better
    (recall >= 0.8 against < 0.5, at least 4 reference events): e.g. a stride-border list of gyroscope minima
    (foot offs) read as foot strikes. Nothing is changed; the reader is told to check what the reference marks."""
    other = {"foot_strike": "foot_off", "foot_off": "foot_strike"}
    for kind in sorted({e.kind for e in ref}):
        n_ref = sum(e.kind == kind for e in ref)
        if n_ref < 4 or kind not in other:
            continue
        found = sum(r.kind == kind for _, r in m.pairs) / n_ref
        as_kind = [replace(e, kind=kind) for e in det if e.kind == other[kind]]
        alt = match_events(as_kind, [e for e in ref if e.kind == kind], tolerance_s=tolerance_s)
        alt_recall = len(alt.pairs) / n_ref
        if found < 0.5 and alt_recall >= 0.8:
            return (f"the reference's {kind.replace('_', ' ')}s coincide with this detector's "
                    f"{other[kind].replace('_', ' ')}s (recall {alt_recall:.2f}, against {found:.2f} for its "
                    f"{kind.replace('_', ' ')}s): check which event the reference marks")
    return None


def validate_sessions(paths: Sequence[Any], reference: str = "annotation", *, tolerance_s: float = TOLERANCE_S,
                      source: str = "all", results: dict[str, list[Any]] | None = None) -> dict[str, Any]:
    """Compare every detector's events and per-stride parameters with a reference, pooled over sessions.

    Parameters
    ----------
    paths
        Session files.
    reference
        ``"annotation"`` (events stored in the source files; reference strides from `temporal_strides` of them),
        another stored event source that is not a detector family (``"reference"``: reference systems of a
        dataset), optionally with one system, ``"reference/mobilised:INDIP"`` (its ``detector`` field), a source
        family (``"forceplate"``, ``"markers"``, ``"imu"``, ``"video"``: its first detector),
        ``"<family>/<detector>"`` (e.g. ``"markers/zeni2008 v1"``), or a stream name (the output of the detectors
        that analysed that stream).
    tolerance_s
        Matching tolerance (s).
    source
        Compare only the detectors of this family (``"all"``: every detector except the reference).
    results
        Detector results per path (``{str(path): [GaitResult, ...]}``) to use instead of running the detectors.

    Returns
    -------
    dict
        The JSON form of ``fusionlab validate --json`` (docs/gait.md): ``{"reference", "tolerance_s",
        "sessions": [{"path", "n_reference_events", "compared": [...], "notes": [...]}], "comparisons":
        [{"source", "detector", "n_sessions", "events": event_metrics, "parameters": agreement,
        "sessions_without_events": [{"path", "why"}], "events_in_sessions_with_events" (only when some but not all
        sessions gave no event): event_metrics}]}``. The pooled ``events`` count the reference events of a session
        where the detector gave no event (it could not run there) as missed.
    """
    from fusionlab.gait._detect import SOURCES, _check_source, detect_session, detector_strides, to_session_events
    from fusionlab.gait._params import temporal_strides
    from fusionlab.persist import open_session

    _check_source(source)
    if tolerance_s <= 0 or not math.isfinite(tolerance_s):
        from fusionlab.exceptions import ValidationError

        msg = f"Invalid value for 'tolerance_s': must be a positive number of seconds, got {tolerance_s}."
        raise ValidationError(msg)
    pooled: dict[tuple[str, str], dict[str, Any]] = {}
    sessions = []
    for path in paths:
        notes: list[str] = []
        with open_session(path) as reader:
            clocks = reader.clocks()
            res = results[str(path)] if results is not None else detect_session(reader, "all", notes=notes)
            stored_events = _gait(reader.events())
            stored_sources = {e.source for e in reader.events()} | {"annotation"}
        by_key: dict[tuple[str, str], list[Any]] = {}
        for r in res:
            by_key.setdefault((r.source, r.detector), []).append(r)
        streams = {k: {s for r in v for s in r.streams} for k, v in by_key.items()}
        stored_source, _, stored_det = reference.partition("/")
        if stored_source in stored_sources and stored_source not in SOURCES:
            ref_keys: list[tuple[str, str]] = []
            ref_events = [e for e in stored_events if e.source == stored_source
                          and (not stored_det or e.detector == stored_det)]
            dets = sorted({e.detector for e in ref_events})
            if len(dets) > 1 and stored_source != "annotation":
                # pooled, every contact would be counted once per system (Mobilise-D: INDIP and Stereophoto), and
                # the recall halved: not compared
                notes.append(f"choose one reference system: --reference {stored_source}/{dets[0]} (systems: "
                             f"{', '.join(dets)}); not compared, pooling them counts each contact once per system")
                sessions.append({"path": str(path), "n_reference_events": len(ref_events), "reference_detectors": [],
                                 "compared": [], "notes": notes})
                continue
            ref_strides = temporal_strides(ref_events, "session")
        else:
            ref_keys = _reference_keys(reference, list(by_key), streams)
            ref_results = [r for k in ref_keys for r in by_key[k]]
            ref_events = _gait(to_session_events([e for r in ref_results for e in r.events], clocks))
            ref_strides = detector_strides(ref_results, clocks)
        entry: dict[str, Any] = {"path": str(path), "n_reference_events": len(ref_events),
                                 "reference_detectors": [f"{k[0]}/{k[1]}" for k in ref_keys], "compared": [],
                                 "notes": notes}
        sessions.append(entry)
        if not ref_events:
            notes.append(f"no reference events ({reference}) in this session: nothing compared")
            continue
        for key, group in by_key.items():
            if key in ref_keys or (source != "all" and key[0] != source):
                continue
            det_events = _gait(to_session_events([e for r in group for e in r.events], clocks))
            if any(e.source == "annotation" for e in det_events):  # the contract forbids it; never count them
                det_events = [e for e in det_events if e.source != "annotation"]
            m = match_events(det_events, ref_events, tolerance_s=tolerance_s)
            swapped = _swapped_kind_note(det_events, ref_events, m, tolerance_s)
            if swapped:
                notes.append(f"{key[0]}/{key[1]}: {swapped}")
            pairs = match_strides(detector_strides(group, clocks), ref_strides, tolerance_s=tolerance_s)
            acc = pooled.setdefault(key, {"match": EventMatch(), "match_with_events": EventMatch(), "pairs": [],
                                          "sessions": 0, "without_events": []})
            acc["match"].extend(m)
            acc["pairs"] += pairs
            acc["sessions"] += 1
            if det_events:
                acc["match_with_events"].extend(m)
            else:  # it could not run here (no pelvis markers, undecided treadmill, ...): its warnings say why
                why = [w for r in group for w in r.warnings]
                acc["without_events"].append({"path": str(path), "why": why[0] if why else "no event detected"})
            entry["compared"].append(f"{key[0]}/{key[1]}")
    comparisons = []
    for k, v in sorted(pooled.items()):
        c: dict[str, Any] = {"source": k[0], "detector": k[1], "n_sessions": v["sessions"],
                             "events": event_metrics(v["match"]), "parameters": agreement(v["pairs"]),
                             "sessions_without_events": v["without_events"]}
        if v["without_events"] and len(v["without_events"]) < v["sessions"]:
            # pooled figures count every reference event of those sessions as missed; this is the same over the
            # sessions where the detector gave events (not a replacement: both are reported)
            c["events_in_sessions_with_events"] = event_metrics(v["match_with_events"])
        comparisons.append(c)
    return {"reference": reference, "tolerance_s": tolerance_s, "sessions": sessions, "comparisons": comparisons}


__all__ += ["validate_sessions"]
