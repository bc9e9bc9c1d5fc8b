"""Marker-based gait events (Zeni 2008, O'Connor 2007 foot velocity) against the lab annotations of the shared C3D
files, plus direction, treadmill, gap and mirror tests.

``pytest tests/test_gait_markers.py -s`` prints the table of recall, precision and errors per detector and kind.

Evaluation rule: a detected event matches the nearest annotation of the same kind and side within 100 ms
(one-to-one, closest pairs first). Recall counts every annotation (none excluded); precision counts only detections
inside the annotated span of that kind and side (first to last such annotation, +- half the median interval between
them, i.e. half a stride). The eligible recall leaves out annotations whose markers are incomplete (`eligible`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fusionlab.adapters.c3d import read_c3d
from fusionlab.gait._markers import GaitFootVelocity, GaitZeni, _foot_markers, _marker
from fusionlab.model import Event, Stream
from fusionlab.persist import open_session, save_session
from tests.conftest import shared_path

ANNOTATED = (
    "btkdata/PiG_Motion-FlatFoot-Full.c3d", "btkdata/PiG_Motion-FlatFoot-Hole.c3d", "c3d_org/sample00_MAC_Walk1.c3d",
    "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d", "c3d_org/sample03_gait-pig.c3d",
    "c3d_org/sample03_gait-pig-nz.c3d", "c3d_org/sample04_sub_labels.c3d", "c3d_org/sample09_PlugInC3D.c3d",
    "c3d_org/sample09_VER4C3D.c3d", "c3d_org/sample11_2198928.c3d", "c3d_org/sample23_Vicon_analysis.c3d",
    "gaitalytics/treadmill_events.c3d",
)
MATCH_S = 0.1
SPAN_PAD_S = 0.5  # half a stride when it cannot be measured from the annotations
EDGE_S = 0.1


def match(detected: list[float], annotated: list[float], tol_s: float = MATCH_S) -> list[float]:
    """Signed errors (detected - annotated) of the one-to-one matches within ``tol_s``, closest pairs first."""
    pairs = sorted((abs(d - a), i, j) for i, d in enumerate(detected) for j, a in enumerate(annotated)
                   if abs(d - a) <= tol_s)
    used_d: set[int] = set()
    used_a: set[int] = set()
    errs = []
    for _, i, j in pairs:
        if i in used_d or j in used_a:
            continue
        used_d.add(i)
        used_a.add(j)
        errs.append(detected[i] - annotated[j])
    return errs


def eligible(time_s: float, side: str, m: Stream, meta: dict, *, need_pelvis: bool) -> bool:
    """Whether the markers a detector needs cover an annotated event: all of them seen for +-``EDGE_S`` around it
    and the event at least ``EDGE_S`` from the recording's first and last samples (an extremum needs samples on both
    sides). Annotations failing this are left out of the eligible recall (the all-annotations recall is printed too)."""
    t = m.times()
    if time_s - t[0] < EDGE_S or t[-1] - time_s < EDGE_S:
        return False
    roles = dict(meta["foot_markers"].get(side, {}))
    chans = [roles.get(meta.get("heel_substitute", {}).get(side, "heel")) or roles.get("ankle"), roles.get("toe")]
    if need_pelvis:
        chans += list(meta["pelvis_markers"])
    win = (t >= time_s - EDGE_S) & (t <= time_s + EDGE_S)
    return all(ch is not None and np.isfinite(_marker(m, ch)[win]).all() for ch in chans)


def score(events: list[Event], ann: list[Event], totals: dict[str, dict[str, list[float] | int]],
          kinds: tuple[str, ...] = ("foot_strike", "foot_off"), ok: Callable[[Event], bool] | None = None) -> None:
    """Add one file's matches to ``totals[kind]``: annotations (all, eligible), detections inside the annotated
    span, signed errors of the matches (all, eligible)."""
    for kind in kinds:
        tot = totals.setdefault(kind, {"n": 0, "n_ok": 0, "det": 0, "err": [], "err_ok": []})
        for side in ("left", "right"):
            a_ev = [e for e in ann if e.kind == kind and e.side == side]
            a = [e.time_s for e in a_ev]
            a_ok = [e.time_s for e in a_ev if ok is None or ok(e)]
            d = [e.time_s for e in events if e.kind == kind and e.side == side]
            half = 0.5 * float(np.median(np.diff(a))) if len(a) >= 2 else SPAN_PAD_S
            inside = [x for x in d if a and min(a) - half <= x <= max(a) + half]
            tot["n"] += len(a)  # type: ignore[operator]
            tot["n_ok"] += len(a_ok)  # type: ignore[operator]
            tot["det"] += len(inside)  # type: ignore[operator]
            tot["err"] += match(d, a)  # type: ignore[operator]
            tot["err_ok"] += match(d, a_ok)  # type: ignore[operator]


def summary(totals: dict[str, dict[str, list[float] | int]]) -> dict[str, dict[str, float]]:
    out = {}
    for kind, tot in totals.items():
        err = np.abs(np.asarray(tot["err"])) * 1000
        out[kind] = {"n": tot["n"], "n_eligible": tot["n_ok"], "recall": len(err) / max(tot["n"], 1),
                     "recall_eligible": len(tot["err_ok"]) / max(tot["n_ok"], 1),  # type: ignore[arg-type]
                     "precision": len(err) / max(tot["det"], 1),
                     "median_ms": float(np.median(err)) if len(err) else math.nan,
                     "p95_ms": float(np.percentile(err, 95)) if len(err) else math.nan,
                     "bias_ms": float(np.median(tot["err"]) * 1000) if len(err) else math.nan}
    return out


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    for kind, r in rows.items():
        print(f"  {kind:12s} n={r['n']:3d} recall={r['recall']:.3f} (eligible n={r['n_eligible']}: "
              f"{r['recall_eligible']:.3f}) precision={r['precision']:.3f} "
              f"median={r['median_ms']:.1f} ms p95={r['p95_ms']:.1f} ms bias={r['bias_ms']:+.1f} ms")


@pytest.fixture(scope="session")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every annotated shared C3D file ingested into its own session file."""
    out = {}
    folder = tmp_path_factory.mktemp("gait_sessions")
    for rel in ANNOTATED:
        src = shared_path(rel)
        dst = folder / (Path(rel).stem + ".h5")
        with warnings.catch_warnings():  # unit notes of model outputs, irrelevant here
            warnings.simplefilter("ignore")
            save_session(read_c3d(src), dst)
        out[rel] = dst
    return out


