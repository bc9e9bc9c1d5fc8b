"""Clock synchronisation from matched events: hardware trigger edges or gait events seen by two devices."""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from fusionlab.sync.base import BaseSynchronizer, SyncRefused, linear_fit

__all__ = ["SyncEvents", "SyncTrigger", "trigger_edges"]


def trigger_edges(t: NDArray[np.float64], y: NDArray[np.float64], *, threshold: float | None = None,
                  max_edges: int = 100_000) -> NDArray[np.float64]:
    """Rising-edge times of a pulse channel, interpolated linearly across the threshold.

    Parameters
    ----------
    t, y
        ``(n,)`` times (s) and values of the trigger channel (any unit).
    threshold
        Level of an edge; default: halfway between the low level (0.5th percentile) and the high level (99.9th
        percentile), so that short pulses (duty cycle down to 0.1 %) are found.
    max_edges
        More edges than this means the channel is noise, not pulses: none are returned.

    Notes
    -----
    Hysteresis: after an edge, the signal must fall below ``threshold - 25 %`` of the pulse height before the next
    rising edge counts, so noise on a level does not create edges.
    """
    ok = np.isfinite(y)
    t, y = t[ok], y[ok]
    if len(y) < 3:
        return np.array([])
    lo, hi = np.percentile(y, [0.5, 99.9])
    if hi - lo <= 0:
        return np.array([])
    thr = 0.5 * (lo + hi) if threshold is None else threshold
    low = thr - 0.25 * (hi - lo)
    up = np.flatnonzero((y[:-1] < thr) & (y[1:] >= thr))
    down = np.flatnonzero(y < low)
    edges = []
    last_armed = -1
    for i in up:  # an edge counts when the signal was below `low` since the previous edge
        k = np.searchsorted(down, i, side="right") - 1
        if k >= 0 and down[k] > last_armed:
            edges.append(i)
            last_armed = i
        if len(edges) > max_edges:
            return np.array([])
    i = np.asarray(edges, dtype=int)
    if len(i) == 0:
        return np.array([])
    frac = (thr - y[i]) / (y[i + 1] - y[i])
    return t[i] + frac * (t[i + 1] - t[i])


