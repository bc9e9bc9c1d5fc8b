"""Validate `fusionlab.fusion.fuse_angles` on simulated sessions made from real C3D walks (see docs/fusion-angles.md).

    python benchmarks/validate_angle_fusion.py [--trials N]

Prints, per trial: the knee RMSE (deg) of the fusion without markers, of the video-only smoother and of the
IMU-only integrated rate; the 95 % band coverage; with markers included the RMS difference to the markers
against their fitted noise; and the conflicts raised on clean data and for each injected fault.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusionlab.adapters.c3d import read_c3d  # noqa: E402
from fusionlab.fusion._angles import fuse_angles  # noqa: E402
from fusionlab.simulate import Fault, simulate_session  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TRIALS = ["c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d", "btkdata/PiG_Motion-FlatFoot-Full.c3d",
          "c3d_org/sample03_gait-pig.c3d", "c3d_org/sample09_PlugInC3D.c3d", "c3d_org/sample23_Vicon_analysis.c3d",
          "c3d_org/sample11_2198928.c3d", "c3d_org/sample03_gait-pig-nz.c3d"]


def truth_on(sim, sig, side: str, joint: str) -> np.ndarray:
    tr = sim.stream("truth.angles")
    name = {"hip": "hip_flexion", "knee": "knee_flexion", "ankle": "ankle_dorsiflexion"}[joint]
    x = np.asarray(tr.channel(f"{side}_{name}"), dtype=float)
    return np.interp(sig.times, tr.times(), x, left=np.nan, right=np.nan)


def imu_only_knee(sim, side: str, t: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The IMU alone: the joint rate with each gyroscope's bias known at the start (a still period before the
    walk) integrated from the true angle at the first sample (a calibration pose)."""
    b0 = sim.metadata["simulation"]["imu_bias_start_rad_s"]
    rate = np.zeros(len(t))
    for seg, sign in (("thigh", 1.0), ("shank", -1.0)):
        s = next(s for s in sim.streams if s.meta.get("placement") == f"{side}_{seg}")
        g = s.channel("gyr")[:, 2] - b0[f"{side}_{seg}"][2]
        ok = np.isfinite(g)
        rate += sign * np.interp(t, s.times()[ok], g[ok])
    ang = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(t))])
    k0 = np.flatnonzero(np.isfinite(truth))[0]
    return ang - ang[k0] + truth[k0]


def rmse(a, b) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=len(TRIALS))
    ap.add_argument("--faults", action="store_true")
    args = ap.parse_args()
    for rel in TRIALS[: args.trials]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = read_c3d(SHARED / rel, prefix="")
        t0 = time.perf_counter()
        sim = simulate_session(src, include_markers=False, seed=1)
        res = fuse_angles(sim, joints=("hip", "knee", "ankle"), conflicts=True)
        vid = fuse_angles(sim, use=("video",), joints=("knee",), conflicts=False)
        knee = next(s for s in res.signals if s.name == "knee_angle")
        vknee = next(s for s in vid.signals if s.name == "knee_angle")
        dur = knee.times[-1] - knee.times[0]
        row = []
        for i, side in enumerate(("left", "right")):
            tru = truth_on(sim, knee, side, "knee")
            f = rmse(knee.mean[:, i], tru)
            v = rmse(vknee.mean[:, i], truth_on(sim, vknee, side, "knee"))
            imu = rmse(imu_only_knee(sim, side, knee.times, tru), tru)
            lo, hi = knee.band(0.95)
            ok = np.isfinite(tru)
            cov = float(np.mean((tru[ok] >= lo[ok, i]) & (tru[ok] <= hi[ok, i])))
            sdm = float(np.median(knee.sd()[:, i]))
            row.append(f"{side}: fused {math.degrees(f):.2f} video {math.degrees(v):.2f} imu {math.degrees(imu):.2f}"
                       f" cov {cov:.3f} sd {math.degrees(sdm):.2f}")
        print(f"{rel} ({dur:.1f} s, {time.perf_counter() - t0:.1f} s): " + " | ".join(row))
        print(f"   noise {knee.noise}  conflicts clean(no markers): {len(res.conflicts)}")
        for c in res.conflicts:
            print(f"     {c.quantity} {c.modality} {c.start_s:.2f}-{c.end_s:.2f} {c.severity} {c.score:.1f}")
        # with markers
        simm = simulate_session(src, include_markers=True, seed=1)
        rm = fuse_angles(simm, joints=("hip", "knee", "ankle"))
        km = next(s for s in rm.signals if s.name == "knee_angle")
        d = [rmse(km.mean[:, i], truth_on(simm, km, side, "knee")) for i, side in enumerate(("left", "right"))]
        print(f"   with markers: rms(fused - markers) deg {np.degrees(d).round(3)}; marker noise sd deg "
              f"{math.degrees(km.noise['markers']):.3f}; conflicts clean: {len(rm.conflicts)}")
        for c in rm.conflicts:
            print(f"     {c.quantity} {c.modality} {c.start_s:.2f}-{c.end_s:.2f} {c.severity} {c.score:.1f}")
        if args.faults:
            ts = km.times[0]
            for f in (Fault("video_swap", start_s=ts + 1.0, duration_s=2.0),
                      Fault("imu_bias_jump", start_s=ts + 1.5, target="left_shank", magnitude=0.3),
                      Fault("clock_error", target="video", magnitude=0.04),
                      Fault("clock_error", target="imu", magnitude=0.04)):
                sf = simulate_session(src, include_markers=True, seed=1, faults=[f])
                rf = fuse_angles(sf, joints=("hip", "knee", "ankle"))
                print(f"   fault {f.kind} {f.target} at {f.start_s - ts:.2f}:")
                for c in rf.conflicts:
                    print(f"     {c.quantity} {c.modality} {c.start_s - ts:.2f}-{c.end_s - ts:.2f} {c.severity} "
                          f"{c.score:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
