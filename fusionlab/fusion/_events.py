"""Fused gait events: one event per physical event seen by several modalities, with its SD and conflict flags.

Model (docs/fusion-events.md)
    Every detector event ``i`` of source ``s`` (``forceplate``, ``markers``, ``imu``, ``video``) is a measurement
    ``t_i = T + e_i`` of the true event time ``T`` on the session clock. Its error has two parts:

    * the detector's own timing error, SD ``sd_s`` of the event (independent between events);
    * the error of the mapping of its device clock to the session clock,
      ``t_session = offset_s + tau * (1 + drift_ppm 1e-6)`` with ``tau`` the device time: variance
      ``offset_sd_s^2 + (tau * drift_sd_ppm 1e-6)^2``. This error is **shared** by every event on that clock, so
      two sources on one clock (markers and force plates of one C3D) have correlated errors: the clock error
      cancels in their difference and does not shrink when they are averaged.

    Per group, ``Sigma_ii = sd_i^2 + offset_sd^2 + (tau_i drift_sd)^2`` and, for two events on one clock,
    ``Sigma_ij = offset_sd^2 + tau_i tau_j drift_sd^2``. The fused time is the generalised least-squares mean
    ``t_f = (1' W t) / (1' W 1)`` with ``W = Sigma^-1``, its variance ``1 / (1' W 1)``; with independent clocks
    this is the inverse-variance weighted mean and ``sd_f = sqrt(1 / sum(1 / var_i))``.
Grouping
    Per side and kind, events of different sources within ``match_window_s`` of each other are grouped
    greedily, closest pair first (agglomerative): two groups are merged when they share no source and the merged
    group spans at most ``match_window_s``. So a group holds at most one event per source. A source with several
    detectors contributes the detector with the smallest median ``sd_s`` for that kind over the session (ties:
    more events, then name); the others are not used (named in ``parameters["detectors"]``).
Consistency
    ``chi2 = r' W r`` with ``r = t - t_f``, ``dof = n - 1``; inconsistent when ``p = P(chi2_dof > chi2) < alpha``.
    With three or more sources the source whose removal leaves the smallest chi-square (equivalently, with
    independent clocks, the largest normalised leave-one-out residual) is flagged, excluded from the mean and
    reported as a `Conflict`; this is repeated while the rest is inconsistent. With two sources the data cannot tell
    which one is wrong: the conflict names both (``modality="a|b"``), the fused event keeps both in the mean, and
    its SD is inflated to ``sqrt(sd_f^2 + max_i (t_i - t_f)^2)`` so that both measurements lie within one SD.
Clock errors
    A constant clock error of one source shows as a run of its conflicts with the same sign. For every source we
    compute its offset against the fused others in each group it shares (``t_i - t_(-i)``); every event conflict
    carries the session median of that offset. A maximal run of consecutive shared events (time order, all sides
    and kinds) whose offsets have one sign and which contains at least `CLOCK_MIN_CONFLICTS` event conflicts of
    that source, with a pooled offset significant at ``alpha`` (its SD includes the source's clock SD, which does not
    average out), becomes one ``quantity="event_timing:clock"``
    conflict from its first to its last event conflict. Inside it, that source is no longer averaged in: inconsistent
    groups that named another source (or both sources of a pair) are refitted without it and the conflict names
    it; consistent groups are refitted without it; events it saw alone keep its time with the SD inflated by the
    run's median offset. A run needs one sign over all kinds: a detector bias that is early for foot strikes and
    late for foot offs (a definition difference) breaks the runs and is not taken for a clock error.

Severity and score, as in `fusionlab.fusion._conflicts`: ``score = -log10 p`` with ``p`` the two-sided p-value of
the normalised offset ``z = d / sd(d)`` of the named source against the fused others (for a clock conflict: of
the pooled offset of its run); ``"low"`` (p >= 1e-6, |z| < 4.9), ``"medium"`` (1e-10 <= p < 1e-6), ``"high"``
(p < 1e-10, |z| > 6.5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2 as chi2_dist
from scipy.stats import norm

from fusionlab.exceptions import ValidationError
from fusionlab.fusion.base import Conflict, FusionResult
from fusionlab.model import SESSION_CLOCK, ClockEntry, Event

if TYPE_CHECKING:
    from fusionlab.persist import SessionReader

__all__ = ["ALGORITHM", "CLOCK_MIN_CONFLICTS", "DETECTOR", "MIN_SD_S", "fuse_events"]

ALGORITHM = "inverse-variance event fusion with chi-square consistency v1"
DETECTOR = "fused_events v1"
DETECTOR_SOURCES: tuple[str, ...] = ("forceplate", "markers", "imu", "video")
"""Event sources used by default (the detector families of `fusionlab.gait`)."""
EXCLUDED_SOURCES: tuple[str, ...] = ("annotation", "reference", "fused")
"""Event sources that are references or fusion output, never fusion input."""
MIN_SD_S = 1e-4
"""Floor of an event's detector SD (s): a reported SD of 0 would give an infinite weight."""
CLOCK_MIN_CONFLICTS = 3
"""Event conflicts of one source, in one same-sign run, needed to report a clock conflict."""
SEVERITY_P: tuple[tuple[str, float], ...] = (("high", 1e-10), ("medium", 1e-6), ("low", 1.0))
"""Severity by p-value, the levels of `fusionlab.fusion._conflicts`."""


