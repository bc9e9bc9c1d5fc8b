"""IMU gait detectors on real recordings: gaitmap's foot-IMU walk (mocap reference) and Mobilise-D HA/001.

Run ``pytest tests/test_gait_imu.py -s`` to print the per-trial tables quoted in docs/gait-imu.md.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest

from fusionlab.gait._imu_back import GaitLowerBackImu
from fusionlab.gait._imu_foot import GaitFootImu
from fusionlab.persist import open_session, save_session
from tests.conftest import shared_path

GAITMAP = "imu/gaitmap/"
MOBGAP = "imu/mobgap/lab/HA/001/data.mat"
RATE_HZ = 204.8


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def gaitmap_session(tmp_path_factory: pytest.TempPathFactory):
    from fusionlab.adapters.imu_gaitmap import read_gaitmap_imu

    imu = shared_path(GAITMAP + "imu_sample.csv")
    ev = shared_path(GAITMAP + "stride_events_sample.csv")
    path = tmp_path_factory.mktemp("gaitmap") / "gaitmap.h5"
    save_session(read_gaitmap_imu(imu, stride_events=ev), path)
    return path


@pytest.fixture(scope="module")
def foot(gaitmap_session):
    with open_session(gaitmap_session) as r:
        det = GaitFootImu().detect(r)
        streams = {n: r.read_stream(n) for n in r.find_streams(modality="imu")}
    return det, streams


@pytest.fixture(scope="module")
def gaitmap_reference():
    rows = list(csv.DictReader(shared_path(GAITMAP + "stride_events_sample.csv").open()))
    from fusionlab.adapters.imu_gaitmap import read_gaitmap_mocap

    mocap = read_gaitmap_mocap(shared_path(GAITMAP + "mocap_sample.csv")).streams[0]
    return rows, mocap


@pytest.fixture(scope="module")
def mobgap_session(tmp_path_factory: pytest.TempPathFactory):
    from fusionlab.adapters.imu_mobilised import read_mobilised_mat

    session = read_mobilised_mat(shared_path(MOBGAP))
    path = tmp_path_factory.mktemp("mobgap") / "mobgap.h5"
    save_session(session, path)
    return path, session.sources[0].metadata


@pytest.fixture(scope="module")
def sensor_height_m() -> float:
    meta = json.loads(shared_path("imu/mobgap/data_csv/participant_metadata.json").read_text())
    return float(meta["HA"]["001"]["sensor_height_m"])


@pytest.fixture(scope="module")
def back(mobgap_session, sensor_height_m):
    path, _ = mobgap_session
    with open_session(path) as r:
        det = GaitLowerBackImu(sensor_height_m=sensor_height_m).detect(r)
        ref = r.events(source="reference", clock="device")
        streams = {n: r.read_stream(n) for n in r.find_streams(modality="imu")}
    return det, ref, streams


# ------------------------------------------------------------------------------------------------ helpers
def _foot_errors(det: GaitFootImu, rows, mocap):
    """Per side: event errors (ms) and stride-time (ms) and stride-length (m) errors of matched strides."""
    out = {}
    for res in det.results_:
        side = res.meta["placement"].split("_")[0]
        ref = [x for x in rows if x["foot"] == side]
        ics = np.array([e.time_s for e in res.events if e.kind == "foot_strike"])
        tcs = np.array([e.time_s for e in res.events if e.kind == "foot_off"])
        ref_ic = np.array(sorted({float(x[k]) for x in ref for k in ("ic", "pre_ic")})) / RATE_HZ
        ref_tc = np.array([float(x["tc"]) for x in ref]) / RATE_HZ
        ev = {}
        for kind, mine, rt in (("ic", ics, ref_ic), ("tc", tcs, ref_tc)):
            d = np.array([mine[np.argmin(np.abs(mine - x))] - x for x in rt]) * 1000
            ev[kind] = (d[np.abs(d) < 100], int(np.sum(np.abs(d) >= 100)), rt.size)
        heel = mocap.data[:, mocap.channels.index(f"{side[0].upper()}_FCC"), :]
        st_err, len_err, stance_err = [], [], []
        for x in ref:
            a, b = float(x["pre_ic"]) / RATE_HZ, float(x["ic"]) / RATE_HZ
            match = [s for s in res.strides if abs(s.start_s - a) < 0.1]
            if not match:
                continue
            s = match[0]
            st_err.append((s.params["stride_time_s"].value - (b - a)) * 1000)
            if "stance_pct" in s.params:
                stance_err.append(s.params["stance_pct"].value - 100 * (float(x["tc"]) / RATE_HZ - a) / (b - a))
            if "stride_length_m" in s.params:
                # mocap stride length: heel-marker displacement between the mid-stances that bound the stride
                i0 = round(float(x["start"]) / RATE_HZ * 100)
                i1 = round(float(x["end"]) / RATE_HZ * 100)
                length = float(np.linalg.norm(heel[i1, :2] - heel[i0, :2]))
                len_err.append(s.params["stride_length_m"].value - length)
        out[side] = {"events": ev, "stride_time_ms": np.array(st_err), "stride_length_m": np.array(len_err),
                     "stance_pct": np.array(stance_err),
                     "n_ref": len(ref), "n_strides": len(res.strides)}
    return out


def _trial(name: str) -> str:
    return name.split(".")[1]


def _back_table(det: GaitLowerBackImu, ref_events, meta, system: str):
    """Per trial: IC recall within 100 ms, L/R agreement, cadence per reference bout (mine, reference)."""
    rows = {}
    for res in det.results_:
        trial = _trial(res.streams[0])
        info = meta["reference"][trial][system]
        bouts = [(b["start_device_s"], b["end_device_s"], b) for b in info["bouts"]]
        mine = [e for e in res.events if e.kind == "foot_strike"]
        t_mine = np.array([e.time_s for e in mine])
        ref = [e for e in ref_events if e.detector == f"mobilised:{system}" and e.kind == "foot_strike"
               and e.clock == res.clock and any(a - 0.05 <= e.time_s <= b + 0.05 for a, b, _ in bouts)]
        hits, same_side = 0, 0
        for e in ref:
            if t_mine.size == 0:
                continue
            j = int(np.argmin(np.abs(t_mine - e.time_s)))
            if abs(t_mine[j] - e.time_s) < 0.1:
                hits += 1
                same_side += mine[j].side == e.side
        cad = []
        lo, hi = det.step_time_range_s
        t_ref = np.array(sorted({round(e.time_s, 3) for e in ref}))
        for a, b, bout in bouts:
            # cadence = 60 / median step time of the contacts inside the reference bout (as the detector's bouts)
            sel = t_mine[(t_mine >= a - 0.05) & (t_mine <= b + 0.05)]
            dt = np.diff(sel)
            dt = dt[(dt >= lo) & (dt <= hi)]
            c = 60.0 / float(np.median(dt)) if dt.size >= 2 else math.nan
            dt_ref = np.diff(t_ref[(t_ref >= a - 0.05) & (t_ref <= b + 0.05)])
            dt_ref = dt_ref[(dt_ref >= lo) & (dt_ref <= hi)]
            c_ics = 60.0 / float(np.median(dt_ref)) if dt_ref.size >= 2 else math.nan
            # the field's own definition (mean of 120 / stride time), over the detected strides in the bout
            c_mean = float(np.mean(120.0 / (sel[2:] - sel[:-2]))) if sel.size > 2 else math.nan
            cad.append((a, c, float(bout["cadence_steps_per_min"]), c_ics, c_mean))
        rows[trial] = {"n_ref": len(ref), "hits": hits, "same_side": same_side, "cadence": cad}
    return rows


# ------------------------------------------------------------------------------------------------ foot IMU
def test_foot_contract(foot):
    det, streams = foot
    assert len(det.results_) == 2
    for res in det.results_:
        assert res.source == "imu"
        assert res.detector == "footimu_swing_zupt v2"
        stream = streams[res.streams[0]]
        assert res.clock == stream.clock
        assert res.meta["sagittal_axis"] == "y"  # gaitmap's foot frame: y medio-lateral
        for e in res.events:
            assert e.source == "imu"
            assert e.clock == stream.clock
            assert e.detector == det.detector_id
            assert math.isfinite(e.sd_s) and 0 < e.sd_s < 0.05
            assert e.side == res.meta["placement"].split("_")[0]
        assert all("stride_time_s" in s.params for s in res.strides)
        json.dumps(res.meta)  # stored with the results
        json.dumps([s.as_dict() for s in res.strides])


def test_foot_against_mocap(foot, gaitmap_reference):
    det, _ = foot
    rows, mocap = gaitmap_reference
    errs = _foot_errors(det, rows, mocap)
    print("\nfoot IMU vs motion capture (gaitmap imu_sample.csv, 204.8 Hz)")
    print(f"{'side':6} {'kind':12} {'n':>4} {'missed':>6} {'median':>8} {'p95|.|':>8}")
    all_st, all_len = [], []
    for side, e in errs.items():
        for kind, (d, missed, n) in e["events"].items():
            p95 = np.percentile(np.abs(d), 95)
            print(f"{side:6} {kind + ' ms':12} {n:4d} {missed:6d} {np.median(d):8.1f} {p95:8.1f}")
            # foot strike and foot-off within 10 ms of the mocap event at the median, 20 ms at the 95th percentile
            assert abs(np.median(d)) <= 10
            assert np.percentile(np.abs(d), 95) <= 20
            assert missed <= 2  # the first/last stride of the walk and the turn
        st, ln = e["stride_time_ms"], e["stride_length_m"]
        print(f"{side:6} {'stride ms':12} {st.size:4d} {e['n_ref'] - st.size:6d} {np.median(np.abs(st)):8.1f} "
              f"{np.percentile(np.abs(st), 95):8.1f}")
        print(f"{side:6} {'length cm':12} {ln.size:4d} {e['n_ref'] - ln.size:6d} {100 * np.median(np.abs(ln)):8.1f} "
              f"{100 * np.percentile(np.abs(ln), 95):8.1f}   (bias {100 * np.median(ln):+.1f} cm)")
        sp = e["stance_pct"]
        print(f"{side:6} {'stance %':12} {sp.size:4d} {e['n_ref'] - sp.size:6d} {np.median(np.abs(sp)):8.2f} "
              f"{np.percentile(np.abs(sp), 95):8.2f}   (bias {np.median(sp):+.2f} %)")
        assert np.median(np.abs(sp)) <= 2.0
        assert sp.size >= e["n_ref"] - 3
        assert st.size >= e["n_ref"] - 3
        assert ln.size >= e["n_ref"] - 3
        all_st.extend(st)
        all_len.extend(ln)
    med_st = float(np.median(np.abs(all_st)))
    med_len = float(np.median(np.abs(all_len)))
    print(f"overall: median |stride-time error| {med_st:.1f} ms, median |stride-length error| {100 * med_len:.1f} cm")
    assert med_st <= 10.0  # target
    assert med_len <= 0.05  # target


def test_foot_axis_and_sign_from_the_data(foot, tmp_path):
    """The raw sensor frames (gaitmap's imu_sample_not_rotated.csv: sagittal axis z, opposite signs on the two
    feet) give the same events and strides as the data rotated into gaitmap's foot frame."""
    from fusionlab.adapters.imu_gaitmap import read_gaitmap_imu

    det, _ = foot
    path = tmp_path / "raw.h5"
    save_session(read_gaitmap_imu(shared_path(GAITMAP + "imu_sample_not_rotated.csv")), path)
    with open_session(path) as r:
        raw = GaitFootImu().detect(r)
    signs = {}
    for res, res_rot in zip(raw.results_, det.results_, strict=True):
        assert res.meta["placement"] == res_rot.meta["placement"]
        assert res.meta["sagittal_axis"] == "z"
        signs[res.meta["placement"]] = res.meta["sagittal_sign"]
        t_raw = np.array([e.time_s for e in res.events])
        t_rot = np.array([e.time_s for e in res_rot.events])
        assert t_raw.shape == t_rot.shape
        assert np.max(np.abs(t_raw - t_rot)) < 1.5 / RATE_HZ
        len_raw = [s.params["stride_length_m"].value for s in res.strides if "stride_length_m" in s.params]
        len_rot = [s.params["stride_length_m"].value for s in res_rot.strides if "stride_length_m" in s.params]
        np.testing.assert_allclose(len_raw, len_rot, atol=0.01)
    assert signs["left_foot"] == -signs["right_foot"]


