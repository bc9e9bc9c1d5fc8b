"""Angle fusion (issue 5) on simulated sessions made from real C3D walks: accuracy, band coverage, conflicts.

Targets are the issue's; where one is not reached the test is xfail(strict=True) with the measured figure.
Figures and the command that prints them: docs/fusion-angles.md, ``benchmarks/validate_angle_fusion.py``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from fusionlab.adapters.c3d import read_c3d
from fusionlab.fusion._angles import NOISE_FLOOR, _clock_lag, fuse_angles
from fusionlab.fusion._conflicts import effective_dof, find_conflicts, slope_change_flags
from fusionlab.fusion.base import Conflict, FusedSignal
from fusionlab.simulate import Fault, imu_oracle_knee, simulate_session, true_angle, true_clocks
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data

TRIALS = ["c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d", "btkdata/PiG_Motion-FlatFoot-Full.c3d",
          "c3d_org/sample03_gait-pig.c3d", "c3d_org/sample09_PlugInC3D.c3d", "c3d_org/sample23_Vicon_analysis.c3d"]
# sample00: both knees are known from its first frame (sample23's left knee only from 2.1 s: a fault before that
# cannot be seen by any modality)
FAULT_TRIAL = "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d"


def _read(rel: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_c3d(shared_path(rel), prefix="")


def _sim(src, **kw):
    return true_clocks(simulate_session(src, **kw))


def _truth(sim, sig: FusedSignal, side: str) -> np.ndarray:
    return true_angle(sim, sig.times, f"{side}_knee_flexion")


def _knee(res) -> FusedSignal:
    return next(s for s in res.signals if s.name == "knee_angle")


@pytest.fixture(scope="module")
def runs():
    """Per trial: squared errors (fused / video-only / IMU-only), band hits, marker-following figures."""
    out = []
    for rel in TRIALS:
        src = _read(rel)
        sim = _sim(src, include_markers=False, seed=1)
        fused = _knee(fuse_angles(sim, joints=("knee",), conflicts=False))
        video = _knee(fuse_angles(sim, joints=("knee",), use=("video",), conflicts=False))
        imu = _knee(fuse_angles(sim, joints=("knee",), use=("imu",), conflicts=False))
        simm = _sim(src, include_markers=True, seed=1)
        resm = fuse_angles(simm)
        km = _knee(resm)
        res_iv = fuse_angles(sim)  # IMUs + video only, every joint, with the conflict test
        k_iv = _knee(res_iv)
        row = {"f": [], "v": [], "i": [], "o": [], "hit": [], "dm": [], "noise_m": km.noise["markers"],
               "conflicts": len(resm.conflicts), "dur_s": float(km.times[-1] - km.times[0]), "fused": fused,
               "conflicts_iv": len(res_iv.conflicts), "dur_iv_s": float(k_iv.times[-1] - k_iv.times[0])}
        lo, hi = fused.band(0.95)
        for i, side in enumerate(("left", "right")):
            tru = _truth(sim, fused, side)
            ok = np.isfinite(tru)
            row["f"] += list((fused.mean[ok, i] - tru[ok]) ** 2)
            vid = np.interp(fused.times, video.times, video.mean[:, i])  # video-only runs on the 30 fps grid
            row["v"] += list((vid[ok] - tru[ok]) ** 2)
            row["i"] += list((imu.mean[ok, i] - tru[ok]) ** 2)  # gyro + accelerometer tilt, same smoother
            row["o"] += list((imu_oracle_knee(sim, side, fused.times, tru)[ok] - tru[ok]) ** 2)
            row["hit"] += list((tru[ok] >= lo[ok, i]) & (tru[ok] <= hi[ok, i]))
            trm = _truth(simm, km, side)
            okm = np.isfinite(trm)
            row["dm"] += list((km.mean[okm, i] - trm[okm]) ** 2)
        out.append(row)
    return out


def _rmse_deg(runs, key: str) -> float:
    return math.degrees(math.sqrt(np.mean(np.concatenate([r[key] for r in runs]))))


def test_result_types_and_units(runs) -> None:
    k = runs[0]["fused"]
    assert isinstance(k, FusedSignal) and k.channels == ("left_knee", "right_knee") and k.units == ("rad", "rad")
    assert set(k.inputs) == {"video", "imu"} and np.all(np.isfinite(k.mean)) and np.all(k.var > 0)
    assert set(k.noise) == {"video", "imu", "imu_tilt"} and all(v > 0 for v in k.noise.values())


def test_fused_knee_beats_video_only_by_20_percent(runs) -> None:
    # markers withheld; video-only = the same smoother on the video alone (better than the raw 2D angle)
    assert _rmse_deg(runs, "f") <= 0.8 * _rmse_deg(runs, "v")


def test_fused_knee_beats_best_single_modality_by_20_percent(runs) -> None:
    # measured: fused 1.74 deg, video alone 4.38, IMU alone (gyro + accelerometer tilt) 3.38 -> 0.51 x the best
    best = min(_rmse_deg(runs, "v"), _rmse_deg(runs, "i"))
    assert _rmse_deg(runs, "f") <= 0.8 * best


def test_fused_knee_is_within_the_imu_oracle(runs) -> None:
    # stricter reference (not a single modality: true start angle and true start bias): measured 1.74 vs 1.98
    assert _rmse_deg(runs, "f") <= _rmse_deg(runs, "o")


def test_band_95_covers_truth_90_to_98_percent(runs) -> None:
    cover = float(np.mean(np.concatenate([r["hit"] for r in runs])))
    assert 0.90 <= cover <= 0.98, cover


def test_with_markers_fused_follows_markers_within_their_noise(runs) -> None:
    for r in runs:
        rms = math.sqrt(np.mean(r["dm"]))
        assert rms <= 1.5 * r["noise_m"] + math.radians(0.05), (rms, r["noise_m"])


def test_clean_data_at_most_one_false_conflict_per_minute(runs) -> None:
    # markers + video + IMUs, and IMUs + video only (markers withheld); over more data (8 walks x 6 seeds):
    # benchmarks/false_conflicts_angles.py
    for key, dur in (("conflicts", "dur_s"), ("conflicts_iv", "dur_iv_s")):
        n = sum(r[key] for r in runs)
        minutes = sum(r[dur] for r in runs) / 60
        assert n <= max(1.0, minutes), (key, n, minutes)


def test_imus_and_video_no_false_conflict_in_fast_swing() -> None:
    """IMUs + video only, sample00: the IMU knee rate against the 30 fps video-only smoothed rate in the fast swing
    at ~4.4-5.1 s was flagged with both seeds while the jerk level was one per channel (the video-only smoother
    missed up to 3.9 rad/s and claimed an SD of 0.76 rad/s). With the jerk level varying over the gait cycle
    (`_local_jerk`, EM-estimated from the data being fused) it is not; the level is several times larger in swing
    than in stance."""
    src = _read(FAULT_TRIAL)
    for seed in (11, 12):
        res = fuse_angles(_sim(src, include_markers=False, seed=seed))
        assert res.conflicts == [], [(c.quantity, c.modality, c.start_s, c.end_s) for c in res.conflicts]
    from fusionlab.fusion._angles import _fit, _local_jerk, _model, _prior, angle_inputs

    inp = angle_inputs(_sim(src, include_markers=False, seed=11), joints=("knee",))
    dt = float(np.median(np.diff(inp.times)))
    F, Q, H = _model(dt, inp.bias_drift)
    x0, P0 = _prior(inp)
    fit, R, _ = _fit(F, Q, H, inp.z, np.where(np.isfinite(inp.r_shape), inp.r_shape, 1.0), x0, P0, 30)
    _, s2 = _local_jerk(F, fit.Q, H, inp.z, R, x0, P0, dt)
    lo, hi = np.percentile(s2, [10, 90], axis=1)
    assert np.all(hi > 2.0 * lo), (lo, hi)


def _fault_conflicts(fault: Fault):
    src = _read(FAULT_TRIAL)
    t0 = float(src.stream("markers").times()[0])
    f = Fault(**{**fault.__dict__, "start_s": t0 + fault.start_s if math.isfinite(fault.start_s) else fault.start_s})
    res = fuse_angles(_sim(src, include_markers=True, seed=1, faults=[f]))
    return res.conflicts, f.start_s if fault.start_s > 0 else t0


def _flagged(conflicts: list[Conflict], modality: str, start_s: float) -> bool:
    return any(c.modality == modality and abs(c.start_s - start_s) <= 0.5 for c in conflicts)


def test_imu_clock_error_is_flagged_on_the_imu() -> None:
    late = []
    for rel in TRIALS:
        src = _read(rel)
        t0 = float(src.stream("markers").times()[0])
        res = fuse_angles(_sim(src, include_markers=True, seed=1,
                                           faults=[Fault("clock_error", target="imu", magnitude=0.04)]),
                          joints=("knee",))
        assert res.conflicts and all(c.modality == "imu" for c in res.conflicts)
        if min(c.start_s for c in res.conflicts) - t0 > 0.5:
            late.append(rel)
    assert not late, late


def test_video_clock_error_is_flagged_on_the_video() -> None:
    conflicts, start = _fault_conflicts(Fault("clock_error", start_s=0.0, target="video", magnitude=0.04))
    assert _flagged(conflicts, "video", start)


def test_video_swap_is_flagged_on_the_video() -> None:
    # the swap likelihood-ratio test (benchmark: 5 of 5 walks)
    conflicts, start = _fault_conflicts(Fault("video_swap", start_s=1.0, duration_s=2.0))
    assert _flagged(conflicts, "video", start)
    assert any(c.evidence.get("hypothesis") == "left/right swap" for c in conflicts)


def test_imu_bias_jump_is_flagged_on_the_imu() -> None:
    # the sequential bias-step test (benchmark: 5 of 5 walks; on this walk first alarm 0.30 s after the onset)
    conflicts, start = _fault_conflicts(Fault("imu_bias_jump", start_s=1.5, target="left_shank", magnitude=0.3))
    assert _flagged(conflicts, "imu", start)
    step = [c for c in conflicts if "imu:step" in c.evidence.get("flagged", {})]
    assert step and all(c.modality == "imu" for c in step)
    assert any(c.evidence["flagged"]["imu:step"]["detected_s"] - start <= 0.5 for c in step)


def _bias_jump_run(rel: str, shift_markers_deg: float = 0.0, monkeypatch=None):
    """Knee fusion with a 0.3 rad/s bias jump on the left shank IMU 1.5 s after both knees are known (as the
    benchmark); optionally the left knee's marker angle off by ``shift_markers_deg`` over 3.0-4.0 s after that."""
    import fusionlab.fusion._angles as angles

    src = _read(rel)
    tr = _sim(src, include_markers=True, seed=1).stream("truth.angles")
    ok = np.isfinite(tr.channel("left_knee_flexion")) & np.isfinite(tr.channel("right_knee_flexion"))
    t_ok = float(tr.times()[ok][0])
    if shift_markers_deg:
        orig = angles.angle_inputs

        def shifted(*a, **k):
            inp = orig(*a, **k)
            c = inp.channels.index("left_knee")
            inp.z[c, (inp.times >= t_ok + 3.0) & (inp.times < t_ok + 4.0), 0] += math.radians(shift_markers_deg)
            return inp

        monkeypatch.setattr(angles, "angle_inputs", shifted)
    fault = Fault("imu_bias_jump", start_s=t_ok + 1.5, target="left_shank", magnitude=0.3)
    return fuse_angles(_sim(src, include_markers=True, seed=1, faults=[fault]), joints=("knee",)).conflicts, t_ok


