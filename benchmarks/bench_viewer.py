"""Viewer redraw rate while playing: 16 channels at 1 kHz plus video with its pose overlay, offscreen.

Builds a session (synthetic 16 x 1 kHz analog stream + the sample clip's video pose; the clip is copied beside it),
plays it at real speed for a few seconds per configuration and counts the redraws (each one moves the cursor,
scrolls every plot, draws the video frame and the pose). With and without display downsampling, side by side.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_viewer.py [--seconds 4] [--window-s 5 10 30]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "sample_data" / "video" / "sports2d_walker_2s.mp4"


def build(folder: Path, duration_s: float) -> Path:
    from fusionlab.viewer._synthetic import make_synthetic_session

    shutil.copy(CLIP, folder / CLIP.name)
    video = folder / "video.h5"
    subprocess.run([sys.executable, "-m", "fusionlab.cli", "ingest", str(folder / CLIP.name), "--subject-height-m",
                    "1.65", "-o", str(video)], check=True, capture_output=True)
    return make_synthetic_session(folder / "bench.h5", n_channels=16, rate_hz=1000.0, duration_s=duration_s,
                                  video_session=video)


def measure(path: Path, *, downsample: bool, window_s: float, seconds: float) -> tuple[float, float]:
    """Redraws per second while playing, and the mean time of one redraw (ms)."""
    import pyqtgraph as pg

    from fusionlab.viewer import make_window

    app = pg.mkQApp()
    win = make_window(path, downsample=downsample, window_s=window_s,
                      visible=[f"synthetic.analog/ch{c:02d}" for c in range(16)])
    win.resize(1400, 900)
    win.show()
    app.processEvents()
    t_video0 = float(win.pose.session_time_s[0])
    t_video1 = float(win.pose.session_time_s[-1])
    win.set_time(t_video0)
    win.play()
    n = 0
    busy = 0.0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        if win.time_s >= t_video1 - 0.05:  # loop over the video's 2 s
            win.set_time(t_video0)
            win.play()
        win.tick()
        app.processEvents()  # paints what changed: all plots, the frame, the pose
        busy += time.perf_counter() - t0
        n += 1
    win.pause()
    win.close()
    return n / seconds, 1000.0 * busy / max(n, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="play time per configuration (s)")
    ap.add_argument("--window-s", type=float, nargs="+", default=[5.0, 30.0], help="visible time windows (s)")
    ap.add_argument("--duration-s", type=float, default=60.0, help="length of the synthetic recording (s)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = build(Path(d), args.duration_s)
        print(f"session: 16 channels x 1 kHz x {args.duration_s:g} s + video pose (sports2d_walker_2s.mp4), "
              f"window 1400 x 900, {os.cpu_count()} CPUs, QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}")
        print(f"{'window s':>9} {'samples in view':>16} | {'downsampled fps':>16} {'ms/redraw':>10} | "
              f"{'all samples fps':>16} {'ms/redraw':>10}")
        for w in args.window_s:
            fps_d, ms_d = measure(path, downsample=True, window_s=w, seconds=args.seconds)
            fps_f, ms_f = measure(path, downsample=False, window_s=w, seconds=args.seconds)
            print(f"{w:9.1f} {int(w * 1000 * 16):16d} | {fps_d:16.1f} {ms_d:10.1f} | {fps_f:16.1f} {ms_f:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