def test_foot_gap_gives_no_event_inside(foot):
    _det, streams = foot
    stream = streams[next(n for n in streams if n.endswith("left_foot"))]
    data = stream.data.copy()
    t = stream.times()
    gap = (t >= 10.0) & (t < 14.0)  # covers about three strides of the walk
    data[gap, stream.channels.index("gyr")] = np.nan
    res = GaitFootImu().detect_stream(dataclasses.replace(stream, data=data))
    inside = [e for e in res.events if 10.0 <= e.time_s < 14.0]
    assert not inside
    assert any("missing" in w for w in res.warnings)
    assert not [s for s in res.strides if s.start_s < 14.0 and s.end_s > 10.0]
    (g0, g1), = res.meta["gaps_s"]  # declared, so that strides built from events do not span it
    assert g0 < 10.0 < 14.0 <= g1 < 14.01
    assert len(res.events) > 30  # the rest of the walk is still analysed


def test_foot_standing_still_gives_nothing(foot):
    _, streams = foot
    stream = streams[next(n for n in streams if n.endswith("right_foot"))]
    rng = np.random.default_rng(1)
    n = 20 * 205
    data = np.zeros((n, 2, 3))
    data[:, 0] = [0.3, -0.2, 9.80] + 0.05 * rng.standard_normal((n, 3))
    data[:, 1] = 0.01 * rng.standard_normal((n, 3))
    res = GaitFootImu().detect_stream(dataclasses.replace(stream, data=data))
    assert res.events == []
    assert res.strides == []
    assert res.warnings