@dataclass
class _Obs:
    """One detector event on the session clock, with what its variance needs."""

    event: Event
    time_s: float  # session clock
    device_time_s: float
    sd_s: float  # detector SD (floored)
    clock: str
    offset_sd_s: float
    drift_sd: float  # drift SD as a fraction (ppm * 1e-6), 0 when not estimated

    @property
    def source(self) -> str:
        return self.event.source

    @property
    def clock_var(self) -> float:
        return self.offset_sd_s**2 + (self.device_time_s * self.drift_sd) ** 2

    @property
    def var(self) -> float:
        return self.sd_s**2 + self.clock_var


def _covariance(obs: Sequence[_Obs]) -> NDArray[np.float64]:
    """Sigma of a group: detector variances on the diagonal plus the shared clock error of events on one clock."""
    n = len(obs)
    S = np.zeros((n, n))
    for i, a in enumerate(obs):
        S[i, i] = a.var
        for j in range(i + 1, n):
            b = obs[j]
            if a.clock == b.clock and a.clock != SESSION_CLOCK:
                # cov = offset_sd^2 + tau_i tau_j drift_sd^2 (same clock entry)
                S[i, j] = S[j, i] = a.offset_sd_s**2 + a.device_time_s * b.device_time_s * a.drift_sd**2
    return S


def _gls(obs: Sequence[_Obs]) -> tuple[float, float, float]:
    """Fused time, its variance and the chi-square of a group (``chi2 = r' W r``, 0 for one event)."""
    t = np.array([o.time_s for o in obs])
    W = np.linalg.inv(_covariance(obs))
    one = np.ones(len(obs))
    var_f = 1.0 / float(one @ W @ one)  # var = 1 / (1' W 1)
    t_f = var_f * float(one @ W @ t)  # t_f = var (1' W t)
    r = t - t_f
    return t_f, var_f, float(r @ W @ r)


def _offset(obs: Sequence[_Obs], i: int) -> tuple[float, float]:
    """Offset of event ``i`` against the fused others, ``d = t_i - t_(-i)``, and its SD (clock covariance kept)."""
    others = [o for k, o in enumerate(obs) if k != i]
    S = _covariance(obs)
    idx = [k for k in range(len(obs)) if k != i]
    S_oo = S[np.ix_(idx, idx)]
    W = np.linalg.inv(S_oo)
    one = np.ones(len(idx))
    var_o = 1.0 / float(one @ W @ one)
    a = var_o * (W @ one)  # t_(-i) = a' t_others
    d = obs[i].time_s - float(a @ np.array([o.time_s for o in others]))
    var_d = S[i, i] + float(a @ S_oo @ a) - 2.0 * float(a @ S[idx, i])
    return d, math.sqrt(max(var_d, 0.0))