class SyncEvents(BaseSynchronizer):
    """Estimate offset and drift from the same events seen on two clocks.

    Every pairing of a reference event with a target event of the same kind and side proposes an offset; the
    offset that matches the most events within ``tolerance_s`` wins, and must beat any other offset more than
    ``2 * tolerance_s`` away (else the pairing is ambiguous and the synchroniser refuses). The matched pairs are
    then fitted with a straight line (offset and, when the span allows, drift).

    Parameters
    ----------
    tolerance_s
        Largest difference between matched events after alignment (s).
    min_matches
        Fewest matched events to accept a result.
    max_drift_sd_ppm
        Drift is estimated only when its standard error is below this.
    timing_sd_s
        Timing uncertainty of each event (s), added in quadrature (divided by sqrt(n)) to the fit's error, with
        a floor on the offset SD of this value over sqrt(n).
    max_lag_s
        Largest |offset| considered (s).
    max_rival_fraction
        Refuse when another offset (more than ``2 * tolerance_s`` away) matches at least this fraction of the
        best one's matches: regular gait events repeat every stride, so only irregularity identifies the lag.
    min_margin
        Refuse when the best offset matches fewer than this many events more than any other offset (more than
        ``2 * tolerance_s`` away).
    min_completeness
        Of the events (of kinds and sides present on both clocks) that fall inside the span both event lists cover
        once aligned, at least this fraction must be matched, on each clock: two recordings of the same walk see
        the same steps, while an offset that aligns one stride of two unrelated walks leaves their other events
        unmatched.

    Notes
    -----
    Why ``min_matches = 5`` and ``min_margin = 3`` (docs/sync.md, "unrelated walks"): one stride has four events
    (strike and toe-off of each foot), and one stride of any two walks lines up within ``tolerance_s``. Over every
    ordered pair of different annotated walks in ``../shared/data`` and ``sample_data`` (202 pairs), the old rules
    (3 matches, 80 % rival rule) accepted 25, with 3 or 4 matches and a margin of 1-2 over the runner-up (one
    with 7 against 5). Two recordings of the same walk match every event of the overlap, and an offset one stride
    away loses that stride's four events.
    """

    def __init__(self, *, tolerance_s: float = 0.05, min_matches: int = 5, max_drift_sd_ppm: float = 100.0,
                 timing_sd_s: float = 0.005, max_lag_s: float = 60.0, max_rival_fraction: float = 0.8,
                 min_margin: int = 3, min_completeness: float = 0.75) -> None:
        self.max_rival_fraction = max_rival_fraction
        self.min_margin = min_margin
        self.min_completeness = min_completeness
        self.tolerance_s = tolerance_s
        self.min_matches = min_matches
        self.max_drift_sd_ppm = max_drift_sd_ppm
        self.timing_sd_s = timing_sd_s
        self.max_lag_s = max_lag_s

    def synchronize(self, reference: list[tuple[float, str]], target: list[tuple[float, str]]) -> Self:
        """Match ``(time_s, label)`` events (label = kind and side) and fit the clock mapping.

        Raises
        ------
        SyncRefused
            Too few matches, or two different offsets explain the events equally well.
        """
        self.reference = reference
        self.target = target
        ref = {}
        for t, lab in reference:
            ref.setdefault(lab, []).append(t)
        ref = {k: np.sort(np.asarray(v)) for k, v in ref.items()}
        candidates = np.array([r - t for t, lab in target for r in ref.get(lab, [])])
        candidates = candidates[np.abs(candidates) <= self.max_lag_s]
        if len(candidates) > 200:  # keep the offsets proposed most often (bins of half the tolerance)
            bins = np.round(candidates / (0.5 * self.tolerance_s))
            _values, first, counts = np.unique(bins, return_index=True, return_counts=True)
            candidates = candidates[first[np.argsort(counts)[::-1][:200]]]
        if len(candidates) == 0:
            raise SyncRefused("no events of the same kind and side on both clocks.",
                              "detect or annotate gait events in both recordings, or use a trigger channel.")

        def matches(offset: float) -> list[tuple[float, float]]:
            pairs = []
            for t, lab in target:
                r = ref.get(lab)
                if r is None:
                    continue
                k = int(np.argmin(np.abs(r - (t + offset))))
                if abs(r[k] - (t + offset)) <= self.tolerance_s:
                    pairs.append((t, float(r[k])))
            return pairs

        scores = np.array([len(matches(c)) for c in candidates])
        best = int(np.argmax(scores))
        best_offset = float(candidates[best])
        rivals = scores[np.abs(candidates - best_offset) > 2 * self.tolerance_s]
        evidence: dict[str, Any] = {"n_reference": len(reference), "n_target": len(target),
                                    "n_matched": int(scores[best]),
                                    "runner_up_matches": int(rivals.max()) if len(rivals) else 0}
        if scores[best] < self.min_matches:
            raise SyncRefused(f"only {scores[best]} events match (needs {self.min_matches}).",
                              "record more steps or events in both devices.")
        runner_up = int(rivals.max()) if len(rivals) else 0
        if runner_up and (runner_up >= self.max_rival_fraction * scores[best]
                          or scores[best] - runner_up < self.min_margin):
            raise SyncRefused(f"ambiguous event matching: {scores[best]} events match at offset {best_offset:+.3f} s "
                              f"and {runner_up} at another offset (needs at least {self.min_margin} more and fewer "
                              f"than {self.max_rival_fraction:.0%} as many; regular events repeat every stride, and "
                              f"one stride of any two walks lines up).",
                              "make a distinct event (e.g. a single stamp) at the start or use a trigger.")
        pairs = np.array(matches(best_offset))
        # overlap consistency: inside the span both event lists cover, the events of both clocks must match
        common = set(ref) & {lab for _t, lab in target}
        t_ref = np.array([t for t, lab in reference if lab in common])
        t_tgt = np.array([t + best_offset for t, lab in target if lab in common])
        lo = max(t_ref.min(), t_tgt.min()) - self.tolerance_s
        hi = min(t_ref.max(), t_tgt.max()) + self.tolerance_s
        n_in = (int(np.sum((t_ref >= lo) & (t_ref <= hi))), int(np.sum((t_tgt >= lo) & (t_tgt <= hi))))
        n_ref_matched = len({r for _t, r in pairs.tolist()})
        completeness = min(n_ref_matched / max(n_in[0], 1), len(pairs) / max(n_in[1], 1))
        evidence.update(n_in_overlap_reference=n_in[0], n_in_overlap_target=n_in[1],
                        completeness=completeness)
        if completeness < self.min_completeness:
            raise SyncRefused(f"events at offset {best_offset:+.3f} s: {n_ref_matched} of the {n_in[0]} reference "
                              f"events and {len(pairs)} of the {n_in[1]} target events inside the span both "
                              f"cover match (needs {self.min_completeness:.0%} on each clock): the recordings do not "
                              f"show the same steps.",
                              "check that both devices recorded the same walk; use a trigger channel (--trigger).")
        x, y = pairs[:, 0], pairs[:, 1] - pairs[:, 0]
        n = len(x)
        floor = self.timing_sd_s / math.sqrt(n)
        a, b, se_a, se_b, resid = linear_fit(x, y)
        df = n - 2
        tq = float(stats.t.ppf(0.975, df)) / 1.96 if df >= 1 else math.nan
        evidence["residual_sd_s"] = resid
        if df >= 1 and math.isfinite(se_b) and se_b * 1e6 * tq <= self.max_drift_sd_ppm:
            self.offset_s_, self.drift_ppm_ = a, b * 1e6
            self.offset_sd_s_ = math.hypot(se_a * tq, floor)
            self.drift_sd_ppm_ = se_b * 1e6 * tq
            evidence["drift"] = "estimated"
        else:
            self.offset_s_, self.drift_ppm_, self.drift_sd_ppm_ = float(np.mean(y)), 0.0, math.nan
            sd = float(np.std(y, ddof=1)) / math.sqrt(n) if n > 1 else self.timing_sd_s
            tq1 = float(stats.t.ppf(0.975, n - 1)) / 1.96 if n > 1 else 1.0
            self.offset_sd_s_ = math.hypot(sd * tq1, floor)
            evidence["drift"] = "not estimated: too few events or too short a span"
        self.evidence_ = evidence
        return self