def test_foot_saturation_flagged(foot):
    _, streams = foot
    stream = streams[next(n for n in streams if n.endswith("left_foot"))]
    data = stream.data.copy()
    g = data[:, stream.channels.index("gyr")]
    data[:, stream.channels.index("gyr")] = np.clip(g, -7.0, 7.0)  # a +-400 deg/s gyroscope
    res = GaitFootImu().detect_stream(dataclasses.replace(stream, data=data))
    assert res.meta["saturated_samples"] > 0
    assert any("saturated" in w for w in res.warnings)
    sat = np.any(np.abs(data[:, stream.channels.index("gyr")]) >= 7.0, axis=1)
    t = stream.times()
    for e in res.events:
        i = round((e.time_s - t[0]) * stream.rate_hz)
        assert not sat[i]


# ------------------------------------------------------------------------------------------------ lower back
def test_back_contract(back):
    det, _, streams = back
    assert len(det.results_) == 3
    for res in det.results_:
        assert res.detector == "lowerback_mccamley_pendulum v1"
        assert res.clock == streams[res.streams[0]].clock
        for e in res.events:
            assert e.source == "imu"
            assert e.kind == "foot_strike"
            assert e.side in ("left", "right")
            assert math.isfinite(e.sd_s) and e.sd_s > 0
        assert res.meta["bouts"]
        for bout in res.meta["bouts"]:  # the Mobilise-D definition beside the median one
            assert 40 < bout["cadence_mean_stride_steps_per_min"] < 200
        json.dumps(res.meta)
        json.dumps([s.as_dict() for s in res.strides])
        for g0, g1 in res.meta["gaps_s"]:  # outside bouts: no event, no stride
            assert not [e for e in res.events if g0 < e.time_s < g1]
            assert not [s for s in res.strides if s.start_s < g1 and s.end_s > g0]
        # Mobilise-D frame: x vertical
        assert abs(res.meta["vertical_axis_in_sensor_frame"][0]) > 0.9


