#!/usr/bin/env python
"""Ingest benchmark: fusionlab's C3D ingest against the bare ezc3d read of the same file.

Usage::

    python benchmarks/bench_ingest.py [--minutes 10] [--channels 64] [--repeat 3] [--keep] [--breakdown]

A synthetic but physically plausible C3D file (treadmill walking: 40 markers at 100 Hz in mm, ``--channels``
analog channels at 1000 Hz stored as float, 12 of them the channels of two type-2 force plates) is generated once
and cached under ``benchmarks/_work/`` (git-ignored). Each measured case then runs in a fresh Python process, so
its peak resident memory (``getrusage`` ``ru_maxrss`` of the process and, separately, of its waited-for children,
i.e. the reader child that ``ingest`` forks) is its own:

    a  ``ezc3d.c3d(path)``                                 the bare read (the peer)
    b  ``ezc3d.c3d(path, extract_forceplat_data=True)``    ezc3d's read with its own force-plate extraction
    c  ``fusionlab.ingest.ingest([path], out)``            full ingest, reader isolated in a forked child
    d  ``fusionlab.ingest.ingest([path], out, isolate=False)``

fusionlab's C3D reader lets ezc3d read the header and parameters only and reads the data section with NumPy
(``fusionlab.adapters._c3d_data``), so c and d can be faster than a.

Repeats are interleaved (a b c d a b c d ...) so that slow drifts of the machine hit every case alike. The script
prints a table and a target line; it exits 0 whatever the result (it is a report, not a test) and non-zero only on
errors. ``--breakdown`` adds a stage-by-stage timing of one in-process ingest (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
GENERATOR_VERSION = 1  # bump when the synthetic file changes, so cached files are regenerated
POINT_RATE = 100.0
ANALOG_RATE = 1000.0
N_MARKERS = 40
N_PLATE_CHANNELS = 12
MB = 1e6  # every size and rate in this script is in MB = 10**6 bytes

CASES: list[tuple[str, str, str]] = [
    ("a", "bare", "ezc3d.c3d(path)"),
    ("b", "forceplat", "ezc3d.c3d(path, extract_forceplat_data=True)"),  # reference, not the peer
    ("c", "ingest", "ingest([path], out)  (isolated, default)"),
    ("d", "ingest_inproc", "ingest([path], out, isolate=False)"),
]


# ===================================================================================== synthetic recording
def _shaped_noise(rng: Any, n_channels: int, n: int, fs: float, low_hz: float | None, high_hz: float | None,
                  order: int = 4) -> Any:
    """Gaussian noise with a Butterworth-like band (magnitude response applied in the frequency domain).

    Each channel is normalised to unit standard deviation. ``low_hz`` None: low-pass; ``high_hz`` None: high-pass.
    """
    import numpy as np

    x = rng.standard_normal((n_channels, n))
    spec = np.fft.rfft(x, axis=-1)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    gain = np.ones_like(f)
    if high_hz is not None:
        gain /= np.sqrt(1.0 + (f / high_hz) ** (2 * order))
    if low_hz is not None:
        with np.errstate(divide="ignore"):
            gain /= np.sqrt(1.0 + (low_hz / np.maximum(f, 1e-12)) ** (2 * order))
    spec *= gain
    y = np.fft.irfft(spec, n=n, axis=-1)
    y /= y.std(axis=-1, keepdims=True)
    return y


def _bump(tau: Any, centre: float, width: float) -> Any:
    import numpy as np

    return np.exp(-(((tau - centre) / width) ** 2))


_MARKERS: list[tuple[str, float, float, float, str, str]] = [
    # name, x (medio-lateral, + right), y (antero-posterior, + forward), z (up) in mm; segment; side
    ("LFHD", -70, 80, 1690, "head", ""), ("RFHD", 70, 80, 1690, "head", ""),
    ("LBHD", -75, -90, 1680, "head", ""), ("RBHD", 75, -90, 1680, "head", ""),
    ("C7", 0, -70, 1480, "trunk", ""), ("T10", 0, -110, 1250, "trunk", ""),
    ("CLAV", 0, 70, 1430, "trunk", ""), ("STRN", 0, 110, 1270, "trunk", ""),
    ("RBAK", 90, -120, 1340, "trunk", ""), ("SACR", 0, -130, 1000, "pelvis", ""),
    ("LASI", -120, 90, 1010, "pelvis", "L"), ("RASI", 120, 90, 1010, "pelvis", "R"),
    ("LPSI", -50, -120, 1040, "pelvis", "L"), ("RPSI", 50, -120, 1040, "pelvis", "R"),
    ("LSHO", -180, -10, 1450, "shoulder", "L"), ("RSHO", 180, -10, 1450, "shoulder", "R"),
    ("LUPA", -200, -30, 1300, "upperarm", "L"), ("RUPA", 200, -30, 1300, "upperarm", "R"),
    ("LELB", -210, -40, 1140, "elbow", "L"), ("RELB", 210, -40, 1140, "elbow", "R"),
    ("LFRM", -215, -20, 1020, "forearm", "L"), ("RFRM", 215, -20, 1020, "forearm", "R"),
    ("LWRA", -200, 10, 880, "wrist", "L"), ("RWRA", 200, 10, 880, "wrist", "R"),
    ("LWRB", -240, -20, 880, "wrist", "L"), ("RWRB", 240, -20, 880, "wrist", "R"),
    ("LFIN", -220, 0, 800, "hand", "L"), ("RFIN", 220, 0, 800, "hand", "R"),
    ("LTHI", -150, 20, 720, "thigh", "L"), ("RTHI", 150, 20, 720, "thigh", "R"),
    ("LKNE", -130, 10, 500, "knee", "L"), ("RKNE", 130, 10, 500, "knee", "R"),
    ("LTIB", -125, 10, 300, "shank", "L"), ("RTIB", 125, 10, 300, "shank", "R"),
    ("LANK", -125, -20, 80, "ankle", "L"), ("RANK", 125, -20, 80, "ankle", "R"),
    ("LHEE", -110, -80, 50, "heel", "L"), ("RHEE", 110, -80, 50, "heel", "R"),
    ("LTOE", -100, 130, 40, "toe", "L"), ("RTOE", 100, 130, 40, "toe", "R"),
]
# antero-posterior swing amplitude (mm) and foot-lift height (mm) by segment, relative to the pelvis
_LEG_AP = {"thigh": 70.0, "knee": 140.0, "shank": 210.0, "ankle": 290.0, "heel": 300.0, "toe": 310.0}
_LEG_LIFT = {"thigh": 10.0, "knee": 35.0, "shank": 50.0, "ankle": 80.0, "heel": 110.0, "toe": 70.0}
_ARM_AP = {"shoulder": 15.0, "upperarm": 45.0, "elbow": 90.0, "forearm": 120.0, "wrist": 160.0, "hand": 180.0}


def make_c3d(path: Path, minutes: float, channels: int, seed: int = 20240611) -> dict[str, Any]:
    """Write a synthetic treadmill-walking C3D (float storage) with ezc3d's writer; return a description."""
    import ezc3d
    import numpy as np

    rng = np.random.default_rng(seed)
    n_frames = round(minutes * 60 * POINT_RATE)
    if not 1 <= n_frames <= 65535:
        raise SystemExit(f"--minutes {minutes}: {n_frames} frames at {POINT_RATE:g} Hz; the C3D header holds 1..65535")
    ratio = int(ANALOG_RATE / POINT_RATE)
    n_an = n_frames * ratio
    fs = ANALOG_RATE
    t = np.arange(n_an) / fs

    # ---- gait phase: ~1.08 s strides with slow stride-to-stride variability (a few %)
    stride_hz = (1.0 / 1.08) * (1.0 + 0.025 * _shaped_noise(rng, 1, n_an, fs, None, 0.05)[0])
    cycles = np.cumsum(stride_hz) / fs + rng.uniform(0, 1)  # right heel strike at each integer
    phase = {"R": cycles % 1.0, "L": (cycles + 0.5) % 1.0}
    stance = 0.62
    body_weight = 72.0 * 9.81
    amp_var = 1.0 + 0.04 * _shaped_noise(rng, 2, n_an, fs, None, 0.3)  # per-side stride amplitude variation

    # ---- analog channels (1, channels, n_an)
    rest = channels - N_PLATE_CHANNELS
    if rest < 0:
        raise SystemExit(f"--channels {channels}: need at least {N_PLATE_CHANNELS} (two force plates)")
    n_acc = rest * 12 // 52
    n_trig = rest * 4 // 52
    n_aux = rest * 4 // 52
    n_emg = rest - n_acc - n_trig - n_aux
    analogs = np.empty((1, channels, n_an), dtype=np.float64)
    labels: list[str] = []
    units: list[str] = []
    # force plates: treadmill belts (left plate 1, right plate 2), 500 x 1600 mm, sensor origin 40 mm below surface
    origin_z = -40.0
    hum = np.sin(2 * np.pi * 50.0 * t)  # a little mains pick-up
    for k, side in enumerate(("L", "R")):
        ph = phase[side]
        in_stance = ph < stance
        tau = np.where(in_stance, ph / stance, 0.0)
        s = np.sin(np.pi * tau)
        fz = body_weight * amp_var[k] * s ** 0.35 * (1.02 * _bump(tau, 0.22, 0.11) + 0.98 * _bump(tau, 0.78, 0.11)
                                                     + 0.70 * _bump(tau, 0.5, 0.25))
        fy = -0.21 * body_weight * amp_var[k] * np.sin(2 * np.pi * tau) * s ** 0.5  # braking, then propulsion
        fx = (0.05 if side == "R" else -0.05) * body_weight * s  # medio-lateral
        cop_y = 330.0 - 600.0 * tau  # heel to toe while the belt carries the foot back (local, mm)
        cop_x = (15.0 if side == "R" else -15.0) + 8.0 * np.sin(2 * np.pi * tau)
        tz = 4000.0 * np.sin(2 * np.pi * tau) * s  # free moment, N.mm
        fz, fy, fx = fz * in_stance, fy * in_stance, fx * in_stance
        cop_x, cop_y, tz = cop_x * in_stance, cop_y * in_stance, tz * in_stance
        # moments about the sensor origin of a force applied at (cop_x, cop_y, 0) of the surface
        mx = cop_y * fz + origin_z * fy
        my = -origin_z * fx - cop_x * fz
        mz = cop_x * fy - cop_y * fx + tz
        noise = _shaped_noise(rng, 6, n_an, fs, None, 120.0)
        sd = np.array([1.5, 1.5, 2.5, 800.0, 800.0, 300.0])  # N, N, N, N.mm x 3
        offset = rng.normal(0, 1, 6) * sd
        for j, (name, sig) in enumerate((("Fx", fx), ("Fy", fy), ("Fz", fz), ("Mx", mx), ("My", my), ("Mz", mz))):
            analogs[0, k * 6 + j] = sig + offset[j] + sd[j] * noise[j] + 0.2 * sd[j] * hum
            labels.append(f"Force.{name}{k + 1}")
            units.append("N" if name.startswith("F") else "Nmm")
    ch = N_PLATE_CHANNELS
    # EMG: 20-450 Hz band-limited noise, amplitude-modulated by gait-phase muscle activation, in V (tens of uV to mV)
    if n_emg:
        carrier = _shaped_noise(rng, n_emg, n_an, fs, 20.0, 450.0)
        muscles = ["TA", "SOL", "GM", "GL", "VL", "VM", "RF", "BF", "ST", "GMED", "GMAX", "ADD", "TFL", "PL",
                   "ES", "RA"]
        for i in range(n_emg):
            side = "L" if i % 2 == 0 else "R"
            centre, width = rng.uniform(0, 1), rng.uniform(0.08, 0.25)
            d = (phase[side] - centre + 0.5) % 1.0 - 0.5
            envelope = 0.03 + np.exp(-((d / width) ** 2))
            amp = rng.uniform(1e-4, 8e-4)  # V
            analogs[0, ch] = amp * envelope * carrier[i] + 2e-6 * hum
            labels.append(f"EMG.{side}{muscles[(i // 2) % len(muscles)]}{'' if i < 32 else i // 32}")
            units.append("V")
            ch += 1
        del carrier
    # accelerometers: gait-periodic accelerations with heel-strike transients, plus low-pass noise, in g
    if n_acc:
        noise = _shaped_noise(rng, n_acc, n_an, fs, None, 30.0)
        for i in range(n_acc):
            side = "L" if (i // 3) % 2 == 0 else "R"
            axis = "XYZ"[i % 3]
            ph = phase[side]
            periodic = sum(rng.uniform(0.05, 0.4) / h * np.sin(2 * np.pi * h * cycles + rng.uniform(0, 6.3))
                           for h in range(1, 6))
            transient = 1.5 * np.exp(-ph / 0.012) * np.sin(2 * np.pi * 30.0 * ph / stance)  # heel-strike shock
            gravity = 1.0 if axis == "Z" else 0.0
            analogs[0, ch] = gravity + periodic + transient + 0.03 * noise[i]
            labels.append(f"IMU{i // 3 + 1}.Acc{axis}")
            units.append("g")
            ch += 1
    # foot switches: 0 / 5 V during stance with 3 ms edges
    for i in range(n_trig):
        side = "L" if i % 2 == 0 else "R"
        on = (phase[side] < stance).astype(float)
        edge = np.ones(3) / 3.0
        analogs[0, ch] = 5.0 * np.convolve(on, edge, mode="same") + 0.01 * rng.standard_normal(n_an)
        labels.append(f"Footswitch.{side}{i // 2 + 1}")
        units.append("V")
        ch += 1
    # auxiliary: slow sensor signals (low-pass noise below 5 Hz plus a drift)
    if n_aux:
        noise = _shaped_noise(rng, n_aux, n_an, fs, None, 5.0)
        drift = _shaped_noise(rng, n_aux, n_an, fs, None, 0.02)
        for i in range(n_aux):
            analogs[0, ch] = 0.5 * noise[i] + 0.2 * drift[i] + rng.uniform(-1, 1)
            labels.append(f"Aux.{i + 1}")
            units.append("V")
            ch += 1
    assert ch == channels, (ch, channels)
    # a 16-bit ADC behind every channel: values sit on a grid of range / 65536 (as in real float C3D files)
    for j, u in enumerate(units):
        full_scale = {"N": 5000.0, "Nmm": 1.0e6, "V": 10.0 if not labels[j].startswith("EMG") else 5e-3,
                      "g": 16.0}[u]
        lsb = 2 * full_scale / 65536
        np.round(analogs[0, j] / lsb, out=analogs[0, j])
        analogs[0, j] *= lsb

    # ---- markers (4, 40, n_frames) in mm: body moving on a treadmill
    pc = cycles[::ratio]
    pph = {sd: phase[sd][::ratio] for sd in ("L", "R")}
    wander = 25.0 * _shaped_noise(rng, 3, n_frames, POINT_RATE, None, 0.05)  # subject drifting on the belt
    wander[2] *= 0.1
    bob = 18.0 * np.cos(4 * np.pi * pc)  # trunk vertical oscillation, twice per stride
    sway = 20.0 * np.sin(2 * np.pi * pc)  # medio-lateral sway, once per stride
    points = np.ones((4, N_MARKERS, n_frames))
    tissue = _shaped_noise(rng, 3 * N_MARKERS, n_frames, POINT_RATE, None, 4.0).reshape(3, N_MARKERS, n_frames)
    for m, (_name, x, y, z, seg, side) in enumerate(_MARKERS):
        px = x + wander[0] + sway
        py = y + wander[1]
        pz = z + wander[2] + bob * (0.3 if seg in _LEG_AP else 1.0)
        if seg in _LEG_AP:
            ph = pph[side]
            a = _LEG_AP[seg]
            py = py + a * np.cos(2 * np.pi * ph) + 0.15 * a * np.cos(4 * np.pi * ph + 0.5)
            swing = np.clip((ph - stance) / (1 - stance), 0, 1)
            pz = pz + _LEG_LIFT[seg] * np.sin(np.pi * swing) ** 2
        elif seg in _ARM_AP:
            other = pph["R" if side == "L" else "L"]
            py = py + _ARM_AP[seg] * np.cos(2 * np.pi * other)
            pz = pz + 0.15 * _ARM_AP[seg] * (1 - np.cos(2 * np.pi * other)) / 2
        points[0, m] = px + 1.5 * tissue[0, m] + 0.2 * rng.standard_normal(n_frames)
        points[1, m] = py + 1.5 * tissue[1, m] + 0.2 * rng.standard_normal(n_frames)
        points[2, m] = pz + 1.5 * tissue[2, m] + 0.2 * rng.standard_normal(n_frames)
    # occlusion gaps on a few markers (hands, toes, a back marker): a gap every ~30 s, 0.05-0.8 s long
    n_gap_frames = 0
    for name in ("LFIN", "RFIN", "LTOE", "RBAK", "LWRB"):
        m = [mk[0] for mk in _MARKERS].index(name)
        for start in rng.integers(0, n_frames, size=max(1, n_frames // 3000)):
            length = int(rng.integers(5, 80))
            points[:3, m, start:start + length] = np.nan
            n_gap_frames += min(length, n_frames - start)

    c = ezc3d.c3d()
    c["parameters"]["POINT"]["RATE"]["value"] = [POINT_RATE]
    c["parameters"]["POINT"]["LABELS"]["value"] = [mk[0] for mk in _MARKERS]
    c["parameters"]["POINT"]["DESCRIPTIONS"]["value"] = [f"{mk[4]} marker" for mk in _MARKERS]
    c["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    c["parameters"]["ANALOG"]["RATE"]["value"] = [ANALOG_RATE]
    c["parameters"]["ANALOG"]["LABELS"]["value"] = labels
    c["parameters"]["ANALOG"]["UNITS"]["value"] = units
    c["data"]["points"] = points
    c["data"]["analogs"] = analogs

    def int_param(name: str, value: Any) -> None:
        # ezc3d's add_parameter stores Python ints as FLOAT; its force-platform code wants INT parameters
        c.add_parameter("FORCE_PLATFORM", name, np.asarray(value, dtype=float))
        c["parameters"]["FORCE_PLATFORM"][name]["type"] = ezc3d.ezc3d.INT

    int_param("USED", [2])
    int_param("TYPE", [2, 2])
    int_param("ZERO", [1, 0])
    corners = np.zeros((3, 4, 2))
    for k, (x0, x1) in enumerate(((-510.0, -10.0), (10.0, 510.0))):  # left belt, right belt
        corners[0, :, k] = [x1, x0, x0, x1]
        corners[1, :, k] = [800.0, 800.0, -800.0, -800.0]
    c.add_parameter("FORCE_PLATFORM", "CORNERS", corners)
    c.add_parameter("FORCE_PLATFORM", "ORIGIN", np.array([[0.0, 0.0], [0.0, 0.0], [origin_z, origin_z]]))
    int_param("CHANNEL", np.arange(1, 13).reshape(2, 6).T)
    c.add_parameter("MANUFACTURER", "COMPANY", ["fusionlab benchmark"])
    c.add_parameter("MANUFACTURER", "SOFTWARE", ["benchmarks/bench_ingest.py (synthetic)"])
    c.add_parameter("PROCESSING", "Bodymass", [72.0])
    c.add_parameter("PROCESSING", "Height", [1750.0])
    # gait events of the first strides (C3D parameter dimensions are bytes: at most 255 events)
    strikes = np.flatnonzero(np.diff(np.floor(cycles)) > 0)
    n_ev = 0
    for i in strikes[:60]:
        ts = float(t[i + 1])
        for label, context, dt in (("Foot Strike", "Right", 0.0), ("Foot Off", "Right", stance * 1.08),
                                   ("Foot Strike", "Left", 0.54), ("Foot Off", "Left", 0.54 + stance * 1.08 - 1.08)):
            if 0 <= ts + dt < t[-1]:
                c.add_event([0.0, ts + dt], context=context, label=label)
                n_ev += 1
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        c.write(str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"frames": n_frames, "analog_samples": n_an, "channels": channels, "emg": n_emg, "acc": n_acc,
            "footswitch": n_trig, "aux": n_aux, "events": n_ev, "gap_frames": n_gap_frames}


def check_synthetic(path: Path) -> str:
    """Sanity check of the force plates ezc3d computes from the file (a short read is enough for the report)."""
    import ezc3d
    import numpy as np

    c = ezc3d.c3d(str(path), extract_forceplat_data=True)
    out = []
    for k, pf in enumerate(c["data"]["platform"]):
        fz = np.abs(pf["force"][2])
        loaded = fz > 50.0
        cop = pf["center_of_pressure"][:, loaded]
        out.append(f"plate {k + 1}: peak |Fz| {fz.max():.0f} N, loaded {100 * loaded.mean():.0f} % of samples, CoP x "
                   f"{cop[0].min():.0f}..{cop[0].max():.0f} mm, y {cop[1].min():.0f}..{cop[1].max():.0f} mm")
    return "; ".join(out)


# ===================================================================================== one measured case (child)
def _vmrss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return float("nan")


def _maxrss_mb(who: int) -> float:
    r = resource.getrusage(who).ru_maxrss  # KiB on Linux, bytes on macOS
    return r / MB if sys.platform == "darwin" else r * 1024 / MB


def run_case(case: str, src: str, out: str) -> dict[str, Any]:
    """Run one case in this (fresh) process; return wall time, CPU time and peak RSS."""
    import ezc3d
    import h5py  # noqa: F401  (imported before timing, like numpy and ezc3d, in every case alike)
    import numpy  # noqa: F401

    import fusionlab.ingest

    out_p = Path(out)
    for p in (out_p, out_p.with_name(f".{out_p.name}.lock")):
        p.unlink(missing_ok=True)
    base_rss = _vmrss_mb()
    children_before = _maxrss_mb(resource.RUSAGE_CHILDREN)  # h5py's import runs a helper process
    c0 = os.times()
    t0 = time.perf_counter()
    if case == "bare":
        obj: Any = ezc3d.c3d(src)
    elif case == "forceplat":
        obj = ezc3d.c3d(src, extract_forceplat_data=True)
    elif case == "ingest":
        obj = fusionlab.ingest.ingest([src], out_p)
    elif case == "ingest_inproc":
        obj = fusionlab.ingest.ingest([src], out_p, isolate=False)
    else:
        raise SystemExit(f"unknown case {case!r}")
    wall = time.perf_counter() - t0
    c1 = os.times()
    result = {
        "case": case, "wall_s": wall,
        "cpu_self_s": (c1.user - c0.user) + (c1.system - c0.system),
        "cpu_children_s": (c1.children_user - c0.children_user) + (c1.children_system - c0.children_system),
        "base_rss_mb": base_rss,
        "maxrss_self_mb": _maxrss_mb(resource.RUSAGE_SELF),
        "maxrss_children_mb": _maxrss_mb(resource.RUSAGE_CHILDREN),
        "maxrss_children_before_mb": children_before,
        "out_bytes": out_p.stat().st_size if case.startswith("ingest") else None,
    }
    if case.startswith("ingest"):
        result["streams"] = list(obj.streams)
    t1 = time.perf_counter()
    del obj  # ezc3d's object (C++ data behind it) is freed here, after the timed call
    result["free_s"] = time.perf_counter() - t1
    return result


# ===================================================================================== breakdown (opt-in)
def run_breakdown(src: str, out: str) -> dict[str, Any]:
    """Time the stages of one in-process ingest by wrapping the functions it calls (wall clock, s)."""
    import functools
    import zlib

    import numpy as np

    import fusionlab.adapters._c3d_data as c3d_data
    import fusionlab.adapters._common as common
    import fusionlab.adapters.c3d as c3d_mod
    import fusionlab.ingest as ing
    import fusionlab.persist as persist

    totals: dict[str, float] = {}
    counts: dict[str, int] = {}

    def wrap(owner: Any, attr: str, key: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                totals[key] = totals.get(key, 0.0) + time.perf_counter() - t
                counts[key] = counts.get(key, 0) + 1

        setattr(owner, attr, timed)

    per_stream: dict[str, float] = {}
    orig_write_array = persist._write_array

    def write_array(group: Any, name: str, array: Any, dtype: str) -> int:
        t = time.perf_counter()
        try:
            return orig_write_array(group, name, array, dtype)
        finally:
            dt = time.perf_counter() - t
            key = f"{group.name.rsplit('/', 1)[-1]}/{name} {tuple(array.shape)}"
            per_stream[key] = per_stream.get(key, 0.0) + dt
            totals["write_array"] = totals.get("write_array", 0.0) + dt

    persist._write_array = write_array
    wrap(c3d_mod, "check_c3d", "check_c3d")
    wrap(c3d_mod, "read_c3d_content", "read_c3d_content")
    wrap(c3d_data, "_read_parameters", "ezc3d: header + parameters (cut copy)")
    wrap(c3d_data, "_read_data", "NumPy: data section")
    wrap(c3d_mod, "compute_platforms", "compute_platforms")
    wrap(common, "file_sha256", "sha256")
    wrap(c3d_mod, "_forceplate_streams", "_forceplate_streams")
    wrap(c3d_mod, "read_c3d", "read_c3d total")
    wrap(persist, "save_session", "save_session (staging) total")
    wrap(ing, "save_session", "save_session (staging) total")
    wrap(ing, "merge_file_into", "merge_file_into")
    wrap(ing, "_ensure_reference_clock", "_ensure_reference_clock")
    wrap(os, "fsync", "os.fsync")
    wrap(shutil, "copyfile", "shutil.copyfile")

    Path(out).unlink(missing_ok=True)
    t0 = time.perf_counter()
    ing.ingest([src], out, isolate=False)
    total = time.perf_counter() - t0
    stage_s, stage_n = dict(totals), dict(counts)  # snapshot: the codec benchmark below must not add to them

    # codec micro-benchmark on the analog array, single thread, as _write_array does it per 1 MiB chunk
    data = c3d_data.read_c3d_content(src).analogs[0].T  # (n, ch), as read_c3d gives it to the writer
    rows = max(1, persist.CHUNK_TARGET_BYTES // (data.shape[1] * 4))
    conv = shuf = comp = nan = 0.0
    raw_bytes = comp_bytes = 0
    for start in range(0, data.shape[0], rows):
        t = time.perf_counter()
        block = np.asarray(data[start:start + rows], dtype=np.float32)
        t1 = time.perf_counter()
        np.count_nonzero(np.isnan(block))
        t2 = time.perf_counter()
        raw = np.ascontiguousarray(block).view(np.uint8).reshape(-1, 4).T.tobytes()
        t3 = time.perf_counter()
        z = zlib.compress(raw, persist.GZIP_LEVEL)
        t4 = time.perf_counter()
        conv += t1 - t
        nan += t2 - t1
        shuf += t3 - t2
        comp += t4 - t3
        raw_bytes += len(raw)
        comp_bytes += len(z)
    return {"total_s": total, "totals": stage_s, "counts": stage_n, "per_stream": per_stream,
            "codec": {"rows_per_chunk": rows, "convert_s": conv, "nan_count_s": nan, "shuffle_s": shuf,
                      "zlib_s": comp, "raw_mb": raw_bytes / MB, "compressed_mb": comp_bytes / MB,
                      "threads": max(1, min(4, os.cpu_count() or 1))}}


def print_breakdown(b: dict[str, Any], src_mb: float) -> None:
    tot, cnt = b["totals"], b["counts"]
    g = tot.get
    content = g("read_c3d_content", 0.0)
    params = g("ezc3d: header + parameters (cut copy)", 0.0)
    numpy_data = g("NumPy: data section", 0.0)
    read_total = g("read_c3d total", 0.0)
    save_total = g("save_session (staging) total", 0.0)
    write_arr = g("write_array", 0.0)
    fsync = g("os.fsync", 0.0)
    rows = [
        ("read_c3d", read_total, ""),
        ("  check_c3d (pure-Python header walk)", g("check_c3d", 0.0), ""),
        ("  read_c3d_content (header, parameters, data)", content, ""),
        ("    ezc3d: header + parameters (cut copy)", params, ""),
        ("    NumPy: data section (chunks -> float64)", numpy_data, ""),
        ("    rest (parameter walk, ezc3d's post-read rules)", content - params - numpy_data, ""),
        ("  compute_platforms (NumPy, 2 plates)", g("compute_platforms", 0.0), ""),
        ("  sha256 of the source", g("sha256", 0.0), ""),
        ("  _forceplate_streams (scale to SI, NaN CoP)", g("_forceplate_streams", 0.0), ""),
        ("  rest (unit scaling in place, streams, events)", read_total - g("check_c3d", 0.0) - content
         - g("compute_platforms", 0.0) - g("sha256", 0.0) - g("_forceplate_streams", 0.0), ""),
        ("save_session -> staging file", save_total, ""),
        ("  _write_array (convert, shuffle, gzip, write)", write_arr, ""),
        ("  rest (transaction: create, fsync, rename)", save_total - write_arr, ""),
        ("transaction into the session (merge)", b["total_s"] - read_total - save_total, ""),
        ("  merge_file_into (h5py copy of chunks)", g("merge_file_into", 0.0), ""),
        ("  os.fsync (all calls, both transactions)", fsync, f"{cnt.get('os.fsync', 0)} calls"),
        ("  shutil.copyfile (existing session copy)", g("shutil.copyfile", 0.0), ""),
        ("total ingest(isolate=False)", b["total_s"], f"{src_mb / b['total_s']:.0f} MB/s"),
    ]
    print("\nBreakdown of one ingest(isolate=False) (wall s; nested rows are parts of the row above):")
    for name, v, note in rows:
        print(f"  {name:<50} {v:8.2f}  {100 * v / b['total_s']:5.1f} %  {note}")
    print("  _write_array per dataset:")
    for k, v in sorted(b["per_stream"].items(), key=lambda kv: -kv[1]):
        print(f"    {k:<48} {v:8.2f}")
    cd = b["codec"]
    single = cd["convert_s"] + cd["nan_count_s"] + cd["shuffle_s"] + cd["zlib_s"]
    print(f"  analog codec, single thread ({cd['rows_per_chunk']} rows/chunk): float64->float32 "
          f"{cd['convert_s']:.2f} s, NaN count {cd['nan_count_s']:.2f} s, byte shuffle {cd['shuffle_s']:.2f} s, "
          f"zlib level 1 {cd['zlib_s']:.2f} s "
          f"= {single:.2f} s for {cd['raw_mb']:.0f} MB -> {cd['compressed_mb']:.0f} MB "
          f"(ratio {cd['raw_mb'] / max(cd['compressed_mb'], 1e-9):.2f}); pool of {cd['threads']} thread(s)")


# ===================================================================================== driver
def _spawn(args: list[str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        raise SystemExit(f"error: {' '.join(args[:2])} failed with exit status {proc.returncode}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"error: {' '.join(args[:2])} printed no result:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def _revision() -> str:
    """Git revision of the checkout (read only), with '+dirty' when fusionlab/ or adapters/ have local changes."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "fusionlab", "adapters"], cwd=HERE.parent,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "(no git revision)"
    return f"{rev}{'+dirty' if dirty else ''}"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _fmt_row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="recording length (default 10)")
    ap.add_argument("--channels", type=int, default=64, help="analog channels at 1000 Hz, >= 12 (default 64)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each case (default 3)")
    ap.add_argument("--keep", action="store_true", help="keep the .h5 files written under benchmarks/_work/")
    ap.add_argument("--breakdown", action="store_true",
                    help="also time the stages of one in-process ingest (one extra run)")
    ap.add_argument("--_run", nargs=3, metavar=("CASE", "SRC", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--_breakdown", nargs=2, metavar=("SRC", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--_generate", nargs=3, metavar=("PATH", "MINUTES", "CHANNELS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._run:  # child: one measured case
        print(json.dumps(run_case(*args._run)))
        return 0
    if args._breakdown:
        print(json.dumps(run_breakdown(*args._breakdown)))
        return 0
    if args._generate:
        path, minutes, channels = args._generate
        info = make_c3d(Path(path), float(minutes), int(channels))
        info["check"] = check_synthetic(Path(path))
        print(json.dumps(info))
        return 0

    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if not 1 <= round(args.minutes * 60 * POINT_RATE) <= 65535:
        ap.error(f"--minutes must give 1..65535 frames at {POINT_RATE:g} Hz (the C3D header's limit): 0.01..10.9")
    if args.channels < N_PLATE_CHANNELS:
        ap.error(f"--channels must be at least {N_PLATE_CHANNELS} (the two force plates)")
    WORK.mkdir(parents=True, exist_ok=True)
    src = WORK / f"synthetic_{args.minutes:g}min_{args.channels}ch_v{GENERATOR_VERSION}.c3d"
    if not src.exists():
        print(f"generating {src.relative_to(HERE.parent)} (once; cached) ...", flush=True)
        t = time.perf_counter()
        info = _spawn(["--_generate", str(src), str(args.minutes), str(args.channels)], timeout=3600)
        print(f"  {info['frames']} frames x {N_MARKERS} markers at {POINT_RATE:g} Hz "
              f"({info['gap_frames']} gap frames), "
              f"{info['analog_samples']} samples x {info['channels']} analog channels at {ANALOG_RATE:g} Hz "
              f"(12 force-plate, {info['emg']} EMG, {info['acc']} accelerometer, {info['footswitch']} foot switch, "
              f"{info['aux']} aux), {info['events']} events; {time.perf_counter() - t:.0f} s")
        print(f"  check: {info['check']}")
    src_bytes = src.stat().st_size
    src_mb = src_bytes / MB
    with src.open("rb") as fh:  # warm the page cache: every case reads the file from memory
        while fh.read(1 << 24):
            pass

    n_frames = round(args.minutes * 60 * POINT_RATE)
    n_an = n_frames * int(ANALOG_RATE / POINT_RATE)
    copy_markers = n_frames * N_MARKERS * 3 * 8 / MB
    copy_analogs = n_an * args.channels * 8 / MB
    copy_plates = 2 * 4 * 3 * n_an * 8 / MB

    print(f"source: {src.relative_to(HERE.parent)}  {src_mb:.1f} MB  ({args.minutes:g} min, {N_MARKERS} markers at "
          f"{POINT_RATE:g} Hz, {args.channels} analog channels at {ANALOG_RATE:g} Hz, 2 type-2 force plates, float)")
    print(f"fusionlab {_revision()}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs; each case in a fresh "
          f"process; repeats interleaved; file in page cache; load average before: {_load()}", flush=True)

    results: dict[str, list[dict[str, Any]]] = {key: [] for _, key, _ in CASES}
    outs = {key: WORK / f"bench_{key}.h5" for _, key, _ in CASES if key.startswith("ingest")}
    timeout = 600.0 + 10.0 * src_mb
    for r in range(args.repeat):
        for letter, key, _ in CASES:
            out = outs.get(key, WORK / "unused.h5")
            res = _spawn(["--_run", key, str(src), str(out)], timeout=timeout)
            results[key].append(res)
            print(f"  run {r + 1}/{args.repeat} {letter} {key:<14} {res['wall_s']:7.2f} s", flush=True)

    print(f"load average after: {_load()} (above ~0.2 on an idle machine, other processes shared the CPUs: compare "
          "min s rather than median s)")
    bare = statistics.median(x["wall_s"] for x in results["bare"])
    header = ["case", "median s", "min s", "x bare", "MB/s", "peak RSS MB", "parent MB", "child MB", "CPU s"]
    widths = [52, 8, 8, 6, 6, 11, 9, 8, 6]
    print()
    print(_fmt_row(header, widths))
    print(_fmt_row(["-" * w for w in widths], widths))
    peaks: dict[str, float] = {}
    for letter, key, label in CASES:
        rs = results[key]
        walls = [x["wall_s"] for x in rs]
        med = statistics.median(walls)
        parent = max(x["maxrss_self_mb"] for x in rs)
        child = max(x["maxrss_children_mb"] if x["maxrss_children_mb"] > x["maxrss_children_before_mb"] else 0.0
                    for x in rs)
        peaks[key] = max(parent, child)
        cpu = statistics.median(x["cpu_self_s"] + x["cpu_children_s"] for x in rs)
        print(_fmt_row([f"{letter}  {label}", f"{med:.2f}", f"{min(walls):.2f}", f"{med / bare:.2f}",
                        f"{src_mb / med:.0f}", f"{peaks[key]:.0f}", f"{parent:.0f}",
                        f"{child:.0f}" if child > 0 else "-", f"{cpu:.2f}"], widths))
    base = statistics.median(x["base_rss_mb"] for rs in results.values() for x in rs)
    h5_bytes = results["ingest"][-1]["out_bytes"]
    print()
    print(f"C3D file:                    {src_mb:8.1f} MB")
    print(f"session .h5 (from c):        {h5_bytes / MB:8.1f} MB  ({100 * h5_bytes / src_bytes:.0f} % of the C3D; "
          f"streams: {', '.join(results['ingest'][-1]['streams'])})")
    print(f"one float64 copy of the data: {copy_markers + copy_analogs:7.1f} MB  (markers {copy_markers:.1f} + analogs "
          f"{copy_analogs:.1f}); the 2 plates derived from it add {copy_plates:.1f} MB")
    print(f"RSS after imports, before the timed call: {base:.0f} MB (in every case's peak)")
    free = statistics.median(x["free_s"] for x in results["bare"])
    print(f"freeing ezc3d's object after a (not in a's time): {free:.2f} s")
    one_copy = copy_markers + copy_analogs
    for key, name in (("ingest", "c"), ("ingest_inproc", "d")):
        extra_b = peaks[key] - peaks["forceplat"]
        extra_a = peaks[key] - peaks["bare"]
        print(f"peak RSS {name} - b: {extra_b:+7.0f} MB = {extra_b / one_copy:+.2f} float64 copies beyond ezc3d's read "
              f"with plates ({extra_a / one_copy:+.2f} beyond the bare read a)")
    ratio = statistics.median(x["wall_s"] for x in results["ingest"]) / bare
    print()

    if args.breakdown:
        b = _spawn(["--_breakdown", str(src), str(WORK / "bench_breakdown.h5")], timeout=timeout)
        print_breakdown(b, src_mb)
        print()
    if not args.keep:
        for p in [*outs.values(), WORK / "bench_breakdown.h5"]:
            p.unlink(missing_ok=True)
            p.with_name(f".{p.name}.lock").unlink(missing_ok=True)
    print(f"target: ingest <= 1.5x bare read: {'PASS' if ratio <= 1.5 else 'FAIL'} (measured {ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
