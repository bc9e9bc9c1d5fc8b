"""Synchronise every device clock of a session file to its reference clock (``fusionlab sync``)."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fusionlab.exceptions import ValidationError
from fusionlab.model import Stream
from fusionlab.persist import open_session, transaction
from fusionlab.sync._events import SyncEvents, SyncTrigger
from fusionlab.sync._signals import signals_of
from fusionlab.sync._xcorr import SyncCrossCorrelation
from fusionlab.sync.base import SyncRefused, SyncResult

__all__ = ["SyncReport", "parse_prior", "synchronize_session"]

PRIOR_MIN_LAG_S = 0.05  # with a prior, the correlation search spans at least ± this around the prior offset
PRIOR_CONFLICT_Z = 3.0  # data and prior disagree when |data - prior| > this many combined SDs


@dataclass
class SyncReport:
    """What `synchronize_session` found: one result or one refusal per non-reference clock."""

    reference_clock: str
    results: list[SyncResult] = field(default_factory=list)
    refused: dict[str, dict[str, str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    stored: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON form (documented in docs/sync.md)."""
        def clean(x: Any) -> Any:
            if isinstance(x, float):
                return x if math.isfinite(x) else None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [clean(v) for v in x]
            return x

        return clean({"reference_clock": self.reference_clock,
                      "results": [{**r.__dict__, "interval95_s": list(r.interval95_s())} for r in self.results],
                      "refused": self.refused, "warnings": list(self.warnings), "stored": self.stored})


def parse_prior(text: str) -> tuple[str, float, float]:
    """Parse ``CLOCK=OFFSET±SD`` (or ``+-``), seconds: a known fixed offset of a device, e.g. its latency."""
    m = re.match(r"^(.+?)=([-+]?[0-9.eE-]+)\s*(?:±|\+-|\+/-)\s*([0-9.eE-]+)$", text.strip())
    if not m:
        msg = (f"Invalid value for '--prior'. Expected CLOCK=OFFSET±SD in seconds (e.g. video:cam=0.040±0.005), "
               f"got {text!r}.")
        raise ValidationError(msg)
    return m.group(1), float(m.group(2)), float(m.group(3))


def _combine(result: SyncResult, prior: tuple[float, float]) -> SyncResult:
    """Inverse-variance combination of a data estimate with a prior on the offset."""
    mu, sd = prior
    w1, w2 = 1.0 / result.offset_sd_s**2, 1.0 / sd**2
    off = (result.offset_s * w1 + mu * w2) / (w1 + w2)
    return SyncResult(clock=result.clock, reference=result.reference, offset_s=off,
                      offset_sd_s=math.sqrt(1.0 / (w1 + w2)), drift_ppm=result.drift_ppm,
                      drift_sd_ppm=result.drift_sd_ppm, method=result.method + "+prior",
                      evidence={**result.evidence, "prior_offset_s": mu, "prior_sd_s": sd,
                                "data_offset_s": result.offset_s, "data_offset_sd_s": result.offset_sd_s})


def _events_by_clock(reader: Any) -> dict[str, list[tuple[float, str]]]:
    out: dict[str, list[tuple[float, str]]] = {}
    for e in reader.events(clock="device"):
        if e.kind in ("foot_strike", "foot_off") and e.side in ("left", "right"):
            out.setdefault(e.clock, []).append((e.time_s, f"{e.kind}:{e.side}"))
    return out


def _trigger_channel(streams: dict[str, Stream], spec: str) -> tuple[str, np.ndarray, np.ndarray]:
    name, _, channel = spec.rpartition(":")
    if name not in streams:
        msg = f"Invalid value for '--trigger': no stream {name!r}; streams are {', '.join(streams)}."
        raise ValidationError(msg)
    s = streams[name]
    if channel not in s.channels:
        msg = f"Invalid value for '--trigger': stream {name!r} has no channel {channel!r}."
        raise ValidationError(msg)
    y = s.channel(channel)
    return s.clock, s.times(), (y if y.ndim == 1 else np.linalg.norm(y, axis=1))