def _print_back(rows, system):
    print(f"\nlower-back IMU vs {system} (Mobilise-D HA/001)")
    for trial, r in rows.items():
        cad = ", ".join(f"{c:.1f} [{c_mean:.1f}] vs {ref:.1f} ({ref_ics:.1f})"
                        for _, c, ref, ref_ics, c_mean in r["cadence"])
        print(f"{trial:15} IC recall {r['hits']}/{r['n_ref']} = {r['hits'] / max(r['n_ref'], 1):.3f}  "
              f"L/R agreement {r['same_side']}/{r['hits']}  cadence per bout: mine, median step [mean stride] vs "
              f"ref field (median step of its ICs) {cad}")


@pytest.mark.parametrize("system", ["INDIP", "Stereophoto"])
def test_back_against_reference(back, mobgap_session, system):
    det, ref, _ = back
    _, meta = mobgap_session
    rows = _back_table(det, ref, meta, system)
    _print_back(rows, system)
    hits = sum(r["hits"] for r in rows.values())
    n = sum(r["n_ref"] for r in rows.values())
    print(f"overall IC recall {hits}/{n} = {hits / n:.3f}")
    # what we can defend (the 0.95 target holds on Test5; on Test11 it is a strict xfail below)
    for trial, r in rows.items():
        floor = 0.95 if trial.startswith("test5") else 0.85  # target on the straight walks
        assert r["hits"] / r["n_ref"] >= floor, trial
        assert r["same_side"] / r["hits"] >= 0.9, trial
    # straight walks (Test5): cadence within 3 steps/min of the reference
    for trial, r in rows.items():
        if trial.startswith("test5"):
            for _, c, c_ref, _, c_mean in r["cadence"]:
                assert abs(c - c_ref) <= 3.0, trial
                assert abs(c_mean - c_ref) <= 3.0, trial