def _p_value(chi2: float, dof: int) -> float:
    return float(chi2_dist.sf(chi2, dof)) if dof > 0 else 1.0


def _z_p(z: float) -> float:
    """Two-sided p-value of a normalised offset."""
    return float(2.0 * norm.sf(abs(z)))


def _score(p: float) -> float:
    return -math.log10(max(p, 1e-300))


def _severity(p: float) -> str:
    return next((name for name, limit in SEVERITY_P if p < limit), "low")


def _pick_detectors(events: Sequence[Event]) -> dict[tuple[str, str], str]:
    """Per (source, kind): the detector with the smallest median sd_s (ties: more events, then name)."""
    by: dict[tuple[str, str], dict[str, list[float]]] = {}
    for e in events:
        by.setdefault((e.source, e.kind), {}).setdefault(e.detector, []).append(e.sd_s)
    out = {}
    for key, dets in by.items():
        out[key] = min(dets, key=lambda d: (float(np.median(dets[d])), -len(dets[d]), d))
    return out


def _group(obs: Sequence[_Obs], window_s: float) -> list[list[_Obs]]:
    """Greedy agglomerative grouping: closest cross-source pairs first, one event per source, span <= window."""
    obs = sorted(obs, key=lambda o: o.time_s)
    parent = list(range(len(obs)))
    members: dict[int, list[int]] = {i: [i] for i in range(len(obs))}
    pairs = []
    for i in range(len(obs)):
        for j in range(i + 1, len(obs)):
            dt = obs[j].time_s - obs[i].time_s
            if dt > window_s:
                break
            if obs[i].source != obs[j].source:
                pairs.append((dt, i, j))
    for _, i, j in sorted(pairs):
        ri, rj = parent[i], parent[j]
        if ri == rj:
            continue
        merged = members[ri] + members[rj]
        if len({obs[k].source for k in merged}) < len(merged):
            continue
        times = [obs[k].time_s for k in merged]
        if max(times) - min(times) > window_s:
            continue
        for k in members[rj]:
            parent[k] = ri
        members[ri] = merged
        del members[rj]
    return [[obs[k] for k in sorted(m, key=lambda k: obs[k].time_s)] for m in members.values()]


@dataclass
class _Fused:
    """Outcome of one group: the accepted events, the flagged ones, the fused event and its conflicts."""

    side: str
    kind: str
    members: list[_Obs]
    accepted: list[_Obs]
    event: Event
    conflicts: list[tuple[Conflict, str, float]]  # (conflict, source named, signed offset)
    offsets: dict[str, tuple[float, float]]  # source -> (t_i - t_(-i) against accepted others, sd)


def _evidence(group: Sequence[_Obs], chi2: float, dof: int, p: float) -> dict[str, Any]:
    return {"times": {o.source: o.time_s for o in group}, "sds": {o.source: math.sqrt(o.var) for o in group},
            "detector_sds": {o.source: o.sd_s for o in group},
            "detectors": {o.source: o.event.detector for o in group},
            "chi2": chi2, "dof": dof, "p": p, "unit": "s"}