def _run(detector: GaitZeni | GaitFootVelocity, sessions: dict[str, Path]) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, list[float] | int]] = {}
    for rel, path in sessions.items():
        with open_session(path) as r:
            ann = r.events(source="annotation", clock="device")
            det = detector.detect(r)
            events = [e for res in det.results_ for e in res.events]
            assert all(e.source == "markers" and e.detector == detector.detector_id for e in events)
            assert all(math.isfinite(e.sd_s) and e.sd_s > 0 for e in events)
            assert all(e.clock == res.clock for res in det.results_ for e in res.events)
            m = r.read_stream(det.results_[0].streams[0])
            meta = det.results_[0].meta
            need_pelvis = isinstance(detector, GaitZeni)

            def ok(e: Event, m: Stream = m, meta: dict = meta, need_pelvis: bool = need_pelvis) -> bool:
                return eligible(e.time_s, e.side, m, meta, need_pelvis=need_pelvis)

            one: dict[str, dict[str, list[float] | int]] = {}
            score(events, ann, one, ok=ok)
            score(events, ann, totals, ok=ok)
            s = summary(one)
            print(f"  {Path(rel).name:42s} " + "  ".join(
                f"{k[5:]}: {len(one[k]['err'])}/{one[k]['n']} med {s[k]['median_ms']:.0f} ms"  # type: ignore[arg-type]
                for k in one))
    return summary(totals)


def test_zeni_against_annotations(sessions: dict[str, Path]) -> None:
    """Issue-4 targets: recall >= 0.97, median <= 10 ms (strike) / 20 ms (off), with the default strike delay of
    30 ms after the Zeni maximum (zeni2008 v3). The delay is fitted on these files; chosen without the held-out file
    or lab it is 30 ms in every fold and gives 7.7 ms (test_zeni_strike_delay_held_out, benchmarks/markers_lofo.py).
    Both recalls meet the target over all annotations since the recording-edge rules (`GaitZeni._edge_events`): strike
    0.976 (80 of 82; the edge rules add the btk files' first right strikes, maximum at / 2 samples after the first
    sample), off 0.986 (72 of 73; sample00 MAC's last left off, minimum 1.5 samples before the end). The two strikes
    still missed are sample23's: the last right one, where the ankle marker ends while the foot is still in swing, and
    the first right one, with no pelvis marker (found by the opt-in pelvis-free fallback,
    test_zeni_pelvis_free_fallback_against_annotations)."""
    rows = _run(GaitZeni(), sessions)
    print_table("GaitZeni (zeni2008 v6: v3 + recording-edge rules)", rows)
    fs, fo = rows["foot_strike"], rows["foot_off"]
    assert fs["recall_eligible"] >= 0.97
    assert fo["recall_eligible"] >= 0.97
    assert fo["recall"] >= 0.98  # measured 0.986 (72 of 73; v3 without the edge rules 0.973, v2: 0.959)
    assert fs["recall"] >= 0.97  # measured 0.976 (80 of 82; v3 without the edge rules 0.951, v2: 0.902)
    assert fs["median_ms"] <= 8.0  # measured 7.7 ms in-sample (v2: 8.1 ms on 74 matches)
    assert fo["median_ms"] <= 10.0
    assert fs["precision"] >= 0.99  # measured 1.000
    assert fo["precision"] >= 0.99  # measured 1.000


def test_zeni_edge_events_on_the_shared_files(sessions: dict[str, Path]) -> None:
    """The recording-edge rules add exactly three events to the shared annotated files, each next to its annotation,
    labelled, warned about, listed in meta and with a larger sd_s than the Zeni events of the same foot; without them
    (``edge_events=False``) every other event is identical."""
    expected = {"btkdata/PiG_Motion-FlatFoot-Full.c3d": ("right", "foot_strike", 1.530, "maximum at the first sample"),
                "btkdata/PiG_Motion-FlatFoot-Hole.c3d": ("right", "foot_strike", 1.470, "Zeni maximum inside"),
                "c3d_org/sample00_MAC_Walk1.c3d": ("left", "foot_off", 2.467, "Zeni minimum inside")}
    for rel in sessions:
        m, _ = _markers_of(sessions, rel)
        res, off = GaitZeni()._detect_stream(m), GaitZeni(edge_events=False)._detect_stream(m)
        assert res is not None and off is not None
        edge = [e for e in res.events if e.label.startswith("edge")]
        assert [(e.kind, e.side, e.time_s, e.sd_s) for e in res.events if not e.label] == [
            (e.kind, e.side, e.time_s, e.sd_s) for e in off.events]
        if rel not in expected:
            assert not edge and "edge_events" not in res.meta
            continue
        side, kind, t_ann, rule = expected[rel]
        assert len(edge) == 1 and (edge[0].side, edge[0].kind) == (side, kind) and rule in edge[0].label
        assert abs(edge[0].time_s - t_ann) <= 0.031  # measured -30.0 ms (first sample), +3.5 ms, +11.6 ms
        assert edge[0].sd_s > max(e.sd_s for e in off.events if e.kind == kind and e.side == side)
        assert res.meta["edge_events"][0]["rule"] in edge[0].label
        assert any("from the start" in w or "from the end" in w for w in res.warnings)


def test_zeni_pelvis_free_fallback_against_annotations(sessions: dict[str, Path]) -> None:
    """With ``pelvis_free_fallback=True`` sample23's right strike at 1.625 s (no pelvis marker before 1.70 s) is found
    3.7 ms from its annotation: 81 of 82 strikes (with the recording-edge rules), precision still 1.000; nothing
    else changes."""
    rows = _run(GaitZeni(pelvis_free_fallback=True), sessions)
    print_table("GaitZeni (zeni2008 v6, pelvis-free fallback)", rows)
    fs, fo = rows["foot_strike"], rows["foot_off"]
    assert fs["recall"] >= 0.987  # measured 0.988 (81 of 82; 0.963 without the edge rules)
    assert fs["precision"] >= 0.999  # measured 1.000
    assert fs["median_ms"] <= 8.0  # measured 7.6 ms
    assert fo["recall"] >= 0.97 and fo["precision"] >= 0.99