def test_back_reference_systems_agreement(mobgap_session):
    """How far the two references agree with each other (the ceiling for any detector judged against one)."""
    path, meta = mobgap_session
    with open_session(path) as r:
        ref = r.events(source="reference", clock="device")
    print("\nreference vs reference: contacts of one system found by the other within 100 ms")
    for trial, systems in meta["reference"].items():
        for judged, other in (("INDIP", "Stereophoto"), ("Stereophoto", "INDIP")):
            # contacts inside the walking bouts of both systems (Stereophoto sees only the capture volume)
            bouts = [(max(a["start_device_s"], b["start_device_s"]), min(a["end_device_s"], b["end_device_s"]))
                     for a in systems[judged]["bouts"] for b in systems[other]["bouts"]]
            t_other = np.array([e.time_s for e in ref if e.detector == f"mobilised:{other}"
                                and e.kind == "foot_strike"])
            t_judged = [e.time_s for e in ref if e.detector == f"mobilised:{judged}" and e.kind == "foot_strike"
                        and any(a - 0.05 <= e.time_s <= b + 0.05 for a, b in bouts)]
            hits = sum(float(np.min(np.abs(t_other - t))) < 0.1 for t in t_judged)
            print(f"{trial:15} {other} found {hits}/{len(t_judged)} {judged} contacts")
            if trial.startswith("test5"):
                assert hits == len(t_judged)


