"""Foot-IMU detector (`GaitFootImu`) on gaitmap's two walks with a reference, and on its two stair recordings.

    python benchmarks/validate_foot_imu.py [--data ../shared/data] [--tolerance-ms 100 150]

1. ``imu_sample.csv`` (2x20 m, 204.8 Hz; the walk the detector was developed on) against gaitmap's mocap stride
   events (``stride_events_sample.csv``: ``ic``/``pre_ic`` foot strikes, ``tc`` foot-offs), and stride length
   against the Vicon heel marker (``mocap_sample.csv``; tests/test_gait_imu.py `_foot_errors`).
2. ``imu_sample_ic_stride.csv`` (4x10 m, 102.4 Hz; held out) against its mocap IC-to-IC stride borders
   (``stride_borders_sample_ic_stride.csv``); no stride-length reference exists for this walk.
3. ``imu_sample_healthy_stair_up.csv`` / ``_down.csv`` (204.8 Hz, no reference): strides found, stride lengths,
   warnings.

Events and strides are compared with the tool's own validation (`validate_sessions`, i.e. ``fusionlab validate
--reference reference``): foot strikes matched one-to-one within the tolerance, precision only inside the
reference's covered span, strides paired by start time. Stride-time error = detected - reference per paired
stride: median |e|, bias (mean) and 95 % limits of agreement. Issue target: median |stride-time error| <= 10 ms,
median |stride-length error| <= 5 cm.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fusionlab.adapters.imu_gaitmap import read_gaitmap_imu, read_gaitmap_mocap  # noqa: E402
from fusionlab.gait._imu_foot import GaitFootImu  # noqa: E402
from fusionlab.persist import save_session  # noqa: E402
from tests.test_gait_imu_heldout import HELDOUT_RATE_HZ, foot_imu_figures, print_figures  # noqa: E402


def _walk1_lengths(data: Path) -> None:
    import csv

    from tests.test_gait_imu import _foot_errors

    session = read_gaitmap_imu(data / "imu_sample.csv")
    det = GaitFootImu()
    det.results_ = [det.detect_stream(s) for s in session.streams]
    rows = list(csv.DictReader((data / "stride_events_sample.csv").open()))
    mocap = read_gaitmap_mocap(data / "mocap_sample.csv").streams[0]
    errs = _foot_errors(det, rows, mocap)
    ln = np.concatenate([e["stride_length_m"] for e in errs.values()])
    print(f"  stride length vs Vicon heel marker: {ln.size} strides, median |e| {100 * np.median(np.abs(ln)):.1f} cm, "
          f"p95 |e| {100 * np.percentile(np.abs(ln), 95):.1f} cm, bias {100 * np.median(ln):+.1f} cm (median)")


def _stairs(data: Path) -> None:
    for name in ("imu_sample_healthy_stair_up.csv", "imu_sample_healthy_stair_down.csv"):
        session = read_gaitmap_imu(data / name)
        print(f"\n{name} (204.8 Hz, no reference)")
        for stream in session.streams:
            res = GaitFootImu().detect_stream(stream)
            ln = np.array([s.params["stride_length_m"].value for s in res.strides if "stride_length_m" in s.params])
            st = np.array([s.params["stride_time_s"].value for s in res.strides])
            n_fs = sum(e.kind == "foot_strike" for e in res.events)
            print(f"  {stream.name.split('.')[-1]:10s} sign {res.meta['sagittal_sign']:+.0f}: {n_fs} strikes, "
                  f"{len(res.strides)} strides (time {np.median(st) if st.size else float('nan'):.2f} s median), "
                  f"{ln.size} with length: "
                  + (f"median {np.median(ln):.2f} m, range {ln.min():.2f}-{ln.max():.2f} m" if ln.size else "-")
                  + (f"; warnings: {res.warnings}" if res.warnings else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--tolerance-ms", type=float, nargs="+", default=[100.0],
                    help="matching tolerance(s) of validate (ms); the default is the tool's 100 ms")
    args = ap.parse_args(argv)
    data = args.data / "imu" / "gaitmap"
    with tempfile.TemporaryDirectory() as td, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        walk1 = Path(td) / "walk1.h5"
        save_session(read_gaitmap_imu(data / "imu_sample.csv", stride_events=data / "stride_events_sample.csv"),
                     walk1)
        walk2 = Path(td) / "walk2.h5"
        save_session(read_gaitmap_imu(data / "imu_sample_ic_stride.csv", rate_hz=HELDOUT_RATE_HZ,
                                      stride_borders=data / "stride_borders_sample_ic_stride.csv"), walk2)
        for tol in args.tolerance_ms:
            fig1 = foot_imu_figures(walk1, tolerance_s=tol / 1000)
            print_figures("1. imu_sample.csv (204.8 Hz, development walk) vs mocap stride events", fig1)
            if tol == args.tolerance_ms[0]:
                _walk1_lengths(data)
            fig2 = foot_imu_figures(walk2, tolerance_s=tol / 1000)
            print_figures("2. imu_sample_ic_stride.csv (102.4 Hz, held out) vs mocap IC-to-IC stride borders", fig2)
            print("  stride length: no reference for this walk; detector median "
                  f"{np.median([s.params['stride_length_m'].value for r in fig2['results'] for s in r.strides if 'stride_length_m' in s.params]):.2f} m")  # noqa: E501
        _stairs(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