def _fuse_group(group: list[_Obs], side: str, kind: str, alpha: float) -> _Fused:
    quantity = f"event_timing:{side}_{kind}"
    span = (min(o.time_s for o in group), max(o.time_s for o in group))
    accepted = list(group)
    conflicts: list[tuple[Conflict, str, float]] = []
    t_f, var_f, chi2 = _gls(accepted)
    inflate = False
    while len(accepted) >= 2:
        dof = len(accepted) - 1
        p = _p_value(chi2, dof)
        if p >= alpha:
            break
        ev = _evidence(accepted, chi2, dof, p)
        if len(accepted) == 2:
            a, b = sorted(accepted, key=lambda o: o.source)
            d, sd_d = _offset([a, b], 0)
            z = abs(d) / sd_d
            ev.update({"offset_s": d, "offset_sd_s": sd_d, "offset_of": f"{a.source} - {b.source}",
                       "resolution": "both kept, fused sd inflated to cover the disagreement"})
            c = Conflict(span[0], span[1], quantity, f"{a.source}|{b.source}", _severity(_z_p(z)), _score(_z_p(z)),
                         ev)
            conflicts.append((c, a.source, d))
            conflicts.append((c, b.source, -d))
            inflate = True
            break
        # n >= 3: remove the source whose removal leaves the smallest chi-square
        trials = []
        for k in range(len(accepted)):
            rest = accepted[:k] + accepted[k + 1:]
            trials.append((_gls(rest)[2], k))
        chi2_rest, k = min(trials)
        culprit = accepted[k]
        d, sd_d = _offset(accepted, k)
        z = abs(d) / sd_d
        ev.update({"culprit": culprit.source, "offset_s": d, "offset_sd_s": sd_d, "z": d / sd_d,
                   "chi2_without": chi2_rest, "p_without": _p_value(chi2_rest, dof - 1)})
        conflicts.append((Conflict(span[0], span[1], quantity, culprit.source, _severity(_z_p(z)), _score(_z_p(z)), ev),
                          culprit.source, d))
        accepted = accepted[:k] + accepted[k + 1:]
        t_f, var_f, chi2 = _gls(accepted)
    sd_f = math.sqrt(var_f)
    if inflate:
        sd_f = math.sqrt(var_f + max((o.time_s - t_f) ** 2 for o in accepted))
    label = "+".join(sorted(o.source for o in accepted))
    event = Event(time_s=t_f, kind=kind, side=side, source="fused", sd_s=sd_f, label=label, clock=SESSION_CLOCK,
                  detector=DETECTOR)
    offsets: dict[str, tuple[float, float]] = {}
    for o in group:
        ref = [x for x in accepted if x is not o]
        if ref:
            offsets[o.source] = _offset([o, *ref], 0)
    return _Fused(side, kind, list(group), accepted, event, conflicts, offsets)


def _clock_conflicts(fused: Sequence[_Fused], alpha: float) -> list[Conflict]:
    """Runs of one source's same-sign offsets holding >= CLOCK_MIN_CONFLICTS of its event conflicts."""
    per_source: dict[str, list[tuple[float, float, float, Conflict | None, str, float]]] = {}
    for f in sorted(fused, key=lambda f: f.event.time_s):
        named = {s: c for c, s, _ in f.conflicts}
        clock_var = {o.source: o.clock_var for o in f.members}
        for s, (d, sd_d) in f.offsets.items():
            per_source.setdefault(s, []).append((f.event.time_s, d, sd_d, named.get(s), f.kind, clock_var[s]))
    out: list[Conflict] = []
    seen: set[tuple[str, float]] = set()
    for s, rows in per_source.items():
        start = 0
        while start < len(rows):
            sign = math.copysign(1.0, rows[start][1])
            end = start
            while end + 1 < len(rows) and math.copysign(1.0, rows[end + 1][1]) == sign:
                end += 1
            run = rows[start:end + 1]
            start = end + 1
            flagged = [r for r in run if r[3] is not None]
            if len(flagged) < CLOCK_MIN_CONFLICTS:
                continue
            d = np.array([r[1] for r in run])
            w = 1.0 / np.array([r[2] for r in run]) ** 2
            mean = float(np.sum(w * d) / np.sum(w))  # pooled offset, inverse-variance weighted
            # its SD: the independent parts average out, the source's own clock error (shared by the run) does not
            se = math.sqrt(1.0 / float(np.sum(w)) + max(r[5] for r in run))
            p = float(2.0 * norm.sf(abs(mean) / se))
            if p >= alpha:
                continue
            names = {r[3].modality for r in flagged if r[3] is not None}
            modality = names.pop() if len(names) == 1 else s
            key = (modality, run[0][0])
            if key in seen:
                continue
            seen.add(key)
            ev = {"source": s, "median_offset_s": float(np.median(d)), "pooled_offset_s": mean, "pooled_sd_s": se,
                  "p": p, "n_events": len(run), "n_conflicts": len(flagged), "run_start_s": run[0][0],
                  "run_end_s": run[-1][0], "kinds": sorted({r[4] for r in run}), "unit": "s",
                  "note": "one source consistently offset against the others, over all kinds: a clock (sync) error "
                          "shows so; a detector bias is usually specific to one kind"}
            out.append(Conflict(flagged[0][0], flagged[-1][0], "event_timing:clock", modality, _severity(p), _score(p),
                                ev))
    return out


