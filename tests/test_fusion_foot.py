"""Foot trajectory fusion (foot IMU + foot markers): gaitmap's synchronised walk with withheld markers, a simulated
foot with known stride lengths, and tracking where markers exist.

Run ``pytest tests/test_fusion_foot.py -s`` to print the figures quoted in docs/fusion-foot.md
(``python benchmarks/validate_foot_fusion.py`` prints them per seed and foot).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2

from fusionlab.fusion._foot import _fuse_foot_detail, fuse_foot
from fusionlab.model import ClockEntry, Session, Stream
from fusionlab.persist import open_session, save_session
from fusionlab.sync import synchronize_session
from fusionlab.sync._signals import find_foot_markers
from tests.conftest import shared_path

GAITMAP = "imu/gaitmap/"
SEEDS = (1, 2, 3)


# ------------------------------------------------------------------------------------------------ helpers
def gaitmap_session(path) -> None:
    """gaitmap's two foot IMUs and Vicon foot markers in one session, the IMU clock synchronised by `sync`."""
    from fusionlab.adapters.imu_gaitmap import read_gaitmap_imu, read_gaitmap_mocap

    imu = read_gaitmap_imu(shared_path(GAITMAP + "imu_sample.csv"))
    moc = read_gaitmap_mocap(shared_path(GAITMAP + "mocap_sample.csv"))
    mclock = next(iter(moc.clocks))
    clocks = {**imu.clocks, mclock: ClockEntry(mclock, 0.0, 0.0, 0.0, 0.0, "reference")}
    save_session(Session(streams=imu.streams + moc.streams, clocks=clocks, sources=imu.sources + moc.sources), path)
    report = synchronize_session(path)
    assert not report.refused, report.refused


def random_gaps(rng: np.random.Generator, t0: float, t1: float, fraction: float = 0.3) -> list[tuple[float, float]]:
    """Non-overlapping gaps of 0.2-2 s covering ``fraction`` of ``[t0, t1]``."""
    out: list[tuple[float, float]] = []
    covered = 0.0
    while covered < fraction * (t1 - t0):
        length = rng.uniform(0.2, 2.0)
        a = rng.uniform(t0, t1 - length)
        if any(a < b + 0.05 and a + length > x - 0.05 for x, b in out):
            continue
        out.append((a, a + length))
        covered += length
    return sorted(out)


