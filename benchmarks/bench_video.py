#!/usr/bin/env python
"""Video pose benchmark: the plain sequential decode-then-infer loop against the pipelined reader, in one run.

Usage::

    python benchmarks/bench_video.py [--video PATH] [--repeat 2] [--workers 2]

Both cases call `fusionlab.adapters.video_mediapipe.read_video_pose` on the same file (default: the Sports2D
demo, 230 frames of 1768x994 VP9, from ../shared/data):

    sequential  ``workers=1``   decode one frame, analyse it, next frame (one thread)
    pipelined   ``workers=N``   one decoding thread + N inference threads, each with its own MediaPipe graphs

Both produce identical landmarks (checked). Repeats are interleaved (s p s p ...) so that drifts of the machine
hit both cases alike; the table reports the median wall time of each case, its CPU time (all threads of the
process, ``getrusage``) and the cores used by other processes meanwhile (``/proc/stat``), because the speed-up
needs a second core that nothing else is using. The target is a speed-up of at least 1.6x. The script prints a
report and exits 0 whatever the result; non-zero only on errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_VIDEO = HERE.parent.parent / "shared" / "data" / "video" / "sports2d" / "demo.mp4"
TARGET_SPEEDUP = 1.6


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _machine_busy_s() -> float:
    """CPU seconds used by everything on the machine since boot (Linux /proc/stat; NaN elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _run(video: Path, workers: int) -> tuple[float, float, float, np.ndarray, int]:
    """Wall time, CPU time of this process, CPU time of other processes (s), landmarks, frames."""
    from fusionlab.adapters.video_mediapipe import read_video_pose

    b0, c0, t0 = _machine_busy_s(), _cpu_s(), time.perf_counter()
    session = read_video_pose(video, workers=workers)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    others = max(0.0, _machine_busy_s() - b0 - cpu)
    pose = session.streams[0]
    return wall, cpu, others, pose.data, pose.n_samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, default=Path(os.environ.get("FUSIONLAB_BENCH_VIDEO", DEFAULT_VIDEO)))
    ap.add_argument("--repeat", type=int, default=2, help="interleaved repeats of each case (median reported)")
    ap.add_argument("--workers", type=int, default=2, help="inference threads of the pipelined case")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.video.is_file():
        print(f"video not found: {args.video}", file=sys.stderr)
        return 2
    _run(args.video, 1)  # warm-up: imports, MediaPipe graph set-up, file cache
    walls: dict[str, list[float]] = {"sequential": [], "pipelined": []}
    cpus: dict[str, list[float]] = {"sequential": [], "pipelined": []}
    others: dict[str, list[float]] = {"sequential": [], "pipelined": []}
    n_frames = 0
    ref: np.ndarray | None = None
    identical = True
    for _ in range(max(1, args.repeat)):
        for case, workers in (("sequential", 1), ("pipelined", args.workers)):
            wall, cpu, other, data, n_frames = _run(args.video, workers)
            walls[case].append(wall)
            cpus[case].append(cpu)
            others[case].append(other / wall)
            if ref is None:
                ref = data
            identical &= bool(np.array_equal(ref, data, equal_nan=True))
    seq, pipe = statistics.median(walls["sequential"]), statistics.median(walls["pipelined"])
    speedup = seq / pipe
    busy = max(statistics.median(v) for v in others.values())
    print(f"video: {args.video.name}, {n_frames} frames; {os.cpu_count()} cores; repeats: {args.repeat}")
    print()
    print(f"{'case':<12} {'workers':>7} {'frames':>7} {'wall s':>8} {'fps':>7} {'CPU s':>7} {'cores used':>10} "
          f"{'others':>7} {'speed-up':>9}")
    for case, workers, wall in (("sequential", 1, seq), ("pipelined", args.workers, pipe)):
        cpu = statistics.median(cpus[case])
        print(f"{case:<12} {workers:>7} {n_frames:>7} {wall:>8.2f} {n_frames / wall:>7.1f} {cpu:>7.2f} "
              f"{cpu / wall:>10.2f} {statistics.median(others[case]):>7.2f} {seq / wall:>8.2f}x")
    print("(cores used: this process's CPU time / wall time; others: cores used by other processes meanwhile)")
    print()
    print(f"all runs {'identical' if identical else 'DIFFERENT'}; wall times (s): "
          + "; ".join(f"{k} {', '.join(f'{w:.2f}' for w in v)}" for k, v in walls.items()))
    verdict = "PASS" if speedup >= TARGET_SPEEDUP else "FAIL"
    print(f"target: pipelined >= {TARGET_SPEEDUP:.1f}x faster than sequential: {verdict} ({speedup:.2f}x)")
    if busy > 0.3:
        print(f"note: other processes used {busy:.2f} cores during the run; the speed-up needs an idle second core, "
              "so this figure understates it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
