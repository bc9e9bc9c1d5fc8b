"""Validate `fusionlab.fusion.fuse_angles` on simulated sessions made from real C3D walks (see docs/fusion-angles.md).

    python benchmarks/validate_angle_fusion.py [--trials N] [--faults]

Prints, per trial and pooled: the knee RMSE (deg) with the markers withheld of the fusion (video + IMU), of video
alone, of the IMU alone (gyro + accelerometer tilt, same smoother: an honest single modality) and of the IMU rate
integrated from the true start angle with the true start bias (an oracle reference); the 95 % band coverage; with
markers included the RMS difference to the markers against their noise; the conflicts on clean data; and, with
``--faults``, whether each injected fault is flagged on the right modality within 0.5 s of its start (faults start
1.0 s (swap) / 1.5 s (bias jump) after the first sample where both knees are known), and how many conflict windows
of the fault runs name a modality that had no fault (every joint; only one modality is faulty per run).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusionlab.adapters.c3d import read_c3d  # noqa: E402
from fusionlab.fusion._angles import fuse_angles  # noqa: E402
from fusionlab.simulate import Fault, imu_oracle_knee, simulate_session, true_angle, true_clocks  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TRIALS = ["c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d", "btkdata/PiG_Motion-FlatFoot-Full.c3d",
          "c3d_org/sample03_gait-pig.c3d", "c3d_org/sample09_PlugInC3D.c3d", "c3d_org/sample23_Vicon_analysis.c3d"]


def truth_on(sim, times: np.ndarray, side: str) -> np.ndarray:
    return true_angle(sim, times, f"{side}_knee_flexion")


def knee(res):
    return next(s for s in res.signals if s.name == "knee_angle")


def fault_start(sim) -> float:
    """First time (s) where both true knee angles exist."""
    tr = sim.stream("truth.angles")
    ok = np.isfinite(tr.channel("left_knee_flexion")) & np.isfinite(tr.channel("right_knee_flexion"))
    return float(tr.times()[ok][0])


def faults_for(t_ok: float, t0: float) -> list[tuple[Fault, str, float]]:
    """(fault, modality that must be named, start time (s)) per injected fault; a clock error starts with the
    record (``t0``)."""
    return [(Fault("video_swap", start_s=t_ok + 1.0, duration_s=2.0), "video", t_ok + 1.0),
            (Fault("imu_bias_jump", start_s=t_ok + 1.5, target="left_shank", magnitude=0.3), "imu", t_ok + 1.5),
            (Fault("clock_error", target="video", magnitude=0.04), "video", t0),
            (Fault("clock_error", target="imu", magnitude=0.04), "imu", t0)]


def flagged(conflicts, modality: str, start_s: float) -> bool:
    return any(c.modality == modality and abs(c.start_s - start_s) <= 0.5 for c in conflicts)


def clean_named(conflicts, faulty: str) -> tuple[int, int]:
    """Conflict windows of a fault run that name a modality without a fault: (named alone or with other clean
    ones, i.e. a wrong culprit; named together with the faulty one, e.g. ``"imu|markers"``, i.e. ambiguous)."""
    wrong = amb = 0
    for c in conflicts:
        names = set(c.modality.split("|"))
        if names - {faulty}:
            wrong += faulty not in names
            amb += faulty in names
    return wrong, amb


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=len(TRIALS))
    ap.add_argument("--faults", action="store_true")
    args = ap.parse_args()
    sq: dict[str, list[float]] = {"fused": [], "video": [], "imu": [], "oracle": []}
    hits: list[bool] = []
    n_clean, dur = 0, 0.0
    fault_ok: dict[str, list[bool]] = {}
    n_fault_windows, clean_wrong, clean_amb = 0, 0, 0
    for rel in TRIALS[: args.trials]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src = read_c3d(SHARED / rel, prefix="")
        sim = true_clocks(simulate_session(src, include_markers=False, seed=1))
        runs = {k: knee(fuse_angles(sim, joints=("knee",), use=u, conflicts=False))
                for k, u in (("fused", ("video", "imu")), ("video", ("video",)), ("imu", ("imu",)))}
        f = runs["fused"]
        lo, hi = f.band(0.95)
        row = []
        for i, side in enumerate(("left", "right")):
            tru = truth_on(sim, f.times, side)
            ok = np.isfinite(tru)
            e = {k: np.interp(f.times, s.times, s.mean[:, i])[ok] - tru[ok] for k, s in runs.items()}
            e["oracle"] = imu_oracle_knee(sim, side, f.times, tru)[ok] - tru[ok]
            for k in sq:
                sq[k] += list(e[k] ** 2)
            hits += list((tru[ok] >= lo[ok, i]) & (tru[ok] <= hi[ok, i]))
            row.append(side + ": " + " ".join(f"{k} {math.degrees(math.sqrt(np.mean(v ** 2))):.2f}"
                                              for k, v in e.items()))
        print(f"{rel}: " + " | ".join(row))
        simm = true_clocks(simulate_session(src, include_markers=True, seed=1))
        rm = fuse_angles(simm)
        km = knee(rm)
        d = [math.sqrt(np.nanmean((km.mean[:, i] - truth_on(simm, km.times, s)) ** 2)) for i, s in
             enumerate(("left", "right"))]
        n_clean += len(rm.conflicts)
        dur += float(km.times[-1] - km.times[0])
        print(f"   with markers: rms(fused - markers) deg {np.degrees(d).round(3)}; marker noise SD deg "
              f"{math.degrees(km.noise['markers']):.2f}; posterior SD deg {np.degrees(np.nanmedian(km.sd())):.2f}; "
              f"clean conflicts {len(rm.conflicts)}")
        for c in rm.conflicts:
            print(f"     {c.quantity} {c.modality} {c.start_s:.2f}-{c.end_s:.2f} {c.severity} {c.score:.1f}")
        if args.faults:
            t_ok = fault_start(simm)
            for fault, want, start in faults_for(t_ok, float(km.times[0])):
                rf = fuse_angles(true_clocks(simulate_session(src, include_markers=True, seed=1, faults=[fault])))
                ok = flagged(rf.conflicts, want, start)
                key = f"{fault.kind} {fault.target}".strip()
                fault_ok.setdefault(key, []).append(ok)
                w, a = clean_named(rf.conflicts, want)
                n_fault_windows += len(rf.conflicts)
                clean_wrong += w
                clean_amb += a
                print(f"   fault {key} at {start - t_ok:.2f} s: {'OK' if ok else 'MISSED'}; " + "; ".join(
                    f"{c.quantity} {c.modality} {c.start_s - t_ok:.2f}-{c.end_s - t_ok:.2f}"
                    f"{' (' + c.evidence['hypothesis'] + ')' if 'hypothesis' in c.evidence else ''}"
                    for c in rf.conflicts))
    rmse = {k: math.degrees(math.sqrt(np.mean(v))) for k, v in sq.items()}
    best = min(rmse["video"], rmse["imu"])
    print(f"POOLED knee RMSE deg: {', '.join(f'{k} {v:.2f}' for k, v in rmse.items())}; fused / best single "
          f"(video, imu) = {rmse['fused'] / best:.3f} (target <= 0.8); vs oracle {rmse['fused'] / rmse['oracle']:.3f}")
    print(f"POOLED band coverage {np.mean(hits):.3f} (target 0.90-0.98); clean conflicts {n_clean} in {dur:.1f} s = "
          f"{n_clean / dur * 60:.1f}/min (target <= 1)")
    for k, v in fault_ok.items():
        print(f"FAULT {k}: flagged on the right modality within 0.5 s on {sum(v)} of {len(v)} walks")
    if fault_ok:
        print(f"FAULT culprits: of {n_fault_windows} conflict windows in the {sum(map(len, fault_ok.values()))} fault "
              f"runs, {clean_wrong} name only modalities that had no fault (wrong culprit), {clean_amb} name one "
              f"together with the faulty one (ambiguous)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