def test_back_cadence_field_definition(mobgap_session):
    """The bout ``Cadence`` field of data.mat is the mean over the reference's own strides of 120 / stride time.

    Mobilise-D strides run from a contact to the next contact of the same foot, over every contact of the bout,
    pauses and turns included (e.g. a 2.66 s stride across a pause); strides the reference marks invalid (NaN
    duration, e.g. where its sides do not alternate) are left out. Reproduced here exactly from the stored strides,
    on all 16 bouts of both systems: the target's "cadence per walking bout" is this figure.
    """
    _, meta = mobgap_session
    n = 0
    for systems in meta["reference"].values():
        for info in systems.values():
            for bout in info["bouts"]:
                st = bout["strides"]
                dur = np.array(st["stride_duration_s"], dtype=float)
                assert np.nanmean(120.0 / dur) == pytest.approx(bout["cadence_steps_per_min"], abs=1e-9)
                ok = np.isfinite(dur)
                span = np.array(st["end_s"], dtype=float)[ok] - np.array(st["start_s"], dtype=float)[ok]
                assert np.allclose(dur[ok], span, atol=0.011)  # one reference sample
                n += 1
    assert n == 16


@pytest.mark.xfail(strict=True, reason="target not met on Test11 (daily-living simulation, turns, slow steps): IC "
                                       "recall 59/63 = 0.94 (INDIP) / 51/58 = 0.88 (Stereophoto); like-for-like bout "
                                       "cadence (the field's mean-of-strides definition on the detected contacts in "
                                       "the bout) up to 12.0 (INDIP) / 24.8 (Stereophoto) steps/min off the field, "
                                       "from extra contacts in turns and pauses (e.g. 773.92 s double bump, 803.83 s "
                                       "sitting down); "
                                       "the two references agree on 0.88-0.92 of Test11 contacts; see "
                                       "docs/gait-imu.md")
def test_back_targets_all_trials(back, mobgap_session):
    """Issue-4 target per trial and reference system: IC recall >= 0.95 within 100 ms, and per reference walking
    bout a cadence within 3 steps/min of the bout's ``Cadence`` field.

    The cadence is compared like for like: the field is the mean of 120 / stride time over the reference's strides
    in the bout (`test_back_cadence_field_definition`), so the detector's figure is the same mean over its own
    strides (contact k to k + 2) inside the reference bout. The detector's default bout cadence, 60 / median step
    time, is a different statistic (it ignores the slow strides across pauses that the field includes: 10.3
    steps/min apart on one bout even from the reference's own contacts); it is still reported (printed by
    `test_back_against_reference`) but comparing it with the field is not a like-for-like check. Until this round the
    test also required the median figure within 3 steps/min; dropping that corrects the comparison, the 3 steps/min
    threshold is unchanged.
    """
    det, ref, _ = back
    _, meta = mobgap_session
    for system in ("INDIP", "Stereophoto"):
        for _, r in _back_table(det, ref, meta, system).items():
            assert r["hits"] / r["n_ref"] >= 0.95
            assert all(abs(c_mean - c_ref) <= 3.0 for _, _, c_ref, _, c_mean in r["cadence"])


def test_back_local_vertical_under_trunk_tilt(back):
    """A simulated 30 deg forward lean (ramped over 1.5 s, mid-walk): the local vertical keeps the contacts."""
    _, _, streams = back
    stream = streams[next(n for n in streams if "test5_trial1" in n)]
    t = stream.times() - stream.times()[0]
    th = np.radians(30) * np.clip((t - 6.5) / 1.5, 0, 1) * np.clip((10.5 - t) / 1.5, 0, 1)
    data = stream.data.copy()
    acc = data[:, stream.channels.index("acc")]  # Mobilise-D frame: x vertical, z antero-posterior
    x, z = acc[:, 0].copy(), acc[:, 2].copy()
    acc[:, 0], acc[:, 2] = np.cos(th) * x - np.sin(th) * z, np.sin(th) * x + np.cos(th) * z
    tilted = dataclasses.replace(stream, data=data)
    det = GaitLowerBackImu(sensor_height_m=0.96, gravity_lowpass_hz=0.3, rhythm_prune=True)
    upright = np.array([e.time_s for e in det.detect_stream(stream).events])
    leaning = np.array([e.time_s for e in det.detect_stream(tilted).events])
    assert upright.size >= 10
    assert leaning.size == upright.size
    assert np.max(np.abs(leaning - upright)) < 0.02
    # the fixed axis sees the lean as a slow vertical acceleration: one contact more there
    fixed = GaitLowerBackImu(sensor_height_m=0.96)
    assert len(fixed.detect_stream(tilted).events) != len(fixed.detect_stream(stream).events)