def test_zeni_speed_refinement_against_annotations(sessions: dict[str, Path]) -> None:
    """Version 1's strike refinement (heel speed below 0.5 m/s, threshold chosen on these files: 9.4 ms in-sample,
    14.1 ms leave-one-file-out), kept as an option."""
    rows = _run(GaitZeni(refine_strike_m_per_s=0.5), sessions)
    print_table("GaitZeni (strike refined by heel speed 0.5 m/s, v1 default)", rows)
    fs = rows["foot_strike"]
    assert fs["recall_eligible"] >= 0.97
    assert fs["median_ms"] <= 10.0
    assert fs["precision"] >= 0.95


def test_zeni_as_published_against_annotations(sessions: dict[str, Path]) -> None:
    """The unrefined method (Zeni's heel-to-pelvis maximum) finds the same strikes ~30 ms before the lab's
    annotation: the 10 ms target is not met without the refinement; the test holds the measured figure."""
    rows = _run(GaitZeni(strike_delay_s=None), sessions)
    print_table("GaitZeni (zeni2008 v6, as published)", rows)
    fs = rows["foot_strike"]
    assert fs["recall_eligible"] >= 0.97
    assert fs["median_ms"] <= 32.0  # measured 29.9 ms, bias -29.9 ms
    assert fs["bias_ms"] < -20.0


def test_zeni_heel_rest_option(sessions: dict[str, Path]) -> None:
    """The heel-rest strike (the first time after the maximum at which a true heel marker stops descending, i.e. its
    vertical velocity rises above -3 cm/s) is used on files with heel markers and falls back to the delay where an
    ankle marker stands in; it removes most of the lab bias of the heel files (btk, sample00) but not in general
    (held out overground 13.6 ms LOFO / 15.5 ms LOLO vs 15.1 / 15.8 ms for the delay: not the default)."""
    rows = _run(GaitZeni(heel_rest_m_per_s=0.03), sessions)
    print_table("GaitZeni (heel rest 0.03 m/s where a heel marker exists, else 30 ms)", rows)
    fs = rows["foot_strike"]
    assert fs["recall"] >= 0.95
    assert fs["precision"] >= 0.99
    assert fs["median_ms"] <= 11.0  # measured 10.3 ms in-sample
    for rel, rule in (("btkdata/PiG_Motion-FlatFoot-Full.c3d", "heel_rest"),
                      ("c3d_org/sample03_gait-pig.c3d", "delay")):
        m, _ = _markers_of(sessions, rel)
        res = GaitZeni(heel_rest_m_per_s=0.03)._detect_stream(m)
        assert res is not None
        assert set(res.meta["strike_rule"].values()) == {rule}


def _delay_held_out(sessions: dict[str, Path], grid_values: tuple[float, ...],
                    shift: Callable[[float, float], float]) -> dict[str, float]:
    """Held-out strike median of a one-parameter delay rule: strike = published maximum + shift(value, stride), the
    value chosen on the other files (LOFO; the two sample09 copies together) or labs (LOLO)."""
    labs = {"PiG_Motion-FlatFoot-Full": "btk", "PiG_Motion-FlatFoot-Hole": "btk", "sample03_gait-pig": "s03",
            "sample03_gait-pig-nz": "s03", "sample09_PlugInC3D": "s09", "sample09_VER4C3D": "s09"}
    base: dict[str, tuple[list[Event], list[Event], list[float]]] = {}
    for rel, path in sessions.items():
        with open_session(path) as r:
            ann = r.events(source="annotation", clock="device")
            m = r.read_stream(r.find_streams(modality="markers")[0])
        res = GaitZeni(strike_delay_s=None, strike_delay_stride_fraction=1.0)._detect_stream(m)  # max + 1 stride
        pub = GaitZeni(strike_delay_s=None)._detect_stream(m)
        assert res is not None and pub is not None
        s_pub = [e for e in pub.events if e.kind == "foot_strike"]
        s_one = [e for e in res.events if e.kind == "foot_strike"]
        assert [e.side for e in s_pub] == [e.side for e in s_one]
        base[rel] = (s_pub, ann, [b.time_s - a.time_s for a, b in zip(s_pub, s_one, strict=True)])

    def scored(rel: str, value: float) -> dict[str, list[float] | int]:
        s_pub, ann, stride = base[rel]
        ev = [dataclasses.replace(e, time_s=e.time_s + shift(value, t)) for e, t in zip(s_pub, stride, strict=True)]
        one: dict[str, dict[str, list[float] | int]] = {}
        score(ev, ann, one, kinds=("foot_strike",))
        return one["foot_strike"]

    grid = {v: {rel: scored(rel, v) for rel in sessions} for v in grid_values}

    def med(parts: list[dict[str, list[float] | int]]) -> float:
        return float(np.median(np.abs([e for p in parts for e in p["err"]]))) * 1000  # type: ignore[union-attr]

    out = {}
    for label, fold in (("file", lambda rel: "s09" if "sample09" in rel else rel),
                        ("lab", lambda rel: labs.get(Path(rel).stem, Path(rel).stem.split("_")[0]
                                                     if "sample00" not in rel else Path(rel).stem))):
        held: list[dict[str, list[float] | int]] = []
        for f in {fold(rel) for rel in sessions}:
            train = [rel for rel in sessions if fold(rel) != f]
            best = min(grid_values, key=lambda v: med([grid[v][rel] for rel in train]))
            held += [grid[best][rel] for rel in sessions if fold(rel) == f]
        out[label] = med(held)
        n_ann = sum(int(p["n"]) for p in held)
        n_match = sum(len(p["err"]) for p in held)  # type: ignore[arg-type]
        print(f"\nleave-one-{label}-out: median {out[label]:.1f} ms, recall {n_match / n_ann:.3f}")
        assert n_match / n_ann >= 0.90
    return out


def test_zeni_strike_delay_held_out(sessions: dict[str, Path]) -> None:
    """Out-of-sample figure of the default strike delay (v3: a constant 30 ms after the maximum): for each held-out
    file and lab the delay is chosen on the other files (smallest median error) and the held-out strikes are scored
    with it. The delay moves every strike by the same amount, so one run per file suffices."""
    out = _delay_held_out(sessions, (0.0, 0.01, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05), lambda d, _stride: d)
    assert out["file"] <= 8.0  # measured 7.7 ms (v2's stride fraction held out: 9.2 ms on 74 strikes)
    assert out["lab"] <= 8.0  # measured 7.7 ms


