"""Viewer redraw rate while playing: 16 channels at 1 kHz plus video with its pose overlay, offscreen.

Builds a session (synthetic 16 x 1 kHz analog stream + the sample clip's video pose; the clip is copied beside it),
plays it at real speed for a few seconds per configuration and counts the frames actually rendered (paint events
received by the plots' viewport; each one shows the moved cursor and every plot scrolled; the video frame and the
pose are repainted when the frame changes). Display downsampling modes side by side: the min/max pyramid,
pyqtgraph's auto-downsampling, none.

Run: ``QT_QPA_PLATFORM=offscreen python benchmarks/bench_viewer.py [--seconds 4] [--window-s 5 10 30]
[--modes pyramid pyqtgraph none] [--page-modes pyramid]``
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
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "sample_data" / "video" / "sports2d_walker_2s.mp4"


def build(folder: Path, duration_s: float) -> Path:
    from fusionlab.viewer._synthetic import make_synthetic_session

    shutil.copy(CLIP, folder / CLIP.name)
    video = folder / "video.h5"
    subprocess.run([sys.executable, "-m", "fusionlab.cli", "ingest", str(folder / CLIP.name), "--subject-height-m",
                    "1.65", "-o", str(video)], check=True, capture_output=True)
    # the analog data start 2/3 of the duration before the video (which is at 0-2 s on the session clock), so the
    # visible window is full of samples at every width while the video plays
    return make_synthetic_session(folder / "bench.h5", n_channels=16, rate_hz=1000.0, duration_s=duration_s,
                                  start_s=-round(2 * duration_s / 3), video_session=video)


class PaintCounter:
    """Counts the paint events a widget actually receives (Qt event filter)."""

    def __init__(self, widget: Any) -> None:
        from pyqtgraph.Qt import QtCore

        class _Filter(QtCore.QObject):
            n = 0

            def eventFilter(self, _obj: Any, ev: Any) -> bool:  # noqa: N802 - Qt's name
                if ev.type() == QtCore.QEvent.Type.Paint:
                    self.n += 1
                return False

        self.filter = _Filter()
        widget.installEventFilter(self.filter)

    @property
    def n(self) -> int:
        return self.filter.n


def measure(path: Path, *, downsample: str, window_s: float, seconds: float, follow: str = "scroll",
            warmup_s: float = 0.5) -> dict[str, float]:
    """Frames rendered per second while playing at real speed.

    One loop iteration = `tick` (the cursor follows the wall clock and every plot scrolls with it) then
    ``app.processEvents()``, which delivers the pending paint events. A frame counts only when the plots'
    viewport really received a paint event in that iteration (event filter); video frames painted are counted
    the same way on the video viewport. Rendering is software (offscreen QPA), into the window's backing store.
    """
    import pyqtgraph as pg

    from fusionlab.viewer import make_window

    app = pg.mkQApp()
    win = make_window(path, downsample=downsample, window_s=window_s, follow=follow,
                      visible=[f"synthetic.analog/ch{c:02d}" for c in range(16)])
    win.resize(1400, 900)
    win.show()
    app.processEvents()
    plots = PaintCounter(win.glw.viewport())
    video = PaintCounter(win.video_view.viewport())
    t_video0 = float(win.pose.session_time_s[0])
    t_video1 = float(win.pose.session_time_s[-1])
    # loop over the video's 2 s (the window is full of samples there, see build)
    t_loop0 = t_video0
    win.set_time(t_loop0)
    app.processEvents()
    win.play()

    def loop(until: float) -> int:
        frames = 0
        while time.perf_counter() < until:
            if win.time_s >= t_video1 - 0.05:
                win.set_time(t_loop0)
                win.play()
            before = plots.n
            win.tick()
            app.processEvents()  # delivers the paint events: plots (scrolled, cursor moved), video frame, pose
            if plots.n > before:
                frames += 1
        return frames

    loop(time.perf_counter() + warmup_s)  # first decodes, first curve data: not counted
    n_video0 = video.n
    updates0 = win.n_curve_updates
    t_start = time.perf_counter()
    cpu0 = time.process_time()
    frames = loop(t_start + seconds)
    cpu = time.process_time() - cpu0
    elapsed = time.perf_counter() - t_start
    win.pause()
    out = {"fps": frames / elapsed, "ms": 1000.0 * elapsed / max(frames, 1),
           "cpu_ms": 1000.0 * cpu / max(frames, 1), "video_fps": (video.n - n_video0) / elapsed,
           "curve_updates_per_s": (win.n_curve_updates - updates0) / elapsed}
    win.close()
    app.processEvents()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0, help="play time per configuration (s)")
    ap.add_argument("--window-s", type=float, nargs="+", default=[5.0, 10.0, 30.0], help="visible time windows (s)")
    ap.add_argument("--duration-s", type=float, default=60.0, help="length of the synthetic recording (s)")
    ap.add_argument("--modes", nargs="+", default=["pyramid", "pyqtgraph", "none"],
                    help="downsampling modes measured with the view scrolling (cursor in the middle)")
    ap.add_argument("--page-modes", nargs="*", default=["pyramid"],
                    help="downsampling modes also measured with follow='page' (fixed window, the cursor moves)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = build(Path(d), args.duration_s)
        print(f"session: 16 channels x 1 kHz x {args.duration_s:g} s + video pose (sports2d_walker_2s.mp4), "
              f"window 1400 x 900, {os.cpu_count()} CPUs, QT_QPA_PLATFORM={os.environ['QT_QPA_PLATFORM']}")
        print("frames rendered per second, wall clock (CPU ms of this process per frame) [video frames painted/s];"
              f" load average at start {os.getloadavg()[0]:.1f}")
        cols = [(m, "scroll") for m in args.modes] + [(m, "page") for m in args.page_modes]
        print(f"{'window s':>9} {'samples':>8} | " + " | ".join(f"{m + ' ' + f:>26}" for m, f in cols))
        for w in args.window_s:
            cells = []
            for m, f in cols:
                r = measure(path, downsample=m, window_s=w, seconds=args.seconds, follow=f)
                cells.append(f"{r['fps']:6.1f} ({r['cpu_ms']:5.1f} ms) [{r['video_fps']:4.1f}]")
            print(f"{w:9.1f} {int(w * 1000 * 16):8d} | " + " | ".join(f"{c:>26}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
