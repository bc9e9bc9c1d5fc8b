"""Synchronisation acceptance report on the gaitmap recording (foot IMUs + Vicon foot markers, recorded in sync).

Run:  python benchmarks/sync_acceptance.py [--trials 50] [--data ../shared/data] [--pairs]

The IMU clock is shifted by a random offset in ±10 s and stretched by a random drift in ±200 ppm; `fusionlab sync`
must recover them. Prints the error of every trial and the summary figures quoted in docs/sync.md.

``--pairs`` also runs `synchronize_session` (every method) on every ordered pair of different walks that carry
annotated gait events (``WALKS_WITH_EVENTS``: every C3D walk with foot strike/off events in ../shared/data and
sample_data), each file on its own clock, and counts the pairs for which sync accepts an offset (must be 0), and
the pairs that are the same recording stored twice (``SAME_RECORDING``), which may be accepted (about 2 min).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

import itertools
import logging
import time
import warnings

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


# every C3D walk with annotated foot strike / foot off events (paths under ../shared/data; "sample_data/..." is the
# repository's own folder); files that ezc3d cannot read (MIPS) are not listed
WALKS_WITH_EVENTS = (
    "btkdata/PiG_Motion-FlatFoot-Full.c3d", "btkdata/PiG_Motion-FlatFoot-Hole.c3d",
    "c3d_org/sample00_MAC_Walk1.c3d", "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d",
    "c3d_org/sample03_gait-pig-nz.c3d", "c3d_org/sample03_gait-pig.c3d", "c3d_org/sample04_sub_labels.c3d",
    "c3d_org/sample09_PlugInC3D.c3d", "c3d_org/sample09_VER4C3D.c3d", "c3d_org/sample11_2198928.c3d",
    "c3d_org/sample23_Vicon_analysis.c3d", "ezc3d_testfiles/Qualisys.c3d", "gaitalytics/treadmill_events.c3d",
    "sample_data/qualisys_walking.c3d", "sample_data/vicon_pycgm2_walking01.c3d",
)
# the same recording stored twice (another format, another processing stage, a copy): not unrelated walks
SAME_RECORDING = (
    {"PiG_Motion-FlatFoot-Full", "PiG_Motion-FlatFoot-Hole"}, {"sample09_PlugInC3D", "sample09_VER4C3D"},
    {"Qualisys", "qualisys_walking"}, {"sample00_vicon_pyCGM2_CGM24_Walking01", "vicon_pycgm2_walking01"},
)


def _walk_path(data: Path, rel: str) -> Path:
    if rel.startswith("sample_data/"):
        return Path(__file__).resolve().parents[1] / rel
    return data / rel


def same_recording(a: str, b: str) -> bool:
    """Whether two walk files (stems) are the same recording stored twice."""
    return any(a in g and b in g for g in SAME_RECORDING)


def run_pairs(data: Path) -> dict[str, int]:
    """`synchronize_session` on every ordered pair of different annotated walks; print and count acceptances."""
    from fusionlab.adapters.c3d import read_c3d

    logging.disable(logging.WARNING)
    trials = {}
    for rel in WALKS_WITH_EVENTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trials[Path(rel).stem] = read_c3d(_walk_path(data, rel))
    counts = {"unrelated_pairs": 0, "unrelated_accepted": 0, "same_pairs": 0, "same_accepted": 0}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as td:
        for k, (a, b) in enumerate(itertools.permutations(trials, 2)):
            ta, tb = trials[a], trials[b]
            (ca,) = ta.clocks
            clocks = {**tb.clocks, ca: ClockEntry(ca, 0.0, 0.0, 0.0, 0.0, "reference")}
            session = Session(streams=ta.streams + tb.streams, events=ta.events + tb.events, clocks=clocks)
            path = Path(td) / f"p{k}.h5"
            save_session(session, path)
            report = synchronize_session(path, store=False)
            path.unlink()
            kind = "same" if same_recording(a, b) else "unrelated"
            counts[f"{kind}_pairs"] += 1
            if report.results:
                counts[f"{kind}_accepted"] += 1
                (res,) = report.results
                print(f"  accepted ({kind}): {a} <- {b}: offset {res.offset_s:+.4f} s ± {1000 * res.offset_sd_s:.1f} "
                      f"ms, method {res.method}")
    print(f"\n{counts['unrelated_pairs']} ordered pairs of different walks: {counts['unrelated_accepted']} accepted "
          f"(target 0); {counts['same_pairs']} pairs of the same recording stored twice: {counts['same_accepted']} "
          f"accepted ({time.time() - t0:.0f} s)")
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--pairs", action="store_true", help="also sweep every ordered pair of different walks")
    args = ap.parse_args()
    if args.trials > 0:
        run(Path(args.data), args.trials)
    if args.pairs:
        counts = run_pairs(Path(args.data))
        return 0 if counts["unrelated_accepted"] == 0 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