def test_zeni_stride_fraction_delay_held_out(sessions: dict[str, Path]) -> None:
    """v2's default, the delay as a fraction of the stride, held out the same way. With the four strikes that v3
    also finds near the recording edges (errors -35 to -44 ms in the btk files) its choice flips between 0.025 and
    0.0325 from fold to fold: 11.4 ms held out, worse than the constant delay, which is why v3 dropped it."""
    out = _delay_held_out(sessions, (0.015, 0.02, 0.025, 0.0275, 0.03, 0.0325, 0.035, 0.04),
                          lambda f, stride: f * stride)
    assert out["file"] <= 12.0  # measured 11.4 ms
    assert out["lab"] <= 12.0  # measured 11.4 ms


def test_foot_velocity_against_annotations(sessions: dict[str, Path]) -> None:
    """Medians meet the targets; the recalls do not (measured 0.93 strikes, 0.96 offs on eligible annotations): the
    strike minimum is missed where the recording ends before the foot settles or the ankle stands in for the heel,
    and sample11's offs are 130-140 ms after the annotation."""
    rows = _run(GaitFootVelocity(), sessions)
    print_table("GaitFootVelocity (oconnor2007 v3)", rows)
    fs, fo = rows["foot_strike"], rows["foot_off"]
    assert fs["median_ms"] <= 10.0
    assert fo["median_ms"] <= 10.0
    assert fs["recall_eligible"] >= 0.93  # target 0.97: not met
    assert fo["recall_eligible"] >= 0.95  # target 0.97: not met
    assert fs["precision"] >= 0.90
    assert fo["precision"] >= 0.90


def _markers_of(sessions: dict[str, Path], rel: str) -> tuple[Stream, list[Event]]:
    with open_session(sessions[rel]) as r:
        return r.read_stream(r.find_streams(modality="markers")[0]), r.events(source="annotation", clock="device")


def test_walkway_direction_minus_x(sessions: dict[str, Path]) -> None:
    """PiG_Motion-FlatFoot-Hole is walked from x = +2.4 m to x = -1.1 m."""
    m, _ = _markers_of(sessions, "btkdata/PiG_Motion-FlatFoot-Hole.c3d")
    res = GaitZeni()._detect_stream(m)
    assert res is not None
    assert res.meta["treadmill"] is False
    assert abs(res.meta["walkway_axis"][0]) > 0.95
    assert [p["direction"] for p in res.meta["passes"]] == ["-x"]
    # the +x file for contrast
    m2, _ = _markers_of(sessions, "btkdata/PiG_Motion-FlatFoot-Full.c3d")
    res2 = GaitZeni()._detect_stream(m2)
    assert res2 is not None
    assert [p["direction"] for p in res2.meta["passes"]] == ["+x"]


def _rotated(m: Stream, angle_deg: float) -> Stream:
    """The same trial rotated about the vertical (z) axis: 180 deg mirrors the walk into -x."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return dataclasses.replace(m, data=np.einsum("ij,ncj->nci", rot, m.data))


@pytest.mark.parametrize("angle_deg", [180.0, 90.0, 33.0])
def test_rotated_copy_gives_same_events(sessions: dict[str, Path], angle_deg: float) -> None:
    m, _ = _markers_of(sessions, "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d")
    for det in (GaitZeni(), GaitFootVelocity()):
        a = det._detect_stream(m)
        b = det._detect_stream(_rotated(m, angle_deg))
        assert a is not None and b is not None
        assert len(a.events) >= 10
        assert [(e.kind, e.side) for e in a.events] == [(e.kind, e.side) for e in b.events]
        np.testing.assert_allclose([e.time_s for e in a.events], [e.time_s for e in b.events], atol=1e-6)


def test_synthetic_turn(sessions: dict[str, Path]) -> None:
    """The trial followed by its mirrored copy walked back (a 180-degree turn in between, made by standing still
    for 1 s): the events of both passes are found, none during the turn, and the passes have opposite directions."""
    m, _ = _markers_of(sessions, "btkdata/PiG_Motion-FlatFoot-Full.c3d")
    back = _rotated(m, 180.0).data
    end = m.data[-1:]
    shift = end - back[:1]  # the walk back starts where the first pass ended
    shift[..., 2] = 0.0
    stand = np.repeat(end, int(m.rate_hz), axis=0)
    data = np.concatenate([m.data, stand, back + shift[:, :1, :]], axis=0)
    turn = dataclasses.replace(m, data=data)
    res = GaitZeni()._detect_stream(turn)
    single = GaitZeni()._detect_stream(m)
    assert res is not None and single is not None
    dirs = [p["direction"] for p in res.meta["passes"]]
    assert dirs[0] == "+x" and dirs[-1] == "-x"
    t_stand0 = m.start_s + m.n_samples / m.rate_hz
    t_stand1 = t_stand0 + stand.shape[0] / m.rate_hz
    assert not [e for e in res.events if t_stand0 + 0.2 < e.time_s < t_stand1 - 0.2]
    first = [e for e in res.events if e.time_s < t_stand0]
    second = [e for e in res.events if e.time_s > t_stand1]
    # the single walk's strike at its first sample is an edge event (label "edge: ..."): the walk back starts from
    # standing, not at a recording edge, so only the single walk's other events are expected there
    inner = [e for e in single.events if not e.label.startswith("edge")]
    assert len(single.events) - len(inner) == 1
    assert len(first) >= len(single.events) - 1
    assert len(second) >= len(inner) - 1


def test_treadmill(sessions: dict[str, Path]) -> None:
    m, ann = _markers_of(sessions, "gaitalytics/treadmill_events.c3d")
    for det in (GaitZeni(), GaitFootVelocity()):
        res = det._detect_stream(m)
        assert res is not None
        assert res.meta["treadmill"] is True
        totals: dict[str, dict[str, list[float] | int]] = {}
        score(res.events, ann, totals)
        rows = summary(totals)
        assert rows["foot_off"]["recall"] >= 0.95
        assert rows["foot_strike"]["recall"] >= 0.9
        assert not any("step_length_m" in s.params or "stride_length_m" in s.params for s in res.strides)


def test_gap_in_heel_marker_gives_no_event_inside(sessions: dict[str, Path]) -> None:
    m, _ann = _markers_of(sessions, "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d")
    heel = _foot_markers(m.channels)["left"]["heel"]
    res0 = GaitZeni()._detect_stream(m)
    assert res0 is not None
    fs = [e.time_s for e in res0.events if e.kind == "foot_strike" and e.side == "left"]
    t_gap = fs[len(fs) // 2]
    t = m.times()
    gap = (t > t_gap - 0.1) & (t < t_gap + 0.1)
    data = m.data.copy()
    data[gap, m.channels.index(heel)] = np.nan
    res = GaitZeni()._detect_stream(dataclasses.replace(m, data=data))
    assert res is not None
    left_fs = [e.time_s for e in res.events if e.kind == "foot_strike" and e.side == "left"]
    assert not [x for x in left_fs if t_gap - 0.15 < x < t_gap + 0.15]
    assert len(left_fs) == len(fs) - 1  # only the strike in the gap is lost


def test_pelvis_gap_filled_from_other_pelvis_markers(sessions: dict[str, Path]) -> None:
    """A 0.4 s gap in one PSIS marker (the pelvis point stays the mid-PSIS) is bridged by the other pelvis markers
    (offset held from the frames next to the gap): the strike and off inside come out within 3 ms of the complete
    data's, with a larger sd_s; a gap no donor covers still gives no event."""
    m, _ = _markers_of(sessions, "btkdata/PiG_Motion-FlatFoot-Full.c3d")
    ref = GaitZeni()._detect_stream(m)
    assert ref is not None and ref.meta["pelvis_markers"] == ["LPSI", "RPSI"]
    inner = [e for e in ref.events if e.kind == "foot_strike"][2]
    t = m.times()
    gap = (t > inner.time_s - 0.2) & (t < inner.time_s + 0.2)
    data = m.data.copy()
    data[gap, m.channels.index("LPSI")] = np.nan
    data[t > t[-1] - 0.5, m.channels.index("LASI")] = np.nan  # so that the mid-PSIS stays the pelvis point
    res = GaitZeni()._detect_stream(dataclasses.replace(m, data=data))
    assert res is not None and res.meta["pelvis_filled_s"]
    assert any("filled from other pelvis markers" in w for w in res.warnings)
    assert [(e.kind, e.side) for e in res.events] == [(e.kind, e.side) for e in ref.events]
    np.testing.assert_allclose([e.time_s for e in res.events], [e.time_s for e in ref.events], atol=0.003)
    inside = [(a, b) for a, b in zip(ref.events, res.events, strict=True) if gap[np.searchsorted(t, a.time_s)]]
    assert inside and all(b.sd_s > a.sd_s for a, b in inside)
    # every pelvis marker missing there: nothing to fill from, no Zeni event in the gap ...
    for ch in ("LPSI", "RPSI", "LASI", "RASI"):
        data[gap, m.channels.index(ch)] = np.nan
    none = GaitZeni(pelvis_free_fallback=False)._detect_stream(dataclasses.replace(m, data=data))
    assert none is not None
    assert not [e for e in none.events if inner.time_s - 0.1 < e.time_s < inner.time_s + 0.1]
    # ... but the pelvis-free fallback finds the strike from the heel alone (the off in the gap stays missing)
    pf = GaitZeni(pelvis_free_fallback=True)._detect_stream(dataclasses.replace(m, data=data))
    assert pf is not None
    got = [e for e in pf.events if inner.time_s - 0.1 < e.time_s < inner.time_s + 0.1]
    assert [(e.kind, e.side, e.label[:11]) for e in got] == [("foot_strike", inner.side, "pelvis-free")]
    assert abs(got[0].time_s - inner.time_s) < 0.010 and got[0].sd_s > inner.sd_s
    assert {(e.kind, e.side, e.time_s) for e in none.events} <= {(e.kind, e.side, e.time_s) for e in pf.events}