class SyncTrigger(SyncEvents):
    """Synchronise from a hardware trigger or sync-pulse channel recorded on both devices.

    Rising edges are found in both channels (`trigger_edges`) and matched like events. Each edge's timing
    uncertainty is the slower channel's sample period over sqrt(12) unless ``timing_sd_s`` is given.
    """

    def __init__(self, *, threshold: float | None = None, tolerance_s: float = 0.05, min_matches: int = 2,
                 max_drift_sd_ppm: float = 100.0, timing_sd_s: float | None = None, max_lag_s: float = 60.0,
                 max_rival_fraction: float = 0.8, min_margin: int = 1, min_completeness: float = 0.0) -> None:
        super().__init__(tolerance_s=tolerance_s, min_matches=min_matches, max_drift_sd_ppm=max_drift_sd_ppm,
                         timing_sd_s=0.0 if timing_sd_s is None else timing_sd_s, max_lag_s=max_lag_s,
                         max_rival_fraction=max_rival_fraction, min_margin=min_margin,
                         min_completeness=min_completeness)
        self.threshold = threshold
        self.timing_sd_s = timing_sd_s  # type: ignore[assignment]

    def synchronize(self, reference: tuple[NDArray[np.float64], NDArray[np.float64]],  # type: ignore[override]
                    target: tuple[NDArray[np.float64], NDArray[np.float64]]) -> Self:
        """``reference`` and ``target`` are ``(t, y)`` trigger channels."""
        er = trigger_edges(*reference, threshold=self.threshold)
        et = trigger_edges(*target, threshold=self.threshold)
        period = max(float(np.median(np.diff(reference[0]))), float(np.median(np.diff(target[0]))))
        timing = self.timing_sd_s if self.timing_sd_s is not None else period / math.sqrt(12.0)
        inner = SyncEvents(tolerance_s=self.tolerance_s, min_matches=self.min_matches,
                           max_drift_sd_ppm=self.max_drift_sd_ppm, timing_sd_s=timing, max_lag_s=self.max_lag_s,
                           max_rival_fraction=self.max_rival_fraction, min_margin=self.min_margin,
                           min_completeness=self.min_completeness)
        if len(er) < self.min_matches or len(et) < self.min_matches:
            raise SyncRefused(f"the trigger channels show {len(er)} and {len(et)} rising edges (needs "
                              f"{self.min_matches} on each).", "check the channel names and the pulse level.")
        inner.synchronize([(t, "edge") for t in er], [(t, "edge") for t in et])
        self.offset_s_, self.offset_sd_s_ = inner.offset_s_, inner.offset_sd_s_
        self.drift_ppm_, self.drift_sd_ppm_ = inner.drift_ppm_, inner.drift_sd_ppm_
        self.evidence_ = {**inner.evidence_, "edges_reference": len(er), "edges_target": len(et),
                          "edge_timing_sd_s": timing}
        return self
