"""Gait-event and parameter validation on the shared recordings with reference events (the README figures).

Run:  python benchmarks/validate_shared.py [--data ../shared/data] [--out DIR] [--json]

1. Every shared C3D walk with annotated events (EVENT section) is ingested into its own session; all detectors
   run, and `fusionlab validate --reference annotation` pools the matched events and strides over the files.
2. The same walks with heel, toe and pelvis markers are seen by a virtual 30 fps side camera (pinhole, 5 m, pixel
   noise 1.5 px; tests/test_gait_video.py) and the video detector is validated against the same annotations.
3. gaitmap's example walk (foot IMUs + Vicon foot markers, recorded in sync; synchronised with `fusionlab sync`):
   the foot-IMU and marker detectors against gaitmap's mocap stride events (stride_events_sample.csv, read by
   the gaitmap IMU reader as ``source="reference"`` events).
4. Mobilise-D HA/001 (lower-back IMU): against the INDIP reference system's contacts.

Sessions go to a temporary folder (or --out). Nothing under ../shared/data is changed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

C3D_FILES = (
    "btkdata/PiG_Motion-FlatFoot-Full.c3d", "btkdata/PiG_Motion-FlatFoot-Hole.c3d", "c3d_org/sample00_MAC_Walk1.c3d",
    "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d", "c3d_org/sample03_gait-pig.c3d",
    "c3d_org/sample03_gait-pig-nz.c3d", "c3d_org/sample04_sub_labels.c3d", "c3d_org/sample09_PlugInC3D.c3d",
    "c3d_org/sample09_VER4C3D.c3d", "c3d_org/sample11_2198928.c3d", "c3d_org/sample23_Vicon_analysis.c3d",
    "gaitalytics/treadmill_events.c3d",
)
VIDEO_TRIALS = ("btkdata/PiG_Motion-FlatFoot-Full.c3d", "btkdata/PiG_Motion-FlatFoot-Hole.c3d",
                "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d")


def _ingest(sources: list[Path], out: Path, **reader_options: Any) -> Path:
    from fusionlab.ingest import ingest

    out.unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest(sources, out, isolate=False, reader_options=reader_options or None)
    return out


def _virtual_camera_session(data: Path, rel: str, out: Path, seed: int) -> Path:
    """A session holding only the virtual camera's pose and the trial's annotations (on the camera clock)."""
    import dataclasses

    import numpy as np

    from fusionlab.adapters.c3d import read_c3d
    from fusionlab.model import ClockEntry, Session
    from fusionlab.persist import save_session
    from tests.test_gait_video import virtual_camera

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = read_c3d(data / rel, prefix="")
    cam = virtual_camera(trial.stream("markers"), np.random.default_rng(seed))
    t = cam.times()
    events = tuple(dataclasses.replace(e, clock="cam") for e in trial.events
                   if t[0] + 0.15 <= e.time_s <= t[-1] - 0.15)  # an event at the first frame cannot be seen
    out.unlink(missing_ok=True)
    save_session(Session(streams=(cam,), events=events,
                         clocks={"cam": ClockEntry("cam", 0, 0, 0, 0, "reference")}), out)
    return out


def run(data: Path, out: Path) -> dict[str, Any]:
    """Build the sessions and run the four validations; return their JSON reports."""
    from fusionlab.gait._validate import validate_sessions
    from fusionlab.sync import synchronize_session

    reports: dict[str, Any] = {}
    t0 = time.perf_counter()
    c3d = [_ingest([data / rel], out / f"c3d_{Path(rel).stem}.h5") for rel in C3D_FILES]
    reports["c3d_vs_annotation"] = validate_sessions(c3d, "annotation")
    video = [_virtual_camera_session(data, rel, out / f"vcam_{Path(rel).stem}_{seed}.h5", seed)
             for rel in VIDEO_TRIALS for seed in range(3)]
    reports["virtual_camera_vs_annotation"] = validate_sessions(video, "annotation", source="video")
    gaitmap = _ingest([data / "imu/gaitmap/imu_sample.csv", data / "imu/gaitmap/mocap_sample.csv"],
                      out / "gaitmap.h5", stride_events=data / "imu/gaitmap/stride_events_sample.csv")
    sync = synchronize_session(gaitmap)
    reports["gaitmap_vs_mocap_events"] = validate_sessions([gaitmap], "reference")
    reports["gaitmap_vs_mocap_events"]["sync"] = {r.clock: {"offset_s": r.offset_s, "offset_sd_s": r.offset_sd_s}
                                                 for r in sync.results}
    mobgap = _ingest([data / "imu/mobgap/lab/HA/001/data.mat"], out / "mobgap_HA001.h5")
    reports["mobgap_vs_indip"] = validate_sessions([mobgap], "reference/mobilised:INDIP", source="imu")
    reports["elapsed_s"] = time.perf_counter() - t0
    return reports


def main(argv: list[str] | None = None) -> int:
    from fusionlab.cli import _print_validation, json_safe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, help="folder for the sessions (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the JSON reports")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as td:
        out = args.out or Path(td)
        out.mkdir(parents=True, exist_ok=True)
        reports = run(args.data, out)
    if args.json:
        print(json.dumps(json_safe(reports), indent=2, allow_nan=False))
        return 0
    for name, report in reports.items():
        if not isinstance(report, dict):
            continue
        print(f"\n=== {name}")
        _print_validation(report)
        if "sync" in report:
            print(f"sync: {report['sync']}")
    print(f"\n(elapsed {reports['elapsed_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
