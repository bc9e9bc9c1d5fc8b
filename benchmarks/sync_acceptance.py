"""Synchronisation acceptance report on the gaitmap recording (foot IMUs + Vicon foot markers, recorded in sync).

Run:  python benchmarks/sync_acceptance.py [--trials 50] [--data ../shared/data]

The IMU clock is shifted by a random offset in ±10 s and stretched by a random drift in ±200 ppm; `fusionlab sync`
must recover them. Prints the error of every trial and the summary figures quoted in docs/sync.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

from fusionlab.adapters.imu_gaitmap import read_gaitmap_imu, read_gaitmap_mocap
from fusionlab.model import ClockEntry, Session
from fusionlab.persist import save_session
from fusionlab.sync import synchronize_session


def run(data: Path, trials: int, seed: int = 2026) -> dict[str, float]:
    """Run the trials; return the summary figures."""
    imu = read_gaitmap_imu(data / "imu/gaitmap/imu_sample.csv", prefix="imu.")
    moc = read_gaitmap_mocap(data / "imu/gaitmap/mocap_sample.csv", prefix="mocap.")
    markers = moc.streams[0]
    rng = np.random.default_rng(seed)
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for k in range(trials):
            shift, drift = rng.uniform(-10, 10), rng.uniform(-200, 200)
            foot = imu.streams[k % len(imu.streams)]
            t_dev = (foot.times() - shift) / (1.0 + drift * 1e-6)
            moved = dataclasses.replace(foot, time_s=t_dev, rate_hz=None, clock="imu")
            m = dataclasses.replace(markers, clock="vicon")
            session = Session(streams=(m, moved), clocks={"vicon": ClockEntry("vicon", 0, 0, 0, 0, "reference"),
                                                          "imu": ClockEntry("imu")})
            path = Path(td) / f"s{k}.h5"
            save_session(session, path)
            report = synchronize_session(path)
            if report.refused:
                rows.append((k, foot.name, shift, drift, np.nan, np.nan, np.nan, np.nan, False))
                continue
            (res,) = report.results
            lo, hi = res.interval95_s()
            rows.append((k, foot.name, shift, drift, res.offset_s - shift, res.offset_sd_s, res.drift_ppm - drift,
                         res.drift_sd_ppm, lo <= shift <= hi))
    print(f"{'trial':>5} {'stream':24s} {'offset s':>9} {'drift ppm':>9} {'err ms':>7} {'sd ms':>6} "
          f"{'drift err':>9} {'sd ppm':>7} covered")
    for k, name, shift, drift, e, sd, de, dsd, cov in rows:
        print(f"{k:5d} {name:24s} {shift:9.4f} {drift:9.1f} {1000 * e:7.2f} {1000 * sd:6.2f} {de:9.1f} {dsd:7.1f} "
              f"{'yes' if cov else 'NO'}")
    err = np.array([r[4] for r in rows]) * 1000
    derr = np.array([r[6] for r in rows])
    summary = {"trials": len(rows), "refused": int(np.isnan(err).sum()), "max_offset_error_ms": float(np.nanmax(
        np.abs(err))), "median_abs_offset_error_ms": float(np.nanmedian(np.abs(err))),
        "max_drift_error_ppm": float(np.nanmax(np.abs(derr))), "coverage_95": float(np.mean([r[8] for r in rows]))}
    print(f"\n{summary['trials']} trials, {summary['refused']} refused")
    print(f"offset error: max {summary['max_offset_error_ms']:.2f} ms (target <= 5), median "
          f"{summary['median_abs_offset_error_ms']:.2f} ms")
    print(f"drift error: max {summary['max_drift_error_ppm']:.1f} ppm (target <= 50)")
    print(f"95 % interval contains the true offset: {100 * summary['coverage_95']:.0f} % (target >= 90 %)")
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--trials", type=int, default=50)
    args = ap.parse_args()
    run(Path(args.data), args.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
