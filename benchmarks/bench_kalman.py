#!/usr/bin/env python
"""Kalman fusion kernel benchmark: fusionlab's batched filter + smoother against a per-channel filterpy loop.

Usage::

    python benchmarks/bench_kalman.py [--minutes 10] [--rate-hz 100] [--channels 12]

Both run the same model on the same data in one process: per channel a 3-state model (joint angle, angular rate,
gyroscope bias) measured by an angle (markers or video, heteroscedastic noise, gaps) and a gyroscope (rate + bias).

    filterpy   one ``filterpy.kalman.KalmanFilter`` per channel: ``predict()`` + ``update()`` every step, then
               ``rts_smoother`` (`fusionlab.fusion._reference.filterpy_smooth`)
    batched    `fusionlab.fusion.kalman_smooth`: all channels, numba-compiled loops (compiled before timing;
               the one-off compile time is printed separately)

The table gives wall times, the speed-up and the largest difference between the two results (target: at least
30x faster, differences <= 1e-9). Exits 0 whatever the result; non-zero only on errors.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

TARGET_SPEEDUP = 30.0
TARGET_DIFF = 1e-9


def make_problem(minutes: float, rate_hz: float, channels: int, seed: int = 0) -> dict[str, np.ndarray]:
    dt = 1.0 / rate_hz
    T = round(minutes * 60 * rate_hz)
    rng = np.random.default_rng(seed)
    q = 50.0
    F = np.array([[1.0, dt, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    Q = np.array([[q * dt**3 / 3, q * dt**2 / 2, 0.0], [q * dt**2 / 2, q * dt, 0.0], [0.0, 0.0, 1e-8]])
    H = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    t = np.arange(T) * dt
    stride = 1.1
    angle = np.stack([0.6 * np.sin(2 * np.pi * t / stride + c) + 0.2 * np.sin(4 * np.pi * t / stride + 0.5 * c)
                      for c in range(channels)])
    rate = np.gradient(angle, dt, axis=1)
    R = np.empty((channels, T, 2))
    R[..., 0] = (0.01 + 0.04 * rng.random((channels, T))) ** 2
    R[..., 1] = 0.05**2
    z = np.stack([angle, rate + 0.05], axis=2) + np.sqrt(R) * rng.standard_normal((channels, T, 2))
    for c in range(channels):  # occlusions: 2 % of the time, 0.2-2 s gaps in the angle
        for start in rng.integers(0, T, size=max(1, T // int(60 * rate_hz))):
            z[c, start:start + int(rng.uniform(0.2, 2.0) * rate_hz), 0] = np.nan

    def per(a: np.ndarray) -> np.ndarray:
        return np.broadcast_to(a, (channels, *a.shape)).copy()

    return {"F": per(F), "Q": per(Q), "H": per(H), "z": z, "R": R, "x0": np.zeros((channels, 3)),
            "P0": per(np.eye(3))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate-hz", type=float, default=100.0)
    ap.add_argument("--channels", type=int, default=12)
    args = ap.parse_args(argv)
    from fusionlab.fusion import kalman_smooth
    from fusionlab.fusion._reference import filterpy_smooth

    p = make_problem(args.minutes, args.rate_hz, args.channels)
    C, T, _ = p["z"].shape
    t0 = time.perf_counter()
    small = {k: (v[:, :10] if k in ("z", "R") else v) for k, v in p.items()}
    kalman_smooth(**small)  # compile (or load the cached machine code)
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    out = kalman_smooth(**p)
    batched_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = filterpy_smooth(**p)
    filterpy_s = time.perf_counter() - t0
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(out[:4], ref, strict=True)]

    print(f"problem: {C} channels x {T} steps ({args.minutes:g} min at {args.rate_hz:g} Hz), state 3, "
          f"measurements 2 (angle with gaps, gyroscope)")
    print(f"compile / load of the batched kernels (once per environment / process): {compile_s:.2f} s\n")
    print(f"{'case':<10} {'wall s':>9} {'steps/s':>12} {'speed-up':>9}")
    print(f"{'filterpy':<10} {filterpy_s:9.2f} {C * T / filterpy_s:12.0f} {1.0:8.2f}x")
    print(f"{'batched':<10} {batched_s:9.2f} {C * T / batched_s:12.0f} {filterpy_s / batched_s:8.1f}x")
    print(f"\nlargest difference batched - filterpy: filtered x {diffs[0]:.1e}, P {diffs[1]:.1e}; "
          f"smoothed x {diffs[2]:.1e}, P {diffs[3]:.1e}")
    ok_speed = filterpy_s / batched_s >= TARGET_SPEEDUP
    ok_diff = max(diffs) <= TARGET_DIFF
    print(f"target: >= {TARGET_SPEEDUP:g}x faster: {'PASS' if ok_speed else 'FAIL'} "
          f"({filterpy_s / batched_s:.1f}x); differences <= {TARGET_DIFF:g}: {'PASS' if ok_diff else 'FAIL'} "
          f"({max(diffs):.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