@pytest.mark.parametrize("rel", TRIALS)
def test_after_a_bias_jump_no_clean_modality_is_named(rel) -> None:
    # the markers' leave-one-out residual drifts after the step (the video + IMU estimate carries it while the
    # bias state re-converges): a later window was named `markers` on sample00, sample09 and sample23; against the
    # estimate without the IMU rate after the step the markers agree (`_explained_by_earlier_fault`)
    conflicts, _ = _bias_jump_run(rel)
    assert conflicts and all(c.modality == "imu" for c in conflicts), [(c.quantity, c.modality) for c in conflicts]
    for c in conflicts:
        if "explained_by" in c.evidence:
            assert c.evidence["explained_by"]["fault"] == "gyro bias step"
            assert min(c.evidence["explained_by"]["p_without_it"].values()) >= c.evidence["alpha"]


def test_a_marker_error_after_a_bias_jump_is_not_explained_away(monkeypatch) -> None:
    # the same run with the left knee markers 8 deg off over 3.0-4.0 s: the markers stay named (they disagree with
    # the estimate without the faulty IMU rate too)
    conflicts, t_ok = _bias_jump_run(FAULT_TRIAL, 8.0, monkeypatch)
    late = [c for c in conflicts if c.end_s > t_ok + 3.0 and c.start_s < t_ok + 4.0]
    assert any("markers" in c.modality.split("|") for c in late), [(c.modality, c.start_s) for c in conflicts]