def _blame_clock_source(fused: Sequence[_Fused], clock_conflicts: Sequence[Conflict], alpha: float
                        ) -> dict[str, int]:
    """Apply a clock conflict of source ``s`` to the events inside it (``[start_s, end_s]``).

    * an inconsistent group where ``s`` was not the one flagged (a two-source conflict, or another source taken as
      the culprit by chance) is refitted with ``s`` left out first, as the session-level evidence identifies it,
      and the rest is checked as usual; the conflict names ``s``;
    * a consistent group with ``s`` and other sources is refitted without ``s`` (no conflict: its clock is suspect);
    * an event seen by ``s`` alone keeps its time, with its SD inflated by the run's median offset.

    Returns the counts ``{"attributed", "left_out", "inflated"}``.
    """
    n = {"attributed": 0, "left_out": 0, "inflated": 0}
    changed: set[int] = set()
    # a pair-level clock conflict ("a|b") cannot tell which clock is wrong: it blames no one
    for cc in sorted((c for c in clock_conflicts if "|" not in c.modality),
                     key=lambda c: -c.evidence["n_conflicts"]):
        s = cc.evidence["source"]
        offset = cc.evidence["median_offset_s"]
        for f in fused:
            if id(f) in changed or not cc.start_s <= f.event.time_s <= cc.end_s:
                continue
            if s not in {o.source for o in f.accepted} or [c for c, _, _ in f.conflicts if c.modality == s]:
                continue
            changed.add(id(f))
            if len(f.members) == 1:
                f.event = Event(**{**f.event.__dict__, "sd_s": math.hypot(f.event.sd_s, offset)})
                n["inflated"] += 1
                continue
            k = next(i for i, o in enumerate(f.members) if o.source == s)
            rest = f.members[:k] + f.members[k + 1:]
            g = _fuse_group(rest, f.side, f.kind, alpha)
            if f.conflicts:
                d, sd_d = _offset([f.members[k], *g.accepted], 0)
                _, _, chi2 = _gls(f.members)
                dof = len(f.members) - 1
                ev = _evidence(f.members, chi2, dof, _p_value(chi2, dof))
                chi2_rest = _gls(rest)[2]
                ev.update({"culprit": s, "offset_s": d, "offset_sd_s": sd_d, "z": d / sd_d,
                           "chi2_without": chi2_rest, "p_without": _p_value(chi2_rest, len(rest) - 1),
                           "resolution": f"attributed to {s}, whose clock conflict starts at {cc.start_s:.3f} s; "
                                         "left out of the fused event"})
                z = abs(d) / sd_d
                span = (min(o.time_s for o in f.members), max(o.time_s for o in f.members))
                new = Conflict(span[0], span[1], f"event_timing:{f.side}_{f.kind}", s, _severity(_z_p(z)),
                               _score(_z_p(z)), ev)
                f.conflicts = [(new, s, d), *g.conflicts]
                n["attributed"] += 1
            else:
                f.conflicts = list(g.conflicts)
                n["left_out"] += 1
            f.accepted = g.accepted
            f.event = g.event
    return n