def test_back_standing_still_and_gap(back):
    _, _, streams = back
    name = next(n for n in streams if "test5_trial1" in n)
    stream = streams[name]
    rng = np.random.default_rng(2)
    n = stream.n_samples
    data = np.zeros_like(stream.data)
    data[:, 0] = [9.75, -1.0, -2.3] + 0.03 * rng.standard_normal((n, 3))
    data[:, 1] = 0.01 * rng.standard_normal((n, 3))
    data[:, 2] = stream.data[:, 2]
    res = GaitLowerBackImu(sensor_height_m=0.96).detect_stream(dataclasses.replace(stream, data=data))
    assert res.events == []
    assert res.warnings
    # a gap in the middle of the walk: no event in it
    data = stream.data.copy()
    t = stream.times()
    gap = (t >= 7.0) & (t < 8.5)
    data[gap, 1] = np.nan
    res = GaitLowerBackImu(sensor_height_m=0.96).detect_stream(dataclasses.replace(stream, data=data))
    assert not [e for e in res.events if 7.0 <= e.time_s < 8.5]
    assert not [s for s in res.strides if s.start_s < 8.5 and s.end_s > 7.0]
    assert any(g0 < 7.0 and g1 >= 8.5 for g0, g1 in res.meta["gaps_s"])
    assert any("missing" in w for w in res.warnings)
    assert len(res.events) >= 4


def test_back_saturation_flagged(back):
    _, _, streams = back
    stream = streams[next(n for n in streams if "test5_trial1" in n)]
    data = stream.data.copy()
    data[:, 0] = np.clip(data[:, 0], -12.0, 12.0)  # clip the contact peaks at a (declared) 12 m/s^2 range
    res = GaitLowerBackImu(sensor_height_m=0.96, acc_range_m_per_s2=12.0).detect_stream(
        dataclasses.replace(stream, data=data))
    assert res.meta["saturated_samples"] > 0
    assert any("saturated" in w for w in res.warnings)


def test_back_step_length(back, mobgap_session):
    """Inverted-pendulum stride length vs INDIP on the straight walks (reported; loose bound)."""
    det, _, _ = back
    _, meta = mobgap_session
    print("\nstride length (pendulum) vs INDIP")
    for res in det.results_:
        trial = _trial(res.streams[0])
        err = []
        for bout in meta["reference"][trial]["INDIP"]["bouts"]:
            st = bout["strides"]
            for a, length in zip(st["start_s"], st.get("stride_length_m", []), strict=False):
                m = [s for s in res.strides if abs(s.start_s - a) < 0.1 and "stride_length_m" in s.params]
                if m and math.isfinite(length):
                    err.append(m[0].params["stride_length_m"].value - length)
        if err:
            print(f"{trial:15} n={len(err):3d} median error {np.median(err):+.3f} m, median |error| "
                  f"{np.median(np.abs(err)):.3f} m")
            if trial.startswith("test5"):
                assert abs(np.median(err)) <= 0.2


def test_back_reference_bouts_option(mobgap_session, sensor_height_m):
    """``reference_bouts=True`` (validation only) keeps contacts inside the reference bouts of one system."""
    path, meta = mobgap_session
    with open_session(path) as r:
        det = GaitLowerBackImu(sensor_height_m=sensor_height_m, reference_bouts=True).detect(r)
        ref = r.events(source="reference", clock="device")
    system = next(e.detector for e in ref if e.kind == "walking_bout_start")
    bouts = [(e.time_s, e.detector) for e in ref if e.kind == "walking_bout_start" and e.detector == system]
    assert bouts
    for res in det.results_:
        trial = _trial(res.streams[0])
        ref_bouts = meta["reference"][trial][system.split(":")[1]]["bouts"]
        for e in res.events:
            assert any(b["start_device_s"] - 0.11 <= e.time_s <= b["end_device_s"] + 0.11 for b in ref_bouts)
        assert res.meta["bout_source"] == "reference (validation)"