def _synthetic_walk(rate_hz: float = 100.0, speed: float = 1.2, stride_s: float = 1.1,
                    swing_s: float = 0.44) -> tuple[Stream, list[float]]:
    """Straight walk in +x at constant pelvis speed; each heel stands still, then swings one stride length with
    forward velocity L/swing_s (1 - cos 2 pi s): the Zeni maximum (heel velocity = pelvis velocity) is known exactly."""
    from fusionlab.model import Stream as _Stream

    t = np.arange(0.0, 6.0, 1.0 / rate_hz)
    stride = speed * stride_s
    s_cross = 1.0 - math.acos(1.0 - speed * swing_s / stride) / (2 * math.pi)  # descending side of the velocity bump
    chans, cols, maxima = [], [], []
    for side, phase in (("L", 0.0), ("R", 0.5 * stride_s)):
        x = np.zeros_like(t)
        z = np.full_like(t, 0.02)
        for k in range(-1, 8):
            t0 = phase + k * stride_s + (stride_s - swing_s)  # swing start
            s = (t - t0) / swing_s
            x += np.where(s >= 1, stride, np.where(s > 0, stride * (s - np.sin(2 * np.pi * s) / (2 * np.pi)), 0.0))
            z += np.where((s > 0) & (s < 1), 0.08 * np.sin(np.pi * np.clip(s, 0, 1)) ** 2, 0.0)
            maxima.append((side, t0 + s_cross * swing_s))
        x += phase * speed - stride
        for name, dx, dz in (("HEE", 0.0, 0.0), ("TOE", 0.2, 0.0)):
            chans.append(f"{side}{name}")
            cols.append(np.stack([x + dx, np.full_like(t, 0.1 if side == "L" else -0.1), z + dz], axis=1))
    for name, dy in (("LASI", 0.12), ("RASI", -0.12)):
        chans.append(name)
        cols.append(np.stack([speed * t + 0.3, np.full_like(t, dy), np.full_like(t, 1.0)], axis=1))
    m = _Stream(name="markers", modality="markers", data=np.stack(cols, axis=1), channels=tuple(chans),
                rate_hz=rate_hz, start_s=0.0, units=("m",) * len(chans), clock="device",
                components=("x", "y", "z"))
    right = sorted(tm for sd, tm in maxima if sd == "R" and 1.5 < tm < 4.5)
    return m, right