def _observations(reader: SessionReader, sources: Sequence[str], warnings: list[str]
                  ) -> tuple[list[_Obs], dict[tuple[str, str], str]]:
    clocks: dict[str, ClockEntry] = reader.clocks()
    raw = [e for s in sources for e in reader.events(s, clock="device")]
    picked = _pick_detectors(raw)
    obs: list[_Obs] = []
    bad_sd = 0
    skipped_clock: dict[str, int] = {}
    no_drift: set[str] = set()
    for e in raw:
        if picked[(e.source, e.kind)] != e.detector:
            continue
        if not (math.isfinite(e.sd_s) and e.sd_s >= 0):
            bad_sd += 1
            continue
        entry = clocks.get(e.clock)
        if entry is None and e.clock != SESSION_CLOCK:
            skipped_clock[e.clock] = skipped_clock.get(e.clock, 0) + 1
            continue
        if entry is None:
            t, offset_sd, drift_sd = e.time_s, 0.0, 0.0
        else:
            t = entry.to_session(e.time_s)  # same mapping as SessionReader.events(clock="session")
            offset_sd = entry.offset_sd_s
            drift_sd = entry.drift_sd_ppm * 1e-6
            if not math.isfinite(offset_sd):
                skipped_clock[e.clock] = skipped_clock.get(e.clock, 0) + 1
                continue
            if not math.isfinite(drift_sd):
                no_drift.add(e.clock)
                drift_sd = 0.0
        obs.append(_Obs(e, t, e.time_s, max(e.sd_s, MIN_SD_S), e.clock, offset_sd, drift_sd))
    if bad_sd:
        warnings.append(f"{bad_sd} event(s) without a finite sd_s were not used")
    for clock, n in sorted(skipped_clock.items()):
        warnings.append(f"{n} event(s) on clock {clock!r} were not used: the clock has no synchronisation "
                        "(unknown or infinite offset_sd_s); run `fusionlab sync` first")
    for clock in sorted(no_drift):
        warnings.append(f"clock {clock!r}: drift SD not estimated; only its offset SD enters the event variance")
    return obs, picked