def test_slope_change_flags_finds_a_slope_step_not_its_nuisance() -> None:
    # D = a nuisance linear in a known regressor (fitted per reference) + white noise; a slope step at 6 s
    rng = np.random.default_rng(1)
    t = np.arange(0, 10, 0.01)
    x = np.sin(2 * np.pi * 0.9 * t) + 0.5 * np.sin(2 * np.pi * 1.8 * t + 1)
    d = 0.05 * t + 0.02 * x + rng.normal(0, 0.002, len(t))
    v = np.full(len(t), 0.002 ** 2)
    assert slope_change_flags(t, d, x[:, None], v, modality="imu:step") == []
    d2 = d + np.where(t >= 6.0, 0.3 * (t - 6.0), 0.0)
    f = slope_change_flags(t, d2, x[:, None], v, modality="imu:step")
    assert f and abs(f[0].start_s - 6.0) <= 0.1 and f[0].detected_s - 6.0 <= 0.2


def test_unsynchronised_streams_are_not_fused() -> None:
    # simulate_session stores the IMU and video clocks as unsynchronised: fusing them would assume offset 0
    sim = simulate_session(_read(FAULT_TRIAL), include_markers=True, seed=1)
    res = fuse_angles(sim, joints=("knee",), conflicts=False)
    assert _knee(res).inputs == ("markers",)
    for name in [s.name for s in sim.streams if s.modality in ("imu", "video_pose")]:
        assert any(name in w and "fusionlab sync" in w for w in res.warnings), (name, res.warnings)
    # a session whose streams share one unsynchronised clock (a single C3D file) is fused on that clock
    one = fuse_angles(_read(FAULT_TRIAL), joints=("knee",), conflicts=False)
    assert _knee(one).inputs == ("markers",) and not any("fusionlab sync" in w for w in one.warnings)