def synchronize_session(path: str | os.PathLike[str], *, reference: str | None = None,
                        triggers: tuple[str, ...] = (), priors: tuple[str, ...] = (),
                        store: bool = True) -> SyncReport:
    """Estimate every device clock of a session against the reference clock and store the results.

    Methods, best first: a hardware trigger channel (``triggers``: ``STREAM:CHANNEL`` on the reference clock and on
    the target clock); cross-correlation of physically matched signals (`fusionlab.sync._signals`); matched gait
    events. A clock for which no method gives a clear answer is left as it was, and the reason is reported.

    Parameters
    ----------
    path
        Session file.
    reference
        A stream whose clock becomes the session clock; default: the current reference clock, else the clock of
        the first marker stream, else the first clock.
    triggers
        Trigger channels ``STREAM:CHANNEL`` (one on the reference clock, one or more on other clocks).
    priors
        Known offsets ``CLOCK=OFFSET±SD`` (s), e.g. a device's fixed latency; combined with the data estimate by
        inverse variance, or used alone when the data give none.
    store
        Write the results into the session's clock entries (atomically). Nothing is written when no clock is
        synchronised, nor when the reference clock changes and a clock is refused (a new session clock makes
        every earlier estimate void, so a partial result would lose them): the session is then left exactly as
        it was (``report.stored`` is False).

    Notes
    -----
    A prior that the data contradict (the data alone give a confident estimate more than ``PRIOR_CONFLICT_Z``
    combined SDs from the prior) is not used: the clock is refused, with both estimates in the reason and a
    warning, since either the prior or the data is wrong and nothing tells which.
    """
    with open_session(path) as r:
        infos = {n: r.stream_info(n) for n in r.stream_names}
        clocks = r.clocks()
        if reference is not None:
            if reference not in infos:
                msg = f"Invalid value for '--reference': no stream {reference!r}; streams are {', '.join(infos)}."
                raise ValidationError(msg)
            ref_clock = infos[reference]["clock"]
        else:
            current = [c for c, e in clocks.items() if e.method == "reference"]
            markers = [i["clock"] for i in infos.values() if i["modality"] == "markers"]
            ref_clock = current[0] if current else (markers[0] if markers else sorted(clocks)[0])
        streams = {n: r.read_stream(n) for n in infos}
        events = _events_by_clock(r)
    by_clock: dict[str, list[Stream]] = {}
    for s in streams.values():
        by_clock.setdefault(s.clock, []).append(s)
    prior_map = {}
    for p in priors:
        clock, mu, sd = parse_prior(p)
        if clock not in clocks:
            msg = f"Invalid value for '--prior': no clock {clock!r}; clocks are {', '.join(clocks)}."
            raise ValidationError(msg)
        prior_map[clock] = (mu, sd)
    trig = [_trigger_channel(streams, t) for t in triggers]
    _check_triggers(triggers, trig, ref_clock)
    ref_trig = [(t, y) for c, t, y in trig if c == ref_clock]
    # anchors: the reference clock, and clocks that their recording system already maps to it (LSL streams when
    # the session clock is the LSL host clock); their signals are used on the session clock
    anchors = {ref_clock} | ({c for c, e in clocks.items() if e.method == "lsl"} if ref_clock == "lsl_host" else set())
    ref_signals = []
    for c in sorted(anchors):
        for sig in signals_of(by_clock.get(c, [])):
            entry = clocks.get(c)
            t = sig.t if entry is None or c == ref_clock else entry.offset_s + sig.t * (1 + entry.drift_ppm * 1e-6)
            ref_signals.append(sig._replace(t=t))
    report = SyncReport(reference_clock=ref_clock)
    for clock in sorted(by_clock):
        if clock in anchors:
            continue
        clock_trig = [(t, y) for c, t, y in trig if c == clock]
        result, reasons = _sync_one(clock, ref_clock, by_clock[clock], ref_signals, ref_trig, clock_trig, events,
                                    prior_map.get(clock))
        if clock in prior_map:
            mu, sd = prior_map[clock]
            # what the data say without the prior (the prior also narrows the correlation search, so the
            # narrowed search cannot see a contradicting lag)
            free, _ = _sync_one(clock, ref_clock, by_clock[clock], ref_signals, ref_trig, clock_trig, events)
            conflict = _prior_conflict(free, mu, sd)
            if conflict:
                report.warnings.append(f"{clock}: {conflict}")
                reasons = {**reasons, "prior_conflict": conflict,
                           "suggestion": "check the prior (sign, units, clock) or drop it; the data alone give "
                                         f"{free.offset_s:+.4f} s ± {1000 * free.offset_sd_s:.1f} ms "
                                         f"({free.method})."}
                result = None
            elif result is None:
                result = SyncResult(clock, ref_clock, mu, sd, 0.0, math.nan, "prior", {"note": "given by the user"})
            else:
                result = _combine(result, prior_map[clock])
        if result is None:
            report.refused[clock] = reasons
        else:
            report.results.append(result)
    reference_changes = str(clocks[ref_clock].method) != "reference" if ref_clock in clocks else True
    if store and report.results and not (reference_changes and report.refused):
        _store(path, ref_clock, report)
        report.stored = True
    elif store and report.results:
        report.warnings.append(f"nothing stored: {ref_clock} would become the session clock, which voids every "
                               f"earlier estimate, and {len(report.refused)} clock(s) could not be synchronised to "
                               f"it ({', '.join(report.refused)}); the session is left as it was.")
    return report