def test_pelvis_free_strike_simulated() -> None:
    """Simulated walk at a constant 1.2 m/s: with the pelvis markers removed over one right stride, the fallback places
    that strike 30 ms after the exact Zeni maximum (heel forward velocity = walking speed) within 3 ms, labelled, and
    everything else is unchanged; without the fallback the strike is missing."""
    m, right = _synthetic_walk()
    full = GaitZeni(pelvis_free_fallback=True)._detect_stream(m)
    assert full is not None
    zen = [e.time_s for e in full.events if e.kind == "foot_strike" and e.side == "right"]
    for tm in right:  # the Zeni strike itself: exact maximum + 30 ms
        assert min(abs(z - tm - 0.030) for z in zen) < 0.003
    target = right[1]
    t = m.times()
    data = m.data.copy()
    data[(t > target - 0.3) & (t < target + 0.3), m.channels.index("LASI")] = np.nan
    data[(t > target - 0.3) & (t < target + 0.3), m.channels.index("RASI")] = np.nan
    res = GaitZeni(pelvis_free_fallback=True)._detect_stream(dataclasses.replace(m, data=data))
    off = GaitZeni(pelvis_free_fallback=False)._detect_stream(dataclasses.replace(m, data=data))
    assert res is not None and off is not None
    got = [e for e in res.events if e.kind == "foot_strike" and e.side == "right" and abs(e.time_s - target) < 0.1]
    assert len(got) == 1 and got[0].label.startswith("pelvis-free")
    assert abs(got[0].time_s - (target + 0.030)) < 0.003
    assert not [e for e in off.events if e.kind == "foot_strike" and e.side == "right" and abs(e.time_s - target) < 0.1]
    assert {(e.kind, e.side, e.time_s) for e in off.events} | {(got[0].kind, "right", got[0].time_s)} == {
        (e.kind, e.side, e.time_s) for e in res.events}


def test_heading_steady_up_to_the_recording_edges(sessions: dict[str, Path]) -> None:
    """A steady walker stays steady up to the last sample (the 0.8 Hz heading filter is padded with the straight
    path fitted to the ends; before, its edge transient slowed the walker to ~0.1 m/s and the last 0.2 s lost their
    events): the strike 20 ms before the end of PiG_Motion-FlatFoot-Full (maximum 85 ms before the end) is found."""
    m, ann = _markers_of(sessions, "btkdata/PiG_Motion-FlatFoot-Full.c3d")
    res = GaitZeni()._detect_stream(m)
    assert res is not None
    t = m.times()
    assert res.meta["passes"][-1]["end_s"] == pytest.approx(t[-1])
    assert not any("turning" in w for w in res.warnings)
    last = max((e for e in ann if e.kind == "foot_strike"), key=lambda e: e.time_s)
    assert t[-1] - last.time_s < 0.05
    assert match([e.time_s for e in res.events if e.kind == "foot_strike" and e.side == last.side], [last.time_s])


def test_zeni_needs_pelvis_markers(sessions: dict[str, Path]) -> None:
    m, _ = _markers_of(sessions, "btkdata/PiG_Motion-FlatFoot-Full.c3d")
    keep = [i for i, ch in enumerate(m.channels) if not any(k in ch.upper() for k in ("ASI", "PSI", "SACR"))]
    no_pelvis = dataclasses.replace(m, data=m.data[:, keep], channels=tuple(m.channels[i] for i in keep),
                                    units=tuple(m.units[i] for i in keep), orig_units=())
    res = GaitZeni()._detect_stream(no_pelvis)
    assert res is not None
    assert res.events == []
    assert any("pelvis" in w for w in res.warnings)
    fv = GaitFootVelocity()._detect_stream(no_pelvis)  # foot velocity does not need the pelvis
    assert fv is not None
    assert len([e for e in fv.events if e.kind == "foot_off"]) >= 4


def test_spatial_parameters(sessions: dict[str, Path]) -> None:
    m, _ = _markers_of(sessions, "btkdata/PiG_Motion-FlatFoot-Full.c3d")
    res = GaitZeni()._detect_stream(m)
    assert res is not None
    strides = [s for s in res.strides if "stride_length_m" in s.params]
    assert len(strides) >= 2
    for s in strides:
        length = s.params["stride_length_m"].value
        speed = s.params["gait_speed_m_per_s"].value
        assert 0.8 < length < 1.8
        assert 0.6 < speed < 1.8
        assert s.params["stride_length_m"].sd == pytest.approx(0.001 * math.sqrt(2))
        if "step_width_m" in s.params:
            assert 0.02 < s.params["step_width_m"].value < 0.4
        if "step_length_m" in s.params:
            assert 0.3 < s.params["step_length_m"].value < 0.9


def test_gaitmap_mocap_foot_markers_only_with_turn() -> None:
    """gaitmap's mocap_sample.csv: heel (L_FCC), toe and 5th metatarsal markers only (no pelvis: Zeni cannot run,
    foot velocity can), a pass in -x, a turn, a pass in +x. Reference: gaitmap's stride events (``ic``, ``tc`` in
    samples of the 204.8 Hz IMU recording that started at the same instant). Their event definitions differ from
    ours (measured: strikes +40 ms, offs -49 ms, printed), so only recall is held here."""
    import csv

    from fusionlab.adapters.imu_gaitmap import read_gaitmap_mocap

    rows = list(csv.DictReader(shared_path("imu/gaitmap/stride_events_sample.csv").open()))
    m = read_gaitmap_mocap(shared_path("imu/gaitmap/mocap_sample.csv")).streams[0]
    res = GaitFootVelocity()._detect_stream(m)
    assert res is not None
    assert [p["direction"] for p in res.meta["passes"]] == ["-x", "+x"]
    assert any("turning" in w for w in res.warnings)
    t_turn = (res.meta["passes"][0]["end_s"], res.meta["passes"][1]["start_s"])
    assert not [e for e in res.events if t_turn[0] + 0.1 < e.time_s < t_turn[1] - 0.1]
    for kind, col in (("foot_strike", "ic"), ("foot_off", "tc")):
        errs: list[float] = []
        n = 0
        for side in ("left", "right"):
            ref = sorted({float(r[col]) / 204.8 for r in rows if r["foot"] == side})
            errs += match([e.time_s for e in res.events if e.kind == kind and e.side == side], ref)
            n += len(ref)
        print(f"\ngaitmap {kind}: {len(errs)}/{n} matched, median {np.median(np.abs(errs)) * 1000:.1f} ms, "
              f"bias {np.median(errs) * 1000:+.1f} ms")
        assert len(errs) / n >= 0.95
    zeni = GaitZeni()._detect_stream(m)
    assert zeni is not None and zeni.events == []


