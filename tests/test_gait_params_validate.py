"""Temporal parameters, summaries, event matching, limits of agreement and ICC on hand-computable cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusionlab.gait._params import merge_spatial, summarise, symmetry_index, temporal_strides
from fusionlab.gait._validate import (
    agreement,
    event_metrics,
    icc_a1,
    limits_of_agreement,
    match_events,
    match_strides,
)
from fusionlab.gait.base import Stride, Value
from fusionlab.model import Event


def ev(t: float, side: str, kind: str, sd: float = 0.01, source: str = "markers") -> Event:
    return Event(time_s=t, kind="foot_strike" if kind == "fs" else "foot_off", side=side, source=source, sd_s=sd,
                 clock="c", detector="test v1")


def walk(n_strides: int = 4, stride_s: float = 1.0, t0: float = 0.0, sd: float = 0.01) -> list[Event]:
    """Symmetric gait: left FS at t0 + k T, right FS half a stride later, stance 60 %, double support 10 % each."""
    out = []
    for k in range(n_strides + 1):
        a = t0 + k * stride_s
        out += [ev(a, "left", "fs", sd), ev(a + 0.1 * stride_s, "right", "fo", sd),
                ev(a + 0.5 * stride_s, "right", "fs", sd), ev(a + 0.6 * stride_s, "left", "fo", sd)]
    return out


def test_temporal_strides_symmetric_walk() -> None:
    strides = temporal_strides(walk(), "c")
    left = [s for s in strides if s.side == "left"]
    right = [s for s in strides if s.side == "right"]
    assert len(left) == 4 and len(right) == 4  # the last right FS has no next one
    s = left[1]
    assert s.params["stride_time_s"].value == pytest.approx(1.0)
    assert s.params["stride_time_s"].sd == pytest.approx(math.sqrt(2) * 0.01, rel=1e-6)
    assert s.params["step_time_s"].value == pytest.approx(0.5)
    assert s.params["cadence_steps_per_min"].value == pytest.approx(120.0)
    # cadence = 120 / T: SD = 120 / T^2 * SD(T)
    assert s.params["cadence_steps_per_min"].sd == pytest.approx(120 * math.sqrt(2) * 0.01, rel=1e-6)
    assert s.params["stance_pct"].value == pytest.approx(60.0)
    assert s.params["swing_pct"].value == pytest.approx(40.0)
    assert s.params["double_support_pct"].value == pytest.approx(20.0)
    # stance = 100 (o - a) / (b - a): d/do = 100, d/da = -100 (b - o) = -40, d/db = -100 (o - a) = -60 (T = 1)
    assert s.params["stance_pct"].sd == pytest.approx(math.sqrt(100**2 + 40**2 + 60**2) * 0.01, rel=1e-5)
    assert "step_time_s" not in left[0].params  # no right FS before the first left FS
    assert right[0].params["step_time_s"].value == pytest.approx(0.5)


def test_temporal_strides_rejects_long_strides_gaps_and_missing_contralateral() -> None:
    events = [*walk(2), ev(5.0, "left", "fs"), ev(5.5, "right", "fs"), ev(6.0, "left", "fs")]
    strides = temporal_strides(events, "c")
    assert not any(s.start_s == 2.0 and s.side == "left" for s in strides)  # 3 s: too long
    assert any(s.start_s == 5.0 for s in strides)
    assert not any(s.start_s == 5.0 for s in temporal_strides(events, "c", gaps=[(5.7, 5.8)]))
    no_right = [e for e in walk(2) if not (e.side == "right" and e.kind == "foot_strike" and e.time_s == 1.5)]
    assert [s.start_s for s in temporal_strides(no_right, "c") if s.side == "left"] == [0.0]


def test_annotations_without_sd_give_nan_sd() -> None:
    strides = temporal_strides(walk(2, sd=math.nan), "c")
    assert math.isnan(strides[0].params["stride_time_s"].sd)
    assert strides[0].params["stride_time_s"].value == pytest.approx(1.0)


def test_merge_spatial_and_summary() -> None:
    temporal = temporal_strides(walk(3), "c")
    spatial = [Stride("left", 0.02, 1.0, "c", {"stride_length_m": Value(1.2, 0.02), "stride_time_s": Value(9.0)}),
               Stride("left", 1.2, 2.0, "c", {"stride_length_m": Value(1.4, 0.02)})]  # 200 ms off: no match
    merged = merge_spatial(temporal, spatial)
    first = next(s for s in merged if s.side == "left" and s.start_s == 0.0)
    assert first.params["stride_length_m"].value == 1.2
    assert first.params["stride_time_s"].value == pytest.approx(1.0)  # the temporal value is kept
    assert not any("stride_length_m" in s.params for s in merged if s.start_s == 1.0)
    strides = [Stride("left", i, i + 1, "c", {"stride_time_s": Value(v, 0.01)}) for i, v in enumerate([1.0, 1.2])]
    strides += [Stride("right", i, i + 1, "c", {"stride_time_s": Value(v, 0.01)}) for i, v in enumerate([1.0, 1.0])]
    summary = summarise(strides)["stride_time_s"]
    left = summary["left"]
    assert left["n"] == 2 and left["mean"] == pytest.approx(1.1)
    assert left["sd"] == pytest.approx(math.sqrt(0.02))
    assert left["cv_pct"] == pytest.approx(100 * math.sqrt(0.02) / 1.1)
    assert left["measurement_sd_of_mean"] == pytest.approx(math.sqrt(2) * 0.01 / 2)
    assert left["sd_of_mean"] == pytest.approx(math.sqrt(0.02 / 2 + 0.0001 / 2))
    assert summary["symmetry_index_pct"]["value"] == pytest.approx(100 * 0.1 / 1.05)


def test_symmetry_index_sd() -> None:
    si = symmetry_index(Value(1.1, 0.01), Value(1.0, 0.02))
    assert si.value == pytest.approx(200 * 0.1 / 2.1)
    # dSI/dL = 400 R / (L + R)^2, dSI/dR = -400 L / (L + R)^2
    expected = math.hypot(400 * 1.0 / 2.1**2 * 0.01, 400 * 1.1 / 2.1**2 * 0.02)
    assert si.sd == pytest.approx(expected)
    assert math.isnan(symmetry_index(Value(math.nan), Value(1.0)).value)


def test_match_events_hand_computed() -> None:
    ref = [ev(t, "left", "fs", source="annotation") for t in (1.0, 2.0, 3.0)]
    ref += [ev(1.6, "left", "fo", source="annotation")]
    det = [ev(0.2, "left", "fs"),  # before the reference span (0.9 .. 3.1): ignored for precision
           ev(1.03, "left", "fs"), ev(1.05, "left", "fs"),  # two candidates: the nearer (30 ms) wins
           ev(1.95, "left", "fs"),  # -50 ms
           ev(3.2, "left", "fs"),  # 200 ms after 3.0: outside tolerance -> 3.0 missed; outside span too
           ev(1.62, "left", "fo"),  # +20 ms
           ev(2.05, "right", "fs")]  # no right reference at all: outside any span
    m = match_events(det, ref, tolerance_s=0.1)
    assert sorted(round(d.time_s - r.time_s, 3) for d, r in m.pairs) == [-0.05, 0.02, 0.03]
    assert [e.time_s for e in m.missed] == [3.0]
    assert [e.time_s for e in m.extra] == [1.05]
    assert sorted(e.time_s for e in m.outside) == [0.2, 2.05, 3.2]
    metrics = event_metrics(m)
    fs = metrics["foot_strike"]
    assert (fs["n_reference"], fs["n_detected"], fs["n_matched"]) == (3, 3, 2)
    assert fs["precision"] == pytest.approx(2 / 3) and fs["recall"] == pytest.approx(2 / 3)
    assert fs["median_abs_error_s"] == pytest.approx(0.04)
    assert fs["mean_error_s"] == pytest.approx(-0.01)
    assert fs["p95_abs_error_s"] == pytest.approx(0.03 + 0.95 * 0.02)
    all_ = metrics["all"]
    assert (all_["n_matched"], all_["n_reference"]) == (3, 4)
    assert all_["median_abs_error_s"] == pytest.approx(0.03)
    # a detector that never gives foot-offs: no recall for them, and "all" is about foot strikes only
    no_fo = event_metrics(match_events([e for e in det if e.kind == "foot_strike"], ref, tolerance_s=0.1))
    assert no_fo["foot_off"]["recall"] is None and not no_fo["foot_off"]["detected_kind"]
    assert no_fo["all"]["n_reference"] == 3 and no_fo["all"]["recall"] == pytest.approx(2 / 3)


def test_icc_shrout_fleiss_table() -> None:
    """Shrout & Fleiss (1979) Table 2: ICC(2,1) = 0.29."""
    x = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
    assert icc_a1(x) == pytest.approx(0.2898, abs=1e-3)


def test_icc_hand_computed_two_raters() -> None:
    # targets 1, 2, 3; rater B = A + 1. m = 2.5, rows 1.5 2.5 3.5 -> MSR = 2 * 2 / 2 = 2;
    # cols 2, 3 -> MSC = 3 * 0.5 / 1 = 1.5; residuals 0 -> MSE = 0; ICC = 2 / (2 + 0 + 2 * 1.5 / 3) = 2 / 3
    assert icc_a1([[1, 2], [2, 3], [3, 4]]) == pytest.approx(2 / 3)
    assert icc_a1([[1, 1], [2, 2], [3, 3]]) == pytest.approx(1.0)
    assert math.isnan(icc_a1([[1, 2]]))


def test_limits_of_agreement_known() -> None:
    loa = limits_of_agreement([1.1, 2.0, 3.3], [1.0, 2.0, 3.0])  # d = 0.1, 0, 0.3
    assert loa["bias"] == pytest.approx(0.4 / 3)
    sd = np.std([0.1, 0.0, 0.3], ddof=1)
    assert loa["sd_difference"] == pytest.approx(sd)
    assert loa["loa_low"] == pytest.approx(0.4 / 3 - 1.96 * sd)
    assert loa["loa_high"] == pytest.approx(0.4 / 3 + 1.96 * sd)


def test_stride_pairing_and_agreement() -> None:
    ref = [Stride("left", float(i), i + 1.0, "s", {"stride_time_s": Value(1.0 + 0.1 * i)}) for i in range(5)]
    cmp_ = [Stride("left", i + 0.02, i + 1.0, "s", {"stride_time_s": Value(1.05 + 0.1 * i)}) for i in range(5)]
    cmp_.append(Stride("right", 0.0, 1.0, "s", {"stride_time_s": Value(1.0)}))
    pairs = match_strides(cmp_, ref, tolerance_s=0.1)
    assert len(pairs) == 5
    a = agreement(pairs)["stride_time_s"]
    assert a["n"] == 5 and a["bias"] == pytest.approx(0.05)
    assert a["loa_low"] == pytest.approx(0.05) and a["loa_high"] == pytest.approx(0.05)
    # constant offset 0.05 with target variance: ICC(A,1) < 1 (absolute agreement penalises the bias)
    assert 0.5 < a["icc_a1"] < 1.0
    # below 5 pairs no ICC (noise: a shared walk gave -4.96 from 2 pairs); bias and LoA still reported
    few = agreement(pairs[:4])["stride_time_s"]
    assert few["icc_a1"] is None and few["bias"] == pytest.approx(0.05)


def test_covered_spans_split_at_long_gaps() -> None:
    from fusionlab.gait._validate import covered_spans

    assert covered_spans([1.0, 2.0, 3.0, 10.0, 11.0], 0.1) == [(0.9, 3.1), (9.9, 11.1)]
    ref = [ev(t, "left", "fs", source="reference") for t in (1.0, 2.0, 10.0, 11.0)]
    det = [ev(t, "left", "fs") for t in (1.0, 2.0, 5.0, 6.0, 10.0, 11.0)]  # 5 and 6 s: between the bouts
    m = match_events(det, ref)
    assert len(m.pairs) == 4 and not m.extra and sorted(e.time_s for e in m.outside) == [5.0, 6.0]