def test_find_conflicts_flags_an_injected_offset_and_names_both_of_two() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(0, 20, 0.01)
    r_ok = rng.normal(0, 0.1, len(t))
    r_bad = rng.normal(0, 0.1, len(t))
    r_bad[(t >= 5) & (t < 7)] += 0.5
    v = np.full(len(t), 0.01)
    c = find_conflicts(t, {"a": r_ok, "b": r_bad}, {"a": v, "b": v}, quantity="x", n_modalities=3)
    assert len(c) == 1 and c[0].modality == "b" and abs(c[0].start_s - 5.0) <= 0.5 and c[0].severity == "high"
    c2 = find_conflicts(t, {"a": r_ok, "b": r_bad}, {"a": v, "b": v}, quantity="x")
    assert len(c2) == 1 and c2[0].modality == "a|b"
    assert find_conflicts(t, {"a": r_ok}, {"a": v}, quantity="x") == []


def test_effective_dof() -> None:
    assert effective_dof(np.array([1.0, 0.0, 0.0]), 10) == pytest.approx(10.0)
    assert effective_dof(np.ones(20), 10) == pytest.approx(1.0)


def test_markers_alone_rest_on_the_noise_floor_and_say_so() -> None:
    # Vicon markers are smoothed: EM alone would fit ~1e-5 rad and claim a 0.001 deg SD
    sim = _sim(_read(FAULT_TRIAL), include_markers=True, video=False, imus=(), seed=1)
    res = fuse_angles(sim, joints=("knee",))
    k = _knee(res)
    assert k.noise["markers"] >= NOISE_FLOOR["markers"] - 1e-12
    assert float(np.median(k.sd())) > math.radians(0.1)
    assert any("rests on markers alone" in w for w in res.warnings)
    assert res.conflicts == []