def test_extrema_near_the_edge_of_the_data() -> None:
    """A maximum cut short by the recording edge counts when it stands out on the inner side and the signal rises
    into it; a signal that only falls from the edge has no maximum there."""
    from fusionlab.gait._markers import _extrema

    rate = 100.0
    t = np.arange(0, 2.0, 1 / rate)
    peak_t = 0.12  # 12 samples in: the left base is the recording edge
    x = 0.1 * np.cos(2 * np.pi * (t - peak_t) / 1.1)  # 0.2 m swing, maxima 1.1 s apart
    found = [t[i] + d / rate for i, d, _ in _extrema(x, rate, prominence=0.05, min_interval_s=0.3)]
    assert any(abs(f - peak_t) < 0.005 for f in found)
    assert any(abs(f - (peak_t + 1.1)) < 0.005 for f in found)
    # the same wave started after its maximum: the edge value is the largest, no maximum is invented
    late = 0.1 * np.cos(2 * np.pi * (t + 0.05) / 1.1)
    found = [t[i] for i, _, _ in _extrema(late, rate, prominence=0.05, min_interval_s=0.3)]
    assert all(f > 0.5 for f in found)
    # a maximum near the edge that barely rises from it (1 mm of a 200 mm swing) is not trusted
    flat = np.where(t < 0.1, 0.1 - 0.001 * (0.1 - t) / 0.1, 0.1 * np.cos(2 * np.pi * (t - 0.1) / 1.1))
    found = [t[i] for i, _, _ in _extrema(flat, rate, prominence=0.05, min_interval_s=0.3)]
    assert all(f > 0.5 for f in found)


def _synthetic_extrema(speed: float = 1.2, stride_s: float = 1.1,
                       swing_s: float = 0.44) -> list[tuple[str, str, float]]:
    """Exact Zeni extrema of `_synthetic_walk` (same defaults): (side, kind, time) of every heel-to-pelvis maximum
    (foot strike, before its delay) and toe-to-pelvis minimum (foot off: the toe, 0.2 m ahead of the heel, moves with
    it; its forward velocity reaches the pelvis's on the rising side of the swing's velocity bump)."""
    a = math.acos(1.0 - speed * swing_s / (speed * stride_s)) / (2 * math.pi)
    out = []
    for side, phase in (("left", 0.0), ("right", 0.5 * stride_s)):
        for k in range(-1, 8):
            t0 = phase + k * stride_s + (stride_s - swing_s)  # swing start
            out += [(side, "foot_strike", t0 + (1.0 - a) * swing_s), (side, "foot_off", t0 + a * swing_s)]
    return out


def _crop(m: Stream, i0: int, i1: int) -> Stream:
    return dataclasses.replace(m, data=m.data[i0:i1], start_s=float(m.times()[i0]))


def test_edge_events_simulated() -> None:
    """The simulated walk cropped at every phase of the gait cycle (2.5 s kept, a new crop every 10 ms over 1.5
    strides): every event of every crop is near an exact one (Zeni maximum + 30 ms, toe minimum): edge events within
    1 ms, the normal search within 6 ms, the strike whose maximum is the first sample within 6 ms (placed as if the
    maximum were exactly there), so a crop in mid-swing or mid-stance invents nothing at its edge. An extremum 1.5-2.5
    samples inside the data (too close for the 7 Hz search) is found by the edge rules, labelled, with a larger sd_s;
    so is a strike whose maximum is half a sample after the first sample; a strike whose maximum is 5.5 samples before
    the data is not reported. Measured errors in the comments."""
    m, _ = _synthetic_walk()
    truth = _synthetic_extrema()
    rate, keep = 100, 250
    det = GaitZeni()
    for i0 in range(0, 165):
        res = det._detect_stream(_crop(m, i0, i0 + keep))
        assert res is not None
        for e in res.events:
            exact = [x + (0.030 if kind == "foot_strike" else 0.0) for side, kind, x in truth
                     if side == e.side and kind == e.kind]
            err = min((e.time_s - x for x in exact), key=abs)
            if "first sample" in e.label:  # placed as if the maximum were the first sample
                assert abs(err) < 0.006, (i0, e)  # measured -5.1 to +4.9 ms (maximum within a sample of the edge)
            elif e.label.startswith("edge"):
                assert abs(err) < 0.001, (i0, e)  # measured 0.3 ms
            else:  # the normal search, unchanged (7 Hz low-pass edge transient for maxima 3+ samples inside)
                assert abs(err) < 0.006, (i0, e)  # measured 5.2 ms
    t = m.times()

    def edge_events(i0: int, i1: int) -> list[Event]:
        res = det._detect_stream(_crop(m, i0, i1))
        assert res is not None
        return [e for e in res.events if e.label.startswith("edge")]

    strikes = [x for side, kind, x in truth if side == "right" and kind == "foot_strike" and 1.0 < x < 3.0]
    for x in strikes:
        i_max = int(np.floor(x * rate))  # the last sample before the exact maximum
        # the maximum 1.5 or 2.5 samples inside (the 7 Hz search needs 3): bracketed; 0.5 sample inside: first sample
        for k, rule, tol in ((1, "edge: Zeni maximum inside", 0.001), (2, "edge: Zeni maximum inside", 0.001),
                             (0, "edge: maximum at the first sample", 0.006)):
            got = [e for e in edge_events(i_max - k, i_max - k + keep) if e.kind == "foot_strike"]
            assert len(got) == 1 and got[0].side == "right" and got[0].label.startswith(rule), (x, k, got)
            assert abs(got[0].time_s - (x + 0.030)) < tol  # measured 0.1, 0.3 and 5.1 ms
            assert got[0].sd_s > 0.012
        # the maximum 2 samples before the first sample: the heel has not landed 30 ms later, nothing at that edge
        late = _crop(m, i_max + 6, i_max + 6 + keep)
        res = det._detect_stream(late)
        assert res is not None
        assert not [e for e in res.events if e.side == "right" and e.kind == "foot_strike"
                    and e.time_s < late.times()[0] + 0.3]
    offs = [x for side, kind, x in truth if side == "left" and kind == "foot_off" and 2.0 < x < 5.0]
    for x in offs:
        i_min = int(np.ceil(x * rate))  # the first sample after the exact minimum
        for k in (1, 2):  # the minimum 1.5 / 2.5 samples before the last sample
            got = [e for e in edge_events(i_min + k - keep, i_min + k + 1) if e.kind == "foot_off"]
            assert len(got) == 1 and got[0].side == "left" and abs(got[0].time_s - x) < 0.001  # measured 0.1-0.3 ms
    # crops whose first sample is in mid-swing or mid-stance of the right foot: no right event in the first 0.1 s
    swing0 = [x - (1.0 - _A_SYNTH) * 0.44 for x in strikes]  # swing starts
    for start in [s0 + 0.22 for s0 in swing0] + [s0 - 0.3 for s0 in swing0]:
        i0 = round(start * rate)
        res = det._detect_stream(_crop(m, i0, i0 + keep))
        assert res is not None
        assert not [e for e in res.events if e.side == "right" and e.time_s < t[i0] + 0.1]