def test_back_sensor_height_from_info_for_algo(mobgap_session, sensor_height_m) -> None:
    """data.mat's neighbour infoForAlgo.mat (cm) gives the pendulum length when no parameter is given, and it
    agrees with the dataset's CSV export of the participant metadata."""
    path, meta = mobgap_session
    subject = meta["subject_parameters"]
    assert abs(subject["sensor_height_m"] - sensor_height_m) < 1e-9
    assert 1.0 < subject["height_m"] < 2.2 and 30 < subject["mass_kg"] < 200
    with open_session(path) as r:
        det = GaitLowerBackImu().detect(r)
    res = det.results_[0]
    assert "infoForAlgo.mat" in res.meta["sensor_height_source"] or "data.mat" in res.meta["sensor_height_source"]
    assert res.meta["sensor_height_m"] == pytest.approx(sensor_height_m)
    # the same step lengths as with the height given explicitly (the stored value is used, not a default)
    with open_session(path) as r:
        explicit = GaitLowerBackImu(sensor_height_m=sensor_height_m).detect(r)

    def lengths(d):
        return [s.params["step_length_m"].value for r in d.results_ for s in r.strides if "step_length_m" in s.params]

    assert lengths(det) and lengths(det) == pytest.approx(lengths(explicit), rel=1e-12)


@pytest.mark.parametrize("mounting", ["upside_down", "inside_out", "rotated_90", "upside_down_inside_out", "tilted"])
def test_back_sensor_mounting_invariance(back, mounting):
    """A sensor strapped on the back upside down, facing inwards or turned 90 degrees (the mounting errors of
    mobgap's data_reorientation examples) sees the same motion in a rotated frame: same contacts, same sides, same
    cadence. Real data (Test11, daily living, turns), the sensor frame rotated by a proper rotation."""
    _, _, streams = back
    stream = streams[next(n for n in streams if "test11" in n)]
    # Mobilise-D frame: x vertical, y medio-lateral, z antero-posterior
    rot = {
        "upside_down": np.diag([-1.0, -1.0, 1.0]),  # 180 deg about the antero-posterior axis
        "inside_out": np.diag([1.0, -1.0, -1.0]),  # 180 deg about the vertical axis (facing the body)
        "rotated_90": np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),  # 90 deg about AP
        "upside_down_inside_out": np.diag([-1.0, 1.0, -1.0]),
        "tilted": _rotation_xyz(0.3, -0.2, 0.5),  # a strap that sits askew (17, 11, 29 deg)
    }[mounting]
    assert np.isclose(np.linalg.det(rot), 1.0)
    data = stream.data.copy()
    data[:, 0] = stream.data[:, 0] @ rot.T
    data[:, 1] = stream.data[:, 1] @ rot.T
    det = GaitLowerBackImu()
    ref = det.detect_stream(stream, sensor_height_m=0.96)
    got = det.detect_stream(dataclasses.replace(stream, data=data), sensor_height_m=0.96)
    assert len(ref.events) > 50
    assert [(e.kind, e.side) for e in got.events] == [(e.kind, e.side) for e in ref.events]
    np.testing.assert_allclose([e.time_s for e in got.events], [e.time_s for e in ref.events], atol=1e-9)
    cad = [b["cadence_steps_per_min"]["value"] for b in ref.meta["bouts"]]
    np.testing.assert_allclose([b["cadence_steps_per_min"]["value"] for b in got.meta["bouts"]], cad, rtol=1e-9)
    step = [b["step_length_m"]["value"] for b in ref.meta["bouts"]]
    assert all(v is not None and 0.3 < v < 1.0 for v in step)
    np.testing.assert_allclose([b["step_length_m"]["value"] for b in got.meta["bouts"]], step, rtol=1e-6)


def _rotation_xyz(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx
