"""Validate `fusionlab.fusion.fuse_foot` on gaitmap's foot-IMU walk with withheld markers (docs/fusion-foot.md).

    python benchmarks/validate_foot_fusion.py [--seeds 1 2 3] [--no-calibrate] [--jumps 8 12 20 30]

Prints, per seed and foot and pooled: the RMS 3D error of the fused foot point inside the withheld gaps (0.2-2 s,
30 % of the time), of the IMU alone (ZUPT-only, best offset) and of the IMU alone restarted from the last marker
before each gap; the 95 % band coverage per axis and in 3D; the process-noise multipliers of the cross-validation
calibration; the stride-length z-scores against the withheld markers; the conflicts on the clean walk (per foot
minute) and, for each ``--jumps`` start time, whether a 10-cm 1-s jump of the left-foot markers is flagged within
0.5 s of its start.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusionlab.fusion._foot import fuse_foot  # noqa: E402
from fusionlab.model import Session  # noqa: E402
from fusionlab.persist import open_session, save_session  # noqa: E402
from tests.test_fusion_foot import gaitmap_session, withheld_figures  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--no-calibrate", action="store_true", help="keep the EM process levels (the old behaviour)")
    ap.add_argument("--jumps", type=float, nargs="*", default=[8.0, 12.0, 20.0, 30.0])
    ap.add_argument("--video", action="store_true", help="only the video validation (3 simulated C3D walks)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    if args.video:
        # IMU alone vs IMU + video, foot IMUs and a side camera simulated from real C3D walks (markers withheld)
        from tests.test_fusion_foot import video_runs

        video_runs.__wrapped__(type("F", (), {"mktemp": staticmethod(lambda name: tmp)})())
        return
    path = tmp / "gaitmap.h5"
    gaitmap_session(path)
    if args.no_calibrate:
        import fusionlab.fusion._foot as foot

        orig = foot._fuse_foot_detail
        foot_detail = lambda *a, **k: orig(*a, **{**k, "calibrate": False})  # noqa: E731
        import tests.test_fusion_foot as tf

        tf._fuse_foot_detail = foot_detail
    rows = []
    t0 = time.perf_counter()
    print("| seed, foot | fused | IMU alone | IMU restarted | covers x / y / z | 3D | process scale x / y / z |"
          " stride z SD (robust) |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        for r in withheld_figures(path, seed):
            sig = next(s for s in r["result"].signals if s.name == f"foot_position_{r['side']}")
            scale = sig.meta["process_calibration"]["process_scale"]
            zs = r["z_stride"]
            cov = r["in_axis"].mean(axis=0) * 100
            print(f"| {seed} {r['side']} | {math.sqrt(r['sq_fused'].mean()) * 100:.1f} cm | "
                  f"{math.sqrt(r['sq_alone'].mean()) * 100:.1f} cm | "
                  f"{math.sqrt(np.nanmean(r['sq_dr'])) * 100:.1f} cm | "
                  f"{cov[0]:.1f} / {cov[1]:.1f} / {cov[2]:.1f} % | {r['in_3d'].mean() * 100:.1f} % | "
                  f"{' / '.join(f'{x:.3g}' for x in scale)} | {np.sqrt(np.mean(zs ** 2)):.2f} "
                  f"({np.median(np.abs(zs)) / 0.6745:.2f}) |")
            rows.append(r)

    def rms(key: str) -> float:
        return float(np.sqrt(np.nanmean(np.concatenate([r[key] for r in rows]))))

    cov = np.concatenate([r["in_axis"] for r in rows]).mean(axis=0) * 100
    zs = np.concatenate([r["z_stride"] for r in rows])
    print(f"| **pooled** | **{rms('sq_fused') * 100:.2f} cm** | **{rms('sq_alone') * 100:.2f} cm** | "
          f"**{rms('sq_dr') * 100:.2f} cm** | **{cov[0]:.1f} / {cov[1]:.1f} / {cov[2]:.1f} %** | "
          f"**{np.concatenate([r['in_3d'] for r in rows]).mean() * 100:.1f} %** | | "
          f"**{np.sqrt(np.mean(zs ** 2)):.2f} ({np.median(np.abs(zs)) / 0.6745:.2f})** |")
    print(f"\ngap error ratio: IMU alone / fused {rms('sq_alone') / rms('sq_fused'):.1f}x, "
          f"IMU restarted / fused {rms('sq_dr') / rms('sq_fused'):.2f}x")
    print(f"stride-length z-scores: n = {zs.size}, SD {np.sqrt(np.mean(zs ** 2)):.2f}, robust SD "
          f"{np.median(np.abs(zs)) / 0.6745:.2f}, |z| <= 1.96 {np.mean(np.abs(zs) <= 1.96) * 100:.1f} %, "
          f"SD without the 2 largest {np.sqrt(np.mean(np.sort(zs ** 2)[:-2])):.2f}; largest |z| "
          f"{np.round(np.sort(np.abs(zs))[-3:], 1)}")

    calibrate = not args.no_calibrate
    with open_session(path) as r:
        ms = r.read_stream(r.find_streams(modality="markers")[0])
        res = fuse_foot(r, calibrate=calibrate)
        imu = [r.read_stream(n) for n in r.find_streams(modality="imu")]
        clocks = r.clocks()
        tm = r.to_session_time(ms)
    minutes = sum(s.times[-1] - s.times[0] for s in res.signals if s.name.startswith("foot_position_")) / 60
    print(f"clean walk: {len(res.conflicts)} conflicts in {minutes:.2f} foot-minutes "
          f"({len(res.conflicts) / minutes:.2f} per minute)")
    for start in args.jumps:
        data = np.array(ms.data)
        bad = (tm >= start) & (tm < start + 1.0)
        for k, name in enumerate(ms.channels):
            if name.startswith("L_"):
                data[bad, k, 1] += 0.10
        jpath = tmp / f"jump_{start:g}.h5"
        save_session(Session(streams=(dataclasses.replace(ms, data=data), *imu), clocks=clocks), jpath)
        with open_session(jpath) as r:
            rj = fuse_foot(r, side="left", calibrate=calibrate)
        hits = [c for c in rj.conflicts if c.start_s <= start + 0.5 and c.end_s >= start]
        print(f"10-cm jump at {start:.1f} s: {'flagged' if hits else 'MISSED'} "
              + ", ".join(f"[{c.start_s:.2f}, {c.end_s:.2f}] {c.modality} {c.severity}" for c in rj.conflicts))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