_A_SYNTH = math.acos(1.0 - 0.4) / (2 * math.pi)  # swing phase of the Zeni extrema in `_synthetic_walk` (off: a)


def test_edge_events_on_cropped_real_walks(sessions: dict[str, Path]) -> None:
    """Three shared walks cropped to 1.5 s starting at every third sample (every phase of the gait cycle at both
    edges): no edge event appears where the full walk has no event of that kind and side within 100 ms, and each edge
    event is near the full walk's (bracketed: within 12 ms, measured <= 11.6 ms over the crops of all 30 shared walks
    in benchmarks/markers_lofo.py; maximum at the first sample: within 40 ms, measured <= 29.5 ms here)."""
    n_edge = 0
    for rel in ("btkdata/PiG_Motion-FlatFoot-Full.c3d", "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d",
                "c3d_org/sample00_MAC_Walk1.c3d"):
        m, _ = _markers_of(sessions, rel)
        full = GaitZeni()._detect_stream(m)
        assert full is not None
        keep = round(1.5 * float(m.rate_hz))
        for i0 in range(0, m.n_samples - keep + 1, 3):
            res = GaitZeni()._detect_stream(_crop(m, i0, i0 + keep))
            assert res is not None
            for e in (e for e in res.events if e.label.startswith("edge")):
                n_edge += 1
                near = [f.time_s - e.time_s for f in full.events if f.kind == e.kind and f.side == e.side
                        and abs(f.time_s - e.time_s) < 0.1]
                assert near, (rel, i0, e)
                assert min(map(abs, near)) < (0.040 if "first sample" in e.label else 0.012), (rel, i0, e)
    assert n_edge >= 10


def _foot_supports(walk_15hz: object, e: Event) -> bool:
    """Whether the foot's own kinematics show the event (markers low-passed at 15 Hz): a strike where the heel (or
    its stand-in) moved faster than 0.6 m/s 50-150 ms before and comes to rest (horizontal speed < 0.3 m/s within
    2 cm of its stance height, the median over its stances of >= 0.1 s) within 120 ms after; a foot off where the toe
    is at rest within 80 ms before and rises 1 cm above its stance height or moves faster than 0.6 m/s within 150 ms
    after."""
    from fusionlab.gait._markers import _heel_like, _runs
    from fusionlab.gait.base import GaitResult

    w = walk_15hz
    roles = w.feet[e.side]
    p = (_heel_like(roles, e.side, GaitResult("", "", (), "")) if e.kind == "foot_strike"
         else roles.get("toe", roles.get("mt5")))
    if p is None:
        return False
    v = np.gradient(p[:, w.horiz], w.t, axis=0)
    s = np.hypot(v[:, 0], v[:, 1])
    z = p[:, w.up]
    rest = np.isfinite(s) & (s < 0.3)
    runs = [(a, b) for a, b in _runs(rest) if (b - a) / w.rate_hz >= 0.1]
    if not runs:
        return False
    at_rest = rest & (z < np.median([np.median(z[a:b]) for a, b in runs]) + 0.02)
    h0 = np.median([np.median(z[a:b]) for a, b in runs])

    def i(t: float) -> int:
        return int(np.clip(round((t - w.t[0]) * w.rate_hz), 0, len(w.t) - 1))

    t = e.time_s
    if e.kind == "foot_strike":
        return bool(at_rest[i(t):i(t + 0.12) + 1].any() and np.nanmax(s[i(t - 0.15):i(t - 0.05) + 1], initial=0) > 0.6)
    after = slice(i(t), i(t + 0.15) + 1)
    return bool(at_rest[i(t - 0.08):i(t) + 1].any()
                and (np.nanmax(z[after], initial=-np.inf) - h0 > 0.01 or np.nanmax(s[after], initial=0) > 0.6))


def test_short_crops_invent_no_event(sessions: dict[str, Path]) -> None:
    """1.5 s crops (every phase) of the three annotated walks whose crops v4 took for a treadmill: every event of a
    crop is one of the full walk's (same kind and side within 100 ms) or shown by the foot's own kinematics
    (`_foot_supports`), the crops are not called treadmills, and they keep >= 95 % of the full walk's events lying
    >= 0.2 s inside them (measured 99.8 %: 1454 of 1457). v4 took 1.5 s of overground walking at 0.9-1.2 m/s (body
    within 1 m) for a treadmill and reversed the forward direction: strikes at the foot offs (6 distinct false events
    on these walks, the foot 3-15 cm up and moving at 1.3-1.8 m/s). 1.5 s crops of the treadmill walk stay
    treadmills."""
    from fusionlab.gait._markers import _prepare

    inside = found = 0
    for rel in ("c3d_org/sample09_PlugInC3D.c3d", "c3d_org/sample23_Vicon_analysis.c3d",
                "c3d_org/sample04_sub_labels.c3d"):
        m, _ = _markers_of(sessions, rel)
        full = GaitZeni()._detect_stream(m)
        assert full is not None
        walk = _prepare(m, 15.0, 45.0)
        assert walk is not None
        rate = float(m.rate_hz)
        keep = round(1.5 * rate)
        t = m.times()
        for i0 in range(0, m.n_samples - keep + 1, 2):
            res = GaitZeni()._detect_stream(_crop(m, i0, i0 + keep))
            assert res is not None
            assert res.meta["treadmill"] is not True, (rel, i0)
            for e in res.events:
                known = any(f.kind == e.kind and f.side == e.side and abs(f.time_s - e.time_s) < MATCH_S
                            for f in full.events)
                assert known or _foot_supports(walk, e), (rel, i0, e)
            for f in full.events:
                if t[i0] + 0.2 <= f.time_s <= t[i0 + keep - 1] - 0.2:
                    inside += 1
                    found += any(e.kind == f.kind and e.side == f.side and abs(f.time_s - e.time_s) < MATCH_S
                                 for e in res.events)
    assert inside > 300
    assert found >= 0.95 * inside, (found, inside)
    m, _ = _markers_of(sessions, "gaitalytics/treadmill_events.c3d")
    keep = round(1.5 * float(m.rate_hz))
    for i0 in range(0, m.n_samples - keep + 1, 25):
        res = GaitZeni()._detect_stream(_crop(m, i0, i0 + keep))
        assert res is not None and res.meta["treadmill"] is True, i0