def _check_triggers(specs: tuple[str, ...], trig: list[tuple[str, np.ndarray, np.ndarray]], ref_clock: str) -> None:
    """A trigger needs a channel on the reference clock and one on another clock, else it cannot be used."""
    if not trig:
        return
    on_ref = [s for s, (c, _t, _y) in zip(specs, trig, strict=True) if c == ref_clock]
    others = [s for s, (c, _t, _y) in zip(specs, trig, strict=True) if c != ref_clock]
    if not on_ref or not others:
        got = ", ".join(f"{s} (clock {c})" for s, (c, _t, _y) in zip(specs, trig, strict=True))
        missing = (f"one on the reference clock {ref_clock}" if not on_ref
                   else "one on each clock to synchronise (another device)")
        msg = (f"Invalid value for '--trigger': a trigger synchronises a pair of clocks, so give the pulse channel "
               f"as recorded by both devices: one on the reference clock and one on the other clock. Got {got}; "
               f"missing {missing}.")
        raise ValidationError(msg)


def _prior_conflict(free: SyncResult | None, mu: float, sd: float) -> str:
    """Describe the disagreement of a data estimate and a prior, or "" when they agree (or there is no data)."""
    if free is None:
        return ""
    z = abs(free.offset_s - mu) / math.hypot(free.offset_sd_s, sd)
    if z <= PRIOR_CONFLICT_Z:
        return ""
    return (f"the prior {mu:+.4f} s ± {1000 * sd:.1f} ms contradicts the data, which give {free.offset_s:+.4f} s ± "
            f"{1000 * free.offset_sd_s:.1f} ms by {free.method} ({z:.0f} combined SDs apart, limit "
            f"{PRIOR_CONFLICT_Z:g}); nothing stored for this clock.")