def fuse_events(reader: SessionReader, *, sources: Sequence[str] | None = None, match_window_s: float = 0.15,
                alpha: float = 0.001) -> FusionResult:
    """Fuse the detector events of a session into one event per physical event, with SD and conflict flags.

    Parameters
    ----------
    reader
        An open session (`fusionlab.persist.open_session`) whose detector events were stored by
        ``fusionlab events`` (`fusionlab.gait._detect.store_results`).
    sources
        Event sources to fuse (``"forceplate"``, ``"markers"``, ``"imu"``, ``"video"``); None: every detector
        family present. ``"annotation"`` and ``"reference"`` events are references, never inputs.
    match_window_s
        Largest span (s) of one group of events taken as the same physical event.
    alpha
        Level of the chi-square consistency test of a group (and of the pooled clock-offset test).

    Returns
    -------
    FusionResult
        ``events``: fused events (``source="fused"``, ``clock="session"``, ``label`` = the sources averaged in);
        ``conflicts``: per-event timing conflicts (``quantity="event_timing:<side>_<kind>"``) and clock conflicts
        (``quantity="event_timing:clock"``); ``warnings``: counts (single-source events, unusable events).

    Raises
    ------
    ValidationError
        If ``sources`` names a reference source, or ``match_window_s`` or ``alpha`` is out of range.

    Notes
    -----
    See the module docstring and docs/fusion-events.md for the model, the clock term and the two-source case.
    """
    if not (match_window_s > 0 and math.isfinite(match_window_s)):
        msg = f"Invalid value for 'match_window_s'. Expected a positive number of seconds, but got {match_window_s}."
        raise ValidationError(msg)
    if not 0 < alpha < 1:
        msg = f"Invalid value for 'alpha'. Expected a level in (0, 1), but got {alpha} instead."
        raise ValidationError(msg)
    stored = {e.source for e in reader.events(clock="device")}
    if sources is None:
        sources = [s for s in DETECTOR_SOURCES if s in stored]
        sources += sorted(s for s in stored if s not in DETECTOR_SOURCES and s not in EXCLUDED_SOURCES)
    else:
        bad = [s for s in sources if s in EXCLUDED_SOURCES]
        if bad:
            msg = (f"Invalid value for 'sources': {', '.join(bad)} are references or fusion output, not detector "
                   f"events. Allowed values are {', '.join(sorted(stored - set(EXCLUDED_SOURCES)))}.")
            raise ValidationError(msg)
        sources = list(dict.fromkeys(sources))
    warnings: list[str] = []
    obs, picked = _observations(reader, sources, warnings)
    keys = sorted({(o.event.side, o.event.kind) for o in obs})
    fused: list[_Fused] = []
    for side, kind in keys:
        for group in _group([o for o in obs if (o.event.side, o.event.kind) == (side, kind)], match_window_s):
            fused.append(_fuse_group(group, side, kind, alpha))
    fused.sort(key=lambda f: f.event.time_s)
    # the session median offset of each source against the fused others, in every conflict's evidence
    med: dict[str, float] = {}
    med_kind: dict[tuple[str, str, str], float] = {}
    for s in sources:
        d = [f.offsets[s][0] for f in fused if s in f.offsets]
        if d:
            med[s] = float(np.median(d))
        for side, kind in keys:
            d = [f.offsets[s][0] for f in fused if s in f.offsets and (f.side, f.kind) == (side, kind)]
            if d:
                med_kind[(s, side, kind)] = float(np.median(d))
    clock_conflicts = _clock_conflicts(fused, alpha)
    n_blamed = _blame_clock_source(fused, clock_conflicts, alpha)
    conflicts: list[Conflict] = []
    done: set[int] = set()
    for f in fused:
        for c, _, _ in f.conflicts:
            if id(c) in done:
                continue
            done.add(id(c))
            names = c.modality.split("|")
            side, kind = c.quantity.split(":", 1)[1].split("_", 1)
            # median offset of the source against the fused others: over the session (all kinds: a clock error
            # shifts them all) and for this side and kind only (a detector bias is usually kind-specific)
            c.evidence["session_median_offset_s"] = {s: med[s] for s in names if s in med}
            c.evidence["kind_median_offset_s"] = {s: med_kind[(s, side, kind)] for s in names
                                                  if (s, side, kind) in med_kind}
            conflicts.append(c)
    conflicts += clock_conflicts
    if any(n_blamed.values()):
        warnings.append(f"inside clock conflict(s): {n_blamed['attributed']} inconsistent event(s) attributed to "
                        f"the offset source, {n_blamed['left_out']} consistent event(s) fused without it, "
                        f"{n_blamed['inflated']} event(s) seen by it alone kept with the SD inflated by its offset")
    conflicts.sort(key=lambda c: (c.start_s, c.quantity))
    single = sum(1 for f in fused if len(f.members) == 1)
    if single:
        warnings.append(f"{single} of {len(fused)} fused event(s) were seen by one source only (kept with that "
                        "source's sd)")
    n_pairs = sum(1 for c in conflicts if "|" in c.modality and c.quantity != "event_timing:clock")
    if n_pairs:
        warnings.append(f"{n_pairs} two-source conflict(s): both sources kept, fused sd inflated")
    inputs = tuple(sorted({f"{s}/{d}" for (s, _), d in picked.items() if s in sources}))
    detectors: dict[str, dict[str, str]] = {}
    for (s, k), d in sorted(picked.items()):
        detectors.setdefault(s, {})[k] = d
    parameters = {"sources": list(sources), "match_window_s": match_window_s, "alpha": alpha,
                  "detectors": detectors, "min_sd_s": MIN_SD_S, "clock_min_conflicts": CLOCK_MIN_CONFLICTS,
                  "severity_p": dict(SEVERITY_P)}
    return FusionResult(name="events", algorithm=ALGORITHM, parameters=parameters, inputs=inputs,
                        events=[f.event for f in fused], conflicts=conflicts, warnings=warnings)