def test_clock_lag_regression_recovers_a_known_lag() -> None:
    t = np.arange(0, 5, 0.01)
    rng = np.random.default_rng(0)
    deriv = 3.0 * np.cos(2 * np.pi * t)  # rate of a 0.48 rad-amplitude 1 Hz swing
    r = 0.1 - 0.04 * deriv + rng.normal(0, 0.02, len(t))  # a 40 ms lag plus a constant offset
    lag, se = _clock_lag(t, r, np.full(len(t), 0.02 ** 2), deriv, 50)
    se_white = 0.02 / math.sqrt(np.sum(deriv ** 2))  # the SE for white residuals
    assert abs(lag - 0.04) < 0.002 and 0.3 * se_white < se < 3 * se_white


def test_video_off_axis_variance_where_the_subject_is_far_from_the_image_centre() -> None:
    """IMUs + video only, sample23: its right knee appears at 2.1 s, ~1.5 s before the hips cross the image centre;
    with the off-axis video variance (`_off_axis`) the start of that knee raised no false conflict (it did with both
    seeds before). The extra variance is zero near the centre and grows away from it."""
    from fusionlab.fusion._angles import angle_inputs

    src = _read("c3d_org/sample23_Vicon_analysis.c3d")
    for seed in (11, 12):
        sim = _sim(src, include_markers=False, seed=seed)
        res = fuse_angles(sim, joints=("knee",))
        assert not [c for c in res.conflicts if c.quantity == "knee_angle_right" and c.start_s < 3.0]
    inp = angle_inputs(sim, joints=("knee",))
    c = inp.channels.index("right_knee")
    has = np.isfinite(inp.z[c, :, 1])
    pv, tv = inp.video_persp_var[c, has], inp.times[has]
    near, far = np.abs(tv - inp.t_centre) < 0.2, np.abs(tv - inp.t_centre) > 1.0
    assert np.all(pv >= 0) and pv[near].max() < 0.25 * pv[far].min()


def test_a_joint_no_synchronised_source_measures_is_not_fused() -> None:
    # IMUs + video, no markers, clocks left unsynchronised: the video is not fused, the IMUs give the knee only;
    # the hip and ankle would be the prior alone (zero mean, SD ~651 rad), which is not an estimate
    sim = simulate_session(_read(FAULT_TRIAL), include_markers=False, seed=0)
    res = fuse_angles(sim, conflicts=False)
    assert [s.name for s in res.signals] == ["knee_angle"]
    assert _knee(res).inputs == ("imu",)
    for joint in ("hip", "ankle"):
        assert any(w.startswith(f"{joint} angle: no synchronised source measures it") for w in res.warnings)
    assert all(np.isfinite(s.var).all() and np.max(s.var) < 1.0 for s in res.signals)


def test_a_side_no_source_measures_is_left_empty() -> None:
    """Left thigh and shank IMUs only, no markers, no usable video: the left knee is fused from its IMUs, the right
    knee has no measurement at all and is NaN (not the prior's zero with a huge SD), with a warning."""
    sim = simulate_session(_read(FAULT_TRIAL), imus=("left_shank", "left_thigh"), video=False,
                           include_markers=False, seed=0)
    res = fuse_angles(sim, conflicts=False)
    knee = _knee(res)
    left, right = knee.channels.index("left_knee"), knee.channels.index("right_knee")
    assert np.isfinite(knee.mean[:, left]).mean() > 0.9 and np.nanmax(knee.var[:, left]) < 1.0
    assert np.isnan(knee.mean[:, right]).all() and np.isnan(knee.var[:, right]).all()
    assert any(w.startswith("right_knee angle: no synchronised source measures it") for w in res.warnings)