def _sync_one(clock: str, ref_clock: str, streams: list[Stream], ref_signals: list[Any],
              ref_trig: list[tuple[np.ndarray, np.ndarray]], trig: list[tuple[np.ndarray, np.ndarray]],
              events: dict[str, list[tuple[float, str]]],
              prior: tuple[float, float] | None = None) -> tuple[SyncResult | None, dict[str, str]]:
    """Best estimate for one clock: trigger, else cross-correlation, else events.

    With a prior ``(mu, sd)`` on the offset, the cross-correlation searches only ``mu ± max(4 sd, PRIOR_MIN_LAG_S)``:
    a rough known offset (a device latency, "started within 100 ms of the cameras") resolves the one-step
    ambiguity of periodic gait, which the full ±15 s search refuses.
    """
    reasons: dict[str, str] = {}
    if ref_trig and trig:
        try:
            s = SyncTrigger().synchronize(ref_trig[0], trig[0])
            return s.result(clock, ref_clock, "trigger"), reasons
        except SyncRefused as e:
            reasons["trigger"] = str(e)
    candidates: list[SyncResult] = []
    target_signals = signals_of(streams)
    pairs = [(a, b) for b in target_signals for a in ref_signals if a.quantity == b.quantity]
    for a, b in pairs:
        try:
            if prior is None:
                s = SyncCrossCorrelation().synchronize(a, b)
                candidates.append(s.result(clock, ref_clock, "cross_correlation"))
            else:
                mu, sd = prior
                s = SyncCrossCorrelation(max_lag_s=max(4.0 * sd, PRIOR_MIN_LAG_S)).synchronize(
                    a, b._replace(t=b.t + mu))
                r = s.result(clock, ref_clock, "cross_correlation")
                # t_ref = o + (t + mu)(1 + d) = (o + mu (1 + d)) + t (1 + d)
                candidates.append(SyncResult(**{**r.__dict__, "offset_s": r.offset_s + mu * (1 + r.drift_ppm * 1e-6),
                                                 "evidence": {**r.evidence, "search": f"prior {mu:+.3f} s ± "
                                                              f"{max(4.0 * sd, PRIOR_MIN_LAG_S):.3f} s"}}))
        except SyncRefused as e:
            reasons[f"cross_correlation {b.quantity}"] = str(e)
    if candidates:
        best = min(candidates, key=lambda c: c.offset_sd_s)
        checks = []
        for c in candidates:
            if c is best:
                continue
            z = abs(c.offset_s - best.offset_s) / math.hypot(c.offset_sd_s, best.offset_sd_s)
            checks.append({"quantity": c.evidence["quantity"], "offset_s": c.offset_s, "sd_s": c.offset_sd_s,
                           "agrees": bool(z <= 3.0)})
        if checks:
            best = SyncResult(**{**best.__dict__, "evidence": {**best.evidence, "cross_checks": checks}})
        return best, reasons
    if not pairs:
        have = sorted({s.quantity for s in target_signals})
        want = sorted({s.quantity for s in ref_signals})
        reasons["cross_correlation"] = (f"no physically matched signals: this clock offers {have or 'none'}, the "
                                        f"reference offers {want or 'none'}.")
    if clock in events and ref_clock in events:
        try:
            s = SyncEvents().synchronize(events[ref_clock], events[clock])
            return s.result(clock, ref_clock, "events"), reasons
        except SyncRefused as e:
            reasons["events"] = str(e)
    else:
        reasons["events"] = "no gait events on both clocks."
    reasons["suggestion"] = ("record a trigger channel on both devices (--trigger), ingest foot markers or a foot "
                             "IMU seen by both, or give a known offset (--prior CLOCK=OFFSET±SD).")
    return None, reasons


def _store(path: str | os.PathLike[str], ref_clock: str, report: SyncReport) -> None:
    with transaction(path) as f:
        clocks = f["clocks"]
        ref_attrs = clocks[ref_clock].attrs
        was_reference = str(ref_attrs["method"]) == "reference"
        if not was_reference:  # a new session clock: every other estimate is relative to the old one
            for c in clocks:
                if str(clocks[c].attrs["method"]) not in ("unsynchronised",):
                    a = clocks[c].attrs
                    a["method"], a["offset_s"], a["offset_sd_s"] = "unsynchronised", 0.0, math.inf
                    a["drift_ppm"], a["drift_sd_ppm"] = 0.0, math.nan
                    a["quality"] = "reset: the session's reference clock changed"
            ref_attrs["offset_s"], ref_attrs["offset_sd_s"] = 0.0, 0.0
            ref_attrs["drift_ppm"], ref_attrs["drift_sd_ppm"] = 0.0, 0.0
            ref_attrs["method"] = "reference"
            ref_attrs["quality"] = "chosen as the session clock by fusionlab sync"
        for res in report.results:
            a = clocks[res.clock].attrs
            a["offset_s"], a["offset_sd_s"] = float(res.offset_s), float(res.offset_sd_s)
            a["drift_ppm"], a["drift_sd_ppm"] = float(res.drift_ppm), float(res.drift_sd_ppm)
            a["method"], a["reference"] = res.method, "session"
            a["quality"] = json.dumps(SyncReport(ref_clock, [res]).to_json()["results"][0]["evidence"])