def withheld_figures(path, seed: int) -> list[dict]:
    """Per foot: errors of the fused and the IMU-alone foot point inside the withheld gaps, and band coverage."""
    with open_session(path) as r:
        ms = r.read_stream(r.find_streams(modality="markers")[0])
        tm = r.to_session_time(ms)
        gaps = random_gaps(np.random.default_rng(seed), tm[0] + 0.5, tm[-1] - 0.5)
        res, det = _fuse_foot_detail(r, side=None, withhold=gaps, n_iter=10)
    out = []
    for sig in res.signals:
        if not sig.name.startswith("foot_position_"):
            continue
        side = sig.name.rsplit("_", 1)[1]
        roles = find_foot_markers(ms.channels)[side]
        centroid = np.mean([ms.channel(roles[k]) for k in ("toe", "heel", "mt5")], axis=0)
        truth = np.stack([np.interp(sig.times, tm, centroid[:, i]) for i in range(3)], axis=1)
        inside = np.zeros(sig.times.size, dtype=bool)
        for a, b in gaps:
            inside |= (sig.times >= a) & (sig.times < b)
        err = sig.mean - truth
        alone = det[side]["imu_alone"]
        # IMU alone (ZUPT-only), placed by the offset that best fits the markers outside the gaps
        err_alone = alone + np.median(truth[~inside] - alone[~inside], axis=0) - truth
        # IMU alone restarted from the last seen marker position before each gap (dead reckoning)
        err_dr = np.full_like(err, np.nan)
        for a, b in gaps:
            k = np.flatnonzero((sig.times >= a) & (sig.times < b))
            if k.size and k[0] > 0:
                err_dr[k] = alone[k] - alone[k[0] - 1] + truth[k[0] - 1] - truth[k]
        lo, hi = sig.band(0.95)
        z2 = np.sum(err ** 2 / sig.var, axis=1)
        # stride lengths against the withheld truth (horizontal centroid displacement between the mid-stances)
        horiz = [0, 1]
        z_stride, in_gap = [], []
        for st in sig.meta["strides"]:
            c0 = np.array([np.interp(st["start_s"], tm, centroid[:, i]) for i in horiz])
            c1 = np.array([np.interp(st["end_s"], tm, centroid[:, i]) for i in horiz])
            z_stride.append((st["length_m"] - float(np.linalg.norm(c1 - c0))) / st["length_sd_m"])
            in_gap.append(any(a <= st["start_s"] < b or a <= st["end_s"] < b for a, b in gaps))
        out.append({"seed": seed, "side": side, "n": int(inside.sum()),
                    "sq_fused": np.sum(err[inside] ** 2, axis=1), "sq_alone": np.sum(err_alone[inside] ** 2, axis=1),
                    "sq_dr": np.sum(err_dr[inside] ** 2, axis=1),
                    "in_axis": ((truth >= lo) & (truth <= hi))[inside], "in_3d": (z2 <= chi2.ppf(0.95, 3))[inside],
                    "z_stride": np.array(z_stride), "stride_in_gap": np.array(in_gap, dtype=bool), "result": res})
    return out


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def gaitmap_path(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("foot") / "gaitmap.h5"
    gaitmap_session(path)
    return path


@pytest.fixture(scope="module")
def withheld(gaitmap_path) -> dict:
    rows = [row for seed in SEEDS for row in withheld_figures(gaitmap_path, seed)]
    def rms(key: str) -> float:
        return float(np.sqrt(np.nanmean(np.concatenate([r[key] for r in rows]))))
    pooled = {"rms_fused_m": rms("sq_fused"), "rms_alone_m": rms("sq_alone"), "rms_dead_reckoning_m": rms("sq_dr"),
              "coverage_axis": np.concatenate([r["in_axis"] for r in rows]).mean(axis=0),
              "coverage_3d": float(np.concatenate([r["in_3d"] for r in rows]).mean()),
              "z_stride": np.concatenate([r["z_stride"] for r in rows]),
              "stride_in_gap": np.concatenate([r["stride_in_gap"] for r in rows]), "rows": rows}
    print(f"\ngaitmap, markers withheld 30 % (gaps 0.2-2 s), seeds {SEEDS}, both feet:")
    for r in rows:
        print(f"  seed {r['seed']} {r['side']:5s}: fused {math.sqrt(r['sq_fused'].mean()) * 100:.1f} cm, "
              f"IMU alone {math.sqrt(r['sq_alone'].mean()) * 100:.1f} cm, dead reckoning "
              f"{math.sqrt(np.nanmean(r['sq_dr'])) * 100:.1f} cm, coverage x/y/z "
              f"{np.round(r['in_axis'].mean(axis=0) * 100, 1)} %, 3D {r['in_3d'].mean() * 100:.1f} %")
    print(f"  pooled: fused {pooled['rms_fused_m'] * 100:.2f} cm, IMU alone {pooled['rms_alone_m'] * 100:.2f} cm, "
          f"dead reckoning {pooled['rms_dead_reckoning_m'] * 100:.2f} cm, coverage per axis "
          f"{np.round(pooled['coverage_axis'] * 100, 1)} %, 3D {pooled['coverage_3d'] * 100:.1f} %")
    zs, g = pooled["z_stride"], pooled["stride_in_gap"]
    print(f"  stride-length z-scores (n = {zs.size}, {g.sum()} with a mid-stance in a gap): SD "
          f"{np.sqrt(np.mean(zs ** 2)):.2f}, robust SD {np.median(np.abs(zs)) / 0.6745:.2f}, |z| <= 1.96 "
          f"{np.mean(np.abs(zs) <= 1.96) * 100:.1f} %; with a mid-stance in a gap: SD "
          f"{np.sqrt(np.mean(zs[g] ** 2)):.2f}, "
          f"robust {np.median(np.abs(zs[g])) / 0.6745:.2f}; largest |z| {np.round(np.sort(np.abs(zs))[-3:], 1)}")
    return pooled


# ------------------------------------------------------------------------------------------------ gaitmap
@pytest.mark.shared_data
def test_withheld_markers_fused_much_closer_than_imu_alone(withheld: dict) -> None:
    """Issue 5: inside the gaps the fused foot point is much closer to the withheld markers than the IMU alone."""
    ratio = withheld["rms_alone_m"] / withheld["rms_fused_m"]
    assert ratio >= 2.0, ratio
    assert withheld["rms_fused_m"] < 0.04, withheld["rms_fused_m"]
    # also better than restarting the IMU alone from the last marker seen before each gap (a stricter baseline)
    assert withheld["rms_fused_m"] < withheld["rms_dead_reckoning_m"], withheld


@pytest.mark.shared_data
def test_withheld_markers_band_coverage(withheld: dict) -> None:
    """Issue 5: the 95 % band covers the withheld markers 90-98 % of the time, per axis and in 3D (pooled over
    seeds and feet; measured 94.0 / 96.1 / 95.2 %, 3D 92.8 %). The process-noise level is calibrated by
    cross-validation on the markers the fusion has, never on the withheld ones."""
    cov = withheld["coverage_axis"]
    assert np.all((cov >= 0.90) & (cov <= 0.98)), cov
    assert 0.90 <= withheld["coverage_3d"] <= 0.98, withheld["coverage_3d"]


@pytest.mark.shared_data
def test_withheld_stride_length_z_scores(withheld: dict) -> None:
    """Stride lengths against the withheld markers (centroid displacement between the mid-stances): the z-scores
    have SD ~ 1 (measured 0.81 over 189 strides, 0.89 for the 94 with a mid-stance in a gap; before: the reported
    SD was 0.1 mm, z-score SD ~ 8) and 95 % of them lie within 1.96."""
    zs = withheld["z_stride"]
    assert 0.7 <= float(np.sqrt(np.mean(zs ** 2))) <= 1.4, zs
    assert 0.7 <= float(np.sqrt(np.mean(zs[withheld["stride_in_gap"]] ** 2))) <= 1.4, zs
    assert np.mean(np.abs(zs) <= 1.96) >= 0.9, zs


@pytest.mark.shared_data
def test_markers_everywhere_followed_within_their_noise(gaitmap_path) -> None:
    with open_session(gaitmap_path) as r:
        ms = r.read_stream(r.find_streams(modality="markers")[0])
        tm = r.to_session_time(ms)
        res = fuse_foot(r, side="left")
    sig = next(s for s in res.signals if s.name == "foot_position_left")
    assert sig.frame == "lab" and sig.units == ("m", "m", "m") and sig.channels == ("x", "y", "z")
    roles = find_foot_markers(ms.channels)["left"]
    centroid = np.mean([ms.channel(roles[k]) for k in ("toe", "heel", "mt5")], axis=0)
    truth = np.stack([np.interp(sig.times, tm, centroid[:, i]) for i in range(3)], axis=1)
    err = sig.mean - truth
    rms = np.sqrt(np.mean(err ** 2, axis=0))
    print(f"\nmarkers everywhere: fused - centroid RMS {np.round(rms * 1000, 1)} mm, fitted marker noise "
          f"{sig.noise['markers'] * 1000:.1f} mm, posterior SD median {np.round(np.median(sig.sd(), 0) * 1000, 1)} mm")
    assert np.all(rms <= sig.noise["markers"]), (rms, sig.noise)
    lo, hi = sig.band(0.95)
    assert ((truth >= lo) & (truth <= hi)).mean() >= 0.9
    # strides and gait speed: ~1.4 m strides at ~1.3 m/s on this walk
    st = next(s for s in res.signals if s.name == "stride_left")
    lengths = st.mean[:, 0]
    assert np.median(lengths) == pytest.approx(1.4, abs=0.1)
    assert np.all(st.sd()[:, 0] < 0.02)
    # gait speed against the markers' centroid over the same strides (the turn's short strides included)
    t0, t1 = np.array(st.meta["start_s"]), st.times
    c0 = np.stack([np.interp(t0, tm, centroid[:, i]) for i in range(2)], 1)
    c1 = np.stack([np.interp(t1, tm, centroid[:, i]) for i in range(2)], 1)
    ref_speed = float(np.linalg.norm(c1 - c0, axis=1).sum() / (t1 - t0).sum())
    print(f"gait speed {st.meta['gait_speed_m_per_s']:.3f} +- {st.meta['gait_speed_sd_m_per_s']:.3f} m/s, "
          f"markers {ref_speed:.3f} m/s")
    assert abs(st.meta["gait_speed_m_per_s"] - ref_speed) <= 0.01 + 3 * st.meta["gait_speed_sd_m_per_s"]
    # clean data: at most 1 false conflict per minute (measured: none on either foot)
    n_conf = len([c for c in res.conflicts if c.quantity == "foot_position_left"])
    print(f"clean data: {n_conf} conflicts in {(sig.times[-1] - sig.times[0]) / 60:.2f} min")
    assert n_conf <= (sig.times[-1] - sig.times[0]) / 60.0


@pytest.mark.shared_data
def test_conflict_when_markers_jump(gaitmap_path, tmp_path) -> None:
    """A 10-cm jump of the left-foot markers for 1 s is flagged within 0.5 s of its start, naming both modalities
    (with two, neither can be blamed)."""
    with open_session(gaitmap_path) as r:
        ms = r.read_stream(r.find_streams(modality="markers")[0])
        imu = [r.read_stream(n) for n in r.find_streams(modality="imu")]
        clocks = r.clocks()
    t = ms.times()
    data = np.array(ms.data)
    bad = (t >= 12.0) & (t < 13.0)
    for k, name in enumerate(ms.channels):
        if name.startswith("L_"):
            data[bad, k, 1] += 0.10
    import dataclasses

    moved = dataclasses.replace(ms, data=data)
    path = tmp_path / "jump.h5"
    save_session(Session(streams=(moved, *imu), clocks=clocks), path)
    with open_session(path) as r:
        res = fuse_foot(r, side="left")
    with open_session(path) as r:
        t_fault = float(r.to_session_time(r.read_stream(r.find_streams(modality="markers")[0]))[bad][0])
    # a conflict that covers the fault's start or begins within 0.5 s after it
    hits = [c for c in res.conflicts if c.start_s <= t_fault + 0.5 and c.end_s >= t_fault]
    assert hits, (t_fault, res.conflicts)
    assert hits[0].quantity == "foot_position_left" and hits[0].modality == "imu|markers"


# ------------------------------------------------------------------------------------------------ simulation
def simulated_foot(rng: np.random.Generator, rate_hz: float = 204.8) -> tuple[Stream, np.ndarray]:
    """A foot IMU walking 12 strides of known length (stance 0.6 s at rest, swing 0.5 s: minimum-jerk forward
    displacement, 8 cm foot lift, +-0.5 rad pitch), heading 30 deg, with white noise and a gyroscope bias."""
    g = 9.80665
    lengths = rng.uniform(1.1, 1.5, 12)
    dt = 1.0 / rate_hz
    segs_p, segs_th, x = [], [], 0.0
    n_stand = int(2.0 * rate_hz)
    segs_p.append(np.zeros((n_stand, 3)))
    segs_th.append(np.zeros(n_stand))
    for length in lengths:
        n_sw, n_st = int(0.5 * rate_hz), int(0.6 * rate_hz)
        tau = np.arange(n_sw) / n_sw
        s = 10 * tau ** 3 - 15 * tau ** 4 + 6 * tau ** 5
        p = np.stack([x + length * s, np.zeros(n_sw), 0.08 * np.sin(np.pi * tau) ** 2], axis=1)
        segs_p += [p, np.tile([x + length, 0.0, 0.0], (n_st, 1))]
        segs_th += [0.5 * np.sin(2 * np.pi * tau) * np.sin(np.pi * tau), np.zeros(n_st)]
        x += length
    p_fwd = np.concatenate(segs_p)
    theta = np.concatenate(segs_th)
    psi = math.radians(30)
    rz = np.array([[math.cos(psi), -math.sin(psi), 0], [math.sin(psi), math.cos(psi), 0], [0, 0, 1]])
    pos = p_fwd @ rz.T
    acc_w = np.gradient(np.gradient(pos, dt, axis=0), dt, axis=0)
    acc_w[:, 2] += g
    c, s_ = np.cos(theta), np.sin(theta)
    ry = np.stack([np.stack([c, 0 * c, s_], -1), np.stack([0 * c, 1 + 0 * c, 0 * c], -1),
                   np.stack([-s_, 0 * c, c], -1)], -2)
    rot = np.einsum("ij,tjk->tik", rz, ry)  # sensor -> world
    acc_b = np.einsum("tji,tj->ti", rot, acc_w) + rng.normal(0, 0.02, (theta.size, 3))
    gyr_b = np.zeros((theta.size, 3))
    gyr_b[:, 1] = np.gradient(theta, dt)
    gyr_b += rng.normal(0, 0.002, gyr_b.shape) + np.array([0.002, -0.001, 0.0015])
    stream = Stream("sim.left_foot", "imu", np.stack([acc_b, gyr_b], axis=1), ("acc", "gyr"), ("m/s^2", "rad/s"),
                    components=("x", "y", "z"), frame="sensor:left_foot", rate_hz=rate_hz, clock="imu",
                    meta={"placement": "left_foot"})
    return stream, lengths


def test_simulated_stride_lengths_within_their_sd(tmp_path) -> None:
    rng = np.random.default_rng(7)
    stream, lengths = simulated_foot(rng)
    path = tmp_path / "sim.h5"
    save_session(Session(streams=(stream,), clocks={"imu": ClockEntry("imu", 0.0, 0.0, 0.0, 0.0, "reference")}),
                 path)
    with open_session(path) as r:
        res = fuse_foot(r)
    pos = next(s for s in res.signals if s.name == "foot_position_left")
    assert pos.frame == "imu_world:left_foot"
    st = next(s for s in res.signals if s.name == "stride_left")
    est, sd = st.mean[:, 0], st.sd()[:, 0]
    # the first stride starts at the end of the initial standing (its mid-stance lies inside it)
    assert est.size == lengths.size, (est, lengths)
    err = est - lengths
    print(f"\nsimulated foot: stride-length error {np.round(err * 100, 1)} cm, sd {np.round(sd * 100, 1)} cm")
    assert np.all(np.abs(err) < 0.05), err
    assert np.mean(np.abs(err) <= 1.96 * sd) >= 0.9, (err, sd)
    assert np.all(sd < 0.05)
    speed = st.meta["gait_speed_m_per_s"]
    assert speed == pytest.approx(lengths.sum() / (1.1 * lengths.size), rel=0.05)


# ------------------------------------------------------------------------------------------------ video
VIDEO_TRIALS = ("c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d", "btkdata/PiG_Motion-FlatFoot-Full.c3d",
                "c3d_org/sample09_PlugInC3D.c3d")  # (sample03_gait-pig has no toe/heel markers for a foot IMU)


def video_session(rel: str, seed: int = 0, *, synced: bool = True):
    """Foot IMUs and a side camera simulated from a real C3D walk (markers left out: all withheld); clocks set to
    the true offsets with 1 ms SD (method ``prior``, `fusionlab.simulate.true_clocks`)."""
    import warnings

    from fusionlab.adapters.c3d import read_c3d
    from fusionlab.simulate import simulate_session, true_clocks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = read_c3d(shared_path(rel), prefix="")
    sim = simulate_session(src, imus=("left_foot", "right_foot"), video=True, include_markers=False,
                           include_truth=False, seed=seed, imu_offset_s=0.3, video_offset_s=-0.2)
    if synced:
        sim = true_clocks(sim)
    return src, sim


def video_figures(rel: str, tmp, seed: int = 0) -> list[dict]:
    """Per foot: IMU alone vs IMU + video against the true foot (IMU) point of the source markers.

    Both estimates get the same alignment to the truth (their frames are not the lab's): the best rotation about
    up plus a horizontal offset (least squares), and the best constant vertical offset; errors along the walking
    direction (forward) and vertical. Strides: horizontal truth displacement between the reported mid-stances."""
    import dataclasses

    from fusionlab.kinematics import segment_frames
    from fusionlab.simulate import SMOOTH_HZ, _up_vector, _walking_axis

    src, sim = video_session(rel, seed)
    m = next(s for s in src.streams if s.modality == "markers")
    up = _up_vector(m)
    fwd = _walking_axis(m, up)
    lat = np.cross(up, fwd)
    _, pos = segment_frames(m, smooth_hz=SMOOTH_HZ)
    tm = m.times()
    rows = []
    for label, keep in (("imu", False), ("video", True)):
        ss = dataclasses.replace(sim, streams=tuple(s for s in sim.streams if keep or s.modality != "video_pose"))
        path = tmp / f"{rel.replace('/', '_')}_{seed}_{label}.h5"
        save_session(ss, path)
        with open_session(path) as r:
            res = fuse_foot(r)
        for side in ("left", "right"):
            sig = next(s for s in res.signals if s.name == f"foot_position_{side}")
            st = next((s for s in res.signals if s.name == f"stride_{side}"), None)
            p = pos[f"{side}_foot"]
            truth = np.stack([np.interp(sig.times, tm, p[:, i], left=np.nan, right=np.nan) for i in range(3)], 1)
            ok = np.all(np.isfinite(truth), 1)
            tw = np.stack([truth @ fwd, truth @ lat, truth @ up], 1)[ok]
            e = sig.mean[ok]
            a_m, b_m = e[:, :2].mean(0), tw[:, :2].mean(0)
            u, _, vt = np.linalg.svd((e[:, :2] - a_m).T @ (tw[:, :2] - b_m))
            if np.linalg.det(u @ vt) < 0:
                u[:, -1] *= -1
            rot = u @ vt
            err_f = ((e[:, :2] - a_m) @ rot + b_m)[:, 0] - tw[:, 0]
            err_v = e[:, 2] - tw[:, 2] - np.mean(e[:, 2] - tw[:, 2])
            var_f = sig.var[ok, 0] * rot[0, 0] ** 2 + sig.var[ok, 1] * rot[1, 0] ** 2
            s_err, s_z = [], []
            if st is not None:
                for t0, t1, length, v in zip(st.meta["start_s"], st.times, st.mean[:, 0], st.var[:, 0], strict=True):
                    d = np.array([np.interp(t1, tm, p[:, i]) - np.interp(t0, tm, p[:, i]) for i in range(3)])
                    d -= (d @ up) * up
                    s_err.append(length - float(np.linalg.norm(d)))
                    s_z.append(s_err[-1] / math.sqrt(v))
            rows.append({"trial": rel, "side": side, "mode": label, "frame": sig.frame, "sq_f": err_f ** 2,
                         "sq_v": err_v ** 2, "in_f": np.abs(err_f) <= 1.96 * np.sqrt(var_f),
                         "in_v": np.abs(err_v) <= 1.96 * np.sqrt(sig.var[ok, 2]), "stride_err": np.array(s_err),
                         "stride_z": np.array(s_z), "warnings": res.warnings, "signal": sig})
    return rows


@pytest.fixture(scope="module")
def video_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("foot_video")
    rows = [r for rel in VIDEO_TRIALS for r in video_figures(rel, tmp)]
    out = {}
    print("\nfoot IMUs + side camera simulated from real C3D walks (markers withheld), IMU alone vs IMU + video:")
    for r in rows:
        print(f"  {r['trial'].rsplit('/', 1)[-1][:28]:28s} {r['side']:5s} {r['mode']:5s}: forward "
              f"{math.sqrt(r['sq_f'].mean()) * 100:.2f} cm, vertical {math.sqrt(r['sq_v'].mean()) * 100:.2f} cm, "
              f"strides {r['stride_err'].size} RMS {math.sqrt(np.mean(r['stride_err'] ** 2)) * 100:.2f} cm, "
              f"95 % band covers forward / vertical {r['in_f'].mean() * 100:.1f} / {r['in_v'].mean() * 100:.1f} %")
    for mode in ("imu", "video"):
        sel = [r for r in rows if r["mode"] == mode]
        out[mode] = {k: float(np.sqrt(np.mean(np.concatenate([r[k] for r in sel])))) for k in ("sq_f", "sq_v")}
        out[mode]["stride_rms"] = float(np.sqrt(np.mean(np.concatenate([r["stride_err"] for r in sel]) ** 2)))
        out[mode]["stride_z_sd"] = float(np.sqrt(np.mean(np.concatenate([r["stride_z"] for r in sel]) ** 2)))
        out[mode]["cov_f"] = float(np.concatenate([r["in_f"] for r in sel]).mean())
        out[mode]["cov_v"] = float(np.concatenate([r["in_v"] for r in sel]).mean())
        out[mode]["n_strides"] = int(sum(r["stride_err"].size for r in sel))
        print(f"  pooled {mode:5s}: forward {out[mode]['sq_f'] * 100:.2f} cm, vertical {out[mode]['sq_v'] * 100:.2f} "
              f"cm, strides ({out[mode]['n_strides']}) RMS {out[mode]['stride_rms'] * 100:.2f} cm, z SD "
              f"{out[mode]['stride_z_sd']:.2f}, coverage forward / vertical {out[mode]['cov_f'] * 100:.1f} / "
              f"{out[mode]['cov_v'] * 100:.1f} %")
    out["rows"] = rows
    return out


@pytest.mark.shared_data
def test_video_is_fused_in_the_image_plane(video_runs: dict) -> None:
    for r in video_runs["rows"]:
        assert r["frame"] == ("video:sim.pose2d" if r["mode"] == "video" else f"imu_world:{r['side']}_foot"), r
        if r["mode"] == "video":
            assert "sim.pose2d" in r["signal"].inputs and "video" in r["signal"].meta
            # the vertical video-only band fails its coverage check (test_video_band_coverage): the result says so
            assert any(f"{r['side']} foot" in w and "vertical SD is UNDER-estimated" in w for w in r["warnings"])
        else:
            assert not any("UNDER-estimated" in w for w in r["warnings"])


@pytest.mark.shared_data
def test_video_improves_position_forward_and_vertical(video_runs: dict) -> None:
    """Issue 5, video: the foot position along the walking direction and vertically is closer to the truth with
    the video than with the IMU alone (pooled over 3 walks x 2 feet; measured in docs/fusion-foot.md; every
    foot improved on both axes)."""
    imu, vid = video_runs["imu"], video_runs["video"]
    assert vid["sq_f"] < imu["sq_f"] / 1.5, (imu, vid)
    assert vid["sq_v"] < imu["sq_v"] / 1.5, (imu, vid)
    for a, b in zip(video_runs["rows"][0::4], video_runs["rows"][2::4], strict=True):
        assert a["mode"] == "imu" and b["mode"] == "video"


@pytest.mark.shared_data
@pytest.mark.xfail(reason="measured (seed 0, 3 walks x 2 feet, pooled): the 95 % band covers the true foot 100.0 % "
                          "forward (the pixel-scale term, 2 % SD from the stream, is conservative) and 55.1 % "
                          "vertically (per-stance perspective / landmark errors of the video not modelled; a "
                          "Gauss-Markov video error state sized from IMU-vs-video stride residuals was tried and "
                          "degraded the vertical error 1.07 -> 4.3 cm); docs/fusion-foot.md", strict=True)
def test_video_band_coverage(video_runs: dict) -> None:
    vid = video_runs["video"]
    assert 0.90 <= vid["cov_f"] <= 0.98 and 0.90 <= vid["cov_v"] <= 0.98, vid


@pytest.mark.shared_data
def test_video_stride_length_sd(video_runs: dict) -> None:
    """With video, the stride-length SD includes the pixel scale's error (SD from the stream's meta): z-scores
    against the true stride lengths have SD near 1 (measured 0.70 over 14 strides; before: 8.3, the SD ignoring
    the scale) and none beyond 3."""
    zs = np.concatenate([r["stride_z"] for r in video_runs["rows"] if r["mode"] == "video"])
    assert 0.5 <= float(np.sqrt(np.mean(zs ** 2))) <= 1.5, zs
    assert np.all(np.abs(zs) <= 3.0), zs


@pytest.mark.shared_data
def test_unsynchronised_video_is_not_fused(tmp_path) -> None:
    _, sim = video_session(VIDEO_TRIALS[0], synced=False)
    import dataclasses

    clocks = dict(sim.clocks)
    clocks["sim:imu"] = dataclasses.replace(clocks["sim:imu"], offset_s=0.3, offset_sd_s=0.001, method="prior")
    path = tmp_path / "unsynced.h5"
    save_session(dataclasses.replace(sim, clocks=clocks), path)
    with open_session(path) as r:
        res = fuse_foot(r, side="left")
    pos = next(s for s in res.signals if s.name == "foot_position_left")
    assert pos.frame == "imu_world:left_foot" and "sim.pose2d" not in pos.inputs
    assert any("sim.pose2d" in w and "fusionlab sync" in w for w in res.warnings), res.warnings


@pytest.mark.shared_data
def test_lab_with_downward_vertical_gives_the_same_foot(tmp_path) -> None:
    """A foot IMU simulated from a real walk, fused with its markers; the same markers in a lab whose z axis points
    down (turned 180 deg about x: the pelvis markers show it) give the same fused foot, in that lab's own axes."""
    import dataclasses
    import warnings

    from fusionlab.adapters.c3d import read_c3d
    from fusionlab.simulate import simulate_session, true_clocks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = read_c3d(shared_path("btkdata/PiG_Motion-FlatFoot-Full.c3d"), prefix="")
    sim = true_clocks(simulate_session(src, imus=("left_foot",), video=False, include_markers=True,
                                       include_truth=False, seed=0))
    turned = [dataclasses.replace(s, data=np.asarray(s.data, dtype=float) * [1.0, -1.0, -1.0])
              if s.modality == "markers" else s for s in sim.streams]
    out = {}
    for name, session in (("up", sim), ("down", dataclasses.replace(sim, streams=turned))):
        save_session(session, tmp_path / f"{name}.h5")
        with open_session(tmp_path / f"{name}.h5") as r:
            res = fuse_foot(r, side="left")
        out[name] = {s.name: s for s in res.signals}
    up, down = out["up"]["foot_position_left"], out["down"]["foot_position_left"]
    assert np.isfinite(up.mean).all() and up.mean.shape == down.mean.shape
    np.testing.assert_allclose(down.mean, up.mean * [1.0, -1.0, -1.0], atol=1e-6)  # the down lab's axes
    np.testing.assert_allclose(down.sd(), up.sd(), rtol=1e-6)
    np.testing.assert_allclose(out["down"]["stride_left"].mean, out["up"]["stride_left"].mean, atol=1e-6)


@pytest.mark.shared_data
def test_markers_on_an_unsynchronised_clock_are_not_fused(tmp_path) -> None:
    """A foot IMU 0.5 s off the markers' clock, not synchronised: the markers are left out with a note (they were
    fused half a second off, without a word); on the true clocks they are fused."""
    import warnings

    from fusionlab.adapters.c3d import read_c3d
    from fusionlab.simulate import simulate_session, true_clocks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = read_c3d(shared_path("btkdata/PiG_Motion-FlatFoot-Full.c3d"), prefix="")
    sim = simulate_session(src, imus=("left_foot",), video=False, include_markers=True, include_truth=False,
                           seed=0, imu_offset_s=0.5)
    for name, session in (("raw", sim), ("synced", true_clocks(sim))):
        save_session(session, tmp_path / f"{name}.h5")
        with open_session(tmp_path / f"{name}.h5") as r:
            res = fuse_foot(r, side="left")
        pos = next(s for s in res.signals if s.name == "foot_position_left")
        markers_used = any("markers" in i for i in pos.inputs)
        note = [w for w in res.warnings if "unsynchronised with the IMU" in w and "markers not fused" in w]
        assert markers_used == (name == "synced") and bool(note) == (name == "raw"), (name, pos.inputs, res.warnings)
